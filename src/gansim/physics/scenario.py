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
from gansim.physics.phantoms import VoxelPhantom, builtin_phantom, phantom_from_ct, phantom_from_labels
from gansim.physics.sources import ActivityImageSource, BoxSource, PointSource, PositionSampler, SphereSource
from gansim.physics.surfaces import ExitSurface, SphereSurface, parse_exit_surface
from gansim.physics.transport import PhotonTransport
from gansim.units import deg, keV

__all__ = ["BUILTIN_PHANTOMS", "MCSetup", "build_phantom", "build_positions", "default_exit_surface", "build_mc"]

BUILTIN_PHANTOMS = ("iec", "water-cylinder", "water-sphere", "water-box")


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
    world_material: str = "G4_AIR",
) -> tuple[VoxelPhantom, np.ndarray | None]:
    """A phantom and, for built-in ones, its activity map ([i, j, k], relative, same grid).

    Args:
        spec: built-in name or image file (see the module docstring).
        spacing: voxel size (mm) of a built-in phantom; its default when None.
        hu_table: a Hounsfield table file (see :class:`~gansim.physics.materials.HUTable`) for a CT image.
        labels: a label image's mapping label → material name, as a dict or a JSON file; when
            given, the image holds labels instead of CT numbers.
        translation: placement of an image file in the world (mm).
        world_material: what fills the space between the phantom and the exit surface.
    """
    name = spec.strip().lower()
    if name in BUILTIN_PHANTOMS:
        phantom, activity = builtin_phantom(name, spacing=spacing)
    else:
        path = Path(spec)
        if not path.exists():
            import difflib

            close = difflib.get_close_matches(name, BUILTIN_PHANTOMS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"phantom {spec!r}: neither a built-in phantom ({', '.join(BUILTIN_PHANTOMS)}) nor an existing image file{hint}")
        if labels is not None:
            mapping = _read_labels(labels)
            phantom = phantom_from_labels(path, mapping, translation=translation)
        else:
            table = HUTable.from_file(hu_table) if hu_table is not None else default_hu_table()
            phantom = phantom_from_ct(path, table, translation=translation)
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


def build_positions(spec: str, *, activity: np.ndarray | None, phantom: VoxelPhantom, device: torch.device) -> PositionSampler:
    """A decay-point sampler from a source description (see the module docstring)."""
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
        return ActivityImageSource.from_file(path, device=device)
    raise ConfigError(f"source {spec!r}: expected 'phantom', 'point:X,Y,Z', 'box:CX,CY,CZ,SX,SY,SZ', 'sphere:CX,CY,CZ,R' (mm) or an existing activity image file")


def default_exit_surface(phantom: VoxelPhantom, margin: float = 10.0) -> ExitSurface:
    """A sphere about the world origin enclosing the phantom image, radius rounded up to 10 mm."""
    radius = float(np.linalg.norm(phantom.geometry.corners(), axis=1).max()) + margin
    return SphereSurface(float(np.ceil(radius / 10.0) * 10.0))


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
    device: str | torch.device = "cpu",
    photoelectric: bool = True,
    compton: bool = True,
    rayleigh: bool = True,
    incoherent_scattering_function: bool = False,
    acollinearity_fwhm: float = 0.5 * deg,
    positron_range: bool = False,
    energy_cut: float = 1 * keV,
) -> MCSetup:
    """Build phantom, source and transport from descriptions (energies in MeV, angles in rad)."""
    from gansim.training.device import resolve_device

    dev = resolve_device(device)
    ph, activity = build_phantom(phantom, spacing=spacing, hu_table=hu_table, labels=labels, world_material=world_material)
    surface = parse_exit_surface(exit_surface) if exit_surface else default_exit_surface(ph)
    positions = build_positions(source, activity=activity, phantom=ph, device=dev)
    iso = get_isotope(isotope) if isotope else None
    emission = EmissionSource(positions, isotope=iso, energy=energy, acollinearity_fwhm=acollinearity_fwhm, positron_range=positron_range)
    e_max = max(2.0, 1.01 * emission.max_energy)
    tables = CrossSectionTables(
        ph.all_materials, device=dev, e_min=min(1 * keV, energy_cut), e_max=e_max, photoelectric=photoelectric,
        compton=compton, rayleigh=rayleigh, incoherent_scattering_function=incoherent_scattering_function,
    )
    transport = PhotonTransport(ph, surface, tables, energy_cut=energy_cut)
    return MCSetup(ph, transport, emission, surface)

