"""Where a voxel image sits in the world: one frame convention for phantoms and activity images.

Arrays are indexed ``array[i, j, k]`` with ``i`` along the image's first axis (ITK's x
index), ``j`` the second (y), ``k`` the third (z) — the order of ITK indices and of
NIfTI's data array, *not* the (z, y, x) order of ``SimpleITK.GetArrayFromImage``.

The world position of the centre of voxel ``(i, j, k)`` is::

    p_world = translation + rotation @ (origin + direction @ (spacing * [i, j, k]))

``origin`` is the centre of voxel (0, 0, 0) in the image frame, ``direction`` holds the
image axes as columns (ITK's direction cosines), ``spacing`` the voxel size along each
axis (anisotropic allowed). ``translation``/``rotation`` place the whole image in the
world (the pose of the volume that holds it), applied once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from gansim.errors import ConfigError

__all__ = ["ImageGeometry", "rotation_matrix", "as_rotation"]


def as_rotation(value: Sequence[Sequence[float]] | np.ndarray | None, what: str) -> np.ndarray:
    """A finite orthonormal (3, 3) matrix (identity for None), or a ConfigError naming ``what``."""
    m = np.eye(3) if value is None else np.asarray(value, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ConfigError(f"{what}: expected a finite 3x3 matrix, got shape {np.shape(value)}")
    if not np.allclose(m.T @ m, np.eye(3), atol=1e-5):
        raise ConfigError(f"{what}: expected an orthonormal matrix (columns are unit axes), got {m.tolist()}")
    return m


def _vector(value: Sequence[float] | np.ndarray | None, what: str, default: float = 0.0) -> np.ndarray:
    v = np.full(3, default, dtype=np.float64) if value is None else np.asarray(value, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ConfigError(f"{what}: expected 3 finite numbers, got {value!r}")
    return v


def rotation_matrix(axis: str | Sequence[float], angle: float) -> np.ndarray:
    """Right-handed rotation by ``angle`` (rad) about ``axis`` ("x", "y", "z" or a 3-vector), shape (3, 3)."""
    if isinstance(axis, str):
        names = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
        if axis.lower() not in names:
            raise ConfigError(f"rotation axis {axis!r}: expected 'x', 'y', 'z' or a 3-vector")
        a = np.array(names[axis.lower()])
    else:
        a = _vector(axis, "rotation axis")
        norm = np.linalg.norm(a)
        if norm == 0:
            raise ConfigError("rotation axis: a zero vector has no direction")
        a = a / norm
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


@dataclass
class ImageGeometry:
    """Shape, voxel size and pose of a 3-D image (see the module docstring for the formula).

    Attributes:
        shape: voxels along (i, j, k).
        spacing: voxel size along (i, j, k), mm, all > 0.
        origin: centre of voxel (0, 0, 0) in the image frame, mm.
        direction: (3, 3) orthonormal; column a is the world-frame unit vector of index axis a.
        translation: (3,) mm, placement of the image frame in the world.
        rotation: (3, 3) orthonormal, placement of the image frame in the world.
    """

    shape: tuple[int, int, int]
    spacing: np.ndarray
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"image shape {self.shape!r}: expected 3 positive voxel counts")
        self.shape = shape  # type: ignore[assignment]
        self.spacing = _vector(self.spacing, "image spacing")
        if np.any(self.spacing <= 0):
            raise ConfigError(f"image spacing {self.spacing.tolist()} mm: every voxel size must be > 0")
        self.origin = _vector(self.origin, "image origin")
        self.direction = as_rotation(self.direction, "image direction cosines")
        self.translation = _vector(self.translation, "image translation")
        self.rotation = as_rotation(self.rotation, "image rotation")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def centred(cls, shape: Sequence[int], spacing: Sequence[float] | float, **pose: object) -> ImageGeometry:
        """A geometry whose centre is at the image-frame origin (``pose``: translation, rotation)."""
        spacing_v = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,)).copy()
        origin = -0.5 * (np.asarray(shape, dtype=np.float64) - 1.0) * spacing_v
        return cls(tuple(shape), spacing_v, origin, np.eye(3), **pose)  # type: ignore[arg-type]

    @classmethod
    def from_sitk(cls, image: object, **pose: object) -> ImageGeometry:
        """Geometry of a ``SimpleITK.Image`` (its size, spacing, origin and direction)."""
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)  # type: ignore[attr-defined]
        return cls(
            tuple(image.GetSize()),  # type: ignore[attr-defined]
            np.asarray(image.GetSpacing()),  # type: ignore[attr-defined]
            np.asarray(image.GetOrigin()),  # type: ignore[attr-defined]
            direction,
            **pose,  # type: ignore[arg-type]
        )

    def placed(self, translation: Sequence[float] | None = None, rotation: np.ndarray | None = None) -> ImageGeometry:
        """The same image with another world placement."""
        return ImageGeometry(self.shape, self.spacing, self.origin, self.direction, _vector(translation, "translation"), as_rotation(rotation, "rotation"))

    # -- transforms -------------------------------------------------------------------
    @property
    def index_to_world_matrix(self) -> np.ndarray:
        """(3, 3) matrix A with ``p_world = A @ index + offset``."""
        return self.rotation @ self.direction @ np.diag(self.spacing)

    @property
    def index_to_world_offset(self) -> np.ndarray:
        """(3,) offset with ``p_world = A @ index + offset`` (mm)."""
        return self.translation + self.rotation @ self.origin

    def index_to_world(self, index: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """World positions (N, 3) mm of continuous indices (N, 3) (voxel centres at integers)."""
        a, b = self.index_to_world_matrix, self.index_to_world_offset
        if isinstance(index, torch.Tensor):
            at = torch.as_tensor(a, dtype=index.dtype, device=index.device)
            bt = torch.as_tensor(b, dtype=index.dtype, device=index.device)
            return index @ at.T + bt
        return np.asarray(index) @ a.T + b

    def world_to_index(self, position: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Continuous indices (N, 3) of world positions (N, 3) mm; voxel (i,j,k) spans index ± 0.5."""
        # A = R D S with R, D orthonormal, so A^-1 = S^-1 D^T R^T: exact, no matrix inversion.
        inv = np.diag(1.0 / self.spacing) @ self.direction.T @ self.rotation.T
        b = self.index_to_world_offset
        if isinstance(position, torch.Tensor):
            it = torch.as_tensor(inv, dtype=position.dtype, device=position.device)
            bt = torch.as_tensor(b, dtype=position.dtype, device=position.device)
            return (position - bt) @ it.T
        return (np.asarray(position) - b) @ inv.T

    def corners(self) -> np.ndarray:
        """World positions (8, 3) mm of the outer corners of the image (voxel edges, not centres)."""
        lo = np.full(3, -0.5)
        hi = np.asarray(self.shape, dtype=np.float64) - 0.5
        idx = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        return self.index_to_world(idx)  # type: ignore[return-value]

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel, mm^3."""
        return float(np.prod(self.spacing))
