"""Voxelised phantoms: material and density per voxel, and the fast lookup Woodcock tracking needs.

A :class:`VoxelPhantom` holds an image of material indices and densities on an
:class:`~gansim.physics.geometry.ImageGeometry`; everything outside the image (but
inside the exit surface) is the ``world_material``. A voxel may also hold the index
``len(materials)``, which means "the world material": built-in phantoms use it for the
voxels around the object, so that changing ``world_material`` (air, vacuum, water)
changes them too.

Phantoms come from

* analytic shapes (:func:`rasterise` of :class:`Region` objects; :func:`water_box`,
  :func:`water_cylinder`, :func:`water_sphere`, :func:`iec_phantom`): the material of a
  voxel is the one at its centre, the activity of a voxel is the mean over
  ``supersampling**3`` sub-points, so that activity images carry partial volumes;
* CT images (:func:`phantom_from_ct`, Hounsfield units through a
  :class:`~gansim.physics.materials.HUTable`) and label images
  (:func:`phantom_from_labels`), anything SimpleITK reads (.mhd, .nii, .nii.gz, .nrrd).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch

from gansim.io.images import read_scalar_image
from gansim.errors import ConfigError, DataError
from gansim.physics.geometry import ImageGeometry
from gansim.physics.materials import HUTable, Material, default_hu_table, get_material

__all__ = [
    "VoxelPhantom",
    "Shape",
    "SphereShape",
    "BoxShape",
    "CylinderShape",
    "DShapePrism",
    "Region",
    "rasterise",
    "water_box",
    "water_cylinder",
    "water_sphere",
    "IEC_SPHERE_DIAMETERS",
    "iec_sphere_centres",
    "iec_phantom",
    "phantom_from_ct",
    "phantom_from_labels",
    "BUILTIN_PHANTOM_NAMES",
    "builtin_phantom",
]


def _air() -> Material:
    return get_material("G4_AIR")


# ---------------------------------------------------------------------------------------
# The phantom and its lookup
# ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class VoxelPhantom:
    """Material index and density per voxel, placed in the world by ``geometry``.

    Attributes:
        geometry: shape, spacing and pose of the image.
        material_index: [i, j, k] integer tensor (int16/int32/...): an index into ``materials``,
            or ``len(materials)`` for "the world material" (its density is then the world
            material's, whatever ``density`` holds there).
        density: [i, j, k] float32 tensor, g/cm3.
        materials: the materials the indices refer to.
        world_material: what surrounds the image inside the exit surface (index ``len(materials)``
            of :attr:`all_materials`).

    NumPy arrays are accepted for ``material_index``/``density`` and converted. Assigning any
    attribute later (e.g. another ``world_material``) is allowed: the lookup tables are rebuilt
    on the next :meth:`lookup` (editing the tensors in place is not seen: assign new ones).
    """

    geometry: ImageGeometry
    material_index: torch.Tensor
    density: torch.Tensor
    materials: list[Material]
    world_material: Material = field(default_factory=_air)

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, ImageGeometry):
            raise ConfigError(f"VoxelPhantom geometry: expected an ImageGeometry, got {type(self.geometry).__name__}")
        self.materials = list(self.materials)
        if not self.materials or not all(isinstance(m, Material) for m in self.materials):
            raise ConfigError(f"VoxelPhantom materials: expected a non-empty list of Material, got {self.materials!r}")
        mi = torch.as_tensor(self.material_index)
        den = torch.as_tensor(self.density)
        shape = tuple(self.geometry.shape)
        if tuple(mi.shape) != shape or tuple(den.shape) != shape:
            raise DataError(
                f"VoxelPhantom: material_index {tuple(mi.shape)} and density {tuple(den.shape)} must both have the geometry's shape {shape}"
            )
        if mi.dtype.is_floating_point or mi.dtype == torch.bool or mi.dtype.is_complex:
            raise DataError(f"VoxelPhantom material_index: expected an integer tensor, got {mi.dtype}")
        if mi.numel():
            lo, hi = int(mi.min()), int(mi.max())
            if lo < 0 or hi > len(self.materials):
                raise DataError(
                    f"VoxelPhantom material_index: values must lie in [0, {len(self.materials)}] "
                    f"({len(self.materials)} materials, {len(self.materials)} = world material); found [{lo}, {hi}]"
                )
        den = den.to(torch.float32)
        if not bool(torch.isfinite(den).all()) or bool((den < 0).any()):
            raise DataError("VoxelPhantom density: expected finite densities >= 0 g/cm3 in every voxel")
        self.material_index = mi
        self.density = den

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "world_material" and not isinstance(value, Material):
            raise ConfigError(f"VoxelPhantom world_material: expected a Material (see gansim.physics.materials.get_material), got {value!r}")
        object.__setattr__(self, name, value)
        if name in _PHANTOM_FIELDS:
            object.__setattr__(self, "_lut", None)  # lookup tables are stale

    # -- materials ----------------------------------------------------------------------
    @property
    def all_materials(self) -> list[Material]:
        """``materials + [world_material]``: what the indices returned by :meth:`lookup` refer to."""
        return [*self.materials, self.world_material]

    @property
    def device(self) -> torch.device:
        return self.density.device

    def max_density(self) -> list[float]:
        """The largest density (g/cm3) of each entry of :attr:`all_materials` (0 for a material no voxel uses).

        The world material's entry is its own density (voxels marked as world take it too).
        """
        n = len(self.materials)
        idx = self.material_index.reshape(-1).long()
        out = torch.zeros(n + 1, dtype=torch.float32, device=self.density.device)
        out.scatter_reduce_(0, idx, self.density.reshape(-1), reduce="amax", include_self=True)
        values = [float(v) for v in out[:n].cpu()]
        return [*values, float(self.world_material.density)]

    def to(self, device: str | torch.device) -> VoxelPhantom:
        """The same phantom with its tensors on ``device`` (``self`` when already there)."""
        device = torch.device(device)
        if self.density.device == device and self.material_index.device == device:
            return self
        return VoxelPhantom(self.geometry, self.material_index.to(device), self.density.to(device), list(self.materials), self.world_material)

    # -- lookup -------------------------------------------------------------------------
    def _build_lut(self) -> _LookupTables:
        dev = self.density.device
        nx, ny, nz = self.geometry.shape
        n_mat = len(self.materials)
        world_density = float(self.world_material.density)
        # A one-voxel border of world material around the image: clamping the index into the
        # padded grid sends every outside point to the border, so the hot path needs neither a
        # bounds mask nor a torch.where.
        shape = (nx + 2, ny + 2, nz + 2)
        mat = torch.full(shape, n_mat, dtype=torch.int32, device=dev)
        den = torch.full(shape, world_density, dtype=torch.float32, device=dev)
        mi = self.material_index.to(dev)
        mat[1:-1, 1:-1, 1:-1] = mi.to(torch.int32)
        den[1:-1, 1:-1, 1:-1] = torch.where(mi == n_mat, torch.tensor(world_density, device=dev), self.density)
        mat, den = mat.reshape(-1), den.reshape(-1)
        # The gathers are memory bound (random access): when the image holds few distinct
        # (material, density) pairs, a uint8/int16 grid of pair indices plus two small tables
        # moves a quarter or half of the bytes of the float32 density grid.
        grid = None
        n_padded = mat.numel()
        if n_padded <= 2**27:
            key = (mat.long() << 32) | (den.view(torch.int32).long() & 0xFFFFFFFF)
            pairs, inverse = torch.unique(key, return_inverse=True)
            if len(pairs) <= 32767:
                grid = inverse.to(torch.uint8 if len(pairs) <= 256 else torch.int16)
                mat = (pairs >> 32).long()
                den = (pairs & 0xFFFFFFFF).to(torch.int32).view(torch.float32)
            del key, inverse
        # padded index + 0.5 (voxel i spans [i - 0.5, i + 0.5)) = position @ inv.T + offset
        inv = np.diag(1.0 / self.geometry.spacing) @ self.geometry.direction.T @ self.geometry.rotation.T
        offset = -inv @ self.geometry.index_to_world_offset + 1.5
        off_diagonal = np.abs(inv - np.diag(np.diag(inv))).max()
        # flat index as a float matrix-vector product: exact while it stays below 2^24 in float32
        flat_dtype = torch.float32 if n_padded <= 2**24 else torch.float64
        lut = _LookupTables(
            matrix=torch.as_tensor(inv.T, dtype=torch.float32, device=dev).contiguous(),
            diagonal=torch.as_tensor(np.diag(inv).copy(), dtype=torch.float32, device=dev) if off_diagonal <= 1e-12 * np.abs(inv).max() else None,
            offset=torch.as_tensor(offset, dtype=torch.float32, device=dev),
            lower=torch.zeros(3, dtype=torch.float32, device=dev),
            upper=torch.tensor([nx + 1, ny + 1, nz + 1], dtype=torch.float32, device=dev),
            strides=torch.tensor([(ny + 2) * (nz + 2), nz + 2, 1], dtype=flat_dtype, device=dev),
            grid=grid,
            material=mat if grid is not None else mat.to(torch.uint8 if n_mat < 255 else torch.int32),
            density=den,
        )
        object.__setattr__(self, "_lut", lut)
        return lut

    def lookup(self, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Material and density at world positions.

        Args:
            position: (N, 3) float32 mm, on the phantom's device (finite).

        Returns:
            (N,) long index into :attr:`all_materials` and (N,) float32 density g/cm3; points
            outside the image get the world material (index ``len(materials)``) and its density.
        """
        lut = getattr(self, "_lut", None) or self._build_lut()
        if position.dtype != torch.float32:
            position = position.to(torch.float32)
        if lut.diagonal is not None:  # axis-aligned image: one elementwise op instead of a K=3 matmul
            idx = torch.addcmul(lut.offset, position, lut.diagonal)
        else:
            idx = torch.addmm(lut.offset, position, lut.matrix)
        # floor(index + 0.5) in the padded grid, clamped onto the world border
        idx = idx.floor_().clamp_(min=lut.lower, max=lut.upper)
        flat = torch.mv(idx.to(lut.strides.dtype), lut.strides).long()
        # index_select on flat tensors: several times faster than advanced indexing (aten::index)
        if lut.grid is not None:
            pair = lut.grid.index_select(0, flat).long()
            return lut.material.index_select(0, pair), lut.density.index_select(0, pair)
        return lut.material.index_select(0, flat).long(), lut.density.index_select(0, flat)


_PHANTOM_FIELDS = frozenset(f.name for f in fields(VoxelPhantom))


@dataclass
class _LookupTables:
    matrix: torch.Tensor  # (3, 3) float32: padded index + 0.5 = position @ matrix + offset
    diagonal: torch.Tensor | None  # (3,) the matrix's diagonal when it has nothing else
    offset: torch.Tensor  # (3,) float32
    lower: torch.Tensor  # (3,) float32 zeros
    upper: torch.Tensor  # (3,) float32, last padded index per axis
    strides: torch.Tensor  # (3,) float32 or float64 (exact integers)
    grid: torch.Tensor | None  # flattened padded grid of (material, density) pair indices, uint8/int16; None: direct
    material: torch.Tensor  # per pair (int64), or per padded voxel (uint8/int32) when grid is None
    density: torch.Tensor  # per pair, or per padded voxel, float32


# ---------------------------------------------------------------------------------------
# Analytic shapes and their rasterisation
# ---------------------------------------------------------------------------------------
class Shape(Protocol):
    """An analytic solid. ``sdf(x, y, z)`` (world mm, broadcastable arrays) is a signed distance
    bound: negative or zero inside, positive outside, and never larger in magnitude than the
    true distance to the surface (so a voxel whose centre has ``|sdf| >= half diagonal`` lies
    entirely on one side). ``bounds()`` gives the (2, 3) world bounding box, mm."""

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray: ...

    def bounds(self) -> np.ndarray: ...


def _box2(qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Signed distance combining two per-axis distances (exact for an intersection of slabs)."""
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


@dataclass(frozen=True)
class SphereShape:
    """A ball of ``radius`` mm about ``center`` (world mm)."""

    center: tuple[float, float, float]
    radius: float

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, cz = self.center
        return np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) - self.radius

    def bounds(self) -> np.ndarray:
        c = np.asarray(self.center, dtype=np.float64)
        return np.stack([c - self.radius, c + self.radius])


@dataclass(frozen=True)
class BoxShape:
    """An axis-aligned box of full side lengths ``size`` (mm) about ``center``."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        h = 0.5 * np.asarray(self.size, dtype=np.float64)
        q = [np.abs(v - c) - hh for v, c, hh in zip((x, y, z), self.center, h)]
        outside = np.sqrt(sum(np.maximum(v, 0.0) ** 2 for v in q))
        return outside + np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)

    def bounds(self) -> np.ndarray:
        c, h = np.asarray(self.center, dtype=np.float64), 0.5 * np.asarray(self.size, dtype=np.float64)
        return np.stack([c - h, c + h])


_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class CylinderShape:
    """A closed cylinder of ``radius`` and full ``length`` (mm) about ``center``, along ``axis`` ("x", "y" or "z")."""

    center: tuple[float, float, float]
    radius: float
    length: float
    axis: str = "z"

    def __post_init__(self) -> None:
        if self.axis not in _AXES:
            raise ConfigError(f"cylinder axis {self.axis!r}: expected 'x', 'y' or 'z'")

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a = _AXES[self.axis]
        p = [v - c for v, c in zip((x, y, z), self.center)]
        u, v = (p[b] for b in range(3) if b != a)
        return _box2(np.hypot(u, v) - self.radius, np.abs(p[a]) - 0.5 * self.length)

    def bounds(self) -> np.ndarray:
        h = np.full(3, self.radius)
        h[_AXES[self.axis]] = 0.5 * self.length
        c = np.asarray(self.center, dtype=np.float64)
        return np.stack([c - h, c + h])


@dataclass(frozen=True)
class DShapePrism:
    """A prism along z whose cross-section is the NEMA/IEC body "D".

    Cross-section (x, y about ``center``): the half disc of radius ``radius`` on the y >= 0
    side, joined on y <= 0 to a rectangle of half width ``half_flat`` and depth ``corner_radius``
    whose two outer corners are quarter discs of radius ``corner_radius`` centred at
    (±half_flat, 0); ``half_flat + corner_radius == radius`` is required (the NEMA shape).
    ``length`` is the full extent along z.
    """

    center: tuple[float, float, float]
    radius: float
    half_flat: float
    corner_radius: float
    length: float

    def __post_init__(self) -> None:
        if not (0 < self.half_flat and 0 < self.corner_radius and abs(self.half_flat + self.corner_radius - self.radius) <= 1e-9 * self.radius):
            raise ConfigError(f"DShapePrism: expected half_flat + corner_radius == radius, got {self.half_flat} + {self.corner_radius} vs {self.radius}")

    def sdf2d(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance bound in the cross-section: the min over pieces that each lie inside the D
        and together make it up, so the sign is exact and |value| <= the true distance. The pieces
        overlap across the seam y = 0 (the rectangle reaches up into the half disc and the corner
        discs are whole: a point within corner_radius of (±half_flat, 0) is within radius of the
        origin), so interior points near the seam get a useful bound, not 0."""
        w, rc = self.half_flat, self.corner_radius
        top = math.sqrt(self.radius**2 - w**2)  # the half disc's height at x = ±half_flat
        half_disc = np.maximum(np.hypot(x, y) - self.radius, -y)
        rect = _box2(np.abs(x) - w, np.abs(y - 0.5 * (top - rc)) - 0.5 * (top + rc))
        corners = np.hypot(np.abs(x) - w, y) - rc
        return np.minimum(np.minimum(half_disc, rect), corners)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, cz = self.center
        return _box2(self.sdf2d(x - cx, y - cy), np.abs(z - cz) - 0.5 * self.length)

    def bounds(self) -> np.ndarray:
        c = np.asarray(self.center, dtype=np.float64)
        width = max(self.radius, self.half_flat + self.corner_radius)
        lo = c + np.array([-width, -self.corner_radius, -0.5 * self.length])
        hi = c + np.array([width, self.radius, 0.5 * self.length])
        return np.stack([lo, hi])

    def area(self) -> float:
        """Cross-section area, mm^2 (exact: half disc + rectangle + two quarter discs)."""
        rc = self.corner_radius
        return 0.5 * math.pi * self.radius**2 + 2 * self.half_flat * rc + 0.5 * math.pi * rc**2


@dataclass(frozen=True)
class Region:
    """A solid filled with one material. Later regions in a list are painted over earlier ones.

    Attributes:
        shape: the solid (world mm).
        material: its material.
        density: g/cm3; None = the material's own density.
        activity: activity per unit volume (relative units) of the activity image.
    """

    shape: Shape
    material: Material
    density: float | None = None
    activity: float = 0.0


def _sub_offsets(n_sub: int) -> np.ndarray:
    """(n_sub**3, 3) sub-point offsets inside a voxel, in index units (a centred n_sub^3 grid)."""
    g = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)


def _activity_relevant(act_lut: np.ndarray) -> list[bool]:
    """Per region: can crossing its surface change the activity?

    Labels are painted in order, so on the surface of region r the label changes between r and
    some lower label (world or an earlier region). When every lower label has region r's
    activity, that surface never changes the activity and needs no supersampling.
    """
    return [bool(np.any(act_lut[: r + 1] != act_lut[r + 1])) for r in range(len(act_lut) - 1)]


def rasterise(
    regions: Sequence[Region],
    geometry: ImageGeometry,
    *,
    world_material: Material | str = "G4_AIR",
    supersampling: int = 4,
    max_points: int = 1_000_000,
) -> tuple[VoxelPhantom, np.ndarray]:
    """Voxelise analytic regions on ``geometry`` (any pose, anisotropic spacing allowed).

    The material and density of a voxel are those of the region at its centre (the world
    material where no region is). The activity of a voxel is the mean activity over
    ``supersampling**3`` regularly spaced sub-points, i.e. partial volumes to within the
    sub-grid's resolution. A region whose surface is farther than half the voxel diagonal
    from the centre (by its signed-distance bound) is uniform over the voxel, so sub-points
    are only evaluated against the regions whose surfaces may cross the voxel.

    Args:
        regions: painted in order (later wins).
        geometry: the image grid.
        world_material: what voxels outside every region hold (index ``len(materials)``).
        supersampling: sub-points per voxel axis (>= 1).
        max_points: points evaluated at once (bounds memory).

    Returns:
        the phantom, and the activity image [i, j, k] float32 (per-unit-volume activity times
        the fraction of the voxel it fills).
    """
    if not regions:
        raise ConfigError("rasterise: expected at least one region")
    if int(supersampling) < 1:
        raise ConfigError(f"supersampling {supersampling!r}: expected an integer >= 1")
    n_sub = int(supersampling)
    world = _material(world_material)
    materials: list[Material] = []
    for reg in regions:
        if reg.material.name not in [m.name for m in materials]:
            materials.append(reg.material)
    names = [m.name for m in materials]
    # per label (0 = world, r + 1 = regions[r]): material index, density, activity
    mat_lut = np.array([len(materials)] + [names.index(r.material.name) for r in regions], dtype=np.int16)
    den_lut = np.array([world.density] + [r.material.density if r.density is None else r.density for r in regions], dtype=np.float32)
    act_lut = np.array([0.0] + [r.activity for r in regions], dtype=np.float64)
    if not np.all(np.isfinite(den_lut)) or np.any(den_lut < 0) or not np.all(np.isfinite(act_lut)) or np.any(act_lut < 0):
        raise ConfigError("rasterise: region densities and activities must be finite and >= 0")
    relevant = _activity_relevant(act_lut) if n_sub > 1 else [False] * len(regions)

    nx, ny, nz = geometry.shape
    a, b = geometry.index_to_world_matrix, geometry.index_to_world_offset
    half_diag = 0.5 * float(np.linalg.norm(geometry.spacing))
    offsets = _sub_offsets(n_sub) @ a.T  # (S, 3) world offsets of the sub-points
    material = np.empty(geometry.shape, dtype=np.int16)
    density = np.empty(geometry.shape, dtype=np.float32)
    activity = np.empty(geometry.shape, dtype=np.float32)
    jk = np.stack(np.meshgrid(np.arange(ny), np.arange(nz), indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float64)
    slab = max(1, max_points // max(1, ny * nz))
    per = max(1, max_points // offsets.shape[0])
    for i0 in range(0, nx, slab):
        i1 = min(nx, i0 + slab)
        idx = np.concatenate([np.repeat(np.arange(i0, i1, dtype=np.float64), ny * nz)[:, None], np.tile(jk, (i1 - i0, 1))], axis=1)
        centres = idx @ a.T + b  # (M, 3)
        x, y, z = centres[:, 0], centres[:, 1], centres[:, 2]
        lab = np.zeros(len(centres), dtype=np.int16)  # label at the centre
        base = np.zeros(len(centres), dtype=np.int16)  # highest label filling the whole voxel
        near: list[np.ndarray | None] = []
        for r, reg in enumerate(regions):
            d = reg.shape.sdf(x, y, z)
            lab[d <= 0.0] = r + 1
            base[d <= -half_diag] = r + 1
            near.append(np.abs(d) < half_diag if relevant[r] else None)
        act = act_lut[lab]
        crossed = np.zeros(len(centres), dtype=bool)
        for r, m in enumerate(near):
            if m is not None:
                crossed |= m & (base <= r)
        where = np.nonzero(crossed)[0]
        for s0 in range(0, len(where), per):
            sel = where[s0 : s0 + per]
            sub = np.repeat(base[sel][:, None], offsets.shape[0], axis=1)  # (B, S) labels
            for r, m in enumerate(near):
                if m is None:
                    continue  # crossing this surface cannot change the activity (see _activity_relevant)
                rows = np.nonzero(m[sel] & (base[sel] <= r))[0]
                if len(rows) == 0:
                    continue
                pts = centres[sel[rows], None, :] + offsets[None, :, :]
                inside = regions[r].shape.sdf(pts[..., 0], pts[..., 1], pts[..., 2]) <= 0.0
                sub[rows] = np.where(inside, np.int16(r + 1), sub[rows])
            act[sel] = act_lut[sub].mean(axis=1)
        material[i0:i1] = mat_lut[lab].reshape(i1 - i0, ny, nz)
        density[i0:i1] = den_lut[lab].reshape(i1 - i0, ny, nz)
        activity[i0:i1] = act.reshape(i1 - i0, ny, nz)
    phantom = VoxelPhantom(geometry, torch.from_numpy(material), torch.from_numpy(density), materials, world)
    return phantom, activity


# ---------------------------------------------------------------------------------------
# Simple builders
# ---------------------------------------------------------------------------------------
def _spacing3(spacing: float | Sequence[float], what: str) -> np.ndarray:
    s = np.asarray(spacing, dtype=np.float64).reshape(-1)
    s = np.repeat(s, 3) if s.shape == (1,) else s
    if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"{what} spacing {spacing!r}: expected one or three voxel sizes > 0 mm")
    return s


def _positive(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{what} {value!r}: expected a finite length > 0 mm")
    return v


def _grid_around(extent: np.ndarray, spacing: np.ndarray, center: Sequence[float], what: str, max_voxels: int = 1024**3 // 2) -> ImageGeometry:
    """An axis-aligned grid centred on ``center`` that covers a box of full ``extent`` (mm)."""
    shape = np.maximum(1, np.ceil(extent / spacing - 1e-9)).astype(int)
    if int(np.prod(shape, dtype=np.int64)) > max_voxels:
        raise ConfigError(f"{what}: {shape.tolist()} voxels at spacing {spacing.tolist()} mm is too many; use a larger spacing")
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ConfigError(f"{what} center {center!r}: expected 3 finite numbers (mm)")
    return ImageGeometry.centred(tuple(shape), spacing, translation=c)


def _material(value: Material | str) -> Material:
    return value if isinstance(value, Material) else get_material(value)


def water_box(
    size: float | Sequence[float],
    spacing: float | Sequence[float],
    *,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    material: Material | str = "G4_WATER",
    world_material: Material | str = "G4_AIR",
    supersampling: int = 4,
) -> tuple[VoxelPhantom, np.ndarray]:
    """An axis-aligned box of full side lengths ``size`` (mm) filled with ``material``.

    The grid covers the box with whole voxels (centred on it); voxels whose centre falls
    outside (when ``size`` is not a multiple of ``spacing``) hold the world material.

    Returns:
        the phantom (materials ``[material]``) and the activity image: 1 per unit volume in the
        box, with partial volumes at its faces.
    """
    s = np.asarray(size, dtype=np.float64).reshape(-1)
    s = np.repeat(s, 3) if s.shape == (1,) else s
    if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"water_box size {size!r}: expected one or three lengths > 0 mm")
    sp = _spacing3(spacing, "water_box")
    geometry = _grid_around(s, sp, center, "water_box")
    region = Region(BoxShape(tuple(float(v) for v in center), tuple(s.tolist())), _material(material), activity=1.0)
    return rasterise([region], geometry, world_material=_material(world_material), supersampling=supersampling)


def water_cylinder(
    radius: float,
    height: float,
    spacing: float | Sequence[float],
    axis: str = "z",
    *,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    material: Material | str = "G4_WATER",
    world_material: Material | str = "G4_AIR",
    supersampling: int = 4,
) -> tuple[VoxelPhantom, np.ndarray]:
    """A closed cylinder of ``radius`` and full ``height`` (mm) along ``axis``, filled with ``material``.

    Returns:
        the phantom (materials ``[material]``, the world material around it) and its activity
        image (1 per unit volume inside, partial volumes at the surface).
    """
    r, h = _positive(radius, "water_cylinder radius"), _positive(height, "water_cylinder height")
    if axis not in _AXES:
        raise ConfigError(f"water_cylinder axis {axis!r}: expected 'x', 'y' or 'z'")
    extent = np.full(3, 2 * r)
    extent[_AXES[axis]] = h
    geometry = _grid_around(extent, _spacing3(spacing, "water_cylinder"), center, "water_cylinder")
    region = Region(CylinderShape(tuple(float(v) for v in center), r, h, axis), _material(material), activity=1.0)
    return rasterise([region], geometry, world_material=_material(world_material), supersampling=supersampling)


def water_sphere(
    radius: float,
    spacing: float | Sequence[float],
    *,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    material: Material | str = "G4_WATER",
    world_material: Material | str = "G4_AIR",
    supersampling: int = 4,
) -> tuple[VoxelPhantom, np.ndarray]:
    """A ball of ``radius`` (mm) filled with ``material``; see :func:`water_cylinder` for what is returned."""
    r = _positive(radius, "water_sphere radius")
    geometry = _grid_around(np.full(3, 2 * r), _spacing3(spacing, "water_sphere"), center, "water_sphere")
    region = Region(SphereShape(tuple(float(v) for v in center), r), _material(material), activity=1.0)
    return rasterise([region], geometry, world_material=_material(world_material), supersampling=supersampling)


# ---------------------------------------------------------------------------------------
# NEMA IEC body phantom
# ---------------------------------------------------------------------------------------
#: inner diameters of the six fillable spheres, mm (NEMA NU 2-2012 / IEC 61675-1)
IEC_SPHERE_DIAMETERS: tuple[float, ...] = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)

# Interior cross-section (NEMA NU 2 / IEC 61675-1 body phantom drawing).
_IEC_RADIUS = 147.0  # half disc, mm
_IEC_HALF_FLAT = 70.0  # half of the 140 mm flat side, mm
_IEC_CORNER = 77.0  # depth of the flat part and radius of its rounded corners, mm
_IEC_LENGTH = 180.0  # interior length, mm
_IEC_RING_RADIUS = 57.2  # sphere centres on a 114.4 mm diameter circle about the lung insert axis
_IEC_LUNG_OUTER_RADIUS = 25.0  # 50 mm outer diameter insert (NEMA NU 2)
# Approximations (see iec_phantom's docstring).
_IEC_WALL = 3.0  # side wall, mm
_IEC_END_WALL = 10.0  # end plates, mm
_IEC_LUNG_WALL = 4.0  # lung insert tube wall, mm
_IEC_SPHERE_WALL = 1.0  # sphere wall, mm
_IEC_AXIS_Y = 35.0  # lung insert / sphere ring axis from the half-disc centre, mm
_IEC_SPHERE_PLANE = 70.0  # sphere centres from the inner face of the +z end plate, mm
_IEC_FIRST_ANGLE = 180.0  # angle (deg, about the ring axis, from +x towards +y) of the 37 mm sphere


def iec_sphere_centres(center: Sequence[float] = (0.0, 0.0, 0.0)) -> dict[float, np.ndarray]:
    """World centres (mm) of the IEC spheres by inner diameter, for a phantom built with ``center``."""
    c = np.asarray(center, dtype=np.float64)
    out: dict[float, np.ndarray] = {}
    # largest first, 60 degrees apart counter-clockwise (the order of GATE's model)
    for n, d in enumerate(sorted(IEC_SPHERE_DIAMETERS, reverse=True)):
        a = math.radians(_IEC_FIRST_ANGLE + 60.0 * n)
        z = 0.5 * _IEC_LENGTH - _IEC_SPHERE_PLANE
        out[d] = c + np.array([_IEC_RING_RADIUS * math.cos(a), _IEC_AXIS_Y + _IEC_RING_RADIUS * math.sin(a), z])
    return out


def _iec_regions(center: np.ndarray, sphere_activity: float, background: float, lung_density: float) -> list[Region]:
    pmma, water, lung = get_material("G4_PLEXIGLASS"), get_material("G4_WATER"), get_material("G4_LUNG_ICRP")
    c = tuple(float(v) for v in center)
    axis = (c[0], c[1] + _IEC_AXIS_Y, c[2])
    w = _IEC_WALL
    regions = [
        Region(DShapePrism(c, _IEC_RADIUS + w, _IEC_HALF_FLAT, _IEC_CORNER + w, _IEC_LENGTH + 2 * _IEC_END_WALL), pmma),
        Region(DShapePrism(c, _IEC_RADIUS, _IEC_HALF_FLAT, _IEC_CORNER, _IEC_LENGTH), water, activity=background),
        Region(CylinderShape(axis, _IEC_LUNG_OUTER_RADIUS, _IEC_LENGTH), pmma),
        Region(CylinderShape(axis, _IEC_LUNG_OUTER_RADIUS - _IEC_LUNG_WALL, _IEC_LENGTH), lung, density=lung_density),
    ]
    for d, p in iec_sphere_centres(center).items():
        pc = tuple(float(v) for v in p)
        regions.append(Region(SphereShape(pc, 0.5 * d + _IEC_SPHERE_WALL), pmma))
        regions.append(Region(SphereShape(pc, 0.5 * d), water, activity=sphere_activity))
    return regions


def iec_phantom(
    spacing: float | Sequence[float] = 4.0,
    sphere_activity_ratio: float = 4.0,
    *,
    background_activity: float = 1.0,
    lung_density: float = 0.3,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    world_material: Material | str = "G4_AIR",
    supersampling: int = 4,
) -> tuple[VoxelPhantom, np.ndarray]:
    """A NEMA IEC body-like phantom and its activity image.

    Frame (mm, about ``center``): z along the phantom axis, the interior spanning
    z in [-90, 90]; the cross-section's half disc lies on the +y side of the x axis and the
    flat part with rounded corners on the -y side (the orientation of GATE's model).

    As in NEMA NU 2-2012 / IEC 61675-1 (interior dimensions):
        * cross-section: half disc of radius 147 mm; flat part 140 mm wide and 77 mm deep with
          two quarter-circle corners of radius 77 mm; interior length 180 mm;
        * six spheres of inner diameters 10, 13, 17, 22, 28 and 37 mm, centres on a circle of
          114.4 mm diameter (57.2 mm radius) about the lung insert's axis, in one transverse plane;
        * a lung insert of 50 mm outer diameter along the whole interior length, filled with a
          low-density material (``lung_density``, NEMA: 0.30 ± 0.10 g/cm3).

    Approximations (values from GATE's ``nemaiec.py`` model or chosen here, not from the standards):
        * walls: PMMA (G4_PLEXIGLASS, 1.19 g/cm3), 3 mm on the sides, 10 mm end plates;
        * lung insert: a 4 mm PMMA tube (inner radius 21 mm) filled with G4_LUNG_ICRP
          composition at ``lung_density``; its axis, the centre of the sphere ring, 35 mm from
          the half disc's centre towards the round side;
        * spheres: 1 mm PMMA walls (real ones are glass or PMMA, about 1 mm); their plane
          70 mm from the inner face of the +z end plate (z = +20 mm); the 37 mm sphere at
          180 degrees, then 28, 22, 17, 13, 10 mm every 60 degrees counter-clockwise;
        * the spheres' filling stems and the lid's screws and ports are left out.

    Args:
        spacing: voxel size (mm, one or three values); 4 mm builds in about a second, 2 mm works.
        sphere_activity_ratio: activity per unit volume of the sphere water relative to the background.
        background_activity: activity per unit volume of the background water.
        lung_density: g/cm3 of the lung insert's filling.
        center: world position of the frame origin (half disc centre, mid-length), mm.
        world_material: what surrounds the phantom.
        supersampling: sub-points per voxel axis for the activity's partial volumes.

    Returns:
        the phantom (materials G4_PLEXIGLASS, G4_WATER, G4_LUNG_ICRP; world outside) and the
        activity image [i, j, k] float32: background water ``background_activity``, sphere water
        ``sphere_activity_ratio * background_activity``, walls and lung 0, partial volumes by
        supersampling.
    """
    ratio = float(sphere_activity_ratio)
    bg = float(background_activity)
    if not (math.isfinite(ratio) and ratio >= 0 and math.isfinite(bg) and bg >= 0):
        raise ConfigError(f"iec_phantom: sphere_activity_ratio {sphere_activity_ratio!r} and background_activity {background_activity!r} must be finite and >= 0")
    if not (math.isfinite(float(lung_density)) and float(lung_density) >= 0):
        raise ConfigError(f"iec_phantom lung_density {lung_density!r}: expected a finite density >= 0 g/cm3")
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ConfigError(f"iec_phantom center {center!r}: expected 3 finite numbers (mm)")
    regions = _iec_regions(c, ratio * bg, bg, float(lung_density))
    lo, hi = regions[0].shape.bounds()
    sp = _spacing3(spacing, "iec_phantom")
    geometry = _grid_around(hi - lo, sp, 0.5 * (lo + hi), "iec_phantom")
    return rasterise(regions, geometry, world_material=_material(world_material), supersampling=supersampling)


# ---------------------------------------------------------------------------------------
# Images from files
# ---------------------------------------------------------------------------------------
def _check_finite(array: np.ndarray, path: str | Path, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(v) for v in np.argwhere(bad)[0])
            raise DataError(f"{path}: the {what} has {int(bad.sum())} NaN or infinite voxels (first at index {first}); expected finite values")


def phantom_from_ct(
    path: str | Path,
    hu_table: HUTable | None = None,
    *,
    translation: Sequence[float] | None = None,
    rotation: np.ndarray | None = None,
    world_material: Material | str = "G4_AIR",
) -> VoxelPhantom:
    """A phantom from a CT image in Hounsfield units.

    Args:
        path: a 3-D scalar image SimpleITK reads (.mhd, .nii, .nii.gz, .nrrd); its spacing,
            origin and direction cosines are kept.
        hu_table: HU -> material and density (default :func:`~gansim.physics.materials.default_hu_table`).
        translation, rotation: placement of the image in the world (see ImageGeometry).
        world_material: what surrounds the image.
    """
    image, hu = read_scalar_image(path, "CT image")
    _check_finite(hu, path, "CT image")
    table = default_hu_table() if hu_table is None else hu_table
    index, density, materials = table.convert(hu.astype(np.float32, copy=False))
    geometry = ImageGeometry.from_sitk(image, translation=translation, rotation=rotation)
    return VoxelPhantom(geometry, torch.from_numpy(np.ascontiguousarray(index)), torch.from_numpy(np.ascontiguousarray(density, dtype=np.float32)), list(materials), _material(world_material))


def phantom_from_labels(
    path: str | Path,
    labels: Mapping[int, str | Material],
    densities: Mapping[int, float] | None = None,
    *,
    translation: Sequence[float] | None = None,
    rotation: np.ndarray | None = None,
    world_material: Material | str = "G4_AIR",
) -> VoxelPhantom:
    """A phantom from a label image.

    Args:
        path: a 3-D scalar image of integer labels SimpleITK reads.
        labels: label value -> material (a Material or a name for
            :func:`~gansim.physics.materials.get_material`). Every label in the image must be mapped.
        densities: label value -> density (g/cm3) overriding the material's own density.
        translation, rotation: placement of the image in the world.
        world_material: what surrounds the image.
    """
    if not labels:
        raise ConfigError("phantom_from_labels: the label -> material mapping is empty")
    resolved: dict[int, Material] = {}
    for key, value in labels.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise ConfigError(f"phantom_from_labels: label {key!r} is not an integer") from None
        resolved[label] = value if isinstance(value, Material) else get_material(str(value))
    dens: dict[int, float] = {}
    for key, value in (densities or {}).items():
        if int(key) not in resolved:
            raise ConfigError(f"phantom_from_labels: density given for label {key!r}, which has no material (labels: {sorted(resolved)})")
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"phantom_from_labels: density {value!r} for label {key}: expected a finite value >= 0 g/cm3")
        dens[int(key)] = v

    image, array = read_scalar_image(path, "label image")
    _check_finite(array, path, "label image")
    if not np.issubdtype(array.dtype, np.integer):
        if np.any(array != np.round(array)):
            raise DataError(f"{path}: the label image holds non-integer values (dtype {array.dtype}); expected integer labels")
        array = array.astype(np.int64)
    values, inverse = np.unique(array, return_inverse=True)
    missing = [int(v) for v in values if int(v) not in resolved]
    if missing:
        shown = ", ".join(str(v) for v in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise DataError(f"{path}: label values {shown} have no material; expected only the mapped labels {sorted(resolved)}")
    materials: list[Material] = []
    for v in values:
        m = resolved[int(v)]
        if m.name not in [x.name for x in materials]:
            materials.append(m)
    names = [m.name for m in materials]
    mat_of = np.array([names.index(resolved[int(v)].name) for v in values], dtype=np.int16)
    den_of = np.array([dens.get(int(v), resolved[int(v)].density) for v in values], dtype=np.float32)
    inverse = inverse.reshape(array.shape)
    geometry = ImageGeometry.from_sitk(image, translation=translation, rotation=rotation)
    return VoxelPhantom(geometry, torch.from_numpy(mat_of[inverse]), torch.from_numpy(den_of[inverse]), materials, _material(world_material))


# ---------------------------------------------------------------------------------------
# Built-in phantoms
# ---------------------------------------------------------------------------------------
#: built-in phantom names and their default voxel size (mm)
BUILTIN_PHANTOM_NAMES: dict[str, float] = {"iec": 4.0, "water-cylinder": 4.0, "water-sphere": 4.0, "water-box": 4.0}


def builtin_phantom(name: str, spacing: float | Sequence[float] | None = None) -> tuple[VoxelPhantom, np.ndarray | None]:
    """A built-in phantom and its activity image ([i, j, k], relative units).

    * ``"iec"``: :func:`iec_phantom` (spheres at 4:1).
    * ``"water-cylinder"``: radius 100 mm, length 200 mm along z, uniform activity.
    * ``"water-sphere"``: radius 100 mm, uniform activity.
    * ``"water-box"``: 200 mm cube, uniform activity.

    ``spacing`` (mm) defaults to 4 mm.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in BUILTIN_PHANTOM_NAMES:
        close = difflib.get_close_matches(key, list(BUILTIN_PHANTOM_NAMES), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(f"built-in phantom {name!r}: expected one of {', '.join(BUILTIN_PHANTOM_NAMES)}{hint}")
    sp = BUILTIN_PHANTOM_NAMES[key] if spacing is None else spacing
    if key == "iec":
        return iec_phantom(sp)
    if key == "water-cylinder":
        return water_cylinder(100.0, 200.0, sp)
    if key == "water-sphere":
        return water_sphere(100.0, sp)
    return water_box(200.0, sp)
