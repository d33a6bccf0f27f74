"""GAN sources: exact event and time accounting, geometry (backward distance, frames), key checks, pairs.

Most tests use a stub model whose rows are known (``TableModel``: the rows of a small table,
cycled, continuing from call to call), so accounting can be checked exactly. One test
trains a tiny real model and runs it with device ``auto``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from gansim.errors import ConfigError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.isotopes import get_isotope
from gansim.physics.pet import PAIR_KEYS, pairs_to_tlor
from gansim.sim.actors.base import Actor
from gansim.sim.conditions import FunctionConditionGenerator, VoxelizedConditionGenerator
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, ParticleBatch
from gansim.sim.simulation import Simulation
from gansim.sim.sources import GANPairsSource, GANSource
from gansim.sim.volumes import BoxVolume
from gansim.units import Bq, c_light, deg, s

POS = ("PrePosition_X", "PrePosition_Y", "PrePosition_Z")
DIR = ("PreDirection_X", "PreDirection_Y", "PreDirection_Z")
EVENT_POS = ("EventPosition_X", "EventPosition_Y", "EventPosition_Z")
EVENT_DIR = ("EventDirection_X", "EventDirection_Y", "EventDirection_Z")
ENERGIES = [0.14, 0.0, 0.05, -1.0, math.nan, 0.2]
E_MIN, E_MAX = 0.03, 0.15  # keeps 0.14 and 0.05 of ENERGIES


# -- helpers ---------------------------------------------------------------------------------
class Collect(Actor):
    def __init__(self, name: str = "collect") -> None:
        super().__init__(name)
        self.batches: list[ParticleBatch] = []

    def process(self, batch: ParticleBatch) -> None:
        self.batches.append(batch)

    def select(self, source: str | None = None, run_id: int | None = None) -> list[ParticleBatch]:
        return [b for b in self.batches if (source is None or b.source == source) and (run_id is None or b.run_id == run_id)]

    def column(self, name: str, source: str | None = None, run_id: int | None = None) -> np.ndarray:
        parts = [b.columns[name].cpu().numpy() for b in self.select(source, run_id)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def total(self, field: str, source: str | None = None, run_id: int | None = None) -> int:
        return sum(getattr(b.counts, field) for b in self.select(source, run_id))


class TableModel:
    """A stub GAN: row g of everything it generates is row g % len(table) of ``table`` (g counts across calls)."""

    def __init__(self, table: Mapping[str, Sequence[float]], *, cond_keys: Sequence[str] = (), dtype: torch.dtype = torch.float32) -> None:
        self.table = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)).to(dtype) for k, v in table.items()}
        self.length = len(next(iter(self.table.values())))
        self.keys = list(self.table)
        self.cond_keys = list(cond_keys)
        self.device = torch.device("cpu")
        self.rows = 0
        self.calls: list[dict[str, Any]] = []

    def sample_tensors(self, n: int, cond: Mapping[str, torch.Tensor] | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        assert generator is None or isinstance(generator, torch.Generator)
        self.calls.append({"n": n, "cond": None if cond is None else {k: v.clone() for k, v in cond.items()}})
        index = (self.rows + torch.arange(n)) % self.length
        self.rows += n
        return {k: v[index].clone() for k, v in self.table.items()}

    def rows_of(self, count: int, start: int = 0) -> dict[str, np.ndarray]:
        """The float64 values of rows start .. start+count-1 as generated."""
        index = (start + np.arange(count)) % self.length
        return {k: v.double().numpy()[index] for k, v in self.table.items()}


def single_table(energies: Sequence[float] = ENERGIES, **extra: Sequence[float]) -> dict[str, list[float]]:
    n = len(energies)
    table: dict[str, list[float]] = {"KineticEnergy": list(energies)}
    for k, key in enumerate(POS):
        table[key] = [float(10 * k + i) for i in range(n)]
    table.update({DIR[0]: [0.0] * n, DIR[1]: [0.0] * n, DIR[2]: [1.0] * n})
    table.update({k: list(v) for k, v in extra.items()})
    return table


def in_window(e: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(e) & (e > 0) & (e >= np.float32(E_MIN)) & (e <= np.float32(E_MAX))


def simulation(intervals: Sequence[tuple[float, float]] = ((0.0, 1 * s),), seed: int = 7) -> Simulation:
    sim = Simulation(seed=seed)
    sim.run_timing_intervals = list(intervals)
    return sim


def run(sim: Simulation) -> Collect:
    collect = Collect()
    sim.add_actor(collect)
    sim.run()
    return collect


# -- event accounting --------------------------------------------------------------------------
def test_skip_events_accounting_is_exact_and_event_ids_are_consecutive() -> None:
    """Two sources, two runs, several batches per run: every row is counted once, IDs have no gap."""
    sim = simulation([(0.0, 1 * s), (1 * s, 2 * s)])
    a_model = TableModel(single_table())
    b_model = TableModel(single_table([0.1, 0.01, 0.12, 0.2]))
    a = sim.add_source(GANSource("a", a_model, n=40, batch_size=7, energy_min_threshold=E_MIN, energy_max_threshold=E_MAX))
    sim.add_source(GANSource("b", b_model, n=17, batch_size=5, energy_min_threshold=E_MIN, energy_max_threshold=E_MAX))
    assert a.skip_policy == "SkipEvents"
    collect = run(sim)

    offsets = {"a": 0, "b": 0}
    models = {"a": a_model, "b": b_model}
    for batch in collect.batches:
        k = batch.counts.decays
        rows = models[batch.source].rows_of(k, offsets[batch.source])
        offsets[batch.source] += k
        e = rows["KineticEnergy"]
        ok = in_window(e)
        assert batch.counts.skipped == int((~ok).sum())
        assert batch.counts.events == k - batch.counts.skipped == int(ok.sum())
        assert batch.counts.invalid == int((~np.isfinite(e)).sum())
        assert batch.counts.zero_energy == 0
        assert batch.counts.particles == len(batch) == int(ok.sum())
        np.testing.assert_array_equal(batch.columns["KineticEnergy"].numpy(), e[ok].astype(np.float32))
        np.testing.assert_array_equal(batch.columns["PrePosition_Y"].numpy(), rows["PrePosition_Y"][ok].astype(np.float32))
        assert batch.columns["PhotonIndex"].eq(0).all()
    assert offsets == {"a": 80, "b": 34}
    for source, n in (("a", 40), ("b", 17)):
        for run_id in (0, 1):
            assert collect.total("decays", source, run_id) == n
    # ids in the order the batches came: a run 0, b run 0, a run 1, b run 1, consecutive
    ids = np.concatenate([b.columns["EventID"].numpy() for b in collect.batches])
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
    assert [(b.run_id, b.source) for b in collect.batches] == sorted(((b.run_id, b.source) for b in collect.batches))
    assert sim.timing["a"]["events"] == collect.total("events", "a") and sim.timing["a"]["decays"] == 80


def test_zero_energy_accounting_keeps_every_row_an_event() -> None:
    sim = simulation([(0.0, 1 * s), (1 * s, 2 * s)])
    model = TableModel(single_table())
    sim.add_source(GANSource("a", model, n=25, batch_size=6, skip_policy="ZeroEnergy", energy_min_threshold=E_MIN, energy_max_threshold=E_MAX))
    collect = run(sim)
    start = 0
    for batch in collect.batches:
        k = batch.counts.decays
        e = model.rows_of(k, start)["KineticEnergy"]
        ok = in_window(e)
        assert batch.counts.events == k
        assert batch.counts.skipped == 0
        assert batch.counts.zero_energy == int((~ok).sum())
        assert batch.counts.invalid == int((~np.isfinite(e)).sum())
        assert batch.counts.particles == len(batch) == int(ok.sum())
        # every row is an event: its ID is its row number, gaps where zero-energy rows were
        np.testing.assert_array_equal(batch.columns["EventID"].numpy(), start + np.flatnonzero(ok))
        start += k
    assert start == 50 and collect.total("events") == 50
    assert collect.total("zero_energy") == int((~in_window(model.rows_of(50)["KineticEnergy"])).sum()) == 33


def test_non_finite_positions_directions_and_weights_are_invalid() -> None:
    table = single_table([0.1] * 6, W=[1.0, 2.0, math.nan, 0.5, 1.0, 1.0])
    table["PrePosition_X"][1] = math.inf
    table["PreDirection_X"][3], table["PreDirection_Y"][3], table["PreDirection_Z"][3] = 0.0, 0.0, 0.0  # no direction
    table["PreDirection_Z"][4] = math.nan
    for policy in ("SkipEvents", "ZeroEnergy"):
        sim = simulation()
        sim.add_source(GANSource("a", TableModel(table), n=6, weight_key="W", skip_policy=policy))
        collect = run(sim)
        assert collect.total("invalid") == 4
        assert collect.total("particles") == 2
        np.testing.assert_array_equal(collect.column("Weight"), [1.0, 1.0])
        assert collect.total("skipped" if policy == "SkipEvents" else "zero_energy") == 4
        assert np.isfinite(collect.column("PrePosition_X")).all()


def test_weight_defaults_to_one() -> None:
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table([0.1, 0.2])), n=4))
    collect = run(sim)
    np.testing.assert_array_equal(collect.column("Weight"), np.ones(4, dtype=np.float32))
    assert collect.column("Weight").dtype == np.float32


def test_batches_hold_the_documented_columns_and_dtypes() -> None:
    sim = simulation()
    source = sim.add_source(GANSource("a", TableModel(single_table([0.1, 0.2], T=[1.0, 2.0])), n=4, time_key="T"))
    collect = run(sim)
    assert source.columns() == PARTICLE_COLUMNS
    batch = collect.batches[0]
    assert tuple(batch.columns) == PARTICLE_COLUMNS
    dtypes = {k: v.dtype for k, v in batch.columns.items()}
    for key in ("KineticEnergy", *POS, *DIR, "Weight"):
        assert dtypes[key] == torch.float32, key
    for key in ("GlobalTime", "TimeFromBeginOfEvent"):
        assert dtypes[key] == torch.float64, key
    assert dtypes["EventID"] == dtypes["PhotonIndex"] == torch.int64


def test_batch_size_bounds_the_rows_per_forward_pass() -> None:
    """``batch_size``: rows generated per forward pass (and decays per batch), also with n per run."""
    sim = simulation()
    model = TableModel(single_table([0.1]))
    sim.add_source(GANSource("a", model, n=1000, batch_size=100))
    collect = run(sim)
    assert collect.total("decays") == 1000
    assert max(call["n"] for call in model.calls) <= 100
    assert max(b.counts.decays for b in collect.batches) <= 100


# -- time accounting ------------------------------------------------------------------------
INTERVALS = [(0.0, 1 * s), (2 * s, 5 * s)]


def _decay_times(n: int = 60, half_life: float | None = 1 * s, seed: int = 21, batch_size: int = 16, name: str = "a") -> list[np.ndarray]:
    """Per run, the decay times of an all-valid source without a time key (its GlobalTime); random streams follow the source's name."""
    sim = simulation(INTERVALS, seed=seed)
    sim.add_source(GANSource(name, TableModel(single_table([0.1])), n=n, half_life=half_life, batch_size=batch_size))
    collect = run(sim)
    for run_id in range(len(INTERVALS)):
        np.testing.assert_array_equal(collect.column("TimeFromBeginOfEvent", run_id=run_id), 0.0)
    return [collect.column("GlobalTime", run_id=r) for r in range(len(INTERVALS))]


def test_decay_times_lie_in_the_run_and_increase() -> None:
    for run_id, times in enumerate(_decay_times()):
        start, end = INTERVALS[run_id]
        assert len(times) == 60
        assert np.all((times >= start) & (times <= end))
        assert np.all(np.diff(times) > 0)


@pytest.mark.parametrize("half_life", [None, 0.7 * s])
def test_n_decay_times_follow_the_decay_law(half_life: float | None) -> None:
    """n per run: the times are the Poisson process given its count, i.i.d. with density A(t) (KS test)."""
    sim = simulation([(1 * s, 4 * s)], seed=4)
    sim.add_source(GANSource("a", TableModel(single_table([0.1])), n=3000, half_life=half_life, batch_size=512))
    times = run(sim).column("GlobalTime")
    assert len(times) == 3000 and np.all(np.diff(times) >= 0)
    t0, t1 = 1 * s, 4 * s
    if half_life is None:
        cdf = lambda t: (t - t0) / (t1 - t0)  # noqa: E731
    else:
        tau = half_life / math.log(2)
        cdf = lambda t: -np.expm1(-(t - t0) / tau) / -math.expm1(-(t1 - t0) / tau)  # noqa: E731
    assert stats.kstest(times, cdf).pvalue > 1e-4


def test_relative_timing_adds_the_gan_time_to_the_decay_time() -> None:
    decay = _decay_times()
    sim = simulation(INTERVALS, seed=21)
    model = TableModel(single_table([0.1], T=[0.5, 1.5, 2.0, 0.25]))
    sim.add_source(GANSource("a", model, n=60, half_life=1 * s, batch_size=16, time_key="T"))
    collect = run(sim)
    gan_time = model.rows_of(120)["T"]
    for run_id in range(2):
        g = gan_time[60 * run_id : 60 * (run_id + 1)]
        glob = collect.column("GlobalTime", run_id=run_id)
        np.testing.assert_array_equal(glob, decay[run_id] + g)
        np.testing.assert_array_equal(collect.column("TimeFromBeginOfEvent", run_id=run_id), glob - decay[run_id])
        np.testing.assert_allclose(collect.column("TimeFromBeginOfEvent", run_id=run_id), g, atol=1e-6)


def test_absolute_timing_takes_the_gan_time() -> None:
    sim = simulation(INTERVALS, seed=21)
    model = TableModel(single_table([0.1], T=[0.5, 1.5, 2.0, 0.25]))
    sim.add_source(GANSource("a", model, n=60, half_life=1 * s, batch_size=16, time_key="T", relative_timing=False))
    collect = run(sim)
    gan_time = model.rows_of(120)["T"]
    for run_id in range(2):
        g = gan_time[60 * run_id : 60 * (run_id + 1)]
        np.testing.assert_array_equal(collect.column("GlobalTime", run_id=run_id), g)
        # the time since the decay is unknown with absolute timing: the GAN's own time is reported
        np.testing.assert_array_equal(collect.column("TimeFromBeginOfEvent", run_id=run_id), g)


def test_skipped_rows_consume_their_decay_time() -> None:
    decay = np.concatenate(_decay_times())
    ok = in_window(TableModel(single_table()).rows_of(120)["KineticEnergy"])
    results = {}
    for policy in ("SkipEvents", "ZeroEnergy"):
        sim = simulation(INTERVALS, seed=21)
        sim.add_source(GANSource("a", TableModel(single_table()), n=60, half_life=1 * s, batch_size=16, skip_policy=policy,
                                 energy_min_threshold=E_MIN, energy_max_threshold=E_MAX))
        collect = run(sim)
        assert collect.total("decays") == 120
        results[policy] = collect.column("GlobalTime")
        # the emitted events keep the decay times of their own rows: a subset of the decay sequence
        np.testing.assert_array_equal(results[policy], decay[ok])
    np.testing.assert_array_equal(results["SkipEvents"], results["ZeroEnergy"])


def _poisson_mean(activity: float, half_life: float, t0: float, t1: float, events_per_decay: float = 1.0) -> float:
    delta = t1 - t0
    return events_per_decay * activity * half_life / math.log(2) * (1 - 2.0 ** (-delta / half_life)) * 2.0 ** (-t0 / half_life)


def test_activity_gives_poisson_counts_of_the_decayed_activity() -> None:
    activity, half_life = 2500 * Bq, 2 * s
    intervals = [(1 * s, 2 * s), (4 * s, 6 * s), (6 * s, 6 * s)]
    sim = simulation(intervals, seed=8)
    sim.add_source(GANSource("a", TableModel(single_table([0.1])), activity=activity, half_life=half_life, batch_size=700))
    sim.add_source(GANSource("b", TableModel(single_table([0.1])), activity=activity, half_life=half_life, events_per_decay=0.5, batch_size=700))
    collect = run(sim)
    for run_id, (t0, t1) in enumerate(intervals[:2]):
        for source, epd in (("a", 1.0), ("b", 0.5)):
            mean = _poisson_mean(activity, half_life, t0, t1, epd)
            count = collect.total("decays", source, run_id)
            assert abs(count - mean) < 5 * math.sqrt(mean), (source, run_id, count, mean)
            times = collect.column("GlobalTime", source, run_id)
            assert np.all((times >= t0) & (times <= t1)) and np.all(np.diff(times) > 0)
    assert collect.select(run_id=2) == []  # a zero-length run has no decay


def test_isotope_sets_half_life_and_events_per_decay() -> None:
    iso = get_isotope("Tc99m")
    source = GANSource("a", TableModel(single_table([0.1])), activity=3000 * Bq, isotope="Tc99m")
    assert source.half_life == iso.half_life
    assert source.events_per_decay() == pytest.approx(iso.photons_per_decay)
    sim = simulation([(0.0, 1 * s)], seed=3)
    sim.add_source(source)
    count = run(sim).total("decays")
    mean = _poisson_mean(3000 * Bq, iso.half_life, 0.0, 1 * s, iso.photons_per_decay)
    assert abs(count - mean) < 5 * math.sqrt(mean)
    pairs = GANPairsSource("p", TableModel({k: [1.0] for k in PAIR_KEYS}), activity=1 * Bq, isotope="F18")
    assert pairs.events_per_decay() == pytest.approx(get_isotope("F18").beta_plus_fraction)


def test_n_per_run_in_a_zero_length_run_decays_at_its_time() -> None:
    """n primaries per run: a zero-length interval gets its n primaries at that instant, as the analog source does."""
    sim = simulation([(0.0, 1 * s), (1 * s, 1 * s)], seed=3)
    sim.add_source(GANSource("a", TableModel(single_table([0.1])), n=5))
    collect = run(sim)
    assert collect.total("decays", run_id=1) == 5
    np.testing.assert_array_equal(collect.column("GlobalTime", run_id=1), np.full(5, 1 * s))


# -- geometry ---------------------------------------------------------------------------------
BACKWARD_TABLE = {
    "KineticEnergy": [0.1, 0.12, 0.14],
    "X": [1.0, -5.0, 20.0],
    "Y": [2.0, 7.0, -3.0],
    "Z": [3.0, 0.5, 100.0],
    "DX": [3.0, 0.0, 1.0],  # not normalised on purpose
    "DY": [0.0, -2.0, 1.0],
    "DZ": [4.0, 0.0, 1.0],
    "T": [1.0, 2.0, 3.0],
}


def _unit(d: np.ndarray) -> np.ndarray:
    return d / np.linalg.norm(d, axis=1, keepdims=True)


@pytest.mark.parametrize("z_key", ["Z", 271.1])
def test_backward_distance_moves_back_along_the_unit_direction(z_key: Any) -> None:
    d = 25.0
    decay = _decay_times(n=6, half_life=None, seed=13)
    sim = simulation(INTERVALS, seed=13)
    model = TableModel(BACKWARD_TABLE)
    sim.add_source(GANSource("a", model, n=6, batch_size=16, position_keys=["X", "Y", z_key], direction_keys=["DX", "DY", "DZ"], time_key="T", backward_distance=d))
    collect = run(sim)
    rows = model.rows_of(12)
    p = np.stack([rows["X"], rows["Y"], rows["Z"] if z_key == "Z" else np.full(12, 271.1)], axis=1)
    u = _unit(np.stack([rows["DX"], rows["DY"], rows["DZ"]], axis=1))
    position = np.stack([collect.column(k) for k in POS], axis=1)
    np.testing.assert_allclose(position, p - d * u, atol=1e-4)
    np.testing.assert_allclose(np.stack([collect.column(k) for k in DIR], axis=1), u, atol=1e-6)
    np.testing.assert_allclose(collect.column("TimeFromBeginOfEvent"), rows["T"] - d / c_light, atol=1e-6)
    np.testing.assert_allclose(collect.column("GlobalTime"), np.concatenate(decay) + rows["T"] - d / c_light, rtol=0, atol=1e-6)


def test_backward_distance_without_a_time_key_keeps_the_decay_time() -> None:
    decay = _decay_times(n=6, half_life=None, seed=13)
    sim = simulation(INTERVALS, seed=13)
    sim.add_source(GANSource("a", TableModel(BACKWARD_TABLE), n=6, batch_size=16, position_keys=["X", "Y", "Z"], direction_keys=["DX", "DY", "DZ"], backward_distance=40.0))
    collect = run(sim)
    np.testing.assert_array_equal(collect.column("GlobalTime"), np.concatenate(decay))
    np.testing.assert_array_equal(collect.column("TimeFromBeginOfEvent"), 0.0)


def test_constant_keys_without_backward_distance() -> None:
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(BACKWARD_TABLE), n=3, position_keys=[0.5, "Y", -7], direction_keys=["DX", 0, "DZ"], energy_key=0.2))
    collect = run(sim)
    np.testing.assert_array_equal(collect.column("PrePosition_X"), np.float32(0.5))
    np.testing.assert_array_equal(collect.column("PrePosition_Z"), np.float32(-7))
    np.testing.assert_array_equal(collect.column("KineticEnergy"), np.float32(0.2))
    np.testing.assert_allclose(collect.column("PreDirection_Y"), 0.0)
    np.testing.assert_allclose(collect.column("PreDirection_X") ** 2 + collect.column("PreDirection_Z") ** 2, 1.0, atol=1e-6)


def test_the_volume_pose_is_applied_once_to_particles_and_conditions() -> None:
    rotation = rotation_matrix((1.0, 1.0, 0.0), 40 * deg) @ rotation_matrix("z", 25 * deg)
    translation = np.array([10.0, -20.0, 30.0])
    n = 8
    cond_local = {
        EVENT_POS[0]: np.arange(n, dtype=np.float32), EVENT_POS[1]: np.full(n, 2.0, dtype=np.float32), EVENT_POS[2]: -np.arange(n, dtype=np.float32),
        EVENT_DIR[0]: np.ones(n, dtype=np.float32), EVENT_DIR[1]: np.zeros(n, dtype=np.float32), EVENT_DIR[2]: np.zeros(n, dtype=np.float32),
    }
    condition = FunctionConditionGenerator(lambda k, g: {key: value[:k] for key, value in cond_local.items()}, EVENT_POS + EVENT_DIR)
    model = TableModel(BACKWARD_TABLE, cond_keys=EVENT_POS)
    sim = simulation()
    sim.add_volume(BoxVolume("patient", 100.0, translation=translation, rotation=rotation))
    source = sim.add_source(GANSource("a", model, n=n, batch_size=n, position_keys=["X", "Y", "Z"], direction_keys=["DX", "DY", "DZ"], condition=condition, attached_to="patient"))
    collect = run(sim)
    assert source.columns() == PARTICLE_COLUMNS + EVENT_COLUMNS
    # the model got the conditions in the local frame, by name
    assert len(model.calls) == 1 and set(model.calls[0]["cond"]) == set(EVENT_POS)
    for key in EVENT_POS:
        np.testing.assert_array_equal(model.calls[0]["cond"][key].numpy(), cond_local[key])
    rows = model.rows_of(n)
    p = np.stack([rows["X"], rows["Y"], rows["Z"]], axis=1)
    u = _unit(np.stack([rows["DX"], rows["DY"], rows["DZ"]], axis=1))
    np.testing.assert_allclose(np.stack([collect.column(k) for k in POS], axis=1), p @ rotation.T + translation, atol=1e-4)
    np.testing.assert_allclose(np.stack([collect.column(k) for k in DIR], axis=1), u @ rotation.T, atol=1e-6)
    c = np.stack([cond_local[k] for k in EVENT_POS], axis=1).astype(np.float64)
    e = np.stack([cond_local[k] for k in EVENT_DIR], axis=1).astype(np.float64)
    np.testing.assert_allclose(np.stack([collect.column(k) for k in EVENT_POS], axis=1), c @ rotation.T + translation, atol=1e-4)
    np.testing.assert_allclose(np.stack([collect.column(k) for k in EVENT_DIR], axis=1), e @ rotation.T, atol=1e-6)


def test_attached_to_an_unknown_volume_is_refused() -> None:
    sim = simulation()
    sim.add_volume(BoxVolume("patient", 100.0))
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, attached_to="phantom"))
    with pytest.raises(ConfigError, match="attached_to 'phantom' is neither 'world' nor a volume of this simulation"):
        run(sim)
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, attached_to="phantom"))
    with pytest.raises(ConfigError, match="attached_to 'phantom'"):
        run(sim)


# -- configuration errors -----------------------------------------------------------------------
def test_unknown_key_suggests_close_names() -> None:
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, position_keys=("PrePosition_X", "PrePosition_Y", "PrePosition_Zz")))
    with pytest.raises(ConfigError, match=r"position_keys 'PrePosition_Zz' is not an output of the model \(did you mean PrePosition_Z"):
        run(sim)
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, time_key="Time"))
    with pytest.raises(ConfigError, match="time_key 'Time' is not an output of the model.*available: KineticEnergy"):
        run(sim)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"position_keys": ("X", "Y")}, "position_keys"),
        ({"direction_keys": ("a", "b", "c", "d")}, "direction_keys"),
        ({"energy_key": ("E1", "E2")}, "energy_key"),
        ({"position_keys": "XYZ"}, "position_keys"),
        ({"position_keys": ("X", "Y", math.nan)}, "not finite"),
        ({"position_keys": ("X", "", "Z")}, "neither a key name nor a number"),
        ({"position_keys": None}, "position_keys is required"),
        ({"energy_key": None}, "energy_key is required"),
        ({"relative_timing": False}, "relative_timing=False.*time_key"),
        ({"relative_timing": 1, "time_key": "T"}, "relative_timing"),
        ({"skip_policy": "skip"}, "skip_policy 'skip'"),
        ({"energy_min_threshold": 0.2, "energy_max_threshold": 0.1}, "energy_min_threshold"),
        ({"energy_min_threshold": 0.1, "energy_max_threshold": 0.1}, "energy_min_threshold"),
        ({"backward_distance": -1.0}, "backward_distance"),
        ({"batch_size": 0}, "batch_size"),
        ({"events_per_decay": 0.0}, "events_per_decay"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GANSource("a", TableModel(single_table()), n=1, **kwargs)


@pytest.mark.parametrize("strength", [{}, {"n": 1, "activity": 1 * Bq}, {"n": -1}, {"n": 1.5}, {"activity": -1.0}, {"activity": math.inf}])
def test_strength_must_be_one_activity_or_one_count(strength: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        GANSource("a", TableModel(single_table()), **strength)


def test_conditional_model_needs_a_condition() -> None:
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table(), cond_keys=EVENT_POS), n=1))
    with pytest.raises(ConfigError, match=r"conditional on \['EventPosition_X', 'EventPosition_Y', 'EventPosition_Z'\]"):
        run(sim)


def test_condition_missing_a_model_key_is_refused() -> None:
    condition = FunctionConditionGenerator(lambda n, g: {k: torch.zeros(n) for k in EVENT_POS[:2]}, EVENT_POS[:2])
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table(), cond_keys=EVENT_POS), n=1, condition=condition))
    with pytest.raises(ConfigError, match=r"also needs \['EventPosition_Z'\]"):
        run(sim)


def test_condition_on_a_non_conditional_model_is_refused() -> None:
    condition = FunctionConditionGenerator(lambda n, g: {k: torch.zeros(n) for k in EVENT_POS}, EVENT_POS)
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, condition=condition))
    with pytest.raises(ConfigError, match="not conditional"):
        run(sim)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_explicit_cuda_without_cuda_is_a_config_error() -> None:
    sim = simulation()
    sim.add_source(GANSource("a", TableModel(single_table()), n=1, device="cuda"))
    with pytest.raises(ConfigError, match="CUDA is not available"):
        run(sim)


# -- a real (tiny) model ------------------------------------------------------------------------
REAL_KEYS = ["KineticEnergy", *POS, *DIR]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import tiny_config

    from gansim.config import parse_config
    from gansim.models.phsp_gan import PhaseSpaceGANConfig
    from gansim.models.phsp_train import train_phase_space

    tmp = tmp_path_factory.mktemp("tiny_gan")
    rng = np.random.default_rng(17)
    n = 3000
    event = rng.uniform(-20, 20, (n, 3))
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    names = REAL_KEYS + list(EVENT_POS)
    table = np.zeros(n, dtype=[(k, "<f4") for k in names])
    table["KineticEnergy"] = rng.uniform(0.1, 0.14, n)
    for a in range(3):
        table[POS[a]] = event[:, a] + 100.0 * direction[:, a]
        table[DIR[a]] = direction[:, a]
        table[EVENT_POS[a]] = event[:, a]
    path = tmp / "phsp.npy"
    np.save(path, table)
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(data={"keys": REAL_KEYS, "cond_keys": list(EVENT_POS)}, train={"total_rows": 2048}))
    return train_phase_space(path, cfg, tmp / "run", force=True, log=lambda *_: None)


def test_a_real_tiny_model_runs_with_device_auto(tiny_model_dir: Path) -> None:
    from gansim.training.device import resolve_device

    geometry = ImageGeometry.centred((4, 4, 4), 10.0)
    image = np.zeros((4, 4, 4))
    image[1:3, 1:3, 1:3] = 1.0
    image[0, 0, 0] = 3.0
    condition = VoxelizedConditionGenerator((image, geometry))
    sim = Simulation(seed=12, device="auto")
    sim.run_timing_intervals = [(0.0, 1 * s), (1 * s, 2 * s)]
    source = sim.add_source(GANSource("gan", tiny_model_dir, n=500, batch_size=200, device="auto", condition=condition))
    collect = run(sim)
    assert source.device == resolve_device("auto")
    assert source.columns() == PARTICLE_COLUMNS + EVENT_POS
    for run_id in range(2):
        batches = collect.select(run_id=run_id)
        assert batches and sum(b.counts.decays for b in batches) == 500
        for b in batches:
            assert b.counts.events + b.counts.skipped == b.counts.decays
            assert b.counts.particles == len(b) == b.counts.events
            assert b.counts.invalid == 0
    assert sim.timing["gan"]["decays"] == 1000
    columns = {k: collect.column(k) for k in PARTICLE_COLUMNS + EVENT_POS}
    for key, value in columns.items():
        assert np.isfinite(value).all(), key
    assert (columns["KineticEnergy"] > 0).all()
    norm = np.sqrt(sum(columns[k].astype(np.float64) ** 2 for k in DIR))
    np.testing.assert_allclose(norm, 1.0, atol=1e-5)
    event = np.stack([columns[k] for k in EVENT_POS], axis=1)
    index = geometry.world_to_index(event.astype(np.float64))
    assert np.all(np.abs(index - 1.5) <= 2.0 + 1e-4)  # inside the image
    np.testing.assert_array_equal(columns["EventID"], np.arange(len(columns["EventID"])))


# -- pairs --------------------------------------------------------------------------------------
def _pair_table(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    base = {"X1": 1.0, "Y1": 2.0, "Z1": 3.0, "X2": -1.0, "Y2": -2.0, "Z2": -3.0, "dX1": 1.0, "dY1": 0.0, "dZ1": 0.0,
            "dX2": -2.0, "dY2": 0.0, "dZ2": 0.0, "E1": 0.511, "E2": 0.511, "t1": 1.0, "t2": 1.5}
    return {k: [float(r.get(k, base[k])) for r in rows] for k in base}


def test_pairs_keep_per_photon_times_and_apply_the_window_per_photon() -> None:
    rows = [
        {"t1": 1.0, "t2": 1.5},  # both emitted
        {"E2": 0.3},  # photon 1 below the threshold: photon 0 alone
        {"E1": 0.1, "E2": 0.0},  # both off: a zero-energy event
        {"X2": math.nan},  # invalid: both off
        {"E1": 0.2, "t2": 0.7},  # photon 0 below: photon 1 alone
    ]
    decay = _decay_times(n=5, half_life=None, seed=31, name="pet")[0]
    sim = simulation(INTERVALS[:1], seed=31)
    model = TableModel(_pair_table(rows))
    sim.add_source(GANPairsSource("pet", model, n=5, batch_size=16, energy_min_threshold=0.4))
    collect = run(sim)
    counts = collect.batches[0].counts
    assert len(collect.batches) == 1
    assert (counts.decays, counts.events, counts.skipped, counts.zero_energy, counts.invalid, counts.particles) == (5, 5, 0, 2, 1, 4)
    np.testing.assert_array_equal(collect.column("EventID"), [0, 0, 1, 4])
    np.testing.assert_array_equal(collect.column("PhotonIndex"), [0, 1, 0, 1])
    np.testing.assert_allclose(collect.column("KineticEnergy"), [0.511, 0.511, 0.511, 0.511])
    glob = collect.column("GlobalTime")
    np.testing.assert_allclose(glob, decay[[0, 0, 1, 4]] + np.array([1.0, 1.5, 1.0, 0.7]), rtol=0, atol=1e-6)
    assert glob[0] - glob[1] == pytest.approx(1.0 - 1.5, abs=1e-6)
    np.testing.assert_allclose(collect.column("TimeFromBeginOfEvent"), [1.0, 1.5, 1.0, 0.7], atol=1e-6)
    position = np.stack([collect.column(k) for k in POS], axis=1)
    np.testing.assert_allclose(position, [[1, 2, 3], [-1, -2, -3], [1, 2, 3], [-1, -2, -3]])
    direction = np.stack([collect.column(k) for k in DIR], axis=1)
    np.testing.assert_allclose(direction, [[1, 0, 0], [-1, 0, 0], [1, 0, 0], [-1, 0, 0]])


def test_pairs_refuse_skip_events_and_wrong_key_counts() -> None:
    model = TableModel(_pair_table([{}]))
    with pytest.raises(ConfigError, match="only has the ZeroEnergy policy"):
        GANPairsSource("pet", model, n=1, skip_policy="SkipEvents")
    with pytest.raises(ConfigError, match="position_keys"):
        GANPairsSource("pet", model, n=1, position_keys=("X1", "Y1", "Z1"))
    with pytest.raises(ConfigError, match="energy_key"):
        GANPairsSource("pet", model, n=1, energy_key="E1")
    with pytest.raises(ConfigError, match="tlor_radius"):
        GANPairsSource("pet", model, n=1, tlor_radius=0.0)


def _pairs_on_sphere(n: int, radius: float, center: np.ndarray, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Known pairs: annihilation points inside the sphere, the two photons where the line meets it."""
    rng = np.random.default_rng(seed)
    point = center + rng.uniform(-0.5, 0.5, (n, 3)) * radius
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = point - center
    b = np.einsum("ij,ij->i", q, v)
    root = np.sqrt(b * b - (np.einsum("ij,ij->i", q, q) - radius**2))
    a_pt = point + (-b - root)[:, None] * v  # behind: photon 1 goes along -v
    b_pt = point + (-b + root)[:, None] * v
    pairs = {"E1": np.full(n, 0.511), "E2": np.full(n, 0.511)}
    for i, k in enumerate("XYZ"):
        pairs[f"{k}1"], pairs[f"{k}2"] = a_pt[:, i], b_pt[:, i]
        pairs[f"d{k}1"], pairs[f"d{k}2"] = -v[:, i], v[:, i]
    pairs["t1"] = np.linalg.norm(a_pt - point, axis=1) / c_light
    pairs["t2"] = np.linalg.norm(b_pt - point, axis=1) / c_light
    return pairs, point


def test_tlor_rows_are_turned_back_into_the_pairs() -> None:
    radius, center = 300.0, np.array([10.0, -20.0, 5.0])
    n = 9
    pairs, _ = _pairs_on_sphere(n, radius, center, seed=2)
    tlor = pairs_to_tlor(pairs)
    # one more row whose line misses the sphere: 400 mm above its centre, horizontal
    table = {k: np.append(v, 0.0) for k, v in tlor.items()}
    table["Cx"][-1], table["Cy"][-1], table["Cz"][-1] = center + np.array([0.0, 0.0, 400.0])
    table["Vx"][-1], table["Vy"][-1], table["Vz"][-1] = 1.0, 0.0, 0.0
    table["dAx"][-1], table["dBx"][-1] = -1.0, 1.0
    table["t1"][-1], table["E1"][-1], table["E2"][-1] = 2.0, 0.511, 0.511
    model = TableModel(table, dtype=torch.float64)
    sim = simulation(seed=5)
    sim.add_source(GANPairsSource("pet", model, n=n + 1, batch_size=64, tlor_radius=radius, tlor_center=center))
    collect = run(sim)
    assert collect.total("decays") == n + 1
    assert collect.total("invalid") == 1 and collect.total("zero_energy") == 1
    assert collect.total("particles") == 2 * n
    ids = collect.column("EventID")
    np.testing.assert_array_equal(ids, np.repeat(np.arange(n), 2))  # the last row emitted nothing
    np.testing.assert_array_equal(collect.column("PhotonIndex"), np.tile([0, 1], n))
    position = np.stack([collect.column(k) for k in POS], axis=1).astype(np.float64)
    expected = np.empty((2 * n, 3))
    expected[0::2] = np.stack([pairs[f"{k}1"] for k in "XYZ"], axis=1)
    expected[1::2] = np.stack([pairs[f"{k}2"] for k in "XYZ"], axis=1)
    np.testing.assert_allclose(position, expected, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(position - center, axis=1), radius, atol=1e-3)
    direction = np.stack([collect.column(k) for k in DIR], axis=1)
    expected_dir = np.empty((2 * n, 3))
    expected_dir[0::2] = np.stack([pairs[f"d{k}1"] for k in "XYZ"], axis=1)
    expected_dir[1::2] = np.stack([pairs[f"d{k}2"] for k in "XYZ"], axis=1)
    np.testing.assert_allclose(direction, expected_dir, atol=1e-6)
    t = np.empty(2 * n)
    t[0::2], t[1::2] = pairs["t1"], pairs["t2"]
    np.testing.assert_allclose(collect.column("TimeFromBeginOfEvent"), t, rtol=0, atol=1e-6)
    np.testing.assert_allclose(collect.column("KineticEnergy"), 0.511)


def test_tlor_mode_needs_the_tlor_keys() -> None:
    sim = simulation()
    sim.add_source(GANPairsSource("pet", TableModel(_pair_table([{}])), n=1, tlor_radius=300.0))
    with pytest.raises(ConfigError, match="lacks the TLOR keys"):
        run(sim)
