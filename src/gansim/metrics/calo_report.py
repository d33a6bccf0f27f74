"""Comparing generated calorimeter showers with reference ones: numbers, a self-contained HTML report, JSON.

Every layout gansim reads (:class:`~gansim.io.calo.ShowerData`):

* **CaloGAN** (Cartesian layers): every shower-shape variable of the paper's figure set
  (:data:`~gansim.metrics.calo_shapes.CALOGAN_PAPER_VARIABLES`), histograms of them and mean
  shower images per layer;
* **CaloChallenge** (cylindrical voxels: DS2, DS3, DS1 from its XML): CaloChallenge's high-level
  set of :func:`~gansim.metrics.calo_shapes.cylindrical_shower_shapes` (per-layer energy, centres
  of energy and widths in x = r cos(alpha), y = r sin(alpha) and r, sparsity, E_tot and
  E_tot/E_inc); every variable is scored, a readable subset is plotted, beside the mean energy per
  layer, mean (alpha, r) images of a few layers and the mean r-profile of every layer.

For both: separation power and KS statistic per variable; the CaloChallenge classifier test on
the high-level vector and on the low-level input (log10 E_inc, cells / E_inc); FPD and KPD on the
high-level vector; the response (E_tot / E_inc) and resolution (its relative spread) in bins of
incident energy (CaloGAN: 1-100 GeV; CaloChallenge: the reference's energy range). Figures are
embedded PNGs. Energies are in MeV, positions in mm.
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
from gansim.io.calo_geometry import CartesianGeometry, CylindricalGeometry

__all__ = ["compare_showers", "write_shower_report"]

#: Response bins of the CaloGAN layout (MeV): its data sets span 1-100 GeV.
_CALOGAN_EDGES_MEV = np.geomspace(1_000.0, 100_000.0, 6)
#: Incident-energy bins of the response table.
_N_ENERGY_BINS = 5
#: Cells per chunk when averaging or flattening showers (about 128 MB of float64): DS3 holds
#: 40,500 voxels per shower, and a float64 copy of 10^4 showers would be 3 GB.
_CHUNK_ELEMENTS = 1 << 24
#: Per-layer variables of the cylindrical set, in the order the report lists them.
_CYLINDRICAL_PER_LAYER = ("e", "ec_eta_", "ec_phi_", "width_eta_", "width_phi_", "ec_r_", "width_r_", "sparsity_cc_")
#: Per-layer variables histogrammed for the few layers the report plots.
_CYLINDRICAL_PLOTTED = ("e", "ec_eta_", "ec_phi_", "width_eta_", "width_phi_", "width_r_", "sparsity_cc_")


# ----------------------------------------------------------------------------------------------
# numbers


def _check_pair(reference: ShowerData, generated: ShowerData) -> None:
    """One layout, one binning: anything else cannot be compared cell by cell."""
    if reference.layout != generated.layout:
        raise DataError(f"compare_showers: reference is {reference.layout!r}, generated is {generated.layout!r}; compare showers of one layout")
    if reference.geometry != generated.geometry:
        raise DataError(
            f"compare_showers: reference and generated are both {reference.layout!r} but their binnings differ "
            f"({reference.geometry.n_cells} and {generated.geometry.n_cells} cells, or other layer edges); compare showers of one geometry"
        )


def _cylindrical_showers(data: ShowerData) -> np.ndarray:
    """The (N, voxels) array of a CaloChallenge ShowerData (its one entry of ``layers``)."""
    if len(data.layers) != 1:
        raise DataError(f"compare_showers: {data.layout!r} showers hold {len(data.layers)} arrays; expected one (N, voxels) array in (layer, alpha, r) order")
    return data.layers[0]


def _shapes(data: ShowerData) -> dict[str, np.ndarray]:
    """The layout's shower-shape variables, one (N,) array each."""
    from gansim.metrics.calo_shapes import calogan_shower_shapes, cylindrical_shower_shapes

    if isinstance(data.geometry, CartesianGeometry):
        return calogan_shower_shapes(data.layers, data.energy, data.geometry)
    if isinstance(data.geometry, CylindricalGeometry):
        return cylindrical_shower_shapes(_cylindrical_showers(data), data.energy, data.geometry)
    raise DataError(f"compare_showers: {data.layout!r} showers with a geometry of type {type(data.geometry).__name__}; expected a CaloGAN or CaloChallenge layout")


def _variable_keys(shapes: dict[str, np.ndarray], geometry: CartesianGeometry | CylindricalGeometry) -> list[str]:
    """The variables scored: CaloGAN's paper set, or every CaloChallenge high-level variable (grouped by kind)."""
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES

    if isinstance(geometry, CartesianGeometry):
        return list(CALOGAN_PAPER_VARIABLES)
    keys = [k for k in ("etot_over_einc", "etot") if k in shapes]
    for prefix in _CYLINDRICAL_PER_LAYER:
        keys += [f"{prefix}{lid}" for lid in geometry.layer_ids if f"{prefix}{lid}" in shapes]
    return keys


def _score(reference: np.ndarray, generated: np.ndarray) -> dict[str, float]:
    """Separation power, KS statistic and means of one variable (non-finite values dropped)."""
    from gansim.metrics.calo_shapes import ks_statistic, separation_power

    r, g = reference[np.isfinite(reference)], generated[np.isfinite(generated)]
    if r.size == 0 or g.size == 0:  # e.g. f_i of empty showers only: nothing to compare
        return {"separation_power": float("nan"), "ks": float("nan"), "ref_mean": float("nan"), "gen_mean": float("nan")}
    return {"separation_power": separation_power(r, g), "ks": ks_statistic(r, g), "ref_mean": float(r.mean()), "gen_mean": float(g.mean())}


def _energy_edges(reference: ShowerData) -> np.ndarray:
    """Incident-energy bin edges (MeV) of the response table: CaloGAN's 1-100 GeV, else the reference's range."""
    if reference.layout == "calogan":
        return _CALOGAN_EDGES_MEV.copy()
    e = np.asarray(reference.energy, dtype=np.float64).reshape(-1)
    lo, hi = float(e.min()), float(e.max())
    if hi <= lo * (1 + 1e-9):  # one incident energy: a single bin around it
        return np.array([lo * (1 - 1e-6), hi * (1 + 1e-6)])
    return np.geomspace(lo, hi, _N_ENERGY_BINS + 1)


def _response(etot: np.ndarray, energy: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    """Mean E_tot / E_inc and its relative spread per incident-energy bin (NaN for an empty bin)."""
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    ratio = np.asarray(etot, dtype=np.float64) / e
    which = np.digitize(e, edges) - 1
    which[e == edges[-1]] = len(edges) - 2  # the top edge (the reference's maximum) belongs to the last bin
    mean, spread = [], []
    for b in range(len(edges) - 1):
        r = ratio[which == b]
        mean.append(float(r.mean()) if len(r) else float("nan"))
        spread.append(float(r.std() / r.mean()) if len(r) > 1 and r.mean() > 0 else float("nan"))
    return {"response": mean, "resolution": spread}


def _low_level(data: ShowerData) -> np.ndarray:
    """CaloChallenge's low-level classifier input (N, 1 + cells) float32, built in row chunks (bounded memory)."""
    from gansim.metrics.calo_classifier import low_level_features

    n = len(data)
    rows = max(1, _CHUNK_ELEMENTS // max(1, data.geometry.n_cells))
    energy = np.asarray(data.energy).reshape(-1)
    parts = [low_level_features([a[s:s + rows] for a in data.layers], energy[s:s + rows]) for s in range(0, n, rows)]
    return np.concatenate(parts) if parts else np.zeros((0, 1 + data.geometry.n_cells), np.float32)


def _classifier(reference: np.ndarray, generated: np.ndarray, seed: int, settings: dict[str, Any]) -> dict[str, Any]:
    """:func:`classifier_test`, or ``{"skipped": why}`` when the samples are too small for it."""
    from gansim.metrics.calo_classifier import classifier_test

    try:
        return classifier_test(reference, generated, seed=seed, **settings)
    except DataError as err:  # too few showers for a classifier: say so in the report instead of failing
        return {"skipped": str(err)}


def _mean_showers(data: ShowerData) -> list[np.ndarray]:
    """Mean shower per layer: CaloGAN images (n1, n2), or cylindrical (n_alpha, n_r) per layer (MeV)."""
    if isinstance(data.geometry, CartesianGeometry):
        return [np.asarray(a, dtype=np.float64).mean(axis=0) for a in data.layers]
    showers = _cylindrical_showers(data)
    n = len(showers)
    rows = max(1, _CHUNK_ELEMENTS // max(1, data.geometry.n_cells))
    total = np.zeros(data.geometry.n_cells, dtype=np.float64)
    for s in range(0, n, rows):
        total += np.asarray(showers[s:s + rows], dtype=np.float64).reshape(-1, data.geometry.n_cells).sum(axis=0)
    mean = total / max(n, 1)
    return [mean[sl].reshape(layer.n_alpha, layer.n_r) for layer, sl in zip(data.geometry.layers, data.geometry.layer_slices())]


def _layer_energy(shapes: dict[str, np.ndarray], geometry: CylindricalGeometry) -> dict[str, list[float]]:
    """Mean energy per layer and its standard error (MeV)."""
    mean, sem = [], []
    for lid in geometry.layer_ids:
        e = shapes[f"e{lid}"]
        mean.append(float(e.mean()))
        sem.append(float(e.std(ddof=1) / np.sqrt(len(e))) if len(e) > 1 else float("nan"))
    return {"mean": mean, "sem": sem}


def compare_showers(
    reference: ShowerData,
    generated: ShowerData,
    *,
    seed: int = 0,
    classifier: dict[str, Any] | None = None,
    fpd_kpd: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """All the numbers, and the arrays the plots need (shapes, mean images, response bins).

    Args:
        reference, generated: showers of one layout and one binning (CaloGAN or CaloChallenge).
        seed: seed of both classifier tests (splits, initialisation, batches).
        classifier: keyword arguments of :func:`~gansim.metrics.calo_classifier.classifier_test`
            (``hidden``, ``epochs``...), given to both the high- and the low-level run.
        fpd_kpd: compute FPD and KPD (when both samples hold >= 100 showers).

    Returns:
        ``(metrics, plots)``. ``metrics`` (JSON-ready) holds ``layout``, ``n_reference``,
        ``n_generated``, ``variables`` (name -> separation_power, ks, ref_mean, gen_mean),
        ``high_level_features`` (column names), ``classifier_high`` and ``classifier_low``
        (classifier_test's result, or ``{"skipped": why}``), ``fpd`` and ``kpd`` (when computed),
        ``response`` (``energy_edges_MeV`` and, per sample, ``response`` and ``resolution`` per bin)
        and, for CaloChallenge layouts, ``layer_energy`` (``layer_ids``, mean and standard error
        per layer in MeV per sample). ``plots`` is for :func:`write_shower_report`.

    Raises:
        DataError: different layouts, or one layout with different binnings.
    """
    from gansim.metrics.calo_shapes import calochallenge_feature_vector

    _check_pair(reference, generated)
    settings = dict(classifier or {})
    geometry = reference.geometry
    ref_shapes, gen_shapes = _shapes(reference), _shapes(generated)
    keys = _variable_keys(ref_shapes, geometry)
    variables = {key: _score(ref_shapes[key], gen_shapes[key]) for key in keys}
    ref_high, names = calochallenge_feature_vector(ref_shapes, reference.energy)
    gen_high, _ = calochallenge_feature_vector(gen_shapes, generated.energy)
    metrics: dict[str, Any] = {
        "layout": reference.layout,
        "variables": variables,
        "n_reference": len(reference),
        "n_generated": len(generated),
        "high_level_features": names,
    }
    metrics["classifier_high"] = _classifier(ref_high, gen_high, seed, settings)
    metrics["classifier_low"] = _classifier(_low_level(reference), _low_level(generated), seed, settings)
    if fpd_kpd and min(len(ref_high), len(gen_high)) >= 100:
        from gansim.metrics.fpd_kpd import fpd, kpd

        n = min(len(ref_high), len(gen_high))
        small = {"min_samples": max(2, min(10_000, n // 2)), "max_samples": max(3, min(50_000, n))}
        metrics["fpd"] = {k: v for k, v in fpd(ref_high, gen_high, **small).items() if np.isscalar(v)}
        metrics["kpd"] = {k: v for k, v in kpd(ref_high, gen_high, batch_size=max(2, min(10_000, n // 2))).items() if np.isscalar(v)}
    edges = _energy_edges(reference)
    metrics["response"] = {
        "energy_edges_MeV": edges.tolist(),
        "reference": _response(ref_shapes["etot"], reference.energy, edges),
        "generated": _response(gen_shapes["etot"], generated.energy, edges),
    }
    if isinstance(geometry, CylindricalGeometry):
        metrics["layer_energy"] = {
            "layer_ids": list(geometry.layer_ids),
            "reference": _layer_energy(ref_shapes, geometry),
            "generated": _layer_energy(gen_shapes, geometry),
        }
    plots = {
        "layout": reference.layout,
        "geometry": geometry,
        "shapes": (ref_shapes, gen_shapes),
        "mean_images": (_mean_showers(reference), _mean_showers(generated)),
    }
    return metrics, plots


# ----------------------------------------------------------------------------------------------
# figures


def _histogram_panel(ax: Any, reference: np.ndarray, generated: np.ndarray, title: str, *, log10: bool = False) -> None:
    """Reference (filled) and generated (step) densities of one variable on shared bins."""
    r, g = reference[np.isfinite(reference)], generated[np.isfinite(generated)]
    if log10:  # energies span decades: log10 of the positive values (an empty layer has none)
        r, g = np.log10(r[r > 0]), np.log10(g[g > 0])
    both = np.concatenate([r, g])
    lo, hi = np.percentile(both, [0.5, 99.5]) if both.size else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    # stepfilled: one polygon per histogram instead of 40 bar patches (the figures with ~25 panels draw 2x faster)
    ax.hist(r, bins=bins, density=True, alpha=0.4, histtype="stepfilled", label="reference")
    ax.hist(g, bins=bins, density=True, histtype="step", label="generated")
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    ax.locator_params(nbins=4)  # fewer tick labels: readable at this size, and text layout is most of the drawing time


def _histogram_grid(metrics: dict[str, Any], plots: dict[str, Any], keys: list[str], log_keys: set[str]) -> str:
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    ref, gen = plots["shapes"]
    cols = 5
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        sp = metrics["variables"][key]["separation_power"] if key in metrics["variables"] else float("nan")
        label = f"log10 {key}/MeV" if key in log_keys else key
        _histogram_panel(ax, ref[key], gen[key], f"{label}  (SP {sp:.3f})", log10=key in log_keys)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{plots['layout']}: shower-shape variables", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # leave the suptitle its line
    return _png(fig)


def _log_norm(plt: Any, *images: np.ndarray) -> tuple[Any, float]:
    """A shared log colour scale over three decades below the brightest mean cell; returns it and its floor."""
    vmax = max([float(np.nanmax(im)) for im in images if im.size] + [1e-12])
    floor = 1e-3 * vmax
    return plt.matplotlib.colors.LogNorm(vmin=floor, vmax=vmax), floor


def _calogan_figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[str]:
    """Histograms of the paper's variables and the mean image of each layer (reference and generated)."""
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    out = [_histogram_grid(metrics, plots, list(CALOGAN_PAPER_VARIABLES), set())]
    geometry: CartesianGeometry = plots["geometry"]
    ref_images, gen_images = plots["mean_images"]
    n = len(geometry.layers)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 6), squeeze=False, layout="constrained")
    for i, layer in enumerate(geometry.layers):
        norm, floor = _log_norm(plt, ref_images[i], gen_images[i])
        for row, (images, name) in enumerate(((ref_images, "reference"), (gen_images, "generated"))):
            im = axes[row, i].imshow(images[i] + floor, aspect="auto", cmap="viridis", norm=norm)
            axes[row, i].set_title(f"{name}: mean {layer.name} (MeV)", fontsize=8)
            axes[row, i].set_ylabel(f"{layer.axis_names[0]} cell", fontsize=7)
            axes[row, i].set_xlabel(f"{layer.axis_names[1]} cell", fontsize=7)
            axes[row, i].tick_params(labelsize=6)
        fig.colorbar(im, ax=axes[:, i], fraction=0.05).ax.tick_params(labelsize=7)
    fig.suptitle(f"{plots['layout']}: mean showers", fontsize=10)
    out.append(_png(fig))
    return out


def _plotted_layers(metrics: dict[str, Any]) -> list[int]:
    """Positions of the layers shown in detail: the first, the one of largest mean energy (reference), the last."""
    mean = metrics["layer_energy"]["reference"]["mean"]
    return sorted({0, int(np.argmax(mean)), len(mean) - 1})


def _r_ticks(ax: Any, r_edges: tuple[float, ...]) -> None:
    """Label the bin boundaries of an image whose columns are r bins with their radii (mm), at most ~8 labels."""
    step = max(1, -(-(len(r_edges) - 1) // 8))
    ticks = list(range(0, len(r_edges), step))
    ax.set_xticks([t - 0.5 for t in ticks], [f"{r_edges[t]:g}" for t in ticks], fontsize=6)
    ax.set_xlabel("r (mm)", fontsize=7)


def _cylindrical_profile_figure(metrics: dict[str, Any], plots: dict[str, Any]) -> str:
    """Mean energy per layer (log y) and generated / reference."""
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    le = metrics["layer_energy"]
    ids = np.asarray(le["layer_ids"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for name, style in (("reference", {"fmt": "o", "ms": 3}), ("generated", {"fmt": "s", "ms": 3, "mfc": "none"})):
        top.errorbar(ids, le[name]["mean"], yerr=le[name]["sem"], label=name, **style)
    top.set_yscale("log")
    top.set_ylabel("mean layer energy (MeV)", fontsize=8)
    top.set_title(f"{plots['layout']}: mean energy per layer", fontsize=9)
    top.legend(fontsize=7)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(le["generated"]["mean"]) / np.asarray(le["reference"]["mean"])
    bottom.plot(ids, ratio, "k.")
    bottom.axhline(1.0, color="grey", lw=0.8)
    bottom.set_ylabel("generated / reference", fontsize=8)
    bottom.set_xlabel("layer", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def _cylindrical_image_figure(metrics: dict[str, Any], plots: dict[str, Any]) -> str:
    """Mean (alpha, r) images of the first, the brightest and the last layer, reference above generated."""
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    geometry: CylindricalGeometry = plots["geometry"]
    ref_images, gen_images = plots["mean_images"]
    picks = _plotted_layers(metrics)
    fig, axes = plt.subplots(2, len(picks), figsize=(4.2 * len(picks), 6), squeeze=False, layout="constrained")
    for col, i in enumerate(picks):
        layer, lid = geometry.layers[i], geometry.layer_ids[i]
        norm, floor = _log_norm(plt, ref_images[i], gen_images[i])
        for row, (images, name) in enumerate(((ref_images, "reference"), (gen_images, "generated"))):
            ax = axes[row, col]
            im = ax.imshow(images[i] + floor, aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
            ax.set_title(f"{name}: mean layer {lid} (MeV)", fontsize=8)
            ax.set_ylabel(f"alpha bin (of {layer.n_alpha})", fontsize=7)
            ax.set_yticks(range(0, layer.n_alpha, max(1, -(-layer.n_alpha // 8))))
            ax.tick_params(labelsize=6)
            _r_ticks(ax, layer.r_edges)
        fig.colorbar(im, ax=axes[:, col], fraction=0.05).ax.tick_params(labelsize=7)
    fig.suptitle(f"{plots['layout']}: mean showers in (alpha, r)", fontsize=10)
    return _png(fig)


def _r_profile_image(images: list[np.ndarray]) -> np.ndarray:
    """(layers, max n_r) mean energy per r bin (summed over alpha); NaN where a layer has fewer r bins (DS1)."""
    n_r = max(im.shape[1] for im in images)
    out = np.full((len(images), n_r), np.nan)
    for i, im in enumerate(images):
        out[i, : im.shape[1]] = im.sum(axis=0)
    return out


def _cylindrical_r_profile_figure(plots: dict[str, Any]) -> str:
    """The mean r-profile of every layer as a (layer, r) image, reference beside generated."""
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    geometry: CylindricalGeometry = plots["geometry"]
    ref, gen = (_r_profile_image(images) for images in plots["mean_images"])
    regular = geometry.regular_shape() is not None
    norm, floor = _log_norm(plt, ref, gen)
    height = min(9.0, 3.0 + 0.12 * len(geometry.layers))
    fig, axes = plt.subplots(1, 2, figsize=(10, height), squeeze=False, layout="constrained")
    for ax, image, name in zip(axes[0], (ref, gen), ("reference", "generated")):
        im = ax.imshow(np.ma.masked_invalid(image + floor), aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_title(f"{name}: mean energy per r bin and layer (MeV)", fontsize=8)
        step = max(1, -(-len(geometry.layers) // 12))
        rows = list(range(0, len(geometry.layers), step))
        ax.set_yticks(rows, [str(geometry.layer_ids[r]) for r in rows], fontsize=6)
        ax.set_ylabel("layer", fontsize=7)
        if regular:
            _r_ticks(ax, geometry.layers[0].r_edges)
        else:  # r binning differs per layer (DS1): columns are each layer's own r bins
            ax.set_xlabel("r bin (each layer's own binning)", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.colorbar(im, ax=axes[0, :], fraction=0.04).ax.tick_params(labelsize=7)
    fig.suptitle(f"{plots['layout']}: mean r-profile per layer", fontsize=10)
    return _png(fig)


def _cylindrical_figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[str]:
    """Histograms of a readable subset of the variables, the layer profile, (alpha, r) images, r-profiles."""
    geometry: CylindricalGeometry = plots["geometry"]
    ref, _ = plots["shapes"]
    keys = [k for k in ("etot_over_einc", "etot") if k in ref]
    for i in _plotted_layers(metrics):
        lid = geometry.layer_ids[i]
        keys += [f"{prefix}{lid}" for prefix in _CYLINDRICAL_PLOTTED if f"{prefix}{lid}" in ref]
    log_keys = {"etot"} | {f"e{lid}" for lid in geometry.layer_ids}
    return [
        _histogram_grid(metrics, plots, keys, log_keys),
        _cylindrical_profile_figure(metrics, plots),
        _cylindrical_image_figure(metrics, plots),
        _cylindrical_r_profile_figure(plots),
    ]


def _figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[str]:
    if isinstance(plots["geometry"], CylindricalGeometry):
        return _cylindrical_figures(metrics, plots)
    return _calogan_figures(metrics, plots)


# ----------------------------------------------------------------------------------------------
# report


def _classifier_row(what: str, clf: dict[str, Any]) -> list[Any]:
    if "skipped" in clf:
        return [f"classifier AUC, {what}", "not computed", clf["skipped"]]
    return [f"classifier AUC, {what} (0.5 = indistinguishable)", clf["auc"], f"± {clf['auc_se']:.3g} (null σ {clf['null_se']:.3g}; {clf['n_test']} test showers)"]


def write_shower_report(output: str | Path, metrics: dict[str, Any], plots: dict[str, Any], *, title: str, force: bool = True) -> Path:
    """``report.html`` and ``metrics.json`` in ``output`` (written atomically); returns the report's path.

    ``metrics`` and ``plots`` are :func:`compare_showers`' output.
    """
    from gansim.metrics.report import _STYLE, _table

    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [_classifier_row("high-level features", metrics["classifier_high"])]
    if "classifier_low" in metrics:
        rows.append(_classifier_row("low-level features (log E_inc, cells/E_inc)", metrics["classifier_low"]))
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
    layout = metrics.get("layout", plots.get("layout", ""))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(
        f"<p class='note'>Layout {html.escape(str(layout))}: {metrics['n_reference']} reference and {metrics['n_generated']} generated showers. "
        "Separation power: ½ Σ (h₁−h₂)²/(h₁+h₂) on normalised histograms with the reference's bins (0 identical, 1 disjoint).</p>"
    )
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
