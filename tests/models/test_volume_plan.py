"""The shape and memory planner: valid shapes checked against real forward passes, padding, dry-run memory estimates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, DataError
from gansim.models.cyclegan_nets import VolumeNetSettings, build_cyclegan_networks, build_discriminator, build_generator
from gansim.models.volume_plan import (estimate_inference_activations, estimate_training_activations, format_plan, measure_inference_activations,
                                       measure_training_activations, memory_plan, pad_to_multiple, required_multiple, shape_rule, unpad,
                                       valid_shapes_near)

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


@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_the_rule_agrees_with_real_forward_passes_along_an_axis(generator: str) -> None:
    """Every size 1..26 along Y (X, Z held at 16): the real network keeps the shape exactly when the rule says so."""
    settings = _settings(generator=generator, n_down=2)
    rule = shape_rule(settings)
    net = build_generator(settings)
    for n in range(1, 27):
        shape = (16, n, 16)
        try:
            with torch.no_grad():
                kept = net(torch.zeros(1, 1, *shape)).shape[2:] == shape
        except (DataError, RuntimeError, ValueError):
            kept = False
        assert kept == rule.valid(shape), (n, rule)


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
    assert inference["training"] is None and inference["total"] == inference["inference"]["total"]
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
    assert t3["total"] - t2["total"] == t2["total"] - t1["total"] > 0
    for fixed in ("parameters", "gradients", "optimizer_state", "ema"):
        assert t1[fixed] == t2[fixed] == t3[fixed]
    i1, i2 = plans[0]["inference"], plans[1]["inference"]
    assert i2["activations"] == 2 * i1["activations"] and i2["parameters"] == i1["parameters"]
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
                   "inference, whole volume: 32 x 44 x 32", "sliding windows of 16 x 16 x 16", "assumptions:", "extrapolated"):
        assert needle in text, needle
    assert all(itertools.chain(v >= 0 for v in plan["training"].values()))
