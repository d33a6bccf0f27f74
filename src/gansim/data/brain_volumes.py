"""The built-in paired T1w/T2w brain volumes: random MNI152 subjects imaged with spin-echo physics.

A stand-in for co-registered T1w/T2w scans (the DCAN 3D CycleGAN's ``trainA/trainB/testA/testB``
layout, A = T1w, B = T2w) that needs no download: the subjects and their tissue maps come from
the MNI152 2009 template in the nilearn wheel (optional extra ``pip install 'gansim[brain]'``),
through the subject model of :mod:`gansim.data.brain`.

How one subject is made
-----------------------
1. **Anatomy** (:func:`make_subject_anatomy`): a random subject (:func:`gansim.data.brain.random_subject`:
   head size, smooth plane-wave deformation, optional Alzheimer-like ``effect``) is sampled at the
   world points of an **oblique, anisotropic voxel grid**: the volume's axes are rotated by a pitch
   about x and a yaw about z, each 2-6 degrees with a random sign, and its centre is the template
   brain's bounding-box centre (0, -17, 5) mm plus a random shift (2 mm sd per axis, clipped to
   +-5 mm). The affine ``voxel [i, j, k] -> world mm`` is ``[R diag(spacing) | t]``; voxel axes are
   RAS-like (i ~ right, j ~ anterior, k ~ superior). Each voxel gets the partial-volume fractions of
   CSF, GM and WM (sum <= 1, 0 outside the brain); anti-aliasing: the template maps are smoothed by
   the Gaussian of a voxel-wide box per axis (:func:`gansim.data.brain_slices.antialias_sigma_mm`,
   along the template axes: an approximation for the few-degree tilt) and sampled once per voxel.
   The subject's own relaxation times and proton densities scatter about the tissue table
   (log-normal, 3 % sd for T1 and T2, 2 % for PD), and the template's ``texture`` (its T1 over its
   tissue model: deep nuclei, fine structure) becomes a local factor ``r = texture ** k`` on both
   relaxation rates -- iron and myelin shorten T1 and T2 together -- with ``k`` chosen so that the
   T1w sequence reproduces the texture to first order (:func:`texture_exponent`). Both contrasts
   are made from this one anatomy, so a pair is co-registered voxel for voxel.
2. **Contrast** (:func:`render_contrast`): the spin-echo signal of the partial volumes
   (:func:`gansim.physics.mr_signal.tissue_signal`) times a receiver gain that puts the brightest
   pure tissue of the nominal table at :data:`REFERENCE_INTENSITY` (x a per-scan factor, 10 % sd),
   times a smooth multiplicative bias field (exp of a random quadratic in world mm / 100,
   coefficient sd ``bias``, independent per contrast: a different coil loading and sequence), then
   Rician noise of sd ``noise * REFERENCE_INTENSITY * that factor`` (:func:`gansim.data.brain.rician_noise`).
   Outside the brain the signal is 0, so the background is the Rician noise floor (Rayleigh, mean
   1.25 sd). Values are non-negative arbitrary units.

Sizes (:data:`PRESETS`)
-----------------------
* ``"default"``: 72 x 88 x 64 voxels of 2.5 x 2.5 x 3.0 mm (a 180 x 220 x 192 mm field of view):
  the template brain's bounding box (144 x 180 x 154 mm) times the largest head scale (1.10) plus
  the 6 degree tilt of a 200 mm brain fits with a few mm to spare; every axis is a multiple of 8
  (three stride-2 levels need no padding); 0.4 M voxels (1.6 MB float32) per volume, so a CPU
  with 2 cores trains on patches of it and a whole volume fits in memory many times over. The
  default data set (8 + 2 subjects, 29 MB) takes 10-25 s on one core (measured on a shared
  machine; ~3 s of it is loading and smoothing the template, ~4 s gzip).
* ``"full"``: 182 x 218 x 182 voxels of 1 mm (the MNI152 1 mm grid's size) for benchmarks
  (7.2 M voxels, 29 MB per volume; the grid is still oblique; about 20-25 s per subject on one
  core, computed in slabs of about 1 M voxels so the peak memory stays near 0.5 GB).

Files (:func:`write_brain_volumes`)
-----------------------------------
``DIR/trainA/sub-001.nii.gz`` ... (T1w), ``DIR/trainB/sub-001.nii.gz`` ... (T2w), the same for
``testA/testB``, and ``DIR/dataset.json``. Each NIfTI is float32 with the oblique affine in both
the sform and the qform, codes 1 ("scanner anatomical": the coordinates are those of the
synthetic acquisition, not a standard space -- the subjects are deformed, so code 4 (MNI) would
be false), pixdim = the spacing, spatial unit mm.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gansim.data.brain import (
    BrainSubject,
    BrainTemplate,
    random_subject,
    rician_noise,
    smoothed_template,
)
from gansim.data.brain_slices import _check_float, _check_int, antialias_sigma_mm
from gansim.errors import ConfigError, OutputExistsError
from gansim.physics.mr_signal import (
    SEQUENCES,
    SpinEchoSequence,
    Tissue,
    get_sequence,
    get_tissue_table,
    spin_echo,
    spin_echo_log_derivative,
    tissue_signal,
)

__all__ = [
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING_MM",
    "FULL_SHAPE",
    "FULL_SPACING_MM",
    "PRESETS",
    "DEFAULT_NOISE",
    "DEFAULT_BIAS",
    "REFERENCE_INTENSITY",
    "VOLUME_CENTRE_MM",
    "XFORM_CODE",
    "SubjectAnatomy",
    "subject_seed",
    "oblique_affine",
    "grid_points",
    "texture_exponent",
    "make_subject_anatomy",
    "render_contrast",
    "make_subject_volumes",
    "write_brain_volumes",
]

#: Default grid: voxels per axis and spacing (mm) -- see the module docstring for the choice.
DEFAULT_SHAPE = (72, 88, 64)
DEFAULT_SPACING_MM = (2.5, 2.5, 3.0)
#: Whole-size grid (the MNI152 1 mm grid's size), for benchmarks.
FULL_SHAPE = (182, 218, 182)
FULL_SPACING_MM = (1.0, 1.0, 1.0)
#: Named sizes: name -> (shape, spacing_mm).
PRESETS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "default": (DEFAULT_SHAPE, DEFAULT_SPACING_MM),
    "full": (FULL_SHAPE, FULL_SPACING_MM),
}
#: Rician noise sd as a fraction of :data:`REFERENCE_INTENSITY` (SNR 50 in the brightest tissue).
DEFAULT_NOISE = 0.02
#: sd of each log-bias-field coefficient (on world mm / 100): a field of about +-10 % over the brain.
DEFAULT_BIAS = 0.05
#: Intensity (arbitrary units) of the brightest pure tissue of the nominal table in each contrast.
REFERENCE_INTENSITY = 1000.0
#: Nominal centre of every volume (MNI mm): the centre of the template brain's bounding box.
VOLUME_CENTRE_MM = (0.0, -17.0, 5.0)
#: NIfTI qform and sform code of the written files (1 = scanner anatomical).
XFORM_CODE = 1

_TILT_DEG = (2.0, 6.0)  # range of |pitch| and |yaw|
_SHIFT_MM = 2.0
_SHIFT_CLIP_MM = 5.0
_RELAXATION_SD = 0.03
_PD_SD = 0.02
_GAIN_SD = 0.10
_TISSUES = ("csf", "gm", "wm")
_CHUNK_POINTS = 1 << 20  # points per chunk: bounds memory for the 1 mm grid (7.2 M voxels)
_OWNED = ("trainA", "trainB", "testA", "testB", "dataset.json")


# ------------------------------------------------------------------------------ checks


def _check_shape(shape: Any) -> tuple[int, int, int]:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ConfigError(f"shape={shape!r}: expected three voxel counts (X, Y, Z), each >= 2")
    return tuple(_check_int(f"shape[{axis}]", n, 2) for axis, n in enumerate(shape))  # type: ignore[return-value]


def _check_spacing(spacing_mm: Any) -> tuple[float, float, float]:
    if isinstance(spacing_mm, (str, bytes)) or not hasattr(spacing_mm, "__len__") or len(spacing_mm) != 3:
        raise ConfigError(f"spacing_mm={spacing_mm!r}: expected three voxel sizes in mm (x, y, z), each > 0")
    out = []
    for axis, s in enumerate(spacing_mm):
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(s) or s <= 0:
            raise ConfigError(f"spacing_mm[{axis}]={s!r}: expected a finite voxel size > 0 mm")
        out.append(float(s))
    return tuple(out)  # type: ignore[return-value]


def _seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(_check_int("seed", seed, 0))


def _child(seq: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``seq`` as ``seq.spawn`` would make it, without spawn's side effect on ``seq``."""
    return np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, index), pool_size=seq.pool_size)


def subject_seed(seed: int, subject: int) -> np.random.SeedSequence:
    """The seed of subject number ``subject`` (>= 1, the ``sub-XXX`` number) of a data set made with ``seed``."""
    return _child(_seed_sequence(seed), _check_int("subject", subject, 1))


# ------------------------------------------------------------------------------ geometry


def _rotation(pitch: float, yaw: float) -> np.ndarray:
    """(3, 3) rotation ``Rz(yaw) Rx(pitch)``, angles in rad."""
    cp, sp, cy, sy = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    return rz @ rx


def oblique_affine(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], pitch_deg: float, yaw_deg: float, centre_mm: Any) -> np.ndarray:
    """The (4, 4) affine voxel [i, j, k] -> world mm of a grid rotated by ``Rz(yaw) Rx(pitch)``.

    The grid's centre ``(shape - 1) / 2`` maps to ``centre_mm``; its columns are the voxel axes,
    of lengths ``spacing_mm``.
    """
    shape = _check_shape(shape)
    spacing = np.asarray(_check_spacing(spacing_mm))
    linear = _rotation(math.radians(pitch_deg), math.radians(yaw_deg)) * spacing[None, :]
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(centre_mm, dtype=np.float64) - linear @ ((np.asarray(shape) - 1) / 2.0)
    return affine


def grid_points(affine: np.ndarray, shape: tuple[int, int, int], k_range: tuple[int, int] | None = None) -> np.ndarray:
    """World mm of the voxel centres of ``shape`` (or of the slab ``k0 <= k < k1``): (X * Y * nk, 3),
    in C order of the array ``[i, j, k]`` (k fastest)."""
    k0, k1 = (0, shape[2]) if k_range is None else k_range
    ijk = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(k0, k1), indexing="ij"), axis=-1).reshape(-1, 3)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _slabs(shape: tuple[int, int, int]) -> Iterator[tuple[int, int]]:
    per_slice = shape[0] * shape[1]
    step = max(1, _CHUNK_POINTS // per_slice)
    for k0 in range(0, shape[2], step):
        yield k0, min(shape[2], k0 + step)


# ------------------------------------------------------------------------------ anatomy


def texture_exponent(tissues: str | Mapping[str, Tissue] = "3t") -> float:
    """Exponent ``k`` of the relaxation-rate factor ``r = texture ** k`` (see the module docstring).

    The template's texture is a T1w intensity ratio, so ``k`` makes the ``"t1w"`` sequence follow
    it to first order: ``k = 1 / (d ln S / d ln r)`` for an equal GM/WM mix of the table
    (``d ln S / d ln r`` of a mix is the signal-weighted mean of the tissues'
    :func:`~gansim.physics.mr_signal.spin_echo_log_derivative`). About 1.6 for the 3 T table.
    """
    table = get_tissue_table(tissues)
    missing = [t for t in ("gm", "wm") if t not in table]
    if missing:
        raise ConfigError(f"tissues: the table lacks {missing}; the brain volumes need 'csf', 'gm' and 'wm'")
    seq = SEQUENCES["t1w"]
    signals = [float(spin_echo(table[t].pd, table[t].t1_ms, table[t].t2_ms, seq.tr_ms, seq.te_ms)) for t in ("gm", "wm")]
    slopes = [float(spin_echo_log_derivative(table[t].t1_ms, table[t].t2_ms, seq.tr_ms, seq.te_ms)) for t in ("gm", "wm")]
    slope = (signals[0] * slopes[0] + signals[1] * slopes[1]) / (signals[0] + signals[1])
    if slope <= 0:
        raise ConfigError(f"tissues: the T1w signal of this table falls with the relaxation rates (slope {slope:.3g}); cannot map the template's texture")
    return 1.0 / slope


@dataclass(frozen=True, eq=False)
class SubjectAnatomy:
    """One subject on its voxel grid: what every contrast of it is made from.

    Attributes:
        fractions: ``"csf"``, ``"gm"``, ``"wm"`` -> (X, Y, Z) float32 partial volumes (sum <= 1,
            0 outside the brain), indexed [i, j, k].
        relaxation_scale: (X, Y, Z) float32 factor on both relaxation rates (1 = the table's).
        tissues: this subject's tissue table (T1, T2 in ms, PD).
        nominal_tissues: the table it scatters about (sets the receiver gain of every contrast).
        affine: (4, 4) voxel [i, j, k] -> world mm (oblique).
        spacing_mm: voxel size (mm) along i, j, k.
        subject: the :class:`~gansim.data.brain.BrainSubject` draw (deformation, effect sizes).
    """

    fractions: dict[str, np.ndarray]
    relaxation_scale: np.ndarray
    tissues: dict[str, Tissue]
    nominal_tissues: dict[str, Tissue]
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    subject: BrainSubject

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.relaxation_scale.shape  # type: ignore[return-value]


def _template_for(spacing: tuple[float, float, float]) -> BrainTemplate:
    # per-axis anti-aliasing sigma; rounded so that equal spacings share one cached smoothing
    sigma = tuple(round(antialias_sigma_mm(s), 6) for s in spacing)
    return smoothed_template(sigma)  # type: ignore[arg-type]


def make_subject_anatomy(
    seed: int | np.random.SeedSequence,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
    *,
    effect: float = 0.0,
    tissues: str | Mapping[str, Tissue] = "3t",
    texture: bool = True,
    template: BrainTemplate | None = None,
) -> SubjectAnatomy:
    """Draw one subject and sample its tissues on its oblique grid (step 1 of the module docstring).

    Args:
        seed: an integer or a ``SeedSequence``; the anatomy uses its child 0 (children 1 and 2
            are the two contrasts of :func:`make_subject_volumes`).
        shape: voxels (X, Y, Z), each >= 2.
        spacing_mm: voxel size (mm) along i, j, k.
        effect: Alzheimer-like effect strength (0 = control; see :func:`gansim.data.brain.random_subject`).
        tissues: the nominal tissue table (name or mapping; needs csf, gm, wm).
        texture: map the template's texture onto the relaxation rates (False: r = 1).
        template: the maps to sample; default the template smoothed for the spacing.
    """
    shape = _check_shape(shape)
    spacing = _check_spacing(spacing_mm)
    effect = _check_float("effect", effect)
    nominal = get_tissue_table(tissues)
    missing = [t for t in _TISSUES if t not in nominal]
    if missing:
        raise ConfigError(f"tissues: the table lacks {missing}; the brain volumes need 'csf', 'gm' and 'wm'")
    exponent = texture_exponent(nominal) if texture else 0.0
    rng = np.random.default_rng(_child(_seed_sequence(seed), 0))

    # the subject's own bias field is not used (each contrast draws its own), hence bias=0
    subject = random_subject(rng, effect, bias=0.0)
    pitch, yaw = rng.uniform(*_TILT_DEG, size=2) * rng.choice([-1.0, 1.0], size=2)
    shift = np.clip(rng.normal(0.0, _SHIFT_MM, size=3), -_SHIFT_CLIP_MM, _SHIFT_CLIP_MM)
    affine = oblique_affine(shape, spacing, float(pitch), float(yaw), np.asarray(VOLUME_CENTRE_MM) + shift)
    factors = np.exp(rng.normal(size=(len(_TISSUES), 3)) * np.array([_RELAXATION_SD, _RELAXATION_SD, _PD_SD]))
    own = {name: Tissue(nominal[name].t1_ms * f[0], nominal[name].t2_ms * f[1], nominal[name].pd * f[2]) for name, f in zip(_TISSUES, factors)}

    template = _template_for(spacing) if template is None else template
    fractions = {name: np.empty(shape, dtype=np.float32) for name in _TISSUES}
    scale = np.ones(shape, dtype=np.float32)
    for k0, k1 in _slabs(shape):
        tissue = subject.tissue(grid_points(affine, shape, (k0, k1)), template)
        slab = (shape[0], shape[1], k1 - k0)
        for name in _TISSUES:
            fractions[name][:, :, k0:k1] = tissue[name].reshape(slab)
        if texture:
            scale[:, :, k0:k1] = (tissue["texture"] ** np.float32(exponent)).reshape(slab)
    return SubjectAnatomy(fractions, scale, own, nominal, affine, spacing, subject)


# ------------------------------------------------------------------------------ contrast


def _reference_signal(sequence: SpinEchoSequence, tissues: Mapping[str, Tissue]) -> float:
    """The brightest pure tissue's signal in a sequence (PD units), for the receiver gain."""
    return max(float(spin_echo(t.pd, t.t1_ms, t.t2_ms, sequence.tr_ms, sequence.te_ms)) for t in tissues.values())


def render_contrast(
    anatomy: SubjectAnatomy,
    sequence: str | SpinEchoSequence,
    seed: int | np.random.SeedSequence,
    *,
    noise: float = DEFAULT_NOISE,
    bias: float = DEFAULT_BIAS,
) -> np.ndarray:
    """One scan of an anatomy (step 2 of the module docstring): (X, Y, Z) float32 >= 0, arbitrary units.

    Args:
        anatomy: from :func:`make_subject_anatomy`.
        sequence: a name of :data:`gansim.physics.mr_signal.SEQUENCES` or a ``SpinEchoSequence``.
        seed: the scan's own seed (gain factor, bias field, noise).
        noise: Rician noise sd as a fraction of :data:`REFERENCE_INTENSITY` (x the scan's gain factor).
        bias: sd of each log-bias-field coefficient (0 = no bias field).
    """
    seq = get_sequence(sequence)
    noise = _check_float("noise", noise)
    bias = _check_float("bias", bias)
    rng = np.random.default_rng(seed if isinstance(seed, np.random.SeedSequence) else _seed_sequence(seed))
    factor = float(np.exp(_GAIN_SD * rng.normal()))
    gain = REFERENCE_INTENSITY * factor / _reference_signal(seq, anatomy.nominal_tissues)
    coefficients = rng.normal(0.0, bias, size=9) if bias > 0 else np.zeros(9)
    field_model = replace(anatomy.subject, bias=coefficients)
    shape = anatomy.shape
    out = np.empty(shape, dtype=np.float32)
    for k0, k1 in _slabs(shape):
        fractions = {name: f[:, :, k0:k1] for name, f in anatomy.fractions.items()}
        signal = tissue_signal(fractions, seq, anatomy.tissues, relaxation_scale=anatomy.relaxation_scale[:, :, k0:k1])
        if bias > 0:
            signal *= field_model.bias_field(grid_points(anatomy.affine, shape, (k0, k1))).reshape(signal.shape)
        out[:, :, k0:k1] = gain * signal
    # noise last, over the whole volume, so the result does not depend on the chunking
    return rician_noise(out, noise * REFERENCE_INTENSITY * factor, rng)


def make_subject_volumes(
    seed: int | np.random.SeedSequence,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
    sequence_a: str | SpinEchoSequence = "t1w",
    sequence_b: str | SpinEchoSequence = "t2w",
    noise: float = DEFAULT_NOISE,
    bias: float = DEFAULT_BIAS,
    effect: float = 0.0,
    *,
    tissues: str | Mapping[str, Tissue] = "3t",
    texture: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A co-registered pair of scans of one random subject.

    Args: as :func:`make_subject_anatomy` and :func:`render_contrast`; contrast A uses child 1 of
    the seed, contrast B child 2 (so A or B alone is the same scan as in the pair).

    Returns:
        (a (X, Y, Z) float32, b (X, Y, Z) float32, affine (4, 4) float64 voxel -> world mm,
        shared by both).
    """
    seq = _seed_sequence(seed)
    anatomy = make_subject_anatomy(seq, shape, spacing_mm, effect=effect, tissues=tissues, texture=texture)
    a = render_contrast(anatomy, sequence_a, _child(seq, 1), noise=noise, bias=bias)
    b = render_contrast(anatomy, sequence_b, _child(seq, 2), noise=noise, bias=bias)
    return a, b, anatomy.affine.copy()


# ------------------------------------------------------------------------------ files


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, spacing: tuple[float, float, float], description: str) -> None:
    """One float32 NIfTI with ``affine`` in sform and qform (code :data:`XFORM_CODE`), written atomically."""
    import nibabel as nib

    from gansim.io.atomic import atomic_path

    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    header = image.header
    header.set_data_dtype(np.float32)
    header.set_zooms(spacing)
    header.set_xyzt_units(xyz="mm")
    image.set_qform(affine, code=XFORM_CODE)
    image.set_sform(affine, code=XFORM_CODE)
    header["descrip"] = description[:79].encode("ascii", "replace")
    header["cal_min"], header["cal_max"] = float(data.min()), float(data.max())
    # nibabel compresses by the suffix, so the temporary keeps .nii.gz
    with atomic_path(path, suffix=".nii.gz") as tmp:
        nib.save(image, str(tmp))


def _subject_name(number: int, width: int) -> str:
    return f"sub-{number:0{width}d}"


def _check_target(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder; choose another output folder")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not force:
        shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise OutputExistsError(f"{out}: folder is not empty ({shown}); pass --force (force=True) to overwrite the data set")


def _publish(staging: Path, out: Path) -> None:
    """Move the finished data set into ``out``: one rename when ``out`` is absent or empty, else
    folder by folder, replacing only the data set's own entries (:data:`_OWNED`)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it private
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(staging, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    for name in _OWNED:
        if (out / name).exists() or (out / name).is_symlink():
            os.replace(out / name, trash / name)
    for entry in staging.iterdir():
        os.replace(entry, out / entry.name)
    # the old data set is deleted only once the new one is in place (a failure above keeps it in `trash`)
    shutil.rmtree(trash, ignore_errors=True)
    staging.rmdir()


def write_brain_volumes(
    out_dir: str | Path,
    *,
    n_train: int = 8,
    n_test: int = 2,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
    seed: int = 0,
    paired: bool = True,
    noise: float = DEFAULT_NOISE,
    bias: float = DEFAULT_BIAS,
    effect: float = 0.0,
    tissues: str = "3t",
    texture: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Write the data set (A = T1w, B = T2w) and return a JSON-able summary (also ``DIR/dataset.json``).

    Subjects are numbered from 1 and subject ``n`` is drawn from :func:`subject_seed` ``(seed, n)``,
    so a subject does not depend on the others. Paired: the training subjects are
    ``sub-001..sub-{n_train}``, each in ``trainA`` and ``trainB`` under the same name, and the
    test subjects follow them. ``paired=False`` (unpaired training): ``trainA`` holds subjects
    ``1..n_train`` (T1w only) and ``trainB`` the different subjects ``n_train+1..2 n_train`` (T2w
    only), each file named after its own subject, so equal names always mean the same subject;
    the test set stays paired (``testA``/``testB`` of the same subjects) so translations can be
    scored against the true other contrast. ``n_test = 0`` writes no test folders.

    The whole data set is made in a hidden staging folder beside ``out_dir`` and moved into place
    at the end, so an error leaves ``out_dir`` as it was. ``out_dir`` must be absent or empty unless
    ``force``; with ``force`` its ``trainA``, ``trainB``, ``testA``, ``testB`` and ``dataset.json``
    are replaced as a whole (stale volumes of an earlier, larger set do not survive) and anything
    else in it is left alone.

    Args:
        out_dir: the data set folder.
        n_train: training subjects per domain (>= 1).
        n_test: test subjects (>= 0).
        shape, spacing_mm: the voxel grid (see :data:`PRESETS`).
        seed: integer >= 0.
        paired: A and B of the same subjects (co-registered) or of different subjects.
        noise, bias, effect, tissues, texture: as :func:`make_subject_anatomy` / :func:`render_contrast`.
        force: overwrite an existing data set.

    Returns:
        ``{"path", "description", "template", "layout", "paired", "shape", "spacing_mm",
        "xform_code", "sequences", "tissues", "parameters", "train": {"A": [...], "B": [...]},
        "test": {...}}``; each file entry is ``{"file" (relative to out_dir), "subject", "affine"}``.

    Raises:
        ConfigError: a bad argument (named). OutputExistsError: ``out_dir`` not empty and not ``force``.
        TemplateMissingError: nilearn is not installed (with the install hint).
    """
    n_train = _check_int("n_train", n_train, 1)
    n_test = _check_int("n_test", n_test, 0)
    shape = _check_shape(shape)
    spacing = _check_spacing(spacing_mm)
    seed = _check_int("seed", seed, 0)
    if not isinstance(paired, bool):
        raise ConfigError(f"paired={paired!r}: expected True or False")
    if not isinstance(texture, bool):
        raise ConfigError(f"texture={texture!r}: expected True or False")
    noise = _check_float("noise", noise)
    bias = _check_float("bias", bias)
    effect = _check_float("effect", effect)
    if not isinstance(tissues, str):
        raise ConfigError(f"tissues={tissues!r}: expected a table name (the summary records it by name)")
    nominal = get_tissue_table(tissues)
    out = Path(out_dir)
    _check_target(out, force)
    template = _template_for(spacing)  # also fails early with the install hint when nilearn is missing

    sequences = {"A": SEQUENCES["t1w"], "B": SEQUENCES["t2w"]}
    train_b = range(n_train + 1, 2 * n_train + 1) if not paired else range(1, n_train + 1)
    first_test = (2 * n_train if not paired else n_train) + 1
    test = range(first_test, first_test + n_test)
    width = max(3, len(str(first_test + n_test - 1)))
    plan = {"train": {"A": range(1, n_train + 1), "B": train_b}}
    if n_test:
        plan["test"] = {"A": test, "B": test}

    summary: dict[str, Any] = {
        "path": str(out),
        "description": (
            "gansim brain-volumes: T1w (A) / T2w (B) spin-echo volumes of random MNI152 subjects, "
            + ("co-registered pairs" if paired else "unpaired training subjects, paired test subjects")
        ),
        "template": "MNI152 ICBM 2009a symmetric (nilearn wheel)",
        "layout": {"A": "T1w", "B": "T2w"},
        "paired": paired,
        "shape": list(shape),
        "spacing_mm": list(spacing),
        "units": {"space": "mm", "intensity": f"arbitrary (brightest pure tissue ~ {REFERENCE_INTENSITY:g})"},
        "xform_code": XFORM_CODE,
        "sequences": {domain: s.to_dict() for domain, s in sequences.items()},
        "tissues": {"name": tissues, **{name: t.to_dict() for name, t in nominal.items()}},
        "parameters": {
            "n_train": n_train,
            "n_test": n_test,
            "shape": list(shape),
            "spacing_mm": list(spacing),
            "seed": seed,
            "paired": paired,
            "noise": noise,
            "bias": bias,
            "effect": effect,
            "tissues": tissues,
            "texture": texture,
        },
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        for split, domains in plan.items():
            summary[split] = {"A": [], "B": []}
            for domain in domains:
                (staging / f"{split}{domain}").mkdir()
            # subject by subject, so a paired subject's anatomy is sampled once for both contrasts
            for number in sorted(set(domains["A"]) | set(domains["B"])):
                subject_seq = subject_seed(seed, number)
                anatomy = make_subject_anatomy(subject_seq, shape, spacing, effect=effect, tissues=nominal, texture=texture, template=template)
                name = _subject_name(number, width)
                for domain, numbers_ in domains.items():
                    if number not in numbers_:
                        continue
                    # contrast A is child 1 of the subject's seed, B child 2, as in make_subject_volumes
                    volume = render_contrast(anatomy, sequences[domain], _child(subject_seq, 1 if domain == "A" else 2), noise=noise, bias=bias)
                    relative = f"{split}{domain}/{name}.nii.gz"
                    _write_nifti(staging / relative, volume, anatomy.affine, spacing, f"gansim brain-volumes {name} {summary['layout'][domain]} seed {seed}")
                    summary[split][domain].append({"file": relative, "subject": name, "affine": anatomy.affine.tolist()})
        from gansim.io.atomic import atomic_path

        with atomic_path(staging / "dataset.json", suffix=".json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
