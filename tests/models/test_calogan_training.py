"""The faithful CaloGAN in the one training loop: batches, phases, the energy term, exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.config import TrainingSettings
from gansim.data.calo import make_calo_showers
from gansim.errors import DataError
from gansim.models.calogan import CaloGANConfig, CaloGANObjective, CaloGANSettings, ShowerBatches
from gansim.models.calogan_nets import CaloGANDiscriminator, CaloGANGenerator
from gansim.training.loop import TrainingLoop


@pytest.fixture(scope="module")
def showers() -> tuple[list[np.ndarray], np.ndarray]:
    data = make_calo_showers(48, "eplus", seed=2)
    return data.layers, data.energy


def test_batches_are_in_gev_reshuffled_per_epoch_and_resumable(showers: tuple[list[np.ndarray], np.ndarray]) -> None:
    layers, energy = showers
    src = ShowerBatches(layers, energy, batch_size=16, seed=4, device=torch.device("cpu"))
    images, e = src.next_batch()
    assert [tuple(i.shape) for i in images] == [(16, 3, 96), (16, 12, 12), (16, 12, 6)]
    assert 1.0 <= float(e.min()) and float(e.max()) <= 100.0  # GeV
    seen = [e]
    seen += [src.next_batch()[1] for _ in range(2)]  # one epoch: 48 showers
    np.testing.assert_allclose(np.sort(torch.cat(seen).numpy()), np.sort(energy.astype(np.float32) * 1e-3), rtol=1e-6)
    state = src.state_dict()
    nxt = src.next_batch()[1]
    assert src.epoch == 1
    again = ShowerBatches(layers, energy, batch_size=16, seed=4, device=torch.device("cpu"))
    again.load_state_dict(state)
    torch.testing.assert_close(again.next_batch()[1], nxt)
    with pytest.raises(DataError, match="fewer than batch_size"):
        ShowerBatches(layers, energy, batch_size=64, seed=0, device=torch.device("cpu"))


def _loop(showers: tuple[list[np.ndarray], np.ndarray], run_dir: Path, total_rows: int) -> TrainingLoop:
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = CaloGANConfig(model=CaloGANSettings(latent_dim=16), train=TrainingSettings(batch_size=4, total_rows=total_rows, tick_rows=8, checkpoint_rows=8, progress=False, ema_halflife_rows=None, seed=3))
    device = torch.device("cpu")
    objective = CaloGANObjective(CaloGANGenerator(latent_dim=16), CaloGANDiscriminator(), cfg.model, device, seed=3)
    data = ShowerBatches(*showers, batch_size=4, seed=3, device=device)
    return TrainingLoop(objective, data, cfg.train, cfg.optim, run_dir, device)


def test_paper_schedule_and_settings() -> None:
    cfg = CaloGANConfig()
    assert cfg.train.batch_size == 256 and cfg.model.latent_dim == 1024 and cfg.model.lambda_energy == 0.05
    assert cfg.optim["D"].lr == 2e-5 and cfg.optim["G"].lr == 2e-4 and cfg.optim["G"].betas[0] == 0.5
    objective = CaloGANObjective(CaloGANGenerator(latent_dim=16), CaloGANDiscriminator(), CaloGANSettings(latent_dim=16), torch.device("cpu"), seed=0)
    assert [(p.name, p.network, p.repeats, p.needs_batch) for p in objective.phases] == [("D_real", "D", 1, True), ("D_fake", "D", 1, False), ("G", "G", 2, False)]


def test_training_steps_every_network_and_resume_equals_uninterrupted(showers: tuple[list[np.ndarray], np.ndarray], tmp_path: Path) -> None:
    full = _loop(showers, tmp_path / "full", 16)
    before = {k: v.clone() for k, v in full.objective.networks["D"].state_dict().items()}
    g_before = {k: v.clone() for k, v in full.objective.networks["G"].state_dict().items()}
    result = full.run()
    assert result.rows_seen == 16 and result.iterations == 4  # one real batch of 4 per iteration
    assert np.isfinite(result.last_stats["loss/G"]) and "G/energy_MAE_GeV" in result.last_stats
    assert any(not torch.equal(before[k], v) for k, v in full.objective.networks["D"].state_dict().items())
    assert any(not torch.equal(g_before[k], v) for k, v in full.objective.networks["G"].state_dict().items())

    _loop(showers, tmp_path / "split", 8).run()
    resumed = _loop(showers, tmp_path / "split", 16)
    resumed.run(resume=True)
    for name in ("G", "D"):
        a, b = full.objective.networks[name].state_dict(), resumed.objective.networks[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
