"""Sliced W1 against closed forms.

Closed form: for P = N(0, I_d), Q = N(m, I_d) and a unit direction theta, theta.X ~ N(0, 1) and
theta.Y ~ N(theta.m, 1), so W1 along theta is |theta.m| (a shift) and
SW1 = E_theta |theta.m| = |m| E|theta_1| = |m| c_d,  c_d = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).

Two error sources, each bounded without tuning:
* directions (Monte Carlo over L random theta): the mean of |theta_l.m| has standard deviation
  |m| sqrt((1/d - c_d^2) / L) since E theta_1^2 = 1/d; we allow 5 of these sigmas.
* samples: for every unit theta, W1(theta#F_n, theta#F) <= J/sqrt(n) in expectation (J = J(N(0,1)),
  see test_distances.py), and the mean over directions is (1/sqrt(n))-Lipschitz in the Gaussian
  draws (|theta.(x - x')| <= |x - x'|), so Gaussian concentration bounds it by
  (J + sqrt(2 ln(1/p)))/sqrt(n) with probability >= 1 - p, per sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln
from scipy.stats import norm, wasserstein_distance

from gansim.errors import ConfigError, DataError
from gansim.metrics.sliced import random_directions, sliced_wasserstein

P_FAIL = 1e-7
J_NORMAL = quad(lambda x: math.sqrt(norm.cdf(x) * norm.sf(x)), -np.inf, np.inf)[0]  # about 1.61


def gaussian_bound(n: int, p: float = P_FAIL) -> float:
    """With probability >= 1 - p, W1(theta#F_n, theta#F) averaged over directions is below this (module docstring)."""
    return (J_NORMAL + math.sqrt(2.0 * math.log(1.0 / p))) / math.sqrt(n)


def c_d(d: int) -> float:
    """E|theta_1| for theta uniform on S^{d-1}: Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2))."""
    return math.exp(gammaln(d / 2) - gammaln((d + 1) / 2)) / math.sqrt(math.pi)


def gaussian_table(rng: np.random.Generator, n: int, mean: np.ndarray) -> dict[str, np.ndarray]:
    x = rng.normal(size=(n, len(mean))) + mean
    return {f"c{j}": x[:, j] for j in range(len(mean))}


def test_c_d_known_values() -> None:
    # d = 1: theta = +-1; d = 2: E|cos phi| = 2/pi; d = 3: theta_1 is uniform on [-1, 1] (Archimedes), E = 1/2.
    assert c_d(1) == pytest.approx(1.0)
    assert c_d(2) == pytest.approx(2 / math.pi)
    assert c_d(3) == pytest.approx(0.5)


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_directions_are_uniform_unit_vectors(d: int) -> None:
    L = 200_000
    th = random_directions(L, d, seed=3)
    assert th.shape == (L, d)
    np.testing.assert_allclose(np.linalg.norm(th, axis=1), 1.0, rtol=1e-12)
    # E|theta_1| = c_d with standard error sqrt((1/d - c_d^2)/L); 5 sigma (0 for d = 1, hence the 1e-12).
    sigma = math.sqrt(max(1 / d - c_d(d) ** 2, 0.0) / L)
    assert abs(np.abs(th[:, 0]).mean() - c_d(d)) <= 5 * sigma + 1e-12
    np.testing.assert_array_equal(th, random_directions(L, d, seed=3))


def test_gaussian_shift_closed_form() -> None:
    d, n, L = 3, 50_000, 256
    m = np.array([1.2, -0.8, 0.5])
    rng = np.random.default_rng(21)
    ref = gaussian_table(rng, n, np.zeros(d))
    gen = gaussian_table(rng, n, m)
    out = sliced_wasserstein(ref, gen, list(ref), n_projections=L, seed=4, standardise=False)
    norm_m = float(np.linalg.norm(m))
    sampling = 2 * gaussian_bound(n)  # about 0.065
    directions_5sigma = 5 * norm_m * math.sqrt((1 / d - c_d(d) ** 2) / L)  # about 0.138
    assert abs(out["sw1"] - norm_m * c_d(d)) <= sampling + directions_5sigma
    # Given the directions actually used, only the sampling term remains.
    th = random_directions(L, d, seed=4)
    assert abs(out["sw1"] - np.abs(th @ m).mean()) <= sampling
    # The largest projection: each of the L per-direction errors is bounded with failure p/L (union bound).
    per_direction = 2 * gaussian_bound(n, P_FAIL / L)
    assert abs(out["sw1_max"] - np.abs(th @ m).max()) <= per_direction
    assert out["n_projections"] == L and out["seed"] == 4 and out["standardised"] is False


def test_exact_shift_without_noise() -> None:
    # Y = X + m row by row: along theta the empirical distributions differ by exactly theta.m.
    rng = np.random.default_rng(22)
    x = rng.normal(size=(3000, 4)) * [1.0, 2.0, 0.5, 3.0]
    m = np.array([0.3, -1.0, 0.2, 0.7])
    keys = ["a", "b", "c", "d"]
    ref = {k: x[:, j] for j, k in enumerate(keys)}
    gen = {k: x[:, j] + m[j] for j, k in enumerate(keys)}
    out = sliced_wasserstein(ref, gen, keys, n_projections=64, seed=1, standardise=False)
    th = random_directions(64, 4, seed=1)
    assert out["sw1"] == pytest.approx(np.abs(th @ m).mean(), rel=1e-10)
    assert out["sw1_max"] == pytest.approx(np.abs(th @ m).max(), rel=1e-10)


def test_identical_distributions_within_sampling_noise() -> None:
    n = 50_000
    rng = np.random.default_rng(23)
    ref = gaussian_table(rng, n, np.zeros(3))
    gen = gaussian_table(rng, n, np.zeros(3))
    out = sliced_wasserstein(ref, gen, list(ref), standardise=False)
    assert out["sw1"] <= 2 * gaussian_bound(n)  # about 0.065


def test_standardised_is_unit_free() -> None:
    # Columns in mm, MeV and ns with very different spreads: changing units (x -> a x + b, a > 0,
    # applied to both samples) leaves the reference-standardised values, hence SW1, unchanged.
    rng = np.random.default_rng(24)
    n = 4000
    ref = {"x_mm": rng.normal(0, 50, n), "e_mev": rng.gamma(2.0, 0.3, n), "t_ns": rng.normal(10, 0.01, n)}
    gen = {"x_mm": rng.normal(5, 50, n), "e_mev": rng.gamma(2.2, 0.3, n), "t_ns": rng.normal(10, 0.012, n)}
    keys = list(ref)
    base = sliced_wasserstein(ref, gen, keys)
    scale = {"x_mm": (0.1, 3.0), "e_mev": (1000.0, 0.0), "t_ns": (1e-9, -2e-9)}  # cm, keV, s (with offsets)
    ref2 = {k: a * ref[k] + b for k, (a, b) in scale.items()}
    gen2 = {k: a * gen[k] + b for k, (a, b) in scale.items()}
    assert sliced_wasserstein(ref2, gen2, keys)["sw1"] == pytest.approx(base["sw1"], rel=1e-6)
    # Standardising by hand with the reference mean/std and not standardising gives the same number.
    mu = {k: ref[k].mean() for k in keys}
    sd = {k: ref[k].std() for k in keys}
    ref3 = {k: (ref[k] - mu[k]) / sd[k] for k in keys}
    gen3 = {k: (gen[k] - mu[k]) / sd[k] for k in keys}
    assert sliced_wasserstein(ref3, gen3, keys, standardise=False)["sw1"] == pytest.approx(base["sw1"], rel=1e-10)


def test_constant_reference_column_uses_unit_std() -> None:
    ref = {"a": np.zeros(100), "b": np.linspace(0, 1, 100)}
    gen = {"a": np.full(100, 2.0), "b": np.linspace(0, 1, 100)}
    out = sliced_wasserstein(ref, gen, ["a", "b"], n_projections=32, seed=5)
    th = random_directions(32, 2, seed=5)
    # b is identical, a is shifted by 2 / 1 (std -> 1), so W1 along theta is |2 theta_a|.
    assert out["sw1"] == pytest.approx(np.abs(2 * th[:, 0]).mean(), rel=1e-10)


def test_unequal_sizes_path() -> None:
    rng = np.random.default_rng(25)
    x = rng.normal(size=(700, 2))
    ref = {"u": x[:, 0], "v": x[:, 1]}
    # Every row twice: the same empirical distribution, so SW1 = 0 through the unequal-size code path.
    twice = {"u": np.tile(x[:, 0], 2), "v": np.tile(x[:, 1], 2)}
    assert sliced_wasserstein(ref, twice, ["u", "v"], standardise=False)["sw1"] == pytest.approx(0.0, abs=1e-12)
    # Equal-size fast path (sorted order statistics) agrees with scipy's general 1-D W1.
    y = rng.normal(0.5, 1.5, size=(700, 2))
    gen = {"u": y[:, 0], "v": y[:, 1]}
    th = random_directions(16, 2, seed=0)
    expected = np.mean([wasserstein_distance(x @ t, y @ t) for t in th])
    assert sliced_wasserstein(ref, gen, ["u", "v"], n_projections=16, standardise=False)["sw1"] == pytest.approx(expected, rel=1e-10)


def test_seed_determinism() -> None:
    rng = np.random.default_rng(26)
    ref = gaussian_table(rng, 500, np.zeros(3))
    gen = gaussian_table(rng, 400, np.ones(3))
    a = sliced_wasserstein(ref, gen, list(ref), seed=7)
    assert a == sliced_wasserstein(ref, gen, list(ref), seed=7)
    assert a["sw1"] != sliced_wasserstein(ref, gen, list(ref), seed=8)["sw1"]


def test_errors() -> None:
    ref = {"x": np.zeros(5), "y": np.ones(5)}
    with pytest.raises(DataError, match="generated sample has no column 'y'"):
        sliced_wasserstein(ref, {"x": np.zeros(5)}, ["x", "y"])
    with pytest.raises(DataError, match="'x' has 1 non-finite"):
        sliced_wasserstein(ref, {"x": np.array([0, 1, np.nan, 3, 4.0]), "y": np.ones(5)}, ["x", "y"])
    with pytest.raises(DataError, match="'y' has 4 rows"):
        sliced_wasserstein(ref, {"x": np.zeros(5), "y": np.ones(4)}, ["x", "y"])
    with pytest.raises(DataError, match="empty"):
        sliced_wasserstein(ref, {"x": np.zeros(0), "y": np.ones(0)}, ["x", "y"])
    with pytest.raises(ConfigError, match="n_projections"):
        sliced_wasserstein(ref, ref, ["x"], n_projections=0)
