"""PET pairing and the TLOR parametrisation: round trips, invalid rows, counts."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError
from gansim.physics.pet import PAIR_KEYS, TLOR_KEYS, hits_to_pairs, pairs_to_tlor, tlor_to_pairs
from gansim.units import c_light

RADIUS = 210.0


def _on_sphere(rng: np.random.Generator, n: int, radius: float = RADIUS) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return radius * d / np.linalg.norm(d, axis=1, keepdims=True)


def _random_pairs(rng: np.random.Generator, n: int, dtype: type = np.float64) -> dict[str, np.ndarray]:
    """Pairs whose two exit points lie on the sphere: an annihilation point inside, flight times |PA|/c, |PB|/c."""
    a, b = _on_sphere(rng, n), _on_sphere(rng, n)
    f = rng.uniform(0.02, 0.98, n)  # annihilation point on the chord, strictly inside
    p = a + f[:, None] * (b - a)
    ta = np.linalg.norm(p - a, axis=1) / c_light
    tb = np.linalg.norm(p - b, axis=1) / c_light
    da, db = _on_sphere(rng, n, 1.0), _on_sphere(rng, n, 1.0)
    cols = {"E1": rng.uniform(0.05, 0.511, n), "E2": rng.uniform(0.05, 0.511, n)}
    for i, k in enumerate("XYZ"):
        cols[f"{k}1"] = a[:, i]
    for i, k in enumerate("XYZ"):
        cols[f"{k}2"] = b[:, i]
    for i, k in enumerate("XYZ"):
        cols[f"d{k}1"] = da[:, i]
    for i, k in enumerate("XYZ"):
        cols[f"d{k}2"] = db[:, i]
    cols["t1"], cols["t2"] = ta, tb
    out = {k: v.astype(dtype) for k, v in cols.items()}
    out["eX"] = p[:, 0].astype(dtype)
    out["EventID"] = np.arange(n, dtype=np.int64) * 3
    out["w1"] = rng.uniform(0.5, 2, n)
    out["w2"] = rng.uniform(0.5, 2, n)
    return out


def test_pairs_tlor_pairs_round_trip_is_exact_to_float64_rounding() -> None:
    rng = np.random.default_rng(0)
    pairs = _random_pairs(rng, 50_000)
    tlor = pairs_to_tlor(pairs)
    assert list(tlor)[: len(TLOR_KEYS)] == list(TLOR_KEYS)
    assert {"w1", "w2", "eX", "EventID"} <= set(tlor)
    v = np.stack([tlor["Vx"], tlor["Vy"], tlor["Vz"]], axis=1)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-14)
    # t1 = tA + tB; C is on AB at the fraction tA / (tA + tB) from A
    np.testing.assert_allclose(tlor["t1"], pairs["t1"] + pairs["t2"], rtol=1e-15)
    back, valid = tlor_to_pairs(tlor, RADIUS)
    assert valid.all()
    assert list(back)[: len(PAIR_KEYS)] == list(PAIR_KEYS)
    eps = np.finfo(np.float64).eps
    # Positions come back from a line/sphere intersection: the half chord s = sqrt(R^2 - |h|^2) carries
    # an absolute error of about eps R^2 / (2 s) (cancellation for short chords), so positions are good
    # to a few ulps of R times (1 + R / s), and times, which scale as t1 / (2 s), to a few ulps of t1
    # times (1 + (R / s)^2).
    half_chord = 0.5 * np.linalg.norm(np.stack([pairs[f"{k}2"] - pairs[f"{k}1"] for k in "XYZ"], axis=1), axis=1)
    pos_tol = 16 * eps * RADIUS * (1 + RADIUS / half_chord)
    for k in ("X1", "Y1", "Z1", "X2", "Y2", "Z2"):
        err = np.abs(back[k] - pairs[k])
        assert np.all(err <= pos_tol), f"{k}: max error {err.max():.3g} mm"
    t_tol = 16 * eps * tlor["t1"] * (1 + (RADIUS / half_chord) ** 2)
    for k in ("t1", "t2"):
        assert np.all(np.abs(back[k] - pairs[k]) <= t_tol), k
    for k in ("E1", "E2", "dX1", "dY1", "dZ1", "dX2", "dY2", "dZ2"):
        np.testing.assert_allclose(back[k], pairs[k], rtol=4 * eps, atol=4 * eps)
    for k in ("w1", "w2", "eX", "EventID"):
        np.testing.assert_array_equal(back[k], pairs[k])


def test_round_trip_in_float32_stays_float32() -> None:
    rng = np.random.default_rng(1)
    pairs = _random_pairs(rng, 20_000, np.float32)
    tlor = pairs_to_tlor(pairs)
    assert all(tlor[k].dtype == np.float32 for k in TLOR_KEYS)
    back, valid = tlor_to_pairs(tlor, RADIUS)
    assert all(back[k].dtype == np.float32 for k in PAIR_KEYS)
    # float32 TLOR values (C, V) carry 6e-8 relative errors; short chords amplify them as above
    half_chord = 0.5 * np.linalg.norm(np.stack([pairs[f"{k}2"] - pairs[f"{k}1"] for k in "XYZ"], axis=1).astype(np.float64), axis=1)
    tol = 16 * np.finfo(np.float32).eps * RADIUS * (1 + RADIUS / half_chord)
    ok = np.ones(len(valid), dtype=bool)
    for k in ("X1", "Y1", "Z1", "X2", "Y2", "Z2"):
        ok &= np.abs(back[k].astype(np.float64) - pairs[k]) <= tol
    assert valid.all() and ok.all()


def test_invalid_rows_are_flagged_counted_and_kept_in_order() -> None:
    rng = np.random.default_rng(2)
    pairs = _random_pairs(rng, 10)
    tlor = pairs_to_tlor(pairs)
    # row 1: the line misses the sphere (C far out, V tangential to it)
    tlor["Cx"][1], tlor["Cy"][1], tlor["Cz"][1] = 0.0, 0.0, 500.0
    tlor["Vx"][1], tlor["Vy"][1], tlor["Vz"][1] = 1.0, 0.0, 0.0
    # row 2: C on the line but outside the sphere, so tA or tB <= 0
    tlor["Cx"][2], tlor["Cy"][2], tlor["Cz"][2] = 300.0, 0.0, 0.0
    tlor["Vx"][2], tlor["Vy"][2], tlor["Vz"][2] = 1.0, 0.0, 0.0
    tlor["E2"][3] = 0.0  # a single
    tlor["E1"][4] = -0.1  # a GAN's negative energy
    tlor["Vy"][5] = np.nan
    tlor["dAx"][6], tlor["dAy"][6], tlor["dAz"][6] = 0.0, 0.0, 0.0
    tlor["t1"][7] = -1.0
    counts: dict[str, int] = {}
    back, valid = tlor_to_pairs(tlor, RADIUS, counts=counts)
    assert len(back["X1"]) == 10 and valid.tolist() == [True, False, False, False, False, False, False, False, True, True]
    assert counts == {"rows": 10, "valid": 3, "non_finite": 1, "zero_vector": 1, "miss": 1, "time": 2, "energy": 2}
    assert np.isnan(back["X1"][1]) and np.isnan(back["t2"][1])
    # valid rows are the exact inverse, whatever the invalid rows around them
    good, _ = tlor_to_pairs({k: v[[0, 8, 9]] for k, v in tlor.items()}, RADIUS)
    for k in PAIR_KEYS:
        np.testing.assert_array_equal(back[k][valid], good[k])
    np.testing.assert_array_equal(back["EventID"], pairs["EventID"])
    with pytest.raises(ConfigError, match="radius"):
        tlor_to_pairs(tlor, -1.0)
    with pytest.raises(DataError, match="missing columns"):
        tlor_to_pairs({k: v for k, v in tlor.items() if k != "t1"}, RADIUS)


def _hits() -> dict[str, np.ndarray]:
    """Exit-photon rows as a phase space holds them, out of event order.

    Events: 10 pair, 11 single, 12 absorbed (zero row), 13 three photons, 14 pair, 15 single.
    """
    rows = [
        # EventID, E, x, y, z, dx, dy, dz, t, weight
        (14, 0.511, 1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 0.7, 1.0),
        (10, 0.400, 10.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.6, 2.0),
        (13, 0.300, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.1, 1.0),
        (11, 0.511, 5.0, 5.0, 5.0, 0.0, 0.0, -1.0, 0.5, 1.0),
        (12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        (10, 0.511, -10.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.8, 3.0),
        (13, 0.200, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.2, 1.0),
        (14, 0.300, -1.0, -2.0, -3.0, -1.0, 0.0, 0.0, 0.9, 1.0),
        (13, 0.100, 0.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.3, 1.0),
        (15, 0.250, 7.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.4, 1.0),
    ]
    a = np.array(rows)
    names = ["EventID", "KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z", "TimeFromBeginOfEvent", "Weight"]
    table = {k: a[:, i].astype(np.float32) for i, k in enumerate(names)}
    table["EventID"] = a[:, 0].astype(np.int64)
    table["GlobalTime"] = table["TimeFromBeginOfEvent"] + 1e9
    eid = table["EventID"]
    table["EventPosition_X"] = (eid * 0.5).astype(np.float32)
    table["EventPosition_Y"] = np.zeros(len(eid), np.float32)
    table["EventPosition_Z"] = np.ones(len(eid), np.float32)
    table["EventDirection_X"] = np.zeros(len(eid), np.float32)
    table["EventDirection_Y"] = np.zeros(len(eid), np.float32)
    table["EventDirection_Z"] = np.where(eid == 12, 1.0, 0.0).astype(np.float32)
    table["EventKineticEnergy"] = np.full(len(eid), 0.511, np.float32)
    return table


def test_hits_to_pairs_groups_by_event_and_counts_every_outcome() -> None:
    pairs, counts = hits_to_pairs(_hits())
    assert counts == {"events": 6, "pairs": 2, "singles": 2, "absorbed": 1, "multiple": 1, "multiple_photons": 3}
    # every row is accounted for: 2 per pair + singles + absorbed + the multiple events' rows
    assert 2 * counts["pairs"] + counts["singles"] + counts["absorbed"] + counts["multiple_photons"] == 10
    assert pairs["EventID"].tolist() == [10, 11, 12, 14, 15]
    assert list(pairs)[: len(PAIR_KEYS)] == list(PAIR_KEYS)
    assert all(pairs[k].dtype == np.float32 for k in PAIR_KEYS)
    # pair 10: photon 1 is the event's first row
    np.testing.assert_allclose([pairs[k][0] for k in ("E1", "E2", "X1", "X2", "dY1", "dY2", "t1", "t2", "w1", "w2")], [0.4, 0.511, 10, -10, 1, -1, 0.6, 0.8, 2, 3], rtol=1e-6)
    # single 11: E2 = 0, position and time 0, direction opposite
    np.testing.assert_allclose([pairs[k][1] for k in ("E1", "E2", "X1", "X2", "Y2", "Z2", "dZ1", "dZ2", "t1", "t2", "w2")], [0.511, 0, 5, 0, 0, 0, -1, 1, 0.5, 0, 0], rtol=1e-6)
    # absorbed 12: zeros, directions from the event direction
    row = {k: float(pairs[k][2]) for k in pairs}
    assert row["E1"] == row["E2"] == row["t1"] == row["X1"] == row["X2"] == 0.0
    assert (row["dZ1"], row["dZ2"]) == (1.0, -1.0)
    # event columns are carried, the decay point under gaga's names
    np.testing.assert_allclose(pairs["eX"], [5.0, 5.5, 6.0, 7.0, 7.5])
    assert "EventKineticEnergy" in pairs and "EventDirection_Z" in pairs
    assert "GlobalTime" not in pairs and "KineticEnergy" not in pairs


def test_hits_pairs_tlor_pairs_chain() -> None:
    """Exit photons on the sphere -> pairs -> TLOR -> pairs gives the pairs back (pairs only are valid)."""
    rng = np.random.default_rng(3)
    ref = _random_pairs(rng, 1000)
    n = len(ref["E1"])
    hits = {
        "EventID": np.concatenate([ref["EventID"], ref["EventID"]]),
        "KineticEnergy": np.concatenate([ref["E1"], ref["E2"]]),
        "TimeFromBeginOfEvent": np.concatenate([ref["t1"], ref["t2"]]),
    }
    for k in "XYZ":
        hits[f"PrePosition_{k}"] = np.concatenate([ref[f"{k}1"], ref[f"{k}2"]])
        hits[f"PreDirection_{k}"] = np.concatenate([ref[f"d{k}1"], ref[f"d{k}2"]])
    perm = rng.permutation(2 * n)
    hits = {k: v[perm] for k, v in hits.items()}
    pairs, counts = hits_to_pairs(hits)
    assert counts["pairs"] == n
    back, valid = tlor_to_pairs(pairs_to_tlor(pairs), RADIUS)
    assert valid.all()
    # photon order within a pair follows the (shuffled) row order: compare as unordered pairs
    order = np.argsort(back["EventID"])
    got = np.stack([back["X1"], back["X2"]], axis=1)[order]
    exp = np.stack([ref["X1"], ref["X2"]], axis=1)
    np.testing.assert_allclose(np.sort(got, axis=1), np.sort(exp, axis=1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.sort(np.stack([back["t1"], back["t2"]], 1)[order], 1), np.sort(np.stack([ref["t1"], ref["t2"]], 1), 1), rtol=1e-9)


def test_hits_to_pairs_bad_input() -> None:
    hits = _hits()
    with pytest.raises(DataError, match="TimeFromBeginOfEvent"):
        hits_to_pairs({k: v for k, v in hits.items() if k != "TimeFromBeginOfEvent"})
    bad = dict(hits)
    bad["KineticEnergy"] = hits["KineticEnergy"].copy()
    bad["KineticEnergy"][0] = -1.0
    with pytest.raises(DataError, match="negative"):
        hits_to_pairs(bad)
    bad = dict(hits)
    bad["KineticEnergy"] = hits["KineticEnergy"].copy()
    bad["KineticEnergy"][1] = 0.0  # event 10 has two rows, one absorbed-style
    with pytest.raises(DataError, match="event 10"):
        hits_to_pairs(bad)
    bad = dict(hits)
    bad["EventID"] = hits["EventID"] + 0.5
    with pytest.raises(DataError, match="integer"):
        hits_to_pairs(bad)
    bad = dict(hits)
    bad["Weight"] = hits["Weight"][:-1]
    with pytest.raises(DataError, match="lengths"):
        hits_to_pairs(bad)
    # GlobalTime can be chosen explicitly
    pairs, _ = hits_to_pairs(hits, time_key="GlobalTime")
    assert pairs["t1"][0] == pytest.approx(1e9 + 0.6, rel=1e-7)
