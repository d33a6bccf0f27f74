"""The shower report: one particle against itself looks alike, e+ against photons does not; report and JSON written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.data.calo import make_calo_showers
from gansim.io.calo import write_calogan
from gansim.metrics.calo_report import compare_showers, write_shower_report

SMALL = {"hidden": 64, "epochs": 10}


@pytest.fixture(scope="module")
def samples() -> dict[str, object]:
    return {
        "e1": make_calo_showers(600, "eplus", seed=1).to_shower_data(),
        "e2": make_calo_showers(600, "eplus", seed=2).to_shower_data(),
        "g": make_calo_showers(600, "gamma", seed=3).to_shower_data(),
    }


def test_same_particle_alike_and_photons_apart(samples: dict, tmp_path: Path) -> None:
    same, _ = compare_showers(samples["e1"], samples["e2"], classifier=SMALL)
    other, plots = compare_showers(samples["e1"], samples["g"], classifier=SMALL)
    clf = same["classifier_high"]
    assert abs(clf["auc"] - 0.5) < 4 * clf["null_se"], clf
    # photons convert 9/7 X0 deep on average: less energy in layer 0, the clearest difference
    assert other["variables"]["f0"]["separation_power"] > 3 * same["variables"]["f0"]["separation_power"]
    assert other["variables"]["f0"]["gen_mean"] < other["variables"]["f0"]["ref_mean"]
    assert other["classifier_high"]["auc"] > clf["auc"] + 3 * clf["null_se"]
    report = write_shower_report(tmp_path / "rep", other, plots, title="e+ vs photons")
    assert report.read_text().count("data:image/png;base64") == 2
    stored = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(stored["variables"]) == set(other["variables"]) and len(stored["response"]["reference"]["response"]) == 5


def test_compare_command_on_shower_files(samples: dict, tmp_path: Path) -> None:
    from gansim.io.calo import ShowerData

    def head(data: ShowerData, k: int = 120) -> ShowerData:  # the command runs the full-size classifier: keep it small
        return ShowerData(data.layout, data.geometry, data.energy[:k], [a[:k] for a in data.layers], data.overflow[:k])

    write_calogan(tmp_path / "a.h5", head(samples["e1"]))
    write_calogan(tmp_path / "b.h5", head(samples["e2"]))
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "classifier AUC (high-level)" in result.output and (tmp_path / "cmp" / "report.html").is_file()
    again = CliRunner().invoke(app, ["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "cmp")])
    assert again.exit_code == 2 and "--force" in again.output
    assert np.isfinite(json.loads((tmp_path / "cmp" / "metrics.json").read_text())["classifier_high"]["auc"])
