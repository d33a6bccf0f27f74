"""The phase-space actor: record the particles sources emit into phase-space files.

Any format gansim writes is chosen by the output's suffix (``.root``, ``.npy``, ``.npz``,
``.mcpl``, ``.mcpl.gz``, ``.IAEAphsp``)::

    sim.add_actor(PhaseSpaceActor("exit", "exit.root"))                   # all runs, RunID column
    sim.add_actor(PhaseSpaceActor("exit", "exit.npz", per_run=True))      # exit_run0.npz, exit_run1.npz...

Files are written through gansim's phase-space writers, which publish atomically: a
failed simulation leaves nothing behind (see :meth:`PhaseSpaceActor.abort`).

This module also holds two helpers the other actors share: :func:`check_sources` and
:func:`per_run_path`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.io.atomic import check_writable
from gansim.io.phsp import PhaseSpaceWriter, accepted_writer_options, detect_format, open_writer
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.particles import PARTICLE_COLUMNS, ParticleBatch

__all__ = ["PhaseSpaceActor", "RUN_ID_COLUMN", "check_sources", "per_run_path", "split_suffix"]

#: Column the actor adds itself, from ``batch.run_id`` (int32).
RUN_ID_COLUMN = "RunID"

#: Suffixes made of two parts, kept whole when a run number is inserted before the suffix.
_COMPOUND_SUFFIXES: tuple[str, ...] = (".mcpl.gz", ".nii.gz")


# --------------------------------------------------------------------------- shared helpers


def split_suffix(path: str | Path) -> tuple[str, str]:
    """Split a file name into (stem, suffix), keeping double suffixes (``.mcpl.gz``, ``.nii.gz``) whole.

    ``split_suffix("a/exit.mcpl.gz") == ("exit", ".mcpl.gz")``; the directory is dropped.
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in _COMPOUND_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    p = Path(name)
    return p.stem, p.suffix


def per_run_path(path: str | Path, run_id: int) -> Path:
    """``<dir>/<stem>_run<k><suffix>``: the file of run ``run_id`` (``exit.mcpl.gz`` -> ``exit_run0.mcpl.gz``)."""
    stem, suffix = split_suffix(path)
    return Path(path).with_name(f"{stem}_run{run_id}{suffix}")


def check_source_option(actor: str, sources: Sequence[str] | str | None) -> list[str] | None:
    """Validate an actor's ``sources`` argument at construction: ``None`` or a list of non-empty names."""
    if sources is None:
        return None
    if isinstance(sources, str):
        sources = [sources]  # a single name is a common shorthand
    names = list(sources)
    bad = [s for s in names if not isinstance(s, str) or not s]
    if bad or not names:
        raise ConfigError(f"actor {actor!r}: sources={sources!r}: expected a non-empty list of source names (or None for all sources)")
    return names


def check_sources(actor: str, sources: list[str] | None, context: RunContext) -> list[str]:
    """The sources an actor records: ``sources`` checked against the simulation's, or all of them.

    Raises:
        ConfigError: a name that is not a source of the simulation (the message lists them).
    """
    if sources is None:
        return list(context.source_names)
    unknown = [s for s in sources if s not in context.source_names]
    if unknown:
        raise ConfigError(
            f"actor {actor!r}: sources: no source named {', '.join(repr(u) for u in unknown)}; "
            f"the simulation's sources are {', '.join(repr(s) for s in context.source_names) or 'none'}"
        )
    return list(dict.fromkeys(sources))  # drop repeated names, keep the order


def source_columns(context: RunContext, source: str) -> tuple[str, ...]:
    """Columns the batches of ``source`` hold; :data:`PARTICLE_COLUMNS` when the context does not say."""
    return tuple(context.columns.get(source, PARTICLE_COLUMNS))


# --------------------------------------------------------------------------- the actor


class PhaseSpaceActor(Actor):
    """Write the particles of (some) sources to a phase-space file, or one file per run.

    Args:
        name: the actor's name.
        output: target file; its suffix picks the format. A relative path is resolved in
            the simulation's output directory.
        keys: columns to write, in order (default :data:`PARTICLE_COLUMNS` + ``RunID``).
            ``RunID`` (int32) comes from ``batch.run_id``; every other key must be a column
            of every recorded source (e.g. ``EventPosition_X`` for sources that know the decay).
        per_run: ``False``: one file for all runs (tell them apart by ``RunID``); ``True``:
            ``<stem>_run<k><suffix>`` per run, each opened at ``begin_run`` and published
            at ``end_run``.
        sources: names of the sources to record (default all).
        writer_options: format options for :func:`gansim.io.phsp.open_writer`.

    Column dtypes are kept as the sources give them (``GlobalTime`` float64 ns, ``EventID``
    int64...): for ``.npy`` the actor passes ``dtype=None`` unless ``writer_options`` sets
    ``dtype`` (the npy writer's float32 default would round times and refuse large event
    IDs). MCPL and IAEA get ``particle="gamma"`` (every particle is a photon), and, when
    ``keys`` is left at its default, ``drop_unknown=True`` so that the columns they cannot
    store (``EventID``, ``RunID``...) are left out; explicit ``keys`` they cannot store are
    an error.

    results: ``{"rows": total, "rows_per_run": [rows of run k], "files": [published paths]}``.
    """

    def __init__(
        self,
        name: str,
        output: str | Path,
        *,
        keys: Sequence[str] | None = None,
        per_run: bool = False,
        sources: Sequence[str] | None = None,
        writer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(output, (str, Path)) or not str(output):
            raise ConfigError(f"actor {name!r}: output={output!r}: expected a file name such as 'exit.root'")
        try:
            self.format = detect_format(output)
        except DataError as err:
            raise ConfigError(f"actor {name!r}: output: {err}") from None
        self.output = Path(output)
        self.default_keys = keys is None
        self.keys = self._check_keys(name, keys)
        self.per_run = bool(per_run)
        self.sources = check_source_option(name, sources)
        if writer_options is not None and not isinstance(writer_options, dict):
            raise ConfigError(f"actor {name!r}: writer_options={writer_options!r}: expected a dict of format options")
        self.writer_options = dict(writer_options or {})
        self.results = {"rows": 0, "rows_per_run": [], "files": []}
        self._path: Path | None = None
        self._force = False
        self._recorded: set[str] = set()
        self._writer: PhaseSpaceWriter | None = None
        self._committed: list[Path] = []

    @staticmethod
    def _check_keys(name: str, keys: Sequence[str] | None) -> list[str]:
        if keys is None:
            return [*PARTICLE_COLUMNS, RUN_ID_COLUMN]
        if isinstance(keys, str):
            raise ConfigError(f"actor {name!r}: keys={keys!r}: expected a list of column names, not one string")
        out = list(keys)
        bad = [k for k in out if not isinstance(k, str) or not k]
        if bad or not out:
            raise ConfigError(f"actor {name!r}: keys={keys!r}: expected a non-empty list of column names")
        repeated = sorted({k for k in out if out.count(k) > 1})
        if repeated:
            raise ConfigError(f"actor {name!r}: keys: {', '.join(repeated)} given more than once")
        return out

    # -- configuration checks --------------------------------------------------------------
    def _options(self, path: Path) -> dict[str, Any]:
        """Writer options for ``path``: the user's, plus the defaults explained in the class docstring."""
        options = dict(self.writer_options)
        accepted = accepted_writer_options(path)
        if "particle" in accepted and "particle" not in options and "pdgcode" not in options:
            options["particle"] = "gamma"  # MCPL/IAEA store the particle type; every particle here is a photon
        if "drop_unknown" in accepted and "drop_unknown" not in options and self.default_keys:
            options["drop_unknown"] = True  # the default keys include columns these formats cannot store
        if self.format == "npy" and "dtype" not in options:
            options["dtype"] = None  # keep float64 times and int64 event IDs exact
        return options

    def _open(self, path: Path) -> PhaseSpaceWriter:
        try:
            return open_writer(path, columns=self.keys, force=self._force, **self._options(path))
        except DataError as err:
            # a bad option or a column the format cannot store is a setting of this actor
            raise ConfigError(f"actor {self.name!r}: {err}") from None

    def initialize(self, context: RunContext) -> None:
        """Check keys, sources and writer options against the simulation; refuse existing outputs."""
        recorded = check_sources(self.name, self.sources, context)
        for source in recorded:
            available = source_columns(context, source)
            missing = [k for k in self.keys if k != RUN_ID_COLUMN and k not in available]
            if missing:
                raise ConfigError(
                    f"actor {self.name!r}: keys: source {source!r} has no column {', '.join(repr(m) for m in missing)}; "
                    f"its columns are {', '.join(available)} (and {RUN_ID_COLUMN}, added by the actor)"
                )
        self._recorded = set(recorded)
        self._force = bool(context.force)
        self._path = context.resolve(self.output)
        self.results = {"rows": 0, "rows_per_run": [0] * len(context.intervals), "files": []}
        self._committed = []
        paths = [self._path] if not self.per_run else [per_run_path(self._path, k) for k in range(len(context.intervals))]
        for path in paths:
            check_writable(path, self._force)
        # Bad options, or keys the format cannot store, fail now, before any work: open the first
        # writer and discard it at once. Writers are opened for real at begin_run, so that nothing
        # (not even a temporary file) is left behind if another actor fails to initialize.
        if paths:
            self._open(paths[0]).abort()

    # -- runs ------------------------------------------------------------------------------
    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        rows = self.results["rows_per_run"]
        rows.extend([0] * (run_id + 1 - len(rows)))
        if self._path is None:
            return
        if self.per_run:
            self._writer = self._open(per_run_path(self._path, run_id))
        elif self._writer is None and not self._committed:
            self._writer = self._open(self._path)  # the single file, at the first run

    def _table(self, batch: ParticleBatch) -> dict[str, np.ndarray]:
        """The batch's rows as numpy arrays in ``keys`` order (dtypes unchanged), plus ``RunID``."""
        n = len(batch)
        table: dict[str, np.ndarray] = {}
        for key in self.keys:
            if key == RUN_ID_COLUMN:
                table[key] = np.full(n, batch.run_id, dtype=np.int32)
                continue
            column = batch.columns.get(key)
            if column is None:
                raise DataError(
                    f"actor {self.name!r}: a batch of source {batch.source!r} (run {batch.run_id}) has no column {key!r}; "
                    f"it has {', '.join(batch.columns)}"
                )
            table[key] = column.detach().cpu().numpy() if isinstance(column, torch.Tensor) else np.asarray(column)
        return table

    def process(self, batch: ParticleBatch) -> None:
        if batch.source not in self._recorded or self._writer is None:
            return
        table = self._table(batch)
        self._writer.write(table)
        n = len(batch)
        self.results["rows"] += n
        rows = self.results["rows_per_run"]
        rows.extend([0] * (batch.run_id + 1 - len(rows)))
        rows[batch.run_id] += n

    def _commit(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.close()
        self._committed.append(writer.path)
        header = getattr(writer, "header_path", None)  # an IAEA phase space is two files
        if header is not None:
            self._committed.append(Path(header))
        self.results["files"].append(str(writer.path))

    def end_run(self, run_id: int) -> None:
        if self.per_run:
            self._commit()

    def finalize(self) -> None:
        """Publish the single file (per-run files were published at each ``end_run``)."""
        self._commit()

    def abort(self) -> None:
        """Discard the open writer and remove the files this simulation already published.

        A failed simulation leaves no output: per-run files of the runs that completed
        are removed as well, since alone they would look like a finished simulation.
        """
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()
        for path in self._committed:
            path.unlink(missing_ok=True)
        self._committed = []
        self.results["files"] = []
