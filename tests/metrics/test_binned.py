"""Metrics per bin of the condition keys: bins cover the data, and each bin's metric is the metric of its rows."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError
from gansim.metrics.binned import per_condition_bins, quantile_edges
from gansim.metrics.distances import wasserstein_per_key


def samples(seed: int, n_ref: int, n_gen: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)

    def table(n: int, gain: float) -> dict[str, np.ndarray]:
        e_beam = rng.uniform(5.0, 20.0, n)  # MeV, the condition
        angle = rng.uniform(-30.0, 30.0, n)  # degrees, a second condition
        return {"e_beam": e_beam, "angle": angle, "depth": gain * e_beam + rng.normal(0, 1, n), "r": np.abs(rng.normal(0, 2, n))}

    return table(n_ref, 1.0), table(n_gen, 1.1)


def in_bin(table: dict, bin_: dict[str, list[float]]) -> np.ndarray:
    mask = np.ones(len(next(iter(table.values()))), dtype=bool)
    for key, (lo, hi) in bin_.items():
        mask &= (table[key] >= lo) & (table[key] < hi)
    return mask


def test_one_condition_quantile_bins() -> None:
    ref, gen = samples(41, 4000, 3000)
    out = per_condition_bins(ref, gen, "e_beam", ["depth", "r"], bins=4, metric_fn=wasserstein_per_key)
    assert len(out) == 4
    # Contiguous half-open intervals from -inf to +inf: every row of both samples is in exactly one bin.
    edges = [b["bin"]["e_beam"] for b in out]
    assert edges[0][0] == -np.inf and edges[-1][1] == np.inf
    assert all(edges[i][1] == edges[i + 1][0] for i in range(3))
    assert sum(b["ref_rows"] for b in out) == 4000 and sum(b["gen_rows"] for b in out) == 3000
    # Quartile edges of the reference: about n/4 reference rows each (+-1 from the interpolated edge).
    assert all(abs(b["ref_rows"] - 1000) <= 1 for b in out)
    np.testing.assert_allclose([e[1] for e in edges[:-1]], np.quantile(ref["e_beam"], [0.25, 0.5, 0.75]))
    for b in out:
        r, g = in_bin(ref, b["bin"]), in_bin(gen, b["bin"])
        assert (b["ref_rows"], b["gen_rows"]) == (r.sum(), g.sum())
        direct = wasserstein_per_key({k: v[r] for k, v in ref.items()}, {k: v[g] for k, v in gen.items()}, ["depth", "r"])
        assert b["metrics"] == direct and b["skipped"] is None


def test_two_conditions_product_of_bins() -> None:
    ref, gen = samples(42, 3000, 3000)
    seen: list[tuple[int, int]] = []

    def count_rows(rb, gb, keys):
        seen.append((len(rb["depth"]), len(gb["depth"])))
        assert set(rb) == {"depth", "e_beam", "angle"} and list(keys) == ["depth"]
        return {"ref_mean": float(np.mean(rb["depth"])), "gen_mean": float(np.mean(gb["depth"]))}

    out = per_condition_bins(ref, gen, ["e_beam", "angle"], ["depth"], bins=3, metric_fn=count_rows)
    assert len(out) == 9 and len(seen) == 9
    assert sum(b["ref_rows"] for b in out) == 3000 and sum(b["gen_rows"] for b in out) == 3000
    for b in out:
        r, g = in_bin(ref, b["bin"]), in_bin(gen, b["bin"])
        assert (b["ref_rows"], b["gen_rows"]) == (r.sum(), g.sum())
        assert b["metrics"]["ref_mean"] == pytest.approx(ref["depth"][r].mean(), rel=1e-12)
        assert b["metrics"]["gen_mean"] == pytest.approx(gen["depth"][g].mean(), rel=1e-12)
    # C order: the first condition's bin changes slowest.
    assert [b["bin"]["e_beam"] for b in out[:3]] == [out[0]["bin"]["e_beam"]] * 3


def test_sparse_bins_are_skipped_and_reported() -> None:
    ref, gen = samples(43, 2000, 2000)
    gen = {k: v[gen["e_beam"] < 12.0] for k, v in gen.items()}  # no generated rows at high beam energy
    out = per_condition_bins(ref, gen, "e_beam", ["depth"], bins=4)
    assert out[-1]["gen_rows"] == 0 and out[-1]["metrics"] is None
    assert "fewer than 20 rows" in out[-1]["skipped"]
    assert out[0]["metrics"] is not None and out[0]["skipped"] is None


def test_total_bins_capped_at_64() -> None:
    ref, gen = samples(44, 500, 500)
    with pytest.warns(UserWarning, match="at most 64"):
        out = per_condition_bins(ref, gen, ["e_beam", "angle", "r"], ["depth"], bins=5)
    assert len(out) == 64  # 4 per key
    assert sum(b["ref_rows"] for b in out) == 500
    assert all(b["metrics"] is None for b in out if min(b["ref_rows"], b["gen_rows"]) < 20)


def test_discrete_condition_one_bin_per_value() -> None:
    # Three beam energies: repeated quantile edges are merged and bins holding no rows are left out,
    # so each energy gets its own bin.
    values = np.repeat([10.0, 20.0, 30.0], [500, 300, 200])
    edges = quantile_edges(values, 8)
    assert np.all(np.diff(edges) > 0) and len(edges) <= 9
    table = {"e_beam": values, "depth": np.sin(values)}
    out = per_condition_bins(table, table, "e_beam", ["depth"], bins=8)
    assert [b["ref_rows"] for b in out] == [500, 300, 200] == [b["gen_rows"] for b in out]
    for b, e in zip(out, (10.0, 20.0, 30.0)):
        lo, hi = b["bin"]["e_beam"]
        assert lo <= e < hi
        assert b["metrics"]["depth"]["w1"] == 0.0


def test_errors() -> None:
    ref, gen = samples(45, 100, 100)
    with pytest.raises(DataError, match="generated sample has no column 'energy'"):
        per_condition_bins({**ref, "energy": ref["e_beam"]}, gen, "energy", ["depth"])
    with pytest.raises(ConfigError, match="bins"):
        per_condition_bins(ref, gen, "e_beam", ["depth"], bins=0)
    with pytest.raises(DataError, match="'e_beam' has 1 non-finite"):
        per_condition_bins({**ref, "e_beam": np.where(np.arange(100) == 0, np.nan, ref["e_beam"])}, gen, "e_beam", ["depth"])
