"""Exit surfaces: where transported photons stop and are recorded.

A photon is tracked while it is inside the surface; the transport asks for the distance
along its direction to the surface (exact ray/quadric intersection) and records it there.
Surfaces work on torch tensors on any device (their parameters are Python floats).
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
import torch

from gansim.errors import ConfigError

__all__ = ["ExitSurface", "SphereSurface", "CylinderSurface", "parse_exit_surface", "SURFACE_KINDS"]

# points closer to the surface than this fraction of its size count as on it (rounding)
_REL_TOL = 1e-9


def _length(value: float, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r}: expected a number (mm)") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{what} {value!r}: expected a finite length > 0 mm")
    return v


def _center(value: Sequence[float], what: str) -> tuple[float, float, float]:
    c = np.asarray(value, dtype=np.float64).reshape(-1)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ConfigError(f"{what} center {value!r}: expected 3 finite numbers (mm)")
    return (float(c[0]), float(c[1]), float(c[2]))


class ExitSurface(ABC):
    """A closed surface around the phantom (world frame, mm)."""

    center: tuple[float, float, float]

    @abstractmethod
    def contains(self, position: torch.Tensor) -> torch.Tensor:
        """(N, 3) mm -> (N,) bool, True inside or on the surface."""

    @abstractmethod
    def distance_to_exit(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """Distance (N,) mm along unit ``direction`` (N, 3) from inside points ``position`` (N, 3) to the surface.

        Exact ray/quadric intersection, >= 0 (0 for a point on the surface moving outwards).
        """

    @abstractmethod
    def _contains_np(self, points: np.ndarray) -> np.ndarray:
        """float64 version of :meth:`contains` with a small tolerance, for checks."""

    def check_encloses(self, points: np.ndarray, what: str) -> None:
        """Raise ConfigError naming ``what`` when any of ``points`` (M, 3) mm lies outside the surface."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        inside = self._contains_np(pts)
        if not bool(inside.all()):
            bad = pts[~inside]
            raise ConfigError(
                f"{what} is not inside the exit surface {self!r}: {len(bad)} of its {len(pts)} points lie outside, "
                f"e.g. ({', '.join(f'{v:.6g}' for v in bad[0])}) mm; enlarge the surface or move {what}"
            )

    def _local(self, position: torch.Tensor) -> torch.Tensor:
        if self.center == (0.0, 0.0, 0.0):
            return position
        return position - torch.tensor(self.center, dtype=position.dtype, device=position.device)


class SphereSurface(ExitSurface):
    """A sphere of ``radius`` mm about ``center`` (mm)."""

    def __init__(self, radius: float, center: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.radius = _length(radius, "sphere radius")
        self.center = _center(center, "sphere")

    def __repr__(self) -> str:
        return f"SphereSurface(radius={self.radius:g}, center={self.center})"

    def contains(self, position: torch.Tensor) -> torch.Tensor:
        q = self._local(position)
        return (q * q).sum(dim=1) <= self.radius**2

    def _contains_np(self, points: np.ndarray) -> np.ndarray:
        q = points - np.asarray(self.center)
        return np.linalg.norm(q, axis=1) <= self.radius * (1 + _REL_TOL)

    def distance_to_exit(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        q = self._local(position)
        qx, qy, qz = q.unbind(1)
        dx, dy, dz = direction.unbind(1)
        # component-wise: a reduction over a length-3 axis is several times slower in torch
        b = torch.addcmul(torch.addcmul(qx * dx, qy, dy), qz, dz)  # q . d
        c = torch.addcmul(torch.addcmul(qx * qx, qy, qy), qz, qz).sub_(self.radius**2)  # <= 0 inside
        s = torch.sqrt(torch.clamp(b * b - c, min=0.0))
        # the larger root of t^2 + 2 b t + c = 0, in the form without cancellation for each sign of b
        t = torch.where(b <= 0, s - b, -c / (b + s))
        return torch.clamp(t, min=0.0)


class CylinderSurface(ExitSurface):
    """A closed cylinder along z: ``radius`` mm, from ``center_z - half_length`` to ``center_z + half_length``."""

    def __init__(self, radius: float, half_length: float, center: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.radius = _length(radius, "cylinder radius")
        self.half_length = _length(half_length, "cylinder half length")
        self.center = _center(center, "cylinder")

    def __repr__(self) -> str:
        return f"CylinderSurface(radius={self.radius:g}, half_length={self.half_length:g}, center={self.center})"

    def contains(self, position: torch.Tensor) -> torch.Tensor:
        q = self._local(position)
        radial = q[:, 0] * q[:, 0] + q[:, 1] * q[:, 1] <= self.radius**2
        return radial & (q[:, 2].abs() <= self.half_length)

    def _contains_np(self, points: np.ndarray) -> np.ndarray:
        q = points - np.asarray(self.center)
        radial = np.hypot(q[:, 0], q[:, 1]) <= self.radius * (1 + _REL_TOL)
        return radial & (np.abs(q[:, 2]) <= self.half_length * (1 + _REL_TOL))

    def distance_to_exit(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        q = self._local(position)
        qx, qy, qz = q[:, 0], q[:, 1], q[:, 2]
        dx, dy, dz = direction[:, 0], direction[:, 1], direction[:, 2]
        inf = torch.tensor(float("inf"), dtype=q.dtype, device=q.device)
        # side: a t^2 + 2 b t + c = 0 in the xy plane
        a = dx * dx + dy * dy
        b = qx * dx + qy * dy
        c = qx * qx + qy * qy - self.radius**2
        s = torch.sqrt(torch.clamp(b * b - a * c, min=0.0))
        side = torch.where(b <= 0, (s - b) / a, -c / (b + s))
        side = torch.where(a > 0, side, inf)  # parallel to the axis: never reaches the side
        # end caps: the plane ahead of the photon
        cap = torch.where(dz != 0, (torch.copysign(torch.full_like(dz, self.half_length), dz) - qz) / dz, inf)
        return torch.clamp(torch.minimum(side, cap), min=0.0)


#: surface kinds :func:`parse_exit_surface` knows, with their parameters
SURFACE_KINDS: dict[str, str] = {"sphere": "sphere:RADIUS", "cylinder": "cylinder:RADIUS,LENGTH"}


def parse_exit_surface(text: str) -> ExitSurface:
    """An exit surface from a short description (mm): ``"sphere:210"`` (radius) or
    ``"cylinder:300,400"`` (radius, full length along z), centred on the origin, or on a
    centre given after them: ``"sphere:210,0,-20,5"``, ``"cylinder:300,400,0,0,10"``."""
    expected = "expected 'sphere:RADIUS[,CX,CY,CZ]' or 'cylinder:RADIUS,LENGTH[,CX,CY,CZ]' (mm)"
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"exit surface {text!r}: {expected}")
    kind, _, params = text.partition(":")
    kind = kind.strip().lower()
    if kind not in SURFACE_KINDS:
        close = difflib.get_close_matches(kind, list(SURFACE_KINDS), n=2)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(f"exit surface kind {kind!r} in {text!r}: {expected}{hint}")
    try:
        values = [float(v) for v in params.split(",")]
    except ValueError:
        raise ConfigError(f"exit surface {text!r}: {SURFACE_KINDS[kind]} takes comma-separated numbers (mm)") from None
    size = 1 if kind == "sphere" else 2
    if len(values) not in (size, size + 3):
        raise ConfigError(f"exit surface {text!r}: {expected}; got {len(values)} numbers")
    center = tuple(values[size:]) if len(values) == size + 3 else (0.0, 0.0, 0.0)
    if kind == "sphere":
        return SphereSurface(values[0], center=center)
    return CylinderSurface(values[0], 0.5 * _length(values[1], "cylinder length"), center=center)
