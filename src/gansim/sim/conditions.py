"""Condition generators for conditional GAN sources: the per-decay inputs a GAN is conditioned on.

A conditional GAN source (GATE's ``VoxelizedSourceConditionGenerator`` with
``compute_directions``) needs, for every decay of a particle batch, the emission point
(and, optionally, an emission direction). These are handed to the GAN **by name**, as a
``dict`` of (n,) float32 tensors whose keys are the GAN's condition columns, so a model
trained with columns in another order still gets the right values.

- :class:`VoxelizedConditionGenerator`: points distributed like an activity image
  (uniform inside each voxel), placed by its translation/rotation; optional isotropic
  directions and constant columns.

Frames: "world" below means the frame the generator's output lives in. A
:class:`~gansim.sim.sources.GANSource` reads conditions in the frame the GAN was trained
in, the local frame of the volume it is attached to (the phantom at rest), and places
particles *and* conditions in the simulation world with the volume's pose, once. So give
the activity image's placement relative to the phantom, not the volume's pose again.
- :class:`FunctionConditionGenerator`: a user function, its output validated.
- :func:`as_condition_generator`: a generator from a path or an existing generator.

GATE's defects this module avoids (``shared/reference/gate_gan_source.md`` §A.4): the x and
z spacings swapped for anisotropic voxels (here the geometry maps ``[i, j, k]`` through
spacing, direction cosines and origin of the image's own header), the user's random state
discarded (here every draw comes from the ``torch.Generator`` passed to ``generate``), a
2^24-voxel limit of ``torch.multinomial`` (here the cumulative-sum sampler of
:class:`~gansim.physics.sources.ActivityImageSource`) and translation-only placement (here a
translation and a rotation).

Units: mm for positions, unit vectors for directions (``gansim.units``).
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.io.images import read_scalar_image
from gansim.physics.geometry import ImageGeometry
from gansim.physics.sources import ActivityImageSource, isotropic_directions

__all__ = [
    "ConditionGenerator",
    "VoxelizedConditionGenerator",
    "FunctionConditionGenerator",
    "as_condition_generator",
    "POSITION_KEYS",
    "DIRECTION_KEYS",
]

#: Default names of the emission point columns (mm, world frame), as in GATE's GAN sources.
POSITION_KEYS: tuple[str, str, str] = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")
#: Default names of the emission direction columns (unit vector).
DIRECTION_KEYS: tuple[str, str, str] = ("EventDirection_X", "EventDirection_Y", "EventDirection_Z")

#: What ``VoxelizedConditionGenerator`` accepts as an image.
ImageInput = Union[str, os.PathLike, tuple[Any, ImageGeometry], ActivityImageSource]


# -- helpers ------------------------------------------------------------------------------
def _count(n: int, who: str) -> int:
    """``n`` as an int >= 0, or a ConfigError naming the generator ``who``."""
    # bool is an int subclass; generate(True) is surely a mistake
    if isinstance(n, bool) or not isinstance(n, (int, np.integer, float)) or int(n) != n or n < 0:
        raise ConfigError(f"{who}.generate: number of conditions {n!r}: expected an integer >= 0")
    return int(n)


def _key_names(keys: Sequence[str], who: str, what: str, length: int | None = None) -> tuple[str, ...]:
    """Validate a list of column names: strings, non-empty, distinct (and ``length`` of them)."""
    # a bare string is a Sequence of characters: "XYZ" would silently give keys X, Y, Z
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        raise ConfigError(f"{who}: {what} {keys!r}: expected a list of column names")
    names = tuple(keys)
    if length is not None and len(names) != length:
        raise ConfigError(f"{who}: {what} {list(names)!r}: expected exactly {length} column names (x, y, z), got {len(names)}")
    if not names:
        raise ConfigError(f"{who}: {what} is empty: expected at least one column name")
    bad = [k for k in names if not isinstance(k, str) or not k]
    if bad:
        raise ConfigError(f"{who}: {what} {list(names)!r}: every column name must be a non-empty string, got {bad!r}")
    duplicates = sorted({k for k in names if names.count(k) > 1})
    if duplicates:
        raise ConfigError(f"{who}: {what} {list(names)!r}: column names must be distinct, repeated: {duplicates}")
    return names


def _same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two devices are the same ("cuda" and "cuda:0" are, when one has no index)."""
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _check_generator_device(generator: torch.Generator, device: torch.device, who: str) -> None:
    """ConfigError unless ``generator`` draws on ``device`` (torch would fail later with a less clear message)."""
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"{who}.generate: generator {generator!r}: expected a torch.Generator (seed it for reproducible conditions)")
    g = torch.device(generator.device)
    if not _same_device(g, device):
        raise ConfigError(f"{who}.generate: the generator is on {g} but the conditions are made on {device}: create the torch.Generator on {device}")


# -- the protocol ---------------------------------------------------------------------------
class ConditionGenerator(ABC):
    """Makes the GAN's condition columns for ``n`` decays at a time.

    Attributes:
        keys: the column names ``generate`` returns, in a fixed order.
        device: where the returned tensors live.
    """

    keys: tuple[str, ...]
    device: torch.device

    @abstractmethod
    def generate(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Conditions of ``n`` decays: ``{key: (n,) float32 tensor on self.device}`` for every key.

        Positions are world-frame mm, directions unit vectors. Every random draw comes
        from ``generator``, so the same seed gives the same conditions.
        """


# -- voxelised activity ---------------------------------------------------------------------
class VoxelizedConditionGenerator(ConditionGenerator):
    """Emission points (and isotropic directions) of decays distributed like an activity image.

    A point is drawn in two steps by the image's :class:`ActivityImageSource`: a voxel with
    probability activity / total, then a uniform point inside that voxel. It is placed in
    the world as ``p = t + R (origin + D diag(spacing) index)`` (see
    :mod:`gansim.physics.geometry`), which is right for anisotropic voxels and direction
    cosines.

    Args:
        image: the activity image, one of
            - a path SimpleITK reads (.mha/.mhd, .nii/.nii.gz, .nrrd): geometry (spacing,
              origin, direction cosines) from its header;
            - ``(array, ImageGeometry)`` with ``array`` indexed [i, j, k], shape ``geometry.shape``;
            - an :class:`ActivityImageSource` (its tables are shared, not copied).
            Voxels must be finite, >= 0 and not all zero (any unit: only ratios matter).
        translation: (3,) mm, where the image frame is placed in the world. None: the
            input's own (an ImageGeometry's or ActivityImageSource's translation; zero for a file).
        rotation: (3, 3) orthonormal, applied about the world origin before ``translation``.
            None: the input's own (identity for a file).
        use_image_origin: True, the image sits where its origin puts it (in the image
            frame); False, it is centred on the image-frame origin (GATE's default): the
            centre of the voxel grid maps to 0, direction cosines and spacing kept.
        compute_directions: also return isotropic unit directions under ``direction_keys``.
        position_keys, direction_keys: 3 distinct column names each (x, y, z).
        constants: extra columns with one value each (``{"EventKineticEnergy": 0.1405}``),
            returned as filled (n,) tensors.
        device: where the sampling tables live and the conditions are made; the generator
            passed to ``generate`` must be on it.

    Attributes:
        keys: position keys, then direction keys (with ``compute_directions``), then the
            constants' names in their given order.
        total_activity: sum of the image's voxels (the image's unit).
        n_active: number of voxels with activity > 0.
        geometry: the image as placed in the world (:class:`ImageGeometry`).

    Raises:
        ConfigError: a bad option (key lists, constants, pose, image input type).
        DataError: an unreadable file or invalid voxels (negative, NaN/Inf, all zero).
    """

    _name = "VoxelizedConditionGenerator"

    def __init__(
        self,
        image: ImageInput,
        *,
        translation: Sequence[float] | np.ndarray | None = None,
        rotation: Sequence[Sequence[float]] | np.ndarray | None = None,
        use_image_origin: bool = True,
        compute_directions: bool = False,
        position_keys: Sequence[str] = POSITION_KEYS,
        direction_keys: Sequence[str] = DIRECTION_KEYS,
        constants: Mapping[str, float] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        who = self._name
        self.device = torch.device(device)
        self.use_image_origin = bool(use_image_origin)
        self.compute_directions = bool(compute_directions)
        self.position_keys = _key_names(position_keys, who, "position_keys", 3)
        self.direction_keys = _key_names(direction_keys, who, "direction_keys", 3)
        base_keys = self.position_keys
        if self.compute_directions:
            shared = sorted(set(self.position_keys) & set(self.direction_keys))
            if shared:
                raise ConfigError(f"{who}: position_keys and direction_keys share {shared}: each column needs its own name")
            base_keys = base_keys + self.direction_keys
        self.constants = self._check_constants(constants, base_keys)
        self.keys = base_keys + tuple(self.constants)
        # the values of the constant columns, made once (generate only expands them)
        self._constant_values = {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in self.constants.items()}

        self._load(image)
        # None keeps the input's own pose: silently dropping a pose the user set on an
        # ImageGeometry would put the source in the wrong place
        own = self._input_pose
        self.set_pose(own[0] if translation is None else translation, own[1] if rotation is None else rotation)

    # -- options ------------------------------------------------------------------------
    def _check_constants(self, constants: Mapping[str, float] | None, taken: tuple[str, ...]) -> dict[str, float]:
        who = self._name
        if constants is None:
            return {}
        if not isinstance(constants, Mapping):
            raise ConfigError(f"{who}: constants {constants!r}: expected a mapping {{column name: value}}")
        out: dict[str, float] = {}
        for name, value in constants.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{who}: constants: column name {name!r} must be a non-empty string")
            if name in taken:
                raise ConfigError(f"{who}: constant column {name!r} clashes with a position/direction column {list(taken)}: give it another name")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{who}: constant {name!r} = {value!r}: expected one finite number") from None
            if isinstance(value, bool) or not math.isfinite(number):
                raise ConfigError(f"{who}: constant {name!r} = {value!r}: expected one finite number")
            out[name] = number
        return out

    # -- the image --------------------------------------------------------------------------
    def _frame(self, geometry: ImageGeometry) -> ImageGeometry:
        """The image in its own frame (identity pose), centred on 0 unless ``use_image_origin``."""
        if self.use_image_origin:
            origin = geometry.origin
        else:
            # the centre of the grid, index (shape - 1) / 2, must map to 0:
            # origin + D diag(s) c = 0. ImageGeometry.centred assumes D = I, so build it here
            centre = 0.5 * (np.asarray(geometry.shape, dtype=np.float64) - 1.0)
            origin = -(geometry.direction @ (geometry.spacing * centre))
        return ImageGeometry(geometry.shape, geometry.spacing.copy(), origin, geometry.direction.copy())

    def _load(self, image: ImageInput) -> None:
        """Set the sampler, its native geometry, the image frame and the input's own pose."""
        who = self._name
        if isinstance(image, ActivityImageSource):
            if not _same_device(image.device, self.device):
                raise ConfigError(f"{who}: the ActivityImageSource is on {image.device} but the generator's device is {self.device}: build it on {self.device}")
            # its tables cannot be rebuilt (it keeps no array), so a different frame/pose is
            # applied to its samples afterwards (see set_pose)
            sampler, native = image, image.geometry
        elif isinstance(image, (str, os.PathLike)):
            try:
                sitk_image, array = read_scalar_image(image, "activity image")
                native = ImageGeometry.from_sitk(sitk_image)
            except (ConfigError, DataError) as err:
                raise DataError(f"{who}: {err}") from None
            sampler = self._sampler(array, self._frame(native), f"activity image {Path(image)}")
        elif isinstance(image, tuple) and len(image) == 2 and isinstance(image[1], ImageGeometry):
            array, native = image
            sampler = self._sampler(array, self._frame(native), "activity image (array)")
        else:
            raise ConfigError(
                f"{who}: image {type(image).__name__}: expected a path to a 3-D image SimpleITK reads (.mha, .nii.gz...), "
                "an (array [i, j, k], ImageGeometry) pair, or an ActivityImageSource"
            )
        self._sampler_geometry = sampler.geometry
        self._sampler_obj = sampler
        self._image_frame = self._frame(native)
        self._input_pose = (native.translation.copy(), native.rotation.copy())

    def _sampler(self, array: Any, frame: ImageGeometry, what: str) -> ActivityImageSource:
        # built directly in the (possibly centred) frame, so without a pose its float32
        # samples are returned untouched and with one only R p + t is applied
        try:
            return ActivityImageSource(array, frame, device=self.device)
        except (ConfigError, DataError) as err:
            raise DataError(f"{self._name}: {what}: {err}") from None

    def update_image(self, image: ImageInput) -> None:
        """Replace the activity image (same inputs as the constructor), keeping the pose and options.

        The current translation/rotation stay (any pose of the new input is ignored:
        the pose belongs to the generator, moved by :meth:`set_pose`). Used by dynamic
        parametrisation, one image per run. On an error the old image is kept.
        """
        translation, rotation = self._translation, self._rotation
        # _load assigns nothing until the new image is valid, so a failure keeps the old one
        self._load(image)
        self.set_pose(translation, rotation)

    def set_pose(self, translation: Sequence[float] | np.ndarray | None = None, rotation: Sequence[Sequence[float]] | np.ndarray | None = None) -> None:
        """Place the image frame in the world: ``p = translation + rotation @ p_image``.

        Args:
            translation: (3,) mm; None is zero.
            rotation: (3, 3) orthonormal, about the world origin; None is the identity.
        """
        who = self._name
        try:
            placed = self._image_frame.placed(translation, rotation)
        except ConfigError as err:
            raise ConfigError(f"{who}: pose: {err}") from None
        self._translation, self._rotation = placed.translation, placed.rotation
        self._geometry = placed
        # The sampler returns p_n = t_n + R_n (o_n + D S idx); the wanted point is
        # p = t + R (o + D S idx) with the same D and S (the frame is made from the
        # sampler's image), so p = M p_n + c with M = R R_n^T, c = t - M t_n + R (o - o_n).
        native = self._sampler_geometry
        m = placed.rotation @ native.rotation.T
        c = placed.translation - m @ native.translation + placed.rotation @ (placed.origin - native.origin)
        if np.array_equal(m, np.eye(3)) and not np.any(c):
            self._affine: tuple[torch.Tensor, torch.Tensor] | None = None  # the sampler's points as they are
        else:
            self._affine = (
                torch.as_tensor(m, dtype=torch.float64, device=self.device),
                torch.as_tensor(c, dtype=torch.float64, device=self.device),
            )

    # -- attributes -------------------------------------------------------------------------
    @property
    def geometry(self) -> ImageGeometry:
        """The image as placed in the world (shape, spacing, origin, direction cosines, pose)."""
        return self._geometry

    @property
    def translation(self) -> np.ndarray:
        """(3,) mm, the current placement of the image frame."""
        return self._translation.copy()

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3), the current rotation of the image frame about the world origin."""
        return self._rotation.copy()

    @property
    def total_activity(self) -> float:
        """Sum of the image's voxels (the image's unit)."""
        return self._sampler_obj.total_activity

    @property
    def n_active(self) -> int:
        """Number of voxels with activity > 0."""
        return self._sampler_obj.n_active

    # -- sampling ---------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Conditions of ``n`` decays: each key -> (n,) float32 on ``self.device``.

        Draw order (fixed, so a seed reproduces a run): the sampler's voxel choice and
        jitter, then (with ``compute_directions``) the directions. Directions are not
        rotated with the image: an isotropic distribution is the same in every frame.
        """
        who = self._name
        n = _count(n, who)
        _check_generator_device(generator, self.device, who)
        points = self._sampler_obj.sample(n, generator)  # (n, 3) float32 mm
        if self._affine is not None:
            m, c = self._affine
            # in float64: the rotation and translation add no rounding beyond the final cast
            points = (points.to(torch.float64) @ m.T + c).to(torch.float32)
        out: dict[str, torch.Tensor] = {}
        # one transpose copy gives three contiguous columns instead of three strided views
        for key, column in zip(self.position_keys, points.T.contiguous().unbind(0)):
            out[key] = column
        if self.compute_directions:
            directions = isotropic_directions(n, generator, self.device)
            for key, column in zip(self.direction_keys, directions.T.contiguous().unbind(0)):
                out[key] = column
        for key, value in self._constant_values.items():
            out[key] = value.expand(n).clone()
        return out

    def __repr__(self) -> str:
        return (
            f"{self._name}(shape={self._geometry.shape}, n_active={self.n_active}, keys={list(self.keys)}, "
            f"use_image_origin={self.use_image_origin}, device={self.device})"
        )


# -- user function --------------------------------------------------------------------------
class FunctionConditionGenerator(ConditionGenerator):
    """Conditions made by a user function, checked before they reach the GAN.

    Args:
        function: ``function(n, generator) -> {key: array-like or tensor of shape (n,)}``;
            it should draw only from ``generator`` to be reproducible.
        keys: the columns it must return (exactly these: a missing or an extra key is an
            error, an extra one is most likely a mistyped name).
        device: where the returned tensors are put (float32).

    Raises (from ``generate``):
        DataError: not a mapping, missing or extra keys, a value not of shape (n,), not
            real numbers, or NaN/Inf (as float32); the message names the function and the key.
    """

    _name = "FunctionConditionGenerator"

    def __init__(self, function: Callable[[int, torch.Generator], Mapping[str, Any]], keys: Sequence[str], *, device: str | torch.device = "cpu") -> None:
        if not callable(function):
            raise ConfigError(f"{self._name}: function {function!r}: expected a callable function(n, generator) -> {{key: values}}")
        self.function = function
        self.keys = _key_names(keys, self._name, "keys")
        self.device = torch.device(device)
        self._label = f"{self._name}({getattr(function, '__name__', repr(function))})"

    def generate(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Call the function and validate its output: each key -> (n,) float32 on ``self.device``."""
        who = self._label
        n = _count(n, self._name)
        result = self.function(n, generator)
        if not isinstance(result, Mapping):
            raise DataError(f"{who} returned {type(result).__name__}: expected a mapping {{key: (n,) values}} with keys {list(self.keys)}")
        missing = [k for k in self.keys if k not in result]
        if missing:
            raise DataError(f"{who} returned no {missing}: expected the keys {list(self.keys)}, got {list(result)}")
        extra = [k for k in result if k not in self.keys]
        if extra:
            raise DataError(f"{who} returned unexpected keys {extra} (mistyped?): expected exactly {list(self.keys)}")
        return {key: self._column(key, result[key], n) for key in self.keys}

    def _column(self, key: str, value: Any, n: int) -> torch.Tensor:
        who = self._label
        if isinstance(value, torch.Tensor):
            if value.is_complex():
                raise DataError(f"{who}: key {key!r}: expected real numbers, got dtype {value.dtype}")
            tensor = value.detach()
        else:
            array = np.asarray(value)
            if array.dtype != np.bool_ and (not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array)):
                raise DataError(f"{who}: key {key!r}: expected real numbers, got {type(value).__name__} of dtype {array.dtype}")
            # cast in NumPy: torch has no tensors for some NumPy dtypes (uint32 on older versions)
            with np.errstate(over="ignore"):
                tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if tuple(tensor.shape) != (n,):
            raise DataError(f"{who}: key {key!r}: expected shape ({n},) for n = {n}, got {tuple(tensor.shape)}")
        # checked after the float32 cast, so a float64 value too large for float32 is caught too
        tensor = tensor.to(device=self.device, dtype=torch.float32)
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            first = int(torch.nonzero(bad)[0, 0])
            raise DataError(
                f"{who}: key {key!r} has {int(bad.sum())} non-finite values (NaN/Inf as float32), first at row {first} ({float(tensor[first])!r})"
            )
        return tensor


def as_condition_generator(value: ConditionGenerator | str | os.PathLike) -> ConditionGenerator:
    """A condition generator from ``value``: a ConditionGenerator (returned as is) or a path to an
    activity image (a :class:`VoxelizedConditionGenerator` with the header's placement, on CPU).

    Raises:
        ConfigError: anything else.
    """
    if isinstance(value, ConditionGenerator):
        return value
    if isinstance(value, (str, os.PathLike)):
        return VoxelizedConditionGenerator(value)
    raise ConfigError(
        f"condition generator {type(value).__name__}: expected a ConditionGenerator (VoxelizedConditionGenerator, "
        "FunctionConditionGenerator...) or the path of an activity image (.mha, .nii.gz...) for a VoxelizedConditionGenerator"
    )
