"""FPD and KPD against closed forms on Gaussians, with bounds derived from the sampling statistics.

FPD. For N(mu1, S1), N(mu2, S2) with commuting covariances S1 = R D1^2 R^T, S2 = R D2^2 R^T the
Fréchet distance is |mu1 - mu2|^2 + sum_i (d1_i - d2_i)^2. The estimator draws its batches from
two parent samples of size N, so its extrapolated value estimates FD(parent 1, parent 2), which
differs from the population FD by (first order, delta method)
    sd^2 = 4 delta^T (S1 + S2) delta / N + sum_i 4 (d1_i - d2_i)^2 (d1_i^2 + d2_i^2) / (2 N)
(Var of a sample mean S/N; of a sample std d^2 / (2N); off-diagonal covariance fluctuations
have zero first-order effect for commuting covariances), plus an O(1/N) bias, bounded by
(tr S1 + tr S2)(d + 2) / N (the mean term's bias is (tr S1 + tr S2)/N, the covariance term's is
of order d times that). We require |value - FD| < 5 sqrt(error^2 + sd^2) + bias.

For two parents of one N(0, I_d), FD(parent 1, parent 2) has expectation
2 d / N + d (d + 1) / (2 N) (mean term: |eps|^2 with eps ~ N(0, 2 I / N); covariance term:
||S1^(1/2) - S2^(1/2)||_F^2 ~ ||(E1 - E2)/2||_F^2 with Var(E_ii) = 2/N, Var(E_ij) = 1/N) and is a
weighted chi^2 sum whose mean + 5 sd is at most 1 + 5 sqrt 2 < 9 times its mean.

KPD. A batch drawn with replacement is an i.i.d. sample of the parent's empirical distribution,
so the unbiased MMD^2 of a batch pair is unbiased for the MMD^2 between the two parents, which
the explicit feature map of the polynomial kernel computes directly:
    (x.y/d + 1)^4 = sum_k C(4, k) d^-k <x^(k), y^(k)>,  MMD^2 = sum_k C(4, k) d^-k ||m_k(P) - m_k(Q)||^2
with m_k the k-th moment tensors. The median of n_b = 10 batch values has sd ~ 1.25 sigma / sqrt(10)
= 0.4 sigma, and ``error`` (half the 16-84 percentile spread) estimates sigma within a factor ~2
from 10 values, so 5 x error covers 5 sd of the median.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import sqrtm

from gansim.errors import ConfigError, DataError
from gansim.metrics.fpd_kpd import _fit_line_nonnegative, fpd, frechet_distance, kpd, mmd2_polynomial_unbiased


def rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


# ----------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_distance_closed_forms() -> None:
    rot = rotation(3, 1)
    d1, d2 = np.array([1.0, 0.8, 0.5]), np.array([1.3, 0.6, 0.5])
    s1, s2 = rot @ np.diag(d1**2) @ rot.T, rot @ np.diag(d2**2) @ rot.T
    mu1, mu2 = np.zeros(3), np.array([0.3, -0.2, 0.1])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(0.14 + 0.09 + 0.04, abs=1e-12)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-12)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    # non-commuting covariances against an independent route through scipy's sqrtm
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    direct = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * sqrtm(c1 @ c2).real)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(direct, rel=1e-9)
    # singular covariances stay real and finite
    assert frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 1.0])) == pytest.approx(2.0)
    with pytest.raises(DataError):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(3))


def test_nonnegative_line_fit() -> None:
    x = np.linspace(0.1, 1.0, 6)
    a, b, err = _fit_line_nonnegative(x, 2.0 + 3.0 * x)
    assert (a, b) == (pytest.approx(2.0), pytest.approx(3.0)) and err < 1e-10
    a, b, _ = _fit_line_nonnegative(x, -1.0 + 3.0 * x)  # the unconstrained intercept would be < 0
    assert a == 0.0 and b == pytest.approx(float(x @ (-1.0 + 3.0 * x)) / float(x @ x))
    a, b, _ = _fit_line_nonnegative(x, 5.0 - 1.0 * x)  # the unconstrained slope would be < 0
    assert b == 0.0 and a == pytest.approx(float(np.mean(5.0 - x)))


# ----------------------------------------------------------------------------------------------
# FPD

N_PARENT = 100_000
FPD_OPTIONS = {"min_samples": 2_000, "max_samples": 20_000, "num_batches": 10, "num_points": 5, "normalise": False}


def test_fpd_approaches_the_gaussian_frechet_distance() -> None:
    d = 3
    rot = rotation(d, 4)
    d1, d2 = np.array([1.0, 0.8, 0.5]), np.array([1.3, 0.6, 0.5])
    delta = np.array([0.3, -0.2, 0.1])
    s1, s2 = rot @ np.diag(d1**2) @ rot.T, rot @ np.diag(d2**2) @ rot.T
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N_PARENT, d)) * d1 @ rot.T
    y = rng.normal(size=(N_PARENT, d)) * d2 @ rot.T + delta
    truth = float(delta @ delta + np.sum((d1 - d2) ** 2))
    res = fpd(x, y, **FPD_OPTIONS)
    sd2 = 4 * delta @ (s1 + s2) @ delta / N_PARENT + np.sum(4 * (d1 - d2) ** 2 * (d1**2 + d2**2) / (2 * N_PARENT))
    bias = (np.trace(s1) + np.trace(s2)) * (d + 2) / N_PARENT
    assert abs(res["value"] - truth) < 5 * math.sqrt(res["error"] ** 2 + sd2) + bias, res
    assert res["error"] > 0 and res["slope"] >= 0
    assert res["batch_sizes"][0] == 2_000 and res["batch_sizes"][-1] == 20_000
    inv = 1.0 / np.asarray(res["batch_sizes"], dtype=float)
    # even in 1/N, up to the rounding of N down to a whole number (which moves 1/N by < 1/N^2)
    np.testing.assert_allclose(np.diff(inv), (inv[-1] - inv[0]) / (len(inv) - 1), atol=2 / 2_000**2)


def test_fpd_of_one_gaussian_is_zero_within_errors() -> None:
    d = 3
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(N_PARENT, d)), rng.normal(size=(N_PARENT, d))
    res = fpd(x, y, **FPD_OPTIONS)
    parent = (2 * d + d * (d + 1) / 2) / N_PARENT
    assert 0.0 <= res["value"] < 5 * res["error"] + 9 * parent, res


def test_fpd_normalisation_seed_and_errors() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(3.0, 2.0, (5_000, 2)), rng.normal(3.5, 2.0, (5_000, 2))
    opts = {"min_samples": 500, "max_samples": 2_000, "num_batches": 3, "num_points": 3, "seed": 9}
    scale = np.max(np.abs(x), axis=0)
    assert fpd(x, y, **opts) == fpd(x / scale, y / scale, **opts, normalise=False)
    assert fpd(x, y, **opts) != fpd(x, y, **{**opts, "seed": 10})
    with pytest.raises(ConfigError, match="max_samples"):
        fpd(x, y, min_samples=100, max_samples=100)
    with pytest.raises(ConfigError, match="num_points"):
        fpd(x, y, num_points=2)
    with pytest.raises(DataError, match="features"):
        fpd(x, y[:, :1])
    bad = y.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match=r"column\(s\) \[1\]"):
        fpd(x, bad)


# ----------------------------------------------------------------------------------------------
# KPD


def direct_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 4) -> float:
    """MMD^2 between the empirical distributions of x and y through the kernel's explicit feature map."""
    d = x.shape[1]
    total = 0.0
    tx, ty = np.ones((len(x), 1)), np.ones((len(y), 1))
    for k in range(degree + 1):
        if k:
            tx = (tx[:, :, None] * x[:, None, :]).reshape(len(x), -1)
            ty = (ty[:, :, None] * y[:, None, :]).reshape(len(y), -1)
        diff = tx.mean(axis=0) - ty.mean(axis=0)
        total += math.comb(degree, k) * d ** (-k) * float(diff @ diff)
    return total


def test_mmd2_hand_value_and_blocks() -> None:
    # k(x, y) = (x y + 1)^4: Kxx off-diagonal 1, Kyy off-diagonal 7^4, Kxy = 1, 1, 3^4, 4^4
    assert mmd2_polynomial_unbiased(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])) == pytest.approx(1 + 2401 - 2 * 339 / 4)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2_500, 2)), rng.normal(0.2, 1.0, (2_100, 2))  # > one 2048-row block

    def dense(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / 2 + 1.0) ** 4

    kxx, kyy = dense(x, x), dense(y, y)
    m, n = len(x), len(y)
    expect = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * dense(x, y).mean()
    assert mmd2_polynomial_unbiased(x, y) == pytest.approx(expect, rel=1e-10)


def test_kpd_for_a_known_shift_matches_the_direct_mmd() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(200_000, 2))
    y = rng.normal(size=(200_000, 2)) + np.array([0.4, 0.0])
    res = kpd(x, y, num_batches=10, batch_size=2_000, normalise=False)
    target = direct_mmd2(x, y)
    sd_median = 1.2533 * res["error"] / math.sqrt(10)
    assert target > 5 * sd_median  # the shift is resolved, so the comparison means something
    assert abs(res["value"] - target) < 5 * res["error"], (res, target)


def test_kpd_of_one_gaussian_is_zero_within_errors() -> None:
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(100_000, 3)), rng.normal(size=(100_000, 3))
    res = kpd(x, y, num_batches=10, batch_size=2_000)
    scale = np.max(np.abs(x), axis=0)
    assert abs(res["value"]) < 5 * res["error"] + direct_mmd2(x / scale, y / scale), res


def test_kpd_batches_seeds_and_error() -> None:
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(3_000, 2)), rng.normal(size=(3_000, 2))
    five = kpd(x, y, num_batches=5, batch_size=300)
    three = kpd(x, y, num_batches=3, batch_size=300)
    assert three["batch_values"] == five["batch_values"][:3]  # batch i drawn with seed + 1000 i
    lo, hi = np.percentile(five["batch_values"], [16.275, 83.725])
    assert five["error"] == pytest.approx((hi - lo) / 2)
    assert five["value"] == pytest.approx(float(np.median(five["batch_values"])))
    with pytest.raises(ConfigError, match="batch_size"):
        kpd(x, y, batch_size=1)
    with pytest.raises(DataError):
        kpd(x[:1], y)
