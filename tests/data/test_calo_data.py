"""Built-in GFlash showers in the CaloGAN and CaloChallenge dataset-2 layouts.

Statistical checks use fixed seeds and 5-sigma bounds from the samples' own spread. The expected
mean layer fractions are Monte Carlo expectations E[P(alpha, beta t2) - P(alpha, beta t1)] over the
published (T, alpha) distribution, drawn here independently of the code under test (the average
of fractions over fluctuating showers is not the fraction of the average profile, so the table of
the reference, which is for the average profile, is checked separately in tests/physics/test_gflash.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammainc, gammaincc

from gansim.data.calo import BLOCK_SIZE, CaloShowers, make_calo_showers
from gansim.errors import ConfigError, DataError
from gansim.io.calo_geometry import CALOCHALLENGE_DS2, CALOGAN
from gansim.physics.gflash import CALOGAN_SAMPLING_MEDIUM, WSI_MEDIUM

X0, Z, EC = 15.6, 69.4, 9.3
BOUNDS_X0 = np.array([0.0, 90.0, 437.0, 480.0]) / X0


def _contained_per_layer(s: CaloShowers) -> np.ndarray:
    """(N, 3) MeV: cells + overflow of each CaloGAN layer."""
    return np.stack([layer.sum(axis=(1, 2), dtype=np.float64) for layer in s.layers], axis=1) + s.overflow


def _expected_fractions(energy_mev: float, n_draw: int = 400_000, seed: int = 99) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the e+ layer fractions over independent (T, alpha) draws.

    Homogeneous individual-shower formulas of the reference (section f), with the documented
    per-shower floors T >= 1 X0, alpha >= 1.1.
    """
    ly = math.log(energy_mev / EC)
    m_t, s_t = math.log(ly - 0.812), 1.0 / (-1.4 + 1.26 * ly)
    m_a, s_a = math.log(0.81 + (0.458 + 2.26 / Z) * ly), 1.0 / (-0.58 + 0.86 * ly)
    rho = 0.705 - 0.023 * ly
    z = np.random.default_rng(seed).standard_normal((n_draw, 2))
    c1, c2 = math.sqrt((1 + rho) / 2), math.sqrt((1 - rho) / 2)
    t = np.maximum(np.exp(m_t + s_t * (c1 * z[:, 0] + c2 * z[:, 1])), 1.0)
    a = np.maximum(np.exp(m_a + s_a * (c1 * z[:, 0] - c2 * z[:, 1])), 1.1)
    f = np.diff(gammainc(a[:, None], ((a - 1) / t)[:, None] * BOUNDS_X0[None, :]), axis=1)
    return f.mean(axis=0), f.std(axis=0) / math.sqrt(n_draw)


def test_calogan_layout_shapes_units_and_range():
    s = make_calo_showers(70, "gamma", seed=1)
    assert [x.shape for x in s.layers] == [(70, 3, 96), (70, 12, 12), (70, 12, 6)]
    assert s.overflow.shape == (70, 3) and s.energy.shape == (70,)
    assert all(x.dtype == np.float32 for x in s.layers) and s.overflow.dtype == np.float32
    assert np.all((s.energy >= 1000.0) & (s.energy <= 100_000.0))  # MeV, uniform in 1-100 GeV
    assert all(np.all(x >= 0) for x in s.layers)
    assert s.layout == "calogan" and s.geometry is CALOGAN and s.medium == "calogan" and s.particle == "gamma"
    data = s.to_shower_data()
    assert data.layout == "calogan" and len(data) == 70 and data.overflow is s.overflow


@pytest.mark.parametrize("particle", ["eplus", "gamma", "piplus"])
def test_energy_is_conserved(particle):
    """cells + overflow + longitudinal leakage (+ invisible, pi+) = E, to float rounding."""
    s = make_calo_showers(80, particle, seed=2, dtype=np.float64)
    total = _contained_per_layer(s).sum(axis=1) + s.diagnostics["leakage_MeV"] + s.diagnostics["invisible_MeV"]
    np.testing.assert_allclose(total, s.energy, rtol=1e-9)
    s32 = make_calo_showers(80, particle, seed=2)
    total32 = _contained_per_layer(s32).sum(axis=1) + s32.diagnostics["leakage_MeV"] + s32.diagnostics["invisible_MeV"]
    np.testing.assert_allclose(total32, s32.energy, rtol=1e-5)


@pytest.mark.parametrize(("energy_gev", "n"), [(1, 1500), (10, 600), (100, 150)])
def test_mean_layer_fractions_match_the_gamma_profile_integrals(energy_gev, n):
    """Sample mean of (cells + overflow) / E per layer = E[P(alpha, beta t2) - P(alpha, beta t1)], 5 sigma."""
    s = make_calo_showers(n, "eplus", seed=3 + energy_gev, energy_range_GeV=(energy_gev, energy_gev))
    frac = _contained_per_layer(s) / s.energy[:, None]
    expected, expected_err = _expected_fractions(energy_gev * 1000.0)
    sigma = np.sqrt(frac.var(axis=0, ddof=1) / n + expected_err**2)
    assert np.all(np.abs(frac.mean(axis=0) - expected) < 5 * sigma), (frac.mean(axis=0), expected, sigma)


def test_showers_are_centred_on_the_beam():
    """Energy-weighted mean x (phi, axis 1) and y (eta, axis 2) per layer = 0 within 5 sigma."""
    n = 600
    s = make_calo_showers(n, "eplus", seed=4, energy_range_GeV=(5, 20), dtype=np.float64)
    for i, layer in enumerate(CALOGAN.layers):
        img = s.layers[i]
        w = img.sum(axis=(1, 2))
        ok = w > 0
        for axis in (1, 2):
            centres = layer.centres(axis)
            proj = img.sum(axis=3 - axis)  # (n, cells along `axis`)
            c = (proj[ok] @ centres) / w[ok]
            sd = c.std(ddof=1)
            assert abs(c.mean()) <= 5 * sd / math.sqrt(ok.sum()) + 1e-9, (i, axis, c.mean(), sd)


def test_the_beam_hits_a_cell_corner():
    """The four central cells of layer 1 share the energy about equally (mean shares 1/4 +- 5 sigma)."""
    n = 400
    s = make_calo_showers(n, "eplus", seed=5, energy_range_GeV=(10, 10), dtype=np.float64)
    centre = s.layers[1][:, 5:7, 5:7].reshape(n, 4)
    share = centre / centre.sum(axis=1, keepdims=True)
    assert np.all(np.abs(share.mean(axis=0) - 0.25) < 5 * share.std(axis=0, ddof=1) / math.sqrt(n))
    assert share.mean(axis=0).min() > 0.15  # the corner, not one cell's centre


def test_pions_cross_without_interacting_at_the_expected_rate():
    """e^-1.28 (480 mm / lambda_I 375 mm) of pi+ cross without interacting, binomial 5 sigma; those
    deposit the MIP loss 0.565 MeV/mm x (90, 347, 43) mm on average (51 / 196 / 24 MeV, reference)."""
    n = 3000
    s = make_calo_showers(n, "piplus", seed=6, energy_range_GeV=(2, 3), dtype=np.float64)
    crossed = ~np.isfinite(s.diagnostics["start_depth_mm"])
    p = math.exp(-480.0 / 375.0)
    assert abs(crossed.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    dep = _contained_per_layer(s)[crossed]
    expected = (271.0 / 480.0) * np.array([90.0, 347.0, 43.0])
    assert np.all(np.abs(dep.mean(axis=0) - expected) < 5 * dep.std(axis=0, ddof=1) / math.sqrt(dep.shape[0]))
    # interacting pions leave less than their energy in the calorimeter, and layer 2 gets energy
    assert np.all(_contained_per_layer(s).sum(axis=1) < s.energy)


def test_reproducible_and_independent_of_chunking():
    kw = {"particle": "piplus", "energy_range_GeV": (1, 30), "dtype": np.float64}
    a = make_calo_showers(150, seed=7, **kw)
    b = make_calo_showers(150, seed=7, chunk=1, max_spots=1, **kw)  # one block per batch
    w = make_calo_showers(150, seed=7, workers=2, **kw)  # batches in two threads
    c = make_calo_showers(150, seed=8, **kw)
    head = make_calo_showers(BLOCK_SIZE + 5, seed=7, **kw)  # a prefix of the same data set
    for i in range(3):
        np.testing.assert_array_equal(a.layers[i], b.layers[i])
        np.testing.assert_array_equal(a.layers[i], w.layers[i])
        np.testing.assert_array_equal(a.layers[i][: BLOCK_SIZE + 5], head.layers[i])
    np.testing.assert_array_equal(a.overflow, b.overflow)
    np.testing.assert_array_equal(a.energy, b.energy)
    assert not np.array_equal(a.energy, c.energy)
    assert not np.array_equal(a.layers[1], c.layers[1])


def test_explicit_energies_and_bad_arguments():
    e = np.array([1500.0, 25_000.0, 70_000.0])
    s = make_calo_showers(3, "eplus", energies_MeV=e)
    np.testing.assert_array_equal(s.energy, e)
    empty = make_calo_showers(0, "eplus")
    assert [x.shape for x in empty.layers] == [(0, 3, 96), (0, 12, 12), (0, 12, 6)]
    with pytest.raises(ConfigError, match="energies_MeV holds 3 energies for n = 4"):
        make_calo_showers(4, "eplus", energies_MeV=e)
    with pytest.raises(DataError, match="not positive"):
        make_calo_showers(2, "eplus", energies_MeV=np.array([1000.0, -5.0]))
    with pytest.raises(ConfigError, match="layout 'calochallenge-ds1'"):
        make_calo_showers(2, "eplus", layout="calochallenge-ds1")
    with pytest.raises(ConfigError, match="particle 'proton'"):
        make_calo_showers(2, "proton")
    with pytest.raises(ConfigError, match="energy_range_GeV"):
        make_calo_showers(2, "eplus", energy_range_GeV=(10, 1))
    with pytest.raises(ConfigError, match="n = -1"):
        make_calo_showers(-1, "eplus")
    with pytest.raises(ConfigError, match="chunk"):
        make_calo_showers(2, "eplus", chunk=0)
    with pytest.raises(ConfigError, match="workers"):
        make_calo_showers(2, "eplus", workers=0)


def test_sampling_variant_response():
    """samplingEM: stored total / E = em_scale x (1 - leakage / E) on average (fluctuated), 5 sigma."""
    n = 400
    s = make_calo_showers(n, "eplus", seed=9, energy_range_GeV=(10, 10), medium="samplingEM", dtype=np.float64)
    r = _contained_per_layer(s).sum(axis=1) / s.energy
    expected = CALOGAN_SAMPLING_MEDIUM.em_scale * (1 - s.diagnostics["leakage_MeV"] / s.energy)
    d = r - expected
    assert abs(d.mean()) < 5 * d.std(ddof=1) / math.sqrt(n)
    assert d.std() > 0.5 * CALOGAN_SAMPLING_MEDIUM.em_scale * 0.11 / math.sqrt(10)  # the fluctuation is there


def test_dataset2_layout():
    """(N, 6480) MeV; voxels + lateral + longitudinal leakage = E; the 16 alpha bins share equally."""
    n = 200
    s = make_calo_showers(n, "eplus", seed=10, layout="calochallenge-ds2", energy_range_GeV=(5, 50), dtype=np.float64)
    assert s.layers[0].shape == (n, 6480) and s.overflow is None and s.showers is s.layers[0]
    assert s.geometry is CALOCHALLENGE_DS2 and s.medium == WSI_MEDIUM.name
    total = s.showers.sum(axis=1) + s.diagnostics["lateral_MeV"] + s.diagnostics["leakage_MeV"]
    np.testing.assert_allclose(total, s.energy, rtol=1e-9)
    per_alpha = s.showers.reshape(n, 45, 16, 9).sum(axis=(1, 3))
    share = per_alpha / per_alpha.sum(axis=1, keepdims=True)
    assert np.all(np.abs(share.mean(axis=0) - 1 / 16) < 5 * share.std(axis=0, ddof=1) / math.sqrt(n))
    # the W/Si medium keeps the shower in the 153 mm x 42 mm volume, as dataset 2 does
    assert np.median(s.showers.sum(axis=1) / s.energy) > 0.9
    assert s.to_shower_data().layout == "calochallenge-ds2"


def test_layouts_share_the_showers_of_a_seed():
    """Same seed and medium: the same energies and (T, alpha) in both layouts, and each layout's
    longitudinal leakage is E Q(alpha, beta depth) of those parameters (480 mm and 153 mm)."""
    n = 64
    kw = {"seed": 11, "energy_range_GeV": (1, 100), "medium": "calogan", "dtype": np.float64}
    cg = make_calo_showers(n, "eplus", layout="calogan", **kw)
    ds = make_calo_showers(n, "eplus", layout="calochallenge-ds2", **kw)
    np.testing.assert_array_equal(cg.energy, ds.energy)
    for key in ("T_X0", "alpha"):
        np.testing.assert_array_equal(cg.diagnostics[key], ds.diagnostics[key])
    a, t = cg.diagnostics["alpha"], cg.diagnostics["T_X0"]
    for s, depth in ((cg, 480.0), (ds, 45 * 3.4)):
        np.testing.assert_allclose(s.diagnostics["leakage_MeV"], s.energy * gammaincc(a, (a - 1) / t * depth / X0), rtol=1e-9)
