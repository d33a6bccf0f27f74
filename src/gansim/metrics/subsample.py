"""Reproducible row subsets of a table, and the column checks the sample-comparison metrics share.

A *table* is a mapping ``{key: 1-D array}`` whose columns all have the same length (one row per
particle/event) and are in physical units (mm, MeV, ns...).  Subsetting keeps every column's rows
aligned: row ``i`` of the subset is row ``idx[i]`` of every column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError

__all__ = ["deterministic_subsample", "table_rows", "stack_columns", "take_rows"]


def table_rows(table: Mapping[str, np.ndarray], name: str = "table", keys: Sequence[str] | None = None) -> int:
    """Number of rows of ``table``, checking that the columns in ``keys`` (default: all) are 1-D and of equal length.

    Raises :class:`DataError` naming ``name`` and the offending key when a column is missing,
    not 1-D, or of a different length than the first one.
    """
    keys = list(table) if keys is None else list(keys)
    if not keys:
        raise DataError(f"{name} has no columns to use")
    n: int | None = None
    first = ""
    for key in keys:
        if key not in table:
            raise DataError(f"{name} has no column {key!r}; it has {', '.join(map(str, table)) or 'no columns'}")
        col = np.asarray(table[key])
        if col.ndim != 1:
            raise DataError(f"{name} column {key!r} has shape {col.shape}; expected a 1-D column (one value per row)")
        if n is None:
            n, first = len(col), key
        elif len(col) != n:
            raise DataError(f"{name} column {key!r} has {len(col)} rows but column {first!r} has {n}; expected equal lengths")
    assert n is not None
    return n


def stack_columns(table: Mapping[str, np.ndarray], keys: Sequence[str], name: str = "table") -> np.ndarray:
    """The columns ``keys`` of ``table`` as a float64 matrix of shape ``(rows, len(keys))``.

    Raises :class:`DataError` for a missing, ragged or non-finite (NaN/Inf) column, naming the key.
    """
    keys = list(keys)
    n = table_rows(table, name, keys)
    out = np.empty((n, len(keys)), dtype=np.float64)
    for j, key in enumerate(keys):
        col = np.asarray(table[key], dtype=np.float64)
        bad = int(np.count_nonzero(~np.isfinite(col)))
        if bad:
            raise DataError(f"{name} column {key!r} has {bad} non-finite values (NaN or Inf) out of {n}; expected finite numbers")
        out[:, j] = col
    return out


def take_rows(table: Mapping[str, np.ndarray], idx: np.ndarray, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{key: column[idx]}`` for ``keys`` (default: all columns); ``idx`` is an integer or boolean index."""
    keys = list(table) if keys is None else list(keys)
    return {k: np.asarray(table[k])[idx] for k in keys}


def deterministic_subsample(table: Mapping[str, np.ndarray], max_rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """At most ``max_rows`` rows of ``table``, chosen uniformly at random without replacement, reproducibly.

    With ``n`` rows and ``n > max_rows``, the row indices are
    ``sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))`` (so the subset
    keeps the table's row order, and each subset of size ``max_rows`` is equally likely); the
    same ``(table, max_rows, seed)`` always gives the same rows.  Otherwise the table itself is
    returned (as a new dict holding the same column arrays, no copy).

    Returns ``(subset, info)`` with
    ``info = {"rows": n, "used": m, "seed": seed, "method": "uniform without replacement"}``,
    ``m = min(n, max_rows)``.
    """
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ConfigError(f"max_rows must be a positive integer, got {max_rows!r}")
    n = table_rows(table, "table")
    info: dict[str, Any] = {"rows": n, "used": min(n, int(max_rows)), "seed": seed, "method": "uniform without replacement"}
    if n <= max_rows:
        return dict(table), info
    idx = np.sort(np.random.default_rng(seed).choice(n, size=int(max_rows), replace=False))
    return take_rows(table, idx), info
