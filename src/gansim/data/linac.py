"""Analytic phase space of a 6 MV-like linac photon beam, for demos and tests.

:func:`generate_linac_phsp` draws photons crossing a scoring plane below the
linac head with the same columns (and units) a GATE phase-space actor writes.
It is a toy model with the features a GAN has to learn from a real phase space
(a bremsstrahlung spectrum, a collimated divergent field with a soft penumbra,
a weak tail through the jaws, a softer and broader scatter component, and an
energy/position correlation), cheap enough to make millions of rows in a second.

Geometry (mm; beam along **-z**: head above, patient below)
----------------------------------------------------------
* isocentre at the origin, the target (focal spot) at ``z = +sad`` (1000 mm);
* flattening filter ``d_ff = 100`` mm below the target, jaws ``d_jaw = 350`` mm
  below it, scoring plane at ``z = plane_z`` (default 300 mm, i.e.
  ``d_plane = sad - plane_z = 700`` mm below the target); ``PrePosition_Z`` is
  ``plane_z`` for every row and ``PreDirection_Z < 0``;
* the jaws define a square field of side ``field_size`` (100 mm) at the
  isocentre, i.e. half-width ``a_jaw = field_size/2 * d_jaw/sad`` at the jaws and
  ``a_plane = field_size/2 * d_plane/sad`` (35 mm) on the plane;
* the primary collimator is a cone of half-angle 14 deg from the target: nothing
  reaches the plane outside the disc ``r <= d_plane * tan(14 deg)`` (175 mm).

Primary photons (a fraction ``1 - scatter_fraction``)
-----------------------------------------------------
* Origin ``s`` on the focal spot: radial Gaussian, ``sigma = spot_sigma``
  (0.5 mm, FWHM 1.2 mm), truncated at 4 sigma.
* A ray from ``s`` to an aim point ``p`` on the plane crosses the jaw plane at
  ``c = s + (p - s) * k`` with ``k = (d_jaw - d_src) / (d_plane - d_src)``; it is
  transmitted with probability ``T = 1[|p| <= r_pc] * Tx(c_x) * Ty(c_y)``, where

      Tx(c) = l + (1 - l) * [erf((a_jaw - c) / (sqrt(2) sj)) + erf((a_jaw + c) / (sqrt(2) sj))] / 2

  is a soft-edged aperture (jaw-edge blur ``sj = 1`` mm at the jaw plane) with a
  transmission ``l = jaw_transmission`` (0.5 %) through each jaw pair. The
  fluence on the plane is thus flat inside the field (the flattening filter's
  job) with an error-function penumbra combining the jaw-edge blur and the spot
  size (``sigma ~ 2.1`` mm, 80-20 % width ~3.5 mm on the plane, ~5 mm at the
  isocentre), and a 0.5 % floor out to the primary collimator. Rays are drawn
  exactly from ``g(s) T(s, p)`` without evaluating ``erf`` (see ``_sample_rays``).
* Direction ``u = (p - s) / |p - s|``: a point-source divergence, all rows
  pointing away from the focal spot (``u_z < 0``).
* Energy: thick-target (Kramers) bremsstrahlung number spectrum hardened by the
  target and flattening filter,

      dN/dE  ~  (E0 - E) / E * exp(-mu_m(E) * rho_t(theta)),    0.01 MeV <= E <= E0 = 6 MeV,
      mu_m(E) = 0.06 E^-0.45 + 2e-4 E^-3   cm^2/g   (iron-like: Compton + photoelectric),
      rho_t(theta) = 24 g/cm^2 * (1 - 0.7 * min(theta / 14 deg, 1)),

  where ``theta`` is the ray's angle to the axis: the filter is thinner off
  axis, so the beam softens away from the axis (mean 1.72 MeV near the axis,
  1.67 MeV over a 10 cm field), as in real flattened beams.
* About 92 % of the primaries land inside the geometric field projected on the
  plane; the rest are the outer half of the penumbra (~4.5 %) and the
  transmission through the jaws (~3.5 %).

Scatter photons (a fraction ``scatter_fraction``, default 10 %)
---------------------------------------------------------------
* Origin on the flattening filter, ``d_src = 100`` mm below the target: radial
  Gaussian ``sigma = 10`` mm truncated at the filter radius 30 mm. The same jaw
  model then gives a broader field (edge at ``a_jaw / k``, 42 mm on the plane
  instead of 35) with a much wider penumbra (~14 mm), because the source is
  extended and closer to the jaws.
* Energy: a primary energy ``E`` drawn with the on-axis filter thickness, then
  Compton-scattered, ``E' = E / (1 + E / m_e c^2 * (1 - cos a))`` with
  ``1 - cos a`` exponential of mean 0.15 truncated at 2. The scattering angle
  only sets the energy loss: it is not tied to the outgoing direction, as if
  the photon had scattered more than once inside the filter. Mean ~1.16 MeV.

Particle type: every row is a photon, and the table says so with a
``PDGCode`` column (int32, all 22), so that files written from it (MCPL,
IAEA) record the particle type without a ``particle=`` option. Training
ignores it (it is a bookkeeping column, constant anyway).

Simplifications: no electron contamination, no jaw hardening of the
transmitted photons (they keep the open-beam spectrum), no weights (every row
has weight 1, so no ``Weight`` column: a constant column would teach a GAN
nothing). The mean energy over all rows is about 1.61 MeV for the defaults
(documented range 1.4-1.9 MeV, checked by the tests).
"""

from __future__ import annotations

import math

import numpy as np

from gansim.errors import ConfigError
from gansim.io.phsp.columns import PDG_GAMMA

__all__ = [
    "generate_linac_phsp",
    "LINAC_COLUMNS",
    "LINAC_FLOAT_COLUMNS",
    "LINAC_PDG_CODE",
    "JAW_DISTANCE",
    "FILTER_DISTANCE",
    "PRIMARY_COLLIMATOR_HALF_ANGLE",
    "ENERGY_MIN",
    "COMPONENT_PRIMARY",
    "COMPONENT_SCATTER",
    "bremsstrahlung_spectrum",
]

#: The float32 columns of the generated table (the kinematics), in GATE names.
LINAC_FLOAT_COLUMNS: tuple[str, ...] = (
    "KineticEnergy",
    "PrePosition_X",
    "PrePosition_Y",
    "PrePosition_Z",
    "PreDirection_X",
    "PreDirection_Y",
    "PreDirection_Z",
)
#: PDG code of every generated row (photons).
LINAC_PDG_CODE = PDG_GAMMA
#: Columns of the generated table, in order: :data:`LINAC_FLOAT_COLUMNS` then
#: ``PDGCode`` (int32, all :data:`LINAC_PDG_CODE`).
LINAC_COLUMNS: tuple[str, ...] = (*LINAC_FLOAT_COLUMNS, "PDGCode")

#: Distance of the jaws below the target (mm).
JAW_DISTANCE = 350.0
#: Distance of the flattening filter (scatter source) below the target (mm).
FILTER_DISTANCE = 100.0
#: Scatter source: radial Gaussian sigma and truncation radius on the filter (mm).
FILTER_SIGMA = 10.0
FILTER_RADIUS = 30.0
#: Primary collimator half-angle seen from the target (rad).
PRIMARY_COLLIMATOR_HALF_ANGLE = math.radians(14.0)
#: Jaw-edge blur (Gaussian sigma at the jaw plane, mm).
JAW_EDGE_SIGMA = 1.0
#: The focal spot is truncated at this many sigma.
SPOT_TRUNCATION = 4.0
#: Lowest photon energy of the spectrum grid (MeV); filtration makes it irrelevant.
ENERGY_MIN = 0.01
#: Areal density of target + flattening filter on the axis (g/cm^2) and its off-axis thinning.
FILTER_RHO_T = 24.0
FILTER_EDGE_THINNING = 0.7
#: Mean of 1 - cos(a) for the Compton energy loss of the scatter component.
SCATTER_MEAN_ONE_MINUS_COS = 0.15
ELECTRON_MASS = 0.51099895  # MeV

#: Values of the optional ``Component`` column.
COMPONENT_PRIMARY = 0
COMPONENT_SCATTER = 1

_GRID_POINTS = 2048


def _mu_mass(e: np.ndarray) -> np.ndarray:
    """Iron-like mass attenuation coefficient (cm^2/g) of photons of energy ``e`` (MeV)."""
    inv = 1.0 / e
    return 0.06 * np.exp(-0.45 * np.log(e)) + 2e-4 * inv * inv * inv


def bremsstrahlung_spectrum(
    energy: np.ndarray, rho_t: float = FILTER_RHO_T, energy_max: float = 6.0
) -> np.ndarray:
    """Unnormalised filtered thick-target spectrum ``(E0 - E)/E * exp(-mu_m(E) rho_t)`` (photons/MeV).

    ``energy`` in MeV (any shape), ``rho_t`` in g/cm^2; zero outside ``(0, energy_max]``.
    """
    e = np.asarray(energy, dtype=np.float64)
    out = np.zeros_like(e)
    ok = (e > 0) & (e <= energy_max)
    out[ok] = (energy_max - e[ok]) / e[ok] * np.exp(-_mu_mass(e[ok]) * rho_t)
    return out


class _SpectrumSampler:
    """Draws energies from the spectrum for per-row filter thicknesses ``rho_t`` (g/cm^2).

    The thickness range is cut into bins; in each bin the proposal is the
    spectrum of the bin's thinnest filter, drawn by inverse CDF on a log grid
    (piecewise uniform between grid points), and a row of thickness ``t``
    accepts ``E`` with probability ``exp(-mu_m(E) (t - t_bin))`` <= 1. That gives
    exactly the spectrum for ``t`` with an acceptance close to 1.
    """

    def __init__(self, energy_max: float, t_min: float, t_max: float, bins: int = 8) -> None:
        self.grid = np.geomspace(ENERGY_MIN, energy_max, _GRID_POINTS)
        self.edges = np.linspace(t_min, t_max, bins + 1) if t_max > t_min else np.array([t_min, t_min])
        self.energy_max = energy_max
        self._cdfs: dict[int, np.ndarray] = {}

    def _cdf(self, b: int) -> np.ndarray:
        if b not in self._cdfs:
            pdf = bremsstrahlung_spectrum(self.grid, float(self.edges[b]), self.energy_max)
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(self.grid))])
            self._cdfs[b] = cdf / cdf[-1]
        return self._cdfs[b]

    def sample(self, rng: np.random.Generator, rho_t: np.ndarray) -> np.ndarray:
        out = np.empty(len(rho_t), dtype=np.float64)
        nb = len(self.edges) - 1
        which = np.clip(np.searchsorted(self.edges, rho_t, side="right") - 1, 0, nb - 1)
        for b in range(nb):
            todo = np.flatnonzero(which == b)
            cdf = self._cdf(b)
            while len(todo):
                e = np.interp(rng.random(len(todo)), cdf, self.grid)
                keep = rng.random(len(todo)) < np.exp(-_mu_mass(e) * (rho_t[todo] - self.edges[b]))
                out[todo[keep]] = e[keep]
                todo = todo[~keep]
        return out


def _truncated_gaussian_2d(rng: np.random.Generator, m: int, sigma: float, radius: float) -> np.ndarray:
    """``(m, 2)`` points of a 2-D Gaussian of ``sigma`` truncated at ``radius`` (rows outside redrawn)."""
    if sigma <= 0 or radius <= 0:
        return np.zeros((m, 2))
    out = rng.standard_normal((m, 2)) * sigma
    bad = np.flatnonzero((out * out).sum(axis=1) > radius * radius)
    while len(bad):  # rare (a 4-sigma cut redraws 0.03 % of the rows, a 3-sigma cut 1.1 %)
        z = rng.standard_normal((len(bad), 2)) * sigma
        out[bad] = z
        bad = bad[(z * z).sum(axis=1) > radius * radius]
    return out


def _sample_rays(
    rng: np.random.Generator,
    m: int,
    *,
    d_src: float,
    src_sigma: float,
    src_radius: float,
    d_plane: float,
    a_jaw: float,
    leak: float,
    r_disc: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``m`` transmitted rays: source points ``(m, 2)`` at ``d_src`` and aim points ``(m, 2)`` on the plane.

    Samples ``(s, p)`` with density ``g(s) T(s, p)`` exactly, without evaluating
    ``erf``: per axis ``Tx = l + (1 - l) o(c)`` where the window ``o`` is a uniform
    on ``[-a, a]`` convolved with a Gaussian, so ``c = U(-a, a) + sj N(0, 1)`` draws
    from it and ``p = (c - (1 - k) s) / k``. Expanding ``Tx Ty`` gives four
    terms (window/uniform per axis) whose masses over the plane do not depend on
    ``s``: ``(1 - l) 2a/k`` for a window axis, ``l 2 r_pc`` for a uniform axis on
    ``[-r_pc, r_pc]``. Each axis is independently windowed with the matching
    probability, then rows outside the collimator disc are redrawn (a few %).
    """
    k = (JAW_DISTANCE - d_src) / (d_plane - d_src)
    w_open = (1.0 - leak) * 2.0 * a_jaw / k  # mass of a window axis in plane coordinates
    w_leak = leak * 2.0 * r_disc  # mass of a uniform axis
    p_window = w_open / (w_open + w_leak)

    def draw(s: np.ndarray) -> np.ndarray:
        b = len(s)
        window = rng.random((b, 2)) < p_window
        nw = int(window.sum())
        p = np.empty((b, 2))
        c = rng.uniform(-a_jaw, a_jaw, nw) + JAW_EDGE_SIGMA * rng.standard_normal(nw)
        p[window] = (c - (1.0 - k) * s[window]) / k
        p[~window] = rng.uniform(-r_disc, r_disc, 2 * b - nw)
        return p

    src = _truncated_gaussian_2d(rng, m, src_sigma, src_radius)
    aim = draw(src)
    bad = np.flatnonzero((aim * aim).sum(axis=1) > r_disc * r_disc)
    while len(bad):
        s = _truncated_gaussian_2d(rng, len(bad), src_sigma, src_radius)
        p = draw(s)
        src[bad] = s
        aim[bad] = p
        bad = bad[(p * p).sum(axis=1) > r_disc * r_disc]
    return src, aim


def _directions(src: np.ndarray, aim: np.ndarray, dz: float) -> np.ndarray:
    """Unit vectors ``(m, 3)`` from source points to aim points ``dz`` further along -z (float64)."""
    v = np.empty((len(src), 3))
    v[:, :2] = aim - src
    v[:, 2] = -dz
    v /= np.sqrt((v * v).sum(axis=1, keepdims=True))
    return v


def generate_linac_phsp(
    n: int,
    *,
    seed: int = 0,
    plane_z: float = 300.0,
    field_size: float = 100.0,
    sad: float = 1000.0,
    energy_max: float = 6.0,
    spot_sigma: float = 0.5,
    scatter_fraction: float = 0.1,
    jaw_transmission: float = 0.005,
    with_component: bool = False,
) -> dict[str, np.ndarray]:
    """``n`` photons of a 6 MV-like beam crossing the plane ``z = plane_z`` (see the module docstring).

    Parameters (mm, MeV):
        n: number of rows (>= 0).
        seed: seed of ``np.random.default_rng``; the same ``(n, seed, parameters)``
            always give the same table.
        plane_z: z of the scoring plane; the target is at ``z = sad``, the
            isocentre at 0, the beam travels along -z. The plane must lie
            below the jaws: ``sad - plane_z > 350``.
        field_size: side of the square field at the isocentre.
        sad: source (target) to isocentre distance.
        energy_max: bremsstrahlung end point E0.
        spot_sigma: Gaussian sigma of the focal spot.
        scatter_fraction: probability that a row is flattening-filter scatter
            (so the count is binomial).
        jaw_transmission: transmission of one jaw pair.
        with_component: add an int8 ``Component`` column (0 primary, 1 scatter).

    Returns:
        table ``{column: (n,) array}`` with :data:`LINAC_COLUMNS` (plus
        ``Component``): the kinematics float32, ``PDGCode`` int32 (22 for every
        row); rows of both components come interleaved in random order.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"linac: n must be a non-negative integer; got {n!r}")
    d_plane = sad - plane_z
    if not d_plane > JAW_DISTANCE:
        raise ConfigError(
            f"linac: the scoring plane z={plane_z:g} mm is {d_plane:g} mm below the target (z={sad:g} mm); "
            f"expected it below the jaws, more than {JAW_DISTANCE:g} mm below the target"
        )
    tan_pc = math.tan(PRIMARY_COLLIMATOR_HALF_ANGLE)
    if not 0 < field_size / 2 < sad * tan_pc / math.sqrt(2):
        raise ConfigError(
            f"linac: field_size={field_size:g} mm; expected 0 < field_size < {math.sqrt(2) * sad * tan_pc:g} mm "
            "(the field corners must stay inside the primary collimator)"
        )
    if not energy_max > 10 * ENERGY_MIN:
        raise ConfigError(f"linac: energy_max={energy_max:g} MeV; expected > {10 * ENERGY_MIN:g} MeV")
    if not 0.0 <= scatter_fraction <= 1.0:
        raise ConfigError(f"linac: scatter_fraction={scatter_fraction:g}; expected a value in [0, 1]")
    if not 0.0 <= jaw_transmission < 1.0:
        raise ConfigError(f"linac: jaw_transmission={jaw_transmission:g}; expected a value in [0, 1)")
    if not spot_sigma >= 0:
        raise ConfigError(f"linac: spot_sigma={spot_sigma:g} mm; expected >= 0")

    rng = np.random.default_rng(seed)
    n = int(n)
    # Component of each row, drawn first so that both components come out interleaved.
    is_sc = rng.random(n) < scatter_fraction
    i_sc = np.flatnonzero(is_sc)
    i_pr = np.flatnonzero(~is_sc)
    a_jaw = field_size / 2 * JAW_DISTANCE / sad
    r_disc = d_plane * tan_pc
    spectrum = _SpectrumSampler(energy_max, FILTER_RHO_T * (1.0 - FILTER_EDGE_THINNING), FILTER_RHO_T)

    energy = np.empty(n, dtype=np.float32)
    pos = np.empty((n, 2), dtype=np.float32)
    dirs = np.empty((n, 3), dtype=np.float32)

    # primary: focal spot -> plane
    src, aim = _sample_rays(
        rng, len(i_pr), d_src=0.0, src_sigma=spot_sigma, src_radius=SPOT_TRUNCATION * spot_sigma,
        d_plane=d_plane, a_jaw=a_jaw, leak=jaw_transmission, r_disc=r_disc,
    )
    u = _directions(src, aim, d_plane)
    theta = np.arccos(np.minimum(-u[:, 2], 1.0))
    rho_t = FILTER_RHO_T * (1.0 - FILTER_EDGE_THINNING * np.minimum(theta / PRIMARY_COLLIMATOR_HALF_ANGLE, 1.0))
    energy[i_pr] = spectrum.sample(rng, rho_t)
    pos[i_pr] = aim
    dirs[i_pr] = u

    # scatter: extended source on the flattening filter -> plane, Compton-softened
    src, aim = _sample_rays(
        rng, len(i_sc), d_src=FILTER_DISTANCE, src_sigma=FILTER_SIGMA, src_radius=FILTER_RADIUS,
        d_plane=d_plane, a_jaw=a_jaw, leak=jaw_transmission, r_disc=r_disc,
    )
    e0 = spectrum.sample(rng, np.full(len(i_sc), FILTER_RHO_T))
    kappa = SCATTER_MEAN_ONE_MINUS_COS
    one_minus_cos = -kappa * np.log1p(-rng.random(len(i_sc)) * -math.expm1(-2.0 / kappa))
    energy[i_sc] = e0 / (1.0 + e0 / ELECTRON_MASS * one_minus_cos)
    pos[i_sc] = aim
    dirs[i_sc] = _directions(src, aim, d_plane - FILTER_DISTANCE)

    table: dict[str, np.ndarray] = {
        "KineticEnergy": energy,
        "PrePosition_X": np.ascontiguousarray(pos[:, 0]),
        "PrePosition_Y": np.ascontiguousarray(pos[:, 1]),
        "PrePosition_Z": np.full(n, plane_z, dtype=np.float32),
        "PreDirection_X": np.ascontiguousarray(dirs[:, 0]),
        "PreDirection_Y": np.ascontiguousarray(dirs[:, 1]),
        "PreDirection_Z": np.ascontiguousarray(dirs[:, 2]),
        "PDGCode": np.full(n, LINAC_PDG_CODE, dtype=np.int32),
    }
    if with_component:
        table["Component"] = is_sc.astype(np.int8)  # COMPONENT_PRIMARY = 0, COMPONENT_SCATTER = 1
    return table
