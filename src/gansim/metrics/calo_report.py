"""Comparing generated calorimeter showers with reference ones: numbers, a self-contained HTML report, JSON.

Every layout gansim reads (:class:`~gansim.io.calo.ShowerData`):

* **CaloGAN** (Cartesian layers): every variable :func:`~gansim.metrics.calo_shapes.calogan_shower_shapes`
  returns, scored and histogrammed: the paper's figure set
  (:data:`~gansim.metrics.calo_shapes.CALOGAN_PAPER_VARIABLES`, listed in ``metrics["paper_variables"]``)
  first, then the others grouped by kind (E_tot/E_inc, the lateral width along eta, CaloChallenge's
  ``1 -`` sparsity ``sparsity_cc_i``, centres of energy, CaloFlow's brightest-cell fractions); mean
  shower images per layer;
* **CaloChallenge** (cylindrical voxels: DS2, DS3, DS1 from its XML): CaloChallenge's high-level
  set of :func:`~gansim.metrics.calo_shapes.cylindrical_shower_shapes` (per-layer energy, centres
  of energy and widths in x = r cos(alpha), y = r sin(alpha) and r, sparsity, E_tot and
  E_tot/E_inc); every variable is scored, a readable subset is plotted, beside the mean energy per
  layer, mean (alpha, r) images of a few layers and the mean r-profile of every layer.

For both: separation power and KS statistic per variable; the CaloChallenge classifier test on
the high-level vector and on the low-level input (log10 E_inc, cells / E_inc); FPD and KPD on the
high-level vector; the response (E_tot / E_inc) and resolution (its relative spread) in bins of
incident energy (CaloGAN: 1-100 GeV; CaloChallenge: the reference's energy range), as a table and a
figure. Figures are embedded PNGs, each under its own heading. :func:`shower_metrics_summary` is
the compact, strict-JSON digest of the numbers that training stores in the model manifest.
Energies are in MeV, positions in mm.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import DataError
from gansim.io.atomic import atomic_path
from gansim.io.calo import ShowerData
from gansim.io.calo_geometry import CartesianGeometry, CylindricalGeometry

__all__ = ["compare_showers", "shower_metrics_summary", "write_shower_report"]

#: Response bins of the CaloGAN layout (MeV): its data sets span 1-100 GeV.
_CALOGAN_EDGES_MEV = np.geomspace(1_000.0, 100_000.0, 6)
#: Incident-energy bins of the response table.
_N_ENERGY_BINS = 5
#: Cells per chunk when averaging or flattening showers (about 128 MB of float64): DS3 holds
#: 40,500 voxels per shower, and a float64 copy of 10^4 showers would be 3 GB.
_CHUNK_ELEMENTS = 1 << 24
#: Per-layer variables of the cylindrical set, in the order the report lists them.
_CYLINDRICAL_PER_LAYER = ("e", "ec_eta_", "ec_phi_", "width_eta_", "width_phi_", "ec_r_", "width_r_", "sparsity_cc_")
#: Kinds of the CaloGAN layout's variables outside the paper's set that the report lists first among
#: them (the issue names them; ``width_*`` is the width along the axis CaloGAN did not use); the other
#: kinds follow in the order :func:`calogan_shower_shapes` returns them.
_CARTESIAN_FIRST_EXTRAS = ("etot_over_einc", "width_", "sparsity_cc")
#: A variable's kind: its name less a trailing layer index (``brightest_2_1`` -> ``brightest_2``).
_LAYER_SUFFIX = re.compile(r"_?\d+$")
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


def _paper_keys(shapes: dict[str, np.ndarray]) -> list[str]:
    """The CaloGAN paper's variables among ``shapes``, in the paper's order (all of them for CaloGAN's axis names)."""
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES

    return [k for k in CALOGAN_PAPER_VARIABLES if k in shapes]


def _kind_rank(kind: str) -> int:
    """Position of a variable kind among :data:`_CARTESIAN_FIRST_EXTRAS`; the kinds not named there rank last."""
    for rank, first in enumerate(_CARTESIAN_FIRST_EXTRAS):
        if kind == first or (first.endswith("_") and kind.startswith(first)):
            return rank
    return len(_CARTESIAN_FIRST_EXTRAS)


def _cartesian_keys(shapes: dict[str, np.ndarray]) -> list[str]:
    """Every CaloGAN-layout variable: the paper's set first, then the others grouped by kind (layers in order)."""
    paper = _paper_keys(shapes)
    in_paper = set(paper)
    extra = [k for k in shapes if k not in in_paper]
    kinds = list(dict.fromkeys(_LAYER_SUFFIX.sub("", k) for k in extra))  # first-appearance order
    kinds.sort(key=_kind_rank)  # stable: the named kinds first, the rest as calogan_shower_shapes returns them
    return paper + [k for kind in kinds for k in extra if _LAYER_SUFFIX.sub("", k) == kind]


def _variable_keys(shapes: dict[str, np.ndarray], geometry: CartesianGeometry | CylindricalGeometry) -> list[str]:
    """The variables scored: every CaloGAN variable (the paper's first), or every CaloChallenge high-level variable (grouped by kind)."""
    if isinstance(geometry, CartesianGeometry):
        return _cartesian_keys(shapes)
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
    """Response and resolution per incident-energy bin, with their statistical errors.

    Args:
        etot: (N,) total deposited energy (MeV).
        energy: (N,) or (N, 1) incident energy (MeV).
        edges: (B + 1,) incident-energy bin edges (MeV).

    Returns:
        Lists of B values: ``response`` mean E_tot / E_inc, ``resolution`` its relative spread
        std / mean, ``response_error`` std / sqrt(n), ``resolution_error`` resolution / sqrt(2 (n - 1))
        (the Gaussian approximation: cheap, and right to ~10 % for the near-Gaussian response of a
        calorimeter), ``n`` the showers per bin. NaN where a bin has too few showers (0, or 1 for spreads).
    """
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    ratio = np.asarray(etot, dtype=np.float64) / e
    which = np.digitize(e, edges) - 1
    which[e == edges[-1]] = len(edges) - 2  # the top edge (the reference's maximum) belongs to the last bin
    out: dict[str, list[float]] = {"response": [], "resolution": [], "response_error": [], "resolution_error": [], "n": []}
    nan = float("nan")
    for b in range(len(edges) - 1):
        r = ratio[which == b]
        n = len(r)
        mean = float(r.mean()) if n else nan
        resolution = float(r.std() / mean) if n > 1 and mean > 0 else nan
        out["response"].append(mean)
        out["resolution"].append(resolution)
        out["response_error"].append(float(r.std(ddof=1) / math.sqrt(n)) if n > 1 else nan)
        out["resolution_error"].append(resolution / math.sqrt(2 * (n - 1)) if n > 1 else nan)
        out["n"].append(n)
    return out


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
        ``n_generated``, ``variables`` (name -> separation_power, ks, ref_mean, gen_mean; every
        variable of the layout's shape set, the CaloGAN paper's first), for the CaloGAN layout
        ``paper_variables`` (the names of the paper's set among them, e.g. for a mean separation
        power comparable with the paper's figures), ``high_level_features`` (column names),
        ``classifier_high`` and ``classifier_low`` (classifier_test's result, or
        ``{"skipped": why}``), ``fpd`` and ``kpd`` (value, error..., when computed), ``response``
        (``energy_edges_MeV`` and, per sample, lists per bin: ``response``, ``resolution``, their
        ``response_error`` and ``resolution_error``, and ``n`` showers) and, for CaloChallenge
        layouts, ``layer_energy`` (``layer_ids``, mean and standard error per layer in MeV per
        sample). ``plots`` is for :func:`write_shower_report`.

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
    if isinstance(geometry, CartesianGeometry):
        metrics["paper_variables"] = _paper_keys(ref_shapes)
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
    # a density's scale says nothing the shapes do not: no y labels (a third less drawing for the ~50-panel CaloGAN grids)
    ax.set_yticks([])


def _histogram_grid(metrics: dict[str, Any], plots: dict[str, Any], keys: list[str], log_keys: set[str], title: str = "shower-shape variables") -> str:
    """Histograms of ``keys``, five per row, each titled with its separation power; ``title`` is the figure's (and its alt text)."""
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    ref, gen = plots["shapes"]
    cols, panel_w, panel_h = 5, 3.4, 2.6  # inches per panel
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_w * cols, panel_h * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        sp = metrics["variables"][key]["separation_power"] if key in metrics["variables"] else float("nan")
        label = f"log10 {key}/MeV" if key in log_keys else key
        _histogram_panel(ax, ref[key], gen[key], f"{label}  (SP {sp:.3f})", log10=key in log_keys)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{plots['layout']}: {title}", fontsize=10, y=1 - 0.1 / fig.get_figheight())  # 0.1 in from the top, whatever the rows
    _grid_margins(fig, panel_h)
    return _png(fig, alt=f"{plots['layout']}: histograms of the {title}")


def _grid_margins(fig: Any, panel_h: float) -> None:
    """Fixed margins (inches) for a grid of histogram panels, instead of tight_layout.

    tight_layout measures every label of every panel (about 1 s for the ~50 panels of the CaloGAN
    grids); the panels have no y labels, so the room to leave is known: a title (8 pt) above each
    and x tick labels (6 pt) below, the suptitle (10 pt, 0.1 in from the top) above the first row.
    savefig's tight bbox trims the rest.
    """
    width, height = fig.get_size_inches()
    gap = 0.5  # between rows: a panel's x tick labels and the next one's title
    axes_h = panel_h - gap
    fig.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width, bottom=0.3 / height, top=1 - 0.6 / height, wspace=0.08, hspace=gap / axes_h)


def _log_norm(plt: Any, *images: np.ndarray) -> tuple[Any, float]:
    """A shared log colour scale over three decades below the brightest mean cell; returns it and its floor."""
    vmax = max([float(np.nanmax(im)) for im in images if im.size] + [1e-12])
    floor = 1e-3 * vmax
    return plt.matplotlib.colors.LogNorm(vmin=floor, vmax=vmax), floor


def _calogan_mean_images(plots: dict[str, Any]) -> str:
    """The mean image of each layer, reference above generated, on a shared log colour scale per layer."""
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
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
    return _png(fig, alt=f"{plots['layout']}: mean shower image per layer, reference and generated")


def _calogan_figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, image) pairs: histograms of the paper's variables, of the others, and the mean image of each layer."""
    paper = list(metrics.get("paper_variables", []))
    in_paper = set(paper)
    extra = [k for k in metrics["variables"] if k not in in_paper]  # scored in _variable_keys' order
    out = []
    if paper:  # always for CaloGAN's own axis names
        out.append(("Histograms: the CaloGAN paper's variables", _histogram_grid(metrics, plots, paper, set(), "CaloGAN paper's shower-shape variables")))
    if extra:
        out.append(("Histograms: further variables", _histogram_grid(metrics, plots, extra, set(), "further shower-shape variables")))
    out.append(("Mean shower images per layer", _calogan_mean_images(plots)))
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
    return _png(fig, alt=f"{plots['layout']}: mean energy per layer, reference and generated")


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
    return _png(fig, alt=f"{plots['layout']}: mean (alpha, r) images of layers {', '.join(str(geometry.layer_ids[i]) for i in picks)}")


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
    return _png(fig, alt=f"{plots['layout']}: mean r-profile per layer, reference and generated")


def _cylindrical_figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, image) pairs: histograms of a readable subset of the variables, the layer profile, (alpha, r) images, r-profiles."""
    geometry: CylindricalGeometry = plots["geometry"]
    ref, _ = plots["shapes"]
    keys = [k for k in ("etot_over_einc", "etot") if k in ref]
    for i in _plotted_layers(metrics):
        lid = geometry.layer_ids[i]
        keys += [f"{prefix}{lid}" for prefix in _CYLINDRICAL_PLOTTED if f"{prefix}{lid}" in ref]
    log_keys = {"etot"} | {f"e{lid}" for lid in geometry.layer_ids}
    layers = ", ".join(str(geometry.layer_ids[i]) for i in _plotted_layers(metrics))
    return [
        (f"Histograms: E_tot and the variables of layers {layers}", _histogram_grid(metrics, plots, keys, log_keys, f"shower-shape variables of layers {layers}")),
        ("Mean energy per layer", _cylindrical_profile_figure(metrics, plots)),
        ("Mean showers in (alpha, r)", _cylindrical_image_figure(metrics, plots)),
        ("Mean r-profile per layer", _cylindrical_r_profile_figure(plots)),
    ]


def _bin_centres_gev(edges_mev: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Geometric bin centres (GeV) and their (2, B) distances to the bin edges (the bins are log-spaced)."""
    edges = np.asarray(edges_mev, dtype=np.float64) / 1000.0
    centres = np.sqrt(edges[:-1] * edges[1:])
    return centres, np.stack([centres - edges[:-1], edges[1:] - centres])


def _response_figure(metrics: dict[str, Any], layout: str) -> str:
    """Response (mean E_tot / E_inc) above resolution (std / mean) per incident-energy bin, reference and generated.

    Points sit at the bins' geometric centres with horizontal bars spanning each bin; vertical
    bars are the statistical errors of :func:`_response` (absent in metrics from before them).
    """
    from gansim.metrics.report import _png, _pyplot

    plt = _pyplot()
    resp = metrics["response"]
    x, xerr = _bin_centres_gev(resp["energy_edges_MeV"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    styles = {"reference": {"fmt": "o", "ms": 4}, "generated": {"fmt": "s", "ms": 4, "mfc": "none"}}
    for name, style in styles.items():
        sample = resp[name]
        for ax, key in ((top, "response"), (bottom, "resolution")):
            yerr = sample.get(f"{key}_error")
            ax.errorbar(x, sample[key], xerr=xerr, yerr=yerr, label=name, capsize=2, lw=1, **style)
    top.set_ylabel("response  <E_tot / E_inc>", fontsize=8)
    bottom.set_ylabel("resolution  σ / mean", fontsize=8)
    bottom.set_xlabel("incident energy (GeV)", fontsize=8)
    bottom.set_xscale("log")
    top.set_title(f"{layout}: response and resolution vs incident energy", fontsize=9)
    top.legend(fontsize=7)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig, alt=f"{layout}: response and resolution versus incident energy, reference and generated")


def _figures(metrics: dict[str, Any], plots: dict[str, Any]) -> list[tuple[str, str]]:
    """The layout's distribution figures as (heading, image) pairs."""
    if isinstance(plots["geometry"], CylindricalGeometry):
        return _cylindrical_figures(metrics, plots)
    return _calogan_figures(metrics, plots)


# ----------------------------------------------------------------------------------------------
# report


#: Significant digits of the floats in :func:`shower_metrics_summary` (plenty for scores; keeps a DS3
#: manifest, 362 variables x 2 scores, at ~20 kB).
_SUMMARY_DIGITS = 6


def _classifier_row(what: str, clf: dict[str, Any]) -> list[Any]:
    if "skipped" in clf:
        return [f"classifier AUC, {what}", "not computed", clf["skipped"]]
    return [f"classifier AUC, {what} (0.5 = indistinguishable)", clf["auc"], f"± {clf['auc_se']:.3g} (null σ {clf['null_se']:.3g}; {clf['n_test']} test showers)"]


def _mean_separation_power(metrics: dict[str, Any], keys: list[str]) -> float:
    """Mean separation power over ``keys`` (variables with a NaN score, e.g. f_i of empty showers only, left out)."""
    values = [metrics["variables"][k]["separation_power"] for k in keys if k in metrics["variables"]]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _summary_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """The Summary table: classifier AUCs, FPD and KPD, mean and largest separation power."""
    rows = [_classifier_row("high-level features", metrics["classifier_high"])]
    if "classifier_low" in metrics:
        rows.append(_classifier_row("low-level features (log E_inc, cells/E_inc)", metrics["classifier_low"]))
    if "fpd" in metrics:
        rows.append(["FPD ×10³", 1e3 * metrics["fpd"]["value"], f"± {1e3 * metrics['fpd']['error']:.3g}"])
        rows.append(["KPD ×10³", 1e3 * metrics["kpd"]["value"], f"± {1e3 * metrics['kpd']['error']:.3g}"])
    if "paper_variables" in metrics:
        paper = list(metrics["paper_variables"])
        rows.append(["mean separation power, the CaloGAN paper's variables", _mean_separation_power(metrics, paper), f"{len(paper)} variables"])
    keys = list(metrics["variables"])
    rows.append(["mean separation power, every variable", _mean_separation_power(metrics, keys), f"{len(keys)} variables"])
    scored = [(k, v["separation_power"]) for k, v in metrics["variables"].items() if math.isfinite(v["separation_power"])]
    if scored:
        worst = max(scored, key=lambda kv: kv[1])
        rows.append(["largest separation power", worst[1], worst[0]])
    return rows


def _variable_tables(metrics: dict[str, Any]) -> list[str]:
    """The per-variable table: for the CaloGAN layout split in the paper's set and the rest (fewer rows to scan for each)."""
    from gansim.metrics.report import _table

    headers = ["variable", "separation power", "KS", "mean (reference)", "mean (generated)"]

    def table(keys: list[str]) -> str:
        return _table(headers, [[k, *(metrics["variables"][k][c] for c in ("separation_power", "ks", "ref_mean", "gen_mean"))] for k in keys])

    keys = list(metrics["variables"])
    if "paper_variables" not in metrics:
        return [table(keys)]
    paper = [k for k in metrics["paper_variables"] if k in metrics["variables"]]
    in_paper = set(paper)
    extra = [k for k in keys if k not in in_paper]
    out = ["<h3 id='paper-variables'>The CaloGAN paper's variables</h3>", table(paper)]
    if extra:
        out += [
            "<h3 id='further-variables'>Further variables</h3>",
            (
                "<p class='note'>Computed by calogan_shower_shapes beyond the paper's figure set: E_tot/E_inc, the lateral width along "
                "the other axis, CaloChallenge's sparsity (1 − CaloGAN's, sparsity_cc_i), centres of energy and CaloFlow's brightest-cell fractions.</p>"
            ),
            table(extra),
        ]
    return out


def _plus_minus(value: float, error: float | None) -> str:
    """``value ± error`` (``value`` alone when there is no finite error)."""
    if error is None or not math.isfinite(error):
        return f"{value:.4g}"
    return f"{value:.4g} ± {error:.2g}"


def _response_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per incident-energy bin: response and resolution of both samples (± their errors) and the shower counts."""
    resp = metrics["response"]
    edges = resp["energy_edges_MeV"]
    ref, gen = resp["reference"], resp["generated"]

    def cell(sample: dict[str, list[float]], key: str, i: int) -> str:
        errors = sample.get(f"{key}_error")
        return _plus_minus(sample[key][i], errors[i] if errors else None)

    rows = []
    for i in range(len(edges) - 1):
        counts = f"{ref['n'][i]} / {gen['n'][i]}" if "n" in ref and "n" in gen else ""
        rows.append([
            f"{edges[i] / 1000:.3g}–{edges[i + 1] / 1000:.3g} GeV",
            cell(ref, "response", i), cell(gen, "response", i), cell(ref, "resolution", i), cell(gen, "resolution", i), counts,
        ])
    return rows


def write_shower_report(output: str | Path, metrics: dict[str, Any], plots: dict[str, Any], *, title: str, force: bool = True) -> Path:
    """``report.html`` and ``metrics.json`` in ``output`` (written atomically); returns the report's path.

    ``metrics`` and ``plots`` are :func:`compare_showers`' output. The report's sections (``<h2>``
    with ids): Summary, Shower-shape variables, Response and resolution vs energy (table and
    figure), Distributions (one ``<h3>`` per figure), Numbers (JSON).
    """
    from gansim.metrics.report import _STYLE, _table

    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = str(metrics.get("layout", plots.get("layout", "")))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(
        f"<p class='note'>Layout {html.escape(layout)}: {metrics['n_reference']} reference and {metrics['n_generated']} generated showers. "
        "Separation power: ½ Σ (h₁−h₂)²/(h₁+h₂) on normalised histograms with the reference's bins (0 identical, 1 disjoint).</p>"
    )
    parts += ["<h2 id='summary'>Summary</h2>", _table(["metric", "value", "detail"], _summary_rows(metrics))]
    parts += ["<h2 id='variables'>Shower-shape variables</h2>", *_variable_tables(metrics)]
    parts += [
        "<h2 id='response'>Response and resolution vs energy</h2>",
        _table(["E_inc", "E_tot/E_inc ref", "E_tot/E_inc gen", "σ/mean ref", "σ/mean gen", "showers ref / gen"], _response_rows(metrics)),
        _response_figure(metrics, layout),
    ]
    parts.append("<h2 id='distributions'>Distributions</h2>")
    for heading, image in _figures(metrics, plots):
        parts += [f"<h3>{html.escape(heading)}</h3>", image]
    parts += ["<h2 id='json'>Numbers (JSON)</h2><pre>" + html.escape(json.dumps(metrics, indent=2, default=float)) + "</pre></body></html>"]
    with atomic_path(out_dir / "report.html", force=force) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    with atomic_path(out_dir / "metrics.json", force=force) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return out_dir / "report.html"


# ----------------------------------------------------------------------------------------------
# manifest summary


def _compact(value: Any) -> Any:
    """Strict JSON: floats rounded to :data:`_SUMMARY_DIGITS` significant digits, NaN and inf as None, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return float(f"{v:.{_SUMMARY_DIGITS}g}") if math.isfinite(v) else None
    return value


def shower_metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scores of :func:`compare_showers`' metrics, compact and strict JSON: what training stores in the model manifest.

    Returns, in this order (the headline numbers first):
        ``layout``, ``n_reference``, ``n_generated``; ``classifier_{low,high}_auc``, ``..._auc_se``
        and ``..._null_se`` (or ``classifier_{level}_skipped``: why); ``fpd`` and ``kpd``
        (``value``, ``error``... as compare_showers gives them) when computed; for the CaloGAN
        layout ``mean_separation_power_paper`` (over the paper's variables), then
        ``mean_separation_power`` (over every variable); ``separation_power`` and ``ks`` (variable
        -> value, every variable scored); for the CaloGAN layout ``paper_variables``; ``response``:
        ``energy_edges_MeV`` (B + 1, MeV) and, for ``reference`` and ``generated``, lists of B values
        (``response``, ``resolution``, their ``*_error``, ``n``). Floats keep 6 significant
        digits; NaN (an empty bin, an unscorable variable) is ``None``. The per-variable means,
        layer-energy profile and classifier settings stay in the report's metrics.json.
    """
    variables = metrics["variables"]
    summary: dict[str, Any] = {
        "layout": metrics.get("layout"),
        "n_reference": metrics.get("n_reference"),
        "n_generated": metrics.get("n_generated"),
    }
    # headline numbers first: `gansim info` shows the first few hundred characters of the manifest's metrics
    for level in ("low", "high"):
        clf = metrics.get(f"classifier_{level}")
        if clf is None:
            continue
        if "auc" in clf:
            for key in ("auc", "auc_se", "null_se"):
                if key in clf:
                    summary[f"classifier_{level}_{key}"] = clf[key]
        elif "skipped" in clf:
            summary[f"classifier_{level}_skipped"] = clf["skipped"]
    for name in ("fpd", "kpd"):
        if name in metrics:
            summary[name] = {k: v for k, v in metrics[name].items() if np.isscalar(v)}
    if "paper_variables" in metrics:
        summary["mean_separation_power_paper"] = _mean_separation_power(metrics, list(metrics["paper_variables"]))
    summary["mean_separation_power"] = _mean_separation_power(metrics, list(variables))
    summary["separation_power"] = {k: v["separation_power"] for k, v in variables.items()}
    summary["ks"] = {k: v["ks"] for k, v in variables.items()}
    if "paper_variables" in metrics:
        summary["paper_variables"] = list(metrics["paper_variables"])
    if "response" in metrics:
        summary["response"] = metrics["response"]
    return _compact(summary)
