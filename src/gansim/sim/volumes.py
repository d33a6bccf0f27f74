"""Volumes: the attenuating object the photons cross, placed in the world.

The photon transport tracks one voxelised object (Woodcock tracking through a
:class:`~gansim.physics.phantoms.VoxelPhantom`), so a simulation holds at most one volume:
a voxelised phantom (a built-in one, a CT in Hounsfield units, a label image with
materials) or a simple shape rasterised on a voxel grid. Everything else is the world
material up to the exit surface.

Frames: each volume has a *local* frame (the built-in phantom centred on its origin, or
the image's own header for a CT) and a pose in the world, ``p_world = translation +
rotation @ p_local``. Sources attached to the volume (activity images, GAN conditions)
are given in its local frame and follow it when it moves; a GAN trained on a phantom at
rest generates in the local frame and its particles are placed in the world with the
same pose, once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gansim.errors import ConfigError
from gansim.physics.geometry import _vector, as_rotation
from gansim.physics.phantoms import VoxelPhantom, water_box, water_cylinder, water_sphere
from gansim.sim.dynamic import DynamicObject

__all__ = ["Volume", "PhantomVolume", "BoxVolume", "SphereVolume", "CylinderVolume"]


class Volume(DynamicObject):
    """A placed, voxelised object. Subclasses build the phantom in the local frame.

    Args:
        name: unique in the simulation.
        translation: (3,) mm.
        rotation: (3, 3) rotation matrix (see :func:`gansim.physics.geometry.rotation_matrix`).

    Dynamic parameters: ``translation``, ``rotation`` (one per run).
    """

    dynamic_parameters = frozenset({"translation", "rotation"})

    def __init__(self, name: str, *, translation: Sequence[float] | None = None, rotation: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"volume name {name!r}: expected a non-empty string")
        self.name = name
        self.translation = _vector(translation, f"volume {name!r} translation")
        self.rotation = as_rotation(rotation, f"volume {name!r} rotation")
        self._local: VoxelPhantom | None = None
        self.activity_map: np.ndarray | None = None  # built-in phantoms: their activity on the same grid
        self._init_dynamic()

    # -- pose -----------------------------------------------------------------------------
    def apply_dynamic(self, parameter: str, value: Any) -> None:
        if parameter == "translation":
            self.translation = _vector(value, f"volume {self.name!r} translation")
        elif parameter == "rotation":
            self.rotation = as_rotation(value, f"volume {self.name!r} rotation")
        else:
            raise ConfigError(f"{self._describe()}: {parameter!r} is not a dynamic parameter; expected one of {sorted(self.dynamic_parameters)}")

    def check_dynamic_value(self, parameter: str, value: Any, where: str) -> None:
        if parameter == "translation":
            _vector(value, f"{self._describe()} {where}")
        elif parameter == "rotation":
            as_rotation(value, f"{self._describe()} {where}")

    def points_to_world(self, points: torch.Tensor) -> torch.Tensor:
        """(n, 3) local mm -> world mm."""
        r = torch.as_tensor(self.rotation, dtype=points.dtype, device=points.device)
        t = torch.as_tensor(self.translation, dtype=points.dtype, device=points.device)
        return points @ r.T + t

    def directions_to_world(self, directions: torch.Tensor) -> torch.Tensor:
        """(n, 3) local unit vectors -> world unit vectors."""
        return directions @ torch.as_tensor(self.rotation, dtype=directions.dtype, device=directions.device).T

    # -- phantom --------------------------------------------------------------------------
    def local_phantom(self) -> VoxelPhantom:
        """The phantom at rest (identity pose), built once per image."""
        if self._local is None:
            self._local = self._build()
        return self._local

    def world_phantom(self, world_material: Any) -> VoxelPhantom:
        """The phantom placed at the current pose, surrounded by ``world_material``."""
        local = self.local_phantom()
        g = local.geometry
        # compose the volume's pose with any placement the phantom already had
        rotation = self.rotation @ g.rotation
        translation = self.translation + self.rotation @ g.translation
        return replace(local, geometry=g.placed(translation, rotation), world_material=world_material)

    def _build(self) -> VoxelPhantom:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class PhantomVolume(Volume):
    """A voxelised phantom: a built-in name, a CT image (Hounsfield units) or a label image.

    Args:
        image: ``"iec"``, ``"water-cylinder"``, ``"water-sphere"``, ``"water-box"``, an image file
            SimpleITK reads, or a :class:`VoxelPhantom`.
        spacing: voxel size (mm) of a built-in phantom.
        hu_table: Hounsfield table file for a CT (default: the Schneider-like table).
        labels: label -> material mapping (dict or JSON file) when the image holds labels.

    Dynamic parameters: ``translation``, ``rotation``, ``image`` (one image per run, same kinds
    as ``image``; with the same spacing/table/labels options).
    """

    dynamic_parameters = frozenset({"translation", "rotation", "image"})

    def __init__(
        self,
        name: str,
        image: str | Path | VoxelPhantom = "iec",
        *,
        spacing: float | None = None,
        hu_table: str | Path | None = None,
        labels: str | Path | dict[int, str] | None = None,
        translation: Sequence[float] | None = None,
        rotation: Any = None,
    ) -> None:
        super().__init__(name, translation=translation, rotation=rotation)
        self.image = image
        self.spacing, self.hu_table, self.labels = spacing, hu_table, labels

    def apply_dynamic(self, parameter: str, value: Any) -> None:
        if parameter == "image":
            self.image = value
            self._local = None  # rebuilt at the next use
            self.activity_map = None
        else:
            super().apply_dynamic(parameter, value)

    def check_dynamic_value(self, parameter: str, value: Any, where: str) -> None:
        if parameter == "image":
            from gansim.physics.phantoms import BUILTIN_PHANTOM_NAMES

            if not isinstance(value, (str, Path, VoxelPhantom)):
                raise ConfigError(f"{self._describe()} {where}: {value!r}: expected a built-in phantom name, an image file or a VoxelPhantom")
            if isinstance(value, (str, Path)) and str(value).strip().lower() not in BUILTIN_PHANTOM_NAMES and not Path(value).is_file():
                raise ConfigError(f"{self._describe()} {where}: {value!r} is neither a built-in phantom ({', '.join(BUILTIN_PHANTOM_NAMES)}) nor an existing image file")
        super().check_dynamic_value(parameter, value, where)

    def _build(self) -> VoxelPhantom:
        if isinstance(self.image, VoxelPhantom):
            return self.image
        from gansim.physics.scenario import build_phantom

        phantom, activity = build_phantom(str(self.image), spacing=self.spacing, hu_table=self.hu_table, labels=self.labels)
        self.activity_map = activity
        return phantom


class _ShapeVolume(Volume):
    def __init__(self, name: str, *, material: str, voxel_size: float, translation: Sequence[float] | None, rotation: Any) -> None:
        super().__init__(name, translation=translation, rotation=rotation)
        self.material = material
        if not (np.isfinite(voxel_size) and voxel_size > 0):
            raise ConfigError(f"volume {name!r} voxel_size {voxel_size!r}: expected a length > 0 mm")
        self.voxel_size = float(voxel_size)


class BoxVolume(_ShapeVolume):
    """A box of full side lengths ``size`` (mm) of ``material``, rasterised at ``voxel_size``."""

    def __init__(self, name: str, size: Sequence[float] | float, *, material: str = "G4_WATER", voxel_size: float = 4.0, translation: Sequence[float] | None = None, rotation: Any = None) -> None:
        super().__init__(name, material=material, voxel_size=voxel_size, translation=translation, rotation=rotation)
        self.size = size

    def _build(self) -> VoxelPhantom:
        phantom, self.activity_map = water_box(self.size, self.voxel_size, material=self.material)
        return phantom


class SphereVolume(_ShapeVolume):
    """A ball of ``radius`` (mm) of ``material``, rasterised at ``voxel_size``."""

    def __init__(self, name: str, radius: float, *, material: str = "G4_WATER", voxel_size: float = 4.0, translation: Sequence[float] | None = None, rotation: Any = None) -> None:
        super().__init__(name, material=material, voxel_size=voxel_size, translation=translation, rotation=rotation)
        self.radius = radius

    def _build(self) -> VoxelPhantom:
        phantom, self.activity_map = water_sphere(self.radius, self.voxel_size, material=self.material)
        return phantom


class CylinderVolume(_ShapeVolume):
    """A closed cylinder of ``radius`` and full ``height`` (mm) along local ``axis``, of ``material``."""

    def __init__(
        self, name: str, radius: float, height: float, *, axis: str = "z", material: str = "G4_WATER", voxel_size: float = 4.0,
        translation: Sequence[float] | None = None, rotation: Any = None,
    ) -> None:
        super().__init__(name, material=material, voxel_size=voxel_size, translation=translation, rotation=rotation)
        self.radius, self.height, self.axis = radius, height, axis

    def _build(self) -> VoxelPhantom:
        phantom, self.activity_map = water_cylinder(self.radius, self.height, self.voxel_size, self.axis, material=self.material)
        return phantom
