"""Per-key 1-D Wasserstein distance against closed forms, with bounds derived from the sampling statistics.

Bound used throughout (no tuning).  For the empirical distribution F_n of n i.i.d. draws from F,
and G_m likewise from G, the triangle inequality gives

    |W1(F_n, G_m) - W1(F, G)| <= W1(F_n, F) + W1(G_m, G).

Expectation: W1(F_n, F) = int |F_n(x) - F(x)| dx and E|F_n(x) - F(x)| <= sqrt(F(1-F)/n) (Jensen), so
E W1(F_n, F) <= J(F) / sqrt(n) with J(F) = int sqrt(F(1-F)) dx (Bobkov & Ledoux 2019, Thm 3.5).

Deviation above the expectation, with probability >= 1 - p:
* Gaussian F with std s: moving the draws x -> x' changes W1(F_n, F) by at most
  (1/n) sum |x_i - x'_i| <= ||x - x'||_2 / sqrt(n), so it is (s/sqrt(n))-Lipschitz in standard normal
  inputs and Gaussian concentration (Tsirelson-Ibragimov-Sudakov) gives t = s sqrt(2 ln(1/p) / n).
* F supported on an interval of length b: one draw changes W1(F_n, F) by at most b/n, so
  McDiarmid gives t = b sqrt(ln(1/p) / (2n)).
We take p = 1e-7 per sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from gansim.errors import DataError
from gansim.metrics.distances import relative_wasserstein, wasserstein_per_key

P_FAIL = 1e-7
#: J(N(0, 1)) = int sqrt(Phi (1 - Phi)) dx, about 1.61 (J scales with the std).
J_NORMAL = quad(lambda x: math.sqrt(norm.cdf(x) * norm.sf(x)), -np.inf, np.inf)[0]


def gaussian_bound(n: int, std: float = 1.0) -> float:
    """High-probability bound on W1(F_n, F) for a Gaussian F (see the module docstring)."""
    return std * (J_NORMAL + math.sqrt(2.0 * math.log(1.0 / P_FAIL))) / math.sqrt(n)


def uniform_bound(n: int, width: float) -> float:
    """High-probability bound on W1(F_n, F) for F = U(a, a + width): J = width * pi / 8, McDiarmid deviation."""
    return width * (math.pi / 8.0 + math.sqrt(math.log(1.0 / P_FAIL) / 2.0)) / math.sqrt(n)


def test_j_uniform_closed_form() -> None:
    # J(U(0, b)) = int_0^b sqrt((x/b)(1 - x/b)) dx = b int_0^1 sqrt(u(1-u)) du = b pi/8 (area of half a
    # circle of radius 1/2), the value uniform_bound uses; checked against the same quadrature as J_NORMAL.
    for b in (1.0, 2.0):
        j = quad(lambda x: math.sqrt(max((x / b) * (1 - x / b), 0.0)), 0.0, b)[0]
        assert j == pytest.approx(b * math.pi / 8, rel=1e-6)


@pytest.mark.parametrize("mu", [0.0, 0.5, -2.0])
def test_gaussian_shift_equals_abs_mu(mu: float) -> None:
    # N(0, 1) vs N(mu, 1): W1 = |mu| (a pure shift); mu = 0 checks two samples of one distribution.
    n = 100_000
    rng = np.random.default_rng(11)
    ref = {"x": rng.normal(0.0, 1.0, n)}
    gen = {"x": rng.normal(mu, 1.0, n)}
    out = wasserstein_per_key(ref, gen, ["x"])["x"]
    bound = 2 * gaussian_bound(n)  # about 0.046
    assert abs(out["w1"] - abs(mu)) <= bound
    assert out["w1_rel"] == pytest.approx(out["w1"] / out["ref_std"], rel=1e-12)


def test_uniform_half_width() -> None:
    # U(0, 1) vs U(0, 2): int_0^1 (x - x/2) dx + int_1^2 (1 - x/2) dx = 1/4 + 1/4 = 1/2.
    n = 100_000
    rng = np.random.default_rng(12)
    ref = {"e": rng.uniform(0.0, 1.0, n)}
    gen = {"e": rng.uniform(0.0, 2.0, n)}
    w1 = wasserstein_per_key(ref, gen)["e"]["w1"]
    bound = uniform_bound(n, 1.0) + uniform_bound(n, 2.0)  # about 0.031
    assert abs(w1 - 0.5) <= bound


def test_exact_shift_of_the_same_sample() -> None:
    # Shifting an empirical distribution by mu moves it by exactly |mu| in W1 (no sampling noise).
    x = np.random.default_rng(13).exponential(2.0, 5000)
    out = wasserstein_per_key({"t": x}, {"t": x + 0.75}, ["t"])["t"]
    assert out["w1"] == pytest.approx(0.75, rel=1e-12)
    assert out["ref_std"] == pytest.approx(float(x.std()), rel=1e-12)


def test_units_scale_w1_but_not_w1_rel() -> None:
    rng = np.random.default_rng(14)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.3, 1.2, 3000)
    mm = wasserstein_per_key({"x": a}, {"x": b})["x"]
    um = wasserstein_per_key({"x": 1000 * a}, {"x": 1000 * b})["x"]  # mm -> micrometre
    assert um["w1"] == pytest.approx(1000 * mm["w1"], rel=1e-9)
    assert um["w1_rel"] == pytest.approx(mm["w1_rel"], rel=1e-9)
    assert relative_wasserstein({"x": a}, {"x": b}) == {"x": pytest.approx(mm["w1_rel"], rel=1e-12)}


def test_constant_reference_column() -> None:
    ref = {"q": np.full(10, 5.0)}
    assert wasserstein_per_key(ref, {"q": np.full(7, 5.0)})["q"]["w1_rel"] == 0.0
    assert wasserstein_per_key(ref, {"q": np.full(7, 6.0)})["q"]["w1_rel"] == float("inf")


def test_errors_name_the_key() -> None:
    ref = {"x": np.zeros(3)}
    with pytest.raises(DataError, match="'y'"):
        wasserstein_per_key(ref, {"x": np.zeros(3)}, ["y"])
    with pytest.raises(DataError, match="generated sample has no column 'x'"):
        wasserstein_per_key(ref, {"z": np.zeros(3)}, ["x"])
    with pytest.raises(DataError, match="empty"):
        wasserstein_per_key(ref, {"x": np.zeros(0)}, ["x"])
