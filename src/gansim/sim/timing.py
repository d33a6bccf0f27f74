"""Run timing intervals: the simulation runs once per interval, in order.

Times are in ns (``gansim.units.s``). Each interval is a ``[start, end]`` pair with
start <= end; intervals follow each other without overlap (gaps are allowed: nothing
decays in a gap as far as the simulation is concerned, but a source's activity still
decays with its half-life through it, since decay is computed from the time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gansim.errors import ConfigError
from gansim.units import s

__all__ = ["check_run_timing_intervals", "range_timing", "DEFAULT_RUN_TIMING"]

#: One run of one second, as GATE's default.
DEFAULT_RUN_TIMING: tuple[tuple[float, float], ...] = ((0.0, 1.0 * s),)


def check_run_timing_intervals(intervals: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Validate run timing intervals; return them as a list of ``(start, end)`` float pairs (ns).

    Raises:
        ConfigError: an empty list; an interval that is not a pair of finite numbers;
            start > end; an interval starting before the previous one ends (overlap or
            wrong order). The message names the interval by its index.
    """
    if isinstance(intervals, (str, bytes)) or not isinstance(intervals, Sequence):
        raise ConfigError(f"run_timing_intervals {intervals!r}: expected a list of [start, end] pairs (ns)")
    if len(intervals) == 0:
        raise ConfigError("run_timing_intervals is empty: give at least one [start, end] pair (ns)")
    out: list[tuple[float, float]] = []
    for index, interval in enumerate(intervals):
        if isinstance(interval, (str, bytes)) or not isinstance(interval, Sequence) or len(interval) != 2:
            raise ConfigError(f"run_timing_intervals[{index}] = {interval!r}: expected a [start, end] pair of numbers (ns)")
        if any(isinstance(v, (str, bytes, bool)) for v in interval):
            raise ConfigError(f"run_timing_intervals[{index}] = {interval!r}: start and end must be numbers (ns), not strings or booleans")
        try:
            start, end = float(interval[0]), float(interval[1])
        except (TypeError, ValueError):
            raise ConfigError(f"run_timing_intervals[{index}] = {interval!r}: start and end must be numbers (ns)") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ConfigError(f"run_timing_intervals[{index}] = {interval!r}: start and end must be finite")
        if start > end:
            raise ConfigError(f"run_timing_intervals[{index}] = [{start!r}, {end!r}]: start is after end")
        if out and start < out[-1][1]:
            raise ConfigError(
                f"run_timing_intervals[{index}] = [{start!r}, {end!r}] starts before run {index - 1} ends ({out[-1][1]!r} ns): "
                "intervals must be in time order and must not overlap"
            )
        out.append((start, end))
    return out


def range_timing(start: float, end: float, n: int) -> list[tuple[float, float]]:
    """``n`` consecutive intervals of equal length covering ``[start, end]`` (ns)."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"range_timing n {n!r}: expected a whole number >= 1")
    n = int(n)
    # the last edge is `end` itself, not start + (end - start) * n / n rounded
    edges = [float(start)] + [start + (end - start) * k / n for k in range(1, n)] + [float(end)]
    return check_run_timing_intervals([(edges[k], edges[k + 1]) for k in range(n)])
