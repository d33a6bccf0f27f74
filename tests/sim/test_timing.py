"""Run timing intervals: validation (each error names the interval), range_timing, the Simulation setter."""

from __future__ import annotations

import math

import pytest

from gansim.errors import ConfigError
from gansim.sim.simulation import Simulation
from gansim.sim.timing import DEFAULT_RUN_TIMING, check_run_timing_intervals, range_timing
from gansim.units import s


# -- accepted --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "intervals",
    [
        [(0.0, 1 * s)],
        [(0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)],  # back to back
        [[0, 1 * s], [5 * s, 6 * s]],  # a gap
        [(0, 0), (0, 1 * s)],  # a zero-length interval, then one starting at the same time
        [(0, 1 * s), (1 * s, 1 * s), (1 * s, 2 * s)],  # a zero-length interval in the middle
        ((-2 * s, -1 * s), (-1 * s, 0.5 * s)),  # negative times, tuple of tuples
    ],
)
def test_valid_intervals_are_returned_as_float_pairs(intervals: list) -> None:
    out = check_run_timing_intervals(intervals)
    assert out == [(float(a), float(b)) for a, b in intervals]
    assert all(isinstance(a, float) and isinstance(b, float) for a, b in out)
    assert all(isinstance(iv, tuple) for iv in out)


def test_default_run_timing_is_one_second() -> None:
    assert check_run_timing_intervals(DEFAULT_RUN_TIMING) == [(0.0, 1 * s)]
    assert Simulation().run_timing_intervals == [(0.0, 1 * s)]


# -- refused ---------------------------------------------------------------------------------
def test_empty_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        check_run_timing_intervals([])


@pytest.mark.parametrize("value", ["0 1", b"01", 5, None, {0: 1}])
def test_not_a_list_of_pairs_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="run_timing_intervals"):
        check_run_timing_intervals(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "intervals, index",
    [
        ([(0, 1), (1, 2, 3)], 1),  # three numbers
        ([(0, 1), (2,)], 1),  # one number
        ([(0, 1), (1, 2), 3], 2),  # a bare number
        (["01", (1, 2)], 0),  # a string of length 2 is not a pair
        ([(0, 1), ()], 1),
    ],
)
def test_non_pair_is_refused_with_its_index(intervals: list, index: int) -> None:
    with pytest.raises(ConfigError, match=rf"run_timing_intervals\[{index}\].*pair"):
        check_run_timing_intervals(intervals)


def test_start_after_end_is_refused_with_its_index() -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\].*start is after end"):
        check_run_timing_intervals([(0, 1 * s), (3 * s, 2 * s)])
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[0\]"):
        check_run_timing_intervals([(1.0, 0.999)])


def test_overlap_is_refused_with_its_index() -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[2\].*starts before run 1 ends"):
        check_run_timing_intervals([(0, 1 * s), (1 * s, 2 * s), (1.5 * s, 3 * s)])


def test_wrong_order_is_refused_with_its_index() -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\].*time order"):
        check_run_timing_intervals([(2 * s, 3 * s), (0, 1 * s)])


def test_zero_length_interval_inside_another_is_refused() -> None:
    # [0.5 s, 0.5 s] lies inside run 0: it starts before run 0 ends
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\]"):
        check_run_timing_intervals([(0, 1 * s), (0.5 * s, 0.5 * s)])


@pytest.mark.parametrize("bad", ["x", None, object(), [1], {"a": 1}, 1j])
def test_non_numbers_are_refused_with_their_index(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\].*number"):
        check_run_timing_intervals([(0, 1), (1, bad)])
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[0\].*number"):
        check_run_timing_intervals([(bad, 1)])


@pytest.mark.parametrize("bad", ["1", "2.5"])
def test_numeric_strings_are_refused(bad: str) -> None:
    # a string is not a number, even one float() can parse: "1" (ns? s?) is surely a mistake
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\]"):
        check_run_timing_intervals([(0, 1), (1, bad)])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_refused_with_their_index(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[1\].*finite"):
        check_run_timing_intervals([(0, 1 * s), (1 * s, bad)])
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[0\].*finite"):
        check_run_timing_intervals([(bad, 1 * s)])


# -- range_timing ----------------------------------------------------------------------------
def test_range_timing_makes_consecutive_equal_intervals() -> None:
    out = range_timing(0, 3 * s, 3)
    assert out == [(0.0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)]
    assert range_timing(5.0, 7.0, 1) == [(5.0, 7.0)]
    out = range_timing(-1 * s, 1 * s, 8)
    assert len(out) == 8
    assert all(out[k][1] == out[k + 1][0] for k in range(7))
    lengths = [b - a for a, b in out]
    assert max(lengths) - min(lengths) < 1e-6
    assert check_run_timing_intervals(out) == out


@pytest.mark.parametrize("start, end, n", [(0.0, 4.1 * s, 5), (0.5 * s, 4.1 * s, 9), (1 / 3, 12.7, 11), (0.0, 12.7, 3)])
def test_range_timing_covers_exactly_start_to_end(start: float, end: float, n: int) -> None:
    # "n consecutive intervals covering [start, end]": the last must end at `end` itself, or a
    # following range_timing(end, ...) overlaps it (or leaves a sliver of a gap)
    out = range_timing(start, end, n)
    assert out[0][0] == start
    assert out[-1][1] == end
    check_run_timing_intervals(out + range_timing(end, end + 1 * s, 2))


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3"])
def test_range_timing_refuses_bad_counts(n: object) -> None:
    with pytest.raises(ConfigError, match="range_timing n"):
        range_timing(0, 1 * s, n)  # type: ignore[arg-type]


def test_range_timing_refuses_reversed_bounds() -> None:
    with pytest.raises(ConfigError, match=r"run_timing_intervals\[0\].*start is after end"):
        range_timing(2 * s, 1 * s, 2)


# -- Simulation.run_timing_intervals ---------------------------------------------------------
def test_simulation_setter_validates_and_keeps_the_old_value_on_error() -> None:
    sim = Simulation()
    sim.run_timing_intervals = [[0, 1 * s], [2 * s, 3 * s]]
    assert sim.run_timing_intervals == [(0.0, 1 * s), (2 * s, 3 * s)]
    for bad in ([], [(0, 1 * s), (0.5 * s, 2 * s)], [(0, math.nan)], [(1 * s, 0)], [(0, 1, 2)]):
        with pytest.raises(ConfigError, match="run_timing_intervals"):
            sim.run_timing_intervals = bad
        assert sim.run_timing_intervals == [(0.0, 1 * s), (2 * s, 3 * s)]
    sim.run_timing_intervals = range_timing(0, 2 * s, 4)
    assert len(sim.run_timing_intervals) == 4


def test_simulation_getter_returns_a_copy() -> None:
    sim = Simulation()
    sim.run_timing_intervals = [(0, 1 * s)]
    got = sim.run_timing_intervals
    got.append((1 * s, 2 * s))
    assert sim.run_timing_intervals == [(0.0, 1 * s)]
