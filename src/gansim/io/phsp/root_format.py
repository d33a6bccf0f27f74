"""ROOT phase spaces: one TTree whose 1-D numeric branches are the columns.

This is what GATE's phase-space actor writes (a TTree, usually named
``PhaseSpace`` or ``phsp``, with one ``double``/``float``/``int`` branch per
attribute, plus string branches such as ``ParticleName`` that gansim skips).
Reading and writing both go through :mod:`uproot`, so no ROOT installation is
needed.

Example::

    from gansim.io.phsp.root_format import RootReader, RootWriter

    with RootReader("gate.root") as reader:            # the only TTree is picked
        with RootWriter("copy.root", tree="phsp") as writer:
            for chunk in reader.iter_chunks(100_000):
                writer.write(chunk)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from gansim.errors import ConfigError, DataError
from gansim.io.phsp.base import PhaseSpaceReader, PhaseSpaceWriter
from gansim.io.phsp.columns import Table

__all__ = ["RootReader", "RootWriter"]

#: ROOT classes uproot reads as TTrees (TNtuple/TNtupleD derive from TTree).
_TREE_CLASSES = frozenset({"TTree", "TNtuple", "TNtupleD"})

#: Column dtypes a TTree branch can hold without conversion.
_ROOT_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64)
)

#: Rows buffered before one ``extend`` call. uproot writes one basket per branch
#: and call, so writing the caller's (possibly tiny) chunks directly would give
#: files with thousands of tiny baskets that ROOT reads slowly. About 2 MB per
#: float64 branch.
_BASKET_ROWS = 262_144

#: dtype of the branches of a file written without any row and without dtypes.
_DEFAULT_DTYPE = np.dtype(np.float32)


#: compression= names -> uproot codec classes (all readable by ROOT >= 6.20).
_CODECS = {"zlib": "ZLIB", "lzma": "LZMA", "lz4": "LZ4", "zstd": "ZSTD"}


def _codec(spec: str | None) -> Any:
    """``"zlib"``, ``"lz4:1"``, ... -> an uproot compression object; ``None``/``"none"`` -> no compression."""
    if spec is None or str(spec).lower() == "none":
        return None
    name, _, level = str(spec).lower().partition(":")
    if name not in _CODECS or (level and not level.isdigit()):
        raise ConfigError(
            f"compression={spec!r} is not understood; expected one of {', '.join(_CODECS)} with an optional "
            "':level' (e.g. 'lz4:1'), or None"
        )
    try:
        return getattr(uproot, _CODECS[name])(int(level) if level else 1)
    except ValueError as exc:  # level out of the codec's range
        raise ConfigError(f"compression={spec!r}: {exc}") from exc


def _strip_cycle(key: str) -> str:
    """``"dir/tree;3"`` -> ``"dir/tree"`` (uproot keys carry ROOT's cycle number)."""
    return key.rsplit(";", 1)[0] if ";" in key else key


class RootReader(PhaseSpaceReader):
    """Chunked reader for one TTree of a ROOT file.

    Args:
        path: the ``.root`` file.
        tree: name (or ``dir/name`` path) of the TTree. May be left out when the
            file holds exactly one TTree (nested directories included).

    Columns are the branches holding one number per entry (any int, uint, float
    or bool type, returned with that dtype in native byte order); jagged,
    fixed-size-array and string branches are skipped. Values are returned as
    stored: GATE already writes mm, MeV and ns.

    Raises:
        DataError: the file is missing, not ROOT, truncated, holds no TTree, or
            several TTrees and ``tree`` is not given, or ``tree`` is unknown.
    """

    format_name = "root"

    def __init__(self, path: str | Path, tree: str | None = None) -> None:
        super().__init__(path)
        try:
            self._file = uproot.open(self.path)
        except Exception as exc:  # uproot raises ValueError, OSError, its own deserialization errors...
            raise DataError(f"{self.path}: not a readable ROOT file ({type(exc).__name__}: {exc})") from exc
        try:
            self.tree_name = self._pick_tree(tree)
            self._tree = self._file[self.tree_name]
            self._columns = self._numeric_branches()
            self._n_rows = int(self._tree.num_entries)
        except DataError:
            self._file.close()
            raise
        except Exception as exc:  # a truncated or corrupt file fails while reading its directory or tree
            self._file.close()
            raise DataError(f"{self.path}: cannot read the ROOT file, it may be truncated or corrupt ({type(exc).__name__}: {exc})") from exc

    def _pick_tree(self, tree: str | None) -> str:
        """Name of the TTree to read: ``tree`` when it exists, else the only one."""
        classnames: dict[str, str] = self._file.classnames(recursive=True)
        # One entry per tree even when ROOT kept several cycles (AutoSave); uproot
        # then opens the highest cycle.
        trees = list(dict.fromkeys(_strip_cycle(k) for k, cls in classnames.items() if cls in _TREE_CLASSES))
        if tree is not None:
            wanted = _strip_cycle(tree.strip("/"))
            if wanted not in trees:
                available = ", ".join(repr(t) for t in trees) if trees else "none"
                raise DataError(f"{self.path}: no TTree named {tree!r}; TTrees in the file: {available}")
            return wanted
        if len(trees) == 1:
            return trees[0]
        if not trees:
            others = ", ".join(f"{_strip_cycle(k)} ({cls})" for k, cls in classnames.items()) or "nothing"
            raise DataError(f"{self.path}: holds no TTree (it holds: {others}); gansim reads phase spaces stored as a TTree")
        raise DataError(
            f"{self.path}: holds several TTrees ({', '.join(repr(t) for t in trees)}); choose one with tree=... (--tree)"
        )

    def _numeric_branches(self) -> list[str]:
        """Branches with exactly one number per entry, in the tree's order."""
        columns = []
        for name, branch in self._tree.iteritems(recursive=True):
            interp = branch.interpretation
            if not isinstance(interp, uproot.interpretation.numerical.Numerical):
                continue  # jagged, strings (GATE's ParticleName), objects
            dtype = np.dtype(interp.to_dtype)
            if dtype.shape != () or tuple(getattr(interp, "inner_shape", ())) != ():
                continue  # fixed-size arrays such as float[3]
            if dtype.kind not in "biuf":
                continue
            columns.append(name)
        return columns

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def n_rows(self) -> int:
        return self._n_rows

    def _iter_chunks(self, chunk_rows: int, columns: list[str]) -> Iterator[Table]:
        if not columns or self._n_rows == 0:
            return
        # iterate() reuses decompressed baskets across steps, so memory stays at
        # about one chunk plus one basket per branch.
        steps = self._tree.iterate(columns, step_size=chunk_rows, library="np")
        while True:
            try:
                arrays = next(steps)
            except StopIteration:
                return
            except Exception as exc:  # corrupt or truncated baskets surface only here
                raise DataError(
                    f"{self.path}: cannot read TTree {self.tree_name!r}, the file may be truncated or corrupt "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            yield {c: np.asarray(arrays[c]) for c in columns}

    def close(self) -> None:
        self._file.close()


class RootWriter(PhaseSpaceWriter):
    """Write a table as one TTree of flat branches (GATE's layout), atomically.

    Args:
        path: target ``.root`` file.
        columns: column names (default: those of the first chunk).
        force: overwrite an existing file.
        tree: name of the TTree (``"dir/name"`` creates a directory).
        compression: ``"zlib:1"`` (default, what uproot and older ROOT use),
            ``"lz4:1"`` (about 10 times faster to write, slightly larger),
            ``"zstd:N"``, ``"lzma:N"``, or ``None`` for none.

    Each branch keeps the dtype of its column in the first chunk written
    (float32, float64, int32, int64, ... ; later chunks are cast to it when the
    cast keeps the kind, else :class:`DataError`). A file written without any
    row and without chunks holds float32 branches.
    """

    format_name = "root"

    def __init__(
        self,
        path: str | Path,
        *,
        columns: Sequence[str] | None = None,
        force: bool = False,
        tree: str = "phsp",
        compression: str | None = "zlib:1",
    ) -> None:
        # Options are checked before the base class creates the temporary file.
        if not isinstance(tree, str) or not tree.strip("/"):
            raise ConfigError(f"{path}: tree must be a non-empty name, got {tree!r}")
        self._compression = _codec(compression)
        super().__init__(path, columns=columns, force=force)
        self.tree = tree.strip("/")
        self._file: Any = None
        self._out: Any = None
        self._dtypes: dict[str, np.dtype] = {}
        self._pending: list[Table] = []
        self._pending_rows = 0

    def _start(self, columns: list[str]) -> None:
        super()._start(columns)
        if not columns:
            raise DataError(f"{self.path}: no columns to write")
        for c in columns:
            dtype = self.first_dtypes.get(c, _DEFAULT_DTYPE)
            dtype = dtype.newbyteorder("=") if dtype.kind in "iuf" else dtype
            if dtype not in _ROOT_DTYPES:
                raise DataError(
                    f"{self.path}: column {c!r} has dtype {dtype}; a TTree branch holds bool, (u)int8-64, float32 or float64"
                )
            self._dtypes[c] = dtype
        # uproot.recreate truncates the empty temporary file the base class made.
        self._file = uproot.recreate(self._tmp, compression=self._compression)
        self._out = self._file.mktree(self.tree, {c: self._dtypes[c] for c in columns})

    def _write(self, chunk: Table, n: int) -> None:
        part: Table = {}
        for c in self.columns or ():  # set by the base class before any _write
            col = np.asarray(chunk[c])
            dtype = self._dtypes[c]
            if not np.can_cast(col.dtype, dtype, casting="same_kind"):
                raise DataError(f"{self.path}: column {c!r} of this chunk has dtype {col.dtype}; the branch holds {dtype}")
            part[c] = np.ascontiguousarray(col, dtype=dtype)
        if not self._pending and n >= _BASKET_ROWS:
            self._out.extend(part)  # big chunk: one basket as is, no copy
            return
        # Copy what was not converted: the caller may reuse its buffers while
        # rows wait in _pending.
        self._pending.append({c: v.copy() if v is chunk[c] else v for c, v in part.items()})
        self._pending_rows += n
        if self._pending_rows >= _BASKET_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Send the buffered rows to uproot as one basket per branch."""
        if not self._pending:
            return
        if len(self._pending) == 1:
            data = self._pending[0]
        else:
            data = {c: np.concatenate([p[c] for p in self._pending]) for c in self._pending[0]}
        self._pending = []
        self._pending_rows = 0
        self._out.extend(data)

    def _finish(self) -> None:
        self._flush()
        self._file.close()
        self._file = None

    def _abort_hook(self) -> None:
        self._pending = []
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
