"""The two interfaces every phase-space format implements.

A :class:`PhaseSpaceReader` streams a file as chunks of rows; a
:class:`PhaseSpaceWriter` appends chunks and publishes the file atomically on
:meth:`~PhaseSpaceWriter.close`. Converting or training on a file larger than
memory is then a loop over :meth:`PhaseSpaceReader.iter_chunks`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from gansim.errors import DataError
from gansim.io.atomic import check_writable, commit_file, temporary_sibling
from gansim.io.phsp.columns import Table, validate_table

__all__ = ["PhaseSpaceReader", "PhaseSpaceWriter", "DEFAULT_CHUNK_ROWS"]

#: Rows per chunk when the caller does not choose (about 40 MB for 10 float32 columns).
DEFAULT_CHUNK_ROWS = 1_000_000


class PhaseSpaceReader(abc.ABC):
    """Read-only, chunked access to one phase-space file.

    Subclasses set ``self.path`` and implement :attr:`columns`, :attr:`n_rows`
    and :meth:`_iter_chunks`. Unknown columns requested by the caller raise a
    :class:`DataError` naming the file, the key and the available keys.
    """

    #: Short format name used by the registry ("root", "npy", "npz", "mcpl", "iaea").
    format_name: str = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a directory; expected a phase-space file")

    @property
    @abc.abstractmethod
    def columns(self) -> list[str]:
        """Names of the columns the file holds, as gansim column names."""

    @property
    @abc.abstractmethod
    def n_rows(self) -> int | None:
        """Number of rows, or ``None`` when the format cannot tell without reading everything."""

    @abc.abstractmethod
    def _iter_chunks(self, chunk_rows: int, columns: list[str]) -> Iterator[Table]:
        """Yield tables of at most ``chunk_rows`` rows holding exactly ``columns``."""

    def check_columns(self, columns: Sequence[str] | None) -> list[str]:
        """Resolve ``None`` to all columns; raise a clear error for unknown names."""
        if columns is None:
            return list(self.columns)
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise DataError(
                f"{self.path}: no column {', '.join(repr(m) for m in missing)}; "
                f"the file has {', '.join(self.columns)}"
            )
        return list(columns)

    def iter_chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS, columns: Sequence[str] | None = None) -> Iterator[Table]:
        """Stream the file as tables of at most ``chunk_rows`` rows (the last may be shorter)."""
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        cols = self.check_columns(columns)
        yield from self._iter_chunks(chunk_rows, cols)

    def read(self, columns: Sequence[str] | None = None, max_rows: int | None = None) -> Table:
        """Read (at most ``max_rows`` rows of) the file into memory as one table."""
        cols = self.check_columns(columns)
        parts: list[Table] = []
        seen = 0
        for chunk in self._iter_chunks(DEFAULT_CHUNK_ROWS if max_rows is None else max(1, min(max_rows, DEFAULT_CHUNK_ROWS)), cols):
            n = len(next(iter(chunk.values()))) if chunk else 0
            if max_rows is not None and seen + n > max_rows:
                chunk = {k: v[: max_rows - seen] for k, v in chunk.items()}
                n = max_rows - seen
            parts.append(chunk)
            seen += n
            if max_rows is not None and seen >= max_rows:
                break
        if not parts:
            return {c: np.zeros(0, dtype=np.float32) for c in cols}
        return {c: np.concatenate([p[c] for p in parts]) for c in cols}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release file handles (no-op by default)."""

    def __enter__(self) -> PhaseSpaceReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, rows={self.n_rows}, columns={self.columns})"


class PhaseSpaceWriter(abc.ABC):
    """Append-only writer that publishes its file atomically.

    Rows go to a temporary file beside the target; :meth:`close` finalises it
    and renames it onto the target. Leaving a ``with`` block by an exception
    calls :meth:`abort` instead: the temporary file is removed and the target
    (if it existed) is left as it was. An existing target is refused unless
    ``force=True``.

    The column set is fixed by the first chunk (or by ``columns`` when given);
    later chunks must hold the same columns.
    """

    format_name: str = ""
    #: Suffix the temporary file must end with (some libraries append their own otherwise).
    temporary_suffix: str = ""

    def __init__(self, path: str | Path, *, columns: Sequence[str] | None = None, force: bool = False) -> None:
        self.path = check_writable(path, force)
        self.columns: list[str] | None = list(columns) if columns is not None else None
        self.rows_written = 0
        #: dtypes of the first chunk's columns (even an empty chunk), for writers that keep them.
        self.first_dtypes: dict[str, np.dtype] = {}
        self._tmp = temporary_sibling(self.path, self.temporary_suffix)
        self._closed = False

    def write(self, chunk: Table) -> None:
        """Append the rows of ``chunk`` (a table in gansim units)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer already closed")
        n = validate_table(chunk, source=f"{self.path} (chunk to write)", finite=False)
        if not self.first_dtypes:
            self.first_dtypes = {k: np.asarray(v).dtype for k, v in chunk.items()}
        if self.columns is None:
            self.columns = list(chunk)
            self._start(self.columns)
        elif self.rows_written == 0 and not getattr(self, "_started", False):
            self._start(self.columns)
        missing = [c for c in self.columns if c not in chunk]
        if missing:
            raise DataError(f"{self.path}: chunk to write lacks column(s) {missing}; expected {self.columns}")
        self._started = True
        if n:
            self._write(chunk, n)
            self.rows_written += n

    def _start(self, columns: list[str]) -> None:  # noqa: B027 - optional hook
        """Called once with the final column list, before the first :meth:`_write`."""
        self._started = True

    @abc.abstractmethod
    def _write(self, chunk: Table, n: int) -> None:
        """Append ``n`` rows to ``self._tmp``."""

    @abc.abstractmethod
    def _finish(self) -> None:
        """Finalise ``self._tmp`` (headers, footers, flush); called before the atomic rename."""

    def close(self) -> None:
        """Finalise and publish the file (idempotent)."""
        if self._closed:
            return
        try:
            if self.columns is None:
                raise DataError(f"{self.path}: nothing was written and no columns were given; refusing to write an empty file without columns")
            if not getattr(self, "_started", False):
                self._start(self.columns)
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        commit_file(self._tmp, self.path)

    def abort(self) -> None:
        """Drop everything written so far; the target is left untouched."""
        self._closed = True
        self._abort_hook()
        self._tmp.unlink(missing_ok=True)

    def _abort_hook(self) -> None:  # noqa: B027 - optional hook
        """Close library handles before the temporary file is removed."""

    def __enter__(self) -> PhaseSpaceWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
