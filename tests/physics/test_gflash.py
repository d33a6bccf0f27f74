"""GFlash parameterisation and spot sampler against the reference numbers and analytic results.

Reference: ``../shared/reference/calogan.md`` sections (a) and (f). Statistical checks use fixed
seeds and 5-sigma bounds from the sample's own spread; the formulas the expectations need are
written out here again from the reference, not taken from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammainc

from gansim.errors import ConfigError, DataError
from gansim.physics.gflash import (
    CALOGAN_MEDIUM,
    CALOGAN_SAMPLING_MEDIUM,
    LEAD,
    LIQUID_ARGON,
    SILICON,
    TUNGSTEN,
    WSI_MEDIUM,
    DepthGrid,
    RandomStreams,
    draw_longitudinal,
    effective_medium,
    gamma_fraction,
    get_medium,
    mean_profile,
    normalise_particle,
    pion_em_fraction,
    radial_cdf,
    radial_parameters,
    radius_from_uniforms,
    simulate_showers,
    spot_count,
)

X0, RM, Z, EC = 15.6, 35.5, 69.4, 9.3
CALOGAN_BOUNDS_X0 = np.array([0.0, 90.0, 437.0, 480.0]) / X0


def _deep_grid(depth_x0: float = 60.0) -> DepthGrid:
    """One readout layer deep enough to hold the whole shower (no longitudinal leakage)."""
    return DepthGrid.from_boundaries([0.0, depth_x0 * X0], 0.1 * X0)


# ---------------------------------------------------------------------------------------------
# media


def test_effective_medium_reproduces_the_calogan_numbers():
    """2 mm Pb + 4 mm LAr gives the reference's effective medium (section a) within its rounding."""
    m = effective_medium("pb-lar", [(LEAD, 2.0), (LIQUID_ARGON, 4.0)], active=1)
    assert m.Z == pytest.approx(69.4, abs=0.05)
    assert m.X0 == pytest.approx(15.6, abs=0.05)
    assert m.R_M == pytest.approx(35.5, abs=0.05)
    assert m.E_c == pytest.approx(9.3, abs=0.05)
    assert m.lambda_I == pytest.approx(375.0, abs=0.5)
    assert m.mip_dEdx * 480.0 == pytest.approx(271.0, abs=0.5)
    assert m.F_S == pytest.approx(2.60, abs=0.005)
    assert m.e_hat == pytest.approx(0.691, abs=0.0005)
    # per-layer MIP losses of the reference table: 51 / 196 / 24 MeV over 90 / 347 / 43 mm
    for depth, loss in [(90.0, 51.0), (347.0, 196.0), (43.0, 24.0)]:
        assert m.mip_dEdx * depth == pytest.approx(loss, abs=0.5)


def test_named_media():
    assert (CALOGAN_MEDIUM.Z, CALOGAN_MEDIUM.X0, CALOGAN_MEDIUM.R_M, CALOGAN_MEDIUM.E_c) == (69.4, 15.6, 35.5, 9.3)
    assert CALOGAN_MEDIUM.stochastic_term == 0.0 and CALOGAN_MEDIUM.em_scale == 1.0
    s = CALOGAN_SAMPLING_MEDIUM
    assert s.sampling and (s.F_S, s.e_hat, s.stochastic_term) == (2.60, 0.691, 0.11)
    # LAr share of a MIP's loss x e/mip x 5 (the samplingEM files' scale)
    assert s.em_scale == pytest.approx(5 * s.mip_fraction * 0.691)
    assert s.mip_fraction == pytest.approx(0.249, abs=0.001)
    wsi = effective_medium("w-si", [(TUNGSTEN, 1.4), (SILICON, 0.3)])
    assert WSI_MEDIUM.X0 == pytest.approx(wsi.X0) and 4.0 < WSI_MEDIUM.X0 < 4.5 and 10.0 < WSI_MEDIUM.R_M < 12.0
    assert get_medium("SamplingEM") is CALOGAN_SAMPLING_MEDIUM and get_medium("ds2") is WSI_MEDIUM
    with pytest.raises(ConfigError, match="medium 'lead glass'"):
        get_medium("lead glass")
    with pytest.raises(ConfigError, match="X0"):
        type(CALOGAN_MEDIUM)("bad", Z=10.0, X0=-1.0, R_M=1.0, E_c=1.0, lambda_I=1.0, mip_dEdx=1.0)


def test_particles_and_bad_inputs():
    assert normalise_particle("e+") == "eplus" and normalise_particle("Photon") == "gamma" and normalise_particle("pi+") == "piplus"
    with pytest.raises(ConfigError, match="particle 'neutron'"):
        normalise_particle("neutron")
    grid = _deep_grid(5.0)
    with pytest.raises(DataError, match="not positive"):
        simulate_showers(np.array([1000.0, -1.0]), "eplus", "calogan", grid, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="Generator"):
        simulate_showers(np.array([1000.0]), "eplus", "calogan", grid, 42)
    with pytest.raises(ConfigError, match="boundaries"):
        DepthGrid.from_boundaries([0.0, 10.0, 5.0], 1.0)


def test_calogan_depth_steps_align_with_layers():
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    assert np.bincount(grid.step_layer).tolist() == [58, 223, 28]
    assert np.all(np.diff(grid.edges) <= 0.1 * X0 + 1e-12)
    assert grid.edges[58] == pytest.approx(90.0) and grid.edges[281] == pytest.approx(437.0) and grid.depth == 480.0


# ---------------------------------------------------------------------------------------------
# longitudinal profile


def _table_fractions(energy_gev: float, photon: bool) -> np.ndarray:
    """Layer fractions of the *average* profile (recalled formulas T = ln y - 0.858,
    alpha = 0.21 + (0.492 + 2.38/Z) ln y), for photons averaged over t0 ~ Exp(9/7) by quadrature."""
    t, a = mean_profile(np.array([energy_gev * 1000.0]), CALOGAN_MEDIUM)
    ly = math.log(energy_gev * 1000.0 / EC)
    assert t[0] == pytest.approx(ly - 0.858) and a[0] == pytest.approx(0.21 + (0.492 + 2.38 / Z) * ly)
    beta = (a[0] - 1.0) / t[0]
    if not photon:
        return np.diff(gammainc(a[0], beta * CALOGAN_BOUNDS_X0))
    t0, w = np.polynomial.laguerre.laggauss(80)  # integral of e^-x g(x), x = t0 / (9/7)
    f = gammainc(a[0], beta * np.clip(CALOGAN_BOUNDS_X0[None, :] - (9.0 / 7.0) * t0[:, None], 0.0, None))
    return w @ np.diff(f, axis=1)


@pytest.mark.parametrize(
    ("energy_gev", "photon", "f0", "f2", "f2_tol"),
    [(1, False, 0.55, 2e-4, 0.5e-4), (10, False, 0.31, 5e-4, 0.5e-4), (100, False, 0.14, 1.7e-3, 0.05e-3),
     (10, True, 0.20, 9e-4, 0.5e-4), (100, True, 0.08, 3e-3, 0.5e-3)],
)
def test_mean_profile_reproduces_the_reference_table(energy_gev, photon, f0, f2, f2_tol):
    """The table of section (f) (average profile), within its rounding (half a unit of the last digit)."""
    f = _table_fractions(energy_gev, photon)
    assert f[0] == pytest.approx(f0, abs=0.005)
    assert f[2] == pytest.approx(f2, abs=f2_tol)


def test_longitudinal_draws_have_the_published_moments():
    """ln T, ln alpha: means, widths and correlation of section (f) ("Individual showers"), 5 sigma."""
    n, e = 200_000, 10_000.0
    t, a = draw_longitudinal(np.full(n, e), CALOGAN_MEDIUM, np.random.default_rng(1).standard_normal((n, 2)))
    ly = math.log(e / EC)
    expected = {
        "mT": math.log(ly - 0.812), "sT": 1.0 / (-1.4 + 1.26 * ly),
        "ma": math.log(0.81 + (0.458 + 2.26 / Z) * ly), "sa": 1.0 / (-0.58 + 0.86 * ly), "rho": 0.705 - 0.023 * ly,
    }
    lt, la = np.log(t), np.log(a)
    assert abs(lt.mean() - expected["mT"]) < 5 * expected["sT"] / math.sqrt(n)
    assert abs(la.mean() - expected["ma"]) < 5 * expected["sa"] / math.sqrt(n)
    assert abs(lt.std() / expected["sT"] - 1.0) < 5 / math.sqrt(2 * n)
    assert abs(la.std() / expected["sa"] - 1.0) < 5 / math.sqrt(2 * n)
    assert abs(np.corrcoef(lt, la)[0, 1] - expected["rho"]) < 5 * (1 - expected["rho"] ** 2) / math.sqrt(n)


def test_spot_count_matches_the_reference():
    # ~3,000 spots at 10 GeV (section f); the sampling formula (10.3 / c) E^0.959
    assert spot_count(np.array([10_000.0]), CALOGAN_MEDIUM)[0] == pytest.approx(93 * math.log(69.4) * 10**0.876)
    assert 2_900 < spot_count(np.array([10_000.0]), CALOGAN_MEDIUM)[0] < 3_000
    assert spot_count(np.array([1000.0]), CALOGAN_SAMPLING_MEDIUM)[0] == pytest.approx(10.3 / 0.11)


def test_energy_is_conserved_per_shower():
    """Spots + longitudinal leakage (+ invisible for pi+) = E, to rounding (no fluctuation in 'calogan')."""
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    e = np.array([1000.0, 5000.0, 20_000.0, 80_000.0, 1500.0, 60_000.0])
    for particle in ("eplus", "gamma", "piplus"):
        s = simulate_showers(e, particle, CALOGAN_MEDIUM, grid, np.random.default_rng(3))
        deposited = np.bincount(s.spots.event, weights=s.spots.energy, minlength=e.size)
        total = deposited + s.diagnostics["leakage_MeV"] + s.diagnostics["invisible_MeV"]
        np.testing.assert_allclose(total, e, rtol=1e-9)
        assert np.all(s.spots.energy >= 0)


def test_layer_energies_follow_each_showers_profile():
    """Per shower, the energy of each readout layer is E [P(alpha, beta (t2 - t0)) - P(alpha, beta (t1 - t0))]
    with that shower's own T, alpha (diagnostics) and start depth."""
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    e = np.linspace(1000.0, 100_000.0, 12)
    for particle in ("eplus", "gamma"):
        s = simulate_showers(e, particle, CALOGAN_MEDIUM, grid, np.random.default_rng(4))
        layer = grid.step_layer[s.spots.step]
        got = np.zeros((e.size, 3))
        np.add.at(got, (s.spots.event, layer), s.spots.energy)
        d = s.diagnostics
        beta = (d["alpha"] - 1.0) / d["T_X0"]
        t0 = d["start_depth_mm"] / X0
        p = gammainc(d["alpha"][:, None], beta[:, None] * np.clip(CALOGAN_BOUNDS_X0[None, :] - t0[:, None], 0, None))
        np.testing.assert_allclose(got, e[:, None] * np.diff(p, axis=1), rtol=1e-9, atol=1e-9)
    # P(alpha, beta t) is 0 before the start
    assert gamma_fraction(np.array([3.0]), np.array([0.5]), np.array([-2.0]))[0] == 0.0
    assert gamma_fraction(np.array([3.0]), np.array([0.5]), np.array([4.0]))[0] == pytest.approx(gammainc(3.0, 2.0))


def test_photons_start_deeper_by_nine_sevenths_x0():
    """Energy-weighted mean depth: gamma minus e+ = 9/7 X0 (same E, no leakage), within 5 sigma."""
    n, grid = 600, _deep_grid(60.0)
    depth = {}
    for particle, seed in (("eplus", 5), ("gamma", 6)):
        s = simulate_showers(np.full(n, 10_000.0), particle, CALOGAN_MEDIUM, grid, np.random.default_rng(seed))
        w = np.bincount(s.spots.event, weights=s.spots.energy, minlength=n)
        depth[particle] = np.bincount(s.spots.event, weights=s.spots.energy * s.spots.z, minlength=n) / w
    diff = depth["gamma"].mean() - depth["eplus"].mean()
    sigma = math.sqrt(depth["gamma"].var(ddof=1) / n + depth["eplus"].var(ddof=1) / n)
    assert abs(diff - 9.0 / 7.0 * X0) < 5 * sigma
    assert sigma < 0.2 * X0  # the test can tell 9/7 X0 from 0


def test_sampling_fluctuation_makes_the_total_gamma_distributed():
    """samplingEM: the contained total / em_scale is Gamma(E/c^2, c^2) (E, c^2 in GeV): mean E and
    relative width 0.11 / sqrt(E/GeV); mean and variance within 5 sigma."""
    n, e, c = 1500, 10_000.0, 0.11
    s = simulate_showers(np.full(n, e), "eplus", CALOGAN_SAMPLING_MEDIUM, _deep_grid(60.0), np.random.default_rng(7))
    total = np.bincount(s.spots.event, weights=s.spots.energy, minlength=n) / CALOGAN_SAMPLING_MEDIUM.em_scale
    contained = e - s.diagnostics["leakage_MeV"]
    assert s.diagnostics["leakage_MeV"].max() < 1e-3 * e  # leakage is not fluctuated: compare the contained part
    var = c**2 * (contained / 1000.0) * 1000.0**2  # MeV^2
    assert abs((total - contained).mean()) < 5 * math.sqrt(var.mean() / n)
    ratio = ((total - contained) ** 2 / var).mean()  # 1 in expectation, sd sqrt(2/n) (near-normal)
    assert abs(ratio - 1.0) < 5 * math.sqrt(2.0 / n)


# ---------------------------------------------------------------------------------------------
# radial profile


def test_radial_parameters_match_the_reference_values():
    """At tau = 1 and 10 GeV: R_C ~ 4.3 mm, R_T ~ 25 mm, p ~ 0.88 (section f, rounded)."""
    r_c, r_t, p = radial_parameters(np.array([10_000.0]), np.array([1.0]), CALOGAN_MEDIUM)
    assert r_c[0] * RM == pytest.approx(4.3, abs=0.05)
    assert r_t[0] * RM == pytest.approx(25.0, abs=0.5)
    assert p[0] == pytest.approx(0.88, abs=0.005)
    # the sampling corrections move them, and p stays a probability
    r_c2, r_t2, p2 = radial_parameters(np.full(50, 10_000.0), np.linspace(0, 5, 50), CALOGAN_SAMPLING_MEDIUM)
    assert np.all((p2 >= 0) & (p2 <= 1)) and np.all(r_c2 > 0) and np.all(r_t2 > 0)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_sampled_radii_follow_the_analytic_mixture(tau):
    """Empirical CDF of sampled radii = p r^2/(r^2+R_C^2) + (1-p) r^2/(r^2+R_T^2), binomial 5 sigma."""
    n = 200_000
    r_c, r_t, p = radial_parameters(np.array([10_000.0]), np.array([tau]), CALOGAN_MEDIUM)
    u = np.random.default_rng(8).random((2, n))
    r = radius_from_uniforms(u[0], u[1], r_c[0], r_t[0], p[0])
    for x in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0):
        cdf = p[0] * x**2 / (x**2 + r_c[0] ** 2) + (1 - p[0]) * x**2 / (x**2 + r_t[0] ** 2)
        assert radial_cdf(np.array([x]), r_c, r_t, p)[0] == pytest.approx(cdf)
        got = np.mean(r <= x)
        assert abs(got - cdf) < 5 * math.sqrt(cdf * (1 - cdf) / n) + 1e-12


def test_radial_containment_in_showers():
    """Energy within 1 R_M of the axis in full 10 GeV showers equals, shower by shower, the analytic
    mixture integrated over that shower's profile (5 sigma on the paired differences); about 90 %."""
    n, e, grid = 300, 10_000.0, _deep_grid(60.0)
    s = simulate_showers(np.full(n, e), "eplus", CALOGAN_MEDIUM, grid, np.random.default_rng(9))
    r = np.hypot(s.spots.x.astype(np.float64), s.spots.y.astype(np.float64))
    inside = np.bincount(s.spots.event, weights=s.spots.energy * (r <= RM), minlength=n) / e
    # expectation per shower: sum over fine depth bins of dP * C(1 R_M; tau), tau as Geant4 defines it
    t_grid = np.linspace(0.0, 60.0, 6001)
    t_mid = 0.5 * (t_grid[1:] + t_grid[:-1])
    ly = math.log(e / EC)
    a_mean = 0.81 + (0.458 + 2.26 / Z) * ly
    alpha, t_max = s.diagnostics["alpha"], s.diagnostics["T_X0"]
    beta = (alpha - 1.0) / t_max
    dp = np.diff(gammainc(alpha[:, None], beta[:, None] * t_grid[None, :]), axis=1)
    tau = t_mid[None, :] * (alpha[:, None] - 1.0) / (alpha[:, None] * t_max[:, None]) * a_mean / (a_mean - 1.0)
    r_c, r_t, p = radial_parameters(np.full(tau.shape, e), tau, CALOGAN_MEDIUM)
    expected = np.sum(dp * radial_cdf(1.0, r_c, r_t, p), axis=1)
    d = inside - expected
    assert abs(d.mean()) < 5 * d.std(ddof=1) / math.sqrt(n)
    assert 0.85 < expected.mean() < 0.95  # "90 % of the energy within one Moliere radius"


def test_spots_are_symmetric_about_the_axis():
    n = 400
    s = simulate_showers(np.full(n, 10_000.0), "gamma", CALOGAN_MEDIUM, _deep_grid(40.0), np.random.default_rng(10))
    w = np.bincount(s.spots.event, weights=s.spots.energy, minlength=n)
    for coord in (s.spots.x, s.spots.y):
        c = np.bincount(s.spots.event, weights=s.spots.energy * coord, minlength=n) / w
        assert abs(c.mean()) < 5 * c.std(ddof=1) / math.sqrt(n)


# ---------------------------------------------------------------------------------------------
# pi+ and reproducibility


def test_pion_em_fraction_form():
    f = pion_em_fraction(np.array([500.0, 10_000.0, 100_000.0]))
    assert f[0] == 0.05  # clipped below E0
    assert f[1] == pytest.approx(1 - 10 ** (-0.18)) and f[2] == pytest.approx(1 - 100 ** (-0.18))


def test_pion_interaction_depth_and_mip_track():
    """e^-(480/375) of pi+ cross without interacting; before the interaction the track deposits
    dE/dx x path on average (Landau-like per step): both within 5 sigma."""
    n = 4000
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    s = simulate_showers(np.full(n, 2000.0), "piplus", CALOGAN_MEDIUM, grid, np.random.default_rng(11))
    crossed = ~np.isfinite(s.diagnostics["start_depth_mm"])
    p = math.exp(-480.0 / 375.0)
    assert abs(crossed.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    mip = s.diagnostics["mip_MeV"][crossed]
    assert abs(mip.mean() - CALOGAN_MEDIUM.mip_dEdx * 480.0) < 5 * mip.std(ddof=1) / math.sqrt(mip.size)
    # the interacting ones lose dE/dx x depth before the interaction, on average
    z = s.diagnostics["start_depth_mm"][~crossed]
    excess = s.diagnostics["mip_MeV"][~crossed] - CALOGAN_MEDIUM.mip_dEdx * z
    assert abs(excess.mean()) < 5 * excess.std(ddof=1) / math.sqrt(excess.size)


def test_simulation_is_reproducible_for_a_seed():
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    e = np.array([3000.0, 30_000.0])
    for particle in ("gamma", "piplus"):
        a = simulate_showers(e, particle, CALOGAN_MEDIUM, grid, np.random.default_rng(12))
        b = simulate_showers(e, particle, CALOGAN_MEDIUM, grid, np.random.default_rng(12))
        c = simulate_showers(e, particle, CALOGAN_MEDIUM, grid, np.random.default_rng(13))
        for key in ("x", "y", "z", "energy"):
            np.testing.assert_array_equal(getattr(a.spots, key), getattr(b.spots, key))
        assert len(a.spots) != len(c.spots) or not np.array_equal(a.spots.x, c.spots.x)


def test_block_streams_do_not_depend_on_batching():
    """RandomStreams: the same showers whether simulated as one batch or as two batches of whole blocks."""
    grid = DepthGrid.from_boundaries([0.0, 90.0, 437.0, 480.0], 0.1 * X0)
    e = np.linspace(1000.0, 5000.0, 8)
    whole = simulate_showers(e, "piplus", CALOGAN_MEDIUM, grid, RandomStreams(seed=3, n=8, block_size=4))
    first = simulate_showers(e[:4], "piplus", CALOGAN_MEDIUM, grid, RandomStreams(seed=3, n=4, block_size=4))
    second = simulate_showers(e[4:], "piplus", CALOGAN_MEDIUM, grid, RandomStreams(seed=3, n=4, first_block=1, block_size=4))
    split = np.concatenate([first.spots.energy, second.spots.energy])
    np.testing.assert_array_equal(whole.spots.energy, split)
    np.testing.assert_array_equal(whole.diagnostics["start_depth_mm"],
                                  np.concatenate([first.diagnostics["start_depth_mm"], second.diagnostics["start_depth_mm"]]))
    with pytest.raises(ConfigError, match="seed"):
        RandomStreams(seed=-1, n=2)
