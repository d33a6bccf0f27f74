"""Spin-echo MR signal of brain tissues: the contrast model behind the built-in T1w/T2w volumes.

The signal equation
-------------------
:func:`spin_echo` is the textbook steady-state spin-echo magnitude::

    S = PD * (1 - exp(-TR / T1)) * exp(-TE / T2)

with these simplifications (all standard for a first-order contrast model):

* ideal 90 and 180 degree pulses (no flip-angle error, no B1 inhomogeneity: a smooth bias
  field is applied separately by the data generator);
* TE << TR, so the longitudinal recovery during TE and the refocusing pulse's effect on it are
  ignored (the exact term is ``1 - 2 exp(-(TR - TE/2)/T1) + exp(-TR/T1)``);
* mono-exponential relaxation; no T2* (the spin echo refocuses static dephasing), no
  magnetisation transfer, diffusion, flow or fat shift;
* the receiver gain is 1: the result is in units of the proton density (PD of pure water = 1).

Partial volumes (:func:`tissue_signal`) mix the tissues' magnetisation linearly: a voxel
holding fractions ``f_t`` of the tissues gives ``sum_t f_t S_t`` (exact for a spin echo when
the compartments do not exchange water on the time scale of TR, i.e. slow exchange). The
remainder ``1 - sum_t f_t`` (air, bone outside a skull-stripped brain) gives no signal.

Typical sequences (:data:`SEQUENCES`)
-------------------------------------
Clinical conventional spin-echo brain protocols, as given in MRI textbooks (e.g. McRobbie,
Moore, Graves & Prince, *MRI from Picture to Proton*, the T1w / PDw / T2w SE ranges
TR 400-700 / TE 10-20 ms, TR 2000-5000 / TE 10-20 ms, TR 2000-5000 / TE 80-120 ms):

* ``"t1w"``: TR 500 ms, TE 15 ms;
* ``"t2w"``: TR 4000 ms, TE 100 ms;
* ``"pdw"``: TR 4000 ms, TE 15 ms.

Tissue tables (:data:`TISSUE_TABLES`)
-------------------------------------
T1, T2 in ms and PD relative to pure water. Values marked *recalled* are quoted from memory
of the cited papers and were not re-checked against them here.

* ``"3t"`` (default):

  - GM: T1 1331 ms, T2 110 ms; WM: T1 832 ms, T2 79.6 ms -- Wansapura, Holland, Dunn & Ball,
    "NMR relaxation times in the human brain at 3.0 tesla", JMRI 9:531-538 (1999), frontal
    grey and white matter, in vivo (*recalled*). Stanisz et al., MRM 54:507-512 (2005) give
    longer T1 at 3 T (GM 1820, WM 1084 ms, *recalled*); the spread between methods is the
    known magnetisation-transfer bias of T1 mapping and does not change the contrast order.
  - CSF: T1 4300 ms, T2 2200 ms -- CSF relaxes like pure water at body temperature; the
    commonly tabulated ranges are T1 4200-4500 ms and T2 2100-2300 ms (e.g. the table of
    relaxation constants of human tissues in Wikipedia's "Relaxation (NMR)"); values in the
    middle of those ranges.
  - PD (water content): GM 0.80, WM 0.70, CSF 1.00 -- quantitative water-content mapping
    finds about 0.69-0.71 in white and 0.80-0.83 in grey matter (e.g. Neeb, Zilles & Shah,
    NeuroImage 31:1156-1168 (2006), *recalled*).

* ``"1.5t"``: the BrainWeb simulator's tissue parameters (Kwan, Evans & Pike, IEEE TMI
  18:1085-1097 (1999), *recalled*): CSF T1 2569 / T2 329 ms / PD 1.00, GM 833 / 83 / 0.86,
  WM 500 / 70 / 0.77.

With the default sequences both tables give the familiar orders: T1w WM > GM > CSF, T2w
CSF > GM > WM (tested).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError

__all__ = [
    "Tissue",
    "SpinEchoSequence",
    "SEQUENCES",
    "TISSUES_3T",
    "TISSUES_1_5T",
    "TISSUE_TABLES",
    "spin_echo",
    "spin_echo_log_derivative",
    "get_sequence",
    "get_tissue_table",
    "tissue_signal",
]


@dataclass(frozen=True)
class Tissue:
    """MR properties of one tissue: relaxation times in ms and proton density relative to water."""

    t1_ms: float
    t2_ms: float
    pd: float

    def __post_init__(self) -> None:
        for name in ("t1_ms", "t2_ms", "pd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"Tissue {name}={value!r}: expected a finite number > 0")

    def to_dict(self) -> dict[str, float]:
        return {"t1_ms": float(self.t1_ms), "t2_ms": float(self.t2_ms), "pd": float(self.pd)}


@dataclass(frozen=True)
class SpinEchoSequence:
    """A spin-echo acquisition: repetition time TR and echo time TE in ms (0 <= TE < TR)."""

    name: str
    tr_ms: float
    te_ms: float

    def __post_init__(self) -> None:
        _check_timing(self.tr_ms, self.te_ms, f"sequence {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tr_ms": float(self.tr_ms), "te_ms": float(self.te_ms)}


def _check_timing(tr: Any, te: Any, what: str) -> None:
    if isinstance(tr, bool) or not isinstance(tr, numbers.Real) or math.isnan(tr) or tr <= 0:
        raise ConfigError(f"{what}: tr_ms={tr!r}, expected a repetition time > 0 ms (inf allowed: full recovery)")
    if isinstance(te, bool) or not isinstance(te, numbers.Real) or not math.isfinite(te) or te < 0:
        raise ConfigError(f"{what}: te_ms={te!r}, expected a finite echo time >= 0 ms")
    if te >= tr:
        raise ConfigError(f"{what}: te_ms={te} >= tr_ms={tr}; the echo must come before the next excitation")


#: The default sequences by name (see the module docstring for the source).
SEQUENCES: dict[str, SpinEchoSequence] = {
    "t1w": SpinEchoSequence("t1w", 500.0, 15.0),
    "t2w": SpinEchoSequence("t2w", 4000.0, 100.0),
    "pdw": SpinEchoSequence("pdw", 4000.0, 15.0),
}

#: Brain tissues at 3 T (Wansapura 1999 for GM/WM relaxation; see the module docstring).
TISSUES_3T: dict[str, Tissue] = {
    "gm": Tissue(1331.0, 110.0, 0.80),
    "wm": Tissue(832.0, 79.6, 0.70),
    "csf": Tissue(4300.0, 2200.0, 1.00),
}
#: Brain tissues at 1.5 T (the BrainWeb simulator's values).
TISSUES_1_5T: dict[str, Tissue] = {
    "gm": Tissue(833.0, 83.0, 0.86),
    "wm": Tissue(500.0, 70.0, 0.77),
    "csf": Tissue(2569.0, 329.0, 1.00),
}
#: Tissue tables by name.
TISSUE_TABLES: dict[str, dict[str, Tissue]] = {"3t": TISSUES_3T, "1.5t": TISSUES_1_5T}


def _positive_array(name: str, value: Any, *, allow_zero: bool = False, allow_inf: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    bad = np.isnan(arr) | (arr < 0 if allow_zero else arr <= 0)
    if not allow_inf:
        bad |= np.isinf(arr)
    if bad.any():
        first = arr.ravel()[np.flatnonzero(bad.ravel())[0]]
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"spin_echo: {name} holds {first!r}; expected {'' if allow_inf else 'finite '}values {bound}")
    return arr


def spin_echo(pd: Any, t1_ms: Any, t2_ms: Any, tr_ms: Any, te_ms: Any) -> np.ndarray:
    """Spin-echo magnitude ``PD (1 - exp(-TR/T1)) exp(-TE/T2)`` (simplifications: module docstring).

    Args:
        pd: proton density (relative to water, >= 0), scalar or array.
        t1_ms, t2_ms: relaxation times (ms, > 0), scalars or arrays.
        tr_ms: repetition time (ms, > 0; ``inf`` = full longitudinal recovery).
        te_ms: echo time (ms, >= 0, finite).

    Returns:
        the signal, float64, the arguments' broadcast shape (0-d for scalars), in PD units.

    Raises:
        ConfigError: a NaN, negative or zero time, a negative PD, or TE >= TR anywhere.
    """
    pd_a = _positive_array("pd", pd, allow_zero=True)
    t1 = _positive_array("t1_ms", t1_ms)
    t2 = _positive_array("t2_ms", t2_ms)
    tr = _positive_array("tr_ms", tr_ms, allow_inf=True)
    te = _positive_array("te_ms", te_ms, allow_zero=True)
    if np.any(te >= tr):
        raise ConfigError("spin_echo: te_ms >= tr_ms; the echo must come before the next excitation")
    # -expm1(-x) = 1 - exp(-x), accurate also for TR << T1
    return pd_a * -np.expm1(-tr / t1) * np.exp(-te / t2)


def spin_echo_log_derivative(t1_ms: Any, t2_ms: Any, tr_ms: float, te_ms: float) -> np.ndarray:
    """``d ln S / d ln r`` at r = 1 when both relaxation rates are scaled by r (T1 -> T1/r, T2 -> T2/r).

    ``= x e^{-x} / (1 - e^{-x}) - TE/T2`` with ``x = TR/T1``: how strongly a sequence's signal
    follows a common change of the relaxation rates (positive for T1w, negative for T2w).
    """
    t1 = _positive_array("t1_ms", t1_ms)
    t2 = _positive_array("t2_ms", t2_ms)
    _check_timing(tr_ms, te_ms, "spin_echo_log_derivative")
    x = tr_ms / t1
    # x e^{-x} / (1 - e^{-x}) = x / expm1(x); it is 0 to double precision beyond x ~ 700 (and at TR = inf)
    recovery = np.where(x > 700.0, 0.0, x / np.expm1(np.minimum(x, 700.0)))
    return recovery - te_ms / t2


def get_sequence(sequence: str | SpinEchoSequence) -> SpinEchoSequence:
    """A :class:`SpinEchoSequence` from a name of :data:`SEQUENCES` or itself."""
    if isinstance(sequence, SpinEchoSequence):
        return sequence
    if isinstance(sequence, str) and sequence.lower() in SEQUENCES:
        return SEQUENCES[sequence.lower()]
    raise ConfigError(f"sequence={sequence!r}: expected one of {sorted(SEQUENCES)} or a SpinEchoSequence(name, tr_ms, te_ms)")


def get_tissue_table(tissues: str | Mapping[str, Tissue]) -> dict[str, Tissue]:
    """A tissue table from a name of :data:`TISSUE_TABLES` or a mapping name -> :class:`Tissue`."""
    if isinstance(tissues, str):
        key = tissues.lower().replace(" ", "")
        if key in TISSUE_TABLES:
            return dict(TISSUE_TABLES[key])
        raise ConfigError(f"tissues={tissues!r}: expected one of {sorted(TISSUE_TABLES)} or a mapping name -> Tissue")
    if not isinstance(tissues, Mapping) or not tissues:
        raise ConfigError(f"tissues={tissues!r}: expected one of {sorted(TISSUE_TABLES)} or a non-empty mapping name -> Tissue")
    bad = [name for name, t in tissues.items() if not isinstance(t, Tissue)]
    if bad:
        raise ConfigError(f"tissues: entries {bad} are not Tissue(t1_ms, t2_ms, pd)")
    return dict(tissues)


def tissue_signal(
    fractions: Mapping[str, Any],
    sequence: str | SpinEchoSequence,
    tissues: str | Mapping[str, Tissue] = "3t",
    *,
    relaxation_scale: Any = None,
) -> np.ndarray:
    """Partial-volume spin-echo signal ``sum_t f_t S_t`` (linear mixing of the tissues' magnetisation).

    Args:
        fractions: tissue name -> (P,) (or any common shape) volume fraction in [0, 1] of that
            tissue at each point; names must be in the table. Missing tissues count as 0; the
            remainder to 1 gives no signal.
        sequence: a name of :data:`SEQUENCES` or a :class:`SpinEchoSequence`.
        tissues: a name of :data:`TISSUE_TABLES` or a mapping name -> :class:`Tissue`.
        relaxation_scale: optional (P,) factor r > 0 on both relaxation *rates* at each point
            (T1 -> T1 / r, T2 -> T2 / r, every tissue): local tissue variation such as
            iron or myelin content, which shortens T1 and T2 together.

    Returns:
        (P,) float64 signal in PD units (pure water with full recovery and TE = 0 gives 1).

    Raises:
        ConfigError: an unknown tissue name or a bad sequence/table.
        DataError: fractions that are NaN, negative or of mismatching shapes; a bad relaxation_scale.
    """
    seq = get_sequence(sequence)
    table = get_tissue_table(tissues)
    if not isinstance(fractions, Mapping) or not fractions:
        raise DataError("tissue_signal: fractions must be a non-empty mapping tissue name -> array")
    unknown = [name for name in fractions if name not in table]
    if unknown:
        raise ConfigError(f"tissue_signal: unknown tissue(s) {unknown}; the table has {sorted(table)}")
    arrays = {name: np.asarray(f, dtype=np.float64) for name, f in fractions.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise DataError(f"tissue_signal: fractions of different shapes {sorted(shapes)}; expected one shape (P,)")
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise DataError(f"tissue_signal: fraction {name!r} holds NaN, Inf or negative values; expected fractions in [0, 1]")
    shape = shapes.pop()
    scale: np.ndarray | float = 1.0
    if relaxation_scale is not None:
        scale = np.asarray(relaxation_scale, dtype=np.float64)
        if scale.shape not in (shape, ()):
            raise DataError(f"tissue_signal: relaxation_scale of shape {scale.shape}; expected {shape} like the fractions")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise DataError("tissue_signal: relaxation_scale holds NaN, Inf or values <= 0; expected factors > 0")
    out = np.zeros(shape, dtype=np.float64)
    for name, f in arrays.items():
        t = table[name]
        out += f * spin_echo(t.pd, t.t1_ms / scale, t.t2_ms / scale, seq.tr_ms, seq.te_ms)
    return out
