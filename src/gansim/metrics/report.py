"""A self-contained HTML quality report: PNG plots embedded, the numbers, the training curve, the manifest.

One file that can be mailed or archived with the model: no external images,
scripts or style sheets. Plots are made with matplotlib's Agg backend (no
screen needed).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gansim.io.phsp.columns import unit_of

__all__ = ["main_pairs", "render_report"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, alt: str = "plot") -> str:
    """The figure as an <img> tag with base64 PNG data and ``alt`` as its text; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}"/>'


def _label(key: str) -> str:
    unit = unit_of(key)
    return f"{key} [{unit}]" if unit and unit != "?" else key


def _range(ref: np.ndarray, gen: np.ndarray) -> tuple[float, float]:
    """Common histogram range: the reference's 0.1–99.9 % quantiles widened by 5 %, so GAN outliers do not squash the plot."""
    lo, hi = np.quantile(ref, [0.001, 0.999]) if len(ref) else (0.0, 1.0)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = float(np.min(np.concatenate([ref, gen]))) - 0.5, float(np.max(np.concatenate([ref, gen]))) + 0.5
    pad = 0.05 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def histograms_1d(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], keys: Sequence[str], bins: int = 100) -> str:
    """One panel per key: reference and generated densities (same bins), log y when the data span decades."""
    plt = _pyplot()
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        ref, gen = np.asarray(reference[key], np.float64), np.asarray(generated[key], np.float64)
        edges = np.linspace(*_range(ref, gen), bins + 1)
        ax.hist(ref, bins=edges, density=True, histtype="stepfilled", alpha=0.35, color="tab:blue", label="reference")
        ax.hist(gen, bins=edges, density=True, histtype="step", lw=1.4, color="tab:red", label="generated")
        ax.set_xlabel(_label(key))
        ax.set_ylabel("density")
        h, _ = np.histogram(ref, bins=edges, density=True)
        positive = h[h > 0]
        if len(positive) and positive.max() / positive.min() > 1e3:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def main_pairs(keys: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs worth a 2-D histogram: positions, directions, energy vs radius; else the first pairs of keys.

    ``"radius"`` stands for sqrt(PrePosition_X² + PrePosition_Y²).
    """
    present = set(keys)
    pairs: list[tuple[str, str]] = []
    for a, b in (("PrePosition_X", "PrePosition_Y"), ("PreDirection_X", "PreDirection_Y"), ("EventPosition_X", "EventPosition_Y")):
        if a in present and b in present:
            pairs.append((a, b))
    energy = next((k for k in keys if k.endswith("KineticEnergy")), None)
    if energy is not None and {"PrePosition_X", "PrePosition_Y"} <= present:
        pairs.append(("radius", energy))
    if not pairs:
        pairs = [(keys[i], keys[i + 1]) for i in range(0, min(len(keys) - 1, 6), 2)]
    return pairs


def _column(table: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key == "radius":
        return np.hypot(np.asarray(table["PrePosition_X"], np.float64), np.asarray(table["PrePosition_Y"], np.float64))
    return np.asarray(table[key], np.float64)


def histograms_2d(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], bins: int = 80) -> str:
    """For each pair: reference and generated 2-D histograms side by side on the same bins and colour scale."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(len(pairs), 2, figsize=(9, 3.8 * len(pairs)), squeeze=False)
    for row, (a, b) in enumerate(pairs):
        ra, rb, ga, gb = _column(reference, a), _column(reference, b), _column(generated, a), _column(generated, b)
        xe = np.linspace(*_range(ra, ga), bins + 1)
        ye = np.linspace(*_range(rb, gb), bins + 1)
        href, _, _ = np.histogram2d(ra, rb, bins=[xe, ye], density=True)
        hgen, _, _ = np.histogram2d(ga, gb, bins=[xe, ye], density=True)
        positive = np.concatenate([href[href > 0], hgen[hgen > 0]])
        norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if len(positive) else None
        for col, (h, name) in enumerate(((href, "reference"), (hgen, "generated"))):
            ax = axes[row, col]
            ax.pcolormesh(xe, ye, np.where(h > 0, h, np.nan).T, norm=norm, cmap="viridis")
            ax.set_xlabel("radius [mm]" if a == "radius" else _label(a))
            ax.set_ylabel(_label(b))
            ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def training_curves(stats: Sequence[Mapping[str, Any]]) -> str | None:
    """Losses and critic outputs against rows seen (from stats.jsonl)."""
    if not stats:
        return None
    plt = _pyplot()
    rows = [r["rows_seen"] for r in stats]
    keys = sorted({k for r in stats for k in r if k.startswith(("loss/", "D/"))})
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for key in keys:
        ax.plot(rows, [r.get(key, np.nan) for r in stats], label=key, lw=1.2)
    ax.set_xlabel("rows seen")
    ax.set_ylabel("value")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return _png(fig)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em;max-height:30em}.note{color:#555;font-size:.9em}
"""


def render_report(
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    keys: Sequence[str],
    metrics: Mapping[str, Any],
    *,
    title: str = "gansim quality report",
    stats: Sequence[Mapping[str, Any]] | None = None,
    manifest: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The report as one HTML string.

    Args:
        reference, generated: tables (already subsampled) in physical units.
        keys: the columns compared.
        metrics: as returned by :func:`gansim.metrics.evaluate.compare_tables`
            (``wasserstein`` per key, ``sliced_wasserstein``, ``classifier``, ``per_condition_bin``, ``subsample``).
        stats: training records (stats.jsonl) for the curves.
        manifest: the model manifest, shown at the end.
        notes: free sentences shown under the title (e.g. how inputs were subsampled).
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    for note in notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts.append("<h2>Summary</h2>")
    summary_rows = []
    sw = metrics.get("sliced_wasserstein")
    if sw:
        summary_rows.append(["sliced Wasserstein SW1 (standardised by the reference)", sw.get("sw1"), f"{sw.get('n_projections')} projections, seed {sw.get('seed')}"])
    clf = metrics.get("classifier")
    if clf:
        summary_rows.append(["classifier two-sample AUC (0.5 = indistinguishable)", clf.get("auc"), f"± {clf.get('auc_se', float('nan')):.3g} (null σ {clf.get('null_se', float('nan')):.3g}; {clf.get('n_test')} test rows)"])
    if summary_rows:
        parts.append(_table(["metric", "value", "detail"], summary_rows))
    w = metrics.get("wasserstein", {})
    if w:
        parts.append("<h2>Per-key 1-D Wasserstein distance</h2>")
        parts.append(_table(["key", "unit", "W1", "W1 / std(reference)", "std(reference)"], [[k, unit_of(k) or "1", v["w1"], v["w1_rel"], v["ref_std"]] for k, v in w.items()]))
    bins = metrics.get("per_condition_bin")
    if bins:
        parts.append("<h2>Per condition bin</h2>")
        rows = []
        for b in bins:
            m = b.get("metrics") or {}  # None for a bin with too few rows (its reason is in "skipped")
            worst = max((v["w1_rel"] for v in m.get("wasserstein", {}).values()), default=float("nan"))
            rows.append([
                ", ".join(f"{k} ∈ [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in b["bin"].items()), b.get("ref_rows"), b.get("gen_rows"), worst,
                m.get("classifier", {}).get("auc", float("nan")), b.get("skipped") or "",
            ])
        parts.append(_table(["bin", "reference rows", "generated rows", "max W1/std", "AUC", "skipped"], rows))
    parts.append("<h2>1-D distributions</h2>")
    parts.append(histograms_1d(reference, generated, list(keys)))
    pairs = main_pairs(list(keys))
    if pairs:
        parts.append("<h2>2-D distributions</h2>")
        parts.append(histograms_2d(reference, generated, pairs))
    curves = training_curves(stats or [])
    if curves:
        parts.append("<h2>Training curves</h2>")
        parts.append(curves)
    if manifest is not None:
        parts.append("<h2>Model manifest</h2>")
        parts.append(f"<pre>{html.escape(json.dumps(manifest, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
