"""Classifier two-sample test (and the reproducible subsampling it uses) against closed forms.

Under the null (both samples from one distribution) the test scores of the two classes are
i.i.d. given the fitted classifier, so the test AUC = U / (n1 n2) has mean 1/2 and standard error
null_se = sqrt((n1 + n2 + 1) / (12 n1 n2)) (Mann-Whitney; smaller with ties): |AUC - 1/2| <= 5 null_se.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from gansim.errors import ConfigError, DataError
from gansim.metrics.classifier import classifier_two_sample_test, hanley_mcneil_se, null_auc_se
from gansim.metrics.subsample import deterministic_subsample


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    # The tree booster's OpenMP threads spin when the 2 test cores are shared; one thread is faster here.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def gaussians(seed: int, n_ref: int, n_gen: int, shift: tuple[float, ...]) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    d = len(shift)
    x = rng.normal(size=(n_ref, d))
    y = rng.normal(size=(n_gen, d)) + np.asarray(shift)
    return {f"c{j}": x[:, j] for j in range(d)}, {f"c{j}": y[:, j] for j in range(d)}


# --- standard errors -------------------------------------------------------------------------------

def test_hanley_mcneil_by_hand() -> None:
    # A = 0.8, n_pos = 50, n_neg = 40:
    # Q1 = 0.8/1.2 = 2/3, Q2 = 2*0.64/1.8 = 32/45; Q1 - A^2 = 2/75, Q2 - A^2 = 16/225;
    # A(1-A) + 49*2/75 + 39*16/225 = 0.16 + 98/75 + 624/225 = 0.16 + 1.30667 + 2.77333 = 4.24;
    # SE = sqrt(4.24 / (50*40)) = sqrt(0.00212) = 0.046043...
    assert hanley_mcneil_se(0.8, 50, 40) == pytest.approx(math.sqrt(0.00212), rel=1e-12)
    assert hanley_mcneil_se(1.0, 50, 40) == 0.0  # Q1 = Q2 = A^2 = 1


@pytest.mark.parametrize(("n1", "n2"), [(3, 3), (10, 7), (900, 900)])
def test_hanley_mcneil_at_half_is_the_null_se(n1: int, n2: int) -> None:
    # A = 1/2: Q1 = Q2 = 1/3, Q - A^2 = 1/12, so SE^2 = (1/4 + (n1 + n2 - 2)/12) / (n1 n2) = (n1 + n2 + 1) / (12 n1 n2).
    assert hanley_mcneil_se(0.5, n1, n2) == pytest.approx(null_auc_se(n1, n2), rel=1e-12)


def test_null_se_by_enumeration() -> None:
    # Exact null distribution: 3 positives among 7 distinct scores, all C(7, 3) = 35 rank sets equally likely.
    n1, n2 = 3, 4
    aucs = []
    for pos in itertools.combinations(range(n1 + n2), n1):
        neg = [r for r in range(n1 + n2) if r not in pos]
        aucs.append(sum(p > q for p in pos for q in neg) / (n1 * n2))
    assert np.mean(aucs) == pytest.approx(0.5)
    assert np.std(aucs) == pytest.approx(null_auc_se(n1, n2), rel=1e-12)


# --- the test itself -------------------------------------------------------------------------------

def test_same_distribution_auc_is_half() -> None:
    ref, gen = gaussians(31, 3000, 3000, (0.0, 0.0))
    out = classifier_two_sample_test(ref, gen, list(ref), seed=2)
    assert out["n_test"] == 1800 and out["n_train"] == 4200
    assert out["n_test_ref"] == out["n_test_gen"] == 900
    assert out["null_se"] == pytest.approx(null_auc_se(900, 900))
    assert abs(out["auc"] - 0.5) <= 5 * out["null_se"]  # 5 * 0.0136
    assert out["z_vs_half"] == pytest.approx((out["auc"] - 0.5) / out["null_se"])
    assert out["p_value"] == pytest.approx(norm.sf(out["z_vs_half"]))
    assert out["classifier"] == "HistGradientBoostingClassifier" and out["null_auc"] == 0.5


def test_well_separated_auc_near_one() -> None:
    # Shift 8 along c0: the split c0 < 4 misclassifies a fraction Phi(-4) = 3e-5 of each class
    # (about 0 of 450 test rows), and the first boosting tree makes that split; the Bayes AUC is
    # Phi(8/sqrt 2) = 1 - 8e-9.  0.99 leaves room for any few stray rows.
    ref, gen = gaussians(32, 1500, 1500, (8.0, 0.0))
    out = classifier_two_sample_test(ref, gen, list(ref), seed=3)
    assert out["auc"] > 0.99
    assert out["z_vs_half"] > 20


def test_moderate_shift_not_above_bayes() -> None:
    # N(0, 1) vs N(1, 1): the likelihood ratio is monotone in x, its AUC Phi(1/sqrt 2) = 0.760 is the
    # largest any scorer reaches (Neyman-Pearson), so the test AUC <= 0.760 + 5 SE; and it must be detected.
    ref, gen = gaussians(33, 3000, 2500, (1.0,))
    out = classifier_two_sample_test(ref, gen, ["c0"], seed=4)
    assert out["rows_per_sample"] == 2500  # balanced on the smaller sample
    assert out["ref_subsample"] == {"rows": 3000, "used": 2500, "seed": 4, "method": "uniform without replacement"}
    assert out["gen_subsample"]["used"] == 2500 and out["gen_subsample"]["seed"] == 5
    bayes = norm.cdf(1 / math.sqrt(2))
    assert out["auc"] <= bayes + 5 * out["auc_se"]
    assert out["z_vs_half"] > 5


def test_max_rows_and_determinism() -> None:
    ref, gen = gaussians(34, 400, 300, (0.5, 0.0))
    a = classifier_two_sample_test(ref, gen, list(ref), seed=1, max_rows=100, test_fraction=0.5)
    assert a["rows_per_sample"] == 100 and a["n_test"] == 100 and a["n_train"] == 100
    b = classifier_two_sample_test(ref, gen, list(ref), seed=1, max_rows=100, test_fraction=0.5)
    assert a == b


def test_errors() -> None:
    ref, gen = gaussians(35, 19, 50, (0.0,))
    with pytest.raises(DataError, match="reference has 19 rows.*at least 20"):
        classifier_two_sample_test(ref, gen, ["c0"])
    ref, gen = gaussians(35, 50, 50, (0.0,))
    with pytest.raises(DataError, match="generated sample has no column 'e'"):
        classifier_two_sample_test({**ref, "e": ref["c0"]}, gen, ["c0", "e"])
    with pytest.raises(ConfigError, match="test_fraction"):
        classifier_two_sample_test(ref, gen, ["c0"], test_fraction=1.0)
    bad = {"c0": np.where(np.arange(50) == 3, np.inf, gen["c0"])}
    with pytest.raises(DataError, match="'c0' has 1 non-finite"):
        classifier_two_sample_test(ref, bad, ["c0"])
    with pytest.raises(DataError, match="cannot split"):
        classifier_two_sample_test(ref, gen, ["c0"], test_fraction=0.01)


# --- deterministic subsampling ---------------------------------------------------------------------

def test_subsample_is_reproducible_and_aligned() -> None:
    n = 1000
    table = {"x": np.arange(n, dtype=float), "e": 10.0 * np.arange(n)}
    a, info = deterministic_subsample(table, 100, seed=5)
    b, _ = deterministic_subsample(table, 100, seed=5)
    c, _ = deterministic_subsample(table, 100, seed=6)
    assert info == {"rows": n, "used": 100, "seed": 5, "method": "uniform without replacement"}
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"], c["x"])
    assert len(np.unique(a["x"])) == 100 and np.all(np.diff(a["x"]) > 0)  # no replacement, table order kept
    np.testing.assert_array_equal(a["e"], 10.0 * a["x"])  # rows stay aligned across columns
    expected = np.sort(np.random.default_rng(5).choice(n, size=100, replace=False))
    np.testing.assert_array_equal(a["x"], expected)


def test_subsample_small_table_unchanged() -> None:
    table = {"x": np.arange(10.0)}
    out, info = deterministic_subsample(table, 10)
    assert out["x"] is table["x"]
    assert info == {"rows": 10, "used": 10, "seed": 0, "method": "uniform without replacement"}


def test_subsample_is_uniform() -> None:
    # Each row is kept with probability k/n = 0.1; over 2000 seeds, row counts are Binomial(2000, 0.1):
    # mean 200, sd sqrt(2000 * 0.1 * 0.9) = 13.4.  A union bound over 50 rows at 5.5 sd
    # (two-sided tail 3.8e-8 each) keeps the failure chance below 2e-6.
    counts = np.zeros(50)
    table = {"i": np.arange(50)}
    for seed in range(2000):
        counts[deterministic_subsample(table, 5, seed)[0]["i"]] += 1
    assert np.all(np.abs(counts - 200) <= 5.5 * math.sqrt(2000 * 0.1 * 0.9))


def test_subsample_errors() -> None:
    with pytest.raises(ConfigError, match="max_rows"):
        deterministic_subsample({"x": np.zeros(3)}, 0)
    with pytest.raises(DataError, match="'b' has 2 rows but column 'a' has 3"):
        deterministic_subsample({"a": np.zeros(3), "b": np.zeros(2)}, 1)
