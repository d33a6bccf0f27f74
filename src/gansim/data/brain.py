"""Random brains made from the MNI152 2009 template that ships inside the nilearn wheel.

No download: nilearn's package folder ``nilearn/datasets/data`` holds the ICBM 2009a
symmetric template at 1 mm (197 x 233 x 189 voxels, uint8 0..255, affine voxel -> MNI mm):
``mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``, a skull-stripped T1w image
and grey- and white-matter probability maps. They are read with nibabel from the installed
package (no fetcher).

What is derived from them (:func:`load_template`)
-------------------------------------------------
* **brain mask** = ``T1 > 0``: the template T1 is skull-stripped, its background is exactly 0.
* **CSF** = ``mask * clip(1 - GM - WM, 0, 1)``: inside the brain, neither grey nor white
  matter. That this is CSF (dark in T1) holds in the template: voxels with CSF > 0.6 have a
  T1 of 0.23-0.46 (5th-95th percentile, T1 / 255) against ~0.66 for GM and ~0.88 for WM, and
  ``T1 ~ 0.66 GM + 0.88 WM + 0.28 CSF`` inside the mask with a residual of 0.024.
* **lateral ventricles** = the connected component(s) of CSF > 0.5 that hold the two seed
  points (+-8, -3, 20) mm in the ventricle bodies (about 18 ml, temporal horns included).
* **cortex proximity** = 2 x a Gaussian (sigma 1.5 mm) of "outside the brain or
  non-ventricular CSF" (1 at a flat boundary): high in grey matter that borders sulci or the
  brain surface, ~0 in deep grey matter and white matter.
* **texture** = ``(T1 + 0.05) / (model + 0.05)``, ``model`` = that linear fit of T1 on the
  template's own tissue maps, stored clipped to [0.75, 1.25]: what the tissue model misses
  (deep nuclei, partial volumes).

All maps are cropped to the brain and stored as uint8 (~40 MB).

The subject model (:class:`BrainSubject`)
-----------------------------------------
Everything is a function of world points (``(P, 3)`` MNI-like mm), so 2-D slices and 3-D
volumes use the same code and never deform a whole volume. A subject point ``x`` is mapped
to the template point that it shows:

1. head size: ``x1 = c + (x - c) / head_scale`` about the brain centre ``c``;
2. a smooth random deformation: ``x2 = x1 + sum_k a_k sin(2 pi f_k . x1 + phi_k)``
   (a few plane waves, wavelengths 80-200 mm, amplitudes ~1.5 mm per axis);
3. the Alzheimer-like deformations, whose sizes are the class effect plus normal variation
   between subjects (:func:`random_subject`):

   * hippocampal shrinkage: ``x2 += hippocampus * HIPPOCAMPUS_STRAIN * (x2 - h) *
     exp(-|x2 - h|^2 / 2 r^2)`` about each hippocampus ``h`` = (+-26, -20, -14) mm,
     r = 10 mm: a local magnification of the sampling, so the hippocampi shrink
     (``hippocampus = 1``: -19.5 % of the volume within r of the centre);
   * ventricle enlargement: a flow ``x <- x + (ventricles * VENTRICLE_MM / n) U(x)``, n steps
     of at most 1.5 mm, with ``U`` the gradient of the Gaussian-smoothed (sigma 4 mm)
     ventricle map scaled to a unit peak. ``U`` points into the ventricles, so subject points
     around them show ventricle content: the ventricles grow and the tissue around them is
     pushed away (``ventricles = 1``: +43 % lateral-ventricle volume, 2: +89 %, -1: -33 %).
     Small steps keep the map invertible at any strength;

4. the template is sampled at the final point (:func:`sample_template`, trilinear) and
   cortical atrophy moves a fraction ``min(0.9, atrophy * ATROPHY_FRACTION * proximity)`` of
   the grey matter to CSF: cortical grey matter thins and darkens, sulci widen
   (``atrophy = 1``: -10 % grey-matter volume).

T1w-like intensity, arbitrary units: ``brightness * bias(x) * texture *
(I_csf CSF + I_gm GM + I_wm WM)`` with per-subject tissue contrasts (WM 1, GM 0.70 x
exp(0.04 N), CSF 0.30 x exp(0.10 N)), the template's ``texture`` sampled at the same
deformed point, and a smooth multiplicative bias field (exp of a random quadratic, ~3 % per
coefficient). Rician noise (:func:`rician_noise`) is added last, after any pixel averaging,
so the background is 0 plus a noise floor.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from gansim.errors import ConfigError, DataError

__all__ = [
    "TEMPLATE_FILES",
    "BRAIN_CENTRE_MM",
    "HIPPOCAMPUS_CENTRES_MM",
    "HIPPOCAMPUS_RADIUS_MM",
    "VENTRICLE_MM",
    "HIPPOCAMPUS_STRAIN",
    "ATROPHY_FRACTION",
    "TemplateMissingError",
    "BrainTemplate",
    "BrainSubject",
    "template_dir",
    "load_template",
    "smoothed_template",
    "MODEL_MAPS",
    "sample_template",
    "random_subject",
    "rician_noise",
]

#: nilearn's packaged MNI152 2009a (symmetric) files, by tissue name.
TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
#: Centre of the brain's bounding box in MNI mm (head scaling is about this point).
BRAIN_CENTRE_MM = (0.0, -17.0, 10.0)
#: Hippocampus centres (left, right) in MNI mm and the radius of their contraction.
HIPPOCAMPUS_CENTRES_MM = ((-26.0, -20.0, -14.0), (26.0, -20.0, -14.0))
HIPPOCAMPUS_RADIUS_MM = 10.0
#: Peak ventricle-expansion displacement (mm) for ``ventricles = 1`` (+43 % lateral-ventricle volume).
VENTRICLE_MM = 1.5
#: Sampling magnification at a hippocampus centre for ``hippocampus = 1`` (-19.5 % volume within r).
HIPPOCAMPUS_STRAIN = 0.12
#: Fraction of cortical grey matter turned to CSF for ``atrophy = 1`` where proximity is 1
#: (-10 % of the template's grey-matter volume in all).
ATROPHY_FRACTION = 0.4

# Seeds inside the lateral-ventricle bodies (MNI mm) and the CSF threshold of the ventricle map.
_VENTRICLE_SEEDS_MM = ((8.0, -3.0, 20.0), (-8.0, -2.0, 20.0))
_VENTRICLE_CSF = 0.5
_VENTRICLE_SIGMA_MM = 4.0
_PROXIMITY_SIGMA_MM = 1.5
_VENTRICLE_STEP_MM = 1.5
# Linear model T1/255 ~ I_CSF CSF + I_GM GM + I_WM WM, least squares inside the template mask.
_TEMPLATE_CONTRAST = (0.28, 0.66, 0.88)
_TEXTURE_RANGE = (0.75, 1.25)
_INSTALL_HINT = "pip install 'gansim[brain]'"


class TemplateMissingError(DataError, ImportError):
    """The MNI152 template files (nilearn's wheel) are not installed: both a gansim DataError
    and an ImportError, so ``except ImportError`` around an optional feature catches it too."""


def template_dir() -> Path:
    """The folder of nilearn's packaged data files (no import of nilearn itself, which is slow).

    Raises:
        TemplateMissingError: nilearn is not installed or its wheel lacks the MNI152 files
            (with the install hint).
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise TemplateMissingError(f"the built-in brain data need the MNI152 template shipped with nilearn, which is not installed: {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in TEMPLATE_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise TemplateMissingError(f"{folder}: nilearn is installed but lacks {missing}; reinstall it ({_INSTALL_HINT}, nilearn>=0.10)")
    return folder


#: The derived maps the subject model samples (see :func:`load_template`).
MODEL_MAPS = ("gm_brain", "wm_brain", "csf", "texture", "proximity")
# stored uint8 u means offset + scale * u; every other map is u / 255
_MAP_CODING = {"texture": (_TEXTURE_RANGE[0], (_TEXTURE_RANGE[1] - _TEXTURE_RANGE[0]) / 255.0)}


@dataclass(frozen=True, eq=False)
class BrainTemplate:
    """The MNI152 maps, cropped to the brain, as uint8 arrays indexed [i, j, k] (1 mm voxels).

    Attributes:
        maps: name -> (X, Y, Z) uint8. The files' maps ``"t1"``, ``"gm"``, ``"wm"`` (value / 255:
            T1 in [0, 1], probabilities) and ``"mask"`` (brain mask, 0 or 255); the derived
            :data:`MODEL_MAPS`: ``"gm_brain"``, ``"wm_brain"`` (GM, WM inside the mask),
            ``"csf"``, ``"proximity"`` (value / 255) and ``"texture"`` (0.75 + 0.5 value / 255).
        affine: (4, 4) voxel index of ``maps`` -> MNI mm.
        ventricles: (X, Y, Z) bool lateral-ventricle map, same grid as ``maps``.
        ventricle_field: (3, X', Y', Z') float32 unit-peak ventricle displacement field ``U``
            (dimensionless) on its own 2 mm grid around the ventricles.
        ventricle_affine: (4, 4) voxel index of ``ventricle_field`` -> MNI mm.
        source: the folder the files were read from (for messages).
        smoothing_mm: Gaussian sigma (mm, along x, y, z) applied to the model maps (0 = none).
    """

    maps: dict[str, np.ndarray]
    affine: np.ndarray
    ventricles: np.ndarray
    ventricle_field: np.ndarray
    ventricle_affine: np.ndarray
    source: str
    smoothing_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def voxel_coordinates(self, points_mm: np.ndarray, affine: np.ndarray | None = None) -> np.ndarray:
        """(P, 3) MNI mm -> (3, P) voxel coordinates of ``affine`` (default: the maps' grid)."""
        inverse = np.linalg.inv(self.affine if affine is None else affine)
        return inverse[:3, :3] @ points_mm.T + inverse[:3, 3:4]

    def ventricle_displacement(self, points_mm: np.ndarray) -> np.ndarray:
        """The unit-peak ventricle field ``U`` at (P, 3) mm points -> (P, 3), 0 outside its box."""
        coords = self.voxel_coordinates(points_mm, self.ventricle_affine)
        shape = np.asarray(self.ventricle_field.shape[1:])[:, None]
        # only points inside the field's box (a minority of a slice) are interpolated
        inside = np.flatnonzero(((coords >= 0) & (coords <= shape - 1)).all(axis=0))
        out = np.zeros((len(points_mm), 3), dtype=np.float32)
        if len(inside):
            sub = coords[:, inside]
            for axis in range(3):
                out[inside, axis] = ndimage.map_coordinates(self.ventricle_field[axis], sub, output=np.float32, order=1, mode="constant")
        return out


def _read_maps(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    import nibabel as nib

    arrays: dict[str, np.ndarray] = {}
    affine = None
    for key, name in TEMPLATE_FILES.items():
        path = folder / name
        try:
            image = nib.load(path)
            arrays[key] = np.asarray(image.dataobj)
        except Exception as err:  # nibabel raises many types for a damaged file
            raise DataError(f"{path}: cannot read the MNI152 {key} map ({err}); reinstall nilearn ({_INSTALL_HINT})") from None
        if arrays[key].shape != arrays["t1"].shape or arrays[key].ndim != 3:
            raise DataError(f"{path}: shape {arrays[key].shape}, expected a 3-D map like the T1's {arrays['t1'].shape}")
        if affine is None:
            affine = np.asarray(image.affine, dtype=np.float64)
        elif not np.allclose(image.affine, affine):
            raise DataError(f"{path}: its affine differs from the T1's; the template files do not belong together")
    if affine is None:  # pragma: no cover - TEMPLATE_FILES is not empty
        raise DataError(f"{folder}: no template file read")
    return {k: v.astype(np.uint8, copy=False) for k, v in arrays.items()}, affine


def _encode(name: str, x: np.ndarray) -> np.ndarray:
    offset, scale = _MAP_CODING.get(name, (0.0, 1.0 / 255.0))
    return np.clip(np.rint((x - offset) / scale), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def load_template() -> BrainTemplate:
    """Read and derive the template maps once per process (about 1 s; ~40 MB in memory)."""
    folder = template_dir()
    raw, affine = _read_maps(folder)
    mask = raw["t1"] > 0
    # crop to where any map is non-zero (+1 voxel) to halve the memory; sampling is 0 outside anyway
    nonzero = mask | (raw["gm"] > 0) | (raw["wm"] > 0)
    idx = np.argwhere(nonzero)
    lo = np.maximum(idx.min(0) - 1, 0)
    hi = np.minimum(idx.max(0) + 2, nonzero.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    t1 = raw["t1"][crop].astype(np.float32) / 255.0
    gm = raw["gm"][crop].astype(np.float32) / 255.0
    wm = raw["wm"][crop].astype(np.float32) / 255.0
    mask = mask[crop]
    gm_brain, wm_brain = gm * mask, wm * mask
    csf = mask * np.clip(1.0 - gm - wm, 0.0, 1.0)
    cropped_affine = affine.copy()
    cropped_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]

    # lateral ventricles: the CSF components that hold the seed points
    labels, _ = ndimage.label(csf > _VENTRICLE_CSF)
    inverse = np.linalg.inv(cropped_affine)
    seed_labels = set()
    for seed in _VENTRICLE_SEEDS_MM:
        ijk = np.rint(inverse[:3, :3] @ np.asarray(seed) + inverse[:3, 3]).astype(int)
        seed_labels.add(int(labels[tuple(ijk)]))
    seed_labels.discard(0)
    if not seed_labels:
        raise DataError(f"{folder}: no CSF at the lateral-ventricle seed points {_VENTRICLE_SEEDS_MM}; not the MNI152 2009 template?")
    ventricles = np.isin(labels, sorted(seed_labels))

    # ventricle field: gradient of the smoothed ventricle map, on a box around them (voxels are 1 mm)
    vidx = np.argwhere(ventricles)
    margin = int(np.ceil(4 * _VENTRICLE_SIGMA_MM))
    vlo = np.maximum(vidx.min(0) - margin, 0)
    vhi = np.minimum(vidx.max(0) + margin + 1, ventricles.shape)
    vbox = tuple(slice(a, b) for a, b in zip(vlo, vhi))
    potential = ndimage.gaussian_filter(ventricles[vbox].astype(np.float32), _VENTRICLE_SIGMA_MM)
    field = np.stack(np.gradient(potential), axis=0)
    field /= np.sqrt((field**2).sum(0)).max()
    # kept on a 2 mm grid: the field is smooth (sigma 4 mm) and a small array interpolates faster
    field = np.ascontiguousarray(field[:, ::2, ::2, ::2], dtype=np.float32)
    ventricle_affine = cropped_affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    ventricle_affine[:3, 3] = cropped_affine[:3, :3] @ vlo + cropped_affine[:3, 3]

    # cortex proximity: near the outside of the brain or non-ventricular (sulcal) CSF;
    # x2 so that a flat boundary between brain and exterior reads 1
    exterior = (1.0 - mask) + csf * ~ventricles
    proximity = 2.0 * ndimage.gaussian_filter(exterior.astype(np.float32), _PROXIMITY_SIGMA_MM)
    # texture: the template T1 over its linear tissue model; 0.05 keeps the brain edge finite
    model = _TEMPLATE_CONTRAST[0] * csf + _TEMPLATE_CONTRAST[1] * gm_brain + _TEMPLATE_CONTRAST[2] * wm_brain
    texture = (t1 + 0.05) / (model + 0.05)

    maps = {key: raw[key][crop].copy() for key in TEMPLATE_FILES}
    maps["mask"] = mask.astype(np.uint8) * 255
    derived = {"gm_brain": gm_brain, "wm_brain": wm_brain, "csf": csf, "texture": texture, "proximity": proximity}
    maps.update({key: _encode(key, value) for key, value in derived.items()})
    return BrainTemplate(maps, cropped_affine, ventricles, field, ventricle_affine, str(folder))


@functools.lru_cache(maxsize=4)
def smoothed_template(sigma_mm: tuple[float, float, float]) -> BrainTemplate:
    """:func:`load_template` with its :data:`MODEL_MAPS` Gaussian-smoothed (sigma in mm along x, y, z).

    Slices with pixels coarser than the template's 1 mm sample this instead of averaging many
    points per pixel: the smoothing is the anti-aliasing filter, applied once per pixel size
    (cached) rather than once per subject. The deformation field is not smoothed.
    """
    base = load_template()
    sigma = tuple(float(s) for s in sigma_mm)
    if len(sigma) != 3 or not all(np.isfinite(s) and s >= 0 for s in sigma):
        raise ConfigError(f"sigma_mm={sigma_mm}: expected three finite sigmas >= 0 (mm)")
    if not any(sigma):
        return base
    voxel = np.sqrt((base.affine[:3, :3] ** 2).sum(0))
    maps = dict(base.maps)
    for key in MODEL_MAPS:
        offset, scale = _MAP_CODING.get(key, (0.0, 1.0 / 255.0))
        smooth = ndimage.gaussian_filter(base.maps[key].astype(np.float32), np.asarray(sigma) / voxel, mode="nearest")
        maps[key] = _encode(key, offset + scale * smooth)
    return replace(base, maps=maps, smoothing_mm=sigma)


def _as_points(points_mm: np.ndarray, what: str = "points_mm") -> np.ndarray:
    points = np.asarray(points_mm, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise DataError(f"{what}: shape {points.shape}, expected (P, 3) world coordinates in mm")
    if not np.all(np.isfinite(points)):
        raise DataError(f"{what}: holds NaN or Inf")
    return points


def sample_template(points_mm: np.ndarray, keys: tuple[str, ...] = ("t1", "gm", "wm", "csf"), template: BrainTemplate | None = None) -> dict[str, np.ndarray]:
    """Trilinear values of the template maps at world points (``scipy.ndimage.map_coordinates``, order 1).

    Args:
        points_mm: (P, 3) MNI mm.
        keys: any of the :class:`BrainTemplate` maps: ``"t1"`` (T1 / 255, in [0, 1]), ``"gm"``,
            ``"wm"`` (probabilities: the files' values / 255), ``"mask"``, and the derived
            ``"gm_brain"``, ``"wm_brain"``, ``"csf"``, ``"proximity"``, ``"texture"``.
        template: default :func:`load_template`.

    Returns:
        key -> (P,) float32; 0 outside the template (``"texture"``: 0.75 + 0.5 * 0). At a voxel
        centre the value is that voxel's (the file's value / 255 for the file maps).
    """
    template = load_template() if template is None else template
    points = _as_points(points_mm)
    unknown = [k for k in keys if k not in template.maps]
    if unknown:
        raise ConfigError(f"sample_template: unknown map(s) {unknown}; expected some of {sorted(template.maps)}")
    coords = template.voxel_coordinates(points)
    out = {}
    for key in keys:
        offset, scale = _MAP_CODING.get(key, (0.0, 1.0 / 255.0))
        # uint8 input with a float32 output interpolates exactly and is the fastest variant
        values = ndimage.map_coordinates(template.maps[key], coords, output=np.float32, order=1, mode="constant", cval=0.0)
        values *= np.float32(scale)
        if offset:
            values += np.float32(offset)
        out[key] = values
    return out


@dataclass(frozen=True)
class BrainSubject:
    """One random subject; all its slices or volumes share these draws.

    Attributes:
        head_scale: global size factor (1 = the template's size).
        wave_vectors: (K, 3) 1/mm, the random deformation's plane-wave vectors.
        phases: (K,) rad.
        amplitudes: (K, 3) mm, the displacement of each plane wave.
        ventricles: ventricle enlargement in units of the ``effect = 1`` class effect
            (the class effect plus normal variation; 0 = the template's ventricles).
        hippocampus: hippocampal shrinkage, same units.
        atrophy: cortical grey-matter atrophy, same units (>= 0).
        contrast: (3,) T1w intensity of pure CSF, GM, WM (WM = 1).
        brightness: overall scale of the arbitrary intensity units.
        bias: (9,) coefficients of the log bias field on (x, y, z, x^2, y^2, z^2, xy, xz, yz) / 100 mm.
    """

    head_scale: float
    wave_vectors: np.ndarray
    phases: np.ndarray
    amplitudes: np.ndarray
    ventricles: float
    hippocampus: float
    atrophy: float
    contrast: np.ndarray
    brightness: float
    bias: np.ndarray

    @classmethod
    def neutral(cls, ventricles: float = 0.0, hippocampus: float = 0.0, atrophy: float = 0.0) -> BrainSubject:
        """The template itself (no random deformation, head scale 1, no bias, brightness 1,
        the template's contrast) with the given effect sizes: for calibration and tests."""
        return cls(
            head_scale=1.0,
            wave_vectors=np.zeros((1, 3)),
            phases=np.zeros(1),
            amplitudes=np.zeros((1, 3)),
            ventricles=float(ventricles),
            hippocampus=float(hippocampus),
            atrophy=float(atrophy),
            contrast=np.asarray(_TEMPLATE_CONTRAST),
            brightness=1.0,
            bias=np.zeros(9),
        )

    def template_points(self, points_mm: np.ndarray, template: BrainTemplate | None = None) -> np.ndarray:
        """(P, 3) subject mm -> (P, 3) template mm that each point shows (steps 1-3 of the module docstring)."""
        template = load_template() if template is None else template
        x = _as_points(points_mm)
        centre = np.asarray(BRAIN_CENTRE_MM)
        x = centre + (x - centre) / self.head_scale
        x = x + np.sin(x @ self.wave_vectors.T * (2 * np.pi) + self.phases) @ self.amplitudes
        if self.hippocampus != 0.0:
            shifted = x.copy()
            for h in HIPPOCAMPUS_CENTRES_MM:
                d = x - np.asarray(h)
                weight = np.exp(-(d**2).sum(1) / (2 * HIPPOCAMPUS_RADIUS_MM**2))
                shifted += (self.hippocampus * HIPPOCAMPUS_STRAIN) * d * weight[:, None]
            x = shifted
        if self.ventricles != 0.0:
            # flow along U in steps small enough that each step is invertible (its Jacobian
            # determinant stays > 0 for steps up to ~2.8 mm), so any strength stays a diffeomorphism
            total = self.ventricles * VENTRICLE_MM
            steps = max(1, int(np.ceil(abs(total) / _VENTRICLE_STEP_MM)))
            for _ in range(steps):
                x = x + (total / steps) * template.ventricle_displacement(x)
        return x

    def tissue(self, points_mm: np.ndarray, template: BrainTemplate | None = None) -> dict[str, np.ndarray]:
        """Tissue fractions at subject points after deformation and atrophy.

        Returns:
            ``{"csf", "gm", "wm"}`` -> (P,) float32 fractions (sum <= 1; 0 outside the brain) and
            ``"texture"`` -> (P,) the template's T1 over its tissue model (see the module docstring).
        """
        template = load_template() if template is None else template
        s = sample_template(self.template_points(points_mm, template), MODEL_MAPS, template)
        gm, wm, csf = s["gm_brain"], s["wm_brain"], s["csf"]
        if self.atrophy > 0.0:
            lost = gm * np.minimum(np.float32(0.9), np.float32(self.atrophy * ATROPHY_FRACTION) * s["proximity"])
            gm = gm - lost
            csf = csf + lost
        return {"csf": csf, "gm": gm, "wm": wm, "texture": s["texture"]}

    def bias_field(self, points_mm: np.ndarray) -> np.ndarray:
        """Smooth multiplicative bias at (P, 3) mm points -> (P,) (1 = none)."""
        u = _as_points(points_mm) / 100.0
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        basis = np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], axis=1)
        return np.exp(basis @ self.bias).astype(np.float32)

    def t1w(self, points_mm: np.ndarray, template: BrainTemplate | None = None) -> np.ndarray:
        """Noise-free T1w-like intensity (arbitrary units, >= 0) at (P, 3) subject mm -> (P,) float32."""
        t = self.tissue(points_mm, template)
        mix = self.contrast[0] * t["csf"] + self.contrast[1] * t["gm"] + self.contrast[2] * t["wm"]
        return (self.brightness * mix * t["texture"] * self.bias_field(points_mm)).astype(np.float32)


def random_subject(
    rng: np.random.Generator,
    effect: float = 0.0,
    *,
    variation: float = 0.6,
    deformation_mm: float = 1.5,
    n_waves: int = 6,
    head_scale_sd: float = 0.04,
    bias: float = 0.03,
    brightness: float = 700.0,
) -> BrainSubject:
    """Draw one subject.

    Args:
        rng: the subject's own generator (one per subject keeps subjects independent of their order).
        effect: Alzheimer-like effect strength (0 = control, 1 = the default AD effect; >1 allowed).
        variation: standard deviation of each effect component (ventricles, hippocampus,
            atrophy) between subjects of one class, in units of the ``effect = 1`` class effect;
            it is what keeps the classes from being trivially separable.
        deformation_mm: amplitude scale (mm, per axis and plane wave) of the random smooth deformation.
        n_waves: number of plane waves of that deformation.
        head_scale_sd: relative standard deviation of head size (clipped to +-2.5 sd).
        bias: standard deviation of each log-bias-field coefficient (~ the field's relative size).
        brightness: median of the overall intensity scale (WM ~ this many units).
    """
    if effect < 0 or not np.isfinite(effect):
        raise ConfigError(f"effect={effect!r}: expected a finite number >= 0")
    directions = rng.normal(size=(n_waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(80.0, 200.0, size=n_waves)
    ventricles, hippocampus, atrophy = effect + variation * rng.normal(size=3)
    return BrainSubject(
        head_scale=float(1.0 + head_scale_sd * np.clip(rng.normal(), -2.5, 2.5)),
        wave_vectors=directions / wavelengths[:, None],
        phases=rng.uniform(0.0, 2 * np.pi, size=n_waves),
        amplitudes=rng.normal(0.0, deformation_mm, size=(n_waves, 3)),
        # clipped to a plausible range (the hippocampal map stays invertible up to ~18);
        # atrophy is a loss of tissue, never a gain
        ventricles=float(np.clip(ventricles, -1.0, 4.0)),
        hippocampus=float(np.clip(hippocampus, -1.0, 4.0)),
        atrophy=float(np.clip(atrophy, 0.0, 4.0)),
        contrast=np.array([0.30 * np.exp(0.10 * rng.normal()), 0.70 * np.exp(0.04 * rng.normal()), 1.0]),
        brightness=float(brightness * np.exp(0.10 * rng.normal())),
        bias=rng.normal(0.0, bias, size=9),
    )


def rician_noise(values: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude-image (Rician) noise: ``|v + n1 + i n2|`` with n1, n2 ~ N(0, sigma^2); same shape, float32."""
    if sigma <= 0:
        return np.asarray(values, dtype=np.float32)
    real = values + rng.normal(0.0, sigma, size=values.shape)
    imag = rng.normal(0.0, sigma, size=values.shape)
    return np.hypot(real, imag).astype(np.float32)
