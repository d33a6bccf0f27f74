"""The actor protocol: what the simulation calls, in which order.

For each simulation: ``initialize(context)`` once, then for each run ``begin_run``,
``process`` for every batch of every source, ``end_run``; then ``finalize`` once. If
anything fails, ``abort`` is called instead of ``finalize`` and must leave no partial
output behind (outputs are written atomically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansim.errors import ConfigError
from gansim.sim.particles import ParticleBatch

__all__ = ["Actor", "RunContext"]


@dataclass
class RunContext:
    """What actors may know about the simulation they belong to.

    Attributes:
        output_dir: where relative output paths are resolved (created by the simulation).
        force: overwrite existing outputs.
        intervals: the run timing intervals, ns, ``[(start, end), ...]``.
        source_names: the names of the simulation's sources, in order.
        columns: name of each source -> the columns its batches hold.
        device: the simulation's torch device.
    """

    output_dir: Path
    force: bool
    intervals: list[tuple[float, float]]
    source_names: list[str]
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    device: Any = "cpu"

    def resolve(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.output_dir / p


class Actor:
    """Base class: every hook is a no-op; ``results`` holds what the actor measured.

    Args:
        name: unique within a simulation.
    """

    #: Hidden actors (the dynamic-parametrisation actors) run before the others.
    priority: int = 100

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"actor name {name!r}: expected a non-empty string")
        self.name = name
        self.results: dict[str, Any] = {}

    def initialize(self, context: RunContext) -> None:
        """Check the configuration against the simulation and prepare outputs."""

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        """Start of run ``run_id`` over ``interval`` (ns)."""

    def process(self, batch: ParticleBatch) -> None:
        """Particles of one source in the current run."""

    def end_run(self, run_id: int) -> None:
        """End of run ``run_id``."""

    def finalize(self) -> None:
        """Write outputs; the simulation ended normally."""

    def abort(self) -> None:
        """The simulation failed: discard partial outputs."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
