"""The GAN learns known distributions, checked against analytic values with statistically derived bounds.

Acceptance for a moment m with statistical standard error SE (from the training
sample of N rows and the generated sample of M rows) is
``|m_gen - m_true| <= model_tolerance + 5 * SE``: the 5-sigma term makes a
correct model fail with probability < 1e-6 through sampling noise alone; the
model tolerance is the accuracy asked of a phase-space source a priori
(10 % of a standard deviation for a mean, 10 % for a standard deviation,
0.05 for a correlation coefficient), not a value tuned to pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gansim.config import parse_config
from gansim.models import load_model
from gansim.models.phsp_gan import PhaseSpaceGANConfig
from gansim.models.phsp_train import train_phase_space

CONFIG = {
    "model": {"z_dim": 4, "g_width": 64, "g_depth": 2, "d_width": 64, "d_depth": 2},
    "loss": {"adversarial": "non_saturating", "penalty": "r1", "penalty_weight": 1.0, "d_steps": 1},
    "optim": {"G": {"lr": 1e-3, "betas": [0.5, 0.99]}, "D": {"lr": 1e-3, "betas": [0.5, 0.99]}},
    "train": {"total_rows": 300_000, "batch_size": 256, "tick_rows": 100_000, "checkpoint_rows": 300_000, "progress": False, "seed": 0},
}


def _within(name: str, got: float, true: float, tolerance: float, se: float) -> None:
    bound = tolerance + 5 * se
    assert abs(got - true) <= bound, f"{name}: generated {got:.4f}, analytic {true:.4f}, bound {bound:.4f}"


def test_two_dimensional_gaussian(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    mx, sx, slope, my0, sy0 = 1.0, 2.0, 0.5, -1.0, 0.5
    x = rng.normal(mx, sx, n)
    y = slope * x + rng.normal(my0, sy0, n)
    arr = np.zeros(n, dtype=[("X", "<f4"), ("Y", "<f4")])
    arr["X"], arr["Y"] = x, y
    np.save(tmp_path / "g.npy", arr)
    cfg = parse_config(PhaseSpaceGANConfig, CONFIG)
    model = load_model(train_phase_space(tmp_path / "g.npy", cfg, tmp_path / "run", force=True, log=lambda *_: None), device="cpu")
    m = 100_000
    s = model.sample(m, seed=1)
    gx, gy = s["X"].astype(np.float64), s["Y"].astype(np.float64)
    sy = math.sqrt(slope**2 * sx**2 + sy0**2)
    rho = slope * sx / sy
    se_mean = math.sqrt(1 / n + 1 / m)
    _within("mean X / std", (gx.mean() - mx) / sx, 0.0, 0.1, se_mean)
    _within("mean Y / std", (gy.mean() - (slope * mx + my0)) / sy, 0.0, 0.1, se_mean)
    _within("std X ratio", gx.std() / sx, 1.0, 0.1, math.sqrt(1 / (2 * n) + 1 / (2 * m)))
    _within("std Y ratio", gy.std() / sy, 1.0, 0.1, math.sqrt(1 / (2 * n) + 1 / (2 * m)))
    _within("correlation", float(np.corrcoef(gx, gy)[0, 1]), rho, 0.05, (1 - rho**2) * math.sqrt(1 / n + 1 / m))


def test_conditional_gaussian(tmp_path: Path) -> None:
    """A | C ~ Normal(2C, 0.2 + 0.3C) with C ~ Uniform(0, 1): checked at two condition values."""
    rng = np.random.default_rng(11)
    n = 20_000
    c = rng.uniform(0, 1, n)
    a = rng.normal(2 * c, 0.2 + 0.3 * c)
    arr = np.zeros(n, dtype=[("A", "<f4"), ("C", "<f4")])
    arr["A"], arr["C"] = a, c
    np.save(tmp_path / "c.npy", arr)
    cfg = parse_config(PhaseSpaceGANConfig, {**CONFIG, "data": {"cond_keys": ["C"]}})
    model = load_model(train_phase_space(tmp_path / "c.npy", cfg, tmp_path / "run", force=True, log=lambda *_: None), device="cpu")
    m = 50_000
    # the training data has about n * 0.1 rows within +-0.05 of a condition value: the statistical floor
    n_local = n * 0.1
    for value in (0.25, 0.75):
        s = model.sample(m, cond={"C": value}, seed=2)["A"].astype(np.float64)
        mu, sigma = 2 * value, 0.2 + 0.3 * value
        _within(f"mean A | C={value} (in std)", (s.mean() - mu) / sigma, 0.0, 0.1, math.sqrt(1 / n_local + 1 / m))
        _within(f"std A | C={value} ratio", s.std() / sigma, 1.0, 0.1, math.sqrt(1 / (2 * n_local) + 1 / (2 * m)))
