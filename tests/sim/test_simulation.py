"""The simulation: reproducibility, the order of runs and actor calls, configuration errors, aborts, exit surfaces."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.surfaces import CylinderSurface, ExitSurface, SphereSurface
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.conditions import VoxelizedConditionGenerator
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, ParticleBatch
from gansim.sim.simulation import Simulation, place_surface
from gansim.sim.sources import AnalogSource, GANSource
from gansim.sim.volumes import BoxVolume, SphereVolume
from gansim.units import Bq, deg, s

THREE_RUNS = [(0.0, 1 * s), (1 * s, 2 * s), (3 * s, 4 * s)]
EVENT_POS = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")


class Collect(Actor):
    def __init__(self, name: str = "collect") -> None:
        super().__init__(name)
        self.batches: list[ParticleBatch] = []

    def process(self, batch: ParticleBatch) -> None:
        self.batches.append(batch)


class Recorder(Actor):
    """Logs every call it gets (into a shared log when given one)."""

    def __init__(self, name: str, log: list[tuple[Any, ...]] | None = None, fail_in: str | None = None) -> None:
        super().__init__(name)
        self.log = [] if log is None else log
        self.fail_in = fail_in
        self.context: RunContext | None = None

    def _note(self, *entry: Any) -> None:
        self.log.append((self.name, *entry))
        if self.fail_in == entry[0]:
            raise RuntimeError(f"{self.name} fails in {entry[0]}")

    def initialize(self, context: RunContext) -> None:
        self.context = context
        self._note("initialize")

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        self._note("begin_run", run_id, tuple(interval))

    def process(self, batch: ParticleBatch) -> None:
        self._note("process", batch.run_id, batch.source)

    def end_run(self, run_id: int) -> None:
        self._note("end_run", run_id)

    def finalize(self) -> None:
        self.results["finalized"] = True
        self._note("finalize")

    def abort(self) -> None:
        self._note("abort")


class RandomModel:
    """A stub GAN that draws everything from the generator it is given (positions from the conditions)."""

    keys = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z", "T"]

    def __init__(self, cond_keys: tuple[str, ...] = ()) -> None:
        self.cond_keys = list(cond_keys)
        self.device = torch.device("cpu")

    def sample_tensors(self, n: int, cond: Mapping[str, torch.Tensor] | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        u = torch.rand(n, 5, generator=generator)
        d = torch.randn(n, 3, generator=generator)
        out = {"KineticEnergy": 0.2 * u[:, 0] - 0.02, "T": u[:, 1]}  # some rows <= 0: skipped
        for a, axis in enumerate("XYZ"):
            base = cond[f"EventPosition_{axis}"] if cond else torch.zeros(n)
            out[f"PrePosition_{axis}"] = base + 100.0 * d[:, a]
            out[f"PreDirection_{axis}"] = d[:, a]
        return out


def _image() -> tuple[np.ndarray, ImageGeometry]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (4, 3, 2)), ImageGeometry.centred((4, 3, 2), (5.0, 6.0, 7.0))


def _build(seed: int, tmp_path: Path) -> tuple[Simulation, Collect]:
    sim = Simulation(seed=seed, device="cpu", output_dir=tmp_path)
    sim.run_timing_intervals = [(0.0, 1 * s), (1 * s, 2 * s)]
    sim.add_volume(SphereVolume("w", 30.0, voxel_size=10.0))
    sim.add_source(AnalogSource("analog", isotope="Tc99m", shape="sphere:0,0,0,10", n=150))
    sim.add_source(GANSource("gan", RandomModel(EVENT_POS), activity=100 * Bq, half_life=1 * s, time_key="T",
                             condition=VoxelizedConditionGenerator(_image()), batch_size=40))
    return sim, sim.add_actor(Collect())  # type: ignore[return-value]


def _signature(batches: list[ParticleBatch]) -> list[tuple[Any, ...]]:
    return [(b.source, b.run_id, b.counts.to_dict(), tuple(b.columns)) for b in batches]


def test_same_seed_gives_identical_batches(tmp_path: Path) -> None:
    sim_a, a = _build(5, tmp_path)
    sim_a.run()
    sim_b, b = _build(5, tmp_path)
    sim_b.run()
    assert len(a.batches) >= 4 and {x.source for x in a.batches} == {"analog", "gan"}
    assert _signature(a.batches) == _signature(b.batches)
    for x, y in zip(a.batches, b.batches):
        for key in x.columns:
            assert torch.equal(x.columns[key], y.columns[key]), (x.source, x.run_id, key)


def test_running_the_same_simulation_twice_gives_the_same_batches(tmp_path: Path) -> None:
    sim, collect = _build(5, tmp_path)
    sim.run()
    first = list(collect.batches)
    collect.batches.clear()
    sim.run()
    assert _signature(first) == _signature(collect.batches)
    for x, y in zip(first, collect.batches):
        for key in x.columns:
            assert torch.equal(x.columns[key], y.columns[key]), (x.source, x.run_id, key)


def test_different_seeds_differ(tmp_path: Path) -> None:
    sim_a, a = _build(5, tmp_path)
    sim_a.run()
    sim_b, b = _build(6, tmp_path)
    sim_b.run()
    for source in ("analog", "gan"):
        for key in ("GlobalTime", "PrePosition_X", "EventPosition_X", "KineticEnergy"):
            xa = np.concatenate([x.columns[key].numpy() for x in a.batches if x.source == source])
            xb = np.concatenate([x.columns[key].numpy() for x in b.batches if x.source == source])
            assert len(xa) != len(xb) or not np.array_equal(xa, xb), (source, key)


def test_each_source_and_run_draws_from_its_own_streams(tmp_path: Path) -> None:
    """Two identical GAN sources in one simulation, or one source in two runs, do not repeat each other."""
    sim = Simulation(seed=1, output_dir=tmp_path)
    sim.run_timing_intervals = [(0.0, 1 * s), (1 * s, 2 * s)]
    for name in ("g1", "g2"):
        sim.add_source(GANSource(name, RandomModel(), n=50))
    collect = sim.add_actor(Collect())
    sim.run()
    energy = {(b.source, b.run_id): b.columns["KineticEnergy"].numpy() for b in collect.batches}  # type: ignore[attr-defined]
    values = list(energy.values())
    assert len(values) == 4
    for i in range(4):
        for j in range(i + 1, 4):
            assert len(values[i]) != len(values[j]) or not np.array_equal(values[i], values[j])


def test_event_ids_are_unique_over_sources_and_runs(tmp_path: Path) -> None:
    sim, collect = _build(5, tmp_path)
    result = sim.run()
    ids = np.concatenate([b.columns["EventID"].numpy() for b in collect.batches])
    total_events = sum(b.counts.events for b in collect.batches)
    assert len(np.unique(ids)) == len(ids)  # Tc-99m and single-particle GAN rows: one particle per event
    assert ids.min() >= 0 and ids.max() < total_events
    for name in ("analog", "gan"):
        mine = [b for b in collect.batches if b.source == name]
        assert result["timing"][name]["events"] == sum(b.counts.events for b in mine)
        assert result["timing"][name]["decays"] == sum(b.counts.decays for b in mine)
        assert result["timing"][name]["particles"] == sum(len(b) for b in mine)
        assert result["timing"][name]["seconds"] >= 0


def test_runs_are_executed_in_order_and_actors_called_in_protocol_order(tmp_path: Path) -> None:
    log: list[tuple[Any, ...]] = []
    sim = Simulation(seed=2, output_dir=tmp_path / "out", force=True)
    sim.run_timing_intervals = THREE_RUNS
    sim.add_source(GANSource("a", RandomModel(), n=3))
    sim.add_source(GANSource("b", RandomModel(), n=2))
    first = sim.add_actor(Recorder("first", log))
    sim.add_actor(Recorder("second", log))
    result = sim.run()
    expected: list[tuple[Any, ...]] = [("first", "initialize"), ("second", "initialize")]
    for run_id, interval in enumerate(THREE_RUNS):
        expected += [("first", "begin_run", run_id, interval), ("second", "begin_run", run_id, interval)]
        for source in ("a", "b"):
            expected += [("first", "process", run_id, source), ("second", "process", run_id, source)]
        expected += [("first", "end_run", run_id), ("second", "end_run", run_id)]
    expected += [("first", "finalize"), ("second", "finalize")]
    assert log == expected
    context = first.context  # type: ignore[attr-defined]
    assert context is not None
    assert context.intervals == THREE_RUNS
    assert context.source_names == ["a", "b"]
    assert context.columns == {"a": PARTICLE_COLUMNS, "b": PARTICLE_COLUMNS}
    assert context.output_dir == tmp_path / "out" and context.force is True
    assert (tmp_path / "out").is_dir()
    assert context.resolve("x.json") == tmp_path / "out" / "x.json"
    assert context.resolve(tmp_path / "abs.json") == tmp_path / "abs.json"
    assert str(context.device) == "cpu" or torch.cuda.is_available()
    assert result["actors"] == {"first": {"finalized": True}, "second": {"finalized": True}}
    assert set(result["timing"]) == {"a", "b"}


def test_context_columns_include_event_columns_of_conditional_sources(tmp_path: Path) -> None:
    sim, _ = _build(1, tmp_path)
    recorder = sim.add_actor(Recorder("rec"))
    sim.run()
    assert recorder.context.columns == {"analog": PARTICLE_COLUMNS + EVENT_COLUMNS, "gan": PARTICLE_COLUMNS + EVENT_POS}  # type: ignore[attr-defined]


# -- configuration errors ----------------------------------------------------------------------
def test_no_source_is_refused() -> None:
    sim = Simulation()
    sim.add_volume(BoxVolume("box", 10.0))
    with pytest.raises(ConfigError, match="no source"):
        sim.run()


def test_a_second_volume_is_refused() -> None:
    sim = Simulation()
    sim.add_volume(BoxVolume("box", 10.0))
    with pytest.raises(ConfigError, match="already has volume 'box'"):
        sim.add_volume(SphereVolume("ball", 10.0))
    assert sim.volume is not None and sim.volume.name == "box"


def test_duplicate_source_and_actor_names_are_refused() -> None:
    sim = Simulation()
    sim.add_source(GANSource("g", RandomModel(), n=1))
    with pytest.raises(ConfigError, match="a source named 'g' already exists"):
        sim.add_source(GANSource("g", RandomModel(), n=2))
    sim.add_actor(Collect("c"))
    with pytest.raises(ConfigError, match="an actor named 'c' already exists|a actor named 'c' already exists"):
        sim.add_actor(Collect("c"))
    assert len(sim.sources) == 1 and len(sim.actors) == 1


def test_wrong_types_are_refused() -> None:
    sim = Simulation()
    with pytest.raises(ConfigError, match="expected a Volume"):
        sim.add_volume("iec")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a source"):
        sim.add_source("gan")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected an actor"):
        sim.add_actor(lambda batch: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seeds_are_refused(seed: Any) -> None:
    with pytest.raises(ConfigError, match="seed"):
        Simulation(seed=seed)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ConfigError):
        Collect("")
    with pytest.raises(ConfigError):
        BoxVolume("", 10.0)
    with pytest.raises(ConfigError):
        GANSource("", RandomModel(), n=1)


# -- errors during the run -----------------------------------------------------------------------
def test_an_actor_failing_in_process_aborts_every_actor(tmp_path: Path) -> None:
    log: list[tuple[Any, ...]] = []
    sim = Simulation(seed=2, output_dir=tmp_path)
    sim.run_timing_intervals = THREE_RUNS
    sim.add_source(GANSource("a", RandomModel(), n=3))
    sim.add_actor(Recorder("first", log))
    sim.add_actor(Recorder("bad", log, fail_in="process"))
    sim.add_actor(Recorder("last", log))
    with pytest.raises(RuntimeError, match="bad fails in process"):
        sim.run()
    aborted = [entry[0] for entry in log if entry[1] == "abort"]
    assert aborted == ["first", "bad", "last"]
    assert not any(entry[1] == "finalize" for entry in log)
    assert not any(entry[1] == "begin_run" and entry[2] == 1 for entry in log)  # stopped in run 0


def test_a_failing_abort_does_not_hide_the_error(tmp_path: Path) -> None:
    class BadAbort(Recorder):
        def abort(self) -> None:
            super().abort()
            raise OSError("clean-up failed")

    log: list[tuple[Any, ...]] = []
    sim = Simulation(seed=2, output_dir=tmp_path)
    sim.add_source(GANSource("a", RandomModel(), n=3))
    sim.add_actor(BadAbort("first", log))
    sim.add_actor(Recorder("bad", log, fail_in="end_run"))
    with pytest.raises(RuntimeError, match="bad fails in end_run"):
        sim.run()
    assert [entry[0] for entry in log if entry[1] == "abort"] == ["first", "bad"]


def test_a_source_failing_during_a_run_aborts_every_actor(tmp_path: Path) -> None:
    log: list[tuple[Any, ...]] = []
    sim = Simulation(seed=2, output_dir=tmp_path, device="cpu")
    sim.add_volume(SphereVolume("w", 30.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", shape="point:0,0,500", n=3))  # outside the exit surface
    sim.add_actor(Recorder("first", log))
    with pytest.raises(ConfigError, match="not inside the exit surface"):
        sim.run()
    assert ("first", "abort") in log and ("first", "finalize") not in log


def test_an_actor_failing_in_initialize_aborts_the_actors_already_initialized(tmp_path: Path) -> None:
    """'On any error every actor is aborted': the first actor may have prepared outputs already."""
    log: list[tuple[Any, ...]] = []
    sim = Simulation(seed=2, output_dir=tmp_path)
    sim.add_source(GANSource("a", RandomModel(), n=3))
    sim.add_actor(Recorder("first", log))
    sim.add_actor(Recorder("bad", log, fail_in="initialize"))
    with pytest.raises(RuntimeError, match="bad fails in initialize"):
        sim.run()
    assert ("first", "abort") in log


# -- exit surfaces ---------------------------------------------------------------------------------
def test_place_surface_moves_a_sphere_with_the_pose() -> None:
    rotation = rotation_matrix((1.0, 2.0, 3.0), 50 * deg)
    translation = np.array([10.0, -5.0, 2.0])
    placed = place_surface(SphereSurface(70.0, center=(1.0, 2.0, 3.0)), translation, rotation)
    assert isinstance(placed, SphereSurface) and placed.radius == 70.0
    np.testing.assert_allclose(placed.center, translation + rotation @ np.array([1.0, 2.0, 3.0]), atol=1e-12)
    same = place_surface(SphereSurface(70.0), np.zeros(3), np.eye(3))
    assert same.center == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("rotation", [rotation_matrix("z", 37 * deg), rotation_matrix("x", 180 * deg), np.eye(3)])
def test_place_surface_moves_a_cylinder_whose_axis_stays_z(rotation: np.ndarray) -> None:
    translation = np.array([0.0, 3.0, -4.0])
    placed = place_surface(CylinderSurface(50.0, 80.0, center=(1.0, 0.0, 5.0)), translation, rotation)
    assert isinstance(placed, CylinderSurface)
    assert (placed.radius, placed.half_length) == (50.0, 80.0)
    np.testing.assert_allclose(placed.center, translation + rotation @ np.array([1.0, 0.0, 5.0]), atol=1e-12)


@pytest.mark.parametrize("rotation", [rotation_matrix("x", 30 * deg), rotation_matrix("y", 90 * deg), rotation_matrix((1, 1, 0), 1 * deg)])
def test_place_surface_refuses_a_tilted_cylinder(rotation: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="tilts it"):
        place_surface(CylinderSurface(50.0, 80.0), np.zeros(3), rotation)


def test_place_surface_refuses_an_unknown_surface() -> None:
    class Plane(ExitSurface):
        center = (0.0, 0.0, 0.0)

        def contains(self, position: torch.Tensor) -> torch.Tensor:
            return position[:, 2] <= 0

        def distance_to_exit(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
            return -position[:, 2] / direction[:, 2]

        def _contains_np(self, points: np.ndarray) -> np.ndarray:
            return points[:, 2] <= 0

    with pytest.raises(ConfigError, match="expected a sphere or a cylinder"):
        place_surface(Plane(), np.zeros(3), np.eye(3))


def test_exit_surface_strings_follow_the_documented_syntax() -> None:
    """Simulation's docstring: ``sphere:R[,CX,CY,CZ]`` / ``cylinder:R,LENGTH[,CX,CY,CZ]`` (full length, as gansim mc)."""
    sphere = Simulation(exit_surface="sphere:70").exit_surface
    assert isinstance(sphere, SphereSurface) and sphere.radius == 70.0 and sphere.center == (0.0, 0.0, 0.0)
    sphere = Simulation(exit_surface="sphere:70,1,2,3").exit_surface
    assert isinstance(sphere, SphereSurface) and sphere.radius == 70.0 and sphere.center == (1.0, 2.0, 3.0)
    cylinder = Simulation(exit_surface="cylinder:60,90").exit_surface
    assert isinstance(cylinder, CylinderSurface) and (cylinder.radius, cylinder.half_length) == (60.0, 45.0)
    cylinder = Simulation(exit_surface="cylinder:60,90,5,0,0").exit_surface
    assert isinstance(cylinder, CylinderSurface) and cylinder.half_length == 45.0 and cylinder.center == (5.0, 0.0, 0.0)


def test_a_tilted_volume_with_a_cylinder_exit_surface_is_refused_at_the_run(tmp_path: Path) -> None:
    sim = Simulation(seed=1, output_dir=tmp_path, device="cpu", exit_surface="cylinder:60,60")
    assert isinstance(sim.exit_surface, CylinderSurface)
    sim.add_volume(SphereVolume("w", 30.0, voxel_size=10.0, rotation=rotation_matrix("x", 45 * deg)))
    sim.add_source(AnalogSource("a", shape="point:0,0,0", n=3))
    with pytest.raises(ConfigError, match="tilts it"):
        sim.run()


def test_analog_photons_stop_on_the_placed_exit_surface(tmp_path: Path) -> None:
    translation = np.array([15.0, 0.0, -10.0])
    rotation = rotation_matrix("z", 90 * deg)
    sim = Simulation(seed=1, output_dir=tmp_path, device="cpu", exit_surface=CylinderSurface(60.0, 45.0, center=(5.0, 0.0, 0.0)))
    sim.add_volume(SphereVolume("w", 30.0, voxel_size=10.0, translation=translation, rotation=rotation))
    sim.add_source(AnalogSource("a", shape="point:0,0,0", n=200, compton=False, rayleigh=False))
    collect = sim.add_actor(Collect())
    sim.run()
    position = np.concatenate([np.stack([b.columns[f"PrePosition_{a}"].numpy() for a in "XYZ"], axis=1) for b in collect.batches]).astype(np.float64)  # type: ignore[attr-defined]
    centre = translation + rotation @ np.array([5.0, 0.0, 0.0])
    radial = np.linalg.norm(position[:, :2] - centre[:2], axis=1)
    axial = np.abs(position[:, 2] - centre[2])
    on_side = np.isclose(radial, 60.0, atol=1e-3) & (axial <= 45.0 + 1e-3)
    on_cap = np.isclose(axial, 45.0, atol=1e-3) & (radial <= 60.0 + 1e-3)
    assert len(position) > 150 and np.all(on_side | on_cap)
