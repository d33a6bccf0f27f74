"""NumPy phase spaces: ``.npy`` structured arrays and ``.npz`` archives.

``.npy``
    The layout gaga-phsp and gatetools use: a 1-D *structured* array, one
    field per column, each ``'<f4'``; ``np.load(path)["KineticEnergy"]`` is a
    column. Read through a memory map, so a file larger than memory is streamed
    chunk by chunk. A plain 2-D array (rows x columns) is read too when the
    caller names its columns with ``keys=[...]``.
``.npz``
    One 1-D array per column, as ``np.savez(path, **table)`` writes. Members are
    streamed (stored or deflated), never loaded whole.

Both writers stream: rows go to disk chunk by chunk and the header (the row
count) is written at the end, so memory stays at one chunk. Values are stored
in gansim units (mm, MeV, ns), the same as GATE.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.lib.format as npy_format

from gansim.errors import ConfigError, DataError
from gansim.io.phsp.base import PhaseSpaceReader, PhaseSpaceWriter
from gansim.io.phsp.columns import Table

__all__ = ["NpyReader", "NpyWriter", "NpzReader", "NpzWriter"]

_NPY_MAGIC = b"\x93NUMPY"
#: Every zip archive starts with "PK" (a member header, or the end record when empty).
_ZIP_MAGIC = b"PK"

#: Row count written in the provisional header; its header is at least as long
#: as the one for any real count, so the final header fits in the same bytes.
_RESERVED_ROWS = 10**18

#: Errors numpy and zipfile raise on malformed or truncated input.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
    TypeError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
)

#: Bytes copied at a time when assembling an .npz.
_COPY_BLOCK = 16 * 2**20


# --------------------------------------------------------------------------- helpers


def _is_numeric(dtype: np.dtype) -> bool:
    """A scalar int, uint, float or bool dtype (no fields, no sub-array, no objects)."""
    return dtype.names is None and dtype.shape == () and dtype.kind in "biuf"


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (big-endian files are legal .npy)."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _dtype_option(dtype: Any, path: str | Path) -> np.dtype | None:
    """Validate a writer's ``dtype=`` option: ``None`` (keep) or a numeric scalar dtype."""
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ConfigError(f"{path}: dtype={dtype!r} is not a NumPy dtype") from exc
    if not _is_numeric(resolved):
        raise ConfigError(f"{path}: dtype={dtype!r} must be a numeric scalar type such as 'f4' or 'f8'")
    return resolved


def _column_dtypes(
    path: Path, columns: list[str], seen: dict[str, np.dtype], forced: np.dtype | None
) -> dict[str, np.dtype]:
    """Dtype of every output column: ``forced`` or the one seen in the first chunk (float32 if none)."""
    dtypes: dict[str, np.dtype] = {}
    for c in columns:
        if forced is not None:
            dtypes[c] = forced
            continue
        dtype = seen.get(c, np.dtype(np.float32))
        if not _is_numeric(dtype):
            raise DataError(f"{path}: column {c!r} has dtype {dtype}; expected numbers (int, float or bool)")
        dtypes[c] = dtype.newbyteorder("=") if dtype.kind in "iuf" else dtype
    return dtypes


def _checked_column(path: Path, column: str, values: Any, target: np.dtype, forced: bool, first_row: int = 0) -> np.ndarray:
    """``values`` as an array, refusing non-numbers, casts across kinds and integer casts that change values.

    With a dtype forced by the caller (e.g. float32) a numeric cast is
    intended, and float -> float rounding (float64 -> float32) is accepted;
    but an integer (or bool) column must come back unchanged: float32 holds
    integers exactly only up to 2**24, so an ``EventID`` of 16777217 would be
    stored as 16777216. That is a :class:`DataError` naming the column and the
    first value that changes (``first_row`` is the output row of ``values[0]``).
    When the first chunk set the dtype, a later float chunk must not be
    truncated silently into an int column.
    """
    col = np.asarray(values)
    if not _is_numeric(col.dtype):
        raise DataError(f"{path}: column {column!r} of this chunk has dtype {col.dtype}; expected numbers")
    if not forced and not np.can_cast(col.dtype, target, casting="same_kind"):
        raise DataError(f"{path}: column {column!r} of this chunk has dtype {col.dtype}; the file stores {target}")
    if forced and col.dtype.kind in "biu" and col.dtype != target and col.size:
        with np.errstate(all="ignore"):
            back = col.astype(target).astype(col.dtype)
        changed = back != col
        if changed.any():
            i = int(np.flatnonzero(changed)[0])
            hint = " (float32 holds integers exactly only up to 2**24 = 16777216)" if target == np.float32 else ""
            raise DataError(
                f"{path}: integer column {column!r} does not fit dtype {target}: row {first_row + i} holds {col[i].item()!r}, "
                f"which would be stored as {col[i:i + 1].astype(target)[0].item()!r}{hint}; write a .npz or .root file, "
                "or pass dtype=None to keep each column's dtype"
            )
    return col


def _npy_header(dtype: np.dtype, rows: int, path: Path) -> bytes:
    """The bytes ``np.save`` writes before the data of a 1-D array of ``rows`` rows of ``dtype``.

    NumPy pads the header so that the row count can grow to 21 digits in
    place, so the header for the real count has the length of the provisional
    one and the result is byte-identical to ``np.save``.
    """
    header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": (rows,)}
    errors = []
    # Version 1.0 like np.save; 2.0 when the header exceeds 64 KiB (thousands of columns).
    for write in (npy_format.write_array_header_1_0, npy_format.write_array_header_2_0):
        buf = io.BytesIO()
        try:
            write(buf, header)
        except ValueError as exc:  # too long for 1.0, or names not latin-1
            errors.append(exc)
            continue
        return buf.getvalue()
    raise DataError(f"{path}: cannot write a .npy header for these columns ({errors[-1]}); column names must be latin-1 text")


def _pad_header(header: bytes, length: int) -> bytes:
    """Pad an npy ``header`` with spaces to ``length`` bytes, fixing its length field.

    Only needed with NumPy releases that do not reserve room for growth, where
    the final header can be shorter than the provisional one.
    """
    extra = length - len(header)
    if extra < 0:
        raise RuntimeError(f"npy header grew from {length} to {len(header)} bytes")  # cannot happen: reserved for 10**18 rows
    if extra == 0:
        return header
    major = header[6]
    size_bytes = 2 if major == 1 else 4
    start = 8 + size_bytes
    old = int.from_bytes(header[8:start], "little")
    body = header[start:-1] + b" " * extra + b"\n"  # numpy ends the header dict with spaces and a newline
    return header[:8] + (old + extra).to_bytes(size_bytes, "little") + body


def _read_npy_header(fp: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a .npy header from ``fp``: (shape, fortran_order, dtype); ``fp`` is left at the data."""
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fp)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(fp)
    # 3.0 (utf-8 names) has no public reader; use numpy's own when present.
    reader = getattr(npy_format, "_read_array_header", None)
    if reader is None:
        raise ValueError(f"unsupported .npy format version {version}")
    return reader(fp, version)


def _starts_with(path: Path, magic: bytes) -> bool:
    """Whether the file begins with ``magic``; unreadable paths (directories, no permission) are DataError."""
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from exc


# --------------------------------------------------------------------------- .npy


class NpyReader(PhaseSpaceReader):
    """Chunked reader of a ``.npy`` phase space.

    Args:
        path: the file. Either a 1-D structured array (columns = its numeric
            fields, any int/float dtype, kept as stored) or, with ``keys``, a
            plain 2-D numeric array of shape ``(rows, len(keys))``.
        keys: column names of a plain 2-D array, in column order. Not allowed
            for structured arrays (select columns with ``columns=`` instead).

    The file is memory-mapped, so only the rows of the current chunk are read.
    Pickled (object) arrays are refused, never unpickled.
    """

    format_name = "npy"

    def __init__(self, path: str | Path, keys: Sequence[str] | None = None) -> None:
        super().__init__(path)
        if not _starts_with(self.path, _NPY_MAGIC):
            raise DataError(f"{self.path}: not a .npy file (it does not start with NumPy's magic bytes)")
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except _READ_ERRORS as exc:
            raise DataError(f"{self.path}: cannot read the .npy file, it may be truncated or corrupt ({exc})") from exc
        self._array: np.ndarray | None = array
        self._fields: dict[str, int | str] = {}
        dtype = array.dtype
        if dtype.names is not None:
            if keys is not None:
                raise DataError(
                    f"{self.path}: keys= names the columns of a plain 2-D array, but this file is a structured array "
                    f"with fields {', '.join(dtype.names)}; select columns with columns=... instead"
                )
            if array.ndim != 1:
                raise DataError(f"{self.path}: structured array has shape {array.shape}; expected a 1-D array of rows")
            # Non-numeric fields (strings, sub-arrays) are skipped, as ROOT string branches are.
            self._fields = {name: name for name in dtype.names if _is_numeric(dtype.fields[name][0])}
            if not self._fields:
                raise DataError(f"{self.path}: none of the fields {', '.join(dtype.names)} holds numbers")
        else:
            if not _is_numeric(dtype):
                raise DataError(f"{self.path}: array has dtype {dtype}; expected numbers")
            if keys is None:
                raise DataError(
                    f"{self.path}: holds a plain array of shape {array.shape}, which has no column names; "
                    "pass keys=[...] (one name per column) to read a 2-D array, or save a structured array"
                )
            keys = list(keys)
            if array.ndim != 2:
                raise DataError(f"{self.path}: array has shape {array.shape}; keys= needs a 2-D array (rows, columns)")
            if len(keys) != array.shape[1]:
                raise DataError(f"{self.path}: array has {array.shape[1]} columns but {len(keys)} keys were given: {keys}")
            if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
                raise DataError(f"{self.path}: keys must be distinct strings, got {keys}")
            self._fields = {k: j for j, k in enumerate(keys)}

    @property
    def columns(self) -> list[str]:
        return list(self._fields)

    @property
    def n_rows(self) -> int:
        return 0 if self._array is None else int(self._array.shape[0])

    def _iter_chunks(self, chunk_rows: int, columns: list[str]) -> Iterator[Table]:
        array = self._array
        if array is None:
            raise ValueError(f"{self.path}: reader is closed")
        if not columns:
            return
        structured = array.dtype.names is not None
        for start in range(0, array.shape[0], chunk_rows):
            rows = array[start : start + chunk_rows]
            chunk: Table = {}
            for c in columns:
                view = rows[self._fields[c]] if structured else rows[:, self._fields[c]]
                # Copy out of the memory map: contiguous, writable, native byte order.
                chunk[c] = _native(np.array(view))
            yield chunk

    def close(self) -> None:
        # Dropping the last reference unmaps the file (chunks are copies).
        self._array = None


class NpyWriter(PhaseSpaceWriter):
    """Write a ``.npy`` structured array (gaga-phsp's layout) chunk by chunk.

    Args:
        path: target ``.npy`` file.
        columns: column names (default: those of the first chunk).
        force: overwrite an existing file.
        dtype: dtype of every field, ``"f4"`` (float32, gaga-phsp) by default;
            ``None`` keeps each column's dtype from the first chunk.

    Precision with the default ``dtype="f4"``: float64 columns are rounded to
    float32 (about 7 significant digits) without a word, because that is
    gaga-phsp's layout and what its tools expect. Integer columns, though,
    must survive the cast exactly: a value that float32 cannot hold (an
    ``EventID`` above 2**24 = 16777216 that is not a multiple of a power of
    two) raises a :class:`DataError` naming the column and the first such
    value; write ``.npz`` or ``.root`` instead, or pass ``dtype=None``.

    The file is byte-identical to ``np.save(path, structured_array)`` and
    loads with a plain ``np.load``.
    """

    format_name = "npy"

    def __init__(
        self, path: str | Path, *, columns: Sequence[str] | None = None, force: bool = False, dtype: Any = "f4"
    ) -> None:
        self._forced = _dtype_option(dtype, path)
        super().__init__(path, columns=columns, force=force)
        self._record: np.dtype | None = None
        self._fp: IO[bytes] | None = None
        self._header_len = 0

    def _start(self, columns: list[str]) -> None:
        super()._start(columns)
        if not columns:
            raise DataError(f"{self.path}: no columns to write")
        dtypes = _column_dtypes(self.path, columns, self.first_dtypes, self._forced)
        try:
            self._record = np.dtype([(c, dtypes[c]) for c in columns])
        except (TypeError, ValueError) as exc:  # duplicate or non-string names
            raise DataError(f"{self.path}: cannot make a structured array with columns {columns} ({exc})") from exc
        header = _npy_header(self._record, _RESERVED_ROWS, self.path)
        self._header_len = len(header)
        self._fp = open(self._tmp, "wb")  # noqa: SIM115 - closed in _finish/_abort_hook
        self._fp.write(header)

    def _write(self, chunk: Table, n: int) -> None:
        if self._record is None or self._fp is None:
            raise ValueError(f"{self.path}: writer not started")
        rows = np.empty(n, dtype=self._record)
        forced = self._forced is not None
        for c in self._record.names or ():
            target = self._record.fields[c][0]  # type: ignore[index]
            # casts, e.g. float64 -> float32
            rows[c] = _checked_column(self.path, c, chunk[c], target, forced, self.rows_written)
        rows.tofile(self._fp)

    def _finish(self) -> None:
        if self._record is None or self._fp is None:
            raise ValueError(f"{self.path}: writer not started")
        header = _pad_header(_npy_header(self._record, self.rows_written, self.path), self._header_len)
        self._fp.seek(0)
        self._fp.write(header)
        self._fp.close()
        self._fp = None

    def _abort_hook(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None


# --------------------------------------------------------------------------- .npz


class NpzReader(PhaseSpaceReader):
    """Chunked reader of a ``.npz`` archive holding one 1-D array per column.

    Args:
        path: the archive (``np.savez`` or ``np.savez_compressed`` output).

    Columns are the members (``"KineticEnergy.npy"`` -> ``"KineticEnergy"``)
    holding a 1-D numeric array; other members (scalars, 2-D arrays,
    strings) are skipped. All columns must have the same length. Members are
    read sequentially chunk by chunk, decompressing as they go when deflated.
    """

    format_name = "npz"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        if not _starts_with(self.path, _ZIP_MAGIC):
            raise DataError(f"{self.path}: not a .npz file (it is not a zip archive)")
        try:
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(self.path)
        except _READ_ERRORS as exc:
            raise DataError(f"{self.path}: cannot open the .npz archive, it may be truncated or corrupt ({exc})") from exc
        try:
            self._members = self._scan(self._zip)
        except BaseException:
            self._zip.close()
            raise
        lengths = {c: n for c, (_, _, n) in self._members.items()}
        if not lengths:
            names = ", ".join(i.filename for i in self._zip.infolist()) or "nothing"
            self._zip.close()
            raise DataError(f"{self.path}: holds no 1-D numeric array (members: {names})")
        if len(set(lengths.values())) > 1:
            self._zip.close()
            raise DataError(
                f"{self.path}: columns differ in length ({', '.join(f'{c}: {n}' for c, n in lengths.items())}); "
                "expected one row count"
            )
        self._n_rows = next(iter(lengths.values()))

    def _scan(self, archive: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, np.dtype, int]]:
        """Column name -> (member, dtype, rows) for every 1-D numeric member."""
        members: dict[str, tuple[zipfile.ZipInfo, np.dtype, int]] = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            try:
                with archive.open(info) as fp:
                    shape, _, dtype = _read_npy_header(fp)
            except _READ_ERRORS as exc:
                raise DataError(f"{self.path}: member {info.filename!r} is not a readable .npy array ({exc})") from exc
            if len(shape) == 1 and _is_numeric(dtype):
                members[name] = (info, dtype, int(shape[0]))
        return members

    @property
    def columns(self) -> list[str]:
        return list(self._members)

    @property
    def n_rows(self) -> int:
        return self._n_rows

    def _iter_chunks(self, chunk_rows: int, columns: list[str]) -> Iterator[Table]:
        if self._zip is None:
            raise ValueError(f"{self.path}: reader is closed")
        if not columns:
            return
        streams: dict[str, IO[bytes]] = {}
        try:
            try:
                for c in columns:
                    fp = self._zip.open(self._members[c][0])
                    streams[c] = fp
                    _read_npy_header(fp)  # position at the data
            except _READ_ERRORS as exc:
                raise DataError(f"{self.path}: cannot read column {c!r} ({exc})") from exc
            for start in range(0, self._n_rows, chunk_rows):
                count = min(chunk_rows, self._n_rows - start)
                yield {c: self._read_rows(c, streams[c], count) for c in columns}
        finally:
            for fp in streams.values():
                fp.close()

    def _read_rows(self, column: str, fp: IO[bytes], count: int) -> np.ndarray:
        """The next ``count`` values of ``column`` from its open member."""
        dtype = self._members[column][1]
        out = np.empty(count, dtype=dtype)
        want = out.nbytes
        try:
            got = fp.readinto(memoryview(out).cast("B"))  # type: ignore[attr-defined]
        except _READ_ERRORS as exc:  # bad CRC, corrupt deflate stream
            raise DataError(f"{self.path}: cannot read column {column!r}, the archive may be corrupt ({exc})") from exc
        if got != want:
            raise DataError(f"{self.path}: column {column!r} is truncated (expected {want} more bytes, got {got})")
        return _native(out)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


class NpzWriter(PhaseSpaceWriter):
    """Write a ``.npz`` archive with one 1-D array per column, chunk by chunk.

    Args:
        path: target ``.npz`` file.
        columns: column names (default: those of the first chunk).
        force: overwrite an existing file.
        compress: deflate the members (as ``np.savez_compressed``); default
            stored, as ``np.savez``.
        dtype: dtype of every column; ``None`` (default) keeps each column's
            dtype from the first chunk. A forced dtype rounds floats but
            refuses integer values it cannot hold exactly (as :class:`NpyWriter`).

    Each column streams to its own temporary raw file beside the target; the
    archive (ZIP64 when large) is assembled on :meth:`close`, so a run needs
    about twice the output size of free disk.
    """

    format_name = "npz"

    def __init__(
        self,
        path: str | Path,
        *,
        columns: Sequence[str] | None = None,
        force: bool = False,
        compress: bool = False,
        dtype: Any = None,
    ) -> None:
        self._forced = _dtype_option(dtype, path)
        super().__init__(path, columns=columns, force=force)
        self.compress = bool(compress)
        self._dtypes: dict[str, np.dtype] = {}
        self._raw: dict[str, tuple[Path, IO[bytes]]] = {}

    def _start(self, columns: list[str]) -> None:
        super()._start(columns)
        if not columns:
            raise DataError(f"{self.path}: no columns to write")
        if len(set(columns)) != len(columns):
            raise DataError(f"{self.path}: duplicate column names in {columns}")
        self._dtypes = _column_dtypes(self.path, columns, self.first_dtypes, self._forced)
        for i, c in enumerate(columns):
            # Index, not column name, in the file name: names may hold '/' or other odd characters.
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".col{i}.part", dir=self.path.parent)
            self._raw[c] = (Path(name), os.fdopen(fd, "wb"))

    def _write(self, chunk: Table, n: int) -> None:
        forced = self._forced is not None
        for c, (_, fp) in self._raw.items():
            col = _checked_column(self.path, c, chunk[c], self._dtypes[c], forced, self.rows_written)
            np.ascontiguousarray(col, dtype=self._dtypes[c]).tofile(fp)

    def _finish(self) -> None:
        for _, fp in self._raw.values():
            fp.close()
        method = zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(self._tmp, "w", compression=method, allowZip64=True) as archive:
            for c, (raw, _) in self._raw.items():
                header = _npy_header(self._dtypes[c], self.rows_written, self.path)
                info = zipfile.ZipInfo(f"{c}.npy", date_time=time.localtime()[:6])
                info.compress_type = method
                # The declared size lets zipfile switch to ZIP64 by itself above 2 GiB.
                info.file_size = len(header) + self.rows_written * self._dtypes[c].itemsize
                with archive.open(info, "w") as dst, open(raw, "rb") as src:
                    dst.write(header)
                    shutil.copyfileobj(src, dst, _COPY_BLOCK)
                raw.unlink()
        self._raw = {}

    def _abort_hook(self) -> None:
        for raw, fp in self._raw.values():
            fp.close()
            raw.unlink(missing_ok=True)
        self._raw = {}

