"""A CaloGAN model file: saved as data, loaded without unpickling, same showers for a seed whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError
from gansim.io.calo import read_calogan, write_calogan
from gansim.models import load_model
from gansim.models.calogan import CaloGANSettings
from gansim.models.calogan_model import CaloGANModel, save_calogan
from gansim.models.calogan_nets import CaloGANGenerator
from gansim.models.model_file import read_manifest


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CaloGANGenerator, CaloGANSettings]:
    torch.manual_seed(5)
    settings = CaloGANSettings(latent_dim=16)
    generator = CaloGANGenerator(latent_dim=16)
    with torch.no_grad():  # non-trivial BatchNorm statistics, which must travel with the weights
        for stream in generator.streams:
            stream.bn.running_mean.uniform_(-0.1, 0.1)
            stream.bn.running_var.uniform_(0.5, 2.0)
    path = save_calogan(tmp_path_factory.mktemp("m") / "model", generator, settings, extra={"training": {"note": "test"}})
    return path, generator, settings


def test_load_gives_the_same_showers_as_the_saved_generator(saved: tuple[Path, CaloGANGenerator, CaloGANSettings]) -> None:
    path, generator, settings = saved
    manifest = read_manifest(path)
    assert manifest["family"] == "calogan" and manifest["architecture"]["latent_dim"] == 16 and manifest["units"]["cells"] == "MeV"
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, CaloGANModel)
    direct = CaloGANModel(generator, settings, manifest, torch.device("cpu"))
    a, b = loaded.sample(40, seed=3), direct.sample(40, seed=3, batch_size=7)
    np.testing.assert_array_equal(a.energy, b.energy)
    for x, y in zip(a.layers, b.layers):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)  # batched BLAS may round differently
    assert [layer.shape for layer in a.layers] == [(40, 3, 96), (40, 12, 12), (40, 12, 6)]
    assert 1000.0 <= a.energy.min() and a.energy.max() <= 100_000.0  # MeV, uniform 1-100 GeV
    assert all(bool((layer >= 0).all()) for layer in a.layers)
    c = loaded.sample(40, seed=4)
    assert not np.array_equal(a.energy, c.energy)


def test_requested_energies_and_a_round_trip_through_the_calogan_file(saved: tuple[Path, CaloGANGenerator, CaloGANSettings], tmp_path: Path) -> None:
    model = load_model(saved[0], device="cpu")
    showers = model.sample(5, energy_mev=50_000.0, seed=1)
    np.testing.assert_allclose(showers.energy, 50_000.0)
    write_calogan(tmp_path / "gen.h5", showers)
    back = read_calogan(tmp_path / "gen.h5")
    np.testing.assert_allclose(back.energy, 50_000.0, rtol=1e-6)
    np.testing.assert_allclose(back.layers[1], showers.layers[1], rtol=1e-6)
    with pytest.raises(ConfigError, match="energy_mev"):
        model.sample(3, energy_mev=[1.0, 2.0])
    with pytest.raises(ConfigError, match="n"):
        model.sample(-1)
