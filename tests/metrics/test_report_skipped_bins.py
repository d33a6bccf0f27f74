"""The report renders condition bins that were skipped for having too few rows (their metrics are None)."""

from __future__ import annotations

import numpy as np

from gansim.metrics.report import render_report


def test_report_shows_a_skipped_condition_bin() -> None:
    rng = np.random.default_rng(0)
    table = {"x": rng.normal(size=200).astype(np.float32)}
    metrics = {
        "wasserstein": {"x": {"w1": 0.1, "w1_rel": 0.1, "ref_std": 1.0}},
        "per_condition_bin": [
            {"bin": {"c": (0.0, 1.0)}, "ref_rows": 150, "gen_rows": 150, "metrics": {"wasserstein": {"x": {"w1_rel": 0.2}}, "classifier": {"auc": 0.55}}, "skipped": None},
            {"bin": {"c": (1.0, 2.0)}, "ref_rows": 3, "gen_rows": 5, "metrics": None, "skipped": "fewer than 20 rows (3 reference, 5 generated)"},
        ],
    }
    page = render_report(table, table, ["x"], metrics)
    assert "fewer than 20 rows (3 reference, 5 generated)" in page
    assert "0.55" in page
