"""The demo end to end on its smallest budget: data, training, report, generation, printed summary."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from threadpoolctl import threadpool_limits

from gansim.demos import run_demo


def test_demo_smallest_budget(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    with threadpool_limits(limits=1):
        metrics = run_demo("linac", tmp_path / "demo", minutes=0.0, out=console, log=lambda *_: None)
    printed = console.export_text()
    assert "report.html" in printed and "classifier two-sample AUC" in printed
    assert (tmp_path / "demo" / "run" / "report" / "report.html").is_file()
    assert (tmp_path / "demo" / "generated.npy").is_file()
    stored = json.loads((tmp_path / "demo" / "run" / "model" / "manifest.json").read_text())["metrics"]
    assert set(stored["w1_rel"]) == set(metrics["wasserstein"])


def test_spect_demo_end_to_end_on_small_statistics(tmp_path: Path) -> None:
    """The main demo's whole chain (Monte Carlo data, training, 3-run dynamic simulations, report) at 2 % of its statistics."""
    from gansim.demos.spect import RUN_ACTIVITY
    from gansim.physics.isotopes import get_isotope

    console = Console(record=True, width=160)
    with threadpool_limits(limits=1):
        headline = run_demo_spect(tmp_path / "spect", console)
    printed = console.export_text()
    assert "GAN vs Monte Carlo speed" in printed and "report.html" in printed
    report = tmp_path / "spect" / "report" / "report.html"
    assert report.is_file() and "Run 2: spheres only" in report.read_text()
    assert len(headline["runs"]) == 3 and headline["speed_ratio"] > 0
    tc99m = get_isotope("Tc99m")
    for run in headline["runs"]:
        counts = run["counts"]
        # both sources draw photon emissions from the same activity: Poisson counts with mean
        # A x 1 s x photons per decay (the 6 h half-life changes it by < 1e-4 over the 3 s)
        expected = 0.02 * RUN_ACTIVITY * 1e9 * tc99m.photons_per_decay
        for kind in ("analog", "gan"):
            assert abs(counts[kind]["decays"] - expected) < 5 * expected**0.5, (kind, counts[kind]["decays"], expected)
            assert counts[kind]["events"] == counts[kind]["decays"]  # ZeroEnergy policy: every row is an event
        assert 0.4 < run["noise"]["auc"] < 0.6  # two Monte Carlo seeds are indistinguishable
    stats = json.loads((tmp_path / "spect" / "sim_gan" / "stats.json").read_text())
    assert [r["run_id"] for r in stats["runs"]] == [0, 1, 2]


def run_demo_spect(output: Path, console: Console) -> dict:
    from gansim.demos.spect import run_spect_demo

    return run_spect_demo(output, minutes=0.0, statistics=0.02, out=console, log=lambda *_: None)
