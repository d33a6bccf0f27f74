"""3-D volumes (T1w, T2w... MR images) read into one canonical frame and written back header-true.

**Canonical frame.** Every volume is held as a float32 array indexed ``[i, j, k]`` whose axes
point, as nearly as the file's axes allow, to the patient's Right, Anterior and Superior (RAS+,
``nibabel.orientations``: ``io_orientation`` / ``ornt_transform`` / ``apply_orientation``). Only
axis permutations and flips are applied, never resampling, so every voxel keeps its value and its
world position; an oblique file stays oblique (its canonical affine is the nearest-RAS one, not a
diagonal one). :meth:`Volume.to_original` undoes the permutation and flips exactly.

**World coordinates** are NIfTI's RAS+ in millimetres: ``world = affine @ [i, j, k, 1]``. NIfTI
affines come from nibabel (sform when its code is set, else qform, else the pixdim-only affine);
a file whose ``xyzt_units`` say metres or microns is converted to mm on reading and back on
writing. SimpleITK formats (.mha, .mhd, .nrrd) store origin, spacing and direction in ITK's
LPS+ physical space; the two differ by the sign of the first two world axes::

    affine_RAS = diag(-1, -1, 1, 1) @ [[direction @ diag(spacing), origin], [0, 0, 0, 1]]

and writing applies the same (self-inverse) flip before splitting the affine back into
spacing (column norms), direction (unit columns) and origin.

**Writing** (:func:`write_like`) puts an array of the canonical frame back into the input's
voxel order and header: for NIfTI the input's nibabel header (sform/qform codes, pixdim, units,
descrip, intent, extensions...), for SimpleITK formats its origin/spacing/direction. Output
values are float32 stored as given (``scl_slope`` 1, ``scl_inter`` 0); writes are atomic and
refuse an existing file unless ``force=True``.

Also here: :class:`VolumeScaling` (robust percentile intensity scaling to [-1, 1]) and the data
set layout (:func:`find_volume_sets`, :func:`pair_volumes`): ``trainA/``, ``trainB/`` and
optionally ``testA/``, ``testB/`` folders of volumes, A being one contrast (T1w) and B the other.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from gansim.errors import ConfigError, DataError, ModelFileError
from gansim.io.atomic import atomic_path, check_writable, commit_file
from gansim.io.slices import IntensityScaling

__all__ = [
    "VOLUME_SUFFIXES",
    "NIFTI_SUFFIXES",
    "split_name",
    "Volume",
    "read_volume",
    "write_like",
    "finite_volume",
    "foreground_mask",
    "otsu_threshold",
    "VolumeScaling",
    "SPLITS",
    "check_same_grid",
    "find_volume_sets",
    "volume_files",
    "pair_volumes",
    "pairs_csv_has_splits",
    "resolve_pairs_csv",
]

# longest first, so "x.nii.gz" is not taken for a ".gz" of something else
NIFTI_SUFFIXES = (".nii.gz", ".nii")
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
SPLITS = ("train", "test")
_RAS = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])  # nibabel ornt of axes already R, A, S
_LPS_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # ITK LPS <-> NIfTI RAS (its own inverse)
_ArrayT = TypeVar("_ArrayT")


# ------------------------------------------------------------------------------------- names


def split_name(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Split a volume file name into its stem and its (possibly two-part) suffix.

    ``ing01.nii.gz`` -> ``('ing01', '.nii.gz')``; ``a.b.nii`` -> ``('a.b', '.nii')``; ``x.mha``,
    ``x.mhd``, ``x.nrrd`` likewise. The match ignores case and returns the suffix as written.
    Only the suffix is removed (never characters from a set, the ``str.strip`` mistake).

    Raises:
        DataError: the name ends in none of :data:`VOLUME_SUFFIXES`, or nothing precedes it.
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    raise DataError(f"{path}: not a volume file name; expected a name ending in {', '.join(VOLUME_SUFFIXES)}")


def _is_nifti_suffix(suffix: str) -> bool:
    return suffix.lower() in NIFTI_SUFFIXES


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


# ------------------------------------------------------------------------------------ volume


@dataclass(eq=False)  # arrays inside: compare the fields themselves
class Volume:
    """A 3-D volume in the canonical RAS+ frame, with what is needed to write it back as it came.

    Attributes:
        data: (X, Y, Z) float32 intensities, axes i -> R, j -> A, k -> S (nearest to).
        affine: (4, 4) float64, canonical voxel index -> world RAS+ mm.
        source: the file read, for messages.
        file_format: ``'nifti'`` (read with nibabel) or ``'itk'`` (read with SimpleITK).
        file_shape: the file's data shape: 3-D, or a NIfTI 4-D/5-D whose extra axes are all 1
            (read as 3-D and written back with those singleton axes).
        file_affine: (4, 4) the file's own voxel index -> world RAS+ mm.
        nifti_header: a copy of the nibabel header (NIfTI only; None otherwise).
        itk_geometry: ``{"origin", "spacing", "direction"}`` exactly as SimpleITK gave them (LPS+,
            direction row-major 3x3; SimpleITK formats only; None otherwise).
        mm_per_unit: millimetres per spatial unit of the file (NIfTI ``xyzt_units``: 1 for mm
            and unknown, 1000 for metres, 0.001 for microns).
    """

    data: np.ndarray
    affine: np.ndarray
    source: str
    file_format: Literal["nifti", "itk"]
    file_shape: tuple[int, ...]
    file_affine: np.ndarray
    nifti_header: Any | None = None
    itk_geometry: dict[str, tuple[float, ...]] | None = None
    mm_per_unit: float = 1.0
    _to_canonical: np.ndarray = field(init=False, repr=False)
    _to_file: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from nibabel.orientations import io_orientation, ornt_transform

        file_ornt = io_orientation(self.file_affine)
        if np.isnan(file_ornt).any():
            raise DataError(f"{self.source}: the affine {self.file_affine[:3, :3].tolist()} is singular (an axis has no direction); cannot orient the volume")
        self._to_canonical = ornt_transform(file_ornt, _RAS)
        self._to_file = ornt_transform(_RAS, file_ornt)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The canonical (X, Y, Z) shape."""
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """(3,) voxel size in mm along the canonical axes (the affine's column norms)."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """An array in the file's voxel order (first 3 axes) -> the canonical frame (a contiguous copy)."""
        from nibabel.orientations import apply_orientation

        return np.ascontiguousarray(apply_orientation(np.asarray(array), self._to_canonical))

    def to_original(self, array: np.ndarray) -> np.ndarray:
        """An array in the canonical frame (first 3 axes; any size, e.g. cropped) -> the file's voxel order.

        The exact inverse of the permutation and flips applied on reading (a contiguous copy).
        """
        from nibabel.orientations import apply_orientation

        arr = np.asarray(array)
        if arr.ndim < 3:
            raise DataError(f"{self.source}: an array of shape {arr.shape} cannot be put back in the file's 3-D voxel order")
        return np.ascontiguousarray(apply_orientation(arr, self._to_file))

    def affine_to_original(self, affine_canonical: np.ndarray, canonical_shape: Sequence[int]) -> np.ndarray:
        """The file-order affine (RAS+ mm) of a canonical grid of ``canonical_shape`` whose affine is ``affine_canonical``.

        The flips depend on the size of the flipped axis (index ``i`` becomes ``n - 1 - i``), so
        the shape of the grid being written (e.g. a crop) is needed.
        """
        from nibabel.orientations import inv_ornt_aff

        return np.asarray(affine_canonical, dtype=np.float64) @ inv_ornt_aff(self._to_file, tuple(int(s) for s in canonical_shape[:3]))


def _canonical_affine(file_affine: np.ndarray, to_canonical: np.ndarray, file_shape3: tuple[int, ...]) -> np.ndarray:
    from nibabel.orientations import inv_ornt_aff

    return file_affine @ inv_ornt_aff(to_canonical, file_shape3)


def _check_voxels(data: np.ndarray, path: Path) -> None:
    """Refuse NaN/Inf (naming the first bad voxel, file order) and constant volumes."""
    finite = np.isfinite(data)
    if not finite.all():
        bad = np.flatnonzero(~finite.ravel())
        idx = [int(v) for v in np.unravel_index(int(bad[0]), data.shape)]
        raise DataError(f"{path}: voxel {idx} (index in the file's order; {len(bad)} bad voxels in all) is {data[tuple(idx)]}; expected finite intensities")
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        what = "all zeros" if lo == 0 else f"constant (every voxel is {lo:g})"
        raise DataError(f"{path}: the volume is {what}: nothing to learn or translate")


def _check_shape3(shape: tuple[int, ...], path: Path, how: str) -> None:
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise DataError(f"{path}: image of shape {list(shape)}{how}; expected a 3-D volume (a 4-D one with a last axis of 1 is read as 3-D)")
    if min(shape[:3]) < 2:
        raise DataError(f"{path}: volume of shape {list(shape[:3])} is degenerate (an axis of fewer than 2 voxels); expected a 3-D volume")


_UNIT_MM = {"meter": 1000.0, "mm": 1.0, "micron": 1e-3, "unknown": 1.0}


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        img = nib.load(str(path))
    except (ImageFileError, OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable NIfTI file ({err}); expected a 3-D .nii/.nii.gz volume") from None
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image
        raise DataError(f"{path}: a {type(img).__name__} file, not NIfTI; expected a 3-D .nii/.nii.gz volume")
    shape = tuple(int(s) for s in img.shape)
    _check_shape3(shape, path, "")
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(shape[:3])
    except Exception as err:  # truncated gzip, short file...: nibabel raises many kinds
        raise DataError(f"{path}: cannot read the voxel data ({type(err).__name__}: {err})") from None
    _check_voxels(data, path)
    header = img.header.copy()
    unit = header.get_xyzt_units()[0]
    mm = _UNIT_MM.get(unit, 1.0)
    file_affine = np.asarray(img.affine, dtype=np.float64).copy()
    file_affine[:3, :] *= mm
    if not np.isfinite(file_affine).all():
        raise DataError(f"{path}: the header's affine holds NaN or Inf ({img.affine.tolist()})")
    return _make_volume(data, file_affine, path, "nifti", shape, nifti_header=header, mm_per_unit=mm)


def _itk_affine(origin: Sequence[float], spacing: Sequence[float], direction: Sequence[float]) -> np.ndarray:
    """Voxel index -> RAS+ mm from ITK's LPS+ origin, spacing and row-major direction."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) @ np.diag(np.asarray(spacing, dtype=np.float64))
    lps[:3, 3] = origin
    return _LPS_RAS @ lps


def _read_itk(path: Path) -> Volume:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unknown error"
        raise DataError(f"{path}: cannot read the volume ({first}); expected a 3-D image SimpleITK reads (.mha, .mhd, .nrrd)") from None
    size = tuple(int(s) for s in image.GetSize())
    if image.GetDimension() != 3:
        raise DataError(f"{path}: image of size {list(size)} is {image.GetDimension()}-D; expected a 3-D volume (SimpleITK formats are not squeezed)")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar volume")
    _check_shape3(size, path, "")
    raw = sitk.GetArrayFromImage(image)  # (z, y, x)
    if raw.dtype.kind not in "fiub":
        raise DataError(f"{path}: voxels of type {raw.dtype}; expected real intensities")
    data = np.ascontiguousarray(raw.transpose(2, 1, 0), dtype=np.float32)
    _check_voxels(data, path)
    geometry = {"origin": tuple(image.GetOrigin()), "spacing": tuple(image.GetSpacing()), "direction": tuple(image.GetDirection())}
    file_affine = _itk_affine(geometry["origin"], geometry["spacing"], geometry["direction"])
    if not np.isfinite(file_affine).all():
        raise DataError(f"{path}: origin/spacing/direction hold NaN or Inf ({geometry})")
    return _make_volume(data, file_affine, path, "itk", size, itk_geometry=geometry)


def _make_volume(data: np.ndarray, file_affine: np.ndarray, path: Path, fmt: Literal["nifti", "itk"], file_shape: tuple[int, ...], **extra: Any) -> Volume:
    vol = Volume(data=data, affine=np.eye(4), source=str(path), file_format=fmt, file_shape=file_shape, file_affine=file_affine, **extra)
    vol.data = vol.to_canonical(data).astype(np.float32, copy=False)
    vol.affine = _canonical_affine(file_affine, vol._to_canonical, file_shape[:3])
    return vol


#: Largest difference (mm) between two affines' entries for volumes to be on the same grid (files store float32).
GRID_TOLERANCE_MM = 1e-3


def check_same_grid(a: Volume, b: Volume) -> None:
    """Refuse a pair of volumes on different voxel grids (shape or affine), naming both files, shapes and affines.

    Raises:
        DataError: the shapes differ, or an affine entry differs by more than :data:`GRID_TOLERANCE_MM`.
    """
    if a.shape != b.shape or not np.allclose(a.affine, b.affine, rtol=0.0, atol=GRID_TOLERANCE_MM):
        raise DataError(
            f"{a.source} and {b.source}: paired volumes on different grids (shapes {list(a.shape)} and {list(b.shape)}, "
            f"affines {np.round(a.affine, 4).tolist()} and {np.round(b.affine, 4).tolist()}); co-register them (or run `gansim prepare` "
            "on co-registered pairs) or use pairing 'unpaired'"
        )


def read_volume(path: str | os.PathLike[str]) -> Volume:
    """Read a 3-D volume into the canonical RAS+ frame.

    NIfTI (.nii, .nii.gz) is read with nibabel (scaled by ``scl_slope``/``scl_inter``), any other
    suffix with SimpleITK (.mha, .mhd, .nrrd). A NIfTI of shape (X, Y, Z, 1) (one time point) is
    read as (X, Y, Z) and written back by :func:`write_like` with its singleton axis.

    Returns:
        a :class:`Volume` with float32 ``data`` (X, Y, Z) and its canonical ``affine``.

    Raises:
        DataError: naming the file: an unknown suffix, missing or unreadable file, not 3-D, an
            axis of fewer than 2 voxels, NaN/Inf (the first bad voxel in the file's index
            order), a constant or all-zero volume ("nothing to learn or translate"), or a
            singular affine.
    """
    p = Path(path)
    _, suffix = split_name(p)
    if not p.is_file():
        where = f"; {p.parent} holds: {_listing(p.parent)}" if p.parent.is_dir() else f" (no folder {p.parent})"
        raise DataError(f"{p}: volume file not found{where}")
    return _read_nifti(p) if _is_nifti_suffix(suffix) else _read_itk(p)


# ------------------------------------------------------------------------------------- write


def _as_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor, without importing torch here
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def write_like(
    path: str | os.PathLike[str],
    data_canonical: np.ndarray,
    like: Volume,
    *,
    force: bool = False,
    affine_canonical: np.ndarray | None = None,
) -> Path:
    """Write a canonical-frame array back in ``like``'s voxel order and header.

    The output format follows the suffix of ``path``: a NIfTI suffix with a NIfTI ``like`` is
    written by nibabel with ``like``'s header (sform/qform codes, pixdim, xyzt units, descrip,
    intent, extensions, a trailing singleton axis); any other combination by SimpleITK with the
    origin/spacing/direction of the affine (``like``'s own, exactly, for a SimpleITK ``like``
    and no new affine). Values are float32, stored as given (``scl_slope`` = 1,
    ``scl_inter`` = 0); ``cal_min``/``cal_max`` are reset to 0 (unset: the input's display
    window does not fit new intensities).

    Args:
        path: the output file (.nii.gz, .nii, .mha, .mhd, .nrrd). A .mhd is written with its
            .raw data file beside it, both committed only when both are complete.
        data_canonical: (X, Y, Z) finite values in the canonical frame; a NumPy array or a
            torch tensor.
        like: the volume whose frame and header to reproduce.
        force: overwrite an existing output.
        affine_canonical: (4, 4) the canonical affine of ``data_canonical`` when it is not
            ``like.affine`` (a crop, a pad); it replaces the affine in both sform and qform
            (their codes kept; a file that had neither, codes 0, gets code 1, scanner, so the
            new position is not lost). Needed when the shape differs from ``like``'s. A qform
            holds no shear: for a sheared affine nibabel stores the nearest rotation there,
            the sform keeps the exact affine.

    Returns:
        ``path``.

    Raises:
        DataError: not 3-D, NaN/Inf, a shape other than ``like``'s without ``affine_canonical``,
            a bad affine.
        OutputExistsError: the output exists and not ``force``.
    """
    path = Path(path)
    _, suffix = split_name(path)
    arr = _as_numpy(data_canonical)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise DataError(f"{path}: data of shape {arr.shape}; expected a 3-D (X, Y, Z) volume")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path}: data of dtype {arr.dtype}; expected real intensities")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = [int(v) for v in np.unravel_index(int(np.flatnonzero(~np.isfinite(arr).ravel())[0]), arr.shape)]
        raise DataError(f"{path}: voxel {bad} (canonical index) is not finite; expected finite values to write")
    if affine_canonical is None:
        if arr.shape != like.shape:
            raise DataError(f"{path}: data of shape {arr.shape} differs from {like.source}'s {like.shape}; pass affine_canonical (the new grid's affine)")
        aff_c, same_grid = like.affine, True
    else:
        aff_c = np.asarray(affine_canonical, dtype=np.float64)
        if aff_c.shape != (4, 4) or not np.isfinite(aff_c).all() or abs(np.linalg.det(aff_c[:3, :3])) < 1e-12:
            raise DataError(f"{path}: affine_canonical must be a finite, invertible 4x4 matrix; got {np.asarray(affine_canonical).tolist()}")
        same_grid = arr.shape == like.shape and np.array_equal(aff_c, like.affine)
    file_arr = like.to_original(arr)
    file_affine = like.file_affine if same_grid else like.affine_to_original(aff_c, arr.shape)
    check_writable(path, force)
    if like.file_format == "nifti" and _is_nifti_suffix(suffix):
        _write_nifti(path, file_arr, like, None if same_grid else file_affine, force, suffix)
    else:
        geometry = like.itk_geometry if (same_grid and like.itk_geometry is not None) else _itk_geometry(file_affine, path)
        _write_itk(path, file_arr, geometry, force, suffix)
    return path


def _write_nifti(path: Path, file_arr: np.ndarray, like: Volume, file_affine: np.ndarray | None, force: bool, suffix: str) -> None:
    import nibabel as nib

    header = like.nifti_header.copy()
    extra = tuple(like.file_shape[3:])  # the file's trailing singleton axes (checked on reading): keep them
    data = file_arr.reshape(file_arr.shape + extra)
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(1.0, 0.0)
    header["cal_min"], header["cal_max"] = 0.0, 0.0
    if file_affine is not None:
        aff = file_affine.copy()
        aff[:3, :] /= like.mm_per_unit  # back to the file's spatial unit
        s_code, q_code = int(header["sform_code"]), int(header["qform_code"])
        if s_code == 0 and q_code == 0:
            s_code = q_code = 1
        header.set_sform(aff, code=s_code)
        header.set_qform(aff, code=q_code)  # also sets pixdim[1:4] to the column norms
    klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    img = klass(data, None, header=header)  # affine None: nibabel keeps the header's sform/qform as set
    with atomic_path(path, force=force, suffix=suffix) as tmp:  # nibabel infers gzip from the suffix
        nib.save(img, str(tmp))


def _itk_geometry(file_affine: np.ndarray, path: Path) -> dict[str, tuple[float, ...]]:
    """Origin, spacing, direction (LPS+, row-major) of a file-order RAS+ affine."""
    lps = _LPS_RAS @ file_affine
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    if not (spacing > 0).all():
        raise DataError(f"{path}: the affine has a zero-length axis; cannot write origin/spacing/direction")
    direction = lps[:3, :3] / spacing
    return {"origin": tuple(float(v) for v in lps[:3, 3]), "spacing": tuple(float(v) for v in spacing), "direction": tuple(float(v) for v in direction.ravel())}


def _write_itk(path: Path, file_arr: np.ndarray, geometry: Mapping[str, Sequence[float]], force: bool, suffix: str) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(file_arr.transpose(2, 1, 0)))  # [i, j, k] -> (z, y, x)
    try:
        image.SetOrigin(tuple(geometry["origin"]))
        image.SetSpacing(tuple(geometry["spacing"]))
        image.SetDirection(tuple(geometry["direction"]))
    except RuntimeError as err:
        raise DataError(f"{path}: SimpleITK refuses the geometry {dict(geometry)} ({str(err).strip().splitlines()[-1]})") from None
    if suffix.lower() == ".mhd":
        _write_mhd(path, image, force)
        return
    with atomic_path(path, force=force, suffix=suffix) as tmp:
        sitk.WriteImage(image, str(tmp))


def _write_mhd(path: Path, image: Any, force: bool) -> None:
    """A .mhd header names its data file, so both are written under their final names in a
    private temporary folder beside the target, then moved (data file first)."""
    import SimpleITK as sitk

    check_writable(path, force)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        sitk.WriteImage(image, str(tmp_dir / path.name), False)
        written = sorted(p for p in tmp_dir.iterdir() if p.name != path.name)
        for p in written:
            check_writable(path.parent / p.name, force)
        for p in written:
            commit_file(p, path.parent / p.name)
        commit_file(tmp_dir / path.name, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


# ----------------------------------------------------------------------------------- scaling


#: Histogram bins of Otsu's threshold in :func:`foreground_mask`.
OTSU_BINS = 256


def otsu_threshold(values: np.ndarray, bins: int = OTSU_BINS) -> float:
    """Otsu's threshold: the histogram cut that maximises the between-class variance of ``values``.

    Returns the upper edge of the last bin of the lower class (values above it are foreground).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    counts, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(counts)[:-1].astype(np.float64)  # lower class: bins 0..c, for cuts c = 0..bins-2
    w1 = v.size - w0
    s0 = np.cumsum(counts * centres)[:-1]
    mu0 = s0 / np.maximum(w0, 1)
    mu1 = (np.sum(counts * centres) - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def finite_volume(value: Any, source: str = "volume") -> np.ndarray:
    """``value`` as a finite float64 (X, Y, Z) array.

    Raises:
        DataError: naming ``source``: not numeric, not 3-D, or NaN/Inf (how many, and the first's index).
    """
    try:
        x = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: expected a numeric (X, Y, Z) array, got {type(value).__name__} ({exc})") from exc
    if x.ndim != 3:
        raise DataError(f"{source}: expected a 3-D (X, Y, Z) volume, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(v) for v in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(x).any() else "infinite"
        raise DataError(f"{source}: {int(bad.sum())} {kind} voxel(s), the first at [i, j, k] = {first}; expected finite intensities")
    return x


def foreground_mask(volume: Any, threshold: float | None = None, *, fill_holes: bool = True, source: str = "volume") -> np.ndarray:
    """The voxels of the head (object): ``volume > threshold``, enclosed holes filled.

    The one foreground of the volume family: ``gansim prepare`` crops to its box, the intensity
    scaling takes its percentiles, training patches are centred in it and the scores are masked
    by it. Otsu's threshold splits dark background from tissue even where the background holds
    Rician noise of a few per cent of the tissue signal (an unmasked MR magnitude image), which a
    fixed small fraction of the maximum does not.

    Args:
        volume: (X, Y, Z) intensities, background dark (MR magnitude images, skull-stripped or not).
        threshold: intensity above which a voxel is foreground; None: Otsu's threshold of the
            volume's histogram (256 bins up to its 99.9th percentile).
        fill_holes: fill cavities enclosed in 3-D (``scipy.ndimage.binary_fill_holes``), so dark
            tissue inside the head (CSF in T1w, ventricles) stays in the mask.
        source: the volume's name (a path or subject) for messages.

    Returns:
        (X, Y, Z) booleans.

    Raises:
        DataError: not 3-D, NaN/Inf, a constant volume, or no voxel above the threshold.
        ConfigError: a non-finite threshold.
    """
    from scipy import ndimage

    t = finite_volume(volume, source)
    if threshold is None:
        if t.max() == t.min():
            raise DataError(f"{source}: constant volume ({t.min():.6g}): no foreground to separate (an empty volume?); pass a mask or a threshold")
        # the histogram stops at the 99.9th percentile: a few hot voxels (vessels, a marker) would
        # otherwise take the whole range and become Otsu's "foreground" on their own
        clipped = np.minimum(t, np.percentile(t, 99.9))
        threshold = otsu_threshold(clipped if clipped.max() > clipped.min() else t)
    elif not math.isfinite(float(threshold)):
        raise ConfigError(f"threshold {threshold!r}: expected a finite intensity")
    mask = t > float(threshold)
    if fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    if not mask.any():
        raise DataError(f"{source}: no voxel above the threshold {float(threshold):.6g} (max {t.max():.6g}); expected a threshold below the tissue intensities")
    return mask


def _foreground_values(data: np.ndarray, mask: np.ndarray | None, source: str) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float64)
    if mask is None:
        values = arr[foreground_mask(arr, source=source)]
    else:
        m = np.asarray(mask)
        if m.shape != arr.shape:
            raise DataError(f"{source}: mask of shape {m.shape} differs from the volume's {arr.shape}")
        values = arr[m.astype(bool)]
    if values.size == 0:
        raise DataError(f"{source}: no foreground voxels (empty mask or constant volume): nothing to scale")
    if not np.isfinite(values).all():
        raise DataError(f"{source}: the foreground holds NaN or Inf")
    return values


@dataclass(frozen=True)
class VolumeScaling:
    """A linear map of intensities to the networks' [-1, 1] from robust percentiles.

    ``lo`` (the ``percentiles[0]``-th percentile of the whole volume: the air's level) goes to -1
    and ``hi`` (the ``percentiles[1]``-th percentile of the foreground, the head) to +1. ``lo``
    comes from the whole volume so the darkest tissue (CSF in T1w, which a head mask from
    Otsu's threshold partly leaves out) lies inside (-1, 1), where the generators' tanh can
    reach it; ``hi`` from the head so a small head in a large field of view still spans the range.
    Values outside [lo, hi] land outside [-1, 1]: nothing is clipped, so :meth:`inverse` gives
    back every input exactly (to float rounding), bright outliers and the darkest air included.

    Attributes:
        lo, hi: intensities mapped to -1 and +1, lo < hi.
        percentiles: the (low, high) percentiles they were fitted as (provenance).
        mode: ``'percentile'`` (the only mode).
    """

    lo: float
    hi: float
    percentiles: tuple[float, float] = (0.5, 99.5)
    mode: Literal["percentile"] = "percentile"

    def __post_init__(self) -> None:
        if self.mode != "percentile":
            raise ConfigError(f"volume scaling mode {self.mode!r}: expected 'percentile'")
        lo, hi = float(self.lo), float(self.hi)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"volume scaling lo={lo}, hi={hi}: expected finite numbers with lo < hi")
        p = tuple(float(v) for v in self.percentiles)
        if len(p) != 2 or not 0.0 <= p[0] < p[1] <= 100.0:
            raise ConfigError(f"volume scaling percentiles {self.percentiles}: expected (low, high) with 0 <= low < high <= 100")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "percentiles", p)

    @classmethod
    def fit(
        cls,
        volumes: np.ndarray | Sequence[np.ndarray],
        masks: np.ndarray | Sequence[np.ndarray | None] | None = None,
        percentiles: tuple[float, float] = (0.5, 99.5),
        source: str = "volumes",
    ) -> VolumeScaling:
        """Fit on one volume (X, Y, Z) or several: ``lo`` on all voxels, ``hi`` on the foreground.

        The foreground is ``masks`` (non-zero voxels) where given, else :func:`foreground_mask`. With several volumes ``lo`` and ``hi`` are the means of the
        volumes' own percentiles: each volume weighs the same, whatever its size, and memory
        stays that of one volume.

        Raises:
            ConfigError: bad percentiles.
            DataError: NaN/Inf, no foreground, a mask of another shape, or lo == hi (a
                foreground of one intensity).
        """
        vols = [volumes] if isinstance(volumes, np.ndarray) and volumes.ndim == 3 else list(volumes)
        if not vols:
            raise DataError(f"{source}: no volumes to fit the intensity scaling to")
        if masks is None:
            mask_list: list[np.ndarray | None] = [None] * len(vols)
        elif isinstance(masks, np.ndarray) and masks.ndim == 3:
            mask_list = [masks]
        else:
            mask_list = list(masks)
        if len(mask_list) != len(vols):
            raise DataError(f"{source}: {len(mask_list)} masks for {len(vols)} volumes")
        p = tuple(float(v) for v in percentiles)
        if len(p) != 2 or not 0.0 <= p[0] < p[1] <= 100.0:
            raise ConfigError(f"percentiles {tuple(percentiles)}: expected (low, high) with 0 <= low < high <= 100")
        los, his = [], []
        for n, (vol, mask) in enumerate(zip(vols, mask_list)):
            where = source if len(vols) == 1 else f"{source}[{n}]"
            arr = _as_numpy(vol)
            if arr.ndim != 3:
                raise DataError(f"{where}: shape {arr.shape}; expected a 3-D volume")
            if not np.isfinite(arr).all():
                raise DataError(f"{where}: the volume holds NaN or Inf")
            values = _foreground_values(arr, None if mask is None else _as_numpy(mask), where)
            los.append(float(np.percentile(arr, p[0])))
            his.append(float(np.percentile(values, p[1])))
        return cls._of_means(los, his, p, source)

    @classmethod
    def mean_of(cls, scalings: Sequence[VolumeScaling], source: str = "volumes") -> VolumeScaling:
        """The scaling :meth:`fit` gives for several volumes, from each volume's own fit (no volume read again)."""
        if not scalings:
            raise DataError(f"{source}: no volumes to fit the intensity scaling to")
        p = scalings[0].percentiles
        if any(s.percentiles != p for s in scalings):
            raise ConfigError(f"{source}: the scalings were fitted at different percentiles; expected one pair")
        return cls._of_means([s.lo for s in scalings], [s.hi for s in scalings], p, source)

    @classmethod
    def _of_means(cls, los: Sequence[float], his: Sequence[float], p: tuple[float, ...], source: str) -> VolumeScaling:
        """The mean of the volumes' own lo and hi: each volume weighs the same, whatever its size."""
        lo, hi = float(np.mean(los)), float(np.mean(his))
        if not lo < hi:
            raise DataError(f"{source}: the volume's {p[0]}th percentile ({lo:g}) is not below its foreground's {p[1]}th ({hi:g}); cannot scale a one-intensity foreground")
        return cls(lo, hi, p)  # type: ignore[arg-type]

    # the same exact linear map as the slices' scaling (float64 in NumPy, dtypes kept)
    _apply = IntensityScaling._apply_linear
    forward = IntensityScaling.forward
    inverse = IntensityScaling.inverse

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry ``{"mode", "lo", "hi", "percentiles"}`` (plain JSON data)."""
        return {"mode": self.mode, "lo": self.lo, "hi": self.hi, "percentiles": list(self.percentiles)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, source: str = "manifest 'scaling'") -> VolumeScaling:
        """The scaling a manifest entry describes.

        Raises:
            ModelFileError: not a mapping, an unknown or missing key, a bad value, naming
                ``source`` and the key.
        """
        keys = {"mode", "lo", "hi", "percentiles"}
        if not isinstance(d, Mapping):
            raise ModelFileError(f"{source}: expected a mapping with keys {sorted(keys)}; got {type(d).__name__}")
        unknown = sorted(set(d) - keys)
        if unknown:
            raise ModelFileError(f"{source}: unknown key(s) {unknown}; expected {sorted(keys)}")
        missing = sorted(keys - set(d))
        if missing:
            raise ModelFileError(f"{source}: missing key(s) {missing}")
        if d["mode"] != "percentile":
            raise ModelFileError(f"{source}: key 'mode' is {d['mode']!r}; expected 'percentile'")
        for key in ("lo", "hi"):
            v = d[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ModelFileError(f"{source}: key {key!r} is {v!r}; expected a finite number")
        p = d["percentiles"]
        if not isinstance(p, (list, tuple)) or len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in p):
            raise ModelFileError(f"{source}: key 'percentiles' is {p!r}; expected [low, high]")
        try:
            return cls(float(d["lo"]), float(d["hi"]), (float(p[0]), float(p[1])))
        except ConfigError as err:
            raise ModelFileError(f"{source}: {err} (keys 'lo', 'hi', 'percentiles')") from None


# --------------------------------------------------------------------------------- data sets


def volume_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The volume files of a folder, sorted by name (dot files, temporaries, other files and .raw data files skipped)."""
    out = []
    for p in Path(folder).iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        try:
            split_name(p)
        except DataError:
            continue
        out.append(p)
    return sorted(out, key=lambda p: p.name)


def find_volume_sets(root: str | os.PathLike[str]) -> dict[str, dict[str, list[Path]]]:
    """The volume files of a ``trainA/ trainB/ [testA/ testB/]`` data set.

    Returns:
        ``{"train": {"A": [...], "B": [...]}, "test": {...}}`` with each list sorted by file
        name; ``"test"`` only when ``testA`` and ``testB`` exist.

    Raises:
        DataError: ``root``, ``trainA`` or ``trainB`` missing, only one of ``testA``/``testB``,
            or a folder with no volume file; the message lists what the folder holds.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (expected trainA/, trainB/ and optionally testA/, testB/ of volumes)")
    sets: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        folders = {side: root / f"{split}{side}" for side in ("A", "B")}
        present = {side: f.is_dir() for side, f in folders.items()}
        if split == "test" and not any(present.values()):
            continue
        for side, ok in present.items():
            if not ok:
                raise DataError(f"{folders[side]}: folder not found; a {split} set needs {split}A/ and {split}B/. {root} holds: {_listing(root)}")
        sets[split] = {}
        for side, folder in folders.items():
            files = volume_files(folder)
            if not files:
                raise DataError(f"{folder}: no volume file ({', '.join(VOLUME_SUFFIXES)}); it holds: {_listing(folder)}")
            sets[split][side] = files
    return sets


def _varying_part(stems: list[str]) -> tuple[list[str], Callable[[str], str]]:
    """Each stem less the prefix and suffix all the stems share ('sub-01_T1w' -> '1' among 'sub-0?_T1w'),
    and the function that strips that prefix and suffix from another name (where it has them)."""
    if len(stems) < 2:
        return ["" for _ in stems], lambda name: ""
    prefix = os.path.commonprefix(stems)
    rests = [s[len(prefix):] for s in stems]
    suffix = os.path.commonprefix([r[::-1] for r in rests])[::-1]

    def strip(name: str) -> str:
        name = name[len(prefix):] if name.startswith(prefix) else name
        return name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name

    return [strip(s) for s in stems], strip


def pair_volumes(
    a_paths: Sequence[str | os.PathLike[str]],
    b_paths: Sequence[str | os.PathLike[str]],
    pairing: Literal["name", "csv", "unpaired"] = "name",
    csv_path: str | os.PathLike[str] | None = None,
    source: str = "data set",
    split: str | None = None,
) -> list[tuple[Path | None, Path | None]]:
    """Pair the A and B volumes of one split.

    Args:
        a_paths, b_paths: the volume files of ``<split>A`` and ``<split>B``.
        pairing: ``'name'``: the i-th A with the i-th B in name order; the counts must match,
            and a warning (not an error, the order decides) names the first pair whose names
            differ in the part that varies between files (the prefix and suffix shared by all
            A names, and by all B names, are ignored: ``sub-01_T1w`` pairs quietly with
            ``sub-01_T2w``). ``'csv'``: the rows of ``csv_path``, a csv with the columns ``A``
            and ``B`` (other columns ignored) holding paths that are absolute, relative to the
            split folder (``sub-01.nii.gz``) or to the csv's folder (``trainA/sub-01.nii.gz``);
            each must be one of the given files and used once; files no row names are left out
            with a warning. One csv can pair every split: with a ``split`` column (``train``,
            ``test``), only the rows of ``split`` are read; without one it pairs the training
            split, and another split pairs by name. ``'unpaired'``: no pairing.
        csv_path: the csv for ``'csv'``.
        source: what the files are (e.g. ``"data/train"``), for messages.
        split: the split being paired (``"train"``, ``"test"``), for a csv with a ``split`` column.

    Returns:
        ``[(a, b), ...]``; for ``'unpaired'`` ``[(a, None), ...] + [(None, b), ...]``.

    Raises:
        ConfigError: an unknown pairing, or ``'csv'`` without ``csv_path``.
        DataError: unequal counts (``'name'``), or a csv problem naming the file, line and column.
    """
    a = [Path(p) for p in a_paths]
    b = [Path(p) for p in b_paths]
    if pairing == "csv" and csv_path is None:
        raise ConfigError(f"{source}: pairing 'csv' needs csv_path (a csv with columns A, B)")
    if pairing == "csv" and split not in (None, "train") and not pairs_csv_has_splits(csv_path):  # type: ignore[arg-type]
        pairing = "name"  # a csv without a split column pairs the training split only
    if pairing == "unpaired":
        return [(p, None) for p in a] + [(None, p) for p in b]
    if pairing == "name":
        a, b = sorted(a, key=lambda p: p.name), sorted(b, key=lambda p: p.name)
        if len(a) != len(b):
            raise DataError(f"{source}: {len(a)} A volumes but {len(b)} B volumes; paired data need one B per A (or use pairing 'unpaired' or 'csv')")
        sa, sb = [split_name(p)[0] for p in a], [split_name(p)[0] for p in b]
        (va, fa), (vb, fb) = _varying_part(sa), _varying_part(sb)
        # a pair looks right when the varying parts agree, or one name less the other side's shared
        # prefix and suffix is the other's varying part (a side with one odd name shares no prefix)
        differ = [i for i in range(len(a)) if va[i] != vb[i] and fa(sb[i]) != va[i] and fb(sa[i]) != vb[i]]
        if differ:
            i = differ[0]
            warnings.warn(f"{source}: {len(differ)} of {len(a)} pairs by name order have different names, e.g. {a[i].name} with {b[i].name}; check the pairing (or give a csv)", stacklevel=2)
        return list(zip(a, b))
    if pairing == "csv":
        return _pairs_from_csv(Path(csv_path), a, b, source, split)  # type: ignore[arg-type]
    raise ConfigError(f"pairing {pairing!r}: expected 'name', 'csv' or 'unpaired'")


def _read_pairs_csv(csv_path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, fields), ...]) of a pairing csv, checked to have the columns A and B."""
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: pairing csv not found (expected columns A, B)")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, row) for n, row in enumerate(csv.reader(f), start=1)]
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not a text csv file ({err.reason} at byte {err.start}); expected columns A, B") from None
    except (OSError, csv.Error) as err:
        raise DataError(f"{csv_path}: cannot read ({err})") from None
    if not rows:
        raise DataError(f"{csv_path}: empty; expected a header line with the columns A, B")
    header = [c.strip() for c in rows[0][1]]
    missing = [c for c in ("A", "B") if c not in header]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; the columns found are {header}")
    return header, rows[1:]


def resolve_pairs_csv(root: str | os.PathLike[str], pairs_csv: str | os.PathLike[str] | None) -> Path | None:
    """The pairing csv of a data set: an absolute path as given, a relative one inside ``root`` (it moves with the data)."""
    if pairs_csv is None:
        return None
    path = Path(pairs_csv)
    return path if path.is_absolute() else Path(root) / path


def pairs_csv_has_splits(csv_path: str | os.PathLike[str]) -> bool:
    """Whether a pairing csv has a ``split`` column (so it pairs the test set too)."""
    return "split" in _read_pairs_csv(Path(csv_path))[0]


def _pairs_from_csv(csv_path: Path, a: list[Path], b: list[Path], source: str, split: str | None) -> list[tuple[Path | None, Path | None]]:
    header, body = _read_pairs_csv(csv_path)
    cols = {"A": header.index("A"), "B": header.index("B")}
    split_col = header.index("split") if "split" in header else None
    known = {"A": {p.resolve(): p for p in a}, "B": {p.resolve(): p for p in b}}
    split_dirs = {"A": {p.parent for p in a}, "B": {p.parent for p in b}}
    used: dict[str, dict[Path, int]] = {"A": {}, "B": {}}
    pairs: list[tuple[Path | None, Path | None]] = []
    for line, row in body:
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise DataError(f"{csv_path}, line {line}: {len(row)} fields, the header has {len(header)}")
        if split_col is not None:
            given_split = row[split_col].strip()
            if given_split not in SPLITS:
                raise DataError(f"{csv_path}, line {line}, column 'split': {given_split!r}; expected one of {', '.join(SPLITS)}")
            if split is not None and given_split != split:
                continue
        pair = []
        for side in ("A", "B"):
            text = row[cols[side]].strip()
            if not text:
                raise DataError(f"{csv_path}, line {line}, column {side!r}: empty; expected a {side} volume path")
            given = Path(text)
            candidates = [given] if given.is_absolute() else [d / given for d in sorted(split_dirs[side])] + [csv_path.parent / given]
            hit = next((known[side][c.resolve()] for c in candidates if c.resolve() in known[side]), None)
            if hit is None:
                folders = ", ".join(str(d) for d in sorted(split_dirs[side])) or "(none)"
                raise DataError(f"{csv_path}, line {line}, column {side!r}: {text!r} is not one of the {side} volumes of {source} (in {folders})")
            if hit in used[side]:
                raise DataError(f"{csv_path}, line {line}, column {side!r}: {text!r} is also on line {used[side][hit]}; each volume is paired once")
            used[side][hit] = line
            pair.append(hit)
        pairs.append((pair[0], pair[1]))
    if not pairs:
        raise DataError(f"{csv_path}: no rows{f' of split {split!r}' if split_col is not None and split else ''}; expected one A, B row per pair")
    left = [p.name for p in a if p not in used["A"]] + [p.name for p in b if p not in used["B"]]
    if left:
        warnings.warn(f"{source}: {len(left)} volume(s) are in no row of {csv_path} and are left out: {', '.join(left[:5])}{' ...' if len(left) > 5 else ''}", stacklevel=3)
    return pairs
