"""The evaluation end to end: report after training, metrics in the manifest, `gansim compare`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.config import parse_config
from gansim.data.linac import generate_linac_phsp
from gansim.io.phsp import write_table
from gansim.models.phsp_gan import PhaseSpaceGANConfig
from gansim.models.phsp_train import train_phase_space

from conftest import tiny_config


@pytest.fixture(autouse=True)
def _one_openmp_thread():  # type: ignore[no-untyped-def]
    # gradient boosting oversubscribes 2 shared cores badly; one thread keeps the suite fast
    with threadpool_limits(limits=1):
        yield


def test_report_after_training(tmp_path: Path) -> None:
    write_table(tmp_path / "linac.npz", generate_linac_phsp(6000, seed=1))
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(train={"total_rows": 2048, "evaluate": True, "validation_fraction": 0.2}))
    model_dir = train_phase_space(tmp_path / "linac.npz", cfg, tmp_path / "run", force=True, log=lambda *_: None)
    report = tmp_path / "run" / "report" / "report.html"
    page = report.read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) >= 3  # 1-D, 2-D, training curves
    assert "PrePosition_X" in page and "classifier two-sample AUC" in page and "held-out" in page
    metrics = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())
    assert set(metrics["wasserstein"]) == {"KineticEnergy", "PrePosition_X", "PrePosition_Y", "PreDirection_X", "PreDirection_Y", "PreDirection_Z"}
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["metrics"]["evaluated_on"] == "held-out rows"
    assert manifest["constants"]["PDGCode"] == 22  # one particle type in the file: kept as a constant
    assert 0.5 <= manifest["metrics"]["classifier_auc"] <= 1.0
    # the manifest rewrite keeps the weights' checksum valid
    from gansim.models import load_model

    load_model(model_dir, device="cpu")


def test_compare_identical_distributions(tmp_path: Path) -> None:
    """Two independent samples of the same distribution: AUC within 5 null sigma of 0.5, small distances."""
    write_table(tmp_path / "a.root", generate_linac_phsp(4000, seed=1))
    write_table(tmp_path / "b.npy", generate_linac_phsp(4000, seed=2))
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a.root"), str(tmp_path / "b.npy"), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    clf = metrics["classifier"]
    assert abs(clf["auc"] - 0.5) <= 5 * clf["null_se"]
    assert "PDGCode" not in metrics["wasserstein"]  # constant in both: nothing to compare
    assert (tmp_path / "rep" / "report.html").exists()
    again = CliRunner().invoke(app, ["compare", str(tmp_path / "a.root"), str(tmp_path / "b.npy"), "-o", str(tmp_path / "rep")])
    assert again.exit_code == 2 and "--force" in again.output


def test_compare_per_condition_bin(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for name, shift in (("ref", 0.0), ("gen", 0.0)):
        c = rng.uniform(0, 1, 3000)
        table = {"A": (2 * c + rng.normal(0, 0.2, 3000) + shift).astype(np.float32), "C": c.astype(np.float32)}
        write_table(tmp_path / f"{name}.npz", table)
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "ref.npz"), str(tmp_path / "gen.npz"), "--cond", "C", "--bins", "3", "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["keys"] == ["A"] and len(metrics["per_condition_bin"]) == 3
    assert "Per condition bin" in (tmp_path / "rep" / "report.html").read_text()
