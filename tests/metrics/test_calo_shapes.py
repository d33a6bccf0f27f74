"""Shower-shape variables on hand-made showers, separation power and the KS statistic.

Hand values use the CaloGAN cell centres (gansim.io.calo_geometry): layer 0 axis 1 (phi) at
-160, 0, 160 mm and axis 2 (eta) at (j - 47.5) * 5 mm; layer 1 both axes at (i - 5.5) * 40 mm;
layer 2 axis 1 at (i - 5.5) * 40 mm, axis 2 at (j - 2.5) * 80 mm. CaloGAN's eps = 1e-6 MeV in the
width and E_ratio denominators moves a value by a relative ~eps / E (1e-8 here), so hand values
are compared with rtol 1e-7, and a "zero" width of a single cell at |x| is at most |x| sqrt(eps/E).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2, ks_2samp

from gansim.errors import ConfigError, DataError
from gansim.io.calo_geometry import CALOCHALLENGE_DS2, CALOGAN, CylindricalGeometry, CylindricalLayer
from gansim.metrics.calo_shapes import (
    CALOGAN_PAPER_VARIABLES,
    calochallenge_feature_vector,
    calogan_shower_shapes,
    cylindrical_shower_shapes,
    ks_statistic,
    separation_power,
)

RTOL = 1e-7


def empty_showers(n: int = 1) -> list[np.ndarray]:
    return [np.zeros((n, *layer.shape)) for layer in CALOGAN.layers]


def single_cell_shower() -> list[np.ndarray]:
    """100 MeV at layer 0 (1, 47), 300 MeV at layer 1 (5, 6), 50 MeV at layer 2 (0, 0)."""
    layers = empty_showers()
    layers[0][0, 1, 47] = 100.0
    layers[1][0, 5, 6] = 300.0
    layers[2][0, 0, 0] = 50.0
    return layers


# ----------------------------------------------------------------------------------------------
# CaloGAN set


def test_single_lit_cell_per_layer() -> None:
    s = calogan_shower_shapes(single_cell_shower(), np.array([900.0]))
    expect = {
        "e0": 100.0, "e1": 300.0, "e2": 50.0, "etot": 450.0,
        "f0": 2 / 9, "f1": 2 / 3, "f2": 1 / 9, "depth": 2.0,
        "l_d": 400.0, "s_d": 8 / 9, "sigma_sd": math.sqrt(26) / 9,  # sqrt(500/450 - (8/9)^2)
        "etot_over_einc": 0.5,
        "ec_phi_0": 0.0, "ec_eta_0": -2.5, "ec_phi_1": -20.0, "ec_eta_1": 20.0, "ec_phi_2": -220.0, "ec_eta_2": -200.0,
        "ratio_0": 1.0, "ratio_1": 1.0, "ratio_2": 1.0,
        "sparsity_0": 1 / 288, "sparsity_1": 1 / 144, "sparsity_2": 1 / 72,
        "sparsity_cc_0": 287 / 288, "sparsity_cc_1": 143 / 144, "sparsity_cc_2": 71 / 72,
        "brightest_1_0": 1.0, "brightest_2_0": 0.0, "brightest_5_2": 0.0,
    }
    for key, value in expect.items():
        np.testing.assert_allclose(s[key], [value], rtol=RTOL, atol=1e-12, err_msg=key)
    # one cell: zero width up to CaloGAN's eps (|x| sqrt(eps / E) <= 220 mm * 1.5e-4)
    for i, e in enumerate((100.0, 300.0, 50.0)):
        for axis in ("phi", "eta"):
            assert s[f"width_{axis}_{i}"][0] <= 240.0 * math.sqrt(1e-6 / e), (axis, i)
    assert all(v.shape == (1,) and v.dtype == np.float64 for v in s.values())
    assert set(CALOGAN_PAPER_VARIABLES) <= set(s)


def test_two_cells_symmetric_and_asymmetric() -> None:
    layers = empty_showers(2)
    # shower 0: equal energies at phi = -20 and +20 mm (same eta = -20 mm)
    layers[1][0, 5, 5] = 100.0
    layers[1][0, 6, 5] = 100.0
    # shower 1: 300 MeV at phi = -20, 100 MeV at phi = +20: <x> = -10, <x^2> = 400, width sqrt(300)
    layers[1][1, 5, 5] = 300.0
    layers[1][1, 6, 5] = 100.0
    s = calogan_shower_shapes(layers)
    np.testing.assert_allclose(s["ec_phi_1"], [0.0, -10.0], rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(s["width_phi_1"], [20.0, math.sqrt(300.0)], rtol=RTOL)
    np.testing.assert_allclose(s["ec_eta_1"], [-20.0, -20.0], rtol=RTOL)
    assert np.all(s["width_eta_1"] < 20.0 * math.sqrt(1e-6 / 200.0))
    np.testing.assert_allclose(s["ratio_1"], [0.0, 0.5], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(s["sparsity_1"], [2 / 144, 2 / 144])
    np.testing.assert_allclose(s["brightest_1_1"], [0.5, 0.75], rtol=RTOL)
    np.testing.assert_allclose(s["brightest_2_1"], [0.5, 0.25], rtol=RTOL)
    np.testing.assert_array_equal(s["depth"], [1.0, 1.0])
    np.testing.assert_allclose(s["s_d"], [1.0, 1.0])
    np.testing.assert_allclose(s["sigma_sd"], [0.0, 0.0], atol=1e-7)
    assert "etot_over_einc" not in s


def test_empty_layer_and_empty_shower_follow_calogan() -> None:
    layers = empty_showers(3)
    layers[0][0, 1, 40] = 10.0  # shower 0: layer 0 only
    layers[0][1, 1, 40] = 10.0  # shower 1: layers 0 and 1, layer 2 empty
    layers[1][1, 3, 3] = 30.0
    s = calogan_shower_shapes(layers)  # shower 2: empty
    np.testing.assert_array_equal(s["depth"], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(s["s_d"][:2], [0.0, 0.75])
    np.testing.assert_allclose(s["sigma_sd"][:2], [0.0, math.sqrt(0.75 - 0.75**2)])
    for key in ("width_phi_2", "width_eta_2", "ec_phi_2", "ec_eta_2", "ratio_2", "sparsity_2", "brightest_1_2"):
        np.testing.assert_array_equal(s[key], [0.0, 0.0, 0.0], err_msg=key)
    np.testing.assert_array_equal(s["sparsity_cc_2"], [1.0, 1.0, 1.0])
    assert s["etot"][2] == 0.0
    for key in ("f0", "f1", "f2", "s_d", "sigma_sd"):
        assert np.isnan(s[key][2]), key  # CaloGAN divides by etot without a guard
        assert np.all(np.isfinite(s[key][:2])), key


def test_width_phi_is_calogans_sigma_on_random_showers() -> None:
    """CaloGAN's sigma_i uses axis 1 with bin centres of linspace(-240, 240, n + 1), n = 3, 12, 12."""
    rng = np.random.default_rng(3)
    layers = [rng.exponential(1.0, (50, *layer.shape)) * (rng.random((50, *layer.shape)) < 0.3) for layer in CALOGAN.layers]
    s = calogan_shower_shapes(layers)
    for i, (img, n_phi) in enumerate(zip(layers, (3, 12, 12))):
        edges = np.linspace(-240.0, 240.0, n_phi + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        e = img.sum(axis=(1, 2)) + 1e-6
        x = (img * centres[:, None]).sum(axis=(1, 2)) / e
        x2 = (img * centres[:, None] ** 2).sum(axis=(1, 2)) / e
        np.testing.assert_allclose(s[f"width_phi_{i}"], np.sqrt(x2 - x * x), rtol=1e-10)
        top = -np.sort(-img.reshape(50, -1), axis=1)
        np.testing.assert_allclose(s[f"ratio_{i}"], (top[:, 0] - top[:, 1]) / (1e-6 + top[:, 0] + top[:, 1]), rtol=1e-12)


def test_threshold_mapping_input_and_errors() -> None:
    layers = single_cell_shower()
    layers[1][0, 0, 0] = 0.005  # below a 0.01 MeV cut
    cut = calogan_shower_shapes(layers, threshold=0.01)
    np.testing.assert_allclose(cut["e1"], [300.0])
    np.testing.assert_allclose(cut["sparsity_1"], [1 / 144])
    named = calogan_shower_shapes({layer.name: arr for layer, arr in zip(CALOGAN.layers, layers)})
    plain = calogan_shower_shapes(layers)
    assert named.keys() == plain.keys() and all(np.array_equal(named[k], plain[k]) for k in plain)
    with pytest.raises(DataError, match="layer_1"):
        calogan_shower_shapes([layers[0], np.zeros((1, 12, 6)), layers[2]])
    bad = single_cell_shower()
    bad[2][0, 1, 1] = np.nan
    with pytest.raises(DataError, match="layer_2"):
        calogan_shower_shapes(bad)
    with pytest.raises(DataError, match="incident energ"):
        calogan_shower_shapes(layers, np.array([-1.0]))
    with pytest.raises(DataError, match="3 layers"):
        calogan_shower_shapes(layers[:2])
    with pytest.raises(ConfigError, match="threshold"):
        calogan_shower_shapes(layers, threshold=-1.0)


# ----------------------------------------------------------------------------------------------
# CaloChallenge set

#: layer 0: 4 alpha bins x r bins [0, 2], [2, 6] mm (r centres 1, 4); layer 1: r only, [0, 10] mm.
TINY = CylindricalGeometry("tiny", (CylindricalLayer((0.0, 2.0, 6.0), 4), CylindricalLayer((0.0, 10.0), 1)))
# CaloChallenge's alpha centres: -pi + (k + 1/2) pi / 2 = -3pi/4, -pi/4, pi/4, 3pi/4; voxel = 2 alpha + r


def test_cylindrical_hand_made() -> None:
    showers = np.zeros((3, TINY.n_cells))
    showers[0, 2 * 2 + 1] = 50.0  # alpha pi/4, r = 4: eta = phi = 2 sqrt 2
    showers[1, 2 * 2 + 0] = 10.0  # alpha pi/4, r = 1
    showers[1, 2 * 0 + 0] = 10.0  # alpha -3pi/4, r = 1: opposite, so centre 0
    showers[1, 8] = 5.0  # layer 1
    s = cylindrical_shower_shapes(showers, np.array([100.0, 50.0, 10.0]), TINY)
    np.testing.assert_allclose(s["e0"], [50.0, 20.0, 0.0])
    np.testing.assert_allclose(s["e1"], [0.0, 5.0, 0.0])
    np.testing.assert_allclose(s["etot"], [50.0, 25.0, 0.0])
    np.testing.assert_allclose(s["etot_over_einc"], [0.5, 0.5, 0.0])
    r2 = 2.0 * math.sqrt(2.0)
    np.testing.assert_allclose(s["ec_eta_0"], [r2, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s["ec_phi_0"], [r2, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s["width_eta_0"], [0.0, 1 / math.sqrt(2.0), 0.0], atol=1e-6)
    np.testing.assert_allclose(s["width_phi_0"], [0.0, 1 / math.sqrt(2.0), 0.0], atol=1e-6)
    np.testing.assert_allclose(s["ec_r_0"], [4.0, 1.0, 0.0])
    np.testing.assert_allclose(s["width_r_0"], [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(s["ec_r_1"], [0.0, 5.0, 0.0])
    np.testing.assert_allclose(s["sparsity_cc_0"], [7 / 8, 6 / 8, 1.0])
    np.testing.assert_allclose(s["sparsity_cc_1"], [1.0, 0.0, 1.0])
    assert "ec_eta_1" not in s and "width_phi_1" not in s  # r-only layer, as CaloChallenge


def test_ds2_alpha_origin_and_shapes() -> None:
    """CaloChallenge's first alpha bin is centred at -pi + pi/16: eta < 0 there."""
    n_l, n_a, n_r = CALOCHALLENGE_DS2.regular_shape()
    showers = np.zeros((1, n_l, n_a, n_r))
    showers[0, 0, 0, 0] = 1.0
    s = cylindrical_shower_shapes(showers, None, CALOCHALLENGE_DS2)
    alpha = -math.pi + math.pi / 16
    np.testing.assert_allclose(s["ec_eta_0"], [2.325 * math.cos(alpha)], rtol=1e-12)
    np.testing.assert_allclose(s["ec_phi_0"], [2.325 * math.sin(alpha)], rtol=1e-12)
    flat = cylindrical_shower_shapes(showers.reshape(1, -1), None, CALOCHALLENGE_DS2)
    assert all(np.array_equal(flat[k], s[k]) for k in s)
    matrix, names = calochallenge_feature_vector(s, np.array([1000.0]))
    assert matrix.shape == (1, 1 + 45 + 4 * 45 + 1 + 45 + 2 * 45) == (1, len(names))
    with pytest.raises(DataError, match="6480"):
        cylindrical_shower_shapes(np.zeros((2, 100)), None, CALOCHALLENGE_DS2)


def test_feature_vector_order_and_values() -> None:
    showers = np.zeros((1, TINY.n_cells))
    showers[0, 5] = 50.0
    showers[0, 8] = 5.0
    s = cylindrical_shower_shapes(showers, None, TINY)
    matrix, names = calochallenge_feature_vector(s, np.array([[100.0]]))
    assert names == [
        "log10_einc", "log10_e0", "log10_e1", "ec_eta_0/100", "ec_phi_0/100", "width_eta_0/100", "width_phi_0/100",
        "log10_etot", "sparsity_cc_0", "sparsity_cc_1", "ec_r_0/100", "ec_r_1/100", "width_r_0/100", "width_r_1/100",
    ]
    r2 = 2.0 * math.sqrt(2.0)
    expect = [2.0, math.log10(50 + 1e-8), math.log10(5 + 1e-8), r2 / 100, r2 / 100, 0.0, 0.0,
              math.log10(55 + 1e-8), 7 / 8, 0.0, 0.04, 0.05, 0.0, 0.0]
    np.testing.assert_allclose(matrix[0], expect, rtol=1e-12, atol=1e-8)
    cg, cg_names = calochallenge_feature_vector(calogan_shower_shapes(single_cell_shower()), np.array([900.0]))
    assert cg.shape == (1, 1 + 3 + 12 + 1 + 3) and "ec_eta_2/100" in cg_names and not any("_r_" in n for n in cg_names)


def test_threshold_chunks_and_float32_cylindrical(monkeypatch: pytest.MonkeyPatch) -> None:
    showers = np.zeros((1, TINY.n_cells))
    showers[0, 0] = 0.01
    showers[0, 1] = 1.0
    s = cylindrical_shower_shapes(showers, None, TINY, threshold=0.01515)
    np.testing.assert_allclose(s["e0"], [1.0])
    np.testing.assert_allclose(s["sparsity_cc_0"], [7 / 8])
    many = np.random.default_rng(4).exponential(size=(7, TINY.n_cells)).astype(np.float32)
    whole = cylindrical_shower_shapes(many, np.ones(7), TINY)
    monkeypatch.setattr("gansim.metrics.calo_shapes._CHUNK_ROWS", 3)
    chunked = cylindrical_shower_shapes(many, np.ones(7), TINY)
    assert whole.keys() == chunked.keys()
    for key in whole:  # equal up to BLAS summation order, which depends on the chunk's size
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert all(v.dtype == np.float64 and v.shape == (7,) for v in chunked.values())
    many[5, 2] = np.nan
    with pytest.raises(DataError, match="tiny"):
        cylindrical_shower_shapes(many, None, TINY)


# ----------------------------------------------------------------------------------------------
# separation power and KS


def test_separation_power_limits_and_hand_values() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    assert separation_power(x, x) == 0.0
    assert separation_power(x, x + 100.0) == pytest.approx(1.0)  # out of the reference's range
    assert separation_power(x, x + 100.0, np.linspace(-10, 110, 50)) == pytest.approx(1.0)
    edges = np.array([-0.5, 0.5, 1.5])
    # h1 = (1/2, 1/2), h2 = (1/4, 3/4): 1/2 (1/16 / (3/4) + 1/16 / (5/4)) = 1/15
    assert separation_power([0, 0, 1, 1], [0, 1, 1, 1], edges) == pytest.approx(1 / 15)
    # half the generated sample above the edges: counted in the overflow bin...
    assert separation_power([0, 1], [0, 5], edges) == pytest.approx(0.5)
    # ...or dropped and the rest renormalised, as CaloChallenge's plt.hist(density=True)
    assert separation_power([0, 1], [0, 5], edges, overflow=False) == pytest.approx(0.5 * (0.25 / 1.5 + 0.25 / 0.5))
    assert separation_power([0.0, 1.0], [np.nan, np.nan]) == pytest.approx(1.0)


def test_separation_power_same_distribution_is_chi2() -> None:
    """Equal sizes n: 2 n S = sum (c1 - c2)^2 / (c1 + c2), the homogeneity chi^2 with K - 1 dof."""
    n, k = 20_000, 20
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=n), rng.normal(size=n)
    stat = 2 * n * separation_power(a, b, np.linspace(-4.0, 4.0, k + 1))
    lo, hi = chi2.isf(1 - 1e-7, k - 1), chi2.isf(1e-7, k - 1)  # two-sided p = 1e-7 each
    assert lo < stat < hi


def test_separation_power_quantile_bins_and_errors() -> None:
    x = np.random.default_rng(1).exponential(size=1001)
    assert separation_power(x, x, 10, binning="quantile") == 0.0
    assert separation_power(x, x + 1e3, 10, binning="quantile") == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        separation_power(x, x, 10, binning="log")
    with pytest.raises(ConfigError):
        separation_power(x, x, np.array([1.0, 0.0]))
    with pytest.raises(DataError):
        separation_power([], x)


def test_ks_statistic() -> None:
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([1, 2, 3], [10, 20]) == 1.0
    assert ks_statistic([1, 2, 3], [2, 3, 4]) == pytest.approx(1 / 3)
    rng = np.random.default_rng(5)
    a = rng.integers(0, 20, 700).astype(float)  # ties
    b = rng.integers(2, 22, 500).astype(float)
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    with pytest.raises(DataError):
        ks_statistic([1.0, np.nan], [1.0])
