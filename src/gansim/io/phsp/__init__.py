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

Between formats, :func:`convert` streams a file into another; MCPL and IAEA
cannot store every column (IAEA has no ``GlobalTime``, MCPL no
``NewHistory``) and need to know the particle type::

    convert("gate.root", "linac.IAEAphsp", particle="gamma")       # no PDGCode column in gate.root
    convert("linac.mcpl", "linac.IAEAphsp", drop_unknown=True)      # leaves out GlobalTime
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gansim.errors import ConfigError, DataError
from gansim.io.phsp.base import DEFAULT_CHUNK_ROWS, PhaseSpaceReader, PhaseSpaceWriter
from gansim.io.phsp.columns import GATE_COLUMNS, PARTICLE_NAMES, UNITS, Table, particle_pdg_code, unit_of, validate_table

__all__ = [
    "FORMATS",
    "detect_format",
    "open_reader",
    "open_writer",
    "read_table",
    "write_table",
    "convert",
    "accepted_reader_options",
    "accepted_writer_options",
    "PhaseSpaceReader",
    "PhaseSpaceWriter",
    "Table",
    "GATE_COLUMNS",
    "UNITS",
    "unit_of",
    "validate_table",
    "PARTICLE_NAMES",
    "particle_pdg_code",
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


#: How error messages name each format, and the article before it.
_FORMAT_LABELS: dict[str, str] = {"root": "ROOT", "npy": "npy", "npz": "npz", "mcpl": "MCPL", "iaea": "IAEA"}
_ARTICLES: dict[str, str] = {"root": "a", "npy": "an", "npz": "an", "mcpl": "an", "iaea": "an"}

#: Parameters every writer takes that open_writer passes itself (not format options).
_WRITER_COMMON = frozenset({"columns", "force"})


def _classes(fmt: str) -> tuple[type[PhaseSpaceReader], type[PhaseSpaceWriter]]:
    module_name, reader_name, writer_name = FORMATS[fmt]
    module = importlib.import_module(module_name)
    return getattr(module, reader_name), getattr(module, writer_name)


def _format_options(cls: type, *, skip: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """Keyword options ``cls.__init__`` takes besides ``path`` (and ``skip``); ``None`` if it takes ``**kwargs``."""
    names: set[str] = set()
    for i, (name, param) in enumerate(inspect.signature(cls.__init__).parameters.items()):
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if i == 0 or name == "path" or name in skip:  # self, path
            continue
        if param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(name)
    return frozenset(names)


def accepted_reader_options(path: str | Path, *, format: str | None = None) -> frozenset[str]:
    """Names of the format options :func:`open_reader` takes for ``path`` (e.g. ``{"tree"}`` for ROOT)."""
    options = _format_options(_classes(detect_format(path, format))[0])
    return frozenset() if options is None else options


def accepted_writer_options(path: str | Path, *, format: str | None = None) -> frozenset[str]:
    """Names of the format options :func:`open_writer` takes for ``path`` (besides ``columns``, ``force``).

    Lets a caller with generic options (``particle``, ``drop_unknown`` from a
    command line) pass only those the output format takes, as :func:`convert` does.
    """
    options = _format_options(_classes(detect_format(path, format))[1], skip=_WRITER_COMMON)
    return frozenset() if options is None else options


def _check_options(path: str | Path, fmt: str, options: dict[str, Any], *, writer: bool) -> None:
    """Raise DataError for options the reader/writer of ``fmt`` does not take, saying which formats take them."""
    slot = 1 if writer else 0
    skip = _WRITER_COMMON if writer else frozenset()
    own = _format_options(_classes(fmt)[slot], skip=skip)
    if own is None:
        return
    bad = [name for name in options if name not in own]
    if not bad:
        return
    role = "writing" if writer else "reading"
    problems: list[str] = []
    for name in bad:
        takers: list[str] = []
        for other in FORMATS:
            if other == fmt:
                continue
            try:  # an optional dependency that is missing just means "not listed"
                other_options = _format_options(_classes(other)[slot], skip=skip)
            except ImportError:
                continue
            if other_options is None or name in other_options:
                takers.append(_FORMAT_LABELS[other])
        if takers:
            names = takers[0] if len(takers) == 1 else f"{', '.join(takers[:-1])} and {takers[-1]}"
            problems.append(f"option {name!r} applies to {names} files only")
        else:
            problems.append(f"option {name!r} is not a phase-space {role} option of any format")
    accepted = ", ".join(sorted(own)) or "none"
    raise DataError(
        f"{'; '.join(problems)}; {path} is {_ARTICLES[fmt]} {_FORMAT_LABELS[fmt]} file"
        f" (its {role} options: {accepted})"
    )


def open_reader(path: str | Path, *, format: str | None = None, **options: Any) -> PhaseSpaceReader:
    """Open a phase-space file for chunked reading.

    Args:
        path: the file (for IAEA either the ``.IAEAheader`` or the ``.IAEAphsp``).
        format: force a format instead of guessing from the suffix.
        **options: format options, e.g. ``tree="phsp"`` for ROOT or ``keys=[...]``
            for a plain 2-D ``.npy``. An option the format does not take is a
            :class:`DataError` ("option 'tree' applies to ROOT files only; x.npy
            is an npy file").
    """
    fmt = detect_format(path, format)
    _check_options(path, fmt, options, writer=False)
    reader_cls, _ = _classes(fmt)
    return reader_cls(path, **options)


def open_writer(
    path: str | Path,
    *,
    format: str | None = None,
    columns: Sequence[str] | None = None,
    force: bool = False,
    **options: Any,
) -> PhaseSpaceWriter:
    """Open a phase-space file for chunked, atomic writing (refuses to overwrite unless ``force``).

    ``**options`` are the writer's format options (``particle``, ``drop_unknown``
    for MCPL and IAEA, ``tree`` for ROOT, ``dtype`` for npy/npz...); one the
    format does not take is a :class:`DataError` naming the formats that take it.
    """
    fmt = detect_format(path, format)
    _check_options(path, fmt, options, writer=True)
    _, writer_cls = _classes(fmt)
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
    drop_unknown: bool = False,
    particle: str | int | None = None,
) -> int:
    """Stream ``src`` into ``dst`` (any two formats) in chunks; return the number of rows written.

    Args:
        src, dst: input and output files; formats from the names (or
            ``format=`` in ``src_options`` / ``dst_options``).
        columns: columns to copy (default all of ``src``).
        chunk_rows: rows per chunk (bounds memory).
        force: overwrite ``dst``.
        src_options, dst_options: format options of the reader and writer
            (checked as by :func:`open_reader` / :func:`open_writer`).
        drop_unknown: leave out the columns the output format cannot store
            (e.g. ``GlobalTime`` going to IAEA, ``NewHistory`` going to MCPL).
            Forwarded only to writers that take it (MCPL, IAEA); ROOT, npy and
            npz store any column anyway.
        particle: particle type of every row when ``src`` has no ``PDGCode``
            column ("gamma", "e-", "e+", "neutron", "proton" or a PDG code).
            Forwarded only to writers that take it (MCPL, IAEA).

    The number of original histories (``orig_histories`` of IAEA and MCPL
    readers) is carried over to writers that take ``orig_histories``, unless
    ``dst_options`` sets it.
    """
    src_opts = dict(src_options or {})
    dst_opts = dict(dst_options or {})
    _, writer_cls = _classes(detect_format(dst, dst_opts.get("format")))
    accepted = _format_options(writer_cls, skip=_WRITER_COMMON)
    for name, value, default in (("drop_unknown", drop_unknown, False), ("particle", particle, None)):
        if value == default or (accepted is not None and name not in accepted):
            continue
        if name in dst_opts and dst_opts[name] != value:
            raise ConfigError(f"{dst}: {name}={value!r} and dst_options[{name!r}]={dst_opts[name]!r} disagree; give only one")
        dst_opts[name] = value
    with open_reader(src, **src_opts) as reader:
        cols = reader.check_columns(columns)
        orig = getattr(reader, "orig_histories", None)
        if orig is not None and "orig_histories" not in dst_opts and (accepted is None or "orig_histories" in accepted):
            dst_opts["orig_histories"] = orig
        with open_writer(dst, columns=cols, force=force, **dst_opts) as writer:
            for chunk in reader.iter_chunks(chunk_rows, cols):
                writer.write(chunk)
            return writer.rows_written
