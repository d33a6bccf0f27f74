"""Orthogonal views of 3-D volumes for the translation family's HTML report.

* :func:`orthogonal_views`: rows of volumes (input, output, target, difference), three columns:
  axial (the XY plane at one z), coronal (XZ at one y) and sagittal (YZ at one x);
* :func:`subject_section`: one test subject's metrics and views, a (heading, HTML) section;
* :func:`training_views`: the output of a fixed volume at checkpoints during training;

each returning an ``<img>`` tag (base64 PNG) that
:func:`gansim.metrics.image_report.write_image_report` puts into the one-file report.

Display conventions (stated in every figure's title and alt text):

* Arrays are (X, Y, Z) indexed [i, j, k] in the canonical RAS+ frame: i runs to the patient's
  Right, j to Anterior, k to Superior (``nibabel.as_closest_canonical`` gives it).
* **Neurological convention**: the patient's right is on the right of the image. Axial and
  coronal panels show i left to right; the sagittal panel shows j left to right (anterior on the
  right); superior (coronal, sagittal) and anterior (axial) point up. Every panel carries its
  orientation letters.
* Panels are drawn in millimetres from the voxel spacing, so anisotropic voxels keep the
  anatomy's true proportions.
* Rows of one *group* share one intensity window: by default the 0.5-99.5 % percentiles of all
  their voxels (input and output/target have different contrasts, so they are separate groups).
  Difference rows use a diverging colormap on a window symmetric about 0 (± the 99.5 % percentile
  of the absolute difference), with a colour bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError
from gansim.metrics.image_report import metrics_table
from gansim.metrics.report import _png, _pyplot

__all__ = ["DIFFERENCE", "PLANES", "orthogonal_views", "subject_section", "training_views", "views_figure"]

#: The group name of difference rows (diverging colormap, window symmetric about 0).
DIFFERENCE = "difference"
#: Percentiles of a group's voxels that set its display window.
WINDOW_PERCENTILES = (0.5, 99.5)
#: The three planes: (name, plane label, fixed axis); the shown axes follow from the fixed one.
PLANES = (("axial", "XY", 2), ("coronal", "XZ", 1), ("sagittal", "YZ", 0))
#: Orientation letters (low end, high end) of the axes i, j, k in RAS+.
_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))
_CONVENTION = "neurological convention (patient's right on the image's right), RAS+ arrays"
#: Height of one row of panels in inches.
_ROW_INCH = 2.3


# ----------------------------------------------------------------------------------------------
# checks


def _spacing(spacing_mm: Any) -> tuple[float, float, float]:
    try:
        s = tuple(float(v) for v in spacing_mm)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"spacing_mm {spacing_mm!r}: expected three voxel sizes in mm (sx, sy, sz)") from exc
    if len(s) != 3 or not all(math.isfinite(v) and v > 0 for v in s):
        raise ConfigError(f"spacing_mm {spacing_mm!r}: expected three finite voxel sizes in mm, each > 0")
    return s  # type: ignore[return-value]


def _rows(volumes: Sequence[Any]) -> list[tuple[str, np.ndarray, str]]:
    """(title, float64 volume, group) per row; all volumes on one (X, Y, Z) grid."""
    if isinstance(volumes, (str, bytes)) or not isinstance(volumes, Sequence) or not volumes:
        raise DataError("volumes: expected a non-empty list of (title, (X, Y, Z) array) or (title, array, group) tuples")
    rows = []
    for index, item in enumerate(volumes):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise DataError(f"volumes[{index}]: expected (title, array) or (title, array, group), got {type(item).__name__}")
        title, array = str(item[0]), item[1]
        group = str(item[2]) if len(item) == 3 else (DIFFERENCE if title.lower().startswith(DIFFERENCE) else "intensity")
        x = np.asarray(array, dtype=np.float64)
        if x.ndim != 3:
            raise DataError(f"volume {title!r}: expected a 3-D (X, Y, Z) array, got shape {x.shape}")
        if rows and x.shape != rows[0][1].shape:
            raise DataError(f"volume {title!r} has shape {x.shape}, volume {rows[0][0]!r} {rows[0][1].shape}: expected one (X, Y, Z) grid")
        if not np.isfinite(x).all():
            raise DataError(f"volume {title!r}: {int((~np.isfinite(x)).sum())} NaN or infinite voxel(s); expected finite intensities")
        rows.append((title, x, group))
    return rows


def _center(center: Any, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if center is None:
        return tuple(n // 2 for n in shape)  # type: ignore[return-value]
    c = tuple(center)
    if len(c) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < n for v, n in zip(c, shape)):
        raise ConfigError(f"center {center!r}: expected three voxel indices (i, j, k) inside the volume shape {shape}")
    return tuple(int(v) for v in c)  # type: ignore[return-value]


def _window(values: list[np.ndarray]) -> tuple[float, float]:
    """The group's window: the 0.5-99.5 % percentiles of its voxels (widened around a flat group)."""
    lo, hi = (float(v) for v in np.percentile(np.concatenate([v.ravel() for v in values]), WINDOW_PERCENTILES))
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


def _windows(rows: list[tuple[str, np.ndarray, str]], window: Any) -> dict[str, tuple[float, float, str]]:
    """(low, high, description) per group.

    ``window``: None, one (low, high) for every non-difference group, or {group: (low, high)} or
    {group: (low, high, how it was chosen)}.
    """
    groups: dict[str, list[np.ndarray]] = {}
    for _, x, group in rows:
        groups.setdefault(group, []).append(x)
    given: Mapping[str, Any]
    if window is None:
        given = {}
    elif isinstance(window, Mapping):
        unknown = set(window) - set(groups)
        if unknown:
            raise ConfigError(f"window: groups {sorted(unknown)} are not among the rows' groups {sorted(groups)}")
        given = window
    else:
        given = {g: window for g in groups if g != DIFFERENCE}
    out = {}
    for group, values in groups.items():
        if group in given:
            spec = tuple(given[group]) if isinstance(given[group], (tuple, list)) else ()
            how = str(spec[2]) if len(spec) == 3 else "given"
            try:
                lo, hi = (float(v) for v in spec[:2])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"window for {group!r}: expected (low, high), got {given[group]!r}") from exc
            if len(spec) not in (2, 3) or not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ConfigError(f"window for {group!r}: expected finite (low, high) with high > low, got {given[group]!r}")
            if group == DIFFERENCE:
                half = max(abs(lo), abs(hi))
                lo, hi = -half, half
            out[group] = (lo, hi, f"{group} [{lo:.4g}, {hi:.4g}] ({how})")
        elif group == DIFFERENCE:
            half = float(np.percentile(np.abs(np.concatenate([v.ravel() for v in values])), WINDOW_PERCENTILES[1]))
            half = half if half > 0 else 1.0  # an all-zero difference: any symmetric window shows it as white
            out[group] = (-half, half, f"{group} ±{half:.4g} ({WINDOW_PERCENTILES[1]:g} % of |difference|)")
        else:
            lo, hi = _window(values)
            out[group] = (lo, hi, f"{group} [{lo:.4g}, {hi:.4g}] ({WINDOW_PERCENTILES[0]:g}-{WINDOW_PERCENTILES[1]:g} % percentiles)")
    return out


# ----------------------------------------------------------------------------------------------
# geometry


def plane_slice(volume: np.ndarray, plane: str, center: Sequence[int], spacing_mm: Sequence[float]) -> tuple[np.ndarray, tuple[float, float, float, float], tuple[int, int]]:
    """One plane of a RAS+ volume, ready for ``imshow(..., origin="lower", extent=extent)``.

    Args:
        volume: (X, Y, Z).
        plane: "axial" (XY at ``center[2]``), "coronal" (XZ at ``center[1]``) or "sagittal"
            (YZ at ``center[0]``).
        center: the voxel (i, j, k) the planes pass through.
        spacing_mm: (sx, sy, sz) in mm.

    Returns:
        The image (rows along the vertical axis, columns along the horizontal axis), its extent
        (left, right, bottom, top) in mm, and the (horizontal, vertical) array axes shown.
    """
    fixed = {name: axis for name, _, axis in PLANES}.get(plane)
    if fixed is None:
        raise ConfigError(f"plane {plane!r}: expected one of {[p[0] for p in PLANES]}")
    h_axis, v_axis = (a for a in range(3) if a != fixed)
    image = np.take(volume, center[fixed], axis=fixed)  # 2-D, axes (h_axis, v_axis) in order
    extent = (0.0, volume.shape[h_axis] * spacing_mm[h_axis], 0.0, volume.shape[v_axis] * spacing_mm[v_axis])
    return image.T, extent, (h_axis, v_axis)


def views_figure(
    volumes: Sequence[Any],
    spacing_mm: Sequence[float],
    center: Sequence[int] | None = None,
    window: Any = None,
    title: str = "orthogonal views",
) -> tuple[Any, str]:
    """The matplotlib figure of :func:`orthogonal_views` and its description (for the alt text).

    The figure is returned open (call ``_png`` or ``plt.close`` on it); its ``axes`` hold the
    panels row by row (three per volume), then the colour bars.
    """
    rows = _rows(volumes)
    s = _spacing(spacing_mm)
    shape = rows[0][1].shape
    c = _center(center, shape)
    windows = _windows(rows, window)
    mm = [n * d for n, d in zip(shape, s)]
    widths = [mm[0], mm[0], mm[1]]  # panel widths in mm: axial and coronal show i, sagittal shows j
    height_mm = max(mm[1], mm[2])  # the tallest panel of a row: axial shows j, the others k
    inch_per_mm = _ROW_INCH / height_mm
    plt = _pyplot()
    fig = plt.figure(figsize=(1.2 + inch_per_mm * sum(widths) * 1.12 + 0.9, 0.9 + _ROW_INCH * 1.15 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(len(rows), 4, width_ratios=[*widths, 0.04 * sum(widths)])
    for r, (row_title, x, group) in enumerate(rows):
        lo, hi, _ = windows[group]
        cmap = "RdBu_r" if group == DIFFERENCE else "gray"
        shown = None
        for col, (plane, label, fixed) in enumerate(PLANES):
            ax = fig.add_subplot(grid[r, col])
            image, extent, (h_axis, v_axis) = plane_slice(x, plane, c, s)
            shown = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest", aspect="equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{_LETTERS[h_axis][0]} \u2190 \u2192 {_LETTERS[h_axis][1]}", fontsize=7, labelpad=1)
            ax.set_ylabel(f"{_LETTERS[v_axis][0]} \u2192 {_LETTERS[v_axis][1]}", fontsize=7, labelpad=1)
            if r == 0:
                ax.set_title(f"{plane} ({label}, {'xyz'[fixed]} = {c[fixed]})", fontsize=8)
            if col == 0:
                ax.annotate(row_title, xy=(0, 0.5), xycoords="axes fraction", xytext=(-16, 0), textcoords="offset points", ha="right", va="center", rotation=90, fontsize=9)
        bar = fig.colorbar(shown, cax=fig.add_subplot(grid[r, 3]))
        bar.ax.tick_params(labelsize=7)
    windows_text = "; ".join(w[2] for w in windows.values())
    fig.suptitle(f"{title}\n{_CONVENTION}\nwindows: {windows_text}", fontsize=9)
    spacing_text = f"spacing {s[0]:g} x {s[1]:g} x {s[2]:g} mm"
    description = (
        f"{title}: rows {', '.join(t for t, _, _ in rows)}; columns axial (XY plane at z = {c[2]}), "
        f"coronal (XZ plane at y = {c[1]}), sagittal (YZ plane at x = {c[0]}); {spacing_text}; {_CONVENTION}; windows: {windows_text}"
    )
    return fig, description


def orthogonal_views(
    volumes: Sequence[Any],
    spacing_mm: Sequence[float],
    center: Sequence[int] | None = None,
    window: Any = None,
    title: str = "orthogonal views",
) -> str:
    """Axial, coronal and sagittal slices of each volume as one ``<img>`` tag, one row per volume.

    Args:
        volumes: (title, (X, Y, Z) array) or (title, array, group) per row, all on one grid, RAS+.
            Rows of one group share a window; a row titled "difference" (or of group
            ``"difference"``) is shown on a diverging colormap symmetric about 0; other 2-tuples
            fall in the group "intensity".
        spacing_mm: (sx, sy, sz) voxel size in mm: panels are drawn to scale.
        center: the voxel (i, j, k) the three planes pass through; None: the middle voxel.
        window: None (percentiles, see the module docstring), one (low, high) for every
            non-difference group, or {group: (low, high)}.
        title: the figure's title (the window and the display convention are added to it).

    Returns:
        ``<img alt="...">`` whose alt text names the rows, the planes and their positions, the
        spacing, the convention and the windows.
    """
    fig, description = views_figure(volumes, spacing_mm, center, window, title)
    return _png(fig, alt=description)


# ----------------------------------------------------------------------------------------------
# report sections


def subject_section(
    name: str,
    input: Any,
    output: Any,
    target: Any,
    spacing_mm: Sequence[float],
    metrics_row: Mapping[str, Any] | None,
    *,
    center: Sequence[int] | None = None,
    input_label: str = "input",
    output_label: str = "output",
) -> tuple[str, str]:
    """One test subject's section: its metrics (a one-row table) and orthogonal views.

    Rows: input (its own window), output and target (one shared window, same contrast) and the
    difference ``output - target`` (red where the output is brighter). ``target`` None shows input
    and output only. ``metrics_row`` is a row of
    :func:`gansim.metrics.volume_quality.evaluate_pairs` (or None for no table).

    Returns:
        (heading, HTML) for :func:`gansim.metrics.image_report.write_image_report`.
    """
    out = np.asarray(output, dtype=np.float64)
    volumes: list[tuple[str, Any, str]] = [(input_label, input, "input"), (output_label, out, "output")]
    if target is not None:
        tgt = np.asarray(target, dtype=np.float64)
        if tgt.shape != out.shape:
            raise DataError(f"subject {name!r}: output shape {out.shape} differs from the target's {tgt.shape}")
        volumes += [("target", tgt, "output"), (f"{DIFFERENCE} ({output_label} - target)", out - tgt, DIFFERENCE)]
    parts = []
    if metrics_row:
        columns = [k for k in metrics_row if k != "subject"]
        parts.append(metrics_table([metrics_row], columns))
    try:
        parts.append(orthogonal_views(volumes, spacing_mm, center=center, title=f"subject {name}"))
    except DataError as exc:  # name the subject: the views only know their row titles
        raise DataError(f"subject {name!r}: {exc}") from exc
    return f"subject {name}", "\n".join(parts)


def training_views(
    snapshots: Sequence[tuple[int, Any, Any, Any]],
    spacing_mm: Sequence[float],
    *,
    center: Sequence[int] | None = None,
    title: str = "output during training",
) -> str:
    """The same views of one validation volume at checkpoints during training, one row per snapshot.

    Args:
        snapshots: (rows_seen, input, output, target or None) per checkpoint, in training order
            (``rows_seen``: training samples seen when the output was computed).
        spacing_mm, center: as :func:`orthogonal_views`.

    The input (and target) are shown once above the first snapshot's output, and again only
    before a snapshot whose input (or target) differs from the last one shown. The outputs share
    the target's window when a target is given (so they are judged on the ground truth's scale),
    else the percentiles of all outputs.
    """
    if isinstance(snapshots, (str, bytes)) or not isinstance(snapshots, Sequence) or not snapshots:
        raise DataError("snapshots: expected a non-empty list of (rows_seen, input, output, target or None) tuples")
    volumes: list[tuple[str, Any, str]] = []
    last_input = last_target = None
    targets = []
    for index, item in enumerate(snapshots):
        if not isinstance(item, (tuple, list)) or len(item) != 4:
            raise DataError(f"snapshots[{index}]: expected (rows_seen, input, output, target or None)")
        seen, inp, out, tgt = item
        if isinstance(seen, bool) or not isinstance(seen, (int, np.integer)) or seen < 0:
            raise DataError(f"snapshots[{index}]: rows_seen {seen!r}: expected a whole number >= 0")
        inp = np.asarray(inp, dtype=np.float64)
        if last_input is None or inp.shape != last_input.shape or not np.array_equal(inp, last_input):
            volumes.append((f"input (from {int(seen):,})" if index else "input", inp, "input"))
            last_input = inp
        if tgt is not None:
            tgt = np.asarray(tgt, dtype=np.float64)
            targets.append(tgt)
            if last_target is None or tgt.shape != last_target.shape or not np.array_equal(tgt, last_target):
                volumes.append((f"target (from {int(seen):,})" if index else "target", tgt, "output"))
                last_target = tgt
        volumes.append((f"output, {int(seen):,} seen", out, "output"))
    rows = _rows(volumes)  # checks shapes and values before the window is computed
    window = None
    if targets:
        lo, hi = _window(targets)
        window = {"output": (lo, hi, f"{WINDOW_PERCENTILES[0]:g}-{WINDOW_PERCENTILES[1]:g} % percentiles of the target")}
    fig, description = views_figure(rows, spacing_mm, center, window, title)
    return _png(fig, alt=description)
