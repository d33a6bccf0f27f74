"""The statistics actor: event accounting per run and per source, and in total.

It sums the :class:`~gansim.sim.particles.EventCounts` of every batch (decays, events,
skipped, zero-energy and invalid rows, particles), the particles' summed weight and
weighted energy, and each run's wall time::

    stats = sim.add_actor(StatisticsActor("stats", output="stats.json"))
    sim.run()
    print(stats.summary())
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from gansim.errors import DataError
from gansim.sim.actors.base import RunContext
from gansim.sim.actors.json_output import JsonResultsActor
from gansim.sim.particles import EventCounts, ParticleBatch

__all__ = ["StatisticsActor", "STAT_KEYS"]

#: Keys of every per-source / per-run / total record: the EventCounts fields, then
#: ``weight`` (sum of particle weights) and ``energy_MeV`` (sum of weight x kinetic energy).
STAT_KEYS: tuple[str, ...] = (*(f.name for f in fields(EventCounts)), "weight", "energy_MeV")


def _zero() -> dict[str, Any]:
    record: dict[str, Any] = EventCounts().to_dict()
    record["weight"] = 0.0
    record["energy_MeV"] = 0.0
    return record


def _add(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key in STAT_KEYS:
        into[key] += other[key]


class StatisticsActor(JsonResultsActor):
    """Counts of events and particles per run and source, and the wall time of each run.

    Args:
        name: the actor's name.
        output: optional ``.json`` file written atomically by :meth:`finalize`.

    ``weight`` and ``energy_MeV`` are weighted like every tally: the sum of the particles'
    ``Weight`` and of ``Weight * KineticEnergy`` (the energy the particles stand for, MeV).
    The event counts (``decays``, ``events``...) are plain counts, as the sources report them.

    results::

        {"runs": [{"run_id": k, "interval_ns": [a, b], "seconds": t,
                   "sources": {name: {decays, events, skipped, zero_energy, invalid, particles, weight, energy_MeV}},
                   "total": {...same keys}}],
         "total": {...}, "sources": {name: {...summed over runs}}}
    """

    def __init__(self, name: str, output: str | Path | None = None) -> None:
        super().__init__(name, output)
        self._source_names: list[str] = []
        self._current: dict[str, Any] | None = None
        self._t0 = 0.0
        self.results = {"runs": [], "total": _zero(), "sources": {}}

    def initialize(self, context: RunContext) -> None:
        self._source_names = list(context.source_names)
        self._prepare_output(context)
        self.results = {"runs": [], "total": _zero(), "sources": {s: _zero() for s in self._source_names}}

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        self._current = {
            "run_id": int(run_id),
            "interval_ns": [float(interval[0]), float(interval[1])],
            "seconds": 0.0,
            "sources": {s: _zero() for s in self._source_names},
            "total": _zero(),
        }
        self._t0 = time.perf_counter()

    def _batch_record(self, batch: ParticleBatch) -> dict[str, Any]:
        record = _zero()
        record.update(batch.counts.to_dict())
        if len(batch):
            for key in ("KineticEnergy", "Weight"):
                if key not in batch.columns:
                    raise DataError(f"actor {self.name!r}: a batch of source {batch.source!r} has no column {key!r}")
            # float64 sums: float32 would lose counts beyond 2**24 particles of weight 1
            w = batch.columns["Weight"].cpu().to(torch.float64)  # on the CPU: MPS has no float64
            e = batch.columns["KineticEnergy"].cpu().to(torch.float64)
            record["weight"] = float(w.sum())
            record["energy_MeV"] = float((w * e).sum())
        return record

    def process(self, batch: ParticleBatch) -> None:
        if self._current is None:
            raise DataError(f"actor {self.name!r}: a batch of source {batch.source!r} arrived outside a run (begin_run was not called)")
        record = self._batch_record(batch)
        sources = self._current["sources"]
        if batch.source not in sources:  # a source the context did not list: count it anyway
            sources[batch.source] = _zero()
            self.results["sources"].setdefault(batch.source, _zero())
        _add(sources[batch.source], record)
        _add(self._current["total"], record)
        _add(self.results["sources"][batch.source], record)
        _add(self.results["total"], record)

    def end_run(self, run_id: int) -> None:
        if self._current is None:
            return
        self._current["seconds"] = time.perf_counter() - self._t0
        self.results["runs"].append(self._current)
        self._current = None


    def summary(self) -> str:
        """A short text table: one line per run and source, then the totals."""
        header = f"{'run':>4} {'source':<16} {'decays':>12} {'events':>12} {'particles':>12} {'weight':>14} {'energy MeV':>14} {'seconds':>9}"
        lines = [header, "-" * len(header)]

        def line(run: str, source: str, r: dict[str, Any], seconds: str = "") -> str:
            return (
                f"{run:>4} {source:<16.16} {r['decays']:>12d} {r['events']:>12d} {r['particles']:>12d} "
                f"{r['weight']:>14.6g} {r['energy_MeV']:>14.6g} {seconds:>9}"
            )

        for run in self.results["runs"]:
            seconds = f"{run['seconds']:.3f}"
            single = len(run["sources"]) == 1  # one source: its line is the run's total, with the time
            for source, record in run["sources"].items():
                lines.append(line(str(run["run_id"]), source, record, seconds if single else ""))
            if not single:
                lines.append(line(str(run["run_id"]), "(all)", run["total"], seconds))
        lines.append("-" * len(header))
        for source, record in self.results["sources"].items():
            lines.append(line("all", source, record))
        total_seconds = sum(run["seconds"] for run in self.results["runs"])
        lines.append(line("all", "(all)", self.results["total"], f"{total_seconds:.3f}"))
        return "\n".join(lines)
