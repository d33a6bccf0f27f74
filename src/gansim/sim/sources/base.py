"""What every simulation source shares: a name, how many decays a run has, when they happen.

The strength of a source is either

* an ``activity`` (Bq, gansim units: ``5 * MBq``) at time 0, decaying with ``half_life``
  (ns; None for a constant activity): each run's decays are a Poisson process over its
  interval, so a run from t0 to t1 has on average the integral of A(t) decays; or
* a number of primaries ``n`` per run, spread over the run's interval by the same decay law.

Both are dynamic parameters: with ``add_dynamic_parametrisation(activity=[...])`` the value
of a run is the activity *at the start of that run* (then decaying through it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError
from gansim.physics.sources import DecayTimes
from gansim.sim.dynamic import DynamicObject
from gansim.sim.particles import ParticleBatch

__all__ = ["Source", "SourceRun"]


@dataclass
class SourceRun:
    """What a source needs to run once.

    Attributes:
        run_id: index of the run.
        interval: (start, end) ns.
        seed: the source's seed for this run (derived from the simulation seed, the source's
            position in the simulation and the run).
        first_event_id: the EventID of the source's first event in this run.
        volume: the simulation's volume (None without one).
        world_material: the material around the volume.
        surface: the exit surface in the world frame at the current pose (None without a volume).
    """

    run_id: int
    interval: tuple[float, float]
    seed: int
    first_event_id: int
    volume: Any = None
    world_material: Any = None
    surface: Any = None


def _whole_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value) or value != int(value) or value < 0:
        raise ConfigError(f"{what} {value!r}: expected a whole number >= 0")
    return int(value)


class Source(DynamicObject):
    """Base class of simulation sources.

    Args:
        name: unique in the simulation.
        activity: Bq (gansim units) at time 0, or
        n: number of primaries per run.
        half_life: ns, None for a constant activity.
        attached_to: name of the volume whose local frame the source is given in (default: the
            simulation's volume when there is one).

    Dynamic parameters: ``activity`` and ``n`` (one per run), plus what subclasses add.
    """

    dynamic_parameters = frozenset({"activity", "n"})

    def __init__(self, name: str, *, activity: float | None = None, n: int | None = None, half_life: float | None = None, attached_to: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"source name {name!r}: expected a non-empty string")
        self.name = name
        if (activity is None) == (n is None):
            raise ConfigError(f"source {name!r}: give either an activity (Bq) or a number of primaries n, exactly one")
        self.activity = None if activity is None else self._check_activity(activity)
        self.n = None if n is None else _whole_count(n, f"source {name!r} n")
        if half_life is not None and not (half_life > 0):
            raise ConfigError(f"source {name!r} half_life {half_life!r} ns: expected > 0, or None for a constant activity")
        self.half_life = half_life
        self.attached_to = attached_to
        self._activity_is_per_run = False
        self._init_dynamic()

    def _check_activity(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"source {self.name!r} activity {value!r}: expected a finite number >= 0 (Bq, gansim units: 5 * MBq)")
        return float(value)

    def apply_dynamic(self, parameter: str, value: Any) -> None:
        if parameter == "activity":
            if self.activity is None:
                raise ConfigError(f"{self._describe()}: a per-run activity needs the source to be defined by an activity, not a number of primaries")
            self.activity = self._check_activity(value)
            self._activity_is_per_run = True
        elif parameter == "n":
            if self.n is None:
                raise ConfigError(f"{self._describe()}: a per-run n needs the source to be defined by a number of primaries, not an activity")
            self.n = _whole_count(value, f"source {self.name!r} n")
        else:
            raise ConfigError(f"{self._describe()}: {parameter!r} is not a dynamic parameter; expected one of {sorted(self.dynamic_parameters)}")

    def check_dynamic_value(self, parameter: str, value: Any, where: str) -> None:
        if parameter == "activity":
            if self.activity is None:
                raise ConfigError(f"{self._describe()} {where}: a per-run activity needs the source to be defined by an activity, not a number of primaries")
            self._check_activity(value)
        elif parameter == "n":
            if self.n is None:
                raise ConfigError(f"{self._describe()} {where}: a per-run n needs the source to be defined by a number of primaries, not an activity")
            _whole_count(value, f"{self._describe()} {where}")

    # -- decays ---------------------------------------------------------------------------
    def events_per_decay(self) -> float:
        """Events (rows) per decay of the activity; 1 unless a subclass says otherwise."""
        return 1.0

    def activity_at(self, t: float) -> float:
        """Activity (per ns) at time ``t`` for a source defined at time 0."""
        assert self.activity is not None
        if self.half_life is None:
            return self.activity
        return self.activity * 2.0 ** (-t / self.half_life)

    def decay_times(self, run: SourceRun, chunk_size: int) -> Iterator[torch.Tensor]:
        """The float64 times (ns) of this run's events, in increasing order, chunk by chunk (on the CPU)."""
        start, end = run.interval
        generator = torch.Generator().manual_seed(int(run.seed) ^ 0x5DEECE66D)
        if self.n is not None:
            if end > start:
                yield from DecayTimes(1.0, self.half_life, start, end).spread(self.n, chunk_size, generator)
            else:  # a zero-length run: its n decays all happen at its time (as the analog source does)
                for first in range(0, self.n, chunk_size):
                    yield torch.full((min(chunk_size, self.n - first),), float(start), dtype=torch.float64)
            return
        if end <= start:
            return
        rate = (self.activity if self._activity_is_per_run else self.activity_at(start)) * self.events_per_decay()
        if rate <= 0:
            return
        yield from DecayTimes(rate, self.half_life, start, end).chunks(chunk_size, generator)

    # -- the interface the simulation uses ---------------------------------------------------
    def columns(self) -> tuple[str, ...]:
        """The columns of this source's particle batches."""
        raise NotImplementedError

    def initialize(self, simulation: Any) -> None:
        """Check the configuration against the simulation (volumes, device) before any run."""

    def run(self, run: SourceRun) -> Iterator[ParticleBatch]:
        """Emit the particles of one run, batch by batch."""
        raise NotImplementedError
