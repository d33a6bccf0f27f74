"""The analog source in a simulation: event accounting, pairs, shapes and activity images in the volume's frame.

Kept tiny (a few thousand photons through coarse voxels) so the whole file runs in seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError
from gansim.physics.emission import ELECTRON_MASS
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.isotopes import get_isotope
from gansim.sim.actors.base import Actor
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, ParticleBatch
from gansim.sim.simulation import Simulation
from gansim.sim.sources import AnalogSource
from gansim.sim.volumes import PhantomVolume, SphereVolume
from gansim.units import Bq, c_light, deg, keV, s

POS = ("PrePosition_X", "PrePosition_Y", "PrePosition_Z")
DIR = ("PreDirection_X", "PreDirection_Y", "PreDirection_Z")
EVENT_POS = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")
EVENT_DIR = ("EventDirection_X", "EventDirection_Y", "EventDirection_Z")


class Collect(Actor):
    def __init__(self, name: str = "collect") -> None:
        super().__init__(name)
        self.batches: list[ParticleBatch] = []

    def process(self, batch: ParticleBatch) -> None:
        self.batches.append(batch)

    def select(self, run_id: int | None = None, source: str | None = None) -> list[ParticleBatch]:
        return [b for b in self.batches if (run_id is None or b.run_id == run_id) and (source is None or b.source == source)]

    def column(self, name: str, run_id: int | None = None, source: str | None = None) -> np.ndarray:
        parts = [b.columns[name].cpu().numpy() for b in self.select(run_id, source)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def vectors(self, names: tuple[str, str, str], run_id: int | None = None) -> np.ndarray:
        return np.stack([self.column(k, run_id) for k in names], axis=1).astype(np.float64)

    def total(self, field: str, run_id: int | None = None, source: str | None = None) -> int:
        return sum(getattr(b.counts, field) for b in self.select(run_id, source))


def run(sim: Simulation) -> Collect:
    collect = Collect()
    sim.add_actor(collect)
    sim.run()
    return collect


TWO_RUNS = [(0.0, 1 * s), (1 * s, 2 * s)]


# -- accounting ----------------------------------------------------------------------------------
def test_iec_with_n_per_run_counts_every_event_once() -> None:
    sim = Simulation(seed=3, device="cpu")
    sim.run_timing_intervals = TWO_RUNS
    sim.add_volume(PhantomVolume("p", "iec", spacing=8.0))
    source = sim.add_source(AnalogSource("a", isotope="Tc99m", activity_image="phantom", n=500))
    source.add_dynamic_parametrisation(n=[500, 300])
    collect = run(sim)
    assert source.columns() == PARTICLE_COLUMNS + EVENT_COLUMNS
    first = 0
    for run_id, n in enumerate((500, 300)):
        assert collect.total("decays", run_id) == collect.total("events", run_id) == n
        assert collect.total("skipped", run_id) == collect.total("invalid", run_id) == 0
        ids = collect.column("EventID", run_id)
        assert len(ids) == collect.total("particles", run_id)
        # Tc-99m: one photon per event, so one exit photon at most
        assert len(np.unique(ids)) == len(ids)
        assert collect.total("zero_energy", run_id) + len(ids) == n
        assert 0 < collect.total("zero_energy", run_id) < n
        assert ids.min() >= first and ids.max() < first + n
        first += n
        assert np.all((collect.column("KineticEnergy", run_id) > 0) & (collect.column("KineticEnergy", run_id) <= 0.1406))
        start, end = TWO_RUNS[run_id]
        decay = collect.column("GlobalTime", run_id) - collect.column("TimeFromBeginOfEvent", run_id)
        assert np.all((decay >= start - 1e-3) & (decay <= end + 1e-3))
        np.testing.assert_array_equal(collect.column("PhotonIndex", run_id), 0)
    assert sim.timing["a"]["events"] == 800


def test_event_ids_stay_consecutive_over_transport_chunks() -> None:
    """chunk_size below n: several chunks per run; IDs stay in the run's range and follow on in the next run."""
    sim = Simulation(seed=3, device="cpu")
    sim.run_timing_intervals = TWO_RUNS
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", isotope="Tc99m", shape="sphere:0,0,0,15", n=600, chunk_size=200))
    collect = run(sim)
    assert len(collect.select(0)) > 1
    first = 0
    for run_id in range(2):
        assert collect.total("events", run_id) == 600
        ids = collect.column("EventID", run_id)
        assert len(np.unique(ids)) == len(ids) == 600 - collect.total("zero_energy", run_id)
        assert ids.min() >= first and ids.max() < first + 600, (run_id, ids.min(), ids.max())
        first += 600


def test_activity_gives_poisson_counts() -> None:
    activity = 2000 * Bq
    iso = get_isotope("Tc99m")
    sim = Simulation(seed=6, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", isotope="Tc99m", shape="sphere:0,0,0,15", activity=activity))
    collect = run(sim)
    tau = iso.half_life / math.log(2)
    mean = iso.photons_per_decay * activity * tau * -math.expm1(-1 * s / tau)
    assert abs(collect.total("events") - mean) < 5 * math.sqrt(mean)


def test_n_in_a_zero_length_run_happens_at_its_start() -> None:
    sim = Simulation(seed=6, device="cpu")
    sim.run_timing_intervals = [(0.0, 1 * s), (1 * s, 1 * s)]
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", isotope="Tc99m", shape="point:0,0,0", n=50))
    collect = run(sim)
    assert collect.total("events", 1) == 50
    decay = collect.column("GlobalTime", 1) - collect.column("TimeFromBeginOfEvent", 1)
    np.testing.assert_allclose(decay, 1 * s, rtol=0, atol=1e-3)


# -- pairs --------------------------------------------------------------------------------------
def test_f18_pairs_without_scatter_are_collinear() -> None:
    sim = Simulation(seed=4, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("pet", isotope="F18", shape="sphere:0,0,0,15", n=400, compton=False, rayleigh=False, acollinearity_fwhm=0.0))
    collect = run(sim)
    assert collect.total("events") == 400
    ids = collect.column("EventID")
    index = collect.column("PhotonIndex")
    assert set(np.unique(index)) <= {0, 1}
    _, counts = np.unique(ids, return_counts=True)
    assert counts.max() <= 2
    assert len(np.unique(ids)) + collect.total("zero_energy") == 400
    pair_rows = np.flatnonzero(np.isin(ids, np.unique(ids)[counts == 2]))
    assert len(pair_rows) > 600  # 511 keV photons rarely stop in 4 cm of water without Compton
    first, second = pair_rows[0::2], pair_rows[1::2]
    np.testing.assert_array_equal(ids[first], ids[second])
    np.testing.assert_array_equal(index[first], 0)
    np.testing.assert_array_equal(index[second], 1)
    np.testing.assert_allclose(collect.column("KineticEnergy"), ELECTRON_MASS, rtol=1e-6)
    direction = collect.vectors(DIR)
    np.testing.assert_allclose(direction[first], -direction[second], atol=1e-5)
    # unscattered: each photon went straight from the decay point, at the speed of light
    event = collect.vectors(EVENT_POS)
    position = collect.vectors(POS)
    path = position - event
    length = np.linalg.norm(path, axis=1)
    np.testing.assert_allclose(path, length[:, None] * direction, atol=1e-3)
    np.testing.assert_allclose(collect.column("TimeFromBeginOfEvent"), length / c_light, rtol=1e-5, atol=1e-6)
    # the event direction is the first photon's
    event_direction = collect.vectors(EVENT_DIR)
    np.testing.assert_allclose(event_direction[index == 0], direction[index == 0], atol=1e-5)


# -- where decays happen -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, check",
    [
        ("sphere:5,0,0,10", lambda local: np.linalg.norm(local - [5, 0, 0], axis=1) <= 10 + 1e-3),
        ("point:3,-4,2", lambda local: np.linalg.norm(local - [3, -4, 2], axis=1) <= 1e-4),
        ("box:0,5,-5,8,4,20", lambda local: np.all(np.abs(local - [0, 5, -5]) <= np.array([4, 2, 10]) + 1e-3, axis=1)),
    ],
)
def test_shape_sources_follow_the_volume_pose(shape: str, check: Any) -> None:
    translation = np.array([20.0, -10.0, 5.0])
    rotation = rotation_matrix("z", 90 * deg) @ rotation_matrix("x", 30 * deg)
    sim = Simulation(seed=8, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0, translation=translation, rotation=rotation))
    sim.add_source(AnalogSource("a", isotope="Tc99m", shape=shape, n=300))
    collect = run(sim)
    event = collect.vectors(EVENT_POS)
    assert len(event) > 200
    local = (event - translation) @ rotation  # R^T (p - t), row-wise
    assert np.all(check(local))


def _one_hot(shape: tuple[int, int, int], voxel: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros(shape)
    image[voxel] = 1.0
    return image


def test_activity_image_per_run_in_the_volume_frame() -> None:
    shape = (4, 4, 3)
    geometry = ImageGeometry.centred(shape, (6.0, 8.0, 10.0))  # anisotropic voxels
    voxels = [(0, 0, 0), (3, 1, 2), (2, 3, 1)]
    translation = np.array([5.0, 0.0, -5.0])
    rotation = rotation_matrix("y", 30 * deg)
    sim = Simulation(seed=2, device="cpu")
    sim.run_timing_intervals = [(0.0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)]
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0, translation=translation, rotation=rotation))
    source = sim.add_source(AnalogSource("a", isotope="Tc99m", activity_image=(np.ones(shape), geometry), n=150))
    source.add_dynamic_parametrisation(activity_image=[(_one_hot(shape, v), geometry) for v in voxels])
    collect = run(sim)
    placed = geometry.placed(translation, rotation)
    for run_id, voxel in enumerate(voxels):
        event = collect.vectors(EVENT_POS, run_id)
        assert len(event) > 100
        index = placed.world_to_index(event)
        assert np.all(np.abs(index - np.asarray(voxel)) <= 0.5 + 1e-3), run_id


def test_phantom_activity_map_needs_a_built_in_phantom() -> None:
    sim = Simulation(seed=2, device="cpu")
    sim.add_volume(PhantomVolume("p", "iec", spacing=8.0))
    source = sim.add_source(AnalogSource("a", activity_image="phantom", n=10))
    source.add_dynamic_parametrisation(activity_image=["phantom"])
    collect = run(sim)
    assert collect.total("events") == 10


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["sphere:0,0,0,500", "point:0,0,400", "box:0,0,0,10,10,900"])
def test_source_outside_the_exit_surface_is_refused(shape: str) -> None:
    sim = Simulation(seed=1, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", shape=shape, n=10))
    collect = Collect()
    sim.add_actor(collect)
    with pytest.raises(ConfigError, match="source 'a' is not inside the exit surface"):
        sim.run()
    assert collect.batches == []


def test_activity_image_outside_the_exit_surface_is_refused() -> None:
    sim = Simulation(seed=1, device="cpu", exit_surface="sphere:50")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", activity_image=(np.ones((3, 3, 3)), ImageGeometry.centred((3, 3, 3), 40.0)), n=10))
    with pytest.raises(ConfigError, match="not inside the exit surface"):
        run(sim)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 1}, "either an activity_image or a shape"),
        ({"n": 1, "shape": "point:0,0,0", "activity_image": "phantom"}, "either an activity_image or a shape"),
        ({"shape": "point:0,0,0"}, "either an activity"),
        ({"n": 1, "shape": "point:0,0,0", "isotope": "Tc99m", "positron_range": True}, "positron_range"),
        ({"n": 1, "shape": "point:0,0,0", "chunk_size": 0}, "chunk_size"),
        ({"n": 1, "shape": "point:0,0,0", "isotope": None}, "isotope or a photon energy"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AnalogSource("a", **kwargs)


@pytest.mark.parametrize("shape", ["cube:1,2,3", "sphere:1,2", "box:1,2,3", "point:a,b,c"])
def test_bad_shapes_are_refused_at_the_run(shape: str) -> None:
    sim = Simulation(seed=1, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", shape=shape, n=10))
    with pytest.raises(ConfigError, match="(?i)source"):
        run(sim)


def test_analog_source_needs_a_volume_and_a_known_attachment() -> None:
    sim = Simulation(seed=1, device="cpu")
    sim.add_source(AnalogSource("a", shape="point:0,0,0", n=10))
    with pytest.raises(ConfigError, match="add one"):
        run(sim)
    sim = Simulation(seed=1, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", shape="point:0,0,0", n=10, attached_to="patient"))
    with pytest.raises(ConfigError, match="attached_to 'patient'"):
        run(sim)


def test_per_run_activity_image_needs_an_image_source() -> None:
    sim = Simulation(seed=1, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    source = sim.add_source(AnalogSource("a", shape="point:0,0,0", n=10))
    source.add_dynamic_parametrisation(activity_image=[(np.ones((2, 2, 2)), ImageGeometry.centred((2, 2, 2), 5.0))])
    with pytest.raises(ConfigError, match="needs the source to be defined by an activity image"):
        run(sim)


def test_mono_energetic_source() -> None:
    sim = Simulation(seed=1, device="cpu")
    sim.add_volume(SphereVolume("w", 40.0, voxel_size=10.0))
    sim.add_source(AnalogSource("a", isotope=None, energy=200 * keV, shape="point:0,0,0", n=200, compton=False, rayleigh=False))
    collect = run(sim)
    np.testing.assert_allclose(collect.column("KineticEnergy"), 0.2, rtol=1e-6)
    assert collect.total("events") == 200
    assert torch.is_tensor(collect.batches[0].columns["EventID"])
