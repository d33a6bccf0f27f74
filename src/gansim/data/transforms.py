"""Invertible column transforms: physical table <-> normalised float32 matrix.

A GAN sees a matrix ``(n, k)`` of roughly standard-normal features; users want a
table in mm, MeV and ns. A :class:`TablePipeline` holds the column order
(``keys``) and a list of :class:`ColumnTransform` steps, each acting on a subset of
the columns, and converts between the two in both directions::

    pipe = TablePipeline.default(["KineticEnergy", "PrePosition_X", ...]).fit(chunks)
    x = pipe.forward(table)            # (n, k) float32, normalised
    table_back = pipe.inverse(x)        # dict column -> (n,) array, physical units

Every step has an exact inverse (up to float rounding) on the data it accepts and
refuses, with a :class:`~gansim.errors.DataError`, data it could not invert
(log of a non-positive value, a direction that is not a unit vector, NaN...).
The inverse is also what makes *generated* rows physical: clipped into their
bounds, directions renormalised to unit length.

Steps are plain data: :meth:`ColumnTransform.to_dict` gives JSON-able dicts that
are stored in a model file, and :meth:`ColumnTransform.from_dict` validates them
(:class:`~gansim.errors.ConfigError` for anything unknown or malformed).

All transforms work on NumPy arrays and on torch tensors (any device) and keep
the input's type, dtype and device: the data pipeline runs ``forward`` on NumPy
chunks, generation runs ``inverse`` on GPU tensors. Torch is never imported by
this module; a tensor is recognised only if the caller already imported torch.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from gansim.errors import ConfigError, DataError

__all__ = [
    "ColumnTransform",
    "LogTransform",
    "ClipTransform",
    "UnitVectorTransform",
    "ZScoreTransform",
    "TablePipeline",
    "TRANSFORM_KINDS",
    "transform_from_dict",
    "is_energy_column",
    "direction_triplets",
]

# --------------------------------------------------------------------------- #
# array-library dispatch (numpy <-> torch)
# --------------------------------------------------------------------------- #


def _torch_of(x: Any) -> Any:
    """The torch module when ``x`` is a tensor, else ``None``.

    Looked up in ``sys.modules`` so that NumPy-only callers never pay torch's import.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    return None


def _as_float(x: Any) -> Any:
    """``x`` as a floating array/tensor (integers are promoted; floats keep their dtype)."""
    torch = _torch_of(x)
    if torch is not None:
        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _const(x: Any, values: Sequence[float] | np.ndarray) -> Any:
    """Per-column parameters as a (k,) array/tensor of ``x``'s dtype (and device)."""
    torch = _torch_of(x)
    if torch is not None:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=x.dtype, device=x.device)
    return np.asarray(values, dtype=x.dtype)


def _copy(x: Any) -> Any:
    torch = _torch_of(x)
    return x.clone() if torch is not None else np.array(x, copy=True)


def _log(x: Any) -> Any:
    torch = _torch_of(x)
    return torch.log(x) if torch is not None else np.log(x)


def _exp(x: Any) -> Any:
    torch = _torch_of(x)
    return torch.exp(x) if torch is not None else np.exp(x)


def _row_norm(x: Any) -> Any:
    """Euclidean norm of each row, shape (n, 1) so that it broadcasts over columns."""
    torch = _torch_of(x)
    if torch is not None:
        return torch.sqrt((x * x).sum(dim=1, keepdim=True))
    return np.sqrt((x * x).sum(axis=1, keepdims=True))


def _maximum(x: Any, c: Any) -> Any:
    torch = _torch_of(x)
    return torch.maximum(x, c) if torch is not None else np.maximum(x, c)


def _minimum(x: Any, c: Any) -> Any:
    torch = _torch_of(x)
    return torch.minimum(x, c) if torch is not None else np.minimum(x, c)


def _abs(x: Any) -> Any:
    torch = _torch_of(x)
    return torch.abs(x) if torch is not None else np.abs(x)


def _any(mask: Any) -> bool:
    return bool(mask.any())


def _to_numpy(x: Any) -> np.ndarray:
    """A host copy for error messages (never on the hot path)."""
    torch = _torch_of(x)
    if torch is not None:
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_matrix(x: Any, columns: Sequence[str], who: str) -> None:
    shape = tuple(x.shape)
    if len(shape) != 2 or shape[1] != len(columns):
        raise DataError(
            f"{who}: got an array of shape {shape}; expected (n, {len(columns)}) with columns {list(columns)}"
        )


# --------------------------------------------------------------------------- #
# validation helpers for constructor arguments and dicts read from model files
# --------------------------------------------------------------------------- #


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _columns_arg(columns: Any, who: str, name: str = "columns") -> tuple[str, ...]:
    """Validate a list of column names (``who``/``name`` only word the error messages)."""
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise ConfigError(f"{who}: {name!r} must be a list of column names; got {columns!r}")
    cols = tuple(columns)
    if not cols:
        raise ConfigError(f"{who}: {name!r} is empty; expected at least one column name")
    for c in cols:
        if not isinstance(c, str) or not c:
            raise ConfigError(f"{who}: column names must be non-empty strings; got {c!r}")
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise ConfigError(f"{who}: column(s) {dup} listed more than once in {name!r}")
    return cols


def _per_column(values: Any, columns: tuple[str, ...], kind: str, name: str, *, allow_none: bool = False) -> list[Any]:
    """Broadcast a scalar or check a per-column list; numbers must be finite."""
    if values is None or _is_number(values):
        vals = [values] * len(columns)
    elif isinstance(values, Sequence) and not isinstance(values, str):
        vals = list(values)
        if len(vals) != len(columns):
            raise ConfigError(
                f"{kind} transform over {list(columns)}: {name!r} has {len(vals)} value(s); "
                f"expected one per column ({len(columns)})"
            )
    else:
        raise ConfigError(f"{kind} transform over {list(columns)}: {name!r} must be a number or a list; got {values!r}")
    out: list[Any] = []
    for col, v in zip(columns, vals):
        if v is None and allow_none:
            out.append(None)
        elif _is_number(v) and math.isfinite(float(v)):
            out.append(float(v))
        else:
            what = "a finite number or null" if allow_none else "a finite number"
            raise ConfigError(f"{kind} transform: {name!r} of column {col!r} is {v!r}; expected {what}")
    return out


# --------------------------------------------------------------------------- #
# transforms
# --------------------------------------------------------------------------- #

#: kind -> class, filled by ``ColumnTransform.__init_subclass__``.
TRANSFORM_KINDS: dict[str, type[ColumnTransform]] = {}


class ColumnTransform:
    """Base class: an invertible map of an ``(n, k)`` array of the ``k`` columns it owns.

    Subclasses set :attr:`kind` (the tag stored in model files) and implement
    :meth:`forward`, :meth:`inverse`, :meth:`_params` (the JSON parameters) and
    :meth:`_from_params`.
    """

    kind: ClassVar[str] = ""
    #: Whether the transform has statistics that :class:`TablePipeline.fit` estimates.
    stateful: ClassVar[bool] = False
    #: Parameter keys a dict must (required) / may (optional) carry besides kind and columns.
    _required: ClassVar[tuple[str, ...]] = ()
    _optional: ClassVar[tuple[str, ...]] = ()

    columns: tuple[str, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            TRANSFORM_KINDS[cls.kind] = cls

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = _columns_arg(columns, f"{self.kind or type(self).__name__} transform")

    # -- maths --------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Physical ``(n, k)`` -> transformed ``(n, k)``, same type/dtype/device as ``x``."""
        raise NotImplementedError

    def inverse(self, y: Any) -> Any:
        """Transformed ``(n, k)`` -> physical ``(n, k)``, same type/dtype/device as ``y``."""
        raise NotImplementedError

    # -- serialisation ------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_params(cls, columns: list[str], params: dict[str, Any]) -> ColumnTransform:
        return cls(columns)  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{"kind": ..., "columns": [...], **params}`` (plain python floats and lists)."""
        return {"kind": self.kind, "columns": list(self.columns), **self._params()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnTransform:
        """Rebuild a transform from :meth:`to_dict`'s output; :class:`ConfigError` if malformed.

        Called on the base class it dispatches on ``d["kind"]``; called on a subclass
        it also checks that the kind is that subclass's.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"transform: expected a dict with 'kind' and 'columns'; got {type(d).__name__}")
        kind = d.get("kind")
        if kind not in TRANSFORM_KINDS:
            raise ConfigError(f"transform: unknown kind {kind!r}; expected one of {sorted(TRANSFORM_KINDS)}")
        target = TRANSFORM_KINDS[kind]
        if cls is not ColumnTransform and target is not cls:
            raise ConfigError(f"transform: kind {kind!r} given to {cls.__name__}.from_dict; expected {cls.kind!r}")
        if "columns" not in d:
            raise ConfigError(f"{kind} transform: missing 'columns'")
        missing = [k for k in target._required if k not in d]
        if missing:
            raise ConfigError(f"{kind} transform over {d['columns']!r}: missing {missing}")
        unknown = sorted(set(d) - {"kind", "columns", *target._required, *target._optional})
        if unknown:
            raise ConfigError(
                f"{kind} transform over {d['columns']!r}: unknown key(s) {unknown}; "
                f"expected {['kind', 'columns', *target._required, *target._optional]}"
            )
        cols = d["columns"]
        if not isinstance(cols, list):
            # JSON gives lists; a tuple is accepted from python callers, nothing else.
            if not isinstance(cols, tuple):
                raise ConfigError(f"{kind} transform: 'columns' must be a list of names; got {cols!r}")
            cols = list(cols)
        params = {k: d[k] for k in (*target._required, *target._optional) if k in d}
        return target._from_params(cols, params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}(columns={list(self.columns)!r}{', ' + params if params else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnTransform):
            return NotImplemented
        # compares parameters, not to_dict(), so that unfitted transforms compare too
        return type(self) is type(other) and self.columns == other.columns and self._params() == other._params()

    __hash__ = None  # type: ignore[assignment]  # mutable (ZScore is fitted in place)


class LogTransform(ColumnTransform):
    """``y = log(x + offset)``, inverse ``x = exp(y) - offset`` (per-column offsets, default 0).

    For strictly positive, wide-range columns (energies). ``forward`` raises
    :class:`DataError` naming the column and its minimum when ``x + offset <= 0``,
    since such a value has no logarithm and could not be given back.
    """

    kind = "log"
    _optional = ("offset",)

    def __init__(self, columns: Sequence[str], offset: float | Sequence[float] = 0.0) -> None:
        super().__init__(columns)
        self.offset: list[float] = _per_column(offset, self.columns, self.kind, "offset")

    def forward(self, x: Any) -> Any:
        x = _as_float(x)
        _check_matrix(x, self.columns, "log transform")
        shifted = x + _const(x, self.offset)
        bad = ~(shifted > 0)  # also catches NaN, which has no logarithm either
        if _any(bad):
            xs = _to_numpy(x)
            for j, col in enumerate(self.columns):
                colbad = _to_numpy(bad[:, j]).astype(bool)
                if colbad.any():
                    vals = xs[colbad, j]
                    worst = np.nanmin(vals) if not np.isnan(vals).all() else float("nan")
                    raise DataError(
                        f"log transform: column {col!r} has {int(colbad.sum())} value(s) with x + offset <= 0 "
                        f"(offset {self.offset[j]:g}, min {worst:g}); expected x > {-self.offset[j]:g}. "
                        "Leave this column out of the log columns or give it a larger offset."
                    )
        return _log(shifted)

    def inverse(self, y: Any) -> Any:
        y = _as_float(y)
        _check_matrix(y, self.columns, "log transform (inverse)")
        return _exp(y) - _const(y, self.offset)

    def _params(self) -> dict[str, Any]:
        return {"offset": list(self.offset)}

    @classmethod
    def _from_params(cls, columns: list[str], params: dict[str, Any]) -> LogTransform:
        return cls(columns, params.get("offset", 0.0))


class ClipTransform(ColumnTransform):
    """Per-column bounds ``[lo, hi]`` (``None`` = unbounded on that side).

    ``inverse`` clips generated values into the bounds (a generator may overshoot a
    physical limit such as ``|u_x| <= 1`` or ``E >= 0``). ``forward`` clips too,
    but only values outside by float rounding (relative ``1e-5``, e.g. a float32
    direction component of ``1.0000001``); data further outside raise
    :class:`DataError`, because clipping them would silently change the data.
    """

    kind = "clip"
    _required = ("lo", "hi")
    #: How far outside a bound (relative to max(1, |bound|)) forward still clips silently.
    rounding_tolerance: ClassVar[float] = 1e-5

    def __init__(
        self,
        columns: Sequence[str],
        lo: float | None | Sequence[float | None],
        hi: float | None | Sequence[float | None],
    ) -> None:
        super().__init__(columns)
        self.lo: list[float | None] = _per_column(lo, self.columns, self.kind, "lo", allow_none=True)
        self.hi: list[float | None] = _per_column(hi, self.columns, self.kind, "hi", allow_none=True)
        for col, a, b in zip(self.columns, self.lo, self.hi):
            if a is not None and b is not None and not a <= b:
                raise ConfigError(f"clip transform: column {col!r} has lo={a:g} > hi={b:g}; expected lo <= hi")

    @classmethod
    def from_bounds(cls, bounds: Mapping[str, tuple[float | None, float | None]]) -> ClipTransform:
        """Build from ``{column: (lo, hi)}``."""
        cols = list(bounds)
        for c in cols:
            b = bounds[c]
            if not isinstance(b, Sequence) or isinstance(b, str) or len(b) != 2:
                raise ConfigError(f"clip transform: bounds of column {c!r} must be a (lo, hi) pair; got {b!r}")
        return cls(cols, [bounds[c][0] for c in cols], [bounds[c][1] for c in cols])

    def _bounds(self, x: Any) -> tuple[Any, Any]:
        lo = [-math.inf if v is None else v for v in self.lo]
        hi = [math.inf if v is None else v for v in self.hi]
        return _const(x, lo), _const(x, hi)

    def forward(self, x: Any) -> Any:
        x = _as_float(x)
        _check_matrix(x, self.columns, "clip transform")
        lo, hi = self._bounds(x)
        tol = self.rounding_tolerance
        slack_lo = _const(x, [0.0 if v is None else tol * max(1.0, abs(v)) for v in self.lo])
        slack_hi = _const(x, [0.0 if v is None else tol * max(1.0, abs(v)) for v in self.hi])
        bad = (x < lo - slack_lo) | (x > hi + slack_hi)
        if _any(bad):
            xs = _to_numpy(x)
            for j, col in enumerate(self.columns):
                colbad = _to_numpy(bad[:, j]).astype(bool)
                if colbad.any():
                    v = xs[colbad, j]
                    raise DataError(
                        f"clip transform: column {col!r} has {int(colbad.sum())} value(s) outside "
                        f"[{self.lo[j]}, {self.hi[j]}] (min {v.min():g}, max {v.max():g}); "
                        "expected data inside the bounds (clipping them would change the data)"
                    )
        return _minimum(_maximum(x, lo), hi)

    def inverse(self, y: Any) -> Any:
        y = _as_float(y)
        _check_matrix(y, self.columns, "clip transform (inverse)")
        lo, hi = self._bounds(y)
        return _minimum(_maximum(y, lo), hi)

    def _params(self) -> dict[str, Any]:
        return {"lo": list(self.lo), "hi": list(self.hi)}

    @classmethod
    def _from_params(cls, columns: list[str], params: dict[str, Any]) -> ClipTransform:
        for name in ("lo", "hi"):
            if not isinstance(params[name], list):
                raise ConfigError(f"clip transform over {columns}: {name!r} must be a list; got {params[name]!r}")
        return cls(columns, params["lo"], params["hi"])


class UnitVectorTransform(ColumnTransform):
    """Three columns that form a direction (unit vector).

    ``forward`` renormalises (removing float rounding) and raises
    :class:`DataError` if a row's norm differs from 1 by more than
    :attr:`norm_tolerance`: such a row is not a direction and renormalising it
    would lose its length. A row of three exact zeros is kept as zeros: it is
    GATE's absorbed-event row (``store_absorbed_event``: nothing left the
    phantom, every exit column is 0), which conditional SPECT/PET training data
    holds on purpose. ``inverse`` divides each row by its norm (guarded by
    ``eps``, so a zero row stays zero) so that generated directions are unit vectors.
    """

    kind = "unit_vector"
    norm_tolerance: ClassVar[float] = 1e-3
    eps: ClassVar[float] = 1e-12

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__(columns)
        if len(self.columns) != 3:
            raise ConfigError(
                f"unit_vector transform: got {len(self.columns)} column(s) {list(self.columns)}; "
                "expected exactly 3 (the x, y, z components of a direction)"
            )

    def forward(self, x: Any) -> Any:
        x = _as_float(x)
        _check_matrix(x, self.columns, "unit_vector transform")
        norm = _row_norm(x)
        bad = ~(_abs(norm - 1) <= self.norm_tolerance) & ~(norm == 0)  # NaN rows count as bad too
        if _any(bad):
            nb = _to_numpy(norm)[:, 0]
            rows = np.flatnonzero(_to_numpy(bad)[:, 0].astype(bool))
            raise DataError(
                f"unit_vector transform: columns {list(self.columns)} are not a unit vector in "
                f"{len(rows)} row(s) (first at row {int(rows[0])} with norm {nb[rows[0]]:g}); "
                f"expected |norm - 1| <= {self.norm_tolerance:g} (or an all-zero absorbed-event row)"
            )
        return x / _maximum(norm, _const(x, [self.eps]))

    def inverse(self, y: Any) -> Any:
        y = _as_float(y)
        _check_matrix(y, self.columns, "unit_vector transform (inverse)")
        return y / _maximum(_row_norm(y), _const(y, [self.eps]))


class ZScoreTransform(ColumnTransform):
    """``y = (x - mean) / std`` per column, with statistics fitted in one streaming pass.

    Statistics are accumulated in float64 with the pairwise (Chan et al.) update
    of count, mean and sum of squared deviations, so chunked fitting matches a
    fit on the concatenated data to ~1e-15. A constant column (``std == 0`` or
    ``std < 1e-12 * |mean|``) gets ``std = 1``: it maps to exactly 0 and back to
    exactly the constant, never NaN. ``mean``/``std`` are python float lists.
    """

    kind = "zscore"
    stateful = True
    _required = ("mean", "std")
    #: A column whose std is below this times |mean| is treated as constant.
    constant_rtol: ClassVar[float] = 1e-12

    def __init__(
        self,
        columns: Sequence[str],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(columns)
        if (mean is None) != (std is None):
            raise ConfigError(f"zscore transform over {list(self.columns)}: give both mean and std, or neither")
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        if mean is not None:
            self.mean = _per_column(mean, self.columns, self.kind, "mean")
            std_l = _per_column(std, self.columns, self.kind, "std")
            for col, s in zip(self.columns, std_l):
                if not s > 0:
                    raise ConfigError(f"zscore transform: std of column {col!r} is {s!r}; expected > 0")
            self.std = std_l
        self.reset()

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    # -- streaming fit -------------------------------------------------------
    def reset(self) -> None:
        """Forget accumulated statistics (the fitted mean/std stay until :meth:`finalize`)."""
        k = len(self.columns)
        self._count = 0
        self._mean_acc = np.zeros(k, dtype=np.float64)
        self._m2_acc = np.zeros(k, dtype=np.float64)

    def update(self, x: Any) -> None:
        """Accumulate an ``(n, k)`` chunk (NumPy or tensor) into the running statistics."""
        _check_matrix(x, self.columns, "zscore transform (fit)")
        xd = _to_numpy(x)  # float64 host copy: the sums must not be float32
        nb = xd.shape[0]
        if nb == 0:
            return
        mb = xd.mean(axis=0)
        m2b = ((xd - mb) ** 2).sum(axis=0)
        na = self._count
        n = na + nb
        delta = mb - self._mean_acc
        self._mean_acc = self._mean_acc + delta * (nb / n)
        self._m2_acc = self._m2_acc + m2b + delta * delta * (na * nb / n)
        self._count = n

    def finalize(self) -> None:
        """Turn the accumulated statistics into ``mean``/``std``; DataError if no rows were seen."""
        if self._count == 0:
            raise DataError(f"zscore transform over {list(self.columns)}: fitted on 0 rows; expected data")
        mean = self._mean_acc
        std = np.sqrt(self._m2_acc / self._count)
        constant = (std == 0) | (std < self.constant_rtol * np.abs(mean))
        std = np.where(constant, 1.0, std)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def fit(self, x: Any) -> ZScoreTransform:
        """Fit on one ``(n, k)`` array (convenience for :meth:`reset`/:meth:`update`/:meth:`finalize`)."""
        self.reset()
        self.update(x)
        self.finalize()
        return self

    # -- maths ---------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.mean is None:
            raise ConfigError(
                f"zscore transform over {list(self.columns)} is not fitted; call TablePipeline.fit first"
            )

    def forward(self, x: Any) -> Any:
        self._require_fitted()
        x = _as_float(x)
        _check_matrix(x, self.columns, "zscore transform")
        return (x - _const(x, self.mean)) / _const(x, self.std)  # type: ignore[arg-type]

    def inverse(self, y: Any) -> Any:
        self._require_fitted()
        y = _as_float(y)
        _check_matrix(y, self.columns, "zscore transform (inverse)")
        return y * _const(y, self.std) + _const(y, self.mean)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        self._require_fitted()
        return super().to_dict()

    def _params(self) -> dict[str, Any]:
        if self.mean is None:
            return {}
        return {"mean": list(self.mean), "std": list(self.std)}  # type: ignore[arg-type]

    @classmethod
    def _from_params(cls, columns: list[str], params: dict[str, Any]) -> ZScoreTransform:
        for name in ("mean", "std"):
            if not isinstance(params[name], list):
                raise ConfigError(f"zscore transform over {columns}: {name!r} must be a list; got {params[name]!r}")
        return cls(columns, params["mean"], params["std"])


def transform_from_dict(d: Mapping[str, Any]) -> ColumnTransform:
    """Same as :meth:`ColumnTransform.from_dict` (dispatch on ``d["kind"]``)."""
    return ColumnTransform.from_dict(d)


# --------------------------------------------------------------------------- #
# default column selection
# --------------------------------------------------------------------------- #

_ENERGY_NAMES = ("KineticEnergy", "EventKineticEnergy")


def is_energy_column(name: str) -> bool:
    """Whether ``name`` looks like an energy (KineticEnergy, EventKineticEnergy, ``*Energy``)."""
    return name in _ENERGY_NAMES or name.endswith("Energy")


def direction_triplets(keys: Sequence[str]) -> list[tuple[str, str, str]]:
    """Complete ``<prefix>_X/_Y/_Z`` triplets in ``keys`` whose prefix ends in ``Direction``."""
    present = set(keys)
    out: list[tuple[str, str, str]] = []
    for k in keys:
        if k.endswith("_X"):
            prefix = k[:-2]
            if prefix.endswith("Direction") and f"{prefix}_Y" in present and f"{prefix}_Z" in present:
                out.append((f"{prefix}_X", f"{prefix}_Y", f"{prefix}_Z"))
    return out


# --------------------------------------------------------------------------- #
# pipeline
# --------------------------------------------------------------------------- #


class TablePipeline:
    """Column order plus transform steps: table (physical) <-> ``(n, k)`` matrix (normalised).

    ``forward`` applies ``steps`` in order, ``inverse`` in reverse order. Each step
    acts on its own columns of the matrix (located by name in :attr:`keys`).
    Stateless steps come first, the (at most one) z-score step is last, which is
    what lets :meth:`fit` estimate it in one streaming pass.
    """

    FORMAT: ClassVar[str] = "table_pipeline"
    VERSION: ClassVar[int] = 1

    keys: tuple[str, ...]
    steps: list[ColumnTransform]

    def __init__(self, keys: Sequence[str], steps: Sequence[ColumnTransform]) -> None:
        self.keys = _columns_arg(keys, "pipeline", "keys")
        self.steps = list(steps)
        for i, step in enumerate(self.steps):
            if not isinstance(step, ColumnTransform):
                raise ConfigError(f"pipeline step {i}: expected a ColumnTransform; got {type(step).__name__}")
            missing = [c for c in step.columns if c not in self.keys]
            if missing:
                raise ConfigError(
                    f"pipeline step {i} ({step.kind}) uses column(s) {missing} that are not among the keys "
                    f"{list(self.keys)}"
                )
            if step.stateful and i != len(self.steps) - 1:
                raise ConfigError(
                    f"pipeline step {i} ({step.kind}) is stateful; expected it to be the last step "
                    "(stateless steps first, one zscore last)"
                )
        pos = {k: i for i, k in enumerate(self.keys)}
        # Column indices of each step; None when a step owns all columns in order (no gather needed).
        self._index: list[list[int] | None] = []
        for step in self.steps:
            idx = [pos[c] for c in step.columns]
            self._index.append(None if idx == list(range(len(self.keys))) else idx)

    # -- construction ----------------------------------------------------------
    @classmethod
    def default(
        cls,
        keys: Sequence[str],
        *,
        log_columns: str | Sequence[str] | None = "auto",
        directions: str | Sequence[Sequence[str]] | None = "auto",
        clip: Mapping[str, tuple[float | None, float | None]] | None = None,
    ) -> TablePipeline:
        """The usual pipeline for a phase space (unfitted: call :meth:`fit`).

        Steps, in forward order:

        1. ``clip`` (optional ``{column: (lo, hi)}``, ``None`` for an open side);
        2. per direction triplet, a clip to ``[-1, 1]``;
        3. a log (offset 0) on ``log_columns`` (``"auto"``: energies, see
           :func:`is_energy_column`; only choose columns whose data are all > 0);
        4. per direction triplet (``"auto"``: :func:`direction_triplets`), a
           :class:`UnitVectorTransform`;
        5. a :class:`ZScoreTransform` over all keys.

        The inverse therefore renormalises directions, exponentiates energies, then
        clips, so generated rows always respect the bounds.
        """
        keys_t = _columns_arg(keys, "pipeline", "keys")
        if log_columns == "auto":
            logs = [k for k in keys_t if is_energy_column(k)]
        elif log_columns is None:
            logs = []
        elif isinstance(log_columns, str):
            raise ConfigError(f"log_columns must be 'auto', None or a list of column names; got {log_columns!r}")
        else:
            logs = list(log_columns)
        if directions == "auto":
            dirs = direction_triplets(keys_t)
        elif directions is None:
            dirs = []
        elif isinstance(directions, str):
            raise ConfigError(f"directions must be 'auto', None or a list of column triplets; got {directions!r}")
        else:
            dirs = [tuple(t) for t in directions]  # type: ignore[misc]
        steps: list[ColumnTransform] = []
        if clip:
            steps.append(ClipTransform.from_bounds(clip))
        for trip in dirs:
            steps.append(ClipTransform(list(trip), -1.0, 1.0))
        if logs:
            steps.append(LogTransform(logs, 0.0))
        for trip in dirs:
            steps.append(UnitVectorTransform(list(trip)))
        steps.append(ZScoreTransform(keys_t))
        return cls(keys_t, steps)

    # -- properties --------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """Width of the matrix, ``len(keys)``."""
        return len(self.keys)

    @property
    def fitted(self) -> bool:
        """True when every stateful step has its statistics."""
        return all(getattr(s, "fitted", True) for s in self.steps)

    # -- matrix <-> table ----------------------------------------------------------
    def _stack(self, table: Mapping[str, Any], *, source: str = "table") -> np.ndarray:
        """Table -> ``(n, k)`` float32 physical matrix; DataError on missing keys, ragged or non-finite columns."""
        if not isinstance(table, Mapping):
            raise DataError(f"{source}: expected a dict of columns; got {type(table).__name__}")
        missing = [k for k in self.keys if k not in table]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {missing}; the pipeline needs {list(self.keys)}, "
                f"available: {sorted(table)}"
            )
        cols = [np.asarray(table[k]) for k in self.keys]
        for k, c in zip(self.keys, cols):
            if c.ndim != 1:
                raise DataError(f"{source}: column {k!r} has shape {c.shape}; expected a 1-D column")
        n = len(cols[0])
        for k, c in zip(self.keys, cols):
            if len(c) != n:
                raise DataError(f"{source}: column {k!r} has {len(c)} rows; expected {n} like {self.keys[0]!r}")
        out = np.empty((n, len(self.keys)), dtype=np.float32)
        for j, (k, c) in enumerate(zip(self.keys, cols)):
            if not (np.issubdtype(c.dtype, np.number) or c.dtype == np.bool_):
                raise DataError(f"{source}: column {k!r} has dtype {c.dtype}; expected numbers")
            out[:, j] = c
            bad = ~np.isfinite(out[:, j])
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{source}: column {k!r} holds {int(bad.sum())} NaN/Inf value(s) in float32 "
                    f"(first at row {first}: {c[first]!r}); expected finite numbers"
                )
        return out

    def _apply(self, step_no: int, x: Any, *, inverse: bool) -> Any:
        step = self.steps[step_no]
        idx = self._index[step_no]
        if idx is None:
            return step.inverse(x) if inverse else step.forward(x)
        sub = x[:, idx]
        res = step.inverse(sub) if inverse else step.forward(sub)
        x[:, idx] = res  # x is the pipeline's own working copy
        return x

    def forward_matrix(self, x: Any) -> Any:
        """Physical ``(n, len(keys))`` array/tensor -> normalised, same type/dtype/device."""
        x = _as_float(x)
        _check_matrix(x, self.keys, "pipeline")
        x = _copy(x)
        for i in range(len(self.steps)):
            x = self._apply(i, x, inverse=False)
        return x

    def inverse_matrix(self, y: Any) -> Any:
        """Normalised ``(n, len(keys))`` array/tensor -> physical, same type/dtype/device."""
        y = _as_float(y)
        _check_matrix(y, self.keys, "pipeline (inverse)")
        y = _copy(y)
        for i in reversed(range(len(self.steps))):
            y = self._apply(i, y, inverse=True)
        return y

    def forward(self, table: Mapping[str, Any]) -> np.ndarray:
        """Table of 1-D columns (physical units) -> ``(n, len(keys))`` float32 normalised matrix."""
        x = self._stack(table)
        for i in range(len(self.steps)):
            x = self._apply(i, x, inverse=False)
        return x

    def inverse(self, y: Any) -> dict[str, Any]:
        """``(n, len(keys))`` normalised matrix -> table ``{key: (n,) column}`` in physical units.

        Columns are NumPy arrays or tensors like ``y`` (same dtype/device), contiguous.
        """
        m = self.inverse_matrix(y)
        if _torch_of(m) is not None:
            return {k: m[:, j].contiguous() for j, k in enumerate(self.keys)}
        return {k: np.ascontiguousarray(m[:, j]) for j, k in enumerate(self.keys)}

    # -- fitting -----------------------------------------------------------------
    def fit(self, chunks: Iterable[Mapping[str, Any]]) -> TablePipeline:
        """Estimate the z-score statistics in one streaming pass over ``chunks`` (tables).

        Each chunk goes through the stateless steps exactly as in :meth:`forward`
        (float32), so a constant column maps to exactly 0. Raises DataError for a
        missing column, NaN/Inf (naming the column), data a step cannot invert, or
        no rows at all. Returns ``self``.
        """
        if isinstance(chunks, Mapping):
            chunks = [chunks]  # a single table is a single chunk
        last = self.steps[-1] if self.steps else None
        zs = last if isinstance(last, ZScoreTransform) else None
        if zs is not None:
            zs.reset()
        n_rows = 0
        for c, chunk in enumerate(chunks):
            x = self._stack(chunk, source=f"chunk {c}")
            n_rows += x.shape[0]
            for i in range(len(self.steps) - (1 if zs is not None else 0)):
                x = self._apply(i, x, inverse=False)
            if zs is not None:
                idx = self._index[-1]
                zs.update(x if idx is None else x[:, idx])
        if n_rows == 0:
            raise DataError(f"pipeline fit: the chunks held 0 rows; expected data for columns {list(self.keys)}")
        if zs is not None:
            zs.finalize()
        return self

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{"kind": "table_pipeline", "version": 1, "keys": [...], "steps": [...]}``."""
        return {
            "kind": self.FORMAT,
            "version": self.VERSION,
            "keys": list(self.keys),
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TablePipeline:
        """Rebuild from :meth:`to_dict`'s output; :class:`ConfigError` if malformed or of another version."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"pipeline: expected a dict; got {type(d).__name__}")
        if d.get("kind") != cls.FORMAT:
            raise ConfigError(f"pipeline: 'kind' is {d.get('kind')!r}; expected {cls.FORMAT!r}")
        if d.get("version") != cls.VERSION:
            raise ConfigError(f"pipeline: version {d.get('version')!r} is not supported; expected {cls.VERSION}")
        unknown = sorted(set(d) - {"kind", "version", "keys", "steps"})
        if unknown:
            raise ConfigError(f"pipeline: unknown key(s) {unknown}; expected kind, version, keys, steps")
        for name in ("keys", "steps"):
            if not isinstance(d.get(name), (list, tuple)):
                raise ConfigError(f"pipeline: {name!r} must be a list; got {d.get(name)!r}")
        steps = [ColumnTransform.from_dict(s) for s in d["steps"]]
        return cls(list(d["keys"]), steps)

    def __repr__(self) -> str:
        steps = ", ".join(f"{s.kind}{list(s.columns)}" for s in self.steps)
        return f"TablePipeline(keys={list(self.keys)!r}, steps=[{steps}])"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TablePipeline):
            return NotImplemented
        return self.keys == other.keys and self.steps == other.steps

    __hash__ = None  # type: ignore[assignment]
