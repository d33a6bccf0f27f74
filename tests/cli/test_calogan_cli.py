"""CaloGAN from the command line: train recognises a CaloGAN file, duplicates and the split are recorded, generate writes showers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.data.calo import make_calo_showers
from gansim.io.calo import ShowerData, read_calogan, write_calogan
from gansim.models import load_model
from gansim.models.model_file import read_manifest

runner = CliRunner()


def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_train_generate_info_on_a_calogan_file(tmp_path: Path) -> None:
    showers = make_calo_showers(60, "gamma", seed=1).to_shower_data()
    rows = np.r_[np.arange(60), [5, 7]]  # two exact duplicates, as the original CaloGAN files have
    data = ShowerData(showers.layout, showers.geometry, showers.energy[rows], [a[rows] for a in showers.layers], showers.overflow[rows])
    write_calogan(tmp_path / "gamma.h5", data)
    run = tmp_path / "run"
    args = ("train", tmp_path / "gamma.h5", "-o", run, "--total-rows", 16, "--batch-size", 4, "--seed", 2,
            "--set", "model.latent_dim=16", "--set", "train.progress=false", "--set", "train.tick_rows=8", "--set", "train.checkpoint_rows=8")
    code, text = _run(*args)
    assert code == 0, text
    assert "2 exact duplicate shower(s)" in text and "train 48, validation 6, test 6" in text
    manifest = read_manifest(run / "model")
    split = manifest["training"]["data"]["split"]
    assert manifest["family"] == "calogan" and split["seed"] == 12345 and split["rows"] == {"test": 6, "validation": 6, "train": 48}
    assert manifest["training"]["data"]["duplicates"] == 2 and manifest["training"]["rows_seen"] == 16

    code, text = _run("generate", run / "model", "-n", 9, "-o", tmp_path / "gen.h5", "--seed", 4, "--cond", "energy=20")
    assert code == 0, text
    gen = read_calogan(tmp_path / "gen.h5")
    np.testing.assert_allclose(gen.energy, 20_000.0)
    model = load_model(run / "model", device="cpu")
    direct = model.sample(9, 20_000.0, seed=4)
    np.testing.assert_allclose(gen.layers[0], direct.layers[0], rtol=1e-5, atol=1e-6)

    code, text = _run("info", run / "model")
    assert code == 0 and "calogan" in text and "split" in text
    code, text = _run("train", tmp_path / "gamma.h5", "-o", run)
    assert code == 2 and "--resume" in text
    code, text = _run("generate", run / "model", "-n", 3, "-o", tmp_path / "gen.npy", "--seed", 1)
    assert code == 2 and "HDF5" in text
    assert json.loads((run / "data.json").read_text())["duplicates_removed"] is True


def test_sampling_in_pieces_gives_the_same_showers(tmp_path: Path) -> None:
    from gansim.models.calogan import CaloGANSettings
    from gansim.models.calogan_model import CaloGANModel
    from gansim.models.shower_sampling import SAMPLE_BLOCK_ROWS
    from gansim.models.calogan_nets import CaloGANGenerator

    import torch

    torch.manual_seed(0)
    model = CaloGANModel(CaloGANGenerator(latent_dim=8), CaloGANSettings(latent_dim=8), {}, torch.device("cpu"))
    whole = model.sample(SAMPLE_BLOCK_ROWS + 10, seed=9)
    piece = model.sample(20, seed=9, first=SAMPLE_BLOCK_ROWS - 10)
    np.testing.assert_array_equal(piece.energy, whole.energy[SAMPLE_BLOCK_ROWS - 10 : SAMPLE_BLOCK_ROWS + 10])
    np.testing.assert_allclose(piece.layers[2], whole.layers[2][SAMPLE_BLOCK_ROWS - 10 : SAMPLE_BLOCK_ROWS + 10], rtol=1e-5, atol=1e-6)


def test_evaluation_after_training_stores_every_score_in_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training ends with the report on the validation showers; the manifest's metrics hold the separation power and KS
    of every shower-shape variable, both classifier AUCs with their errors, FPD and KPD, and the response bins."""
    import functools

    from gansim.metrics import calo_classifier, calo_report
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES, calogan_shower_shapes

    # CaloChallenge's full-size classifier (2048 units, 50 epochs) takes ~10 s per run on one core: a small one tests the same wiring
    monkeypatch.setattr(calo_classifier, "classifier_test", functools.partial(calo_classifier.classifier_test, hidden=32, epochs=3))
    # the figures (~6 s of drawing) are checked in tests/metrics/test_calo_report.py and by the test above: here the numbers
    monkeypatch.setattr(calo_report, "_figures", lambda metrics, plots: [])
    monkeypatch.setattr(calo_report, "_response_figure", lambda metrics, layout: "")
    showers = make_calo_showers(140, "eplus", seed=4).to_shower_data()
    write_calogan(tmp_path / "e.h5", showers)
    run = tmp_path / "run"
    # 112 validation showers: over the 100 that FPD and KPD need (and the classifiers' 50)
    code, text = _run("train", tmp_path / "e.h5", "-o", run, "--total-rows", 8, "--batch-size", 4, "--set", "model.latent_dim=8",
                      "--set", "data.validation_fraction=0.8", "--set", "data.test_fraction=0.05",
                      "--set", "train.progress=false", "--set", "train.tick_rows=8", "--set", "train.checkpoint_rows=8")
    assert code == 0, text
    assert "validation 112" in text and "report:" in text
    metrics = read_manifest(run / "model")["metrics"]
    variables = set(calogan_shower_shapes([a[:2] for a in showers.layers], showers.energy[:2]))
    assert set(metrics["separation_power"]) == set(metrics["ks"]) == variables
    assert {"width_eta_0", "sparsity_cc_2", "width_phi_1", "sparsity_0"} <= variables
    assert all(v is None or 0 <= v <= 1 for v in [*metrics["separation_power"].values(), *metrics["ks"].values()])
    assert metrics["paper_variables"] == list(CALOGAN_PAPER_VARIABLES) and 0 <= metrics["mean_separation_power_paper"] <= 1
    for level in ("low", "high"):
        assert 0 <= metrics[f"classifier_{level}_auc"] <= 1 and metrics[f"classifier_{level}_auc_se"] > 0
    for name in ("fpd", "kpd"):
        assert isinstance(metrics[name]["value"], float) and metrics[name]["error"] >= 0
    response = metrics["response"]
    assert len(response["energy_edges_MeV"]) == 6
    for sample in ("reference", "generated"):
        assert sum(response[sample]["n"]) == 112
        assert all(len(response[sample][k]) == 5 for k in ("response", "resolution", "response_error", "resolution_error"))
    assert metrics["evaluated_on"] == "validation showers" and metrics["n_reference"] == 112
    assert (run / "report" / "report.html").is_file() and metrics["report"].endswith("report.html")
    json.dumps(metrics, allow_nan=False)  # strict JSON: empty bins are null, not NaN
    # gansim info shows the headline numbers in words (the table wraps them; the line is checked whole)
    from gansim.cli.main import _shower_metrics_line

    line = _shower_metrics_line(metrics)
    assert f"classifier AUC high-level {metrics['classifier_high_auc']:.3f}" in line and "on the 112 validation showers" in line
    assert f"FPD {metrics['fpd']['value']:.4g}" in line and "report " in line
    code, text = _run("info", run / "model")
    assert code == 0 and "metrics" in text and "classifier AUC" in text
