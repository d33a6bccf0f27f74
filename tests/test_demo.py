"""The demo end to end on its smallest budget: data, training, report, generation, printed summary."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from threadpoolctl import threadpool_limits

from gansim.demo import run_demo


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
