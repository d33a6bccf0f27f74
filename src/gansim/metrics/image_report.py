"""The HTML report of the labelled-image family (PACGAN): one self-contained file, PNG figures embedded.

Building blocks, each returning an HTML fragment (a ``<img>`` tag with base64 PNG data and an alt
text, a table, or a short note when there is nothing to plot):

* :func:`image_grid`: example images, one row per class;
* :func:`training_curves`: losses and critic outputs from ``stats.jsonl`` against images seen,
  with the start of each resolution level marked;
* :func:`roc_figure`, :func:`confusion_figure`, :func:`metrics_table`;
* :func:`classification_sections`: the sections of a
  :func:`~gansim.metrics.classification.classification_summary`;

and :func:`write_image_report`, which puts sections together into one HTML file (atomically,
never overwriting without ``force``). Plots use matplotlib's Agg backend (no screen needed).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError
from gansim.io.atomic import atomic_path
from gansim.metrics.report import _STYLE, _png, _pyplot

__all__ = [
    "classification_sections",
    "confusion_figure",
    "display_window",
    "image_grid",
    "image_mosaic",
    "metrics_table",
    "roc_figure",
    "training_curves",
    "write_image_report",
]

#: Stats keys plotted by :func:`training_curves`, by panel: the loop's losses, then the objective's extra scalars.
_FAMILIES = (("loss/", "losses"), ("D/", "discriminator"), ("G/", "generator"), ("val/", "validation"))
#: Blank pixels between the tiles of a mosaic (shown white).
_GAP = 2
#: Quantiles that set the display window of images outside [-1, 1] (robust to a few hot pixels).
_WINDOW_QUANTILES = (0.005, 0.995)


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


# ----------------------------------------------------------------------------------------------
# example images


def display_window(images: np.ndarray) -> tuple[float, float, str]:
    """The one intensity window of a grid: (low, high, description).

    Images inside [-1, 1] (a generator's tanh output, PACGAN's scaled slices) are shown on
    [-1, 1], so a grid of generated and real images looks the same; anything else (physical
    intensities) on its 0.5-99.5 % quantiles.
    """
    finite = images[np.isfinite(images)]
    if finite.size == 0:
        return -1.0, 1.0, "window [-1, 1] (no finite pixel)"
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= -1.0 and hi <= 1.0:
        return -1.0, 1.0, "window [-1, 1] (model range)"
    qlo, qhi = (float(v) for v in np.quantile(finite, _WINDOW_QUANTILES))
    if qhi <= qlo:  # a flat image: any window that shows it as mid-grey
        qlo, qhi = qlo - 0.5, qlo + 0.5
    return qlo, qhi, f"window [{qlo:.4g}, {qhi:.4g}] (0.5-99.5 % quantiles of the shown pixels)"


def _check_images(images: Any, labels: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"images: expected an (N, C, H, W) array with C = 1 (grayscale) or 3 (RGB), got shape {x.shape}")
    y = np.asarray(labels)
    if y.shape != (x.shape[0],) or (len(y) and y.dtype.kind not in "iub"):
        raise DataError(f"labels: expected {x.shape[0]} integer class indices (one per image), got shape {y.shape} of type {y.dtype}")
    y = y.astype(np.int64)
    outside = (y < 0) | (y >= n_classes)
    if outside.any():
        raise DataError(f"labels: class indices must lie in [0, {n_classes - 1}] for the {n_classes} class names, got {sorted(set(y[outside].tolist()))[:5]}")
    return x, y


def image_mosaic(images: Any, labels: Any, n_classes: int, per_class: int = 8, window: tuple[float, float] | None = None) -> tuple[np.ndarray, list[int], str]:
    """Tile the first ``per_class`` images of each class into one picture, one row per class.

    Args:
        images: (N, C, H, W) with C = 1 or 3, in [-1, 1] or physical intensities.
        labels: (N,) class indices in [0, n_classes).
        n_classes: rows of the mosaic (a class without images gives an empty, white row).
        per_class: columns of the mosaic.
        window: (low, high) intensities mapped to black and white; None: :func:`display_window`.

    Returns:
        The mosaic, float in [0, 1], shape ``(K*H + (K-1)*gap, P*W + (P-1)*gap, 3)`` (gap = 2
        white pixels; grayscale is repeated into the three channels); the number of images shown
        per class; the window's description.
    """
    if per_class < 1:
        raise ConfigError(f"per_class: expected at least 1 image per class, got {per_class}")
    x, y = _check_images(images, labels, n_classes)
    picks = [np.flatnonzero(y == c)[:per_class] for c in range(n_classes)]
    shown = x[np.concatenate(picks)] if any(len(p) for p in picks) else x[:0]
    if window is None:
        lo, hi, text = display_window(shown)
    else:
        lo, hi = float(window[0]), float(window[1])
        if not hi > lo:
            raise DataError(f"window: expected (low, high) with high > low, got {window}")
        text = f"window [{lo:.4g}, {hi:.4g}] (given)"
    _, _, h, w = x.shape
    mosaic = np.ones((n_classes * (h + _GAP) - _GAP, per_class * (w + _GAP) - _GAP, 3))
    for row, idx in enumerate(picks):
        for col, i in enumerate(idx):
            tile = np.clip((x[i] - lo) / (hi - lo), 0.0, 1.0)
            tile = np.nan_to_num(tile, nan=0.0)
            tile = np.repeat(tile, 3, axis=0) if tile.shape[0] == 1 else tile
            r0, c0 = row * (h + _GAP), col * (w + _GAP)
            mosaic[r0 : r0 + h, c0 : c0 + w] = tile.transpose(1, 2, 0)
    return mosaic, [len(p) for p in picks], text


def image_grid(images: Any, labels: Any, class_names: Sequence[str], per_class: int = 8, title: str = "example images", *, window: tuple[float, float] | None = None) -> str:
    """Example images as an ``<img>`` tag: one row per class (named on the left), up to ``per_class`` per row.

    ``images`` (N, C, H, W), C = 1 (grayscale) or 3 (RGB), and ``labels`` (N,) as in
    :func:`image_mosaic`; one intensity window for the whole grid, named in the figure's title and
    alt text. The first images of each class are shown (deterministic).
    """
    names = [str(n) for n in class_names]
    if not names:
        raise DataError("class_names: expected at least one class name")
    mosaic, counts, window_text = image_mosaic(images, labels, len(names), per_class, window)
    h, w = np.asarray(images).shape[2:]
    plt = _pyplot()
    tile_inch = max(0.6, min(1.4, 10.0 / per_class))
    fig, ax = plt.subplots(figsize=(1.5 + tile_inch * per_class, 0.8 + tile_inch * len(names) * h / w))
    ax.imshow(mosaic, interpolation="nearest", vmin=0.0, vmax=1.0)
    ax.set_yticks([r * (h + _GAP) + (h - 1) / 2 for r in range(len(names))])
    ax.set_yticklabels([f"{n} ({c})" for n, c in zip(names, counts)])
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"{title}\n{window_text}", fontsize=9)
    fig.tight_layout()
    return _png(fig, alt=f"{title}: up to {per_class} images per class ({', '.join(names)}), {window_text}")


# ----------------------------------------------------------------------------------------------
# training curves


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def training_curves(stats_records: Sequence[Mapping[str, Any]], level_starts: Sequence[int] = (), sizes: Sequence[int] = (), title: str = "training curves") -> str:
    """Losses and critic outputs against images seen, one panel per family of quantities.

    Args:
        stats_records: the records of ``stats.jsonl`` (``rows_seen`` = images seen, ``loss/D``,
            ``loss/G``, and any ``D/...``, ``G/...``, ``val/...``); records without
            ``rows_seen`` and non-numeric values are skipped.
        level_starts: images seen at the start of each resolution level.
        sizes: the image size of each level in pixels (same length), labelled e.g. "8 px".

    Returns:
        An ``<img>`` tag, or a note when no record holds a plotted quantity.
    """
    if len(level_starts) != len(sizes):
        raise DataError(f"level_starts and sizes: expected one image size per level start, got {len(level_starts)} starts and {len(sizes)} sizes")
    records = [r for r in stats_records if not math.isnan(_number(r.get("rows_seen")))]
    panels = []
    for prefix, name in _FAMILIES:
        keys = sorted({k for r in records for k in r if k.startswith(prefix) and not math.isnan(_number(r[k]))})
        if keys:
            panels.append((name, keys))
    if not panels:
        return _note("No training statistics with losses were recorded.")
    x = np.array([_number(r["rows_seen"]) for r in records])
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (name, keys) in zip(axes[:, 0], panels):
        for key in keys:
            ax.plot(x, [_number(r.get(key)) for r in records], lw=1.2, label=key, marker="." if len(records) < 3 else None)
        for start, size in zip(level_starts, sizes):
            ax.axvline(start, color="0.5", lw=0.8, ls="--")
        ax.set_ylabel(name)
        ax.legend(fontsize=8, ncol=4, loc="best")
    top = axes[0, 0]
    for start, size in zip(level_starts, sizes):
        top.annotate(f"{size} px", xy=(start, 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2), textcoords="offset points", fontsize=8, color="0.3")
    top.set_title(title, fontsize=10, pad=14 if level_starts else 6)
    axes[-1, 0].set_xlabel("images seen")
    fig.tight_layout()
    return _png(fig, alt=f"{title}: {', '.join(name for name, _ in panels)} against images seen" + (f"; levels start at {', '.join(f'{s} px' for s in sizes)}" if sizes else ""))


# ----------------------------------------------------------------------------------------------
# classification figures and tables


def roc_figure(roc: Mapping[str, Mapping[str, Any]], title: str = "ROC curves") -> str:
    """ROC curves (from :func:`~gansim.metrics.classification.roc_curves`), each labelled with its AUC, and the chance diagonal.

    Returns a note instead when ``roc`` is empty (a class without images has no curve).
    """
    if not roc:
        return _note("No ROC curve: the labels do not hold every class.")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="chance")
    for name, curve in roc.items():
        if len(curve["fpr"]) != len(curve["tpr"]):
            raise DataError(f"roc[{name!r}]: fpr and tpr must have the same length, got {len(curve['fpr'])} and {len(curve['tpr'])}")
        ax.plot(curve["fpr"], curve["tpr"], lw=1.5, drawstyle="default", label=f"{name} (AUC {float(curve['auc']):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig, alt=f"{title}: " + ", ".join(f"{name} AUC {float(c['auc']):.3f}" for name, c in roc.items()))


def confusion_figure(matrix: Any, class_names: Sequence[str], title: str = "confusion matrix") -> str:
    """The confusion matrix (rows true class, columns predicted) as a heat map of row fractions, each cell labelled with its count and percentage of the row."""
    m = np.asarray(matrix)
    names = [str(n) for n in class_names]
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(names):
        raise DataError(f"matrix: expected a square ({len(names)}, {len(names)}) confusion matrix for the class names {names}, got shape {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    fraction = np.divide(m, rows, out=np.zeros(m.shape), where=rows > 0)
    plt = _pyplot()
    side = 1.2 + 0.9 * len(names)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{int(m[i, j])}\n{100 * fraction[i, j]:.0f} %" if rows[i, 0] else "0"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if fraction[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=30 if max(map(len, names)) > 6 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    return _png(fig, alt=f"{title}: rows true class, columns predicted ({', '.join(names)})")


def _cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, NaN/None/missing as an em dash, everything else as text."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "—" if math.isnan(value) else f"{float(value):.4g}"
    return str(value)


def metrics_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """An HTML table of ``rows`` (one dict each) under ``columns`` (their keys, also the headers); everything escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def classification_sections(summary: Mapping[str, Any], title: str = "classification") -> list[tuple[str, str]]:
    """Report sections for a :func:`~gansim.metrics.classification.classification_summary`: (heading, HTML) pairs.

    Without labels: the predicted counts. With labels: the scores (accuracy, balanced accuracy,
    AUC and its interval, or why there is none), per-class counts and recall, the ROC curves and the
    confusion matrix.
    """
    names = list(summary["class_names"])
    predicted = summary["predicted_counts"]
    if "confusion" not in summary:
        rows = [{"class": n, "predicted images": predicted[n]} for n in names]
        return [(f"{title}: predicted classes", _note("No true labels were given: only the predicted classes are counted.") + metrics_table(rows, ["class", "predicted images"]))]
    scores = [
        {"metric": "accuracy", "value": summary["accuracy"], "detail": f"{summary['n_images']} images"},
        {"metric": "balanced accuracy", "value": summary["balanced_accuracy"], "detail": "mean recall over the classes present"},
    ]
    auc = summary.get("auc")
    if auc is not None:
        scores.append({
            "metric": "AUC (whole set)" + (" (one-vs-rest, macro)" if summary["n_classes"] > 2 else ""),
            "value": auc["auc"],
            "detail": f"{100 * auc['level']:.0f} % CI [{auc['lo']:.4g}, {auc['hi']:.4g}], {auc['n_boot']} stratified bootstrap resamples",
        })
    else:
        scores.append({"metric": "AUC", "value": None, "detail": summary.get("auc_skipped", "")})
    per_class = [{"class": n, "images": summary["counts"][n], "predicted": predicted[n], "recall": summary["recall"][n]} for n in names]
    sections = [
        (f"{title}: scores", metrics_table(scores, ["metric", "value", "detail"])),
        (f"{title}: per class", metrics_table(per_class, ["class", "images", "predicted", "recall"])),
    ]
    if summary.get("roc"):
        sections.append((f"{title}: ROC", roc_figure(summary["roc"], title=f"{title}: ROC")))
    sections.append((f"{title}: confusion matrix", confusion_figure(summary["confusion"], names, title=f"{title}: confusion matrix")))
    return sections


# ----------------------------------------------------------------------------------------------
# the file


def _plain(value: Any) -> Any:
    """json.dumps fallback: numpy scalars and arrays as Python numbers and lists, anything else as its text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def write_image_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    sections: Sequence[tuple[str, str]],
    manifest: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    force: bool = False,
) -> Path:
    """Write one self-contained HTML report; returns its path.

    Args:
        path: the HTML file (written atomically; an existing file is kept unless ``force``).
        title: the page title and ``<h1>`` (escaped).
        sections: (heading, HTML) pairs in order; headings are escaped, the HTML fragments (from
            this module's functions) are inserted as they are.
        manifest: the model manifest, shown as indented JSON in a collapsed ``<details>`` block.
        notes: sentences shown under the title (escaped).
        force: overwrite an existing file.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts += [_note(n) for n in notes]
    for heading, fragment in sections:
        parts += [f"<h2>{html.escape(str(heading))}</h2>", fragment]
    if manifest is not None:
        text = json.dumps(manifest, indent=2, default=_plain)
        parts.append(f"<h2>Model manifest</h2><details><summary>manifest (JSON)</summary><pre>{html.escape(text)}</pre></details>")
    parts.append("</body></html>")
    with atomic_path(path, force=force, suffix=".html") as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return Path(path)
