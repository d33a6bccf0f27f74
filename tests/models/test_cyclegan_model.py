"""The CycleGAN model file: saved and loaded, it translates exactly as the networks that were saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, ModelFileError
from gansim.io.volumes import VolumeScaling
from gansim.models import load_model
from gansim.models.cyclegan_config import InferenceSettings
from gansim.models.cyclegan_model import save_cyclegan
from gansim.models.cyclegan_nets import VolumeNetSettings, build_cyclegan_networks
from gansim.models.volume_inference import translate_volume

SETTINGS = VolumeNetSettings(width=4, n_blocks=1, d_width=4, d_layers=2)
WINDOW = (16, 16, 16)


def _volume(seed: int = 0, shape: tuple[int, int, int] = (21, 19, 18)) -> np.ndarray:
    """A bright ellipsoid in noisy air, an odd shape (padded inside the sliding window)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float64)
    centre = (np.array(shape, float) - 1)[:, None, None, None] / 2
    head = (((grid - centre) / (np.array(shape, float)[:, None, None, None] / 3)) ** 2).sum(axis=0) <= 1
    return np.where(head, rng.uniform(300.0, 900.0, shape), rng.uniform(0.0, 20.0, shape)).astype(np.float32)


def _save(tmp_path: Path, output_scale: str = "input") -> tuple[Path, dict[str, torch.nn.Module]]:
    nets = build_cyclegan_networks(SETTINGS, seed=4)
    domains = {"A": VolumeScaling(10.0, 800.0).to_dict(), "B": VolumeScaling(5.0, 400.0).to_dict()}
    path = save_cyclegan(tmp_path / "model", nets["G_AB"], nets["G_BA"], SETTINGS, paired=True, percentiles=(0.5, 99.5), domain_scaling=domains,
                         inference=InferenceSettings(output_scale=output_scale), window=WINDOW)
    return path, nets


@pytest.mark.parametrize("output_scale", ["input", "domain"])
def test_saved_model_translates_as_the_saved_networks(tmp_path: Path, output_scale: str) -> None:
    path, nets = _save(tmp_path, output_scale)
    model = load_model(path, device="cpu")
    volume = _volume()
    scaling = VolumeScaling.fit(volume, percentiles=(0.5, 99.5))
    for direction, name, target in (("A2B", "G_AB", "B"), ("B2A", "G_BA", "A")):
        with torch.no_grad():
            raw = translate_volume(nets[name].eval(), scaling.forward(volume), WINDOW, overlap=0.5, sw_batch_size=1, device=torch.device("cpu"))
        back = scaling if output_scale == "input" else VolumeScaling.from_dict(model.domain_scaling[target])
        expected = back.inverse(raw).astype(np.float32)
        got = model.translate(volume, direction)
        assert got.shape == volume.shape and got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    # a second load gives the same bits
    np.testing.assert_array_equal(load_model(path, device="cpu").translate(volume, "A2B"), model.translate(volume, "A2B"))
    with pytest.raises(ConfigError, match="direction"):
        model.translate(volume, "A2C")


def test_a_damaged_manifest_is_refused_by_name(tmp_path: Path) -> None:
    path, _ = _save(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["intensity"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="intensity"):
        load_model(path, device="cpu")
