"""Interaction samplers against their analytic distributions (chi-square at fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xraydb
from scipy import stats

from gansim.errors import ConfigError
from gansim.physics.cross_sections import HC, CrossSectionTables, form_factor
from gansim.physics.interactions import (
    CLASSICAL_ELECTRON_RADIUS,
    ELECTRON_MASS,
    klein_nishina_dcs,
    klein_nishina_total,
    rotate_directions,
    sample_compton,
    sample_rayleigh,
)
from gansim.physics.materials import get_material
from gansim.units import keV

P_VALUE = 1e-3  # every chi-square test rejects at p < 1e-3 (fixed seeds: deterministic outcome)
RE2 = CLASSICAL_ELECTRON_RADIUS**2


def chi2_check(observed: np.ndarray, expected_prob: np.ndarray, *, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson chi-square of counts against probabilities (bins with < 5 expected merged forward).

    Returns (statistic, dof) after asserting the p-value is above P_VALUE.
    """
    n = observed.sum()
    assert expected_prob.sum() == pytest.approx(1.0, abs=1e-6)
    obs, exp = [], []
    acc_o = acc_e = 0.0
    for o, p in zip(observed, expected_prob * n):
        acc_o += o
        acc_e += p
        if acc_e >= min_expected:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0:
        obs[-1] += acc_o
        exp[-1] += acc_e
    obs_a, exp_a = np.array(obs), np.array(exp)
    stat = float(((obs_a - exp_a) ** 2 / exp_a).sum())
    dof = len(obs_a) - 1
    p = stats.chi2.sf(stat, dof)
    assert p > P_VALUE, f"chi2 {stat:.1f} for {dof} dof, p = {p:.2e}"
    return stat, dof


def _gauss_bins(edges: np.ndarray, f, order: int = 16) -> np.ndarray:
    """Integral of f over each [edges[i], edges[i+1]] by Gauss-Legendre (float64)."""
    xg, wg = np.polynomial.legendre.leggauss(order)
    a, b = edges[:-1, None], edges[1:, None]
    x = 0.5 * (b - a) * xg[None, :] + 0.5 * (b + a)
    return (f(x) * wg[None, :]).sum(axis=1) * 0.5 * (b - a)[:, 0]


# --- Klein-Nishina formulas ----------------------------------------------------------------


def test_klein_nishina_dcs_known_values():
    e = torch.tensor([1e-6, ELECTRON_MASS, ELECTRON_MASS], dtype=torch.float64)
    c = torch.tensor([0.3, 1.0, 0.0], dtype=torch.float64)
    d = klein_nishina_dcs(e, c).numpy() / RE2
    # Thomson limit (1 + cos^2)/2; forward = Thomson r_e^2; k = 1 at 90 deg: r = 1/2 -> 0.5 * 0.25 * (0.5 + 2 - 1) = 0.1875
    np.testing.assert_allclose(d, [0.5 * (1 + 0.09), 1.0, 0.1875], rtol=1e-5)


def test_klein_nishina_total_known_values_and_integral():
    thomson = 8 / 3 * math.pi * RE2
    assert klein_nishina_total(torch.tensor(1e-9, dtype=torch.float64)).item() == pytest.approx(thomson, rel=1e-8)
    # 511 keV: 0.2866 barn (1 barn = 1e-22 mm^2)
    assert klein_nishina_total(torch.tensor(ELECTRON_MASS, dtype=torch.float64)).item() == pytest.approx(0.28653e-22, rel=2e-4)
    # matches the integral of the differential cross section on both sides of the series switch
    c = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    for e in [1e-3, 0.005, 0.00511, 0.0052, 0.1405, 0.511, 2.0]:
        integral = np.trapezoid(2 * np.pi * klein_nishina_dcs(torch.tensor(e, dtype=torch.float64), c).numpy(), c.numpy())
        assert klein_nishina_total(torch.tensor(e, dtype=torch.float64)).item() == pytest.approx(integral, rel=1e-8)
    # float32 in, float32 out
    assert klein_nishina_total(torch.tensor([0.1], dtype=torch.float32)).dtype == torch.float32


# --- Compton sampling -------------------------------------------------------------------------


def _kn_cos_probabilities(e_mev: float, edges: np.ndarray, weight=None) -> np.ndarray:
    def f(c):
        d = klein_nishina_dcs(torch.tensor(e_mev, dtype=torch.float64), torch.tensor(c)).numpy()
        return d if weight is None else d * weight(c)

    p = _gauss_bins(edges, f)
    return p / p.sum()


@pytest.mark.parametrize(("e_kev", "n"), [(1.0, 200_000), (140.5, 1_000_000), (511.0, 1_000_000), (2000.0, 200_000)])
def test_compton_angle_and_energy_vs_klein_nishina(e_kev, n):
    g = torch.Generator().manual_seed(int(e_kev * 10))
    e = torch.full((n,), e_kev * keV)
    e_out, cos = sample_compton(e, g)
    assert e_out.dtype == torch.float32 and cos.shape == (n,)
    assert torch.all(cos >= -1) and torch.all(cos <= 1)
    k = e_kev * keV / ELECTRON_MASS
    # Compton formula per photon
    torch.testing.assert_close(e_out, e / (1 + k * (1 - cos)), rtol=2e-6, atol=0)
    edges = np.linspace(-1, 1, 51)
    chi2_check(np.histogram(cos.double().numpy(), edges)[0], _kn_cos_probabilities(e_kev * keV, edges))
    # energy histogram: same distribution through the monotone map cos -> E'
    e_edges = e_kev * keV / (1 + k * (1 - edges))
    chi2_check(np.histogram(e_out.double().numpy(), e_edges)[0], _kn_cos_probabilities(e_kev * keV, edges))


def test_compton_with_scattering_function_per_material():
    water, lead = get_material("water"), get_material("pb")
    tables = CrossSectionTables([water, lead], incoherent_scattering_function=True, points_per_decade=100)
    n = 400_000
    g = torch.Generator().manual_seed(5)
    # interleave the two materials so per-photon indexing through the rejection loop is exercised
    mat = torch.arange(n) % 2
    e_mev = 60 * keV
    e = torch.full((n,), e_mev)
    _, cos = sample_compton(e, g, tables=tables, material_index=mat)
    edges = np.linspace(-1, 1, 41)
    for m in (0, 1):

        def s_ratio(c, m=m):
            x = torch.tensor(e_mev / HC * np.sqrt((1 - c) / 2), dtype=torch.float32)
            return tables.scattering_function_ratio(torch.full((x.numel(),), m), x.reshape(-1)).double().numpy().reshape(c.shape)

        counts = np.histogram(cos[mat == m].double().numpy(), edges)[0]
        chi2_check(counts, _kn_cos_probabilities(e_mev, edges, s_ratio))
        # the scattering function really matters here: plain Klein-Nishina is rejected for lead
        if m == 1:
            p_kn = _kn_cos_probabilities(e_mev, edges)
            stat = ((counts - counts.sum() * p_kn) ** 2 / (counts.sum() * p_kn)).sum()
            assert stats.chi2.sf(stat, len(edges) - 2) < P_VALUE


def test_compton_without_isf_ignores_tables_material():
    tables = CrossSectionTables([get_material("water")], points_per_decade=50)
    e = torch.full((1000,), 0.1405)
    a = sample_compton(e, torch.Generator().manual_seed(1))
    b = sample_compton(e, torch.Generator().manual_seed(1), tables=tables, material_index=torch.zeros(1000, dtype=torch.long))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_compton_reproducible_and_seed_dependent():
    e = torch.exp(torch.empty(10000).uniform_(math.log(1e-3), math.log(2.0), generator=torch.Generator().manual_seed(0)))
    a = sample_compton(e, torch.Generator().manual_seed(42))
    b = sample_compton(e, torch.Generator().manual_seed(42))
    c = sample_compton(e, torch.Generator().manual_seed(43))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a[1], c[1])


def test_compton_argument_errors():
    tables = CrossSectionTables([get_material("water")], incoherent_scattering_function=True, points_per_decade=50)
    e = torch.full((10,), 0.1)
    with pytest.raises(ConfigError, match="material_index"):
        sample_compton(e, torch.Generator(), tables=tables)
    with pytest.raises(ConfigError, match="generator"):
        sample_compton(e, None)  # type: ignore[arg-type]


# --- Rayleigh sampling ------------------------------------------------------------------------


def _rayleigh_probabilities(material, e_mev: float, s_edges: np.ndarray) -> np.ndarray:
    """Bin probabilities in s = sin^2(theta/2) = (1 - cos)/2 of (1 + cos^2) F_mat^2(x)."""
    atoms = [(sym, w / xraydb.atomic_mass(sym)) for sym, w in material.mass_fractions]
    x_max = e_mev / HC

    def f(s):
        cos = 1 - 2 * s
        f2 = sum(a * form_factor(sym, x_max * np.sqrt(s)) ** 2 for sym, a in atoms)
        return (1 + cos * cos) * f2

    p = _gauss_bins(s_edges, f)
    return p / p.sum()


def test_rayleigh_angle_vs_form_factor():
    water, lead, bone = get_material("water"), get_material("pb"), get_material("G4_BONE_CORTICAL_ICRP")
    tables = CrossSectionTables([water, lead, bone])
    cases = [(0, 30 * keV), (0, 140.5 * keV), (1, 511 * keV), (2, 140.5 * keV)]
    n = 150_000
    mat = torch.cat([torch.full((n,), m) for m, _ in cases])
    e = torch.cat([torch.full((n,), en) for _, en in cases])
    cos = sample_rayleigh(e, mat, tables, torch.Generator().manual_seed(9))
    assert cos.dtype == torch.float32 and torch.all(cos.abs() <= 1)
    s_edges = np.concatenate(([0.0], np.geomspace(1e-7, 1.0, 71)))
    for i, (m, en) in enumerate(cases):
        s = (1 - cos[i * n : (i + 1) * n].double().numpy()) / 2
        # float32 cos resolution: s below ~3e-8 all collapse to 0, which the first bin holds
        chi2_check(np.histogram(s, s_edges)[0], _rayleigh_probabilities(tables.materials[m], en, s_edges))


def test_rayleigh_differs_from_thomson():
    # sanity of the test above: the F^2 factor dominates the shape (forward peaked at 140 keV)
    tables = CrossSectionTables([get_material("water")], points_per_decade=100)
    cos = sample_rayleigh(torch.full((20000,), 0.1405), torch.zeros(20000, dtype=torch.long), tables, torch.Generator().manual_seed(1))
    assert cos.mean() > 0.9  # Thomson alone would give mean 0


# --- directions --------------------------------------------------------------------------------


def _unit(v):
    return v / v.norm(dim=1, keepdim=True)


def test_rotate_directions_angle_and_norm():
    g = torch.Generator().manual_seed(3)
    n = 100_000
    d = _unit(torch.randn(n, 3, generator=g))
    # include exact and near poles, where naive formulas divide by zero
    d[:4] = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1e-7, 0.0, 1.0], [0.0, -1e-7, -1.0]])
    d = _unit(d)
    cos = torch.empty(n).uniform_(-1, 1, generator=g)
    phi = torch.empty(n).uniform_(0, 2 * math.pi, generator=g)
    out = rotate_directions(d, cos, phi)
    assert out.shape == (n, 3) and torch.all(torch.isfinite(out))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(n), rtol=0, atol=2e-6)
    torch.testing.assert_close((out * d).sum(1), cos, rtol=0, atol=3e-6)


def test_rotate_directions_azimuth_is_phi_plus_constant():
    # about a fixed direction, the new direction's azimuth in an independent frame is phi + const
    g = torch.Generator().manual_seed(4)
    for axis in ([0.3, -0.5, 0.81], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]):
        d0 = _unit(torch.tensor([axis], dtype=torch.float64))
        n = 50_000
        d = d0.expand(n, 3).float()
        phi = torch.empty(n).uniform_(0, 2 * math.pi, generator=g)
        out = rotate_directions(d, torch.full((n,), 0.2), phi).double()
        helper = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64) if abs(axis[1]) < 0.9 else torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
        e1 = _unit(torch.linalg.cross(helper, d0))
        e2 = torch.linalg.cross(d0, e1)
        az = torch.atan2((out * e2).sum(1), (out * e1).sum(1))
        diff = torch.remainder(az - phi.double(), 2 * math.pi)
        spread = torch.remainder(diff - diff[0] + math.pi, 2 * math.pi) - math.pi
        assert spread.abs().max() < 1e-4  # right-handed, linear in phi
        # hence uniform phi gives a uniform azimuth (chi-square on 36 bins)
        counts = np.histogram(az.numpy(), np.linspace(-math.pi, math.pi, 37))[0]
        chi2_check(counts, np.full(36, 1 / 36))


def test_rotated_isotropic_stays_isotropic():
    # isotropic old directions, cos uniform in [-1, 1] and phi uniform: new directions isotropic
    g = torch.Generator().manual_seed(8)
    n = 200_000
    d = _unit(torch.randn(n, 3, generator=g))
    out = rotate_directions(d, torch.empty(n).uniform_(-1, 1, generator=g), torch.empty(n).uniform_(0, 2 * math.pi, generator=g))
    for axis in range(3):
        counts = np.histogram(out[:, axis].numpy(), np.linspace(-1, 1, 21))[0]
        chi2_check(counts, np.full(20, 1 / 20))


# --- devices ------------------------------------------------------------------------------------


def _devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_samplers_stay_on_the_device(device):
    tables = CrossSectionTables([get_material("water")], device=device, incoherent_scattering_function=True, points_per_decade=50)
    g = torch.Generator(device=device).manual_seed(0)
    e = torch.full((1000,), 0.1405, device=device)
    m = torch.zeros(1000, dtype=torch.long, device=device)
    e_out, cos = sample_compton(e, g, tables=tables, material_index=m)
    cos_r = sample_rayleigh(e, m, tables, g)
    d = rotate_directions(torch.tensor([[0.0, 0.0, 1.0]], device=device).expand(1000, 3), cos, cos_r)
    for t in (e_out, cos, cos_r, d):
        assert t.device.type == device


def test_generator_on_wrong_device_is_rejected():
    if not torch.cuda.is_available():
        # a meta-device generator cannot be created; emulate the mismatch with a CPU generator
        # passed for tensors on the meta device
        e = torch.empty(4, device="meta")
        with pytest.raises(ConfigError, match="generator is on cpu"):
            sample_compton(e, torch.Generator())
    else:
        with pytest.raises(ConfigError, match="generator"):
            sample_compton(torch.ones(4, device="cuda"), torch.Generator())
