"""Crop a volume data set to its foreground, keeping every voxel's world position (``gansim prepare``).

A translation network trains on the head, not on the air around it: :func:`prepare_dataset`
crops every volume of a ``trainA/ trainB/ [testA/ testB/]`` data set to the box holding its
foreground plus a margin. A paired A/B couple is cropped with the *union* of its two boxes, so
the two stay voxel-aligned. Unlike the DCAN cropper it replaces:

* each axis's extent comes from that axis's own projection (the DCAN code used the Z size for
  X, wrong whenever X != Z);
* the affine's translation is updated (``affine @ translate(lo)``), so each voxel keeps its
  world coordinate and the crop overlays the original in any viewer;
* an empty (all-zero or constant) volume is an error, not an endless loop;
* the summary gives the largest cropped shape and that shape rounded up to the network's
  required multiple, instead of leaving the input size to guess and check.

Boxes and shapes are in the canonical RAS+ voxel order of :mod:`gansim.io.volumes` (i -> R,
j -> A, k -> S), which the network sees; the files keep their own voxel order and header.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.volumes import (
    SPLITS,
    Volume,
    check_same_grid,
    find_volume_sets,
    foreground_mask,
    pair_volumes,
    read_volume,
    resolve_pairs_csv,
    write_like,
)

__all__ = ["foreground_box", "crop", "prepare_dataset", "translation"]


def translation(offset: Sequence[float]) -> np.ndarray:
    """The 4x4 matrix that shifts voxel indices by ``offset`` (3,)."""
    t = np.eye(4)
    t[:3, 3] = np.asarray(offset, dtype=np.float64)
    return t


def foreground_box(data: np.ndarray, threshold: float | None = None, *, source: str = "volume") -> tuple[np.ndarray, np.ndarray]:
    """The smallest box holding every foreground voxel of a volume.

    Args:
        data: (X, Y, Z) intensities.
        threshold: voxels above it are foreground; default Otsu's threshold
            (:func:`gansim.io.volumes.foreground_mask`, the head mask used everywhere).
        source: the volume's name for messages.

    Returns:
        ``(lo, hi)``, two (3,) int64 arrays: the box is ``data[lo[0]:hi[0], lo[1]:hi[1],
        lo[2]:hi[2]]`` (``hi`` exclusive), each axis from its own extent.

    Raises:
        DataError: not 3-D, NaN/Inf, or no voxel above the threshold (an empty or constant volume).
    """
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise DataError(f"{source}: shape {arr.shape}; expected a 3-D (X, Y, Z) volume")
    mask = foreground_mask(arr, threshold, fill_holes=False, source=source)  # filling holes cannot change the box
    lo, hi = np.zeros(3, np.int64), np.zeros(3, np.int64)
    for axis in range(3):
        # this axis's own projection, so its extent is bounded by its own size
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo[axis], hi[axis] = hits[0], hits[-1] + 1
    return lo, hi


def _box(lo: Sequence[int], hi: Sequence[int], shape: Sequence[int], source: str) -> tuple[np.ndarray, np.ndarray]:
    lo_a, hi_a = np.asarray(lo), np.asarray(hi)
    if lo_a.shape != (3,) or hi_a.shape != (3,) or lo_a.dtype.kind not in "iu" or hi_a.dtype.kind not in "iu":
        raise DataError(f"{source}: crop box lo={np.asarray(lo).tolist()}, hi={np.asarray(hi).tolist()}; expected two sets of 3 integers")
    if (lo_a < 0).any() or (hi_a > np.asarray(shape)).any() or (lo_a >= hi_a).any():
        raise DataError(f"{source}: crop box lo={lo_a.tolist()}, hi={hi_a.tolist()} is not inside the volume of shape {list(shape)} with lo < hi")
    return lo_a.astype(np.int64), hi_a.astype(np.int64)


def crop(volume: Volume, lo: Sequence[int], hi: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Crop a canonical volume to ``[lo, hi)`` and move its affine with it.

    Returns:
        the cropped (hi - lo) float32 array (a copy) and its affine ``volume.affine @
        translate(lo)``: cropped voxel ``v`` is at the world position of voxel ``v + lo`` of the
        input.

    Raises:
        DataError: a box that is not inside the volume or is empty.
    """
    lo_a, hi_a = _box(lo, hi, volume.shape, volume.source)
    data = volume.data[lo_a[0] : hi_a[0], lo_a[1] : hi_a[1], lo_a[2] : hi_a[2]].copy()
    return data, volume.affine @ translation(lo_a)


def _multiple(multiple: int | Sequence[int], what: str = "multiple") -> np.ndarray:
    m = [multiple] * 3 if isinstance(multiple, (int, np.integer)) and not isinstance(multiple, bool) else list(multiple)
    if len(m) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in m):
        raise ConfigError(f"{what}={multiple!r}: expected a positive integer or three (the network's required size {what} per axis)")
    return np.asarray(m, dtype=np.int64)


def _margin(volume: Volume, margin_vox: int, margin_mm: float | None) -> np.ndarray:
    if margin_mm is None:
        return np.full(3, margin_vox, dtype=np.int64)
    # the fewest voxels covering margin_mm along each axis; files store affines in float32, so a
    # 1 mm spacing reads as 0.99999997 mm: a relative 1e-5 keeps 2 mm at 2 voxels, not 3
    return np.ceil(margin_mm / volume.spacing * (1.0 - 1e-5)).astype(np.int64)


def _check_out_of_tree(out: Path, root: Path) -> None:
    """Refuse an output folder that is, holds, or lies in the input's volume folders (force would delete them)."""
    o, r = out.resolve(), root.resolve()
    if o == r or r.is_relative_to(o):
        raise ConfigError(f"{out}: the output folder is or holds the input data folder {root}; choose another folder")
    for split in SPLITS:
        for side in ("A", "B"):
            if o.is_relative_to((r / f"{split}{side}").resolve()):
                raise ConfigError(f"{out}: the output folder lies inside the input's {split}{side}/; choose another folder")


def _publish_dir(tmp: Path, out: Path) -> None:
    """Put the finished temporary folder in the place of ``out`` (replacing it, if any, last)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, backup)  # a directory onto an empty directory: allowed on POSIX
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(backup, out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def prepare_dataset(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    margin_vox: int = 4,
    margin_mm: float | None = None,
    pairing: Literal["name", "csv", "unpaired"] = "name",
    pairs_csv: str | os.PathLike[str] | None = None,
    multiple: int | Sequence[int] = (1, 1, 1),
    minimum: int | Sequence[int] = (1, 1, 1),
    threshold: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Crop every volume of a data set to its foreground and write it, header-true, under ``out``.

    Each A/B pair (:func:`gansim.io.volumes.pair_volumes`; for ``'csv'`` the rows of
    ``pairs_csv``, with a ``split`` column or for the training split only) is cropped by the
    union of its two foreground boxes grown by the margin and clipped to the volume; with
    ``'unpaired'`` each volume by its own. Outputs go to ``out/<split><A|B>/<the input's file
    name>`` (same format, float32) with the affine moved by the crop; a ``'csv'`` pairing is
    rewritten as ``out/<the csv's name>`` (columns split, A, B; paths relative to ``out``), so
    training on ``out`` takes the same ``data.pairs_csv``. Everything is written into a temporary folder beside ``out`` that
    replaces it only when complete: an error leaves no partial output.

    Args:
        root: the data set (``trainA/``, ``trainB/``, optionally ``testA/``, ``testB/``).
        out: the output folder; must not be, hold or lie in the input's volume folders.
        margin_vox: voxels added on every side of the box.
        margin_mm: a margin in mm instead (rounded up to whole voxels per axis); overrides
            ``margin_vox`` when given.
        pairing: ``'name'``, ``'csv'`` or ``'unpaired'``.
        pairs_csv: the pairing csv for ``'csv'``; a relative path is inside ``root``.
        multiple: the network's required size multiple per axis (an int for all three).
        minimum: the smallest size per axis the networks accept (the smallest valid shape is at least this).
        threshold: a foreground threshold for every volume; default each volume's
            :func:`gansim.io.volumes.foreground_mask` (Otsu).
        force: replace a non-empty ``out``.

    Returns:
        a JSON-ready summary: ``files`` (per volume: split, side, name, source, output, the
        paired file's name or None, ``box_lo``, ``box_hi`` (exclusive), ``margin_vox``,
        ``original_shape``, ``shape``), ``max_shape`` (element-wise maximum of the cropped
        shapes), ``smallest_valid_shape`` (``max_shape`` raised to ``minimum`` and rounded up to ``multiple``), and the
        settings. Shapes and boxes are in canonical (RAS+) axis order.

    Raises:
        OutputExistsError: ``out`` is not empty and not ``force``.
        ConfigError: bad margin, multiple or pairing, or ``out`` overlapping the input.
        DataError: any problem with the data (missing folders, unequal counts, an empty or
            unreadable volume, paired volumes on different grids), naming the file.
    """
    root, out = Path(root), Path(out)
    if isinstance(margin_vox, bool) or not isinstance(margin_vox, (int, np.integer)) or margin_vox < 0:
        raise ConfigError(f"margin_vox={margin_vox!r}: expected a non-negative integer")
    if margin_mm is not None and (isinstance(margin_mm, bool) or not isinstance(margin_mm, (int, float)) or not math.isfinite(margin_mm) or margin_mm < 0):
        raise ConfigError(f"margin_mm={margin_mm!r}: expected a non-negative number of mm")
    if pairing not in ("name", "csv", "unpaired"):
        raise ConfigError(f"pairing {pairing!r}: expected 'name', 'csv' or 'unpaired'")
    mult, floor = _multiple(multiple), _multiple(minimum, "minimum")
    csv_path = resolve_pairs_csv(root, pairs_csv)
    if pairing == "csv" and csv_path is None:
        raise ConfigError("pairing 'csv' needs a pairs csv (data.pairs_csv: columns A, B and optionally split)")
    sets = find_volume_sets(root)
    _check_out_of_tree(out, root)
    if out.exists():
        if not out.is_dir():
            raise DataError(f"{out}: exists and is not a folder; the output of prepare is a folder")
        if any(out.iterdir()) and not force:
            raise OutputExistsError(f"{out}: already exists and is not empty; pass --force (force=True) to replace it")
    # (a csv without a split column pairs the training split; pair_volumes pairs the test split by name then)
    pairs_by_split = {split: pair_volumes(sides["A"], sides["B"], pairing, csv_path=csv_path, source=str(root / split), split=split)
                      for split, sides in sets.items()}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    files: list[dict[str, Any]] = []
    try:
        for split, pairs in pairs_by_split.items():
            for side in ("A", "B"):
                (tmp / f"{split}{side}").mkdir()
            for a_path, b_path in pairs:
                files += _prepare_pair(a_path, b_path, split, tmp, out, margin_vox, margin_mm, threshold)
        if csv_path is not None and pairing == "csv":
            with open(tmp / csv_path.name, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["split", "A", "B"])
                writer.writerows([split, f"{split}A/{a.name}", f"{split}B/{b.name}"] for split, pairs in pairs_by_split.items()
                                 for a, b in pairs if a is not None and b is not None)
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    max_shape = np.max(np.asarray([f["shape"] for f in files]), axis=0)
    valid = -(-np.maximum(max_shape, floor) // mult) * mult  # at least the minimum, rounded up to the multiple
    return {
        "root": str(root),
        "out": str(out),
        "pairing": pairing,
        "margin_vox": int(margin_vox) if margin_mm is None else None,
        "margin_mm": None if margin_mm is None else float(margin_mm),
        "multiple": mult.tolist(),
        "minimum": floor.tolist(),
        "pairs_csv": str(csv_path) if csv_path is not None and pairing == "csv" else None,
        "axes": "canonical RAS+ voxel order (i -> R, j -> A, k -> S)",
        "files": files,
        "max_shape": max_shape.tolist(),
        "smallest_valid_shape": valid.tolist(),
    }


def _prepare_pair(
    a_path: Path | None, b_path: Path | None, split: str, tmp: Path, out: Path, margin_vox: int, margin_mm: float | None, threshold: float | None
) -> list[dict[str, Any]]:
    """Crop one pair (or one unpaired volume) into ``tmp``; the summary entries of its files."""
    given = [(side, p) for side, p in (("A", a_path), ("B", b_path)) if p is not None]
    vols = {side: read_volume(p) for side, p in given}
    if len(vols) == 2:
        check_same_grid(vols["A"], vols["B"])
    boxes = [foreground_box(v.data, threshold, source=v.source) for v in vols.values()]
    first = next(iter(vols.values()))
    shape = np.asarray(first.shape)
    margin = _margin(first, margin_vox, margin_mm)
    lo = np.maximum(np.min([b[0] for b in boxes], axis=0) - margin, 0)
    hi = np.minimum(np.max([b[1] for b in boxes], axis=0) + margin, shape)
    entries = []
    for side, path in given:
        vol = vols[side]
        data, affine = crop(vol, lo, hi)
        rel = f"{split}{side}/{path.name}"
        write_like(tmp / rel, data, vol, affine_canonical=affine)
        other = b_path if side == "A" else a_path
        entries.append({
            "split": split,
            "side": side,
            "name": path.name,
            "source": str(path),
            "output": str(out / rel),
            "pair": None if other is None else other.name,
            "box_lo": lo.tolist(),
            "box_hi": hi.tolist(),
            "margin_vox": margin.tolist(),
            "original_shape": list(vol.shape),
            "shape": list(data.shape),
        })
    return entries
