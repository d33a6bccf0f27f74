"""GFlash (Grindhammer-Peters) electromagnetic shower parameterisation and a vectorised spot sampler.

Facts and formulas: ``../shared/reference/calogan.md`` section (f) (verified there against Geant4's
``GVFlashHomoShowerTuning.hh``, ``GFlashSamplingShowerTuning.hh`` and ``GFlash*Parameterisation.cc``;
lines marked *recalled* in that report are marked so here too) and section (a) (the CaloGAN
detector and its effective medium).

Units: lengths in mm, energies in MeV (``gansim.units``); the parameterisation itself uses the
depth t in radiation lengths X0, the radius in Moliere radii R_M, y = E / E_c and E in GeV where the
published fits do (the radial profile, the spot count, the sampling fluctuation).

What one shower is made of
--------------------------
* **Longitudinal profile.** Each shower draws a correlated log-normal pair (ln T, ln alpha)
  (:func:`draw_longitudinal`), beta = (alpha - 1) / T, and deposits
  ``E [P(alpha, beta (t2 - t0)) - P(alpha, beta (t1 - t0))]`` between depths t1 and t2 (P: the
  regularised lower incomplete gamma function, ``scipy.special.gammainc``). t0 is the start depth:
  0 for e+/e-, ~ Exp(mean 9/7 X0) for photons (the vacuum before the face is irrelevant).
  Whatever lies beyond the back of the calorimeter is *longitudinal leakage*: it is not deposited
  and is reported in the diagnostics.
* **Steps and spots** (as Geant4's ``GFlashShowerModel``): the calorimeter depth is cut into steps
  of at most 0.1 X0 that never straddle a readout-layer boundary (:class:`DepthGrid`). A step gets
  the energy dE of the shower's own profile and ``max(1, floor(dN N_spot))`` spots, dN being the
  step's share of the *spot* profile (Gamma with T_s, alpha_s); every spot of the step carries
  dE / (spots in the step). So the energy of every layer is exactly the profile integral (before the
  sampling fluctuation) and the spot density follows the spot profile. A spot's depth is uniform
  within its step (after t0 in the step where the shower starts).
* **Radius**: from the two-component profile ``p 2 r R_C^2 / (r^2 + R_C^2)^2 + (1 - p) (same, R_T)``
  with R_C, R_T, p evaluated at the spot's own tau (:func:`shower_tau`), sampled exactly by inverting
  r^2 / (r^2 + R^2); phi uniform around the shower axis (the beam line x = y = 0).
* **Sampling fluctuation** (only for media with a stochastic term c > 0, i.e. the sampling
  variant): every spot energy e becomes ``Gamma(shape = e / c^2, scale = c^2)`` with e in GeV, so a
  shower's total is exactly Gamma(E / c^2, c^2): mean E, relative width c / sqrt(E / GeV). It is
  applied per spot (the finest grain, so cells fluctuate too) and with E in GeV (Geant4 uses MeV,
  a smearing ~30 times too small; see the reference). The CaloGAN files hold *total* deposits (Pb
  and LAr alike), which have no sampling fluctuation: the default ``calogan`` medium has c = 0 and
  then energy is conserved exactly (cells + overflow + leakage = E to rounding).

Parameter range: the fits are valid for E above ~1 GeV; for the low-energy EM parts of pion
showers the parameters are evaluated at ``max(E, 100 MeV)`` (energies themselves are not changed),
the widths sigma(ln T), sigma(ln alpha) are capped at 0.5 and each shower keeps T >= 1 X0 and
alpha >= 1.1 (spots: T_s >= 0.5, alpha_s >= 1.1), as Geant4's sampling parameterisation does. For
e+ at 1 GeV the alpha clamp touches ~2e-4 of the showers, the others none.

pi+ (approximate; keep in mind when using it)
---------------------------------------------
* Interaction depth ~ Exp(lambda_I) from the face (375 mm in the CaloGAN medium, so e^-1.28 = 28 %
  cross all 480 mm without interacting).
* Before it, a MIP track on a straight line at a small random offset from the axis (radius drawn
  from r^2 / (r^2 + (1 mm)^2): multiple scattering and delta rays, *ad hoc*), depositing in each
  0.1-X0 step ``dE/dx * path * (0.7 + 0.2362 M)`` with M a standard Moyal variate (-ln of a chi2(1)
  draw, mean 1.2704): a Landau-like loss with mean dE/dx * path and most probable value 0.7 of the
  mean (reference section f); negative draws (probability ~1e-5 per step) are set to 0. Mean per
  full CaloGAN layer: 50.8 / 195.9 / 24.3 MeV (reference: 51 / 196 / 24).
* At the interaction, of the energy left, an EM fraction f_em ~ Beta with mean
  ``1 - (E/E0)^(k-1)`` (Groom/Gabriel form, E0 = 1 GeV, k = 0.82, *recalled*, approximate), clipped
  to [0.05, 0.95], and concentration 8 (standard deviation ~0.15, *ad hoc*) showers as one GFlash
  photon-like shower starting at the interaction point (no angular spread).
* The hadronic remainder deposits a visible fraction h/e = 0.65 of its energy (the rest is
  invisible: nuclear binding, neutrons; reported as ``invisible_MeV``) with a longitudinal Gamma
  profile in units of lambda_I, shape ``0.6165 + 0.3183 ln(E/GeV)`` (>= 0.5) and rate
  ``0.9099 - 0.0237 ln(E/GeV)`` (the lambda-component of Bock et al. 1981, *recalled*, approximate),
  and a radial core (R = 0.08 lambda_I, weight 0.6) plus halo (R = 0.27 lambda_I), i.e. 30 and 100 mm
  in the CaloGAN medium (*ad hoc*, "tens to ~100 mm" of the reference); one spot per ~10 MeV of
  visible energy. Energy beyond the back leaks. Nothing here is calibrated to Geant4's pions.

Random numbers
--------------
Every function takes a seeded :class:`numpy.random.Generator`. :func:`simulate_showers` also
accepts a :class:`RandomStreams`, which gives every block of showers and every purpose its own
generator, so that a data set does not depend on how it is cut into batches (see
:mod:`gansim.data.calo`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
from scipy.special import gammainc, gammaincc

from gansim.errors import ConfigError, DataError

__all__ = [
    "CALOGAN_MEDIUM",
    "CALOGAN_SAMPLING_MEDIUM",
    "ENERGY_STREAM",
    "LEAD",
    "LIQUID_ARGON",
    "MEDIA",
    "PARTICLES",
    "SILICON",
    "TUNGSTEN",
    "WSI_MEDIUM",
    "DepthGrid",
    "LongitudinalParameters",
    "Material",
    "Medium",
    "RandomStreams",
    "ShowerSample",
    "Spots",
    "draw_longitudinal",
    "effective_medium",
    "gamma_fraction",
    "get_medium",
    "longitudinal_parameters",
    "max_spots_per_shower",
    "mean_profile",
    "normalise_particle",
    "pion_em_fraction",
    "radial_cdf",
    "radial_parameters",
    "radius_from_uniforms",
    "sample_longitudinal",
    "shower_tau",
    "simulate_showers",
    "spot_count",
    "spot_profile",
]

# ---------------------------------------------------------------------------------------------
# materials and effective media

#: E_s, the scale energy of the Moliere radius, MeV (R_M = X0 E_s / E_c).
E_SCALE = 21.2


@dataclass(frozen=True)
class Material:
    """An element's constants for effective-medium sums (PDG "Atomic and nuclear properties").

    Attributes:
        density: g/cm^3.  X0, lambda_I: g/cm^2.  E_c: critical energy for electrons, MeV.
        dEdx_mip: minimum ionisation loss, MeV cm^2/g.
    """

    name: str
    Z: float
    A: float
    density: float
    X0: float
    E_c: float
    lambda_I: float
    dEdx_mip: float


# PDG values (recalled from the PDG tables; they reproduce the CaloGAN numbers of reference section (a),
# which the tests check). Liquid argon at the CaloGAN geometry's 1.390 g/cm^3.
LEAD = Material("Pb", 82.0, 207.2, 11.35, 6.37, 7.43, 199.6, 1.122)
LIQUID_ARGON = Material("LAr", 18.0, 39.95, 1.390, 19.55, 32.84, 119.7, 1.519)
TUNGSTEN = Material("W", 74.0, 183.84, 19.30, 6.76, 7.97, 191.9, 1.145)
SILICON = Material("Si", 14.0, 28.0855, 2.329, 21.82, 40.19, 108.4, 1.664)


@dataclass(frozen=True)
class Medium:
    """The (effective) medium a GFlash shower develops in.

    Attributes:
        name: short name (``calogan``, ``samplingEM``, ``wsi``).
        Z: (effective) atomic number.
        X0: radiation length, mm.
        R_M: Moliere radius, mm.
        E_c: critical energy, MeV.
        lambda_I: nuclear interaction length, mm (pi+ only).
        mip_dEdx: mean energy loss of a minimum-ionising particle, MeV/mm, all materials (pi+ only).
        sampling: use the sampling-calorimeter formulas (with ``F_S`` and ``e_hat``).
        F_S: X0 / (thickness of one absorber + gap period).
        e_hat: e/mip = 1 / (1 + 0.007 (Z_passive - Z_active)).
        mip_fraction: share of a MIP's loss in the active material.
        stochastic_term: c of the sampling fluctuation c / sqrt(E/GeV) (0: none).
        em_scale: stored cell energy per MeV deposited by an electromagnetic or hadronic spot
            (1 for total deposits; 5 x mip_fraction x e_hat for the samplingEM files, which keep the
            LAr deposits and multiply them by 5).
        mip_scale: the same for a MIP track (5 x mip_fraction for samplingEM).
    """

    name: str
    Z: float
    X0: float
    R_M: float
    E_c: float
    lambda_I: float
    mip_dEdx: float
    sampling: bool = False
    F_S: float = math.inf
    e_hat: float = 1.0
    mip_fraction: float = 1.0
    stochastic_term: float = 0.0
    em_scale: float = 1.0
    mip_scale: float = 1.0

    def __post_init__(self) -> None:
        for key in ("Z", "X0", "R_M", "E_c", "lambda_I", "mip_dEdx", "F_S", "e_hat", "em_scale", "mip_scale"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
                raise ConfigError(f"medium {self.name!r}: {key} = {v!r}: expected a positive number")
        if not (0 < self.mip_fraction <= 1):
            raise ConfigError(f"medium {self.name!r}: mip_fraction = {self.mip_fraction!r}: expected a number in (0, 1]")
        if not (self.stochastic_term >= 0 and math.isfinite(self.stochastic_term)):
            raise ConfigError(f"medium {self.name!r}: stochastic_term = {self.stochastic_term!r}: expected a number >= 0")
        if self.sampling and not math.isfinite(self.F_S):
            raise ConfigError(f"medium {self.name!r}: the sampling formulas need a finite F_S")
        if self.sampling and self.stochastic_term <= 0:
            raise ConfigError(f"medium {self.name!r}: the sampling formulas need stochastic_term > 0 (N_spot = 10.3/c E^0.959)")


def effective_medium(name: str, layers: Sequence[tuple[Material, float]], *, active: int | None = None) -> Medium:
    """The homogeneous effective medium of a periodic stack (reference section f, "Sampling calorimeter").

    Args:
        name: the medium's name.
        layers: one period as (material, thickness in mm) pairs.
        active: index of the active (read-out) layer in ``layers``: sets ``e_hat`` (against the
            highest-Z other layer) and ``mip_fraction``; None for a stack read out in full.

    Mass weights w_i = rho_i d_i / sum; Z = sum w_i Z_i; 1/X0 = sum w_i / X0_i (g/cm^2);
    E_c = X0 sum w_i E_c,i / X0_i; R_M = E_s / sum(w_i E_c,i / X0_i); 1/lambda_I = sum w_i / lambda_i;
    F_S = X0 / period (mm / mm). Returns a homogeneous :class:`Medium` (no fluctuation, scales 1).
    """
    if not layers:
        raise ConfigError(f"effective medium {name!r}: no layers")
    mats = [m for m, _ in layers]
    d_mm = np.array([float(d) for _, d in layers])
    if np.any(~np.isfinite(d_mm)) or np.any(d_mm <= 0):
        raise ConfigError(f"effective medium {name!r}: thicknesses {d_mm.tolist()} mm: expected positive numbers")
    mass = np.array([m.density for m in mats]) * d_mm / 10.0  # g/cm^2 per period
    w = mass / mass.sum()
    rho = mass.sum() / (d_mm.sum() / 10.0)  # g/cm^3
    x0_g = 1.0 / float(np.sum(w / np.array([m.X0 for m in mats])))
    ec_over_x0 = float(np.sum(w * np.array([m.E_c / m.X0 for m in mats])))
    lam_g = 1.0 / float(np.sum(w / np.array([m.lambda_I for m in mats])))
    loss = mass * np.array([m.dEdx_mip for m in mats])  # MeV per period
    x0_mm = x0_g / rho * 10.0
    e_hat, f_mip = 1.0, 1.0
    if active is not None:
        if not 0 <= active < len(mats):
            raise ConfigError(f"effective medium {name!r}: active = {active!r}: expected an index below {len(mats)}")
        z_passive = max(m.Z for i, m in enumerate(mats) if i != active) if len(mats) > 1 else mats[active].Z
        e_hat = 1.0 / (1.0 + 0.007 * (z_passive - mats[active].Z))
        f_mip = float(loss[active] / loss.sum())
    return Medium(
        name=name,
        Z=float(np.sum(w * np.array([m.Z for m in mats]))),
        X0=x0_mm,
        R_M=E_SCALE / ec_over_x0 / rho * 10.0,
        E_c=x0_g * ec_over_x0,
        lambda_I=lam_g / rho * 10.0,
        mip_dEdx=float(loss.sum() / d_mm.sum()),
        F_S=x0_mm / float(d_mm.sum()),
        e_hat=e_hat,
        mip_fraction=f_mip,
    )


#: Pb/LAr stack of the CaloGAN detector: 2 mm Pb + 4 mm LAr (reference section a), LAr read out.
_CALOGAN_STACK = effective_medium("calogan-stack", [(LEAD, 2.0), (LIQUID_ARGON, 4.0)], active=1)

#: The CaloGAN files (total deposits in Pb and LAr): homogeneous formulas with the effective medium
#: of reference section (a)/(f): Z 69.4, X0 15.6 mm, R_M 35.5 mm, E_c 9.3 MeV, lambda_I 375 mm, and
#: a MIP loss of 271 MeV over the 480 mm. No sampling fluctuation (total deposits).
CALOGAN_MEDIUM = Medium("calogan", Z=69.4, X0=15.6, R_M=35.5, E_c=9.3, lambda_I=375.0, mip_dEdx=271.0 / 480.0)

#: The 2023 "samplingEM" CaloGAN files (LAr deposits x 5): sampling formulas with F_S 2.60,
#: e_hat 0.691, c 0.11; stored energy = 5 x (LAr share) of the deposit: 5 f_mip e_hat = 0.86 for
#: showers, 5 f_mip = 1.25 for a MIP (f_mip = 0.249 from the PDG losses of Pb and LAr).
CALOGAN_SAMPLING_MEDIUM = replace(
    CALOGAN_MEDIUM,
    name="samplingEM",
    sampling=True,
    F_S=2.60,
    e_hat=0.691,
    mip_fraction=_CALOGAN_STACK.mip_fraction,
    stochastic_term=0.11,
    em_scale=5.0 * _CALOGAN_STACK.mip_fraction * 0.691,
    mip_scale=5.0 * _CALOGAN_STACK.mip_fraction,
)

#: A CaloChallenge-dataset-2-like W/Si medium (1.4 mm W + 0.3 mm Si periods, reference section e),
#: total deposits, homogeneous formulas: Z 72.5, X0 4.2 mm, R_M 10.9 mm, E_c 8.2 MeV, lambda_I 116 mm.
#: Not calibrated to the real dataset 2 (whose response and sampling are not reproduced).
WSI_MEDIUM = replace(
    effective_medium("wsi", [(TUNGSTEN, 1.4), (SILICON, 0.3)], active=1), F_S=math.inf, e_hat=1.0, mip_fraction=1.0
)

#: Media by name (case-insensitive, see :func:`get_medium`).
MEDIA: dict[str, Medium] = {"calogan": CALOGAN_MEDIUM, "samplingem": CALOGAN_SAMPLING_MEDIUM, "wsi": WSI_MEDIUM}
_MEDIUM_ALIASES = {"sampling": "samplingem", "calogan-sampling": "samplingem", "ds2": "wsi", "w-si": "wsi", "calochallenge-ds2": "wsi"}


def get_medium(medium: str | Medium) -> Medium:
    """A :class:`Medium` by name: ``calogan``, ``samplingEM`` (``sampling``), ``wsi`` (``ds2``)."""
    if isinstance(medium, Medium):
        return medium
    key = str(medium).strip().lower()
    key = _MEDIUM_ALIASES.get(key, key)
    if key not in MEDIA:
        raise ConfigError(f"GFlash medium {medium!r}: expected one of calogan, samplingEM, wsi (or a gansim.physics.gflash.Medium)")
    return MEDIA[key]


# ---------------------------------------------------------------------------------------------
# the parameterisation (vectorised over showers)

#: Below this energy (MeV) the profile parameters are evaluated at it (fits valid above ~1 GeV).
E_PARAM_MIN = 100.0
#: Cap on sigma(ln T), sigma(ln alpha) (Geant4's sampling parameterisation).
SIGMA_MAX = 0.5
#: Per-shower floors on T (X0) and alpha (Geant4's sampling parameterisation), and on the spot profile.
T_MIN, ALPHA_MIN, T_SPOT_MIN = 1.0, 1.1, 0.5
#: Mean photon conversion depth, X0.
PHOTON_DEPTH = 9.0 / 7.0
#: Largest longitudinal step, X0 (Geant4's GFlashShowerModel).
MAX_STEP_X0 = 0.1


def _log_y(energy_mev: np.ndarray, medium: Medium) -> np.ndarray:
    return np.log(np.maximum(np.asarray(energy_mev, dtype=np.float64), E_PARAM_MIN) / medium.E_c)


def _inv_sigma(a: float, b: float, ln_y: np.ndarray) -> np.ndarray:
    """sigma = 1 / (a + b ln y), capped at SIGMA_MAX (also where the fit's denominator is not positive)."""
    den = a + b * ln_y
    with np.errstate(divide="ignore"):
        return np.where(den > 1.0 / SIGMA_MAX, 1.0 / np.maximum(den, 1e-300), SIGMA_MAX)


@dataclass(frozen=True)
class LongitudinalParameters:
    """Means, widths and correlation of (ln T, ln alpha) of individual showers, each shape (n,)."""

    mean_ln_T: np.ndarray
    sigma_ln_T: np.ndarray
    mean_ln_alpha: np.ndarray
    sigma_ln_alpha: np.ndarray
    rho: np.ndarray


def longitudinal_parameters(energy_mev: np.ndarray, medium: Medium) -> LongitudinalParameters:
    """Individual-shower fluctuation parameters (reference section f, "Individual showers").

    Homogeneous: <ln T> = ln(ln y - 0.812), sigma = 1/(-1.4 + 1.26 ln y); <ln alpha> =
    ln(0.81 + (0.458 + 2.26/Z) ln y), sigma = 1/(-0.58 + 0.86 ln y); rho = 0.705 - 0.023 ln y.
    Sampling: <ln T> = ln(e^<ln T_hom> - 0.55/F_S - 0.69 (1 - e_hat)), <ln alpha> =
    ln(e^<ln alpha_hom> - 0.476/F_S), sigmas 1/(-2.5 + 1.25 ln y), 1/(-0.82 + 0.79 ln y),
    rho = 0.784 - 0.023 ln y.

    Args:
        energy_mev: (n,) shower energies, MeV.
    """
    ly = _log_y(energy_mev, medium)
    z = medium.Z
    # the floors only act below ~30 MeV, i.e. never after the E_PARAM_MIN clamp
    t_hom = np.maximum(ly - 0.812, 0.5)
    a_hom = np.maximum(0.81 + (0.458 + 2.26 / z) * ly, 1.2)
    if not medium.sampling:
        return LongitudinalParameters(
            np.log(t_hom), _inv_sigma(-1.4, 1.26, ly), np.log(a_hom), _inv_sigma(-0.58, 0.86, ly), 0.705 - 0.023 * ly
        )
    t_sam = np.maximum(t_hom - 0.55 / medium.F_S - 0.69 * (1.0 - medium.e_hat), 0.5)
    a_sam = np.maximum(a_hom - 0.476 / medium.F_S, 1.2)
    return LongitudinalParameters(
        np.log(t_sam), _inv_sigma(-2.5, 1.25, ly), np.log(a_sam), _inv_sigma(-0.82, 0.79, ly), 0.784 - 0.023 * ly
    )


def mean_profile(energy_mev: np.ndarray, medium: Medium) -> tuple[np.ndarray, np.ndarray]:
    """(T, alpha) of the *average* profile (recalled in the reference; used for its table only).

    Homogeneous: T = ln y - 0.858, alpha = 0.21 + (0.492 + 2.38/Z) ln y; sampling:
    T - 0.59/F_S - 0.53 (1 - e_hat), alpha - 0.444/F_S.
    """
    ly = _log_y(energy_mev, medium)
    t = ly - 0.858
    a = 0.21 + (0.492 + 2.38 / medium.Z) * ly
    if medium.sampling:
        t = t - 0.59 / medium.F_S - 0.53 * (1.0 - medium.e_hat)
        a = a - 0.444 / medium.F_S
    return t, a


def draw_longitudinal(energy_mev: np.ndarray, medium: Medium, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, alpha) of individual showers from two standard normals per shower.

    ln T = <ln T> + sigma_T (sqrt((1+rho)/2) z1 + sqrt((1-rho)/2) z2),
    ln alpha = <ln alpha> + sigma_alpha (sqrt((1+rho)/2) z1 - sqrt((1-rho)/2) z2),
    then T >= 1 X0 and alpha >= 1.1.

    Args:
        energy_mev: (n,) MeV.
        normals: (n, 2) standard normal draws.

    Returns:
        T (n,) in X0 and alpha (n,); beta = (alpha - 1) / T.
    """
    p = longitudinal_parameters(energy_mev, medium)
    z = np.asarray(normals, dtype=np.float64)
    c1, c2 = np.sqrt((1.0 + p.rho) / 2.0), np.sqrt((1.0 - p.rho) / 2.0)
    t = np.exp(p.mean_ln_T + p.sigma_ln_T * (c1 * z[:, 0] + c2 * z[:, 1]))
    a = np.exp(p.mean_ln_alpha + p.sigma_ln_alpha * (c1 * z[:, 0] - c2 * z[:, 1]))
    return np.maximum(t, T_MIN), np.maximum(a, ALPHA_MIN)


def sample_longitudinal(energy_mev: np.ndarray, medium: Medium, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(T, alpha) of individual showers, (n,) each (:func:`draw_longitudinal` with fresh normals)."""
    e = np.atleast_1d(np.asarray(energy_mev, dtype=np.float64))
    return draw_longitudinal(e, medium, rng.standard_normal((e.size, 2)))


def spot_profile(t: np.ndarray, alpha: np.ndarray, medium: Medium) -> tuple[np.ndarray, np.ndarray]:
    """(T_s, alpha_s) of the spot profile: homogeneous T (0.698 + 0.00212 Z), alpha (0.639 + 0.00334 Z);
    sampling T (0.813 + 0.0019 Z), alpha (0.844 + 0.0026 Z); floors T_s >= 0.5, alpha_s >= 1.1."""
    z = medium.Z
    if medium.sampling:
        ts, as_ = t * (0.813 + 0.0019 * z), alpha * (0.844 + 0.0026 * z)
    else:
        ts, as_ = t * (0.698 + 0.00212 * z), alpha * (0.639 + 0.00334 * z)
    return np.maximum(ts, T_SPOT_MIN), np.maximum(as_, ALPHA_MIN)


def spot_count(energy_mev: np.ndarray, medium: Medium) -> np.ndarray:
    """N_spot: homogeneous 93 ln(Z) E^0.876, sampling (10.3 / c) E^0.959 (E in GeV). ~2,960 at 10 GeV in CaloGAN."""
    e_gev = np.asarray(energy_mev, dtype=np.float64) / 1000.0
    if medium.sampling:
        return 10.3 / medium.stochastic_term * e_gev**0.959
    return 93.0 * math.log(medium.Z) * e_gev**0.876


def gamma_fraction(alpha: np.ndarray, beta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(alpha, beta t): the fraction of a Gamma profile deposited before depth t >= 0 (t < 0 gives 0)."""
    return gammainc(alpha, beta * np.maximum(t, 0.0))


def shower_tau(t_rel: np.ndarray, t: np.ndarray, alpha: np.ndarray, mean_alpha: np.ndarray) -> np.ndarray:
    """tau, the depth variable of the radial profile, as Geant4 computes it.

    tau = t_rel / <t>_shower * <t>/T of the average shower = t_rel (alpha-1)/(alpha T) * a/(a-1),
    with a = exp(<ln alpha>) and t_rel the depth (X0) from the shower start; tau ~ t/T.
    """
    return t_rel * (alpha - 1.0) / (alpha * t) * mean_alpha / (mean_alpha - 1.0)


@dataclass(frozen=True)
class _RadialCoefficients:
    """The tau-independent parts of the radial fit (R_M units; arrays broadcast with ln E)."""

    z1: np.ndarray
    z2: float
    k1: float
    k4: np.ndarray
    p1: float
    p2: float
    inv_p3: np.ndarray


def _radial_coefficients(energy_mev: np.ndarray, medium: Medium) -> _RadialCoefficients:
    ln_e = np.log(np.maximum(np.asarray(energy_mev, dtype=np.float64), E_PARAM_MIN) / 1000.0)
    z = medium.Z
    return _RadialCoefficients(
        z1=0.0251 + 0.00319 * ln_e, z2=0.1162 - 0.000381 * z, k1=0.659 - 0.00309 * z, k4=0.3585 + 0.0412 * ln_e,
        p1=2.632 - 0.00094 * z, p2=0.401 + 0.00187 * z, inv_p3=1.0 / (1.313 - 0.0686 * ln_e),
    )


def _core_radius(z1: np.ndarray, c: _RadialCoefficients, tau: np.ndarray, medium: Medium) -> np.ndarray:
    r_c = z1 + c.z2 * tau
    if medium.sampling:
        r_c = r_c - 0.0203 * (1.0 - medium.e_hat) + 0.0397 / medium.F_S * np.exp(-tau)
    return np.maximum(r_c, 1e-4)


def _tail_radius(k4: np.ndarray, c: _RadialCoefficients, tau: np.ndarray, medium: Medium) -> np.ndarray:
    dt = tau - 0.645
    r_t = c.k1 * (np.exp(-2.59 * dt) + np.exp(k4 * dt))
    if medium.sampling:
        r_t = r_t - 0.14 * (1.0 - medium.e_hat) - 0.495 / medium.F_S * np.exp(-tau)
    return np.maximum(r_t, 1e-4)


def _core_weight(inv_p3: np.ndarray, c: _RadialCoefficients, tau: np.ndarray, medium: Medium) -> np.ndarray:
    u = (c.p2 - tau) * inv_p3
    p = c.p1 * np.exp(u - np.exp(u))
    if medium.sampling:
        p = p + (1.0 - medium.e_hat) * (0.348 - 0.642 / medium.F_S * np.exp(-np.square(tau - 1.0)))
    return np.clip(p, 0.0, 1.0)


def radial_parameters(energy_mev: np.ndarray, tau: np.ndarray, medium: Medium) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_C, R_T, p) of the radial profile in R_M units at depth tau (reference section f).

    R_C = z1 + z2 tau, z1 = 0.0251 + 0.00319 ln E, z2 = 0.1162 - 0.000381 Z;
    R_T = k1 (e^(k3 (tau - k2)) + e^(k4 (tau - k2))), k1 = 0.659 - 0.00309 Z, k2 = 0.645, k3 = -2.59,
    k4 = 0.3585 + 0.0412 ln E; p = p1 exp((p2 - tau)/p3 - e^((p2 - tau)/p3)), p1 = 2.632 - 0.00094 Z,
    p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E (E in GeV, at least E_PARAM_MIN); sampling
    corrections R_C += -0.0203 (1 - e_hat) + 0.0397/F_S e^-tau, R_T += -0.14 (1 - e_hat) -
    0.495/F_S e^-tau, p += (1 - e_hat)(0.348 - 0.642/F_S e^(-(tau - 1)^2)). p is clipped to [0, 1],
    radii kept > 0. Arrays broadcast together.
    """
    tau = np.asarray(tau, dtype=np.float64)
    c = _radial_coefficients(energy_mev, medium)
    return _core_radius(c.z1, c, tau, medium), _tail_radius(c.k4, c, tau, medium), _core_weight(c.inv_p3, c, tau, medium)


def radial_cdf(r: np.ndarray, r_core: np.ndarray, r_tail: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Fraction of the energy within radius r: p r^2/(r^2 + R_C^2) + (1 - p) r^2/(r^2 + R_T^2) (same units)."""
    r2 = np.square(r)
    return p * r2 / (r2 + np.square(r_core)) + (1.0 - p) * r2 / (r2 + np.square(r_tail))


def radius_from_uniforms(u_choice: np.ndarray, u_radius: np.ndarray, r_core: np.ndarray, r_tail: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Radii distributed as :func:`radial_cdf`: the core if u_choice < p, then R sqrt(u / (1 - u)).

    Args:
        u_choice, u_radius: uniforms in [0, 1), same shape as the (broadcast) parameters.
    """
    big_r = np.where(u_choice < p, r_core, r_tail)
    return big_r * np.sqrt(u_radius / (1.0 - u_radius))


# pi+ model constants (see the module docstring: recalled or ad hoc, approximate)
PION_E0_MEV, PION_K = 1000.0, 0.82
PION_FEM_RANGE = (0.05, 0.95)
PION_FEM_CONCENTRATION = 8.0
HADRON_VISIBLE = 0.65
HADRON_CORE, HADRON_HALO, HADRON_CORE_WEIGHT = 0.08, 0.27, 0.6  # radii in lambda_I
HADRON_SPOT_ENERGY = 10.0  # MeV of visible energy per hadronic spot
TRACK_SPREAD = 1.0  # mm, scale of the MIP track's offset from the axis
MIP_MODE_RATIO = 0.7
MOYAL_MEAN = 1.2703628454614782  # E[-ln chi2(1)] = gamma_Euler + ln 2
MOYAL_SCALE = (1.0 - MIP_MODE_RATIO) / MOYAL_MEAN


def pion_em_fraction(energy_mev: np.ndarray) -> np.ndarray:
    """Mean EM fraction of a hadronic shower, 1 - (E/E0)^(k-1), E0 = 1 GeV, k = 0.82 (recalled,
    approximate), clipped to [0.05, 0.95]: 0.34 at 10 GeV, 0.56 at 100 GeV."""
    e = np.maximum(np.asarray(energy_mev, dtype=np.float64), 1e-9)
    return np.clip(1.0 - (e / PION_E0_MEV) ** (PION_K - 1.0), *PION_FEM_RANGE)


def _hadron_profile(energy_mev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shape, rate per lambda_I) of the hadronic longitudinal Gamma profile (Bock-type, recalled)."""
    ln_e = np.log(np.maximum(np.asarray(energy_mev, dtype=np.float64), E_PARAM_MIN) / 1000.0)
    return np.maximum(0.6165 + 0.3183 * ln_e, 0.5), np.maximum(0.9099 - 0.0237 * ln_e, 0.5)


# ---------------------------------------------------------------------------------------------
# particles, depth grid, random streams

#: Particle names as the CaloGAN files: e+, gamma, pi+ (e- is showered like e+).
PARTICLES = ("eplus", "gamma", "piplus")
_PARTICLE_ALIASES = {
    "eplus": "eplus", "e+": "eplus", "positron": "eplus", "eminus": "eplus", "e-": "eplus", "electron": "eplus",
    "gamma": "gamma", "photon": "gamma", "piplus": "piplus", "pi+": "piplus", "pion": "piplus",
}


def normalise_particle(particle: str) -> str:
    """``eplus``, ``gamma`` or ``piplus`` from a name (``e+``, ``photon``, ``pi+``... accepted)."""
    key = str(particle).strip().lower()
    if key not in _PARTICLE_ALIASES:
        raise ConfigError(f"particle {particle!r}: expected one of {', '.join(PARTICLES)}")
    return _PARTICLE_ALIASES[key]


@dataclass(frozen=True)
class DepthGrid:
    """Longitudinal steps along the beam, mm from the calorimeter face, aligned with readout layers.

    Attributes:
        edges: (S + 1,) increasing step edges, mm (edges[0] = 0 is the face).
        step_layer: (S,) readout layer of each step.
        n_layers: number of readout layers.
    """

    edges: np.ndarray
    step_layer: np.ndarray
    n_layers: int

    @classmethod
    def from_boundaries(cls, boundaries_mm: Sequence[float], max_step_mm: float) -> DepthGrid:
        """Cut each readout layer [b_i, b_i+1) into equal steps of at most ``max_step_mm``."""
        b = np.asarray(boundaries_mm, dtype=np.float64)
        if b.ndim != 1 or b.size < 2 or not np.all(np.isfinite(b)) or np.any(np.diff(b) <= 0) or b[0] != 0.0:
            raise ConfigError(f"depth grid boundaries {b.tolist()}: expected >= 2 increasing finite values starting at 0 mm")
        if not (max_step_mm > 0 and math.isfinite(max_step_mm)):
            raise ConfigError(f"depth grid step {max_step_mm!r} mm: expected a positive number")
        edges, layer = [np.zeros(1)], []
        for i, (lo, hi) in enumerate(pairwise(b)):
            k = max(1, math.ceil((hi - lo) / max_step_mm - 1e-9))
            edges.append(np.linspace(lo, hi, k + 1)[1:])
            layer.append(np.full(k, i, dtype=np.int64))
        return cls(np.concatenate(edges), np.concatenate(layer), int(b.size - 1))

    @property
    def n_steps(self) -> int:
        return int(self.step_layer.size)

    @property
    def depth(self) -> float:
        """Total depth, mm."""
        return float(self.edges[-1])


# purposes: one generator per (block, purpose), each used at most once per block
_ENERGY, _PROFILE, _START, _FEM, _MIP, _EM_SPOTS, _HAD_SPOTS, _EM_FLUCT, _HAD_FLUCT = range(9)


class RandomStreams:
    """Random numbers for a batch of showers, either from one Generator or per fixed block of showers.

    In block mode every (block, purpose) pair has its own generator, seeded from
    ``SeedSequence(seed, spawn_key=(block, purpose))`` and used once, so the draws of a shower depend
    only on the seed, its block, its place in the block and the showers before it in the block:
    the same showers come out however the data set is cut into batches (of whole blocks), and the
    first k showers of a longer set equal a shorter set.
    """

    def __init__(self, rng: np.random.Generator | None = None, *, n: int = 0, seed: int | None = None,
                 first_block: int = 0, block_size: int = 64) -> None:
        self._rng = rng
        self._seed = seed
        self._cache: dict[tuple[int, int], np.random.Generator] = {}
        if rng is not None:
            self._blocks = [(0, 0, n)]
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ConfigError(f"seed {seed!r}: expected a whole number >= 0")
            if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
                raise ConfigError(f"block_size {block_size!r}: expected a whole number >= 1")
            bounds = list(range(0, n, block_size)) + [n]
            self._blocks = [(first_block + i, lo, hi) for i, (lo, hi) in enumerate(pairwise(bounds))]
        self.n = n

    @classmethod
    def from_generator(cls, rng: np.random.Generator, n: int) -> RandomStreams:
        return cls(rng, n=n)

    def _gen(self, block: int, purpose: int) -> np.random.Generator:
        if self._rng is not None:
            return self._rng
        key = (block, purpose)
        if key not in self._cache:
            self._cache[key] = np.random.default_rng(np.random.SeedSequence(int(self._seed), spawn_key=key))
        return self._cache[key]

    def _per_event(self, purpose: int, draw: Callable[[np.random.Generator, int, int, int], np.ndarray]) -> np.ndarray:
        if not self._blocks:
            raise ConfigError("random streams for 0 showers: nothing to draw")
        return np.concatenate([draw(self._gen(b, purpose), hi - lo, lo, hi) for b, lo, hi in self._blocks])

    def uniform(self, purpose: int, k: int) -> np.ndarray:
        """(n, k) uniforms in [0, 1), row i for shower i."""
        return self._per_event(purpose, lambda g, m, lo, hi: g.random((m, k)))

    def normal(self, purpose: int, k: int) -> np.ndarray:
        """(n, k) standard normals."""
        return self._per_event(purpose, lambda g, m, lo, hi: g.standard_normal((m, k)))

    def beta(self, purpose: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n,) Beta(a_i, b_i)."""
        return self._per_event(purpose, lambda g, m, lo, hi: g.beta(a[lo:hi], b[lo:hi]))

    def _item_bounds(self, counts: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def uniform_items(self, purpose: int, counts: np.ndarray, k: int) -> np.ndarray:
        """(sum counts, k) float32 uniforms in [0, 1); counts[i] rows for shower i, in shower order."""
        c = self._item_bounds(counts)
        return self._per_event(purpose, lambda g, m, lo, hi: g.random((int(c[hi] - c[lo]), k), dtype=np.float32))

    def gamma_items(self, purpose: int, counts: np.ndarray, shape: np.ndarray) -> np.ndarray:
        """Gamma(shape_j, 1) for items grouped by shower (counts[i] items for shower i)."""
        c = self._item_bounds(counts)
        return self._per_event(purpose, lambda g, m, lo, hi: g.standard_gamma(shape[c[lo]:c[hi]]))


#: The purpose whose stream :mod:`gansim.data.calo` draws incident energies from.
ENERGY_STREAM = _ENERGY


def _as_streams(rng: np.random.Generator | RandomStreams, n: int) -> RandomStreams:
    if isinstance(rng, RandomStreams):
        if rng.n != n:
            raise ConfigError(f"random streams for {rng.n} showers given for {n} showers")
        return rng
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng {rng!r}: expected a numpy.random.Generator (np.random.default_rng(seed))")
    return RandomStreams.from_generator(rng, n)


# ---------------------------------------------------------------------------------------------
# the sampler


@dataclass
class Spots:
    """Energy spots of a batch of showers, shape (M,) each.

    Attributes:
        event: shower index in the batch (int64).  step: index into the :class:`DepthGrid` (int32).
        x, y: mm from the beam axis (x: CaloGAN's phi axis, y: eta), float32.
        z: mm from the face, float32.
        energy: stored energy (after the medium's fluctuation and scale), MeV, float64.
    """

    event: np.ndarray
    step: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    energy: np.ndarray

    @classmethod
    def empty(cls) -> Spots:
        f = np.zeros(0, np.float32)
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int32), f, f.copy(), f.copy(), np.zeros(0))

    @classmethod
    def concatenate(cls, parts: Sequence[Spots]) -> Spots:
        parts = [p for p in parts if p.event.size]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("event", "step", "x", "y", "z", "energy")))

    def __len__(self) -> int:
        return int(self.event.size)


@dataclass
class ShowerSample:
    """What :func:`simulate_showers` returns for n showers.

    Attributes:
        energy: (n,) incident (kinetic) energies, MeV.
        spots: every deposit, grouped by shower.
        diagnostics: (n,) arrays: ``leakage_MeV`` (energy beyond the back), ``invisible_MeV``
            (pi+ nuclear losses), ``start_depth_mm`` (photon conversion or pi+ interaction depth,
            inf when the pion does not interact; 0 for e+), ``T_X0`` and ``alpha`` of the
            (leading) EM shower (NaN without one), ``em_fraction`` (pi+), ``mip_MeV`` (pi+ track).
            Energies here are deposits before the medium's fluctuation and scale.
    """

    energy: np.ndarray
    spots: Spots
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Component:
    """Rows of Gamma-profile showers (EM or hadronic) to turn into spots, sorted by event."""

    event: np.ndarray  # (m,) int
    energy: np.ndarray  # (m,) MeV distributed by the profile
    start: np.ndarray  # (m,) mm from the face
    shape: np.ndarray
    rate: np.ndarray  # per mm
    spot_shape: np.ndarray
    spot_rate: np.ndarray  # per mm
    n_spots: np.ndarray
    em: bool
    shower_energy: np.ndarray | None = None  # (m,) MeV, EM radial parameters
    tau_per_mm: np.ndarray | None = None  # (m,) EM: tau per mm after the start


def _em_component(event: np.ndarray, energy: np.ndarray, start_mm: np.ndarray, normals: np.ndarray,
                  medium: Medium) -> tuple[_Component, np.ndarray, np.ndarray]:
    t, a = draw_longitudinal(energy, medium, normals)
    ts, as_ = spot_profile(t, a, medium)
    mean_a = np.exp(longitudinal_parameters(energy, medium).mean_ln_alpha)
    comp = _Component(
        event=event, energy=energy, start=start_mm, shape=a, rate=(a - 1.0) / t / medium.X0,
        spot_shape=as_, spot_rate=(as_ - 1.0) / ts / medium.X0, n_spots=spot_count(energy, medium), em=True,
        shower_energy=energy, tau_per_mm=shower_tau(1.0 / medium.X0, t, a, mean_a),
    )
    return comp, t, a


def _steps(comp: _Component, grid: DepthGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step energies (m, S), spot counts (m, S) and the energy beyond the back (m,), MeV."""
    d = np.maximum(grid.edges[None, :] - comp.start[:, None], 0.0)  # depth after the start, mm
    f = gammainc(comp.shape[:, None], comp.rate[:, None] * d)
    de = comp.energy[:, None] * np.diff(f, axis=1)
    g = gammainc(comp.spot_shape[:, None], comp.spot_rate[:, None] * d)
    counts = np.where(de > 0.0, np.maximum(1.0, np.floor(np.diff(g, axis=1) * comp.n_spots[:, None])), 0.0).astype(np.int64)
    leak = comp.energy * gammaincc(comp.shape, comp.rate * d[:, -1])
    return de, counts, leak


def _expand(comp: _Component, de: np.ndarray, counts: np.ndarray, grid: DepthGrid, medium: Medium,
            streams: RandomStreams, n: int, purposes: tuple[int, int], offset: np.ndarray | None) -> Spots:
    """Spots of the component's rows: depth in the step, radius, phi, energy (+ fluctuation, scale).

    Geometry is computed in float32 (ample for mm-scale cells, and transcendental functions are
    several times faster); energies stay float64 so that sums are exact to rounding.
    """
    m, s = counts.shape
    row_counts = counts.sum(axis=1)
    per_event = np.bincount(comp.event, weights=row_counts, minlength=n).astype(np.int64)
    u = streams.uniform_items(purposes[0], per_event, 4)
    if u.shape[0] == 0:
        return Spots.empty()
    f4 = np.float32
    # per (row, step) tables, gathered once per spot through the flat (row, step) index
    flat = np.repeat(np.arange(m * s, dtype=np.int32 if m * s < 2**31 else np.int64), counts.ravel())
    row = np.repeat(np.arange(m, dtype=np.int32), row_counts)
    lo = np.maximum(grid.edges[None, :-1], comp.start[:, None])  # spots start after the shower does
    width = np.maximum(grid.edges[None, 1:] - lo, 0.0)
    t_rel = u[:, 0] * width.astype(f4).ravel()[flat]
    t_rel += (lo - comp.start[:, None]).astype(f4).ravel()[flat]  # mm after the shower start
    z = t_rel + comp.start.astype(f4)[row]
    energy = (de / np.maximum(counts, 1)).ravel()[flat]
    if comp.em:
        tau = t_rel * comp.tau_per_mm.astype(f4)[row]
        c = _radial_coefficients(comp.shower_energy, medium)
        p = _core_weight(c.inv_p3.astype(f4)[row], c, tau, medium)
        big_r = _core_radius(c.z1.astype(f4)[row], c, tau, medium)
        # the tail radius only where the tail is chosen (~10-20 % of the spots)
        tail = np.flatnonzero(u[:, 1] >= p)
        big_r[tail] = _tail_radius(c.k4.astype(f4)[row[tail]], c, tau[tail], medium)
        r = (f4(medium.R_M) * big_r) * np.sqrt(u[:, 2] / (f4(1.0) - u[:, 2]))
    else:
        lam = medium.lambda_I
        r = radius_from_uniforms(u[:, 1], u[:, 2], f4(HADRON_CORE * lam), f4(HADRON_HALO * lam), f4(HADRON_CORE_WEIGHT))
    phi = f4(2.0 * math.pi) * u[:, 3]
    x, y = r * np.cos(phi), r * np.sin(phi)
    event = comp.event[row]
    if offset is not None:
        x += offset[event, 0].astype(f4)
        y += offset[event, 1].astype(f4)
    cst = medium.stochastic_term
    if cst > 0:
        c2_mev = cst * cst * 1000.0  # c^2 GeV in MeV: Gamma(e/c^2, c^2) with e in GeV
        energy = streams.gamma_items(purposes[1], per_event, energy / c2_mev) * c2_mev
    if medium.em_scale != 1.0:
        energy = energy * medium.em_scale
    return Spots(event, (flat % s).astype(np.int32), x, y, z, energy)


def max_spots_per_shower(energy_mev: np.ndarray, particle: str, medium: Medium | str, grid: DepthGrid) -> np.ndarray:
    """An upper bound on the spots of each shower (for memory planning), (n,)."""
    medium = get_medium(medium)
    e = np.asarray(energy_mev, dtype=np.float64)
    bound = spot_count(e, medium) + grid.n_steps + 1
    if normalise_particle(particle) == "piplus":
        bound = bound + e * HADRON_VISIBLE / HADRON_SPOT_ENERGY + 2 * grid.n_steps + 2
    return np.ceil(bound).astype(np.int64)


def _check_energies(energy_mev: np.ndarray) -> np.ndarray:
    e = np.asarray(energy_mev, dtype=np.float64)
    if e.ndim != 1:
        e = e.reshape(-1)
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        bad = np.flatnonzero(~(np.isfinite(e) & (e > 0)))
        raise DataError(f"shower energies: {bad.size} not finite or not positive (first at index {int(bad[0])}: {e[bad[0]]!r} MeV); expected energies > 0 MeV")
    return e


def simulate_showers(energy_mev: np.ndarray, particle: str, medium: Medium | str, grid: DepthGrid,
                     rng: np.random.Generator | RandomStreams) -> ShowerSample:
    """Simulate n showers of one particle entering the face at x = y = 0 along the grid's axis.

    Args:
        energy_mev: (n,) incident (kinetic) energies, MeV.
        particle: ``eplus`` (e+/e-), ``gamma`` or ``piplus``.
        medium: a :class:`Medium` or its name.
        grid: the longitudinal steps and readout layers (depth from the face, mm).
        rng: a seeded Generator, or :class:`RandomStreams` for batch-independent data sets.

    Returns:
        The spots (positions mm, energies MeV) and per-shower diagnostics. Memory grows with the
        spot count (~3,000 per 10 GeV e+ shower in CaloGAN): keep batches below ~1e7 spots
        (:func:`max_spots_per_shower`).
    """
    medium = get_medium(medium)
    particle = normalise_particle(particle)
    e = _check_energies(energy_mev)
    n = e.size
    streams = _as_streams(rng, n)
    nan = np.full(n, np.nan)
    diag = {"leakage_MeV": np.zeros(n), "invisible_MeV": np.zeros(n), "start_depth_mm": np.zeros(n),
            "T_X0": nan.copy(), "alpha": nan.copy(), "em_fraction": nan.copy(), "mip_MeV": np.zeros(n)}
    if n == 0:
        return ShowerSample(e, Spots.empty(), diag)
    normals = streams.normal(_PROFILE, 2)
    everyone = np.arange(n, dtype=np.int64)
    if particle != "piplus":
        start = np.zeros(n)
        if particle == "gamma":
            u = streams.uniform(_START, 1)[:, 0]
            start = -PHOTON_DEPTH * medium.X0 * np.log1p(-u)
        comp, t, a = _em_component(everyone, e, start, normals, medium)
        de, counts, leak = _steps(comp, grid)
        spots = _expand(comp, de, counts, grid, medium, streams, n, (_EM_SPOTS, _EM_FLUCT), None)
        diag.update(leakage_MeV=leak, start_depth_mm=start, T_X0=t, alpha=a)
        return ShowerSample(e, spots, diag)
    return _simulate_pions(e, medium, grid, streams, normals, diag)


def _simulate_pions(e: np.ndarray, medium: Medium, grid: DepthGrid, streams: RandomStreams,
                    normals: np.ndarray, diag: dict[str, np.ndarray]) -> ShowerSample:
    n = e.size
    u = streams.uniform(_START, 3)
    z_int = -medium.lambda_I * np.log1p(-u[:, 0])
    interacts = z_int < grid.depth
    # the MIP track: a straight line at a small offset, Landau-like loss per step up to z_int
    r_track = TRACK_SPREAD * np.sqrt(u[:, 1] / (1.0 - u[:, 1]))
    offset = np.stack([r_track * np.cos(2 * math.pi * u[:, 2]), r_track * np.sin(2 * math.pi * u[:, 2])], axis=1)
    lo, hi = grid.edges[:-1][None, :], grid.edges[1:][None, :]
    path = np.clip(np.minimum(z_int[:, None], hi) - lo, 0.0, None)  # (n, S) mm of track in each step
    moyal = -np.log(np.square(streams.normal(_MIP, grid.n_steps)))
    mip = np.maximum(medium.mip_dEdx * path * (MIP_MODE_RATIO + MOYAL_SCALE * moyal), 0.0)
    total_mip = mip.sum(axis=1)
    # a pion cannot lose more than it has (slow pions range out; not modelled beyond this)
    too_much = total_mip > e
    if np.any(too_much):
        mip[too_much] *= (e[too_much] / total_mip[too_much])[:, None]
        total_mip = np.minimum(total_mip, e)
    ev_mip, st_mip = np.nonzero(path > 0.0)
    spots_mip = Spots(
        ev_mip.astype(np.int64), st_mip.astype(np.int32), offset[ev_mip, 0].astype(np.float32),
        offset[ev_mip, 1].astype(np.float32), (grid.edges[st_mip] + 0.5 * path[ev_mip, st_mip]).astype(np.float32),
        mip[ev_mip, st_mip] * medium.mip_scale,
    )
    # at the interaction: an EM part (one GFlash photon-like shower) and a hadronic remainder
    avail = np.where(interacts, e - total_mip, 0.0)
    f_bar = pion_em_fraction(np.maximum(avail, 1e-9))
    f_em = streams.beta(_FEM, PION_FEM_CONCENTRATION * f_bar, PION_FEM_CONCENTRATION * (1.0 - f_bar))
    f_em = np.where(interacts, f_em, np.nan)
    e_em = np.where(interacts, f_em * avail, 0.0)
    e_had = np.where(interacts, avail - e_em, 0.0)
    leak = np.where(interacts, 0.0, e - total_mip)
    invisible = np.zeros(n)
    parts = [spots_mip]
    t_em, a_em = np.full(n, np.nan), np.full(n, np.nan)
    rows = np.flatnonzero(interacts & (e_em > 0))
    if rows.size:
        comp, t, a = _em_component(rows, e_em[rows], z_int[rows], normals[rows], medium)
        de, counts, leak_em = _steps(comp, grid)
        parts.append(_expand(comp, de, counts, grid, medium, streams, n, (_EM_SPOTS, _EM_FLUCT), offset))
        leak[rows] += leak_em
        t_em[rows], a_em[rows] = t, a
    rows = np.flatnonzero(interacts & (e_had > 0))
    if rows.size:
        shape, rate = _hadron_profile(e_had[rows])
        rate_mm = rate / medium.lambda_I
        n_had = np.maximum(e_had[rows] * HADRON_VISIBLE / HADRON_SPOT_ENERGY, 1.0)
        comp = _Component(rows, HADRON_VISIBLE * e_had[rows], z_int[rows], shape, rate_mm, shape, rate_mm, n_had, em=False)
        de, counts, leak_vis = _steps(comp, grid)
        parts.append(_expand(comp, de, counts, grid, medium, streams, n, (_HAD_SPOTS, _HAD_FLUCT), offset))
        # the profile's tail beyond the back leaks in full; of what stays, 1 - h/e is invisible
        leak_frac = leak_vis / comp.energy
        leak[rows] += e_had[rows] * leak_frac
        invisible[rows] = (1.0 - HADRON_VISIBLE) * e_had[rows] * (1.0 - leak_frac)
    diag.update(leakage_MeV=leak, invisible_MeV=invisible, start_depth_mm=np.where(interacts, z_int, np.inf),
                T_X0=t_em, alpha=a_em, em_fraction=f_em, mip_MeV=total_mip)
    spots = Spots.concatenate(parts)
    # group the spots by shower (the per-shower order inside does not matter)
    order = np.argsort(spots.event, kind="stable")
    spots = Spots(*(getattr(spots, k)[order] for k in ("event", "step", "x", "y", "z", "energy")))
    return ShowerSample(e, spots, diag)
