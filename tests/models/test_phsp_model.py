"""Phase-space GAN contract: shapes, gradients, model files (no pickle), sampling by name, reproducibility."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.config import parse_config
from gansim.errors import DataError, ModelFileError
from gansim.models import load_model
from gansim.models.model_file import read_manifest
from gansim.models.phsp_gan import PhaseSpaceGANConfig, PhaseSpaceNetworkSettings, build_networks
from gansim.models.phsp_train import train_phase_space

from conftest import tiny_config


@pytest.fixture
def trained(gaussian_npy: Path, tmp_path: Path) -> Path:
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(train={"total_rows": 2048}))
    return train_phase_space(gaussian_npy, cfg, tmp_path / "run", force=True, log=lambda *_: None)


@pytest.fixture
def conditional_npy(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    n = 3000
    arr = np.zeros(n, dtype=[("A", "<f4"), ("E", "<f4"), ("Z0", "<f4"), ("C", "<f4")])
    arr["C"] = rng.uniform(1, 2, n)
    arr["A"] = rng.normal(arr["C"], 0.1)
    arr["E"] = rng.uniform(0.1, 1.0, n)
    arr["Z0"] = 42.5  # constant column: reproduced exactly
    path = tmp_path / "cond.npy"
    np.save(path, arr)
    return path


@pytest.mark.parametrize("n_cond", [0, 2])
def test_networks_shapes_and_gradients(n_cond: int) -> None:
    settings = PhaseSpaceNetworkSettings(z_dim=3, g_width=8, g_depth=2, d_width=8, d_depth=1, spectral_norm=True)
    g, d = build_networks(settings, n_x=3, n_cond=n_cond)
    z, c = torch.randn(5, 3), (torch.randn(5, n_cond) if n_cond else None)
    x = g(z, c)
    assert x.shape == (5, 3)
    logits = d(x, c)
    assert logits.shape == (5,)
    logits.sum().backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_manifest_contents(trained: Path) -> None:
    manifest = read_manifest(trained)
    assert manifest["format"] == "gansim-model" and manifest["format_version"] == 1
    assert manifest["family"] == "phsp"
    assert [k["name"] for k in manifest["keys"]] == ["X", "Y"]
    assert manifest["latent"] == {"dim": 4, "distribution": "normal", "low": -1.0, "high": 1.0}
    data = manifest["training"]["data"]
    assert len(data["sha256"]) == 64 and data["rows"] == 4000
    assert data["train_rows"] + data["heldout_rows"] == 4000
    assert data["validation"]["seed"] == 12345
    assert manifest["transforms"]["x"]["steps"][-1]["kind"] == "zscore"
    assert manifest["training"]["wall_time_s"] > 0


def test_load_and_sample_round_trip(trained: Path) -> None:
    model = load_model(trained, device="cpu")
    a = model.sample(1000, generator=torch.Generator().manual_seed(5))
    b = load_model(trained, device="cpu").sample(1000, generator=torch.Generator().manual_seed(5))
    assert set(a) == {"X", "Y"} and a["X"].dtype == np.float32 and a["X"].shape == (1000,)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_seeded_sampling_does_not_depend_on_batch_size(trained: Path) -> None:
    model = load_model(trained, device="cpu")
    a = model.sample(70_000, seed=3, batch_size=70_000)
    b = model.sample(70_000, seed=3, batch_size=9_999)
    c = model.sample(70_000, seed=4, batch_size=9_999)
    np.testing.assert_allclose(a["X"], b["X"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a["X"], c["X"])


def test_uniform_latent_is_honoured(gaussian_npy: Path, tmp_path: Path) -> None:
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(model={"latent": "uniform"}, train={"total_rows": 1024}))
    model_dir = train_phase_space(gaussian_npy, cfg, tmp_path / "u", force=True, log=lambda *_: None)
    model = load_model(model_dir, device="cpu")
    assert model.latent["distribution"] == "uniform"
    z = model._latent(10_000, None, 0, 0)
    assert float(z.min()) >= -1.0 and float(z.max()) < 1.0 and abs(float(z.mean())) < 0.05


def test_conditions_by_name_and_constant_columns(conditional_npy: Path, tmp_path: Path) -> None:
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(data={"cond_keys": ["C"]}, train={"total_rows": 1024}))
    model = load_model(train_phase_space(conditional_npy, cfg, tmp_path / "c", force=True, log=lambda *_: None), device="cpu")
    assert model.cond_keys == ["C"] and model.keys == ["A", "E", "Z0"]
    out = model.sample(500, cond={"C": 1.5}, seed=1)
    assert np.all(out["Z0"] == np.float32(42.5))
    per_row = model.sample(500, cond={"C": np.full(500, 1.5)}, seed=1)
    np.testing.assert_array_equal(out["A"], per_row["A"])
    with pytest.raises(DataError, match="needs conditions"):
        model.sample(10)
    with pytest.raises(DataError, match=r"unknown condition\(s\) \['D'\]"):
        model.sample(10, cond={"C": 1.0, "D": 2.0})
    with pytest.raises(DataError, match="NaN"):
        model.sample(3, cond={"C": [1.0, np.nan, 1.0]})


def test_pickle_model_files_are_refused(tmp_path: Path) -> None:
    pth = tmp_path / "gaga.pth"
    torch.save({"params": {"keys": "X Y"}, "g_model_state": {}}, pth)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(pth)
    # a hostile pickle is never executed
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Hostile(), protocol=4))
    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(evil)
    assert not marker.exists()


def test_corrupt_or_tampered_model_files(trained: Path, tmp_path: Path) -> None:
    weights = trained / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(trained)
    manifest = trained / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["format_version"] = 99
    manifest.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="format_version"):
        load_model(trained)
    manifest.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(trained)
    with pytest.raises(ModelFileError, match="no such model"):
        load_model(tmp_path / "missing")
