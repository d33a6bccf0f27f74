"""Labelled 2-D slice sets in PACGAN's layout: read, write, downsample and scale to [-1, 1].

**Layout** (``../shared/reference/medical_gans.md`` §a "Data layout and split"): a folder per
split holding one NIfTI image of shape ``[W, H, C, N]`` (N slices of W×H pixels, C = 1 or 3
channels) and ``labels.csv`` with the columns ``ID`` (the slice's index along the N axis),
``Label`` (the class, 0..K-1) and ``Subject_ID`` (who the slice comes from, any string). PACGAN
also stores a resolution pyramid ``Real4x4.nii.gz`` ... ``Real256x256.nii.gz`` in the folder;
gansim reads only the largest of them and makes the lower resolutions itself (:func:`downsample`).

**Axis order.** In memory a set is ``(N, C, H, W)``, the NIfTI array transposed by
``(3, 2, 1, 0)`` (so ``images[n, c, h, w] == nifti[w, h, c, n]``, the swap PACGAN's loader
makes); :func:`write_slice_set` applies the exact inverse.

Every problem with the input raises :class:`~gansim.errors.DataError` naming the file (and for
``labels.csv`` the line and the column); writes are atomic and refuse an existing file unless
``force=True``.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from gansim.errors import ConfigError, DataError, ModelFileError
from gansim.io.atomic import atomic_path, check_writable

__all__ = [
    "SliceSet",
    "find_image_file",
    "read_slice_set",
    "write_slice_set",
    "downsample",
    "IntensityScaling",
    "fit_intensity_scaling",
    "NIFTI_SUFFIXES",
]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_PYRAMID = re.compile(r"^Real(\d+)x(\d+)\.nii(\.gz)?$")
# NIfTI code 1 = NIFTI_XFORM_SCANNER_ANAT: the affine only states the pixel size; the slices
# are not claimed to be aligned to another scan or a template (codes 2-4 would say so).
XFORM_CODE = 1
_ArrayT = TypeVar("_ArrayT", np.ndarray, torch.Tensor)


@dataclass
class SliceSet:
    """A labelled slice set in memory.

    Attributes:
        images: (N, C, H, W) float32, in the file's intensities (C = 1 or 3).
        labels: (N,) int64 class of each image, or None when no labels are known.
        ids: (N,) int64, the ``ID`` of each image (its index along the file's N axis, so
            ``arange(N)``: the arrays are ordered by image index whatever the csv's row order).
        subjects: (N,) str ``Subject_ID`` of each image, or None when the csv has none.
        spacing_mm: pixel size (mm) along W and H from the NIfTI header; 1 where it has none.
        source: the image file path, for messages.
        labels_source: the labels.csv that was read, or None.
    """

    images: np.ndarray
    labels: np.ndarray | None
    ids: np.ndarray
    subjects: np.ndarray | None
    spacing_mm: tuple[float, float]
    source: str
    labels_source: str | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


# ----------------------------------------------------------------------------------------- read


def _is_nifti_name(name: str) -> bool:
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith(".")  # dot files: temporaries


def _listing(folder: Path, limit: int = 20) -> str:
    """What a folder holds, for an error message."""
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError as err:
        return f"(cannot list {folder}: {err.strerror})"
    if not names:
        return "nothing (the folder is empty)"
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def find_image_file(folder: str | Path, image_file: str | None = None) -> Path:
    """The NIfTI slice file of a data folder.

    Args:
        folder: the data folder.
        image_file: a file name inside ``folder`` to use as is.

    Returns:
        ``folder / image_file`` when given; else the largest PACGAN pyramid file
        ``Real<S>x<S>.nii[.gz]``; else the only ``.nii`` / ``.nii.gz`` file of the folder.

    Raises:
        DataError: the folder or the named file does not exist, two pyramid files have the
            largest size, or without a pyramid there is not exactly one NIfTI file; the message
            lists what the folder holds.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found (expected a folder holding a NIfTI [W, H, C, N] and labels.csv)")
    if image_file is not None:
        path = folder / image_file
        if not path.is_file():
            raise DataError(f"{path}: image file not found; {folder} holds: {_listing(folder)}")
        return path
    names = [p.name for p in folder.iterdir() if p.is_file() and _is_nifti_name(p.name)]
    pyramid = {}
    for name in names:
        m = _PYRAMID.match(name)
        if m and m.group(1) == m.group(2):
            pyramid.setdefault(int(m.group(1)), []).append(name)
    if pyramid:
        size = max(pyramid)
        if len(pyramid[size]) > 1:
            raise DataError(f"{folder}: both {' and '.join(sorted(pyramid[size]))} hold the {size}x{size} slices; choose one with --set data.image_file=NAME (image_file= in Python)")
        return folder / pyramid[size][0]
    if len(names) == 1:
        return folder / names[0]
    what = "no .nii / .nii.gz file" if not names else f"{len(names)} NIfTI files and no Real<S>x<S>.nii.gz pyramid"
    raise DataError(f"{folder}: {what}; expected one NIfTI [W, H, C, N] (or choose one with --set data.image_file=NAME). The folder holds: {_listing(folder)}")


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """The (N, C, H, W) float32 slices and the (W, H) pixel size in mm of a NIfTI file."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        img = nib.load(str(path))
    except (ImageFileError, OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable NIfTI file ({err}); expected a .nii/.nii.gz image [W, H, C, N]") from None
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image and the .hdr/.img pairs
        raise DataError(f"{path}: a {type(img).__name__} file, not NIfTI; expected a .nii/.nii.gz image [W, H, C, N]")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) not in (3, 4):
        raise DataError(f"{path}: image of shape {list(shape)}; expected [W, H, C, N] (4-D) or [W, H, N] (3-D, one channel)")
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as err:  # truncated gzip, short file, ...: nibabel raises many kinds
        raise DataError(f"{path}: cannot read the image data ({type(err).__name__}: {err})") from None
    if data.ndim == 3:
        data = data[:, :, None, :]
    w, h, c, n = data.shape
    if c not in (1, 3):
        raise DataError(f"{path}: image of shape {list(shape)} has {c} channels on axis 3; expected [W, H, C, N] with C = 1 or 3")
    if n == 0 or w == 0 or h == 0:
        raise DataError(f"{path}: image of shape {list(shape)} holds no slices")
    finite = np.isfinite(data).reshape(-1, n).all(axis=0)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"{path}: slice {int(bad[0])} (of {n}; {len(bad)} slices in all) holds NaN or Inf")
    images = np.ascontiguousarray(data.transpose(3, 2, 1, 0))
    return images, _header_spacing(img.header)


def _header_spacing(header: Any) -> tuple[float, float]:
    """Pixel size (mm) along W and H: pixdim[1:3] in the header's spatial unit; 1 where missing or zero."""
    zooms = [float(z) for z in header.get_zooms()[:2]]
    unit = header.get_xyzt_units()[0]
    # 'unknown' is read as mm, the NIfTI convention every viewer follows
    to_mm = {"meter": 1000.0, "micron": 1e-3}.get(unit, 1.0)
    spacing = [z * to_mm if math.isfinite(z) and z > 0 else 1.0 for z in zooms]
    while len(spacing) < 2:
        spacing.append(1.0)
    return (spacing[0], spacing[1])


def _parse_int(text: str) -> int | None:
    """An integer written as ``3``, ``+3`` or ``3.0`` (pandas writes floats); None otherwise."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value == int(value) else None


def _read_labels_csv(csv_path: Path, image_path: Path, n: int, *, require_labels: bool, require_subjects: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Labels (N,) int64 and subjects (N,) str ordered by image index, from a labels.csv."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader]  # line_num: the row's last physical line
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not a text csv file ({err.reason} at byte {err.start}); expected columns ID, Label, Subject_ID") from None
    except OSError as err:
        raise DataError(f"{csv_path}: cannot read ({err.strerror})") from None
    except csv.Error as err:
        raise DataError(f"{csv_path}: malformed csv ({err})") from None
    if not rows or not any(cell.strip() for cell in rows[0][1]):
        raise DataError(f"{csv_path}: empty; expected a header line with the columns ID, Label (and Subject_ID)")
    header = [cell.strip() for cell in rows[0][1]]
    needed = ["ID", "Label"] + (["Subject_ID"] if require_subjects else [])
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; the columns found are {header} (expected ID, Label, Subject_ID)")
    for name in ("ID", "Label", "Subject_ID"):
        if header.count(name) > 1:
            raise DataError(f"{csv_path}: column {name!r} appears {header.count(name)} times in the header")
    i_id, i_label = header.index("ID"), header.index("Label")
    i_subject = header.index("Subject_ID") if "Subject_ID" in header else None

    labels = np.full(n, -1, dtype=np.int64)
    subject_of: list[str | None] = [None] * n
    line_of: dict[int, int] = {}
    subjects_complete = i_subject is not None
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) < len(header):
            raise DataError(f"{csv_path}, line {line}: {len(row)} fields, the header has {len(header)} ({', '.join(header)})")
        image_id = _parse_int(row[i_id])
        if image_id is None:
            raise DataError(f"{csv_path}, line {line}, column 'ID': {row[i_id].strip()!r} is not an integer (expected the slice's index 0..{n - 1} in {image_path.name})")
        if not 0 <= image_id < n:
            raise DataError(f"{csv_path}, line {line}, column 'ID': {image_id} is outside 0..{n - 1} ({image_path} holds {n} slices)")
        if image_id in line_of:
            raise DataError(f"{csv_path}, line {line}, column 'ID': ID {image_id} is also on line {line_of[image_id]}; each slice needs one row")
        label = _parse_int(row[i_label])
        if label is None or label < 0:
            raise DataError(f"{csv_path}, line {line}, column 'Label': {row[i_label].strip()!r} is not a non-negative integer (expected a class index 0, 1, ...)")
        line_of[image_id] = line
        labels[image_id] = label
        if i_subject is not None:
            subject = row[i_subject].strip()
            if not subject:
                if require_subjects:
                    raise DataError(f"{csv_path}, line {line}, column 'Subject_ID': empty; every slice needs the subject it comes from (for the subject-grouped split)")
                subjects_complete = False
            subject_of[image_id] = subject

    unlabelled = np.flatnonzero(labels < 0)
    if len(unlabelled):
        first = ", ".join(str(int(i)) for i in unlabelled[:5]) + (" ..." if len(unlabelled) > 5 else "")
        message = f"{csv_path}: {len(unlabelled)} of the {n} slices of {image_path.name} have no row (IDs {first})"
        if require_labels:
            raise DataError(f"{message}; every slice needs an ID, Label row")
        warnings.warn(f"{message}; the labels are ignored", stacklevel=3)
        return None, None
    subjects = np.array(subject_of, dtype=str) if subjects_complete else None
    return labels, subjects


def read_slice_set(
    path: str | Path,
    labels: str | Path | None = None,
    *,
    image_file: str | None = None,
    require_labels: bool = True,
    require_subjects: bool = False,
) -> SliceSet:
    """Read a PACGAN-layout slice set.

    Args:
        path: a data folder (its image is found by :func:`find_image_file`; labels default to
            ``folder/labels.csv``) or a NIfTI file (labels default to ``labels.csv`` beside it).
            The image is ``[W, H, C, N]`` with C = 1 or 3, or ``[W, H, N]`` read as C = 1.
        labels: the labels csv (columns ``ID``, ``Label``, optional ``Subject_ID``; rows in any
            order, other columns ignored).
        image_file: the image's name inside a data folder (default: see :func:`find_image_file`).
        require_labels: a missing csv is an error, and so is a slice without a row. When False,
            a csv that leaves slices unlabelled gives ``labels=None`` with a warning (its rows are
            still checked), and the default csv (``labels`` not given) is optional: missing, it
            gives ``labels=None``; invalid for this image (e.g. it belongs to another file of
            the folder), a warning and ``labels=None``.
        require_subjects: every row must have a ``Subject_ID``.

    Returns:
        the :class:`SliceSet`: images (N, C, H, W) float32, arrays ordered by image index.

    Raises:
        DataError: a missing or unreadable file, a bad shape, NaN/Inf, or a bad labels.csv
            (missing columns, a non-integer or negative Label, an ID outside 0..N-1 or given
            twice, an unlabelled slice, an empty Subject_ID), naming the file, line and column.
    """
    path = Path(path)
    if path.is_dir():
        image_path = find_image_file(path, image_file)
        folder = path
    else:
        if image_file is not None:
            raise ConfigError(f"image_file={image_file!r} is given but {path} is not a folder; pass the folder, or the image file alone")
        if not path.is_file():
            parent = path.parent
            held = _listing(parent) if parent.is_dir() else "nothing (the folder does not exist)"
            raise DataError(f"{path}: not found (expected a data folder or a NIfTI [W, H, C, N] file); {parent} holds: {held}")
        image_path, folder = path, path.parent
    images, spacing = _read_nifti(image_path)
    n = images.shape[0]

    explicit = labels is not None
    csv_path = Path(labels) if explicit else folder / "labels.csv"
    label_array = subjects = None
    optional = not (explicit or require_labels or require_subjects)
    if csv_path.is_file():
        try:
            label_array, subjects = _read_labels_csv(csv_path, image_path, n, require_labels=require_labels, require_subjects=require_subjects)
        except DataError as err:
            if not optional:
                raise
            # a labels.csv that merely sits beside an image nobody asked labels for may belong to
            # another image of the folder: say so, and go on without labels
            warnings.warn(f"{err}; the labels beside {image_path.name} are ignored", stacklevel=2)
    elif not optional:
        raise DataError(f"{csv_path}: labels file not found (expected columns ID, Label, Subject_ID beside {image_path.name}); {csv_path.parent} holds: {_listing(csv_path.parent) if csv_path.parent.is_dir() else 'nothing (no such folder)'}")
    if require_subjects and subjects is None:
        raise DataError(f"{csv_path}: a Subject_ID is needed for every slice of {image_path.name} (for the subject-grouped split)")
    return SliceSet(
        images=images,
        labels=label_array,
        ids=np.arange(n, dtype=np.int64),
        subjects=subjects,
        spacing_mm=spacing,
        source=str(image_path),
        labels_source=str(csv_path) if label_array is not None else None,
    )


# ---------------------------------------------------------------------------------------- write


def _check_labels(labels: Any, n: int, what: str) -> np.ndarray:
    """(N,) int64 non-negative class indices, or DataError."""
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise DataError(f"{what}: shape {arr.shape}; expected ({n},), one per image")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise DataError(f"{what}: non-integer values; expected class indices 0, 1, ...")
    elif arr.dtype.kind not in "iub":
        raise DataError(f"{what}: dtype {arr.dtype}; expected integer class indices")
    out = arr.astype(np.int64)
    if n and out.min() < 0:
        raise DataError(f"{what}: negative value {int(out.min())}; expected class indices 0, 1, ...")
    return out


def write_slice_set(
    path: str | Path,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    ids: np.ndarray | None = None,
    subjects: np.ndarray | None = None,
    spacing_mm: tuple[float, float] = (1.0, 1.0),
    description: str = "gansim",
    force: bool = False,
    labels_path: str | Path | None = None,
) -> tuple[Path, Path | None]:
    """Write slices as a NIfTI ``[W, H, C, N]`` float32 and, with labels, a labels.csv.

    The header: pixdim = (spacing W, spacing H, 1, 1), spatial unit mm (time unit unknown:
    the N axis is not time), affine ``diag(spacing_W, spacing_H, 1, 1)``, qform and sform codes
    1 (scanner: the affine states the pixel size, no alignment to another image), ``descrip`` =
    ``description`` and ``cal_min``/``cal_max`` = the data range (a viewer's default window).

    Args:
        path: the image file, ending in ``.nii.gz`` or ``.nii``.
        images: (N, C, H, W), C = 1 or 3, finite; written as float32.
        labels: (N,) class of each image, or None (no csv is written).
        ids: a permutation of 0..N-1 giving the csv's row order (row r is image ``ids[r]``);
            default ``arange(N)``.
        subjects: (N,) Subject_ID of each image, written as a third column; default none.
        spacing_mm: pixel size (mm) along W and H.
        description: the header's ``descrip`` (ASCII, at most 79 characters).
        force: overwrite existing files.
        labels_path: the csv; default ``labels.csv`` in the image's folder.

    Returns:
        (image path, labels path or None).

    Raises:
        DataError: a bad shape, NaN/Inf, labels/ids/subjects that do not match the images.
        ConfigError: a bad path suffix, spacing or description.
        OutputExistsError: the image or the csv exists and not ``force``; both are checked
            before either is written, so a refusal changes nothing.
    """
    import nibabel as nib

    path = Path(path)
    suffix = next((s for s in NIFTI_SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise ConfigError(f"{path}: the slice file must end in .nii.gz or .nii")
    arr = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or min(arr.shape) == 0:
        raise DataError(f"{path}: images of shape {tuple(arr.shape)}; expected (N, C, H, W) with N >= 1 and C = 1 or 3")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path}: images of dtype {arr.dtype}; expected real numbers")
    n = arr.shape[0]
    finite = np.concatenate([np.isfinite(arr[i : i + 1024]).reshape(min(1024, n - i), -1).all(axis=1) for i in range(0, n, 1024)]) if n else np.ones(0, bool)
    if not finite.all():
        raise DataError(f"{path}: image {int(np.flatnonzero(~finite)[0])} holds NaN or Inf")
    sx, sy = (float(s) for s in spacing_mm)
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        raise ConfigError(f"spacing_mm={tuple(spacing_mm)}: expected two positive pixel sizes in mm")
    if not description.isascii() or len(description) > 79:
        raise ConfigError(f"description {description!r}: the NIfTI descrip field holds at most 79 ASCII characters")

    csv_target: Path | None = None
    rows: list[list[str]] = []
    if labels is None:
        if ids is not None or subjects is not None:
            raise DataError(f"{path}: ids or subjects given without labels; labels.csv needs a Label per image")
    else:
        label_arr = _check_labels(labels, n, f"{path}: labels")
        order = np.arange(n) if ids is None else np.asarray(ids)
        if order.shape != (n,) or order.dtype.kind not in "iu" or not np.array_equal(np.sort(order), np.arange(n)):
            raise DataError(f"{path}: ids must be a permutation of 0..{n - 1} (the ID column indexes the N axis of the image)")
        subject_arr = None
        if subjects is not None:
            subject_arr = np.asarray(subjects).astype(str)
            if subject_arr.shape != (n,) or any(not s.strip() for s in subject_arr):
                raise DataError(f"{path}: subjects must be ({n},) non-empty strings, one per image")
        for i in order:
            row = [str(int(i)), str(int(label_arr[i]))]
            if subject_arr is not None:
                row.append(str(subject_arr[i]))
            rows.append(row)
        csv_target = Path(labels_path) if labels_path is not None else path.parent / "labels.csv"

    # both refusals before either write, so a refusal loses nothing
    check_writable(path, force)
    if csv_target is not None:
        check_writable(csv_target, force)

    # (W, H, C, N) as a view: NIfTI stores the first axis fastest, which is exactly this view's memory
    # order, so nibabel writes it without a transposed copy (a memory-mapped stack is streamed to disk)
    data = arr.astype(np.float32, copy=False).transpose(3, 2, 1, 0)
    affine = np.diag([sx, sy, 1.0, 1.0])
    # NIfTI-1 stores each dimension as a 16-bit integer: larger stacks are written as NIfTI-2 (nibabel reads both)
    image_class = nib.Nifti2Image if max(data.shape) > 32767 else nib.Nifti1Image
    img = image_class(data, affine)
    header = img.header
    header.set_data_dtype(np.float32)
    header.set_zooms((sx, sy, 1.0, 1.0))
    header.set_xyzt_units(xyz="mm")
    img.set_qform(affine, code=XFORM_CODE)
    img.set_sform(affine, code=XFORM_CODE)
    header["descrip"] = description.encode("ascii")
    header["cal_min"], header["cal_max"] = float(data.min()), float(data.max())

    # the csv's temporary is committed first, then the image's; a failure before leaves neither
    with atomic_path(path, force=force, suffix=suffix) as tmp_image:
        nib.save(img, str(tmp_image))
        if csv_target is not None:
            with atomic_path(csv_target, force=force, suffix=".csv") as tmp_csv:
                with open(tmp_csv, "w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f)
                    writer.writerow(["ID", "Label"] + (["Subject_ID"] if subjects is not None else []))
                    writer.writerows(rows)
    return path, csv_target


# ------------------------------------------------------------------------------------ downsample


def downsample(images: _ArrayT, size: int) -> _ArrayT:
    """Shrink images (N, C, H, W) to (N, C, size, size) with antialiasing.

    When ``H / size`` and ``W / size`` are integers each output pixel is the mean of its
    block of input pixels (area averaging, computed in float64 where the device has it): the
    box filter is the exact antialiasing for an integer factor, keeps a constant image
    constant, and undoes a nearest-neighbour upsampling exactly. Other factors use bilinear
    interpolation with torch's antialias filter (``F.interpolate(mode="bilinear",
    antialias=True, align_corners=False)``), which widens the triangle kernel by the factor.

    Args:
        images: NumPy array or torch tensor (N, C, H, W); integers are treated as float32.
        size: output side, 1 <= size <= min(H, W).

    Returns:
        the same type (and device) as ``images``, floating dtype kept (float32 for integers).
        ``size == H == W`` returns a copy.

    Raises:
        DataError: ``images`` is not 4-D.
        ConfigError: ``size`` is not an integer in 1..min(H, W).
    """
    is_numpy = not isinstance(images, torch.Tensor)
    x = torch.from_numpy(np.ascontiguousarray(images)) if is_numpy else images
    if x.ndim != 4:
        raise DataError(f"downsample: images of shape {tuple(x.shape)}; expected (N, C, H, W)")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= min(h, w):
        raise ConfigError(f"downsample: size {size!r}; expected an integer in 1..{min(h, w)} for images of {h}x{w} pixels")
    size = int(size)
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    if (h, w) == (size, size):
        out = x.to(out_dtype).clone()
    elif h % size == 0 and w % size == 0:
        fh, fw = h // size, w // size
        work = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
        chunk = max(1, (1 << 24) // max(1, x[0].numel()))  # bound the float64 copy to ~128 MiB
        parts = [x[i : i + chunk].to(work).reshape(-1, x.shape[1], size, fh, size, fw).mean(dim=(3, 5)).to(out_dtype) for i in range(0, x.shape[0], chunk)]
        out = torch.cat(parts) if parts else x.new_zeros((0, x.shape[1], size, size), dtype=out_dtype)
    else:
        work = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32
        out = F.interpolate(x.to(work), size=(size, size), mode="bilinear", antialias=True, align_corners=False).to(out_dtype)
    return out.numpy() if is_numpy else out  # type: ignore[return-value]


# ------------------------------------------------------------------------------ intensity scaling


@dataclass(frozen=True)
class IntensityScaling:
    """A linear map from the data's intensities to the networks' [-1, 1] and back.

    Attributes:
        mode: ``'range'`` maps ``lo`` to -1 and ``hi`` to +1 (values outside [lo, hi] land
            outside [-1, 1]: nothing is clipped); ``'none'`` is the identity (lo = -1, hi = 1).
        lo, hi: the intensities mapped to -1 and +1, lo < hi.
    """

    mode: Literal["none", "range"] = "none"
    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("none", "range"):
            raise ConfigError(f"intensity scaling mode {self.mode!r}: expected 'none' or 'range'")
        lo, hi = float(self.lo), float(self.hi)
        if self.mode == "none" and (lo, hi) != (-1.0, 1.0):
            raise ConfigError(f"intensity scaling 'none' has lo=-1, hi=1; got lo={lo}, hi={hi}")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"intensity range lo={lo}, hi={hi}: expected finite numbers with lo < hi")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def _apply_linear(self, x: _ArrayT, scale: float, offset: float) -> _ArrayT:
        """``x * scale + offset``; NumPy in float64 then back to x's float dtype (float32 for integers);
        torch keeps its device. Mode 'none' (lo -1, hi 1) is the identity, returned as a copy."""
        if isinstance(x, torch.Tensor):
            t = x if x.is_floating_point() else x.float()
            return t * scale + offset  # type: ignore[return-value]
        arr = np.asarray(x)
        dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float32)
        return (arr.astype(np.float64) * scale + offset).astype(dtype)  # type: ignore[return-value]

    _apply = _apply_linear

    def forward(self, x: _ArrayT) -> _ArrayT:
        """Data intensities -> network values ([lo, hi] -> [-1, 1]); NumPy or torch, any shape."""
        scale = 2.0 / (self.hi - self.lo)
        return self._apply(x, scale, -1.0 - self.lo * scale)

    def inverse(self, y: _ArrayT) -> _ArrayT:
        """Network values -> data intensities ([-1, 1] -> [lo, hi]); the exact inverse of :meth:`forward`."""
        scale = (self.hi - self.lo) / 2.0
        return self._apply(y, scale, self.lo + scale)

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry: ``{"mode", "lo", "hi"}`` (plain JSON data)."""
        return {"mode": self.mode, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, source: str = "manifest 'intensity'") -> IntensityScaling:
        """The scaling a manifest entry describes.

        Raises:
            ModelFileError: not a mapping, an unknown or missing key, a bad mode or range,
                naming ``source`` and the key.
        """
        if not isinstance(d, Mapping):
            raise ModelFileError(f"{source}: expected a mapping with keys mode, lo, hi; got {type(d).__name__}")
        unknown = sorted(set(d) - {"mode", "lo", "hi"})
        if unknown:
            raise ModelFileError(f"{source}: unknown key(s) {unknown}; expected mode, lo, hi")
        mode = d.get("mode")
        if mode not in ("none", "range"):
            raise ModelFileError(f"{source}: key 'mode' is {mode!r}; expected 'none' or 'range'")
        values = {}
        for key, default in (("lo", -1.0), ("hi", 1.0)):
            if key not in d:
                if mode == "range":
                    raise ModelFileError(f"{source}: key {key!r} missing; 'range' scaling needs lo and hi")
                values[key] = default
                continue
            v = d[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ModelFileError(f"{source}: key {key!r} is {v!r}; expected a finite number")
            values[key] = float(v)
        try:
            return cls(mode, values["lo"], values["hi"])
        except ConfigError as err:
            raise ModelFileError(f"{source}: {err} (keys 'lo', 'hi')") from None


# values within this much of [-1, 1] count as inside (resampling overshoot of PACGAN's files)
_UNIT_TOL = 1e-5


def fit_intensity_scaling(
    images: np.ndarray | torch.Tensor,
    mode: Literal["auto", "none", "range"] = "auto",
    value_range: tuple[float, float] | None = None,
    source: str = "images",
) -> IntensityScaling:
    """Choose the scaling of a training set.

    Args:
        images: the training images, any shape (e.g. (N, C, H, W)), finite.
        mode: ``'range'``: ``value_range`` (default: the data's min and max) to [-1, 1];
            ``'none'``: the images are already in [-1, 1] (PACGAN's files); ``'auto'``:
            ``'range'`` with ``value_range`` when one is given, else ``'none'`` when every value
            is in [-1, 1] (within 1e-5), else ``'range'`` with the data's min and max.
        value_range: (lo, hi) mapped to (-1, +1), lo < hi.
        source: the data's name for messages (the image file).

    Raises:
        ConfigError: an unknown mode, a bad range, or a range with mode 'none'.
        DataError: no values, NaN/Inf, 'none' with values outside [-1, 1], or a constant data
            set to be scaled by its own min..max.
    """
    if mode not in ("auto", "none", "range"):
        raise ConfigError(f"intensity mode {mode!r}: expected 'auto', 'none' or 'range'")
    if value_range is not None:
        if mode == "none":
            raise ConfigError(f"intensity 'none' with intensity_range {tuple(value_range)}: give a range only with 'range' or 'auto'")
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"intensity_range {tuple(value_range)}: expected finite lo < hi")
        return IntensityScaling("range", lo, hi)
    x = images.detach() if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.numel() == 0:
        raise DataError(f"{source}: no images to fit the intensity scaling to")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise DataError(f"{source}: the images hold NaN or Inf")
    vmin, vmax = float(x.min()), float(x.max())
    inside = vmin >= -1.0 - _UNIT_TOL and vmax <= 1.0 + _UNIT_TOL
    if mode == "none":
        if not inside:
            raise DataError(f"{source}: intensities span {vmin:g}..{vmax:g}, outside [-1, 1]; use intensity 'range' or 'auto' to scale them")
        return IntensityScaling("none")
    if mode == "auto" and inside:
        return IntensityScaling("none")
    if not vmin < vmax:
        raise DataError(f"{source}: every intensity is {vmin:g}, so the min..max range is empty; give intensity_range (lo, hi) explicitly")
    return IntensityScaling("range", vmin, vmax)
