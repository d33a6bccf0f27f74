"""The analog source: decays of an isotope, photons transported by the Monte Carlo to the exit surface.

This is the reference a GAN source is compared with: the same physics as ``gansim mc``
(:mod:`gansim.physics`), run inside a simulation so that runs, dynamic parameters and
actors apply to it as to a GAN source.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError
from gansim.physics.cross_sections import CrossSectionTables
from gansim.physics.emission import EmissionSource
from gansim.physics.geometry import ImageGeometry
from gansim.physics.isotopes import get_isotope
from gansim.physics.mc import MCSummary, iter_mc_chunks
from gansim.physics.scenario import _numbers
from gansim.physics.sources import ActivityImageSource, BoxSource, PointSource, PositionSampler, SphereSource
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, EventCounts, ParticleBatch
from gansim.sim.sources.base import Source, SourceRun
from gansim.units import deg, keV

__all__ = ["AnalogSource"]


class AnalogSource(Source):
    """Decays of ``isotope`` distributed like an activity image or a shape, transported photon by photon.

    Args:
        name: unique in the simulation.
        isotope: ``Tc99m``, ``I123``, ``In111``, ``Lu177``, ``I131`` (single photons from their
            lines), ``F18``, ``Ga68`` (annihilation pairs); or None with ``energy``.
        energy: mono-energetic photons (MeV) instead of the isotope's lines.
        activity_image: where decays happen, in the volume's local frame: ``"phantom"`` (a
            built-in phantom's own activity map), an image file (placed by its header), or
            ``(array [i, j, k], ImageGeometry)``. Or
        shape: ``"point:X,Y,Z"``, ``"box:CX,CY,CZ,SX,SY,SZ"``, ``"sphere:CX,CY,CZ,R"`` (mm, local frame).
        activity: Bq at time 0 (gansim units), or ``n`` primaries per run; the half-life is
            the isotope's.
        acollinearity_fwhm, positron_range: for pairs (see :class:`~gansim.physics.emission.EmissionSource`).
        photoelectric, compton, rayleigh, incoherent_scattering_function, energy_cut: the physics
            (see :class:`~gansim.physics.cross_sections.CrossSectionTables`).
        chunk_size: events per transport chunk (memory ~1.5 KB per event in flight).

    Dynamic parameters: ``activity``, ``n``, ``activity_image`` (one per run).

    Particle batches hold the exit photons with :data:`PARTICLE_COLUMNS` and the decay's
    :data:`EVENT_COLUMNS`; events in which nothing leaves are counted as ``zero_energy``.
    """

    dynamic_parameters = frozenset({"activity", "n", "activity_image"})

    def __init__(
        self,
        name: str,
        *,
        isotope: str | None = "Tc99m",
        energy: float | None = None,
        activity_image: Any = None,
        shape: str | None = None,
        activity: float | None = None,
        n: int | None = None,
        attached_to: str | None = None,
        acollinearity_fwhm: float = 0.5 * deg,
        positron_range: bool = False,
        photoelectric: bool = True,
        compton: bool = True,
        rayleigh: bool = True,
        incoherent_scattering_function: bool = True,
        energy_cut: float = 1 * keV,
        chunk_size: int = 1 << 18,
    ) -> None:
        self.isotope = get_isotope(isotope) if isotope else None
        super().__init__(name, activity=activity, n=n, half_life=None if self.isotope is None else self.isotope.half_life, attached_to=attached_to)
        if (activity_image is None) == (shape is None):
            raise ConfigError(f"source {name!r}: give either an activity_image or a shape, exactly one")
        self.activity_image = activity_image
        self.shape = shape
        self.energy = energy
        self.acollinearity_fwhm = acollinearity_fwhm
        self.positron_range = positron_range
        self.physics = {"photoelectric": photoelectric, "compton": compton, "rayleigh": rayleigh, "incoherent_scattering_function": incoherent_scattering_function}
        self.energy_cut = float(energy_cut)
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ConfigError(f"source {name!r} chunk_size {chunk_size!r}: expected an integer >= 1")
        self.chunk_size = int(chunk_size)
        self._tables: dict[tuple[str, ...], CrossSectionTables] = {}
        self._image_cache: tuple[Any, tuple[np.ndarray, ImageGeometry]] | None = None
        # one emission model whatever the positions: checks the isotope/energy/pairs choice now
        self._emission_args = dict(isotope=self.isotope, energy=energy, acollinearity_fwhm=acollinearity_fwhm, positron_range=positron_range)
        self._events_per_decay = EmissionSource(PointSource((0.0, 0.0, 0.0)), **self._emission_args).events_per_decay  # type: ignore[arg-type]
        self.device = torch.device("cpu")

    def apply_dynamic(self, parameter: str, value: Any) -> None:
        if parameter == "activity_image":
            if self.activity_image is None:
                raise ConfigError(f"{self._describe()}: a per-run activity_image needs the source to be defined by an activity image, not a shape")
            self.activity_image = value
            self._image_cache = None
        else:
            super().apply_dynamic(parameter, value)

    def check_dynamic_value(self, parameter: str, value: Any, where: str) -> None:
        if parameter == "activity_image":
            if self.activity_image is None:
                raise ConfigError(f"{self._describe()} {where}: a per-run activity_image needs the source to be defined by an activity image, not a shape")
            if isinstance(value, (str, Path)) and str(value).strip().lower() != "phantom" and not Path(value).is_file():
                raise ConfigError(f"{self._describe()} {where}: activity image {str(value)!r} not found")
        super().check_dynamic_value(parameter, value, where)

    def events_per_decay(self) -> float:
        return self._events_per_decay

    def columns(self) -> tuple[str, ...]:
        return PARTICLE_COLUMNS + EVENT_COLUMNS

    def initialize(self, simulation: Any) -> None:
        if simulation.volume is None:
            raise ConfigError(f"{self._describe()}: the analog source transports photons through a volume; add one (sim.add_volume)")
        if self.attached_to not in (None, simulation.volume.name):
            raise ConfigError(f"{self._describe()}: attached_to {self.attached_to!r} is not a volume of this simulation (it has {simulation.volume.name!r})")
        self.device = simulation.device

    # -- positions ------------------------------------------------------------------------
    def _local_image(self, volume: Any) -> tuple[np.ndarray, ImageGeometry]:
        """The activity image and its geometry in the volume's local frame."""
        value = self.activity_image
        if self._image_cache is not None and self._image_cache[0] is value and not (isinstance(value, str) and value == "phantom"):
            return self._image_cache[1]
        if isinstance(value, str) and value.strip().lower() == "phantom":
            volume.local_phantom()
            if volume.activity_map is None:
                raise ConfigError(f"{self._describe()}: activity_image 'phantom' uses a built-in phantom's activity map; volume {volume.name!r} has none")
            result = (volume.activity_map, volume.local_phantom().geometry)
        elif isinstance(value, (str, Path)):
            from gansim.io.images import read_scalar_image

            image, array = read_scalar_image(value, "activity image")
            result = (array, ImageGeometry.from_sitk(image))
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], ImageGeometry):
            result = (np.asarray(value[0]), value[1])
        else:
            raise ConfigError(f"{self._describe()}: activity_image {value!r}: expected 'phantom', an image file, or (array, ImageGeometry)")
        self._image_cache = (value, result)
        return result

    def _positions(self, volume: Any) -> PositionSampler:
        """The decay-point sampler in the world frame at the volume's current pose."""
        t, r = volume.translation, volume.rotation
        if self.activity_image is not None:
            array, g = self._local_image(volume)
            placed = g.placed(t + r @ g.translation, r @ g.rotation)
            return ActivityImageSource(array, placed, device=self.device)
        kind, _, rest = str(self.shape).partition(":")
        kind = kind.strip().lower()
        if kind == "point":
            return PointSource(t + r @ np.asarray(_numbers(rest, 3, "point source")), device=self.device)
        if kind == "box":
            v = np.asarray(_numbers(rest, 6, "box source"))
            return BoxSource(t + r @ v[:3], v[3:], rotation=r, device=self.device)
        if kind == "sphere":
            v = np.asarray(_numbers(rest, 4, "sphere source"))
            return SphereSource(t + r @ v[:3], float(v[3]), device=self.device)
        raise ConfigError(f"{self._describe()}: shape {self.shape!r}: expected 'point:X,Y,Z', 'box:CX,CY,CZ,SX,SY,SZ' or 'sphere:CX,CY,CZ,R' (mm)")

    def _transport(self, run: SourceRun, emission: EmissionSource) -> Any:
        from gansim.physics.transport import PhotonTransport

        phantom = run.volume.world_phantom(run.world_material)
        key = tuple(m.name for m in phantom.all_materials)
        if key not in self._tables:
            self._tables[key] = CrossSectionTables(
                phantom.all_materials, device=self.device, e_min=min(1 * keV, self.energy_cut), e_max=max(2.0, 1.01 * emission.max_energy), **self.physics
            )
        return PhotonTransport(phantom, run.surface, self._tables[key], energy_cut=self.energy_cut)

    # -- run ------------------------------------------------------------------------------
    def run(self, run: SourceRun) -> Iterator[ParticleBatch]:
        from gansim.physics.scenario import source_extent

        positions = self._positions(run.volume)
        run.surface.check_encloses(source_extent(positions), f"source {self.name!r}")
        emission = EmissionSource(positions, **self._emission_args)  # type: ignore[arg-type]
        transport = self._transport(run, emission)
        start, end = run.interval
        if self.n is not None:
            timing: dict[str, Any] = {"n": self.n, "duration": (end - start) if end > start else None}
        else:
            if end <= start:
                return
            a0 = self.activity if self._activity_is_per_run else self.activity_at(start)
            if not a0 or a0 <= 0:
                return
            timing = {"activity": a0, "duration": end - start}
        summary = MCSummary()
        absorbed_so_far = 0
        for rows, primaries, exits in iter_mc_chunks(
            transport, emission, start_time=start, seed=run.seed, chunk_size=self.chunk_size, absorbed_rows=False, summary=summary, **timing
        ):
            k = int(primaries.event_position.shape[0])
            absorbed = summary.absorbed_events - absorbed_so_far  # events of this chunk in which nothing left
            absorbed_so_far = summary.absorbed_events
            columns = {key: torch.from_numpy(np.ascontiguousarray(rows[key])) for key in PARTICLE_COLUMNS + EVENT_COLUMNS if key in rows}
            columns["EventID"] = columns["EventID"] + run.first_event_id  # numbered from 0 over the whole stream by iter_mc_chunks
            m = int(columns["KineticEnergy"].shape[0])
            if emission.pairs:
                # rows are ordered by primary photon; the photons of a pair are adjacent (even, odd)
                columns["PhotonIndex"] = (torch.sort(exits.primary).values % 2).cpu().to(torch.int64)
            else:
                columns["PhotonIndex"] = torch.zeros(m, dtype=torch.int64)
            yield ParticleBatch(self.name, run.run_id, {c: columns[c] for c in self.columns()}, EventCounts(decays=k, events=k, zero_energy=absorbed, particles=m))
