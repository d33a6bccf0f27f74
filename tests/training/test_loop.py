"""The generic loop: exact resume, NaN/Inf stop, stats, phases, schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gansim.config import OptimizerSettings, lr_factor, parse_config
from gansim.errors import TrainingDivergedError
from gansim.models.phsp_gan import PhaseSpaceGANConfig
from gansim.models.phsp_train import train_phase_space
from gansim.training.checkpoint import list_checkpoints
from gansim.training.stats import read_stats

from conftest import tiny_config


def _train(data: Path, run: Path, *, resume: bool = False, **sections: dict) -> Path:
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(**sections))
    return train_phase_space(data, cfg, run, resume=resume, force=not resume, log=lambda *_: None)


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "weights.safetensors"))


@pytest.mark.parametrize("stop", [4096, 5000], ids=["stop-on-tick", "stop-between-ticks"])
@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_resume_equals_uninterrupted(gaussian_npy: Path, tmp_path: Path, streamed: bool, stop: int) -> None:
    """Stopping part way and resuming gives the same curve and the same final weights, bit for bit."""
    extra = {"in_memory_max_rows": 10, "chunk_rows": 1000} if streamed else {}
    full = _train(gaussian_npy, tmp_path / "full", train={"total_rows": 8192, **extra})
    _train(gaussian_npy, tmp_path / "split", train={"total_rows": stop, **extra})
    resumed = _train(gaussian_npy, tmp_path / "split", resume=True, train={"total_rows": 8192, **extra})
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest["training"]["resumed_from"].endswith(f"ckpt-{((stop + 511) // 512) * 512:012d}")
    a, b = read_stats(tmp_path / "full"), read_stats(tmp_path / "split")
    assert [r["rows_seen"] for r in a] == [r["rows_seen"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("loss/D", "loss/G", "D/real", "D/fake", "D/penalty"):
            assert ra[key] == rb[key], (ra["rows_seen"], key)
    wa, wb = _weights(full), _weights(resumed)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_resume_needs_a_checkpoint(gaussian_npy: Path, tmp_path: Path) -> None:
    from gansim.errors import ConfigError

    with pytest.raises(ConfigError, match="config.json"):
        _train(gaussian_npy, tmp_path / "none", resume=True)


def test_nan_stops_with_clear_message_and_keeps_last_checkpoint(gaussian_npy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loss that turns NaN after the first checkpoint stops the run; the good checkpoint stays."""
    import gansim.models.phsp_gan as phsp

    original = phsp.PhaseSpaceObjective.loss
    calls = {"n": 0}

    def poisoned(self, phase, batch, nets):  # type: ignore[no-untyped-def]
        loss, extra = original(self, phase, batch, nets)
        calls["n"] += 1
        if calls["n"] > 30:  # 4096 rows = 16 iterations × 3 steps = 48 calls; poison after the first checkpoint
            loss = loss * float("nan")
        return loss, extra

    monkeypatch.setattr(phsp.PhaseSpaceObjective, "loss", poisoned)
    run = tmp_path / "nan"
    with pytest.raises(TrainingDivergedError, match="NaN/Inf") as info:
        _train(gaussian_npy, run, train={"tick_rows": 1024, "checkpoint_rows": 1024})
    ckpts = list_checkpoints(run)
    assert ckpts, "the last good checkpoint must be kept"
    assert str(ckpts[-1]) in str(info.value)
    assert not (run / "model").exists()


def test_stats_file_and_phases(gaussian_npy: Path, tmp_path: Path) -> None:
    _train(gaussian_npy, tmp_path / "r", loss={"d_steps": 3, "g_steps": 2})
    records = read_stats(tmp_path / "r")
    assert records[-1]["rows_seen"] >= 8192
    # 3 D steps × 256 rows per iteration, G reuses the last batch: 768 rows per iteration
    assert records[-1]["rows_seen"] == records[-1]["iterations"] * 3 * 256
    assert all(np.isfinite(r["loss/D"]) and r["rows_per_s"] > 0 for r in records)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["loss"]["d_steps"] == 3


@pytest.mark.parametrize("penalty", ["none", "clamp", "two_sided", "one_sided", "zero_centred", "square_hinge", "r1"])
@pytest.mark.parametrize("adversarial", ["wasserstein", "hinge", "non_saturating"])
def test_every_loss_and_penalty_trains(gaussian_npy: Path, tmp_path: Path, adversarial: str, penalty: str) -> None:
    _train(gaussian_npy, tmp_path / "r", loss={"adversarial": adversarial, "penalty": penalty}, train={"total_rows": 1024, "tick_rows": 512})
    assert read_stats(tmp_path / "r")[-1]["rows_seen"] >= 1024


def test_clamp_keeps_d_weights_in_bounds(gaussian_npy: Path, tmp_path: Path) -> None:
    _train(gaussian_npy, tmp_path / "r", loss={"penalty": "clamp", "clamp": [-0.02, 0.02]}, train={"total_rows": 1024})
    weights = _weights(tmp_path / "r" / "model")
    d = [v for k, v in weights.items() if k.startswith("discriminator.")]
    assert d and all(float(v.abs().max()) <= 0.02 + 1e-7 for v in d)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_optimizers_and_schedules(gaussian_npy: Path, tmp_path: Path, optimizer: str) -> None:
    _train(
        gaussian_npy,
        tmp_path / "r",
        optim={"G": {"name": optimizer, "lr": 1e-3, "scheduler": "step", "step_rows": 2048, "gamma": 0.5}, "D": {"name": optimizer, "lr": 2e-3}},
        train={"total_rows": 4096, "tick_rows": 1024},
    )
    records = read_stats(tmp_path / "r")
    assert records[0]["lr/D"] == pytest.approx(2e-3)
    assert records[-1]["lr/G"] < 1e-3


def test_lr_factor_shapes() -> None:
    step = OptimizerSettings(scheduler="step", step_rows=100, gamma=0.5)
    assert lr_factor(step, 99, 1000) == 1.0 and lr_factor(step, 250, 1000) == 0.25
    cos = OptimizerSettings(scheduler="cosine", min_lr_factor=0.1)
    assert lr_factor(cos, 0, 1000) == pytest.approx(1.0) and lr_factor(cos, 1000, 1000) == pytest.approx(0.1)
    exp = OptimizerSettings(scheduler="exponential", step_rows=100, gamma=0.5)
    assert lr_factor(exp, 50, 1000) == pytest.approx(0.5**0.5)
    floored = OptimizerSettings(scheduler="exponential", step_rows=100, gamma=0.5, min_lr_factor=0.05)
    assert lr_factor(floored, 300, 1000) == pytest.approx(0.125) and lr_factor(floored, 1000, 1000) == 0.05  # 0.5**10 < 0.05
    linear = OptimizerSettings(scheduler="linear", decay_start=0.5)  # CycleGAN's: constant for half the run, then linearly to 0
    assert [lr_factor(linear, r, 1000) for r in (0, 500, 750, 1000, 2000)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    floor = OptimizerSettings(scheduler="linear", decay_start=0.0, min_lr_factor=0.2)
    assert lr_factor(floor, 500, 1000) == pytest.approx(0.6) and lr_factor(floor, 1000, 1000) == pytest.approx(0.2)


@pytest.mark.parametrize(("given", "mode"), [(True, "bf16"), (False, "off"), ("float16", "fp16"), ("BF16", "bf16"), ("half", "fp16"), ("off", "off")])
def test_amp_modes_accept_the_boolean_switch_and_aliases(given: object, mode: str) -> None:
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(train={"amp": given}))
    assert cfg.train.amp == mode


def test_amp_mode_unknown_is_a_config_error() -> None:
    from gansim.errors import ConfigError

    with pytest.raises(ConfigError, match="amp"):
        parse_config(PhaseSpaceGANConfig, tiny_config(train={"amp": "fp8"}))


def test_fp16_scalers_are_used_checkpointed_and_resumed_exactly(gaussian_npy: Path, tmp_path: Path) -> None:
    """fp16 autocast (here on the CPU) runs each network's steps through its own GradScaler; the scalers'
    state is in every checkpoint, and a resumed run ends with the same weights, bit for bit."""
    from gansim.training.checkpoint import load_checkpoint

    amp = {"amp": "fp16"}
    full = _train(gaussian_npy, tmp_path / "full", train={"total_rows": 8192, **amp})
    _train(gaussian_npy, tmp_path / "split", train={"total_rows": 5000, **amp})
    resumed = _train(gaussian_npy, tmp_path / "split", resume=True, train={"total_rows": 8192, **amp})
    wa, wb = _weights(full), _weights(resumed)
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    state = load_checkpoint(list_checkpoints(tmp_path / "full")[-1])
    assert set(state["scalers"]) == {"G", "D"}
    for name, scaler in state["scalers"].items():
        # steps went through the scaler: finite steps since the last back-off are counted; the scale is a power of 2
        assert scaler["_growth_tracker"] > 0, name
        assert math.log2(scaler["scale"]).is_integer(), (name, scaler["scale"])
    # autocast really ran: float16 arithmetic ends elsewhere than float32 from the same seed
    plain = _weights(_train(gaussian_npy, tmp_path / "fp32", train={"total_rows": 8192}))
    assert any(not torch.equal(wa[key], plain[key]) for key in wa)
