"""The progressive auxiliary-classifier GAN: schedule, networks, snapshots, resume, model file (tiny 4→16 px)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.config import OptimizerSettings, TrainingSettings, parse_config
from gansim.models.pacgan import LevelSchedule, PACGANObjective, SliceBatches
from gansim.models.pacgan_config import PACGANConfig, ScheduleSettings
from gansim.models.pacgan_model import LATENT_BLOCK, build_networks, labels_for_request
from gansim.training.loop import TrainingLoop

TINY_MODEL = {"image_size": 16, "in_channels": 16, "z_dim": 8, "embedding_dim": 3, "aux_hidden": 10}


def _settings(num_classes: int = 3, channels: int = 1, **extra: object):
    cfg = parse_config(PACGANConfig, {"model": {**TINY_MODEL, "num_classes": num_classes, "channels": channels, **extra}})
    return cfg.model


def test_fade_in_alpha_is_a_function_of_images_seen() -> None:
    schedule = LevelSchedule.build([4, 8, 16], ScheduleSettings(epochs=[2, 2, 3], fade_fraction=0.5, batch_sizes=[4, 4, 2]), n_train=10)
    assert schedule.starts == [0, 20, 40] and schedule.total == 70
    assert schedule.fade_images == [0, 10, 15]  # half of each level's configured epochs
    assert [schedule.level_at(r) for r in (0, 19, 20, 39, 40, 69, 500)] == [0, 0, 1, 1, 2, 2, 2]
    assert schedule.alpha_at(5) == 1.0  # level 0 has nothing to fade from
    assert schedule.alpha_at(20) == 0.0 and schedule.alpha_at(25) == 0.5 and schedule.alpha_at(30) == 1.0 and schedule.alpha_at(39) == 1.0
    assert schedule.alpha_at(43) == pytest.approx(3 / 15)
    assert [schedule.epochs_done(r) for r in (19, 20, 29, 30, 45, 69)] == [1, 0, 0, 1, 0, 2]
    # test mode: shorter levels, the configured fade-in kept
    short = LevelSchedule.build([4, 8, 16], ScheduleSettings(epochs=[2, 2, 3]), n_train=10, epochs=[1, 1, 2])
    assert short.starts == [0, 10, 20] and short.fade_images == [0, 10, 15]


def test_generator_and_discriminator_shapes_at_every_level_and_three_classes() -> None:
    torch.manual_seed(0)
    g, d = build_networks(_settings(num_classes=3, channels=3))
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    for level, side in enumerate((4, 8, 16)):
        for alpha in (0.25, 1.0):
            images = g(z, y, level, alpha)
            assert images.shape == (6, 3, side, side) and images.abs().max() < 1
            score, logits = d(images, level, alpha, y)
            assert score.shape == (6,) and logits.shape == (6, 3)  # the auxiliary head is sized to the classes
    assert d.classify(g(z, y)).shape == (6, 3)


@pytest.mark.parametrize("projection", [False, True])
def test_gradients_reach_every_parameter(projection: bool) -> None:
    """Every parameter gets a gradient at some level; at the last level during its fade-in, all but the lower levels' image layers."""
    torch.manual_seed(1)
    g, d = build_networks(_settings(projection=projection))
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    reached: set[str] = set()
    for level in range(3):
        for net in (g, d):
            net.zero_grad(set_to_none=True)
        images = g(z, y, level, 0.5)
        score, logits = d(images, level, 0.5, y)
        (score.sum() + logits.sum()).backward()
        for prefix, net in (("G", g), ("D", d)):
            reached |= {f"{prefix}.{n}" for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        if level == 2:
            unused = {f"G.to_image.{k}" for k in (0,)} | {f"D.from_image.{k}" for k in (0,)}
            at_last = {f"{prefix}.{n}" for prefix, net in (("G", g), ("D", d)) for n, p in net.named_parameters()
                       if not any(f"{prefix}.{n}".startswith(u + ".") for u in unused)}
            missing = {n for n in at_last if n not in reached or (n.startswith("G.") and g.get_parameter(n[2:]).grad is None)}
            assert not missing, missing
    every = {f"G.{n}" for n, _ in g.named_parameters()} | {f"D.{n}" for n, _ in d.named_parameters()}
    assert every == reached


def test_equalised_learning_rate_layers_are_used() -> None:
    from gansim.nn.progressive import EqualizedConv, EqualizedLinear

    g, d = build_networks(_settings())
    convs = [m for m in list(g.modules()) + list(d.modules()) if isinstance(m, EqualizedConv)]
    assert convs and all(m.scale == pytest.approx(m.scale) for m in convs)
    conv = g.blocks[0].conv1
    assert conv.scale == pytest.approx(math.sqrt(2.0) / math.sqrt(conv.weight.shape[1] * 9))
    assert isinstance(d.score, EqualizedLinear) and d.score.scale == pytest.approx(1.0 / math.sqrt(d.score.weight.shape[1]))


def test_classifier_answer_does_not_depend_on_the_batch() -> None:
    """In eval mode the minibatch statistic is the running value from real batches: one image, one answer."""
    torch.manual_seed(2)
    _, d = build_networks(_settings())
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    d.train()
    d.minibatch_std.update_running = True
    d(x)
    d.minibatch_std.update_running = False
    d.eval()
    together = d.classify(x)
    alone = torch.cat([d.classify(x[i : i + 1]) for i in range(8)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_labels_for_request() -> None:
    assert labels_for_request(2, per_class=[2, 3]).tolist() == [0, 0, 1, 1, 1]
    assert labels_for_request(3, n=7).tolist() == [0, 0, 1, 1, 2, 2, 2]  # the last class takes the remainder, as PACGAN
    assert labels_for_request(3, n=2, label=2).tolist() == [2, 2]
    with pytest.raises(Exception, match="3 classes"):
        labels_for_request(3, per_class=[1, 1])
    with pytest.raises(Exception, match="label 5"):
        labels_for_request(3, n=1, label=5)


# ------------------------------------------------------------------ training in the loop

def _toy_data(n: int = 48, classes: int = 3, side: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k: a bright square whose size grows with k, on noise, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.uniform(-1, -0.6, size=(n, 1, side, side)).astype(np.float32)
    for i, k in enumerate(labels):
        half = 2 + 2 * k
        c = side // 2
        images[i, 0, c - half : c + half, c - half : c + half] = 0.8
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def _loop(run_dir: Path, total_rows: int, *, validator=None, checkpoint_rows: int = 10_000, start_check_at: float = 0.0, epochs=(2, 2, 2), amp: str = "off"):
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    settings = _settings()
    g, d = build_networks(settings)
    images, labels = _toy_data()
    schedule = LevelSchedule.build(settings.sizes, ScheduleSettings(epochs=list(epochs), batch_sizes=[8, 8, 4], critic_iterations=[1, 2, 2]), n_train=len(labels))
    batches = SliceBatches(images, labels, schedule.sizes, schedule.batch_sizes, seed=3, device=torch.device("cpu"))
    objective = PACGANObjective(g, d, settings, schedule, True, batches, torch.device("cpu"), seed=5, validator=validator, start_check_at=start_check_at)
    train = TrainingSettings(total_rows=max(1, total_rows), batch_size=8, tick_rows=16, checkpoint_rows=checkpoint_rows, progress=False, ema_halflife_rows=50, seed=0, amp=amp)
    optim = {name: OptimizerSettings(lr=1e-3, betas=(0.5, 0.999)) for name in ("G", "D")}
    return TrainingLoop(objective, batches, train, optim, run_dir, torch.device("cpu")), objective, schedule


def test_batches_follow_the_level() -> None:
    images, labels = _toy_data()
    batches = SliceBatches(images, labels, [4, 8, 16], [8, 8, 4], seed=1, device=torch.device("cpu"))
    for level, (side, b) in enumerate(((4, 8), (8, 8), (16, 4))):
        batches.set_level(level)
        x, y = batches.next_batch()
        assert x.shape == (b, 1, side, side) and y.shape == (b,)
    # downsampled on the fly: the mean of each image is kept by the antialiased reduction
    batches.set_level(0)
    torch.testing.assert_close(batches._pyramid[4].mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("amp", ["off", "fp16"])
def test_resume_inside_a_level_equals_uninterrupted(tmp_path: Path, amp: str) -> None:
    """Level, α, images seen, optimisers, EMA, RNG and (fp16 autocast, here on the CPU) the gradient scalers all resume exactly."""
    full_loop, full_obj, schedule = _loop(tmp_path / "full", 0, amp=amp)
    full_loop.settings = full_loop.settings.model_copy(update={"total_rows": schedule.total})
    full_loop.run()
    # stop in level 1 during its fade-in, then resume to the end
    first, _, _ = _loop(tmp_path / "split", 120, amp=amp)
    first.run()
    assert schedule.level_at(first.rows_seen) == 1 and 0 < schedule.alpha_at(first.rows_seen) < 1
    second, second_obj, _ = _loop(tmp_path / "split", schedule.total, amp=amp)
    second.run(resume=True)
    assert second.rows_seen == full_loop.rows_seen
    for name in ("G", "D"):
        for (key, a), b in zip(full_obj.networks[name].state_dict().items(), second_obj.networks[name].state_dict().values()):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name}.{key}")
    torch.testing.assert_close(full_loop.ema.shadow.project.weight, second.ema.shadow.project.weight, rtol=0, atol=0)
    assert set(second.scalers) == ({"G", "D"} if amp == "fp16" else set())
    for name, scaler in second.scalers.items():
        assert scaler.state_dict() == full_loop.scalers[name].state_dict()


class _ScriptedValidator:
    """Stands in for the whole-set AUC: the score of each call comes from a list (the best is the second epoch)."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = list(scores), 0

    def evaluate(self, g, d, level, alpha):
        score = self.scores[self.calls % len(self.scores)]
        self.calls += 1
        return {"auc_real": score / 2, "auc_fake": score / 2, "score": score}


def test_best_snapshot_is_a_copy_and_the_next_level_starts_from_it(tmp_path: Path) -> None:
    validator = _ScriptedValidator([1.0, 1.9, 1.2])  # 3 epochs per level: the 2nd is the best
    loop, objective, schedule = _loop(tmp_path / "run", 0, validator=validator, epochs=(3, 3, 3))
    # run level 0 to its end (3 epochs of 48 images), keeping the weights after epoch 2
    loop.settings = loop.settings.model_copy(update={"total_rows": 2 * 48})
    loop.run()
    after_epoch_2 = {k: v.clone() for k, v in objective.networks["G"].state_dict().items()}
    loop.settings = loop.settings.model_copy(update={"total_rows": 3 * 48})
    loop.run()
    live = objective.networks["G"].state_dict()
    assert objective.best[0]["epoch"] == 2
    snap = objective._snapshot["networks"]["G"]
    assert any(not torch.equal(snap[k], live[k]) for k in live)  # training went on: the snapshot is not the live weights
    for k in live:
        torch.testing.assert_close(snap[k], after_epoch_2[k], rtol=0, atol=0)
    # the first iteration of level 1 starts from the snapshot
    loop.settings = loop.settings.model_copy(update={"total_rows": 3 * 48 + 1})
    objective.before_iteration(loop)
    for k, v in objective.networks["G"].state_dict().items():
        torch.testing.assert_close(v, after_epoch_2[k], rtol=0, atol=0)
    assert objective._snapshot is None and objective.level == 1


def test_lambda_meaning_swaps_the_critic_weights() -> None:
    readme = PACGANObjective.__new__(PACGANObjective)
    s = _settings(lambda_cls_1=4.0, lambda_cls_2=1.5)
    g, d = build_networks(s)
    images, labels = _toy_data()
    schedule = LevelSchedule.build(s.sizes, ScheduleSettings(epochs=1, batch_sizes=4), 48)
    batches = SliceBatches(images, labels, s.sizes, schedule.batch_sizes, 0, torch.device("cpu"))
    readme = PACGANObjective(g, d, s, schedule, True, batches, torch.device("cpu"), 0)
    code = PACGANObjective(g, d, s.model_copy(update={"lambda_meaning": "code"}), schedule, True, batches, torch.device("cpu"), 0)
    assert (readme.lambda_real, readme.lambda_fake) == (1.5, 4.0)
    assert (code.lambda_real, code.lambda_fake) == (4.0, 1.5)


def test_latents_do_not_depend_on_batching() -> None:
    from gansim.models.pacgan_model import PACGANModel

    model = PACGANModel.__new__(PACGANModel)
    model.settings = _settings()
    whole = model.latents(7, 0, 3 * LATENT_BLOCK + 5)
    part = model.latents(7, LATENT_BLOCK - 2, 10)
    torch.testing.assert_close(part, whole[LATENT_BLOCK - 2 : LATENT_BLOCK + 8], rtol=0, atol=0)


def test_save_load_gives_identical_images_and_probabilities(tmp_path: Path) -> None:
    from gansim.io.slices import IntensityScaling
    from gansim.models import load_model
    from gansim.models.pacgan_model import save_pacgan

    torch.manual_seed(4)
    settings = _settings()
    g, d = build_networks(settings)
    d.minibatch_std.running_spread.fill_(0.37)
    d.minibatch_std.running_updates.fill_(5)
    scaling = IntensityScaling("range", 0.0, 1000.0)
    save_pacgan(tmp_path / "model", g, d, settings, class_names=["CN", "MCI", "AD"], intensity=scaling.to_dict(), spacing_mm=(1.2, 1.2))
    model = load_model(tmp_path / "model", device="cpu")
    labels = np.array([0, 2, 1, 1, 0])
    images = model.generate(labels, seed=11, batch_size=2)
    with torch.no_grad():
        expected = g.eval()(model.latents(11, 0, 5), torch.from_numpy(labels)).numpy()
    np.testing.assert_allclose(images, scaling.inverse(expected), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(images, model.generate(labels, seed=11, batch_size=2))
    assert images.min() >= 0 and images.max() <= 1000  # tanh output mapped back to the data's range
    with torch.no_grad():
        expected_p = torch.softmax(d.eval().classify(torch.from_numpy(scaling.forward(images))), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(images), expected_p, rtol=1e-5, atol=1e-6)
    assert model.class_names == ["CN", "MCI", "AD"] and model.spacing_mm == (1.2, 1.2)
    with pytest.raises(Exception, match=r"\(N, 1, 16, 16\)"):
        model.predict_proba(np.zeros((2, 1, 8, 8), np.float32))


def test_resuming_a_run_whose_time_budget_is_spent_says_so(tmp_path: Path) -> None:
    first, _, _ = _loop(tmp_path / "run", 10**6)
    first.settings = first.settings.model_copy(update={"max_wall_time_s": 1e-6})
    first.run()
    second, _, _ = _loop(tmp_path / "run", 10**6)
    second.settings = second.settings.model_copy(update={"max_wall_time_s": 1e-6})
    with pytest.warns(UserWarning, match="max_wall_time_s"):
        result = second.run(resume=True)
    assert result.iterations == first.iterations and result.stopped_by == "max_wall_time_s"
