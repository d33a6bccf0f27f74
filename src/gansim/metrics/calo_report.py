"""Comparing generated calorimeter showers with reference ones: numbers, a self-contained HTML report, JSON.

For CaloGAN-layout showers: every shower-shape variable of the paper's figure set
(:data:`~gansim.metrics.calo_shapes.CALOGAN_PAPER_VARIABLES`) with its separation power and KS
statistic; the CaloChallenge classifier test on the high-level features; FPD and KPD on the
same features; mean shower images per layer; the response (E_tot / E_inc) and resolution
(its relative spread) in bins of incident energy. Figures are embedded PNGs.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import DataError
from gansim.io.atomic import atomic_path
from gansim.io.calo import ShowerData

__all__ = ["compare_showers", "write_shower_report"]


def _shapes(data: ShowerData) -> dict[str, np.ndarray]:
    from gansim.io.calo_geometry import CartesianGeometry
    from gansim.metrics.calo_shapes import calogan_shower_shapes

    if not isinstance(data.geometry, CartesianGeometry):
        raise DataError(f"compare_showers: {data.layout!r} showers; the shower report handles the CaloGAN layout so far")
    return calogan_shower_shapes(data.layers, data.energy, data.geometry)


def _response(data: ShowerData, edges: np.ndarray) -> dict[str, list[float]]:
    total = sum(np.asarray(a, dtype=np.float64).reshape(len(data), -1).sum(axis=1) for a in data.layers)
    ratio = total / np.asarray(data.energy, dtype=np.float64)
    which = np.digitize(data.energy, edges) - 1
    mean, spread = [], []
    for b in range(len(edges) - 1):
        r = ratio[which == b]
        mean.append(float(r.mean()) if len(r) else float("nan"))
        spread.append(float(r.std() / r.mean()) if len(r) > 1 and r.mean() > 0 else float("nan"))
    return {"response": mean, "resolution": spread}


def compare_showers(reference: ShowerData, generated: ShowerData, *, seed: int = 0, classifier: dict[str, Any] | None = None, fpd_kpd: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """All the numbers, and the arrays the plots need (shapes, mean images, response bins)."""
    from gansim.metrics.calo_classifier import classifier_test
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES, calochallenge_feature_vector, ks_statistic, separation_power

    if reference.layout != generated.layout:
        raise DataError(f"compare_showers: reference is {reference.layout!r}, generated is {generated.layout!r}; compare showers of one layout")
    ref_shapes, gen_shapes = _shapes(reference), _shapes(generated)
    variables: dict[str, dict[str, float]] = {}
    for key in CALOGAN_PAPER_VARIABLES:
        r, g = ref_shapes[key], gen_shapes[key]
        r, g = r[np.isfinite(r)], g[np.isfinite(g)]
        variables[key] = {"separation_power": separation_power(r, g), "ks": ks_statistic(r, g), "ref_mean": float(r.mean()), "gen_mean": float(g.mean())}
    ref_high, names = calochallenge_feature_vector(ref_shapes, reference.energy)
    gen_high, _ = calochallenge_feature_vector(gen_shapes, generated.energy)
    metrics: dict[str, Any] = {"variables": variables, "n_reference": len(reference), "n_generated": len(generated), "high_level_features": names}
    try:
        metrics["classifier_high"] = classifier_test(ref_high, gen_high, seed=seed, **(classifier or {}))
    except DataError as err:  # too few showers for a classifier: say so in the report instead of failing
        metrics["classifier_high"] = {"skipped": str(err)}
    if fpd_kpd and min(len(ref_high), len(gen_high)) >= 100:
        from gansim.metrics.fpd_kpd import fpd, kpd

        n = min(len(ref_high), len(gen_high))
        small = {"min_samples": max(2, min(10_000, n // 2)), "max_samples": max(3, min(50_000, n))}
        metrics["fpd"] = {k: v for k, v in fpd(ref_high, gen_high, **small).items() if np.isscalar(v)}
        metrics["kpd"] = {k: v for k, v in kpd(ref_high, gen_high, batch_size=max(2, min(10_000, n // 2))).items() if np.isscalar(v)}
    edges = np.geomspace(1000.0, 100_000.0, 6)  # MeV: the CaloGAN energy range in five bins
    metrics["response"] = {"energy_edges_MeV": edges.tolist(), "reference": _response(reference, edges), "generated": _response(generated, edges)}
    plots = {
        "shapes": (ref_shapes, gen_shapes),
        "mean_images": ([np.asarray(a).mean(axis=0) for a in reference.layers], [np.asarray(a).mean(axis=0) for a in generated.layers]),
    }
    return metrics, plots


def _figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[str]:
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    ref, gen = plots["shapes"]
    keys = list(CALOGAN_PAPER_VARIABLES)
    cols = 5
    fig, axes = plt.subplots(-(-len(keys) // cols), cols, figsize=(3.4 * cols, 2.6 * -(-len(keys) // cols)))
    for ax, key in zip(axes.flat, keys):
        r, g = ref[key][np.isfinite(ref[key])], gen[key][np.isfinite(gen[key])]
        lo, hi = np.percentile(np.concatenate([r, g]), [0.5, 99.5]) if len(r) + len(g) else (0, 1)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        ax.hist(r, bins=bins, density=True, alpha=0.4, label="reference")
        ax.hist(g, bins=bins, density=True, histtype="step", label="generated")
        ax.set_title(f"{key}  (SP {metrics['variables'][key]['separation_power']:.3f})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    out = [_png(fig)]
    ref_images, gen_images = plots["mean_images"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 5))
    for i in range(3):
        vmax = max(float(ref_images[i].max()), float(gen_images[i].max()), 1e-12)
        for row, (images, name) in enumerate(((ref_images, "reference"), (gen_images, "generated"))):
            im = axes[row, i].imshow(images[i] + 1e-3 * vmax, aspect="auto", cmap="viridis", norm=plt.matplotlib.colors.LogNorm(vmin=1e-3 * vmax, vmax=vmax))
            axes[row, i].set_title(f"{name}: mean layer {i} (MeV; rows phi, columns eta)", fontsize=8)
        fig.colorbar(im, ax=axes[:, i], fraction=0.04)
    out.append(_png(fig))
    return out


def write_shower_report(output: str | Path, metrics: dict[str, Any], plots: dict[str, Any], *, title: str, force: bool = True) -> Path:
    """``report.html`` and ``metrics.json`` in ``output`` (written atomically)."""
    from gansim.metrics.report import _STYLE, _table

    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    clf = metrics["classifier_high"]
    if "skipped" in clf:
        rows = [["classifier AUC, high-level features", "not computed", clf["skipped"]]]
    else:
        rows = [["classifier AUC, high-level features (0.5 = indistinguishable)", clf["auc"], f"± {clf['auc_se']:.3g} (null σ {clf['null_se']:.3g}; {clf['n_test']} test showers)"]]
    if "fpd" in metrics:
        rows.append(["FPD ×10³", 1e3 * metrics["fpd"]["value"], f"± {1e3 * metrics['fpd']['error']:.3g}"])
        rows.append(["KPD ×10³", 1e3 * metrics["kpd"]["value"], f"± {1e3 * metrics['kpd']['error']:.3g}"])
    variables = [[k, v["separation_power"], v["ks"], v["ref_mean"], v["gen_mean"]] for k, v in metrics["variables"].items()]
    resp = metrics["response"]
    edges = resp["energy_edges_MeV"]
    response_rows = [
        [f"{edges[i] / 1000:.3g}–{edges[i + 1] / 1000:.3g} GeV", resp["reference"]["response"][i], resp["generated"]["response"][i], resp["reference"]["resolution"][i], resp["generated"]["resolution"][i]]
        for i in range(len(edges) - 1)
    ]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(f"<p class='note'>{metrics['n_reference']} reference and {metrics['n_generated']} generated showers. Separation power: ½ Σ (h₁−h₂)²/(h₁+h₂) on normalised histograms with the reference's bins (0 identical, 1 disjoint).</p>")
    parts += ["<h2>Summary</h2>", _table(["metric", "value", "detail"], rows)]
    parts += ["<h2>Shower-shape variables</h2>", _table(["variable", "separation power", "KS", "mean (reference)", "mean (generated)"], variables)]
    parts += ["<h2>Response and resolution vs energy</h2>", _table(["E_inc", "E_tot/E_inc ref", "E_tot/E_inc gen", "σ/mean ref", "σ/mean gen"], response_rows)]
    parts += ["<h2>Distributions</h2>", *_figures(metrics, plots)]
    parts += ["<h2>Numbers (JSON)</h2><pre>" + html.escape(json.dumps(metrics, indent=2, default=float)) + "</pre></body></html>"]
    with atomic_path(out_dir / "report.html", force=force) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    with atomic_path(out_dir / "metrics.json", force=force) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return out_dir / "report.html"
