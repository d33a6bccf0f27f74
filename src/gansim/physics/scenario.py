"""From short descriptions (names, files, ``shape:numbers`` strings) to a ready Monte Carlo set-up.

This is what ``gansim mc`` calls; library users may call it too or build the objects
(:class:`~gansim.physics.phantoms.VoxelPhantom`, a position sampler,
:class:`~gansim.physics.emission.EmissionSource`, :class:`~gansim.physics.transport.PhotonTransport`)
themselves.

Phantom descriptions: a built-in name (``iec``, ``water-cylinder``, ``water-sphere``,
``water-box``) or an image file SimpleITK reads, holding CT numbers (HU, converted by a
Hounsfield table) or integer labels (with a label → material mapping).

Source descriptions: ``phantom`` (the built-in phantom's own activity map), ``point:X,Y,Z``,
``box:CX,CY,CZ,SX,SY,SZ`` (centre and full sizes), ``sphere:CX,CY,CZ,R`` (all mm), or an
activity image file (placed by its own header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.physics.cross_sections import CrossSectionTables
from gansim.physics.emission import EmissionSource
from gansim.physics.isotopes import get_isotope
from gansim.physics.materials import HUTable, default_hu_table, get_material
from gansim.physics.phantoms import BUILTIN_PHANTOM_NAMES, VoxelPhantom, builtin_phantom, phantom_from_ct, phantom_from_labels
from gansim.physics.sources import ActivityImageSource, BoxSource, PointSource, PositionSampler, SphereSource
from gansim.physics.surfaces import ExitSurface, SphereSurface, parse_exit_surface
from gansim.physics.transport import PhotonTransport
from gansim.units import deg, keV

__all__ = ["MCSetup", "build_phantom", "build_positions", "default_exit_surface", "source_extent", "build_mc"]

def _numbers(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated numbers (mm)") from None
    if len(values) != count or not all(np.isfinite(values)):
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated finite numbers (mm), got {len(values)}")
    return values


def build_phantom(
    spec: str,
    *,
    spacing: float | None = None,
    hu_table: str | Path | None = None,
    labels: str | Path | dict[int, str] | None = None,
    translation: Sequence[float] | None = None,
    rotation: np.ndarray | None = None,
    world_material: str = "G4_AIR",
) -> tuple[VoxelPhantom, np.ndarray | None]:
    """A phantom and, for built-in ones, its activity map ([i, j, k], relative, same grid).

    Args:
        spec: built-in name or image file (see the module docstring).
        spacing: voxel size (mm) of a built-in phantom; its default when None.
        hu_table: a Hounsfield table file (see :class:`~gansim.physics.materials.HUTable`) for a CT image.
        labels: a label image's mapping label → material name, as a dict or a JSON file; when
            given, the image holds labels instead of CT numbers.
        translation: placement of the phantom in the world (mm), applied after its own
            header (image files) or centring (built-in phantoms).
        rotation: (3, 3) placement rotation, applied about the world origin after the header.
        world_material: what fills the space between the phantom and the exit surface.
    """
    name = spec.strip().lower()
    if name in BUILTIN_PHANTOM_NAMES:
        if hu_table is not None or labels is not None:
            raise ConfigError(f"phantom {spec!r} is built in: a Hounsfield table or a label mapping applies to image files only")
        phantom, activity = builtin_phantom(name, spacing=spacing)
        if translation is not None or rotation is not None:
            phantom.geometry = phantom.geometry.placed(translation, rotation)
    else:
        if spacing is not None:
            raise ConfigError(f"phantom {spec!r} is an image file: its voxel size comes from its header; spacing applies to built-in phantoms only")
        path = Path(spec)
        if not path.exists():
            import difflib

            close = difflib.get_close_matches(name, list(BUILTIN_PHANTOM_NAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"phantom {spec!r}: neither a built-in phantom ({', '.join(BUILTIN_PHANTOM_NAMES)}) nor an existing image file{hint}")
        if labels is not None:
            mapping = _read_labels(labels)
            phantom = phantom_from_labels(path, mapping, translation=translation, rotation=rotation)
        else:
            table = HUTable.from_file(hu_table) if hu_table is not None else default_hu_table()
            phantom = phantom_from_ct(path, table, translation=translation, rotation=rotation)
        activity = None
    phantom.world_material = get_material(world_material)
    return phantom, activity


def _read_labels(labels: str | Path | dict[int, str]) -> dict[int, str]:
    if isinstance(labels, dict):
        return {int(k): v for k, v in labels.items()}
    path = Path(labels)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: label table not found") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); expected an object {{label: material name}}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object {{label: material name}}, got {type(raw).__name__}")
    out: dict[int, str] = {}
    for key, value in raw.items():
        try:
            out[int(key)] = str(value)
        except ValueError:
            raise DataError(f"{path}: label {key!r} is not an integer") from None
    return out


def build_positions(
    spec: str,
    *,
    activity: np.ndarray | None,
    phantom: VoxelPhantom,
    device: torch.device,
    translation: Sequence[float] | None = None,
    rotation: np.ndarray | None = None,
) -> PositionSampler:
    """A decay-point sampler from a source description (see the module docstring).

    An activity image file is placed like the phantom (``translation``/``rotation`` after its
    own header): the two images describe one patient and move together. Shapes are in world mm.
    """
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if text.lower() == "phantom":
        if activity is None:
            raise ConfigError("source 'phantom' uses a built-in phantom's activity map; this phantom has none: give point:, box:, sphere: or an activity image")
        return ActivityImageSource(activity, phantom.geometry, device=device)
    if kind == "point" and rest:
        return PointSource(_numbers(rest, 3, "point source"), device=device)
    if kind == "box" and rest:
        v = _numbers(rest, 6, "box source")
        return BoxSource(v[:3], v[3:], device=device)
    if kind == "sphere" and rest:
        v = _numbers(rest, 4, "sphere source")
        return SphereSource(v[:3], v[3], device=device)
    path = Path(text)
    if path.exists():
        return ActivityImageSource.from_file(path, translation=translation, rotation=rotation, device=device)
    raise ConfigError(f"source {spec!r}: expected 'phantom', 'point:X,Y,Z', 'box:CX,CY,CZ,SX,SY,SZ', 'sphere:CX,CY,CZ,R' (mm) or an existing activity image file")


def default_exit_surface(phantom: VoxelPhantom, margin: float = 10.0) -> ExitSurface:
    """A sphere about the phantom image's centre enclosing it, radius rounded up to 10 mm.

    Centred on the image, not the world origin: a CT whose scanner origin lies a metre
    away still gets a surface just around the patient.
    """
    corners = phantom.geometry.corners()
    center = 0.5 * (corners.min(axis=0) + corners.max(axis=0))
    radius = float(np.linalg.norm(corners - center, axis=1).max()) + margin
    return SphereSurface(float(np.ceil(radius / 10.0) * 10.0), center=tuple(float(c) for c in center))


def source_extent(positions: PositionSampler) -> np.ndarray:
    """World points (M, 3) mm whose convex hull holds every decay point the sampler can give."""
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    if isinstance(positions, PointSource):
        return positions.center.double().cpu().numpy().reshape(1, 3)
    if isinstance(positions, SphereSource):
        c = positions.center.double().cpu().numpy()
        # points on the sphere along the axes and the diagonals (a convex-surface check on
        # these catches any sphere poking out of a sphere or cylinder surface)
        dirs = np.concatenate([np.eye(3), -np.eye(3), signs / np.sqrt(3.0)])
        return c + float(positions.radius) * dirs
    if isinstance(positions, BoxSource):
        half = 0.5 * positions.size.double().cpu().numpy()
        rot = positions.rotation.double().cpu().numpy()
        return positions.center.double().cpu().numpy() + (signs * half) @ rot.T
    if isinstance(positions, ActivityImageSource):
        return positions.geometry.corners()
    raise ConfigError(f"source {positions!r}: unknown position sampler")


@dataclass
class MCSetup:
    """Everything a run needs."""

    phantom: VoxelPhantom
    transport: PhotonTransport
    source: EmissionSource
    surface: ExitSurface


def build_mc(
    *,
    phantom: str = "iec",
    spacing: float | None = None,
    hu_table: str | Path | None = None,
    labels: str | Path | dict[int, str] | None = None,
    world_material: str = "G4_AIR",
    isotope: str | None = "Tc99m",
    energy: float | None = None,
    source: str = "phantom",
    exit_surface: str | None = None,
    translation: Sequence[float] | None = None,
    rotation: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    photoelectric: bool = True,
    compton: bool = True,
    rayleigh: bool = True,
    incoherent_scattering_function: bool = True,
    acollinearity_fwhm: float = 0.5 * deg,
    positron_range: bool = False,
    energy_cut: float = 1 * keV,
) -> MCSetup:
    """Build phantom, source and transport from descriptions (energies in MeV, angles in rad).

    Compton uses the incoherent scattering function by default (binding effects: water's
    attenuation within 0.1 % of XCOM at 140 keV, against +0.7 % for free electrons).
    ``translation``/``rotation`` place the phantom (and an activity image file with it).
    """
    from gansim.training.device import resolve_device

    dev = resolve_device(device)
    ph, activity = build_phantom(phantom, spacing=spacing, hu_table=hu_table, labels=labels, world_material=world_material, translation=translation, rotation=rotation)
    surface = parse_exit_surface(exit_surface) if exit_surface else default_exit_surface(ph)
    positions = build_positions(source, activity=activity, phantom=ph, device=dev, translation=translation, rotation=rotation)
    surface.check_encloses(source_extent(positions), f"the source {source!r}")
    iso = get_isotope(isotope) if isotope else None
    emission = EmissionSource(positions, isotope=iso, energy=energy, acollinearity_fwhm=acollinearity_fwhm, positron_range=positron_range)
    e_max = max(2.0, 1.01 * emission.max_energy)
    tables = CrossSectionTables(
        ph.all_materials, device=dev, e_min=min(1 * keV, energy_cut), e_max=e_max, photoelectric=photoelectric,
        compton=compton, rayleigh=rayleigh, incoherent_scattering_function=incoherent_scattering_function,
    )
    transport = PhotonTransport(ph, surface, tables, energy_cut=energy_cut)
    return MCSetup(ph, transport, emission, surface)

