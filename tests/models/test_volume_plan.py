"""The shape and memory planner: valid shapes checked against real forward passes, padding, dry-run memory estimates."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, DataError
from gansim.models import cyclegan_nets
from gansim.models.cyclegan_nets import VolumeNetSettings, build_cyclegan_networks, build_discriminator, build_generator
from gansim.models.volume_plan import (TRANSLATION_PHASES, _shape_rule_cached, estimate_inference_activations, estimate_layer_buffers,
                                       estimate_training_activations, format_plan, measure_inference_activations, measure_layer_buffers,
                                       measure_training_activations, memory_plan, pad_to_multiple, required_multiple, shape_rule,
                                       translation_memory, unpad, valid_shapes_near)

TINY = {"width": 4, "n_blocks": 1, "d_width": 4, "d_layers": 2}


def _settings(**kw) -> VolumeNetSettings:
    return VolumeNetSettings(**{**TINY, **kw})


@pytest.mark.parametrize("generator", ["resnet", "unet"])
@pytest.mark.parametrize("n_down", [0, 1, 2, 3])
def test_required_multiple_is_two_to_the_levels(generator: str, n_down: int) -> None:
    settings = _settings(generator=generator, n_down=n_down)
    assert required_multiple(settings) == (2**n_down,) * 3
    rule = shape_rule(settings)
    assert rule.valid(tuple(rule.minimum)) and not rule.valid(tuple(m - 1 for m in rule.minimum))


def test_the_rule_is_found_from_the_layers_not_from_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the generators' input guard made to fail loudly, the probe still finds 2**n_down: it never calls the guard."""
    def guard(*args: object, **kwargs: object) -> None:
        raise AssertionError("the shape probe called the generators' input guard")

    monkeypatch.setattr(cyclegan_nets, "_check_input", guard)
    _shape_rule_cached.cache_clear()
    try:
        for generator in ("resnet", "unet"):
            for n_down in (0, 1, 2, 3):
                settings = _settings(generator=generator, n_down=n_down)
                with pytest.raises(AssertionError, match="input guard"):
                    build_generator(settings)(torch.zeros(1, 1, *(2**n_down * 4,) * 3))  # the guard is really switched on
                assert shape_rule(settings).multiple == (2**n_down,) * 3, (generator, n_down)
    finally:
        _shape_rule_cached.cache_clear()  # rules found while the guard was patched are not kept


@pytest.mark.parametrize("generator", ["resnet", "unet"])
@pytest.mark.parametrize("n_down", [1, 2, 3])
def test_the_rule_agrees_with_real_forward_passes_along_an_axis(generator: str, n_down: int) -> None:
    """Every size 1..26 along Y (X, Z held at 16): the layers (real arithmetic, no guard) keep the shape exactly when
    the rule says so; a size the rule calls invalid comes out resized or makes a layer fail, and the guard refuses it first."""
    settings = _settings(generator=generator, n_down=n_down)
    rule = shape_rule(settings)
    net = build_generator(settings).eval()
    outcomes = set()
    for n in range(1, 27):
        shape = (16, n, 16)
        x = torch.zeros(1, 1, *shape)
        with torch.no_grad():
            try:
                out = tuple(net.forward_unchecked(x).shape[2:])
                kept = out == shape
                outcomes.add("kept" if kept else "resized")
            except (RuntimeError, ValueError) as err:
                assert not isinstance(err, DataError)
                kept = False
                outcomes.add("failed")
            assert kept == rule.valid(shape), (n, rule)
            if n % rule.multiple[1]:
                with pytest.raises(DataError, match=f"multiples of {2**n_down}"):
                    net(x)
            elif kept:
                assert net(x).shape == x.shape
    # the ResNet resizes what it cannot keep; the U-Net's skip connections fail on it
    assert outcomes == ({"kept", "resized", "failed"} if generator == "resnet" else {"kept", "failed"})


@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_odd_shapes_pass_after_padding_and_come_back(generator: str) -> None:
    settings = _settings(generator=generator, n_down=2)
    rule = shape_rule(settings)
    net = build_generator(settings)
    gen = torch.Generator().manual_seed(0)
    for shape in [(17, 20, 23), (31, 16, 24), (20, 20, 20), (23, 17, 9), (5, 12, 31)]:
        x = torch.randn(1, 1, *shape, generator=gen)
        if rule.valid(shape):
            assert shape == (20, 20, 20)
            assert net(x).shape == x.shape
            continue
        with pytest.raises(DataError, match="multiples of 4"):
            net(x)
        padded, pads = pad_to_multiple(x, rule.multiple, mode="constant", value=-1.0, minimum=rule.minimum)
        assert rule.valid(padded.shape[2:])
        with torch.no_grad():
            y = net(padded)
        assert y.shape == padded.shape
        assert unpad(y, pads).shape == x.shape
        torch.testing.assert_close(unpad(padded, pads), x, rtol=0, atol=0)


def test_the_critic_minimum_is_where_the_first_logit_appears() -> None:
    settings = _settings()
    rule = shape_rule(settings)
    d = build_discriminator(settings)
    lo = rule.critic_minimum[1]
    with torch.no_grad():
        assert d(torch.zeros(1, 1, 32, lo, 32)).shape[3] >= 1
        try:
            out = d(torch.zeros(1, 1, 32, lo - 1, 32)).shape[3]
        except (RuntimeError, ValueError):
            out = 0
    assert out == 0
    assert rule.valid(rule.training_minimum, training=True) and not rule.valid(tuple(n - rule.multiple[0] for n in rule.training_minimum), training=True)


def test_two_dimensional_rule() -> None:
    settings = _settings(spatial_dims=2, n_down=3)
    assert required_multiple(settings) == (8, 8)
    g = build_generator(settings)
    x, pads = pad_to_multiple(torch.zeros(2, 1, 19, 33), required_multiple(settings), minimum=shape_rule(settings).minimum)
    assert x.shape == (2, 1, 24, 40) and pads == ((2, 3), (3, 4)) and g(x).shape == x.shape


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_unpad_is_the_identity(mode: str) -> None:
    rng = np.random.default_rng(4)
    volume = rng.normal(size=(13, 8, 6)).astype(np.float32)
    padded, pads = pad_to_multiple(volume, (4, 4, 4), mode=mode, value=-1.0)
    assert padded.shape == (16, 8, 8) and pads == ((1, 2), (0, 0), (1, 1))
    np.testing.assert_array_equal(unpad(padded, pads), volume)
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    kwargs = {"constant_values": -1.0} if mode == "constant" else {}
    np.testing.assert_array_equal(padded, np.pad(volume, pads, mode=np_mode, **kwargs))
    # the same on a channels-first torch batch, int multiple = every spatial axis
    batch = torch.from_numpy(np.stack([volume, 2 * volume])[:, None])
    tpadded, tpads = pad_to_multiple(batch, 4, mode=mode, value=-1.0)
    assert tpads == pads
    np.testing.assert_array_equal(tpadded[1, 0].numpy(), np.pad(2 * volume, pads, mode=np_mode, **kwargs))
    torch.testing.assert_close(unpad(tpadded, tpads), batch, rtol=0, atol=0)


def test_padding_errors_and_minimum() -> None:
    assert pad_to_multiple(np.zeros((3, 4, 4)), (4, 4, 4), minimum=(8, 8, 4))[1] == ((2, 3), (2, 2), (0, 0))
    with pytest.raises(DataError, match="reflect"):
        pad_to_multiple(np.zeros((1, 1, 2, 4, 4)), (8, 4, 4), mode="reflect")
    with pytest.raises(ConfigError, match="mode='wrap'"):
        pad_to_multiple(np.zeros((4, 4, 4)), 4, mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="pads"):
        unpad(np.zeros((4, 4, 4)), ((2, 2), (0, 0), (0, 0)))


def test_valid_shapes_near() -> None:
    settings = _settings(n_down=2)  # multiples of 4, at least 8
    options = valid_shapes_near((17, 20, 23), settings, k=3)
    assert [o.shape for o in options] == [(20, 20, 24), (24, 24, 28), (28, 28, 32), (16, 16, 20), (12, 12, 16), (8, 8, 12)]
    assert [o.kind for o in options] == ["pad"] * 3 + ["crop"] * 3
    for o in options:
        assert shape_rule(settings).valid(o.shape)
        assert all(n + b + a == t for n, (b, a), t in zip((17, 20, 23), o.pads, o.shape))
    assert options[0].pads == ((1, 2), (0, 0), (0, 1)) and options[3].pads == ((0, -1), (-2, -2), (-1, -2))
    exact = valid_shapes_near((20, 8, 12), settings, k=2)
    assert exact[0].kind == "exact" and exact[0].pads == ((0, 0),) * 3 and [o.shape for o in exact[2:]] == []  # nothing valid below 8
    assert valid_shapes_near((9, 9, 9), settings, k=1, training=True)[0].shape == shape_rule(settings).training_minimum


def test_parameter_counts_and_state_bytes() -> None:
    settings = _settings()
    plan = memory_plan(settings, (20, 20, 20), optimizer="adam", ema=False)
    nets = build_cyclegan_networks(settings, seed=0)
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    assert plan["parameters"] == counts
    total = sum(counts.values())
    t = plan["training"]
    assert t["parameters"] == t["gradients"] == 4 * total and t["optimizer_state"] == 8 * total and t["ema"] == 0
    assert t["total"] == sum(v for k, v in t.items() if k != "total") == plan["total"]
    sgd = memory_plan(settings, (20, 20, 20), optimizer="sgd", ema=True)["training"]
    assert sgd["optimizer_state"] == 0 and sgd["ema"] == 4 * (counts["G_AB"] + counts["G_BA"])
    assert memory_plan(settings, (20, 20, 20), optimizer="rmsprop", momentum=True)["training"]["optimizer_state"] == 8 * total
    inference = memory_plan(settings, (17, 20, 23), training=False)
    # without training the total is translating the volume (sliding windows, here one window of the padded volume)
    assert inference["training"] is None and inference["total"] == inference["translation"]["total"] > inference["inference"]["total"]
    assert inference["inference"]["parameters"] == 4 * counts["G_AB"] and inference["infer_shape"] == (20, 20, 24)


def test_activations_from_small_dry_runs_match_a_dry_run_at_the_shape() -> None:
    settings = _settings(width=8, n_blocks=2, d_width=8)
    direct = measure_training_activations(settings, (32, 32, 32))
    estimate = estimate_training_activations(settings, (32, 32, 32), reference_side=16)
    assert all(np.prod(r) < 32**3 for r in estimate["references"])  # extrapolated, not measured there
    for key in ("G", "D", "peak"):
        assert abs(estimate[key] / direct[key] - 1) < 0.10, key
    shape = (40, 28, 36)
    direct_inf = measure_inference_activations(settings, shape)
    estimate_inf = estimate_inference_activations(settings, shape, reference_side=8)
    assert all(np.prod(r) < np.prod(shape) for r in estimate_inf["references"])
    assert abs(estimate_inf["peak"] / direct_inf - 1) < 0.10
    # the live peak of one forward holds at least a full-resolution layer's input and output, and is far below training's
    assert 2 * 8 * np.prod(shape) * 4 <= direct_inf < measure_training_activations(settings, shape)["G"]


def test_memory_grows_linearly_with_the_batch() -> None:
    settings = _settings()
    plans = [memory_plan(settings, (40, 40, 40), batch=b, patch=(16, 16, 16), pool_size=4) for b in (1, 2, 3)]
    t1, t2, t3 = (p["training"] for p in plans)
    assert t2["activations"] == 2 * t1["activations"] and t3["activations"] == 3 * t1["activations"]
    # every term but the layers' work buffers (measured at each batch: kernels reuse some) is linear in the batch
    linear = [t["total"] - t["layer_buffers"] for t in (t1, t2, t3)]
    assert linear[2] - linear[1] == linear[1] - linear[0] > 0
    for b, t in zip((1, 2, 3), (t1, t2, t3)):
        assert t["layer_buffers"] == estimate_layer_buffers(settings, (16, 16, 16), batch=b)["bytes"]
    for fixed in ("parameters", "gradients", "optimizer_state", "ema"):
        assert t1[fixed] == t2[fixed] == t3[fixed]
    i1, i2 = plans[0]["inference"], plans[1]["inference"]
    assert i2["activations"] == 2 * i1["activations"] and i2["parameters"] == i1["parameters"]
    # the layers' work buffers are measured at the batch (kernels reuse some from sample to sample)
    assert i2["layer_buffers"] == estimate_layer_buffers(_settings(), (40, 40, 40), batch=2)["bytes"] >= i1["layer_buffers"]
    r1, r2 = plans[0]["translation"], plans[1]["translation"]
    assert r2["window_activations"] == 2 * r1["window_activations"] and r2["output_map"] == r1["output_map"] == 4 * 40**3
    assert plans[0]["inference_window"]["activations"] < i1["activations"]  # a 16^3 window needs less than the 40^3 volume


def test_checkpointing_and_amp_need_less() -> None:
    settings = _settings()
    plain = measure_training_activations(settings, (16, 16, 16))
    ckpt = measure_training_activations(settings, (16, 16, 16), checkpointing=True)
    assert ckpt["G"] < plain["G"] and ckpt["recompute"] < ckpt["G"] and ckpt["D"] == plain["D"]
    amp = measure_training_activations(settings, (16, 16, 16), amp=True)
    assert amp["G"] < plain["G"]
    no_identity = measure_training_activations(settings, (16, 16, 16), identity=False)
    assert no_identity["G"] < plain["G"]


def test_plan_errors_and_report() -> None:
    settings = _settings()
    with pytest.raises(ConfigError, match=r"patch \(18, 16, 16\).*nearest valid: \(20, 16, 16\)"):
        memory_plan(settings, (64, 64, 64), patch=(18, 16, 16))
    with pytest.raises(ConfigError, match="optimizer 'lbfgs'"):
        memory_plan(settings, (64, 64, 64), optimizer="lbfgs")
    with pytest.raises(ConfigError, match="expected 3 positive sizes"):
        memory_plan(settings, (64, 64))
    with pytest.raises(ConfigError, match="device 'meta'"):
        memory_plan(settings, (16, 16, 16), device="meta")
    plan = memory_plan(settings, (30, 41, 29), patch=(16, 16, 16), pool_size=2)
    text = format_plan(plan)
    for needle in ("ResNet generator (width 4", "multiple of (4, 4, 4)", "training step: batch 1 of 16 x 16 x 16",
                   "inference, whole volume: 32 x 44 x 32", "sliding windows of 16 x 16 x 16", "assumptions:", "extrapolated",
                   "translation of one 30 x 41 x 29 volume", "input volume",
                   "phase 'scaling fit'", "phase 'sliding windows'", "<- the peak", "output map", "count map", "window layer buffers",
                   "inferer input copy", "fit float64 copy", "inverse float64", "parameters + input volume + the largest phase"):
        assert needle in text, needle
    # every term's line says what it is; the phases' lines add up to the total
    for key in plan["translation"]:
        if key != "total":
            assert key.replace("_", " ") in text, key
    assert plan["translation"]["total"] == (plan["translation"]["parameters"] + plan["translation"]["input_volume"]
                                            + plan["translation_phases"][plan["translation_peak_phase"]])
    assert set(plan["translation_phases"]) == set(TRANSLATION_PHASES)
    assert all(itertools.chain(v >= 0 for v in plan["training"].values()))


def _head(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A float32 'head': a bright ellipsoid with structure on a dark noisy background."""
    grids = np.meshgrid(*[(np.arange(n) - n / 2) / (0.4 * n) for n in shape], indexing="ij")
    r2 = sum(g**2 for g in grids)
    rng = np.random.default_rng(seed)
    return (np.where(r2 < 1, 600 + 300 * np.cos(6 * r2), 0) + np.abs(rng.normal(0, 20, size=shape))).astype(np.float32)


def test_translation_terms_by_counting() -> None:
    """Every term of the translation plan, counted by hand from the code of CycleGANModel.translate, translate_volume and MONAI."""
    settings = _settings()
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in build_cyclegan_networks(settings, seed=0).items()}
    # several windows, no padding: every axis at least the window's
    shape, window = (20, 24, 36), (16, 16, 16)
    v, w = 20 * 24 * 36, 16**3
    tr = translation_memory(settings, shape, window)
    t = tr["parts"]
    acts = estimate_inference_activations(settings, window)["peak"]
    buffers = estimate_layer_buffers(settings, window)["bytes"]
    assert t == {"parameters": 4 * (counts["G_AB"] + counts["G_BA"]), "input_volume": 4 * v,
                 "fit_float64_copy": 8 * v, "fit_clipped_copy": 8 * v, "fit_masks": 5 * v,
                 "forward_float64": 8 * v, "scaled_volume": 4 * v,
                 "inferer_input_copy": 4 * v, "padded_input": 0, "output_map": 4 * v, "count_map": 4 * v, "importance_map": 4 * w,
                 "window_activations": acts, "window_layer_buffers": buffers, "previous_window_output": 4 * w,
                 "inverse_float64": 8 * v, "inverse_result": 4 * v, "total": t["total"]}
    assert tr["phases"] == {"scaling fit": 21 * v, "scaling forward": 12 * v, "sliding windows": 16 * v + 8 * w + acts + buffers,
                            "scaling inverse": 20 * v}
    assert t["total"] == t["parameters"] + 4 * v + max(tr["phases"].values())
    assert tr["padded_shape"] == shape and tr["several_windows"]
    # an axis shorter than the window: MONAI pads to (16, 40, 20), and its maps have that size
    tr = translation_memory(settings, (12, 40, 20), window, sw_batch_size=2)
    t, v, vp = tr["parts"], 12 * 40 * 20, 16 * 40 * 20
    assert tr["padded_shape"] == (16, 40, 20)
    assert (t["padded_input"], t["output_map"], t["count_map"], t["inferer_input_copy"]) == (4 * vp, 4 * vp, 4 * vp, 4 * v)
    buffers2 = estimate_layer_buffers(settings, window, batch=2)["bytes"]
    assert t["window_activations"] == 2 * acts and t["window_layer_buffers"] == buffers2
    assert t["previous_window_output"] == 2 * 4 * w
    assert tr["phases"]["sliding windows"] == 8 * v + 12 * vp + 4 * w + 2 * (acts + 4 * w) + buffers2
    assert tr["phases"]["scaling inverse"] == 4 * v + 4 * vp + 12 * v  # the scaled-back view keeps the padded output map alive
    # one window: the output and count maps come after its forward pass, beside the window's output only
    tr = translation_memory(settings, (16, 16, 16), window)
    v = w
    assert not tr["several_windows"] and tr["parts"]["previous_window_output"] == 0
    assert tr["phases"]["sliding windows"] == 8 * v + 4 * w + max(acts + buffers, 8 * v + 4 * w)
    assert translation_memory(settings, (16, 16, 16), window, sw_batch_size=3)["parts"]["window_activations"] == acts  # a batch of one
    # no window: the whole volume padded to a valid shape, as one window
    tr = translation_memory(settings, (17, 20, 23), None)
    assert tr["window"] == (20, 20, 24) and tr["padded_shape"] == (20, 20, 24) and tr["parts"]["padded_input"] == 4 * 20 * 20 * 24
    with pytest.raises(ConfigError, match=r"window \(18, 16, 16\).*nearest valid: \(20, 16, 16\)"):
        translation_memory(settings, (40, 40, 40), (18, 16, 16))
    with pytest.raises(ConfigError, match="single-channel"):
        translation_memory(_settings(channels=2), (40, 40, 40), window)


def test_scaling_phases_match_numpy_allocations() -> None:
    """The scaling's terms are what NumPy allocates: tracemalloc's peak of each phase of CycleGANModel.translate."""
    from gansim.io.volumes import VolumeScaling

    # large enough that np.histogram's block buffers (65536 values at a time, about 1.7 MB) stay below the fill-holes step
    shape = (80, 72, 76)
    volume = _head(shape)
    t = translation_memory(_settings(), shape, (16, 16, 16))["parts"]

    def peak(fn):  # bytes NumPy allocated at most above the level at the start
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            result = fn()
            return result, tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()

    VolumeScaling.fit(volume[:16, :16, :16])  # imports (scipy.ndimage) and first-call caches are not the volume's
    scaling, fit = peak(lambda: VolumeScaling.fit(volume, percentiles=(0.5, 99.5)))
    scaled, forward = peak(lambda: scaling.forward(np.asarray(volume, dtype=np.float32)))
    output = scaled.copy()  # stands for the inferer's output map
    _, inverse = peak(lambda: scaling.inverse(output).astype(np.float32))
    # a few small arrays (histogram bins, percentiles, Python objects) come on top: at most 256 KiB
    for measured, planned in ((fit, t["fit_float64_copy"] + t["fit_clipped_copy"] + t["fit_masks"]),
                              (forward, t["forward_float64"] + t["scaled_volume"]),
                              (inverse, t["inverse_float64"] + t["inverse_result"])):
        assert planned <= measured <= planned + 2**18, (measured, planned)


def test_sliding_window_buffers_match_the_allocators() -> None:
    """translate_volume's buffers: NumPy's copy (tracemalloc) and MONAI's padded copy, output and count maps (PyTorch's
    allocator, profiled), with a network that allocates nothing but its output."""
    from gansim.models.volume_inference import translate_volume
    from gansim.models.volume_plan import _allocator_peak

    window = (16, 16, 16)
    for shape in [(20, 24, 36), (12, 40, 20)]:
        volume = _head(shape)
        t = translation_memory(_settings(), shape, window)["parts"]
        translate_volume(lambda x: x * 0.5, volume[:8, :8, :8], window)  # imports (MONAI) are not the volume's
        tracemalloc.start()
        try:
            translate_volume(lambda x: x * 0.5, volume, window)
            numpy_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        torch_peak = _allocator_peak(lambda v=volume: translate_volume(lambda x: x * 0.5, v, window), "cpu")
        window_output = 4 * math.prod(window)  # the network's (x * 0.5) beside the previous one
        planned = t["padded_input"] + t["output_map"] + t["count_map"] + t["importance_map"] + window_output + t["previous_window_output"]
        assert t["inferer_input_copy"] <= numpy_peak <= 1.01 * t["inferer_input_copy"] + 65536, shape
        assert planned <= torch_peak <= 1.05 * planned, (shape, torch_peak, planned)


def test_memory_plan_takes_a_window_apart_from_the_patch() -> None:
    settings = _settings()
    plan = memory_plan(settings, (40, 36, 44), patch=(16, 16, 16), window=(24, 24, 24), pool_size=2)
    assert plan["train_shape"] == (16, 16, 16) and plan["window"] == plan["translation_window"] == (24, 24, 24)
    assert plan["translation"]["importance_map"] == 4 * 24**3 and plan["total"] == plan["training"]["total"]
    assert memory_plan(settings, (40, 36, 44), patch=(16, 16, 16), training=False)["translation_window"] == (16, 16, 16)
    alone = memory_plan(settings, (40, 36, 44), training=False, window=(24, 24, 24))
    assert alone["total"] == alone["translation"]["total"] == translation_memory(settings, (40, 36, 44), (24, 24, 24))["parts"]["total"]
    with pytest.raises(ConfigError, match=r"window \(24, 22, 24\)"):
        memory_plan(settings, (40, 36, 44), window=(24, 22, 24))


def test_layer_buffers_are_the_allocator_peak_beyond_the_live_tensors() -> None:
    """A profiled forward holds at least its live tensors; the difference is the layers' work buffers, and a shape above
    the dry-run limit is measured smaller and scaled with the voxel count."""
    settings = _settings(width=8)
    buffers = measure_layer_buffers(settings, (24, 24, 24))
    assert buffers >= 0 and buffers == estimate_layer_buffers(settings, (24, 24, 24))["bytes"]
    big = estimate_layer_buffers(settings, (48, 48, 48), max_voxels=24**3)
    assert big["probe"] == (24, 24, 24) and big["bytes"] == math.ceil(buffers * 8)
    two = estimate_layer_buffers(settings, (24, 24, 24), batch=2, max_voxels=24**3)  # the batch counts against the limit
    assert two["probe"] == (16, 16, 16) and two["bytes"] == math.ceil(measure_layer_buffers(settings, (16, 16, 16), batch=2) * 24**3 / 16**3)


def test_the_plan_says_how_cpu_training_treats_the_c_librarys_heap() -> None:
    from gansim.config import parse_config
    from gansim.models.cyclegan_config import CycleGANConfig
    from gansim.models.volume_plan import config_memory_plan

    raw = {"model": _settings().model_dump(), "data": {"patch": [16, 16, 16]}, "loss": {"pool_size": 2}}
    fixed = config_memory_plan(parse_config(CycleGANConfig, raw))
    kept = config_memory_plan(parse_config(CycleGANConfig, {**raw, "train": {"cpu_mmap_threshold": None}}))
    assert any("cpu_mmap_threshold 1048576 B hands freed blocks" in a for a in fixed["assumptions"])
    assert any("glibc's heap keeps freed blocks" in a for a in kept["assumptions"])
    # the config's own settings reach the plan: its patch, batch, pool and checkpointing
    assert fixed["train_shape"] == (16, 16, 16) and fixed["batch"] == 1
    assert fixed["training"]["fakes_and_pool"] == (2 + 2 * 2) * 16**3 * 4


def test_the_training_plan_counts_its_layer_buffers_and_does_not_call_them_uncounted() -> None:
    plan = memory_plan(_settings(), (24, 24, 24), patch=(16, 16, 16), pool_size=1)
    assert plan["training"]["layer_buffers"] == estimate_layer_buffers(_settings(), (16, 16, 16))["bytes"] > 0
    assert not any("work buffers in training" in a for a in plan["assumptions"])
