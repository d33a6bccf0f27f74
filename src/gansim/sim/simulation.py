"""The run-based simulation: a volume, sources, actors, run timing intervals, dynamic parameters.

A small counterpart of a GATE simulation, enough to run a GAN source and the analog
Monte Carlo it replaces side by side::

    sim = Simulation(output_dir="out", seed=1)
    sim.run_timing_intervals = [(0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)]
    patient = sim.add_volume(PhantomVolume("patient", "iec"))
    source = sim.add_source(GANSource("gan", "model_dir", activity=1 * MBq, condition="activity.mha", ...))
    source.add_dynamic_parametrisation(condition_image=["a0.mha", "a1.mha", "a2.mha"])
    stats = sim.add_actor(StatisticsActor("stats", output="stats.json"))
    sim.run()

Runs execute in order, each over its interval. At the start of every run the hidden
dynamic actors apply the run's parameters (geometry first, then sources); then every
source emits its particles, batch by batch, to every actor. One seed gives the same
result every time: each (run, source name) pair draws from its own seeded streams, so
adding a source does not change the particles of another.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import ConfigError
from gansim.physics.materials import get_material
from gansim.physics.surfaces import CylinderSurface, ExitSurface, SphereSurface, parse_exit_surface
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.dynamic import Changer, DynamicGeometryActor, DynamicObject, DynamicSourceActor
from gansim.sim.sources.base import Source, SourceRun
from gansim.sim.timing import DEFAULT_RUN_TIMING, check_run_timing_intervals
from gansim.sim.volumes import Volume

__all__ = ["Simulation", "place_surface"]


def _name_stream(name: str) -> int:
    """A random stream per source *name*: adding or reordering sources does not change another's particles."""
    return 1 + zlib.crc32(name.encode("utf-8"))


def place_surface(surface: ExitSurface, translation: np.ndarray, rotation: np.ndarray) -> ExitSurface:
    """The exit surface (given in a volume's local frame) at the volume's pose.

    A sphere moves with its centre. A cylinder's axis is z: rotations that keep the z axis
    (about z, or flipping it) are allowed, others are refused (no tilted cylinders).
    """
    center = np.asarray(translation, dtype=np.float64) + np.asarray(rotation) @ np.asarray(surface.center, dtype=np.float64)
    if isinstance(surface, SphereSurface):
        return SphereSurface(surface.radius, center=center)
    if isinstance(surface, CylinderSurface):
        z = np.asarray(rotation) @ np.array([0.0, 0.0, 1.0])
        if not np.allclose(np.abs(z), [0.0, 0.0, 1.0], atol=1e-9):
            raise ConfigError("the cylindrical exit surface's axis is z; the volume's rotation tilts it. Use a sphere exit surface for a tilted volume")
        return CylinderSurface(surface.radius, surface.half_length, center=center)
    raise ConfigError(f"exit surface {surface!r}: expected a sphere or a cylinder")


class Simulation:
    """A simulation: at most one volume, any number of sources and actors, one run per timing interval.

    Args:
        output_dir: where actors write relative outputs (created when needed).
        seed: the seed of everything random.
        device: where the analog transport runs: ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda[:N]``.
            (A GAN source has its own ``device``.)
        force: let actors overwrite existing outputs.
        world_material: what fills the world around the volume.
        exit_surface: where the analog transport stops and records photons, in the volume's
            local frame (it moves with the volume): a :class:`~gansim.physics.surfaces.ExitSurface`
            or ``sphere:R[,CX,CY,CZ]`` / ``cylinder:R,LENGTH[,CX,CY,CZ]`` (LENGTH the full length along z); default a sphere
            around the volume (the one ``gansim mc`` uses, so a GAN trained on its output
            matches).
    """

    def __init__(
        self,
        *,
        output_dir: str | Path = ".",
        seed: int = 0,
        device: str = "auto",
        force: bool = False,
        world_material: str = "G4_AIR",
        exit_surface: ExitSurface | str | None = None,
    ) -> None:
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ConfigError(f"seed {seed!r}: expected a whole number >= 0")
        self.output_dir = Path(output_dir)
        self.seed = int(seed)
        self.device_name = device
        self.force = bool(force)
        self.world_material = get_material(world_material)
        self.exit_surface = parse_exit_surface(exit_surface) if isinstance(exit_surface, str) else exit_surface
        self._intervals: list[tuple[float, float]] = list(DEFAULT_RUN_TIMING)
        self.volume: Volume | None = None
        self.sources: list[Source] = []
        self.actors: list[Actor] = []
        self._custom_changers: list[Changer] = []
        self.hidden_actors: list[Actor] = []
        self.timing: dict[str, dict[str, float]] = {}
        self.device: Any = None

    # -- configuration --------------------------------------------------------------------
    @property
    def run_timing_intervals(self) -> list[tuple[float, float]]:
        """``[(start, end), ...]`` ns; validated when set (see :func:`~gansim.sim.timing.check_run_timing_intervals`)."""
        return list(self._intervals)

    @run_timing_intervals.setter
    def run_timing_intervals(self, value: Sequence[Sequence[float]]) -> None:
        self._intervals = check_run_timing_intervals(value)

    def add_volume(self, volume: Volume) -> Volume:
        if not isinstance(volume, Volume):
            raise ConfigError(f"add_volume: expected a Volume (PhantomVolume, BoxVolume, SphereVolume, CylinderVolume), got {type(volume).__name__}")
        if self.volume is not None:
            raise ConfigError(
                f"add_volume {volume.name!r}: the simulation already has volume {self.volume.name!r}; the photon transport tracks one "
                "voxelised volume (merge the objects into one image)"
            )
        self.volume = volume
        return volume

    def add_source(self, source: Source) -> Source:
        if not isinstance(source, Source):
            raise ConfigError(f"add_source: expected a source (AnalogSource, GANSource, GANPairsSource), got {type(source).__name__}")
        self._check_unique(source.name, [s.name for s in self.sources], "source")
        self.sources.append(source)
        return source

    def add_actor(self, actor: Actor) -> Actor:
        if not isinstance(actor, Actor):
            raise ConfigError(f"add_actor: expected an actor, got {type(actor).__name__}")
        self._check_unique(actor.name, [a.name for a in self.actors], "actor")
        self.actors.append(actor)
        return actor

    def add_changer(self, changer: Changer) -> Changer:
        """A custom changer (for a parametrisation with ``auto_changer=False``): applied at each run start."""
        if not isinstance(changer, Changer):
            raise ConfigError(f"add_changer: expected a Changer, got {type(changer).__name__}")
        self._custom_changers.append(changer)
        return changer

    @staticmethod
    def _check_unique(name: str, names: list[str], what: str) -> None:
        if name in names:
            raise ConfigError(f"a {what} named {name!r} already exists in this simulation; names must be unique")

    def owns(self, obj: DynamicObject) -> bool:
        return obj is self.volume or any(obj is s for s in self.sources)

    # -- running --------------------------------------------------------------------------
    def _local_surface(self) -> ExitSurface:
        if self.exit_surface is not None:
            return self.exit_surface
        from gansim.physics.scenario import default_exit_surface

        assert self.volume is not None
        return default_exit_surface(self.volume.local_phantom())

    def _world_surface(self) -> ExitSurface | None:
        if self.volume is None:
            return None
        return place_surface(self._local_surface(), self.volume.translation, self.volume.rotation)

    def initialize(self) -> None:
        """Check everything and wire the dynamic parametrisation (``run`` calls it)."""
        from gansim.training.device import resolve_device

        if not self.sources:
            raise ConfigError("the simulation has no source; add one with add_source")
        self.device = resolve_device(self.device_name)
        intervals = self._intervals
        geometry = DynamicGeometryActor("dynamic_geometry")
        sources = DynamicSourceActor("dynamic_sources")
        if self.volume is not None:
            self.volume.resolve_dynamic_params(intervals)
            geometry.changers.extend(self.volume.create_changers())
        for source in self.sources:
            source.resolve_dynamic_params(intervals)
            sources.changers.extend(source.create_changers())
        for changer in self._custom_changers:
            changer.initialize(self)
            (geometry if isinstance(changer.attached_to, Volume) else sources).changers.append(changer)
        self.hidden_actors = [a for a in (geometry, sources) if a.changers]
        for source in self.sources:
            source.initialize(self)
        context = RunContext(
            output_dir=self.output_dir, force=self.force, intervals=list(intervals), source_names=[s.name for s in self.sources],
            columns={s.name: s.columns() for s in self.sources}, device=self.device,
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for actor in self.actors:
            actor.initialize(context)

    def run(self) -> dict[str, Any]:
        """Run every interval in order; return the actors' results by name and the sources' timing.

        On any error every actor is aborted (no partial outputs) and the error is raised.
        """
        from gansim.physics.mc import chunk_seed

        self.timing = {s.name: {"seconds": 0.0, "particles": 0, "events": 0, "decays": 0} for s in self.sources}
        next_event_id = 0
        actors: list[Actor] = list(self.actors)
        try:
            self.initialize()  # inside: an actor failing to initialise aborts those before it
            actors = sorted(self.hidden_actors + self.actors, key=lambda a: a.priority)
            for run_id, interval in enumerate(self._intervals):
                for actor in actors:
                    actor.begin_run(run_id, interval)
                surface = self._world_surface()
                for source in self.sources:
                    run = SourceRun(
                        run_id=run_id, interval=interval, seed=chunk_seed(self.seed, run_id, stream=_name_stream(source.name)), first_event_id=next_event_id,
                        volume=self.volume, world_material=self.world_material, surface=surface,
                    )
                    t0 = time.perf_counter()
                    record = self.timing[source.name]
                    for batch in source.run(run):
                        record["seconds"] += time.perf_counter() - t0
                        next_event_id += batch.counts.events
                        record["particles"] += batch.counts.particles
                        record["events"] += batch.counts.events
                        record["decays"] += batch.counts.decays
                        for actor in actors:
                            actor.process(batch)
                        t0 = time.perf_counter()
                    record["seconds"] += time.perf_counter() - t0
                for actor in actors:
                    actor.end_run(run_id)
            for actor in actors:
                actor.finalize()
        except BaseException:
            for actor in actors:
                try:
                    actor.abort()
                except Exception:  # noqa: BLE001 - the original error matters more than a failed clean-up
                    pass
            raise
        return {"actors": {a.name: a.results for a in self.actors}, "timing": self.timing}
