"""Dynamic parametrisation: declaring per-run values, their validation, and that each run gets its own.

GAN sources use a stub model (no training): what it generates is known, so the only
randomness left is the decay process and the condition generator. Statistical bounds are
5 sigma of the quantity tested, with fixed seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.sim.actors.base import Actor
from gansim.sim.conditions import FunctionConditionGenerator, VoxelizedConditionGenerator
from gansim.sim.dynamic import Changer, DynamicGeometryActor, DynamicSourceActor, ParameterChanger
from gansim.sim.particles import ParticleBatch
from gansim.sim.simulation import Simulation
from gansim.sim.sources import AnalogSource, GANSource
from gansim.sim.volumes import BoxVolume, PhantomVolume, SphereVolume
from gansim.units import Bq, deg, s

THREE_RUNS = [(0.0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)]


# -- helpers ---------------------------------------------------------------------------------
class Collect(Actor):
    """Keeps every batch, and what it saw at each run start."""

    def __init__(self, name: str = "collect", volume: Any = None) -> None:
        super().__init__(name)
        self.batches: list[ParticleBatch] = []
        self.volume = volume
        self.poses: list[tuple[int, np.ndarray, np.ndarray]] = []

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        if self.volume is not None:
            self.poses.append((run_id, self.volume.translation.copy(), self.volume.rotation.copy()))

    def process(self, batch: ParticleBatch) -> None:
        self.batches.append(batch)

    def of_run(self, run_id: int, source: str | None = None) -> list[ParticleBatch]:
        return [b for b in self.batches if b.run_id == run_id and (source is None or b.source == source)]

    def column(self, name: str, run_id: int, source: str | None = None) -> np.ndarray:
        parts = [b.columns[name].cpu().numpy() for b in self.of_run(run_id, source)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def decays(self, run_id: int) -> int:
        return sum(b.counts.decays for b in self.of_run(run_id))


class StubModel:
    """A stand-in for a trained GAN: every row is the same, or echoes some conditions.

    ``sample_tensors`` returns ``values`` (key -> constant) for every row; ``echo`` maps
    an output key to the condition key it copies.
    """

    def __init__(self, values: Mapping[str, float] | None = None, *, cond_keys: tuple[str, ...] = (), echo: Mapping[str, str] | None = None) -> None:
        self.values = dict(values or {"KineticEnergy": 0.14, "PrePosition_X": 0.0, "PrePosition_Y": 0.0, "PrePosition_Z": 0.0,
                                       "PreDirection_X": 0.0, "PreDirection_Y": 0.0, "PreDirection_Z": 1.0})
        self.echo = dict(echo or {})
        self.keys = list(self.values) + [k for k in self.echo if k not in self.values]
        self.cond_keys = list(cond_keys)
        self.device = torch.device("cpu")

    def sample_tensors(self, n: int, cond: Mapping[str, torch.Tensor] | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        out = {k: torch.full((n,), float(v), dtype=torch.float32) for k, v in self.values.items()}
        for key, cond_key in self.echo.items():
            assert cond is not None
            out[key] = cond[cond_key].to(torch.float32).clone()
        return out


def _run(sim: Simulation, *actors: Actor) -> dict[str, Any]:
    for actor in actors:
        sim.add_actor(actor)
    return sim.run()


# -- declaring -------------------------------------------------------------------------------
def test_non_dynamic_keys_go_to_extra_params() -> None:
    volume = BoxVolume("box", 40.0)
    name = volume.add_dynamic_parametrisation(name="motion", translation=[[0, 0, 0], [1, 2, 3]], scale=2.5, note="breathing")
    assert name == "motion"
    dp = volume.dynamic_params["motion"]
    assert dp.values == {"translation": [[0, 0, 0], [1, 2, 3]]}
    assert dp.extra_params == {"scale": 2.5, "note": "breathing"}
    assert dp.auto_changer is True
    assert volume.is_dynamic


@pytest.mark.parametrize(
    "make, allowed",
    [
        (lambda: BoxVolume("box", 40.0), "rotation, translation"),
        (lambda: PhantomVolume("p", "iec", spacing=8.0), "image, rotation, translation"),
        (lambda: GANSource("g", StubModel(), n=1), "activity, condition_image, n"),
        (lambda: AnalogSource("a", shape="point:0,0,0", n=1), "activity, activity_image, n"),
    ],
)
def test_no_dynamic_key_is_refused_listing_the_dynamic_parameters(make: Any, allowed: str) -> None:
    obj = make()
    with pytest.raises(ConfigError, match=f"dynamic parameters are: {allowed}$"):
        obj.add_dynamic_parametrisation(offset=[[0, 0, 0]], scale=2)
    assert not obj.is_dynamic


def test_an_extra_key_spelled_like_a_dynamic_parameter_is_refused_as_a_typo() -> None:
    volume = BoxVolume("box", 40.0)
    with pytest.raises(ConfigError, match="'rotaton' is not a dynamic parameter; did you mean 'rotation'"):
        volume.add_dynamic_parametrisation(translation=[[0, 0, 0]], rotaton=[np.eye(3)])
    assert not volume.is_dynamic


def test_duplicate_name_is_refused() -> None:
    volume = BoxVolume("box", 40.0)
    volume.add_dynamic_parametrisation(name="a", translation=[[0, 0, 0]])
    with pytest.raises(ConfigError, match="'a' already exists"):
        volume.add_dynamic_parametrisation(name="a", rotation=[np.eye(3)])
    assert list(volume.dynamic_params) == ["a"]


def test_automatic_names_are_unique() -> None:
    volume = BoxVolume("box", 40.0)
    first = volume.add_dynamic_parametrisation(translation=[[0, 0, 0]])
    taken = volume.add_dynamic_parametrisation(name="parametrisation_1", rotation=[np.eye(3)], auto_changer=False)
    second = volume.add_dynamic_parametrisation(rotation=[np.eye(3)], auto_changer=False)
    assert first == "parametrisation_0" and taken == "parametrisation_1"
    assert second not in (first, taken) and second.startswith("parametrisation_")
    assert len(volume.dynamic_params) == 3


@pytest.mark.parametrize("flag", [1, 0, "yes", None])
def test_auto_changer_must_be_a_bool(flag: Any) -> None:
    volume = BoxVolume("box", 40.0)
    with pytest.raises(ConfigError, match="auto_changer"):
        volume.add_dynamic_parametrisation(translation=[[0, 0, 0]], auto_changer=flag)


@pytest.mark.parametrize("value", [5, "abc", None, {"a": 1}])
def test_a_value_that_is_not_a_list_is_refused(value: Any) -> None:
    volume = BoxVolume("box", 40.0)
    with pytest.raises(ConfigError, match="'translation'.*one value per run"):
        volume.add_dynamic_parametrisation(translation=value)


def test_callable_values_are_evaluated_on_the_run_timing_intervals() -> None:
    seen: list[Any] = []

    def translations(intervals: list[list[float]]) -> list[list[float]]:
        seen.append(intervals)
        return [[start / s, 0.0, end / s] for start, end in intervals]

    sim = Simulation(seed=1)
    sim.run_timing_intervals = [(0, 1 * s), (1 * s, 2 * s), (4 * s, 5 * s)]
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="p", translation=translations)
    sim.add_source(GANSource("g", StubModel(), n=2))
    collect = Collect(volume=volume)
    _run(sim, collect)
    assert seen == [[[0.0, 1 * s], [1 * s, 2 * s], [4 * s, 5 * s]]]
    assert all(isinstance(iv, list) for iv in seen[0])
    assert volume.dynamic_params["p"].values["translation"] == [[0.0, 0.0, 1.0], [1.0, 0.0, 2.0], [4.0, 0.0, 5.0]]
    for run_id, expected in enumerate(([0, 0, 1], [1, 0, 2], [4, 0, 5])):
        np.testing.assert_array_equal(collect.poses[run_id][1], expected)
        # the stub emits at the local origin: the particles follow the volume
        np.testing.assert_array_equal(collect.column("PrePosition_X", run_id), [expected[0]] * 2)
        np.testing.assert_array_equal(collect.column("PrePosition_Z", run_id), [expected[2]] * 2)


def test_callable_values_follow_new_intervals_when_the_simulation_runs_again() -> None:
    """The parametrisation is the function: changing the intervals and running again re-evaluates it."""
    sim = Simulation(seed=1)
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="p", translation=lambda intervals: [[start / s, 0.0, 0.0] for start, _ in intervals])
    sim.add_source(GANSource("g", StubModel(), n=1))
    collect = Collect(volume=volume)
    _run(sim, collect)
    assert [t[0] for _, t, _ in collect.poses] == [0.0, 1.0, 2.0]
    sim.run_timing_intervals = [(5 * s, 6 * s), (7 * s, 8 * s)]
    collect.poses.clear()
    sim.run()
    assert [t[0] for _, t, _ in collect.poses] == [5.0, 7.0]


def test_callable_failures_are_config_errors() -> None:
    volume = BoxVolume("box", 40.0)
    volume.add_dynamic_parametrisation(name="p", translation=lambda intervals: 1 / 0)
    with pytest.raises(ConfigError, match="'translation': its function failed"):
        volume.resolve_dynamic_params(THREE_RUNS)
    volume = BoxVolume("box", 40.0)
    volume.add_dynamic_parametrisation(name="p", translation=lambda intervals: 3.0)
    with pytest.raises(ConfigError, match="'translation': its function returned float"):
        volume.resolve_dynamic_params(THREE_RUNS)


def test_length_mismatch_lists_every_offending_parameter_via_resolve() -> None:
    volume = BoxVolume("box", 40.0)
    volume.add_dynamic_parametrisation(name="pose", translation=[[0, 0, 0]] * 2, rotation=[np.eye(3)] * 4)
    volume.add_dynamic_parametrisation(name="ok", auto_changer=False, translation=[[0, 0, 0]] * 3)
    volume.add_dynamic_parametrisation(name="fn", auto_changer=False, rotation=lambda iv: [np.eye(3)] * (len(iv) + 1))
    with pytest.raises(ConfigError) as err:
        volume.resolve_dynamic_params(THREE_RUNS)
    message = str(err.value)
    assert "3 run timing intervals" in message
    assert "pose.translation: 2" in message
    assert "pose.rotation: 4" in message
    assert "fn.rotation: 4" in message
    assert "ok.translation" not in message


def test_length_mismatch_is_reported_by_simulation_run() -> None:
    sim = Simulation(seed=1)
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="pose", translation=[[0, 0, 0]] * 2)
    source = sim.add_source(GANSource("g", StubModel(), activity=10 * Bq))
    source.add_dynamic_parametrisation(name="act", activity=[1 * Bq] * 5, n_note="x")
    collect = Collect()
    with pytest.raises(ConfigError, match=r"one value per run \(3 run timing intervals\).*pose\.translation: 2"):
        _run(sim, collect)
    assert collect.batches == []
    volume.dynamic_params["pose"].values["translation"] = [[0, 0, 0]] * 3
    with pytest.raises(ConfigError, match=r"GANSource 'g'.*act\.activity: 5"):
        sim.run()


def test_same_parameter_in_two_auto_parametrisations_is_refused() -> None:
    sim = Simulation(seed=1)
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="a", translation=[[0, 0, 0]])
    volume.add_dynamic_parametrisation(name="b", translation=[[1, 0, 0]], rotation=[np.eye(3)])
    sim.add_source(GANSource("g", StubModel(), n=1))
    with pytest.raises(ConfigError, match="'translation' is changed by both parametrisations 'a' and 'b'"):
        _run(sim, Collect())


def test_same_parameter_once_auto_once_custom_is_allowed() -> None:
    volume = BoxVolume("box", 40.0)
    volume.add_dynamic_parametrisation(name="a", translation=[[0, 0, 0]])
    volume.add_dynamic_parametrisation(name="b", translation=[[1, 0, 0]], auto_changer=False)
    changers = volume.create_changers()
    assert [c.name for c in changers] == ["box.a.translation"]
    assert isinstance(changers[0], ParameterChanger) and changers[0].attached_to is volume


# -- each run gets its own values -------------------------------------------------------------
def test_volume_pose_per_run_moves_the_analog_decays_and_the_exit_surface() -> None:
    translations = [[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [0.0, -20.0, 10.0]]
    rotations = [np.eye(3), np.eye(3), rotation_matrix("z", 90 * deg)]
    local_centre = np.array([15.0, 0.0, 0.0])  # the source ball sits off the volume's origin
    sim = Simulation(seed=11, device="cpu", exit_surface="sphere:60")
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(SphereVolume("ball", 30.0, voxel_size=10.0))
    volume.add_dynamic_parametrisation(name="pose", translation=translations, rotation=rotations)
    # no interaction: every decay gives one exit photon, so the particles sample the decays without bias
    sim.add_source(AnalogSource("a", isotope="Tc99m", shape="sphere:15,0,0,8", n=400, photoelectric=False, compton=False, rayleigh=False))
    collect = Collect(volume=volume)
    _run(sim, collect)

    geometry = [a for a in sim.hidden_actors if isinstance(a, DynamicGeometryActor)]
    assert len(geometry) == 1 and not any(isinstance(a, DynamicSourceActor) for a in sim.hidden_actors)
    assert geometry[0].applied == [(r, f"ball.pose.{p}") for r in range(3) for p in ("translation", "rotation")]
    for run_id in range(3):
        _, t, r = collect.poses[run_id]
        np.testing.assert_array_equal(t, translations[run_id])
        np.testing.assert_array_equal(r, rotations[run_id])
        event = np.stack([collect.column(f"EventPosition_{a}", run_id) for a in "XYZ"], axis=1).astype(np.float64)
        m = len(event)
        assert m == 400
        expected = np.asarray(translations[run_id]) + rotations[run_id] @ local_centre
        # decays are uniform in a ball of radius 8: variance 8^2 / 5 per axis
        sigma = math.sqrt(8.0**2 / 5 / m)
        assert np.all(np.abs(event.mean(axis=0) - expected) < 5 * sigma), (run_id, event.mean(axis=0), expected)
        assert np.all(np.linalg.norm(event - expected, axis=1) <= 8.0 + 1e-4)
        # the exit surface (60 mm about the volume's origin) moved with the volume
        exit_point = np.stack([collect.column(f"PrePosition_{a}", run_id) for a in "XYZ"], axis=1).astype(np.float64)
        np.testing.assert_allclose(np.linalg.norm(exit_point - np.asarray(translations[run_id]), axis=1), 60.0, atol=1e-3)


def test_geometry_is_applied_before_the_sources() -> None:
    """A source changer sees the run's volume pose: geometry changers come first."""
    log: list[tuple[str, int, list[float]]] = []

    class Watch(Changer):
        def apply_change(self, run_id: int) -> None:
            log.append(("source", run_id, volume.translation.tolist()))

    sim = Simulation(seed=2)
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(translation=[[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    source = sim.add_source(GANSource("g", StubModel(), n=1))
    source.add_dynamic_parametrisation(name="watch", n=[1, 1, 1], auto_changer=False)
    sim.add_changer(Watch("watch", source))
    _run(sim, Collect())
    assert log == [("source", r, [float(r), 0.0, 0.0]) for r in range(3)]
    assert [type(a) for a in sim.hidden_actors] == [DynamicGeometryActor, DynamicSourceActor]
    assert DynamicGeometryActor.priority < DynamicSourceActor.priority < Actor.priority


def test_activity_per_run_gives_poisson_counts_and_nothing_at_zero() -> None:
    a = 3000 * Bq
    half_life = 1 * s
    sim = Simulation(seed=5)
    sim.run_timing_intervals = THREE_RUNS
    source = sim.add_source(GANSource("g", StubModel(), activity=a, half_life=half_life, batch_size=1000))
    source.add_dynamic_parametrisation(activity=[a, 0.0, 2 * a])
    collect = Collect()
    _run(sim, collect)
    assert collect.of_run(1) == []  # activity 0: no decay, no batch
    tau = half_life / math.log(2)
    # the value of a run is the activity at its start, decaying through the run
    for run_id, a_start in ((0, a), (2, 2 * a)):
        mean = a_start * tau * (1 - 2.0 ** -1)
        count = collect.decays(run_id)
        assert abs(count - mean) < 5 * math.sqrt(mean), (run_id, count, mean)
        times = collect.column("GlobalTime", run_id)
        start, end = THREE_RUNS[run_id]
        assert np.all((times >= start) & (times <= end))
    assert sum(b.counts.events for b in collect.batches) == sum(b.counts.decays for b in collect.batches) == len(np.concatenate([b.columns["EventID"] for b in collect.batches]))


def test_number_of_primaries_per_run() -> None:
    sim = Simulation(seed=5)
    sim.run_timing_intervals = THREE_RUNS
    source = sim.add_source(GANSource("g", StubModel(), n=3, batch_size=4))
    source.add_dynamic_parametrisation(n=[5, 0, 11])
    collect = Collect()
    result = _run(sim, collect)
    assert [collect.decays(r) for r in range(3)] == [5, 0, 11]
    assert result["timing"]["g"]["decays"] == 16
    ids = np.concatenate([b.columns["EventID"].numpy() for b in collect.batches])
    np.testing.assert_array_equal(ids, np.arange(16))


def test_per_run_parameter_of_the_wrong_kind_is_refused() -> None:
    sim = Simulation(seed=5)
    source = sim.add_source(GANSource("g", StubModel(), n=3))
    source.add_dynamic_parametrisation(activity=[1 * Bq])
    with pytest.raises(ConfigError, match="per-run activity needs the source to be defined by an activity"):
        _run(sim, Collect())


def _one_hot(shape: tuple[int, int, int], voxel: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros(shape)
    image[voxel] = 1.0
    return image


def test_condition_image_per_run_moves_the_conditions() -> None:
    shape = (4, 3, 2)
    geometry = ImageGeometry(shape, np.array([2.0, 3.0, 5.0]), np.array([-10.0, 4.0, 7.0]), rotation_matrix("x", 20 * deg))
    voxels = [(0, 0, 0), (3, 2, 1), (1, 2, 0)]
    images = [(_one_hot(shape, v), geometry) for v in voxels]
    condition = VoxelizedConditionGenerator(images[1])
    keys = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")
    model = StubModel({"KineticEnergy": 0.1, "PreDirection_X": 1.0, "PreDirection_Y": 0.0, "PreDirection_Z": 0.0},
                      cond_keys=keys, echo={"PrePosition_X": keys[0], "PrePosition_Y": keys[1], "PrePosition_Z": keys[2]})
    sim = Simulation(seed=9)
    sim.run_timing_intervals = THREE_RUNS
    source = sim.add_source(GANSource("g", model, n=200, condition=condition))
    source.add_dynamic_parametrisation(condition_image=images)
    collect = Collect()
    _run(sim, collect)
    for run_id, voxel in enumerate(voxels):
        event = np.stack([collect.column(k, run_id) for k in keys], axis=1).astype(np.float64)
        assert event.shape == (200, 3)
        index = geometry.world_to_index(event)
        assert np.all(np.abs(index - np.asarray(voxel)) <= 0.5 + 1e-4), run_id
        # the model was given these very conditions
        position = np.stack([collect.column(f"PrePosition_{a}", run_id) for a in "XYZ"], axis=1)
        np.testing.assert_array_equal(position, event.astype(np.float32))


def test_condition_image_needs_a_voxelised_generator() -> None:
    keys = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")
    condition = FunctionConditionGenerator(lambda n, g: {k: torch.zeros(n) for k in keys}, keys)
    sim = Simulation(seed=9)
    source = sim.add_source(GANSource("g", StubModel(cond_keys=keys), n=5, condition=condition))
    source.add_dynamic_parametrisation(condition_image=[(np.ones((2, 2, 2)), ImageGeometry((2, 2, 2), np.ones(3)))])
    with pytest.raises(ConfigError, match="voxelised condition generator"):
        _run(sim, Collect())


def test_condition_image_on_a_non_conditional_source_is_refused() -> None:
    # the model takes no condition: a per-run condition image would change nothing, silently
    sim = Simulation(seed=9)
    source = sim.add_source(GANSource("g", StubModel(), n=5))
    source.add_dynamic_parametrisation(condition_image=[(np.ones((2, 2, 2)), ImageGeometry((2, 2, 2), np.ones(3)))])
    with pytest.raises(ConfigError, match="condition"):
        _run(sim, Collect())


# -- custom changers --------------------------------------------------------------------------
class ScaledTranslation(Changer):
    """Moves the volume to the parametrisation's translation times its ``scale`` extra parameter."""

    def apply_change(self, run_id: int) -> None:
        dp = self.attached_to.dynamic_params["custom"]
        self.attached_to.translation = np.asarray(dp.values["translation"][run_id], dtype=np.float64) * dp.extra_params["scale"]


def test_auto_changer_false_stores_values_without_a_changer() -> None:
    sim = Simulation(seed=3)
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="custom", auto_changer=False, translation=[[1, 0, 0], [2, 0, 0], [3, 0, 0]], scale=10.0)
    assert volume.create_changers() == []
    sim.add_source(GANSource("g", StubModel(), n=2))
    collect = Collect(volume=volume)
    _run(sim, collect)
    assert sim.hidden_actors == []
    assert all(np.array_equal(t, [0, 0, 0]) for _, t, _ in collect.poses)
    assert volume.dynamic_params["custom"].values["translation"] == [[1, 0, 0], [2, 0, 0], [3, 0, 0]]


def test_custom_changer_is_applied_at_each_run_start() -> None:
    sim = Simulation(seed=3)
    sim.run_timing_intervals = THREE_RUNS
    volume = sim.add_volume(BoxVolume("box", 40.0))
    volume.add_dynamic_parametrisation(name="custom", auto_changer=False, translation=lambda iv: [[k, 0, -k] for k in range(len(iv))], scale=10.0)
    changer = sim.add_changer(ScaledTranslation("scaled", volume))
    sim.add_source(GANSource("g", StubModel(), n=3))
    collect = Collect(volume=volume)
    _run(sim, collect)
    geometry = [a for a in sim.hidden_actors if isinstance(a, DynamicGeometryActor)]
    assert len(geometry) == 1 and geometry[0].changers == [changer]
    assert geometry[0].applied == [(0, "scaled"), (1, "scaled"), (2, "scaled")]
    for run_id in range(3):
        np.testing.assert_array_equal(collect.poses[run_id][1], [10.0 * run_id, 0.0, -10.0 * run_id])
        np.testing.assert_array_equal(collect.column("PrePosition_X", run_id), [10.0 * run_id] * 3)
        np.testing.assert_array_equal(collect.column("PrePosition_Z", run_id), [-10.0 * run_id] * 3)


def test_custom_changer_on_a_source_goes_with_the_sources() -> None:
    class Double(Changer):
        def apply_change(self, run_id: int) -> None:
            self.attached_to.n = 2 * self.attached_to.dynamic_params["counts"].values["n"][run_id]

    sim = Simulation(seed=3)
    sim.run_timing_intervals = THREE_RUNS
    source = sim.add_source(GANSource("g", StubModel(), n=1))
    source.add_dynamic_parametrisation(name="counts", auto_changer=False, n=[1, 2, 3])
    sim.add_changer(Double("double", source))
    collect = Collect()
    _run(sim, collect)
    assert [type(a) for a in sim.hidden_actors] == [DynamicSourceActor]
    assert [collect.decays(r) for r in range(3)] == [2, 4, 6]


def test_changer_of_an_object_outside_the_simulation_is_refused() -> None:
    sim = Simulation(seed=3)
    sim.add_volume(BoxVolume("box", 40.0))
    sim.add_source(GANSource("g", StubModel(), n=1))
    other = BoxVolume("other", 40.0)
    other.add_dynamic_parametrisation(name="custom", auto_changer=False, translation=[[0, 0, 0]], scale=1.0)
    sim.add_changer(ScaledTranslation("stray", other))
    with pytest.raises(ConfigError, match="changer 'stray'.*'other' is not part of this simulation"):
        _run(sim, Collect())
    stray_source = GANSource("g", StubModel(), n=1)  # same name, another object
    sim2 = Simulation(seed=3)
    sim2.add_source(GANSource("g", StubModel(), n=1))
    sim2.add_changer(ParameterChanger("stray", stray_source, "n", [1]))
    with pytest.raises(ConfigError, match="not part of this simulation"):
        sim2.run()


def test_changer_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="attached_to must be a volume or a source"):
        Changer("c", object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a Changer"):
        Simulation().add_changer(object())  # type: ignore[arg-type]
