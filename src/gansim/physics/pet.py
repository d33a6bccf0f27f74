"""PET annihilation photons: exit-photon rows -> pairs -> TLOR parametrisation, and back.

Tables are ``dict[str, np.ndarray]`` (as in :mod:`gansim.io.phsp`), keys as gaga-phsp's
PET helpers name them, lengths mm, energies MeV, times ns.

* :func:`hits_to_pairs` groups the exit photons of a phase space by ``EventID``:
  2 photons form a pair; 1 photon with E = 0 is an absorbed event (the zero row GATE's
  ``store_absorbed_event`` writes, and :mod:`gansim.physics.mc` with ``absorbed_rows``);
  1 photon with E > 0 is a single (E2 = 0); events with more than 2 photons are counted
  and left out of the table (they are not annihilation pairs).
* :func:`pairs_to_tlor`: the "time-weighted LOR": with A, B the two exit points and tA, tB
  their times, ``V = (B - A) / |AB|``, ``C = A + tA / (tA + tB) * (B - A)``, ``t1 = tA + tB``.
* :func:`tlor_to_pairs` inverts it on a sphere of given radius: A and B are where the line
  (C, V) meets the sphere, ``tA = |CA| t1 / |AB|`` and ``tB = |CB| t1 / |AB|``. Rows where the
  line misses the sphere, C is not strictly between A and B, or E1, E2, t1 are not > 0 are
  kept and flagged in the returned mask (gaga drops them silently).
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np

from gansim.errors import ConfigError, DataError

__all__ = ["PAIR_KEYS", "TLOR_KEYS", "hits_to_pairs", "pairs_to_tlor", "tlor_to_pairs"]

log = logging.getLogger(__name__)

Table = dict[str, np.ndarray]

#: per-pair keys written by :func:`hits_to_pairs` and :func:`tlor_to_pairs`
PAIR_KEYS: tuple[str, ...] = ("E1", "E2", "X1", "Y1", "Z1", "X2", "Y2", "Z2", "dX1", "dY1", "dZ1", "dX2", "dY2", "dZ2", "t1", "t2")
#: TLOR keys written by :func:`pairs_to_tlor`
TLOR_KEYS: tuple[str, ...] = ("Cx", "Cy", "Cz", "Vx", "Vy", "Vz", "dAx", "dAy", "dAz", "dBx", "dBy", "dBz", "t1", "E1", "E2")

# exit-photon columns renamed in the pairs table (gaga's names for the decay point)
_EVENT_RENAMES = {"EventPosition_X": "eX", "EventPosition_Y": "eY", "EventPosition_Z": "eZ"}


def _length(table: Mapping[str, np.ndarray], what: str) -> int:
    lengths = {k: len(np.asarray(v)) for k, v in table.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{what}: columns have different lengths {lengths}")
    return next(iter(lengths.values()), 0)


def _require(table: Mapping[str, np.ndarray], keys: tuple[str, ...] | list[str], what: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise DataError(f"{what}: missing columns {missing}; it has {sorted(table)}")


def _float_dtype(table: Mapping[str, np.ndarray], keys: tuple[str, ...] | list[str]) -> np.dtype:
    """float32 when every input column is float32 (gaga's npy files), float64 otherwise."""
    dts = [np.asarray(table[k]).dtype for k in keys]
    return np.dtype(np.float32) if all(d == np.float32 for d in dts) else np.dtype(np.float64)


def _col(table: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    return np.asarray(table[key], dtype=np.float64)


def _vec(table: Mapping[str, np.ndarray], keys: tuple[str, str, str]) -> np.ndarray:
    return np.stack([_col(table, k) for k in keys], axis=1)


# ---------------------------------------------------------------------------------------
def hits_to_pairs(
    table: Mapping[str, np.ndarray],
    *,
    time_key: str = "TimeFromBeginOfEvent",
    energy_key: str = "KineticEnergy",
    position_keys: tuple[str, str, str] = ("PrePosition_X", "PrePosition_Y", "PrePosition_Z"),
    direction_keys: tuple[str, str, str] = ("PreDirection_X", "PreDirection_Y", "PreDirection_Z"),
    event_key: str = "EventID",
) -> tuple[Table, dict[str, int]]:
    """Group exit photons by event into pairs.

    Args:
        table: one row per exit photon (GATE phase-space keys), plus absorbed-event rows
            (E = 0). Rows of one event need not be adjacent.
        time_key: the photon's time since the decay (ns), so that t1 + t2 is the flight time
            (``GlobalTime`` would add the decay time to both).

    Returns:
        the pairs table, one row per event with 1 or 2 photons, sorted by event ID, and the
        counts ``events``, ``pairs``, ``singles``, ``absorbed``, ``multiple`` (events with more
        than 2 photons, not in the table) and ``multiple_photons`` (their rows).

        Keys: ``E1 E2 X1 Y1 Z1 X2 Y2 Z2 dX1 dY1 dZ1 dX2 dY2 dZ2 t1 t2``; photon 1 is the
        event's first row. A single has E2 = 0, X2..Z2 = 0, t2 = 0 and d2 = -d1; an absorbed event
        has every per-photon key 0 except the directions, which are ``EventDirection``
        (d1) and its opposite (d2) when the table has it, else 0. ``Weight`` becomes ``w1``
        and ``w2`` (0 for a missing photon). Event columns are carried:
        ``EventPosition_X/Y/Z`` as ``eX eY eZ`` and every other ``Event*`` column (``EventID``
        included) under its own name.

    Raises:
        DataError: missing columns, non-integer event IDs, negative energies, or an event with
            2 or more rows one of which has E = 0 (an absorbed-event row next to exit photons).
    """
    what = "hits_to_pairs input"
    keys = [event_key, energy_key, *position_keys, *direction_keys, time_key]
    _require(table, keys, what)
    n = _length(table, what)
    dtype = _float_dtype(table, [energy_key, *position_keys, *direction_keys, time_key])

    eid_raw = np.asarray(table[event_key])
    if not np.issubdtype(eid_raw.dtype, np.integer):
        if not np.all(np.isfinite(eid_raw)) or np.any(eid_raw != np.round(eid_raw)):
            raise DataError(f"{what}: {event_key} holds non-integer values; expected integer event IDs")
    eid = eid_raw.astype(np.int64)
    energy = _col(table, energy_key)
    if np.any(~(energy >= 0)):
        raise DataError(f"{what}: {int(np.sum(~(energy >= 0)))} rows have a negative or NaN {energy_key}")

    order = np.argsort(eid, kind="stable")  # rows of an event in their original order
    sorted_eid = eid[order]
    _, starts, counts = np.unique(sorted_eid, return_index=True, return_counts=True)
    first = order[starts]
    is_pair = counts == 2
    is_one = counts == 1
    second = np.where(is_pair, order[np.minimum(starts + 1, n - 1)], first) if n else first
    e1 = energy[first]
    e2 = np.where(is_pair, energy[second], 0.0)
    if np.any(is_pair & ((e1 == 0) | (e2 == 0))):
        bad = int(eid[first[is_pair & ((e1 == 0) | (e2 == 0))][0]])
        raise DataError(f"{what}: event {bad} has 2 rows and one has {energy_key} = 0; an absorbed-event row must be the event's only row")
    many = counts > 2
    keep = is_pair | is_one
    absorbed = is_one & (e1 == 0)
    single = is_one & (e1 > 0)

    f, s = first[keep], second[keep]
    pair_k, absorbed_k = is_pair[keep], absorbed[keep]
    present1 = ~absorbed_k  # photon 1 exists
    out: Table = {}
    out["E1"] = e1[keep]
    out["E2"] = e2[keep]
    p = _vec(table, position_keys)
    d = _vec(table, direction_keys)
    t = _col(table, time_key)
    p1 = np.where(present1[:, None], p[f], 0.0)
    p2 = np.where(pair_k[:, None], p[s], 0.0)
    d1 = np.where(present1[:, None], d[f], 0.0)
    d2 = np.where(pair_k[:, None], d[s], -d1)
    if "EventDirection_X" in table and "EventDirection_Y" in table and "EventDirection_Z" in table:
        d0 = _vec(table, ("EventDirection_X", "EventDirection_Y", "EventDirection_Z"))[f]
        d1 = np.where(absorbed_k[:, None], d0, d1)
        d2 = np.where(absorbed_k[:, None], -d0, d2)
    for a, key in enumerate(("X", "Y", "Z")):
        out[f"{key}1"] = p1[:, a]
    for a, key in enumerate(("X", "Y", "Z")):
        out[f"{key}2"] = p2[:, a]
    for a, key in enumerate(("X", "Y", "Z")):
        out[f"d{key}1"] = d1[:, a]
    for a, key in enumerate(("X", "Y", "Z")):
        out[f"d{key}2"] = d2[:, a]
    out["t1"] = np.where(present1, t[f], 0.0)
    out["t2"] = np.where(pair_k, t[s], 0.0)
    out = {k: v.astype(dtype) for k, v in out.items()}
    if "Weight" in table:
        w = np.asarray(table["Weight"])
        out["w1"] = np.where(present1, w[f], 0).astype(w.dtype)
        out["w2"] = np.where(pair_k, w[s], 0).astype(w.dtype)
    for key in table:
        if key.startswith("Event"):
            out[_EVENT_RENAMES.get(key, key)] = np.asarray(table[key])[f]

    result = {
        "events": int(len(counts)),
        "pairs": int(is_pair.sum()),
        "singles": int(single.sum()),
        "absorbed": int(absorbed.sum()),
        "multiple": int(many.sum()),
        "multiple_photons": int(counts[many].sum()),
    }
    if result["multiple"]:
        log.info("hits_to_pairs: %d events with more than 2 exit photons (%d rows) are not pairs and were counted, not paired", result["multiple"], result["multiple_photons"])
    return out, result


# ---------------------------------------------------------------------------------------
_PAIR_INPUT = ("X1", "Y1", "Z1", "X2", "Y2", "Z2", "dX1", "dY1", "dZ1", "dX2", "dY2", "dZ2", "t1", "t2", "E1", "E2")
# keys consumed by pairs_to_tlor (everything else is carried); w1 is written back as w1
_PAIR_DONE = frozenset(_PAIR_INPUT) | {"w1"}


def pairs_to_tlor(pairs: Mapping[str, np.ndarray]) -> Table:
    """TLOR parametrisation of pairs (gaga-phsp's ``from_pairs_to_tlor``).

    ``V = (B - A) / |AB|``, ``C = A + tA / (tA + tB) * (B - A)``, ``t1 = tA + tB`` with
    A = (X1, Y1, Z1), B = (X2, Y2, Z2), tA = t1, tB = t2 of the pairs table. Directions and
    energies are copied (``dAx.. = dX1..``, ``dBx.. = dX2..``). The parametrisation is defined for
    pairs (A != B, tA + tB > 0); for the other rows (singles, absorbed events) V = 0 and C = A
    where |AB| = 0, and C = A where tA + tB = 0.

    Returns:
        ``Cx Cy Cz Vx Vy Vz dAx dAy dAz dBx dBy dBz t1 E1 E2``, ``w1`` when the pairs have it,
        then every other column of ``pairs`` unchanged (``w2``, ``eX``, ``EventID``...).
        Float32 when all inputs are float32, else float64 (computed in float64).
    """
    what = "pairs_to_tlor input"
    _require(pairs, _PAIR_INPUT, what)
    _length(pairs, what)
    dtype = _float_dtype(pairs, _PAIR_INPUT)
    a = _vec(pairs, ("X1", "Y1", "Z1"))
    b = _vec(pairs, ("X2", "Y2", "Z2"))
    ta, tb = _col(pairs, "t1"), _col(pairs, "t2")
    ab = b - a
    length = np.linalg.norm(ab, axis=1)
    tt = ta + tb
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(tt != 0, ta / tt, 0.0)
        v = np.where(length[:, None] > 0, ab / length[:, None], 0.0)
    c = a + frac[:, None] * ab
    out: Table = {}
    for i, k in enumerate(("Cx", "Cy", "Cz")):
        out[k] = c[:, i]
    for i, k in enumerate(("Vx", "Vy", "Vz")):
        out[k] = v[:, i]
    for src, dst in zip(("dX1", "dY1", "dZ1", "dX2", "dY2", "dZ2"), ("dAx", "dAy", "dAz", "dBx", "dBy", "dBz")):
        out[dst] = _col(pairs, src)
    out["t1"] = tt
    out["E1"] = _col(pairs, "E1")
    out["E2"] = _col(pairs, "E2")
    out = {k: x.astype(dtype) for k, x in out.items()}
    if "w1" in pairs:
        out["w1"] = np.asarray(pairs["w1"])
    for key in pairs:
        if key not in _PAIR_DONE:
            out[key] = np.asarray(pairs[key])
    return out


# ---------------------------------------------------------------------------------------
_TLOR_INPUT = ("Cx", "Cy", "Cz", "Vx", "Vy", "Vz", "dAx", "dAy", "dAz", "dBx", "dBy", "dBz", "t1", "E1", "E2")


def tlor_to_pairs(tlor: Mapping[str, np.ndarray], radius: float, *, counts: dict[str, int] | None = None) -> tuple[Table, np.ndarray]:
    """Pairs on a sphere of ``radius`` (mm, about the origin) from TLOR rows (the inverse of :func:`pairs_to_tlor`).

    A and B are where the line through C along V (normalised here) meets the sphere, A behind
    C and B ahead; ``tA = |CA| t1 / |AB|``, ``tB = |CB| t1 / |AB|``. Directions dA, dB are
    normalised. Every input row gives an output row, in order; ``valid`` is False where

    * a value is NaN or infinite, or V or dA or dB is the zero vector (``"non_finite"``,
      ``"zero_vector"``);
    * the line misses or only touches the sphere (``"miss"``), positions and times are NaN there;
    * C is not strictly inside the sphere, so tA or tB would be <= 0, or t1 <= 0 (``"time"``);
    * E1 <= 0 or E2 <= 0 (``"energy"``).

    Args:
        tlor: ``Cx Cy Cz Vx Vy Vz dAx dAy dAz dBx dBy dBz t1 E1 E2`` (+ ``w1`` and any other
            columns, carried).
        radius: sphere radius, mm.
        counts: when given, filled with the number of rows, of valid rows and of rows failing
            each check (a row can fail several).

    Returns:
        the pairs table (``E1 E2 X1 Y1 Z1 X2 Y2 Z2 dX1 dY1 dZ1 dX2 dY2 dZ2 t1 t2`` + carried
        columns; float32 when the TLOR columns are all float32) and the (N,) bool ``valid`` mask.
    """
    what = "tlor_to_pairs input"
    r = float(radius)
    if not np.isfinite(r) or r <= 0:
        raise ConfigError(f"tlor_to_pairs radius {radius!r}: expected a finite radius > 0 mm")
    _require(tlor, _TLOR_INPUT, what)
    n = _length(tlor, what)
    dtype = _float_dtype(tlor, _TLOR_INPUT)
    c = _vec(tlor, ("Cx", "Cy", "Cz"))
    v = _vec(tlor, ("Vx", "Vy", "Vz"))
    da = _vec(tlor, ("dAx", "dAy", "dAz"))
    db = _vec(tlor, ("dBx", "dBy", "dBz"))
    tt, e1, e2 = _col(tlor, "t1"), _col(tlor, "E1"), _col(tlor, "E2")

    finite = np.all(np.isfinite(np.concatenate([c, v, da, db, tt[:, None], e1[:, None], e2[:, None]], axis=1)), axis=1)
    nv, na, nb = (np.linalg.norm(x, axis=1) for x in (v, da, db))
    nonzero = (nv > 0) & (na > 0) & (nb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = v / nv[:, None]
        da = da / na[:, None]
        db = db / nb[:, None]
        # closest point of the line to the centre, and the half chord: no cancellation when C
        # is near the sphere, unlike the textbook quadratic
        s_c = np.einsum("ij,ij->i", c, v)  # C's coordinate along the line from h
        h = c - s_c[:, None] * v
        half2 = r * r - np.einsum("ij,ij->i", h, h)
        hit = half2 > 0
        half = np.sqrt(np.where(hit, half2, np.nan))
        a = h - half[:, None] * v
        b = h + half[:, None] * v
        scale = tt / (2 * half)
        ta = (s_c + half) * scale  # |CA| t1 / |AB|, signed: <= 0 when C is not after A
        tb = (half - s_c) * scale
    time_ok = (tt > 0) & (ta > 0) & (tb > 0)
    energy_ok = (e1 > 0) & (e2 > 0)
    valid = finite & nonzero & hit & time_ok & energy_ok

    out: Table = {"E1": e1, "E2": e2}
    for i, k in enumerate(("X1", "Y1", "Z1")):
        out[k] = a[:, i]
    for i, k in enumerate(("X2", "Y2", "Z2")):
        out[k] = b[:, i]
    for i, k in enumerate(("dX1", "dY1", "dZ1")):
        out[k] = da[:, i]
    for i, k in enumerate(("dX2", "dY2", "dZ2")):
        out[k] = db[:, i]
    out["t1"] = ta
    out["t2"] = tb
    out = {k: x.astype(dtype) for k, x in out.items()}
    for key in tlor:
        if key not in _TLOR_INPUT:
            out[key] = np.asarray(tlor[key])

    tally = {
        "rows": n,
        "valid": int(valid.sum()),
        "non_finite": int((~finite).sum()),
        "zero_vector": int((finite & ~nonzero).sum()),
        "miss": int((finite & nonzero & ~hit).sum()),
        "time": int((finite & hit & ~time_ok).sum()),
        "energy": int((finite & ~energy_ok).sum()),
    }
    if counts is not None:
        counts.clear()
        counts.update(tally)
    if tally["valid"] < n:
        log.info("tlor_to_pairs: %d of %d rows are invalid (%s); they are kept and flagged in the mask", n - tally["valid"], n, {k: v for k, v in tally.items() if k not in ("rows", "valid")})
    return out, valid
