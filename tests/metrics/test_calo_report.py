"""The shower report: one particle against itself looks alike, e+ against photons does not; report and JSON written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.data.calo import make_calo_showers
from gansim.errors import DataError
from gansim.io.calo import ShowerData, write_calogan
from gansim.io.calo_geometry import CylindricalGeometry, CylindricalLayer
from gansim.metrics.calo_report import compare_showers, shower_metrics_summary, write_shower_report
from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES

SMALL = {"hidden": 64, "epochs": 10}
#: For the toy cylindrical showers: batches of 128 give the small network ~150 Adam steps on the
#: 960 training showers (SMALL's batch of 1000 gives one step per epoch, too few to learn a sum of cells).
CYL = {"hidden": 64, "epochs": 20, "batch_size": 128}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> object:
    """The classifiers here are tiny (64 units): one thread is enough, and when the two cores are shared
    with another process two threads wait on each other every step (measured 25x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _headings(text: str) -> list[str]:
    """The report's <h2> and <h3> headings, in order (HTML entities decoded)."""
    import html

    return [html.unescape(h) for h in re.findall(r"<h[23][^>]*>([^<]*)</h[23]>", text)]


def _images(text: str) -> list[str]:
    """The alt texts of the report's embedded PNG figures, in order (each must be a real embedded image)."""
    import html

    tags = re.findall(r"<img [^>]*>", text)
    assert all("src=\"data:image/png;base64," in t for t in tags)
    return [html.unescape(a) for t in tags for a in re.findall(r'alt="([^"]*)"', t)]


def _section(text: str, heading_id: str) -> str:
    """The HTML of one <h2 id=...> section, up to the next <h2>."""
    start = text.index(f"<h2 id='{heading_id}'>")
    end = text.find("<h2", start + 1)
    return text[start:end if end >= 0 else len(text)]


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
    text = report.read_text()
    assert _headings(text) == [
        "Summary", "Shower-shape variables", "The CaloGAN paper's variables", "Further variables", "Response and resolution vs energy",
        "Distributions", "Histograms: the CaloGAN paper's variables", "Histograms: further variables", "Mean shower images per layer", "Numbers (JSON)",
    ]
    assert _images(text) == [
        "calogan: response and resolution versus incident energy, reference and generated",
        "calogan: histograms of the CaloGAN paper's shower-shape variables",
        "calogan: histograms of the further shower-shape variables",
        "calogan: mean shower image per layer, reference and generated",
    ]
    # the response figure sits in its section, beside the table; the further variables have their own table rows
    assert "response and resolution versus incident energy" in _section(text, "response")
    assert "<td>width_eta_2</td>" in _section(text, "variables") and "<td>sparsity_cc_0</td>" in _section(text, "variables")
    assert "mean separation power, the CaloGAN paper&#x27;s variables" in _section(text, "summary")
    stored = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(stored["variables"]) == set(other["variables"]) and len(stored["response"]["reference"]["response"]) == 5
    assert stored["paper_variables"] == list(CALOGAN_PAPER_VARIABLES)


def test_every_calogan_variable_is_scored_the_papers_first(samples: dict) -> None:
    """Every variable calogan_shower_shapes returns gets a separation power and a KS; the paper's set leads and is named."""
    from gansim.metrics.calo_shapes import calogan_shower_shapes

    e1, g = samples["e1"], samples["g"]
    metrics, _ = compare_showers(e1, g, classifier=SMALL, fpd_kpd=False)
    shapes = calogan_shower_shapes(e1.layers, e1.energy)
    keys = list(metrics["variables"])
    assert set(keys) == set(shapes) and len(keys) == len(shapes)
    assert metrics["paper_variables"] == list(CALOGAN_PAPER_VARIABLES) == keys[: len(CALOGAN_PAPER_VARIABLES)]
    # the variables the paper's set leaves out come next, grouped by kind with the layers in order
    n = len(CALOGAN_PAPER_VARIABLES)
    assert keys[n : n + 7] == ["etot_over_einc", "width_eta_0", "width_eta_1", "width_eta_2", "sparsity_cc_0", "sparsity_cc_1", "sparsity_cc_2"]
    for key in ("width_eta_0", "width_eta_1", "width_eta_2", "sparsity_cc_0", "sparsity_cc_1", "sparsity_cc_2", "ec_phi_1", "brightest_1_0"):
        score = metrics["variables"][key]
        assert 0 <= score["separation_power"] <= 1 and 0 <= score["ks"] <= 1, key
    # CaloChallenge's sparsity is 1 - CaloGAN's: the same separation (on its own bins) and exactly the same KS
    for i in range(3):
        cc, paper = metrics["variables"][f"sparsity_cc_{i}"], metrics["variables"][f"sparsity_{i}"]
        assert cc["ks"] == pytest.approx(paper["ks"]) and cc["ref_mean"] == pytest.approx(1 - paper["ref_mean"])
    # photons start deeper: layer 0's lateral width differs along eta, the axis the paper's set leaves out, as along phi
    assert metrics["variables"]["width_eta_0"]["separation_power"] > 0.05
    summary = shower_metrics_summary(metrics)
    paper_sp = [metrics["variables"][k]["separation_power"] for k in CALOGAN_PAPER_VARIABLES]
    assert summary["mean_separation_power_paper"] == pytest.approx(np.nanmean(paper_sp), rel=1e-5)


def test_compare_command_on_shower_files(samples: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import gansim.metrics.calo_classifier as calo_classifier

    # the command runs CaloChallenge's full-size classifier (2048 units, 50 epochs) twice, high and
    # low level, ~12 s each on 2 cores whatever the sample size: a small one tests the same wiring
    monkeypatch.setattr(calo_classifier, "classifier_test", functools.partial(calo_classifier.classifier_test, **SMALL))

    def head(data: ShowerData, k: int = 120) -> ShowerData:
        return ShowerData(data.layout, data.geometry, data.energy[:k], [a[:k] for a in data.layers], data.overflow[:k])

    write_calogan(tmp_path / "a.h5", head(samples["e1"]))
    write_calogan(tmp_path / "b.h5", head(samples["e2"]))
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "classifier AUC (high-level)" in result.output and (tmp_path / "cmp" / "report.html").is_file()
    again = CliRunner().invoke(app, ["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "cmp")])
    assert again.exit_code == 2 and "--force" in again.output
    stored = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    assert np.isfinite(stored["classifier_high"]["auc"]) and np.isfinite(stored["classifier_low"]["auc"])


# ----------------------------------------------------------------------------------------------
# CaloChallenge (cylindrical) layouts


def _tiny_geometry(name: str = "tiny-cylinder", r_edges: tuple[float, ...] = (0.0, 4.0, 10.0, 25.0)) -> CylindricalGeometry:
    """3 layers x 4 alpha x 3 r (36 voxels): fast, and enough for every per-layer variable."""
    return CylindricalGeometry(name, tuple(CylindricalLayer(r_edges, 4) for _ in range(3)), layer_thickness=10.0)


def _toy_showers(n: int, seed: int, geometry: CylindricalGeometry, scale: float = 1.0) -> ShowerData:
    """Toy cylindrical showers: E_inc log-uniform in 1-100 GeV, 90 % of it visible, shared between the
    layers by a Dirichlet draw, exponential in r with a per-shower Moliere-like radius, Gamma
    fluctuations per voxel and a readout threshold (so that sparsity varies); ``scale`` multiplies
    every cell (a generator with the wrong energy scale)."""
    rng = np.random.default_rng(seed)
    energy = 10.0 ** rng.uniform(3.0, 5.0, n)
    layer_energy = 0.9 * energy[:, None] * rng.dirichlet([30.0, 50.0, 20.0], size=n)
    showers = []
    for i, layer in enumerate(geometry.layers):
        radius = rng.uniform(3.0, 6.0, size=(n, 1)) * (1 + 0.5 * i)
        r = np.tile(layer.r_centres(), layer.n_alpha)[None, :]
        weights = np.exp(-r / radius) * rng.gamma(4.0, 0.25, size=(n, layer.n_cells))
        cells = layer_energy[:, i:i + 1] * weights / weights.sum(axis=1, keepdims=True)
        showers.append(np.where(cells < 5.0, 0.0, cells))  # MeV readout threshold
    cells = scale * np.concatenate(showers, axis=1)
    return ShowerData(geometry.name, geometry, energy, [cells.astype(np.float32)])


def _within_null(clf: dict) -> bool:
    """AUC of two samples of one distribution: 0.5 within 4 sigma of the null spread."""
    return abs(clf["auc"] - 0.5) < 4 * clf["null_se"]


def test_cylindrical_identical_samples_alike() -> None:
    geometry = _tiny_geometry()
    metrics, _ = compare_showers(_toy_showers(800, 1, geometry), _toy_showers(800, 2, geometry), classifier=CYL, fpd_kpd=False)
    assert _within_null(metrics["classifier_high"]), metrics["classifier_high"]
    assert _within_null(metrics["classifier_low"]), metrics["classifier_low"]
    # the same seed for both runs, and the low-level input holds log10 E_inc plus the 36 cells
    assert metrics["classifier_low"]["settings"] == metrics["classifier_high"]["settings"]


def test_cylindrical_report_for_scaled_showers(tmp_path: Path) -> None:
    geometry = _tiny_geometry()
    reference = _toy_showers(800, 1, geometry)
    metrics, plots = compare_showers(reference, _toy_showers(800, 2, geometry, scale=1.5), classifier=CYL)
    # cells/E_inc 1.5 times larger, with a voxel spread of about 50 %: the low-level classifier sees it at once
    assert metrics["classifier_low"]["auc"] > 0.9, metrics["classifier_low"]
    assert metrics["variables"]["etot_over_einc"]["separation_power"] > 0.9
    per_layer = ("e", "ec_eta_", "ec_phi_", "width_eta_", "width_phi_", "ec_r_", "width_r_", "sparsity_cc_")
    expected = {"etot", "etot_over_einc"} | {f"{p}{lid}" for p in per_layer for lid in range(3)}
    assert set(metrics["variables"]) == expected
    assert metrics["layout"] == "tiny-cylinder" and len(metrics["high_level_features"]) == 1 + 3 + 12 + 1 + 3 + 6
    # response bins from the reference's energy range, the top shower counted in the last bin
    edges = np.asarray(metrics["response"]["energy_edges_MeV"])
    assert np.allclose(edges, np.geomspace(reference.energy.min(), reference.energy.max(), 6))
    assert np.allclose(metrics["response"]["generated"]["response"], 1.35, rtol=0.02)
    assert np.allclose(metrics["layer_energy"]["generated"]["mean"], 1.5 * np.asarray(metrics["layer_energy"]["reference"]["mean"]), rtol=0.1)
    report = write_shower_report(tmp_path / "rep", metrics, plots, title="toy cylinder, scaled")
    text = report.read_text()
    assert _headings(text) == [
        "Summary", "Shower-shape variables", "Response and resolution vs energy", "Distributions",
        "Histograms: E_tot and the variables of layers 0, 1, 2", "Mean energy per layer", "Mean showers in (alpha, r)", "Mean r-profile per layer", "Numbers (JSON)",
    ]
    assert _images(text) == [
        "tiny-cylinder: response and resolution versus incident energy, reference and generated",
        "tiny-cylinder: histograms of the shower-shape variables of layers 0, 1, 2",
        "tiny-cylinder: mean energy per layer, reference and generated",
        "tiny-cylinder: mean (alpha, r) images of layers 0, 1, 2",
        "tiny-cylinder: mean r-profile per layer, reference and generated",
    ]
    assert "response and resolution versus incident energy" in _section(text, "response") and "low-level features" in _section(text, "summary")
    assert "paper_variables" not in metrics  # the paper's set is CaloGAN's
    stored = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert stored["classifier_low"]["auc"] > 0.9 and "width_r_2" in stored["variables"] and "e1" in stored["variables"]
    for key in ("classifier_high", "fpd", "kpd", "variables", "response", "n_reference", "n_generated", "high_level_features"):
        assert key in stored, key


def test_response_bins_carry_errors_and_counts() -> None:
    """Per bin: the showers counted, the error of the mean (std / sqrt n) and of the relative spread (Gaussian approximation)."""
    from gansim.metrics.calo_report import _response

    rng = np.random.default_rng(0)
    energy = np.r_[np.full(400, 2_000.0), np.full(100, 20_000.0)]
    etot = energy * rng.normal(0.9, 0.05, energy.size)
    out = _response(etot, energy, np.array([1_000.0, 10_000.0, 100_000.0, 200_000.0]))
    assert out["n"] == [400, 100, 0]
    assert out["response"][:2] == pytest.approx([0.9, 0.9], abs=0.02) and np.isnan(out["response"][2])
    assert out["response_error"][0] == pytest.approx(0.05 / np.sqrt(400), rel=0.15)
    assert out["resolution_error"][1] == pytest.approx(out["resolution"][1] / np.sqrt(2 * 99))
    assert np.isnan(out["resolution_error"][2])


def test_summary_for_the_manifest_is_strict_json_with_every_score() -> None:
    """shower_metrics_summary: SP and KS of every variable, classifier, FPD/KPD and response bins; NaN as null, floats rounded."""
    geometry = _tiny_geometry()
    metrics, _ = compare_showers(_toy_showers(240, 1, geometry), _toy_showers(240, 2, geometry, scale=1.2), classifier=SMALL)
    metrics["response"]["generated"]["response"][0] = float("nan")  # as an empty bin gives
    summary = shower_metrics_summary(metrics)
    text = json.dumps(summary, allow_nan=False)  # strict JSON: no NaN literal
    assert len(text) < 10_000
    assert set(summary["separation_power"]) == set(summary["ks"]) == set(metrics["variables"])
    assert summary["ks"]["etot"] == pytest.approx(metrics["variables"]["etot"]["ks"], rel=1e-5)
    for level in ("low", "high"):
        assert summary[f"classifier_{level}_auc"] == pytest.approx(metrics[f"classifier_{level}"]["auc"], rel=1e-5)
        assert summary[f"classifier_{level}_auc_se"] > 0 and summary[f"classifier_{level}_null_se"] > 0
    for name in ("fpd", "kpd"):
        assert set(summary[name]) >= {"value", "error"} and summary[name]["value"] == pytest.approx(metrics[name]["value"], rel=1e-5)
    resp = summary["response"]
    assert len(resp["energy_edges_MeV"]) == 6 and resp["generated"]["response"][0] is None
    assert all(len(resp[s][k]) == 5 for s in ("reference", "generated") for k in ("response", "resolution", "response_error", "resolution_error", "n"))
    assert "paper_variables" not in summary and summary["layout"] == "tiny-cylinder"


def test_dataset2_numbers() -> None:
    """The built-in dataset-2-like showers (45 layers x 16 alpha x 9 r): every variable of every layer scored."""
    a = make_calo_showers(150, "eplus", seed=1, layout="calochallenge-ds2").to_shower_data()
    b = make_calo_showers(150, "eplus", seed=2, layout="calochallenge-ds2").to_shower_data()
    metrics, plots = compare_showers(a, b, classifier=SMALL, fpd_kpd=False)
    assert len(metrics["variables"]) == 2 + 45 * 8 and metrics["layout"] == "calochallenge-ds2"
    assert len(metrics["high_level_features"]) == 1 + 45 + 4 * 45 + 1 + 45 + 2 * 45
    assert "auc" in metrics["classifier_low"] and "auc" in metrics["classifier_high"]
    assert metrics["layer_energy"]["layer_ids"] == list(range(45)) and len(plots["mean_images"][0]) == 45
    assert plots["mean_images"][0][0].shape == (16, 9)
    # the mean images and the layer-energy profile are two views of the same mean shower
    layer_sums = [float(img.sum()) for img in plots["mean_images"][0]]
    assert np.allclose(layer_sums, metrics["layer_energy"]["reference"]["mean"], rtol=1e-6)


def test_dataset1_like_binning() -> None:
    """Layers with their own r bins, some not binned in alpha, and gaps in the layer ids (as dataset 1)."""
    from gansim.metrics.calo_report import _cylindrical_r_profile_figure

    geometry = CylindricalGeometry(
        "calochallenge-ds1-toy",
        (CylindricalLayer((0.0, 5.0, 10.0, 30.0, 100.0), 1), CylindricalLayer((0.0, 2.0, 5.0, 10.0, 20.0, 50.0), 8), CylindricalLayer((0.0, 10.0, 50.0), 1)),
        layer_ids=(0, 1, 12),
    )
    metrics, plots = compare_showers(_toy_showers(100, 1, geometry), _toy_showers(100, 2, geometry), classifier=SMALL, fpd_kpd=False)
    alpha_keys = {f"{p}1" for p in ("ec_eta_", "ec_phi_", "width_eta_", "width_phi_")}
    per_layer = {f"{p}{lid}" for p in ("e", "ec_r_", "width_r_", "sparsity_cc_") for lid in (0, 1, 12)}
    assert set(metrics["variables"]) == {"etot", "etot_over_einc"} | per_layer | alpha_keys
    assert [img.shape for img in plots["mean_images"][1]] == [(1, 4), (8, 5), (1, 2)]
    assert "data:image/png;base64" in _cylindrical_r_profile_figure(plots)  # r bins differ per layer: padded image


def test_too_few_showers_skip_both_classifiers() -> None:
    geometry = _tiny_geometry()
    metrics, _ = compare_showers(_toy_showers(30, 1, geometry), _toy_showers(30, 2, geometry), classifier=SMALL)
    assert "too few" in metrics["classifier_low"]["skipped"] and "too few" in metrics["classifier_high"]["skipped"]
    assert "fpd" not in metrics
    summary = shower_metrics_summary(metrics)  # what the manifest gets then: the reason, no AUC, no FPD
    assert "too few" in summary["classifier_high_skipped"] and "classifier_high_auc" not in summary and "fpd" not in summary


def test_mixed_layouts_and_binnings_refused(samples: dict) -> None:
    toy = _toy_showers(60, 1, _tiny_geometry())
    with pytest.raises(DataError, match="calogan.*tiny-cylinder"):
        compare_showers(samples["e1"], toy)
    other = _toy_showers(60, 2, _tiny_geometry(r_edges=(0.0, 5.0, 10.0, 20.0)))  # same name, other r bins
    with pytest.raises(DataError, match="binnings differ"):
        compare_showers(toy, other)
