"""Cross-section tables: NIST reference values, mixture rule, switches, majorant, angular data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xraydb

from gansim.errors import ConfigError
from gansim.physics.cross_sections import (
    HC,
    CrossSectionTables,
    elam_cross_section,
    form_factor,
    incoherent_scattering_function,
    material_mass_coefficients,
)
from gansim.physics.interactions import CLASSICAL_ELECTRON_RADIUS, klein_nishina_dcs, klein_nishina_total
from gansim.physics.materials import NAMED_MATERIALS, get_material, mixture
from gansim.units import keV

WATER = get_material("G4_WATER")
LEAD = get_material("G4_Pb")


@pytest.fixture(scope="module")
def all_tables():
    return CrossSectionTables(list(NAMED_MATERIALS.values()))


@pytest.fixture(scope="module")
def water_isf():
    return CrossSectionTables([WATER, LEAD], incoherent_scattering_function=True)


def _mu_cm2_g(tables, index, energies_mev):
    e = torch.tensor(energies_mev, dtype=torch.float32)
    m = torch.full(e.shape, index, dtype=torch.long)
    return (tables.mu_total(m, e) * 10).double().numpy()  # mm^-1 per g/cm3 -> cm^2/g


# NIST X-ray mass attenuation coefficients of liquid water (Hubbell & Seltzer, NISTIR 5632,
# computed with XCOM; total with coherent scattering), cm^2/g. 140.5 and 511 keV are log-log
# interpolated from the 100/150 and 500/600 keV entries (0.1707/0.1505, 0.09687/0.08956): the
# curvature error of that interpolation is 0.03 % (measured on xraydb's own curve).
NIST_WATER = {100.0: 0.1707, 140.5: 0.15359, 150.0: 0.1505, 200.0: 0.1370, 300.0: 0.1186, 500.0: 0.09687, 511.0: 0.09597,
              600.0: 0.08956, 800.0: 0.07865, 1000.0: 0.07072, 1250.0: 0.06323, 1500.0: 0.05754}


def test_water_vs_nist_with_scattering_function(water_isf):
    # Elam's scattering data and XCOM both come from Hubbell's compilations (measured agreement at
    # the tabulated energies: 0.03 %); above 800 keV ours is the documented power-law /
    # Klein-Nishina continuation, and XCOM's pair production is < 0.1 % of water's total up to
    # 1.5 MeV. A 1 % bound covers these with margin while failing any unit or mixing error.
    energies = np.array(sorted(NIST_WATER))
    ours = _mu_cm2_g(water_isf, 0, energies * keV)
    ref = np.array([NIST_WATER[e] for e in energies])
    np.testing.assert_allclose(ours, ref, rtol=0.01)


def test_water_vs_nist_klein_nishina(all_tables):
    # Without the scattering function, Compton is free-electron Klein-Nishina: above XCOM by the
    # neglected binding, +0.7 % at 140.5 keV (oxygen), < 0.1 % at 511 keV. Bound 1.5 % at 140.5.
    ours = _mu_cm2_g(all_tables, list(NAMED_MATERIALS).index("G4_WATER"), [140.5 * keV, 511 * keV])
    assert ours[0] == pytest.approx(NIST_WATER[140.5], rel=0.015)
    assert ours[0] > NIST_WATER[140.5]
    assert ours[1] == pytest.approx(NIST_WATER[511.0], rel=0.01)


def test_klein_nishina_column_is_kn_times_electrons(all_tables):
    e = np.array([5, 30, 140.5, 364, 511, 1500]) * keV
    i = list(NAMED_MATERIALS).index("G4_BONE_CORTICAL_ICRP")
    mu = all_tables.mu(torch.full((e.size,), i), torch.tensor(e, dtype=torch.float32))[:, 1].double().numpy()
    kn = klein_nishina_total(torch.tensor(e)).numpy()  # mm^2 per electron
    per_mm = kn * NAMED_MATERIALS["G4_BONE_CORTICAL_ICRP"].electrons_per_gram() / 1000.0  # electrons per cm3 -> per mm3 at 1 g/cm3
    np.testing.assert_allclose(mu, per_mm, rtol=2e-4)


def test_interpolation_matches_elam_off_grid(water_isf):
    rng = np.random.default_rng(3)
    e = np.exp(rng.uniform(np.log(2 * keV), np.log(0.8), 400))
    ours = water_isf.mu(torch.zeros(e.size, dtype=torch.long), torch.tensor(e, dtype=torch.float32)).double().numpy() * 10
    e32 = torch.tensor(e, dtype=torch.float32).double().numpy()
    ref = material_mass_coefficients(WATER, e32, incoherent_scattering_function=True).T
    np.testing.assert_allclose(ours, ref, rtol=1e-3)


def test_edge_smeared_over_one_grid_step(water_isf):
    # Pb K edge (88.0 keV): one grid cell is 10^(1/400) - 1 = 0.58 % wide, so 0.6 % below and above
    # the edge the table is back on the smooth Elam curve of each side.
    edge = xraydb.xray_edge("Pb", "K").energy * 1e-6
    e = np.array([edge * 0.994, edge * 1.006])
    ours = water_isf.mu(torch.ones(2, dtype=torch.long), torch.tensor(e, dtype=torch.float32))[:, 0].double().numpy() * 10
    ref = elam_cross_section("Pb", torch.tensor(e, dtype=torch.float32).double().numpy(), "photo")
    np.testing.assert_allclose(ours, ref, rtol=2e-3)
    assert ref[1] / ref[0] > 4  # the edge jump is really there


def test_mixture_rule(all_tables):
    mix = mixture("wpb", [(WATER, 0.7), (LEAD, 0.3)], 3.0)
    tables = CrossSectionTables([WATER, LEAD, mix])
    e = torch.tensor(tables.energies[[200, 450, 600, 850, 1000]], dtype=torch.float32)  # nodes away from Pb edges
    mu = [tables.mu(torch.full((5,), i), e) for i in range(3)]
    np.testing.assert_allclose(mu[2].numpy(), (0.7 * mu[0] + 0.3 * mu[1]).numpy(), rtol=1e-4)


def test_processes_switched_off_give_zero():
    e = torch.tensor([10 * keV, 140.5 * keV, 1.0])
    m = torch.zeros(3, dtype=torch.long)
    full = CrossSectionTables([WATER]).mu(m, e)
    for flags, zero in [((False, True, True), 0), ((True, False, True), 1), ((True, True, False), 2)]:
        t = CrossSectionTables([WATER], photoelectric=flags[0], compton=flags[1], rayleigh=flags[2])
        mu = t.mu(m, e)
        assert torch.all(mu[:, zero] == 0)
        keep = [c for c in range(3) if c != zero]
        torch.testing.assert_close(mu[:, keep], full[:, keep], rtol=1e-4, atol=0)
        torch.testing.assert_close(t.mu_total(m, e), mu.sum(1), rtol=2e-6, atol=0)
    none = CrossSectionTables([WATER], photoelectric=False, compton=False, rayleigh=False)
    assert torch.all(none.mu(m, e) == 0) and torch.all(none.mu_total(m, e) == 0)
    maj = none.majorant([1.0])(e)
    assert torch.all(torch.isfinite(maj)) and torch.all(maj > 0)


def test_total_is_sum_of_columns(all_tables):
    g = torch.Generator().manual_seed(0)
    n = 20000
    m = torch.randint(0, len(all_tables.materials), (n,), generator=g)
    e = torch.exp(torch.empty(n).uniform_(math.log(1e-3), math.log(2.0), generator=g))
    # also every cell around the Pb K edge, where the interpolated total and the sum of the
    # interpolated parts differ most (the columns are rescaled to the total)
    pb = list(NAMED_MATERIALS).index("G4_Pb")
    edge = torch.linspace(87 * keV, 89 * keV, 2001)
    m = torch.cat((m, torch.full(edge.shape, pb)))
    e = torch.cat((e, edge))
    mu = all_tables.mu(m, e)
    torch.testing.assert_close(mu.sum(1), all_tables.mu_total(m, e), rtol=2e-6, atol=0)
    # the rescaling is small: against the unscaled interpolation of each column
    raw = all_tables._mu_pairs.index_select(0, m.int() * all_tables.n_points + all_tables._grid.locate(e)[0])
    t = all_tables._grid.locate(e)[1]
    unscaled = torch.exp(raw[:, :3] + t[:, None] * raw[:, 3:6])
    ratio = mu.sum(1) / unscaled.sum(1)
    assert torch.quantile((ratio[:n] - 1).abs(), 0.99) < 1e-4  # random energies: edges are rare
    assert (ratio - 1).abs().max() < 0.05


def test_vacuum_and_zero_energy_are_finite(all_tables):
    vac = list(NAMED_MATERIALS).index("G4_Galactic")
    m = torch.full((4,), vac)
    e = torch.tensor([0.0, 1e-4, 0.1405, 5.0])  # 0 and out-of-range energies clamp to the grid ends
    mu = all_tables.mu(m, e)
    assert torch.all(torch.isfinite(mu)) and torch.all(mu > 0)
    assert torch.all(NAMED_MATERIALS["G4_Galactic"].density * mu == 0)
    assert torch.all(torch.isfinite(all_tables.mu_total(m, e)))


def test_majorant_dominates_on_dense_grid(all_tables):
    mats = all_tables.materials
    max_density = [m.density if m.name != "G4_LUNG_ICRP" else 0.35 for m in mats]
    maj = all_tables.majorant(max_density)
    nodes = all_tables.energies
    mids = np.sqrt(nodes[1:] * nodes[:-1])
    rng = np.random.default_rng(11)
    rand = np.exp(rng.uniform(np.log(nodes[0]), np.log(nodes[-1]), 20000))
    e = torch.tensor(np.concatenate((nodes, mids, rand)), dtype=torch.float32)
    bound = maj(e)
    worst = torch.zeros_like(bound)
    for i, rho in enumerate(max_density):
        mu = rho * all_tables.mu_total(torch.full(e.shape, i), e)
        assert torch.all(mu <= bound), f"{mats[i].name} exceeds the majorant"
        worst = torch.maximum(worst, mu)
    # and it is tight: at most the documented 1e-4 margin plus float rounding above the largest
    assert torch.all(bound <= worst * 1.0003)


def test_majorant_validates():
    t = CrossSectionTables([WATER])
    with pytest.raises(ConfigError, match="one finite density"):
        t.majorant([1.0, 2.0])
    with pytest.raises(ConfigError, match="one finite density"):
        t.majorant([-1.0])


def test_table_validation():
    with pytest.raises(ConfigError, match="energy range"):
        CrossSectionTables([WATER], e_min=1.0, e_max=0.5)
    with pytest.raises(ConfigError, match="non-empty list"):
        CrossSectionTables([])
    with pytest.raises(ConfigError, match="points_per_decade"):
        CrossSectionTables([WATER], points_per_decade=2)


def test_grid_density_and_attributes(all_tables):
    t = all_tables
    assert t.e_min == pytest.approx(1 * keV) and t.e_max == pytest.approx(2.0)
    steps = np.diff(np.log10(t.energies))
    assert steps.max() <= 1 / 400 + 1e-12
    assert t.mass_coefficients.shape == (len(t.materials), 3, t.n_points)
    assert t._mu_pairs.dtype == torch.float32 and t._mu_pairs.device == t.device


def _devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


@pytest.mark.parametrize("device", _devices())
def test_outputs_on_the_tables_device(device):
    t = CrossSectionTables([WATER, LEAD], device=device, e_min=10 * keV, e_max=1.0, points_per_decade=100)
    m = torch.tensor([0, 1], device=device)
    e = torch.tensor([0.1, 0.5], device=device)
    assert t.mu(m, e).device.type == device
    assert t.mu_total(m, e).device.type == device
    assert t.majorant([1.0, 11.35])(e).device.type == device
    ref = CrossSectionTables([WATER, LEAD], e_min=10 * keV, e_max=1.0, points_per_decade=100).mu(m.cpu(), e.cpu())
    torch.testing.assert_close(t.mu(m, e).cpu(), ref)


# --- angular data: the models behind the samplers, checked against xraydb's integrals ----------


def _cos_grid(n=200001):
    return np.linspace(-1.0, 1.0, n)


def _coherent_from_form_factor(material, e_mev):
    c = _cos_grid()
    x = e_mev / HC * np.sqrt((1 - c) / 2)
    f2 = sum(w * 6.02214076e23 / xraydb.atomic_mass(s) * form_factor(s, x) ** 2 for s, w in material.mass_fractions)
    re_cm = CLASSICAL_ELECTRON_RADIUS / 10
    return np.trapezoid(np.pi * re_cm**2 * (1 + c * c) * f2, c)  # cm^2/g


@pytest.mark.parametrize("e_kev", [30.0, 140.5, 511.0])
def test_form_factor_reproduces_xraydb_coherent_water(e_kev):
    # measured: < 0.06 % for water from 30 to 800 keV; bound 0.3 %
    ref = sum(w * xraydb.mu_elam(s, e_kev * 1e3, kind="coh") for s, w in WATER.mass_fractions)
    assert _coherent_from_form_factor(WATER, e_kev * keV) == pytest.approx(ref, rel=3e-3)


def test_form_factor_tail_for_lead():
    # the Slater-orbital tail beyond x = 6/A keeps lead's K-shell contribution: documented 5.5 %
    # at 511 keV (the Waasmaier-Kirfel constant term alone, or an x^-4 tail, loses ~20 %)
    ref = xraydb.mu_elam("Pb", 511e3, kind="coh")
    assert _coherent_from_form_factor(LEAD, 511 * keV) == pytest.approx(ref, rel=0.06)
    x = np.array([0.0, 5.9999, 6.0, 6.0001, 30.0, 200.0])
    f = form_factor("Pb", x)
    assert f[0] == pytest.approx(82, rel=1e-3)
    assert np.all(np.diff(f) < 0) and f[-1] > 0
    assert f[3] == pytest.approx(f[1], rel=1e-4)  # continuous at the fit limit


def _incoherent_from_isf_table(tables, index, e_mev):
    c = _cos_grid()
    x = torch.tensor(e_mev / HC * np.sqrt((1 - c) / 2), dtype=torch.float32)
    ratio = tables.scattering_function_ratio(torch.full(x.shape, index), x).double().numpy()
    dcs = klein_nishina_dcs(torch.tensor(e_mev, dtype=torch.float64), torch.tensor(c)).numpy()  # mm^2/sr
    per_electron = np.trapezoid(2 * np.pi * dcs * ratio, c) / 100  # cm^2
    return per_electron * tables.materials[index].electrons_per_gram()


@pytest.mark.parametrize(("e_kev", "bound"), [(60.0, 0.01), (140.5, 0.003), (511.0, 0.003)])
def test_scattering_function_reproduces_xraydb_incoherent_water(water_isf, e_kev, bound):
    # Waller-Hartree without exchange, Slater orbitals: measured +0.4 % (60 keV), +0.07 %
    # (140.5 keV), -0.04 % (511 keV) for water.
    ref = sum(w * xraydb.mu_elam(s, e_kev * 1e3, kind="incoh") for s, w in WATER.mass_fractions)
    assert _incoherent_from_isf_table(water_isf, 0, e_kev * keV) == pytest.approx(ref, rel=bound)


def test_scattering_function_lead_documented_accuracy(water_isf):
    # no exchange terms: too large for heavy atoms; documented +7 % at 140.5 keV for lead, and
    # still a real reduction below Klein-Nishina (+12 %)
    ref = xraydb.mu_elam("Pb", 140.5e3, kind="incoh")
    ours = _incoherent_from_isf_table(water_isf, 1, 140.5 * keV)
    kn = klein_nishina_total(torch.tensor(0.1405, dtype=torch.float64)).item() / 100 * LEAD.electrons_per_gram()
    assert 1.0 < ours / ref < 1.08
    assert ours < kn * 0.97


def test_scattering_function_limits():
    x = np.array([0.0, 1e-3, 0.5, 5.0, 100.0])
    for symbol, z in [("H", 1), ("O", 8), ("Pb", 82)]:
        s = incoherent_scattering_function(symbol, x)
        assert s[0] == pytest.approx(0, abs=1e-12)
        assert np.all(np.diff(s) > 0)
        assert s[-1] == pytest.approx(z, rel=1e-3)
    # hydrogen is exact: S = 1 - F^2 with F the 1s form factor 1/(1 + (2 pi a0 x)^2)^2
    a = 2 * np.pi * 0.529177210903 * 0.5
    assert incoherent_scattering_function("H", np.array([0.5]))[0] == pytest.approx(1 - 1 / (1 + a * a) ** 4, rel=1e-9)


def test_rayleigh_cumulative_matches_direct_integral(water_isf):
    # the table's cumulative of F^2 over x^2 against an independent fine trapezoid
    x2 = np.array([1e-4, 0.01, 0.1, 1.0, 4.0, 30.0])
    fine = np.concatenate(([0.0], np.geomspace(1e-8, 30.0, 200001)))
    f2 = sum(w / xraydb.atomic_mass(s) * form_factor(s, np.sqrt(fine)) ** 2 for s, w in WATER.mass_fractions)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (f2[1:] + f2[:-1]) * np.diff(fine))))
    ref = np.interp(x2, fine, cum)
    ours = water_isf.rayleigh_cumulative(torch.zeros(x2.size, dtype=torch.long), torch.tensor(x2)).numpy()
    top = water_isf.rayleigh_cumulative(torch.zeros(1, dtype=torch.long), torch.tensor([30.0])).item()
    np.testing.assert_allclose(ours / top, ref / ref[-1], rtol=2e-4)
