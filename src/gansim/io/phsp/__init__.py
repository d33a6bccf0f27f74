"""Phase-space files: ROOT TTrees, NumPy ``.npy``/``.npz``, MCPL and IAEA.

Open any of them by path; the format comes from the file name and can be forced
with ``format=``::

    from gansim.io.phsp import open_reader, open_writer

    with open_reader("linac.root") as reader:                 # tree picked automatically
        with open_writer("linac.mcpl", force=True) as writer:
            for chunk in reader.iter_chunks(1_000_000):
                writer.write(chunk)

Tables are ``dict[str, np.ndarray]`` keyed by GATE column names in mm, MeV, ns
(see :mod:`gansim.io.phsp.columns` for the mapping of MCPL and IAEA fields).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gansim.errors import DataError
from gansim.io.phsp.base import DEFAULT_CHUNK_ROWS, PhaseSpaceReader, PhaseSpaceWriter
from gansim.io.phsp.columns import GATE_COLUMNS, UNITS, Table, unit_of, validate_table

__all__ = [
    "FORMATS",
    "detect_format",
    "open_reader",
    "open_writer",
    "read_table",
    "write_table",
    "convert",
    "PhaseSpaceReader",
    "PhaseSpaceWriter",
    "Table",
    "GATE_COLUMNS",
    "UNITS",
    "unit_of",
    "validate_table",
    "DEFAULT_CHUNK_ROWS",
]

#: format name -> (module, reader class, writer class). Imported lazily so that
#: e.g. reading a .npy file never imports uproot.
FORMATS: dict[str, tuple[str, str, str]] = {
    "root": ("gansim.io.phsp.root_format", "RootReader", "RootWriter"),
    "npy": ("gansim.io.phsp.numpy_format", "NpyReader", "NpyWriter"),
    "npz": ("gansim.io.phsp.numpy_format", "NpzReader", "NpzWriter"),
    "mcpl": ("gansim.io.phsp.mcpl_format", "McplReader", "McplWriter"),
    "iaea": ("gansim.io.phsp.iaea_format", "IaeaReader", "IaeaWriter"),
}

_SUFFIXES: dict[str, str] = {
    ".root": "root",
    ".npy": "npy",
    ".npz": "npz",
    ".mcpl": "mcpl",
    ".mcpl.gz": "mcpl",
    ".iaeaphsp": "iaea",
    ".iaeaheader": "iaea",
}


def detect_format(path: str | Path, format: str | None = None) -> str:
    """Format name for ``path`` from its suffix, or ``format`` when given (validated)."""
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"{path}: unknown phase-space format {format!r}; expected one of {', '.join(FORMATS)}")
        return format
    name = Path(path).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    # an IAEA phase space is often named by its base name (``linac`` for linac.IAEAheader + linac.IAEAphsp)
    if Path(f"{path}.IAEAheader").exists() or Path(f"{path}.IAEAphsp").exists():
        return "iaea"
    raise DataError(
        f"{path}: cannot tell the phase-space format from the file name; expected a name ending in "
        f"{', '.join(sorted(_SUFFIXES))} (or pass format=...)"
    )


def _classes(fmt: str) -> tuple[type[PhaseSpaceReader], type[PhaseSpaceWriter]]:
    module_name, reader_name, writer_name = FORMATS[fmt]
    module = importlib.import_module(module_name)
    return getattr(module, reader_name), getattr(module, writer_name)


def open_reader(path: str | Path, *, format: str | None = None, **options: Any) -> PhaseSpaceReader:
    """Open a phase-space file for chunked reading.

    Args:
        path: the file (for IAEA either the ``.IAEAheader`` or the ``.IAEAphsp``).
        format: force a format instead of guessing from the suffix.
        **options: format options, e.g. ``tree="phsp"`` for ROOT.
    """
    reader_cls, _ = _classes(detect_format(path, format))
    return reader_cls(path, **options)


def open_writer(
    path: str | Path,
    *,
    format: str | None = None,
    columns: Sequence[str] | None = None,
    force: bool = False,
    **options: Any,
) -> PhaseSpaceWriter:
    """Open a phase-space file for chunked, atomic writing (refuses to overwrite unless ``force``)."""
    _, writer_cls = _classes(detect_format(path, format))
    return writer_cls(path, columns=columns, force=force, **options)


def read_table(
    path: str | Path, columns: Sequence[str] | None = None, *, max_rows: int | None = None, format: str | None = None, **options: Any
) -> Table:
    """Read a whole phase space (or its first ``max_rows`` rows) into memory."""
    with open_reader(path, format=format, **options) as reader:
        return reader.read(columns, max_rows=max_rows)


def write_table(path: str | Path, table: Table, *, force: bool = False, format: str | None = None, **options: Any) -> None:
    """Write an in-memory table to ``path`` atomically."""
    with open_writer(path, format=format, columns=list(table), force=force, **options) as writer:
        writer.write(table)


def convert(
    src: str | Path,
    dst: str | Path,
    *,
    columns: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    force: bool = False,
    src_options: dict[str, Any] | None = None,
    dst_options: dict[str, Any] | None = None,
) -> int:
    """Stream ``src`` into ``dst`` (any two formats) in chunks; return the number of rows written."""
    with open_reader(src, **(src_options or {})) as reader:
        cols = reader.check_columns(columns)
        with open_writer(dst, columns=cols, force=force, **(dst_options or {})) as writer:
            for chunk in reader.iter_chunks(chunk_rows, cols):
                writer.write(chunk)
            return writer.rows_written
