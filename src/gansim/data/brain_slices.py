"""The built-in labelled brain-slice data set: axial T1w-like slices of random MNI152 brains.

A stand-in for PACGAN's ADNI data (T1w registered to MNI152 at 1 mm, axial slices, CN vs
AD, one NIfTI [W, H, 1, N] plus ``labels.csv`` per split) that needs no download: every
subject is a random deformation of the template that ships in the nilearn wheel, with an
Alzheimer-like effect whose strength depends on the class (:mod:`gansim.data.brain`).

* class ``k`` of ``K`` has effect strength ``effect * k / (K - 1)``: 0 = control, K-1 = the
  full effect (e.g. CN / MCI / AD for K = 3);
* each subject gives ``slices_per_subject`` axial slices at MNI z levels spread over
  -12..24 mm (hippocampus to the ventricle bodies; +16 mm for a single slice), each with a
  small random shift (1.5 mm sd in z, 2 mm in-plane) and tilt (2 degrees sd about each axis);
* a slice is ``size x size`` pixels over a fixed 192 mm field of view centred on
  (0, -17) mm, so the pixel size is ``192 / size`` mm; array axes are (H, W) = (y, x), both
  increasing (the NIfTI's [W, H] is then x, y with a diagonal affine, RAS-like);
* anti-aliasing: each pixel is one point sample of the template maps smoothed in-plane by a
  Gaussian with the variance of a pixel-wide box (:func:`antialias_sigma_mm`, once per pixel
  size, cached), which costs one sample per pixel instead of many; then Rician noise of sd
  ``noise`` x the subject's WM intensity is added;
* intensities are arbitrary non-negative units (WM ~ 700, background 0 plus the noise floor).
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from gansim.data.brain import BRAIN_CENTRE_MM, BrainTemplate, random_subject, rician_noise, smoothed_template
from gansim.errors import ConfigError, OutputExistsError

__all__ = ["FIELD_OF_VIEW_MM", "DEFAULT_NOISE", "slice_levels_mm", "antialias_sigma_mm", "make_brain_slices", "write_brain_slices"]

#: Side of the square field of view of every slice (mm).
FIELD_OF_VIEW_MM = 192.0
#: Default Rician noise sd, as a fraction of the subject's white-matter intensity.
DEFAULT_NOISE = 0.03
_Z_RANGE_MM = (-12.0, 24.0)
_SINGLE_Z_MM = 16.0
_SHIFT_Z_MM = 1.5
_SHIFT_XY_MM = 2.0
_TILT_DEG = 2.0


def slice_levels_mm(slices_per_subject: int) -> np.ndarray:
    """Nominal MNI z (mm) of each slice of a subject: (slices_per_subject,)."""
    if slices_per_subject == 1:
        return np.array([_SINGLE_Z_MM])
    return np.linspace(*_Z_RANGE_MM, slices_per_subject)


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix (3, 3) = Rz(az) Ry(ay) Rx(ax), angles in rad."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _slice_points(size: int, z_levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """World points of a subject's pixel centres: (S, size, size, 3) mm, jittered per slice."""
    spacing = FIELD_OF_VIEW_MM / size
    u = (np.arange(size) + 0.5) * spacing - FIELD_OF_VIEW_MM / 2
    vv, uu = np.meshgrid(u, u, indexing="ij")  # (H, W): rows along y, columns along x
    plane = np.stack([uu, vv, np.zeros_like(uu)], axis=-1)
    out = np.empty((len(z_levels), size, size, 3))
    for s, z in enumerate(z_levels):
        tilt = np.deg2rad(_TILT_DEG) * rng.normal(size=3)
        centre = np.array([BRAIN_CENTRE_MM[0], BRAIN_CENTRE_MM[1], z])
        centre = centre + rng.normal(size=3) * np.array([_SHIFT_XY_MM, _SHIFT_XY_MM, _SHIFT_Z_MM])
        out[s] = plane @ _rotation(*tilt).T + centre
    return out


def antialias_sigma_mm(spacing_mm: float) -> float:
    """In-plane Gaussian sigma (mm) that stands for averaging over a pixel of ``spacing_mm``.

    A box of width d has variance d^2 / 12; the template's 1 mm voxels already hold 1 / 12 mm^2.
    """
    return math.sqrt(max(spacing_mm**2 - 1.0, 0.0) / 12.0)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r}: expected an integer >= {minimum}")
    return int(value)


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r}: expected a finite number >= 0")
    return float(value)


def _check_size(size: Any) -> int:
    size = _check_int("size", size, 4)
    if size & (size - 1):
        raise ConfigError(f"size={size}: expected a power of 2 >= 4 (4, 8, ..., 64, 128, 256)")
    return size


def make_brain_slices(
    n_subjects_per_class: int,
    slices_per_subject: int = 4,
    size: int = 64,
    classes: int = 2,
    effect: float = 1.0,
    noise: float = DEFAULT_NOISE,
    seed: int | np.random.SeedSequence = 0,
    subject_prefix: str = "sub",
    *,
    template: BrainTemplate | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Make labelled axial slices of random subjects (see the module docstring for the model).

    Subjects alternate between classes (subject ``i`` is class ``i % classes``) and each
    subject's slices are consecutive; subject ``i`` is drawn from its own child seed of
    ``seed``, so it does not depend on how many subjects follow it.

    Args:
        n_subjects_per_class: subjects per class (>= 1).
        slices_per_subject: slices per subject (>= 1).
        size: pixels per side, a power of 2 >= 4; the pixel size is 192 mm / size.
        classes: number of classes K >= 2; class k has effect ``effect * k / (K - 1)``.
        effect: Alzheimer-like effect strength of the last class (>= 0; 0 = no class difference).
        noise: Rician noise sd as a fraction of each subject's white-matter intensity (>= 0).
        seed: an integer or a ``numpy.random.SeedSequence``.
        subject_prefix: Subject_IDs are ``f"{subject_prefix}-{i:04d}"``, i from 1.
        template: the maps to sample; default the template smoothed in-plane by
            :func:`antialias_sigma_mm` of the pixel size (:func:`gansim.data.brain.smoothed_template`).

    Returns:
        images (N, 1, size, size) float32 >= 0, labels (N,) int64, subjects (N,) str,
        spacing_mm (W, H), with N = classes * n_subjects_per_class * slices_per_subject.
    """
    n_subjects_per_class = _check_int("n_subjects_per_class", n_subjects_per_class, 1)
    slices_per_subject = _check_int("slices_per_subject", slices_per_subject, 1)
    size = _check_size(size)
    classes = _check_int("classes", classes, 2)
    effect = _check_float("effect", effect)
    noise = _check_float("noise", noise)
    if not isinstance(subject_prefix, str) or not subject_prefix.strip() or "," in subject_prefix:
        raise ConfigError(f"subject_prefix={subject_prefix!r}: expected a non-empty string without commas")
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(_check_int("seed", seed, 0))

    n_subjects = classes * n_subjects_per_class
    spacing = FIELD_OF_VIEW_MM / size
    sigma = antialias_sigma_mm(spacing)
    # anti-aliasing: the model maps smoothed in-plane once (cached), then one point per pixel
    template = smoothed_template((sigma, sigma, 0.0)) if template is None else template
    z_levels = slice_levels_mm(slices_per_subject)
    images = np.empty((n_subjects, slices_per_subject, size, size), dtype=np.float32)
    labels = np.repeat(np.arange(n_subjects) % classes, slices_per_subject).astype(np.int64)
    width = max(4, len(str(n_subjects)))
    subjects = np.repeat(np.array([f"{subject_prefix}-{i + 1:0{width}d}" for i in range(n_subjects)]), slices_per_subject)
    for i in range(n_subjects):
        # child i of seq, as seq.spawn would make it, without spawn's side effect on seq
        # (so the same SeedSequence passed twice gives the same data)
        child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, i), pool_size=seq.pool_size)
        rng = np.random.default_rng(child)
        subject = random_subject(rng, effect * (i % classes) / (classes - 1))
        points = _slice_points(size, z_levels, rng)
        clean = subject.t1w(points.reshape(-1, 3), template).reshape(points.shape[:-1])
        images[i] = rician_noise(clean, noise * subject.brightness, rng)
    return images.reshape(-1, 1, size, size), labels, subjects, (spacing, spacing)


def write_brain_slices(
    out_dir: str | Path,
    *,
    train_subjects_per_class: int = 40,
    test_subjects_per_class: int = 15,
    slices_per_subject: int = 4,
    size: int = 64,
    classes: int = 2,
    effect: float = 1.0,
    noise: float = DEFAULT_NOISE,
    seed: int = 0,
    force: bool = False,
) -> dict[str, Any]:
    """Write the data set in PACGAN's layout and return a JSON-able summary.

    Files: ``out_dir/{train,test}/Real{size}x{size}.nii.gz`` ([W, H, 1, N] float32) with
    ``labels.csv`` (ID, Label, Subject_ID) beside each, and ``out_dir/dataset.json`` (the
    summary). Train and test subjects are different draws (child seeds 0 and 1 of ``seed``)
    with different IDs (``train-0001``..., ``test-0001``...). Every target is checked before
    anything is written, so a refusal without ``force`` changes nothing; each file is atomic.

    Returns:
        ``{"path", "description", "size", "spacing_mm", "classes", "parameters",
        "train": {"image", "labels", "slices", "subjects", "slices_per_class"}, "test": {...}}``.

    Raises:
        ConfigError: a bad argument (named); OutputExistsError: a target exists and not ``force``.
    """
    from gansim.io.atomic import atomic_path
    from gansim.io.slices import write_slice_set

    train_subjects_per_class = _check_int("train_subjects_per_class", train_subjects_per_class, 1)
    test_subjects_per_class = _check_int("test_subjects_per_class", test_subjects_per_class, 1)
    slices_per_subject = _check_int("slices_per_subject", slices_per_subject, 1)
    size = _check_size(size)
    classes = _check_int("classes", classes, 2)
    effect = _check_float("effect", effect)
    noise = _check_float("noise", noise)
    seed = _check_int("seed", seed, 0)

    out = Path(out_dir)
    image_name = f"Real{size}x{size}.nii.gz"
    splits = {"train": train_subjects_per_class, "test": test_subjects_per_class}
    manifest = out / "dataset.json"
    targets = [out / split / name for split in splits for name in (image_name, "labels.csv")] + [manifest]
    # every target before any write; check_writable would also create missing folders, so not yet
    for target in targets:
        if target.exists() and not force:
            raise OutputExistsError(f"{target}: already exists; pass --force (force=True) to overwrite the data set")

    parameters = {
        "train_subjects_per_class": train_subjects_per_class,
        "test_subjects_per_class": test_subjects_per_class,
        "slices_per_subject": slices_per_subject,
        "size": size,
        "classes": classes,
        "effect": effect,
        "noise": noise,
        "seed": seed,
    }
    summary: dict[str, Any] = {
        "path": str(out),
        "description": (
            f"gansim brain-slices: axial T1w-like slices of random MNI152 brains, {classes} classes "
            f"(class k: Alzheimer-like effect {effect:g} * k / {classes - 1}; 0 = control)"
        ),
        "template": "MNI152 ICBM 2009a symmetric (nilearn wheel)",
        "z_levels_mm": [float(z) for z in slice_levels_mm(slices_per_subject)],
        "size": size,
        "classes": classes,
        "parameters": parameters,
    }
    spacing_mm = FIELD_OF_VIEW_MM / size
    sigma = antialias_sigma_mm(spacing_mm)
    template = smoothed_template((sigma, sigma, 0.0))
    for stream, (split, per_class) in zip(np.random.SeedSequence(seed).spawn(len(splits)), splits.items()):
        images, labels, subjects, spacing = make_brain_slices(
            per_class, slices_per_subject, size, classes, effect, noise, stream, split, template=template
        )
        image_path, labels_path = write_slice_set(
            out / split / image_name,
            images,
            labels,
            subjects=subjects,
            spacing_mm=spacing,
            description=f"gansim brain-slices {split}, effect {effect:g}, seed {seed}",
            force=force,
        )
        summary["spacing_mm"] = list(spacing)
        summary[split] = {
            "image": str(image_path),
            "labels": str(labels_path),
            "slices": int(len(labels)),
            "subjects": int(classes * per_class),
            "slices_per_class": {str(k): int((labels == k).sum()) for k in range(classes)},
        }
    with atomic_path(manifest, force=force, suffix=".json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
