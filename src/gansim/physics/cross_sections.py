"""Photon cross-section tables (photoelectric, Compton, Rayleigh) for a list of materials.

Data
----
* Photoelectric and coherent (Rayleigh) mass coefficients per element: Elam, Ravel & Sieber
  (2002) tables via ``xraydb.mu_elam`` (cm^2/g). Those tables stop at 800 keV (xraydb clamps
  higher energies to 800 keV), so above 800 keV each is continued as a power law with the
  log-log slope between 700 and 800 keV (coherent tends to E^-2, photo to ~E^-1.5 there).
* Compton: with ``incoherent_scattering_function=False`` (the default) the free-electron
  Klein-Nishina cross section times the electrons per gram, N_A sum_i w_i Z_i/A_i. With
  ``True``, xraydb's incoherent coefficient (Waller-Hartree S(x) included), continued above
  800 keV as Klein-Nishina times the 800 keV ratio (that binding correction is 0.02 % for
  water and 1 % for lead at 800 keV and shrinks with energy).
  For water Klein-Nishina is above xraydb's incoherent value by 0.72 % at 140.5 keV (binding
  of the oxygen electrons), 0.13 % at 364 keV, 0.04 % at 511 keV, 3 % at 60 keV: the default
  overestimates water's total attenuation by 0.74 % at 140.5 keV (NIST XCOM: 0.1536 cm^2/g;
  with the scattering function the tables give +0.04 %).
* Mixtures: mass coefficients add by mass fraction (independent atoms).
* Pair production (threshold 1.022 MeV) is not modelled: the tables are 0.25 % below XCOM's
  water total at 1.5 MeV and 0.95 % at 2 MeV (pair production is ~10 % of lead's at 2 MeV).

Tables
------
Log-uniform energy grid from ``e_min`` to ``e_max`` with ``points_per_decade`` points per
decade; values are stored as log(mu) and interpolated linearly in log-log, the grid index
computed directly from log(E) (no search). A photo-absorption edge falls inside one grid
interval and is smeared over it: at 400 points per decade that interval is 0.58 % wide in
energy. Energies outside [e_min, e_max] get the end values (the transport should stop photons
below e_min). Internal unit: mm^-1 per (g/cm3) = (mu/rho in cm^2/g) * 0.1, so a voxel's linear
attenuation is ``density * table``.

Use in transport
----------------
``mu_total`` (one gather) is what the majorant dominates: use it for the Woodcock
real/fictitious decision, and ``mu``'s columns to pick the process of a real interaction.
``mu``'s columns are rescaled to sum to ``mu_total``: the log-log interpolation of the sum and
the sum of the interpolations differ by < 1e-4, except in the few grid cells holding an
absorption edge (up to a few %), and without the rescaling a threshold drawn against
``mu_total`` would hand that difference to the last process. Pass material indices as int32
to save a conversion per call.

Angular data
------------
* Rayleigh: F(x) per element is the Waasmaier-Kirfel fit of xraydb (x = sin(theta/2)/lambda
  in 1/Angstrom), clipped to F >= 0. The fit is valid to x = 6/A; beyond it F follows the
  shape of a Slater-orbital model of the atom (below) scaled to the fit's value at 6/A, so the
  K-shell tail of heavy atoms is kept. Check: pi r_e^2 int (1 + cos^2) F^2 dcos reproduces
  xraydb's coherent coefficient within 0.2 % for H, C, O, Ca (30-800 keV), 2.5 % for I and
  5.5 % for Pb (xraydb uses relativistic form factors; measured, see tests).
  Per material F^2 is summed over atoms per gram and its cumulative over x^2 tabulated.
* Incoherent scattering function S(x): independent-electron Waller-Hartree without the
  exchange terms, S = Z - sum_k f_k(x)^2, with f_k the form factor of a Slater-type orbital
  whose exponent follows Slater's screening rules (aufbau configuration). Per material
  S_mat/Z_mat = sum_i n_i S_i / sum_i n_i Z_i (n_i atoms per gram). Check (measured):
  int KN x S dOmega against xraydb's incoherent coefficient is +0.07 % for water at 140.5 keV
  (-0.04 % at 511, +0.4 % at 60, +1.4 % at 30 keV) and within +0.31 % for soft tissue, lung
  and cortical bone at >= 140 keV (bone +1.2 % at 60 keV). The missing exchange terms make it
  too large for heavy atoms: NaI +3.5 %, Pb +7.2 % at 140.5 keV (Pb +18 % at 60 keV), still
  well below free Klein-Nishina (+12 % for Pb at 140.5 keV).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
import xraydb

from gansim.errors import ConfigError
from gansim.physics.interactions import klein_nishina_total
from gansim.physics.materials import Material
from gansim.units import MeV, keV

__all__ = [
    "CrossSectionTables",
    "Majorant",
    "HC",
    "AVOGADRO",
    "elam_cross_section",
    "form_factor",
    "incoherent_scattering_function",
    "slater_orbitals",
    "material_mass_coefficients",
]

HC = 12.398419843320026e-3  # h c in MeV * Angstrom (CODATA 2018): 1/lambda [1/A] = E / HC
AVOGADRO = 6.02214076e23  # 1/mol
BOHR_RADIUS = 0.529177210903  # Angstrom

_ELAM_TOP = 800 * keV  # xraydb clamps Elam data above this energy
_ELAM_SLOPE_FROM = 700 * keV  # power-law continuation slope taken over [700, 800] keV
_WK_X_MAX = 6.0  # 1/Angstrom: validity limit of the Waasmaier-Kirfel fit
_LOG_ZERO = -1000.0  # log(mu) stored for mu == 0: exp gives exactly 0 in float32 and no NaN arises
_MAJORANT_MARGIN = 1.0 + 1e-4  # absorbs float32 rounding of the stored logs (0.01 % extra fictitious steps)

COLUMNS = ("photoelectric", "compton", "rayleigh")


# --- element data (float64 numpy) ------------------------------------------------------------


def elam_cross_section(symbol: str, energy: np.ndarray, kind: str) -> np.ndarray:
    """Elam mass coefficient (cm^2/g) of ``kind`` in ("photo", "coh", "incoh") at ``energy`` (MeV).

    Above 800 keV: photo/coh continue as a power law with the 700-800 keV log-log slope;
    incoh as Klein-Nishina times its 800 keV ratio to Klein-Nishina.
    """
    e = np.atleast_1d(np.asarray(energy, dtype=np.float64))
    low = np.minimum(e, _ELAM_TOP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xraydb warns below 100 eV / above 800 keV; both handled here
        values = np.asarray(xraydb.mu_elam(symbol, low / keV * 1e3, kind=kind), dtype=np.float64)
        top, before = (float(v) for v in xraydb.mu_elam(symbol, np.array([_ELAM_TOP, _ELAM_SLOPE_FROM]) / keV * 1e3, kind=kind))
    high = e > _ELAM_TOP
    if np.any(high):
        if kind == "incoh":
            kn = klein_nishina_total(torch.from_numpy(np.append(e[high], _ELAM_TOP))).numpy()
            values[high] = top * kn[:-1] / kn[-1]
        else:
            slope = min(math.log(top / before) / math.log(_ELAM_TOP / _ELAM_SLOPE_FROM), 0.0)
            values[high] = top * (e[high] / _ELAM_TOP) ** slope
    return values


# Slater's rules: groups [1s][2s2p][3s3p][3d][4s4p][4d][4f][5s5p][5d][5f][6s6p]..., effective
# principal quantum numbers n* = 1, 2, 3, 3.7, 4.0, 4.2 (4.3 assumed for n = 7).
_AUFBAU = ("1s", "2s", "2p", "3s", "3p", "4s", "3d", "4p", "5s", "4d", "5p", "6s", "4f", "5d", "6p", "7s", "5f", "6d", "7p")
_CAPACITY = {"s": 2, "p": 6, "d": 10, "f": 14}
_N_STAR = {1: 1.0, 2: 2.0, 3: 3.0, 4: 3.7, 5: 4.0, 6: 4.2, 7: 4.3}


@lru_cache(maxsize=None)
def slater_orbitals(z: int) -> tuple[tuple[float, float, int], ...]:
    """Slater-type orbitals of a neutral atom: ((n*, zeta in 1/Angstrom, occupancy), ...).

    Aufbau configuration (the few ground-state exceptions such as Cu, Cr are ignored),
    screening by Slater's rules, zeta = (Z - s)/(n* a0); the orbital's radial part is
    r^(n*-1) exp(-zeta r).
    """
    config: list[tuple[int, str, int]] = []
    left = int(z)
    for orbital in _AUFBAU:
        if left <= 0:
            break
        count = min(_CAPACITY[orbital[1]], left)
        config.append((int(orbital[0]), orbital[1], count))
        left -= count

    def group(n: int, l: str) -> tuple[int, int]:
        return (n, 0 if l in "sp" else (1 if l == "d" else 2))

    result = []
    for n, l, count in config:
        g = group(n, l)
        screening = 0.0
        for n2, l2, count2 in config:
            others = count2 - (1 if (n2, l2) == (n, l) else 0)
            if others <= 0:
                continue
            g2 = group(n2, l2)
            if g2 == g:
                screening += others * (0.30 if n == 1 else 0.35)
            elif l in "sp":
                if n2 == n - 1:
                    screening += others * 0.85
                elif n2 < n - 1:
                    screening += others * 1.00
            elif g2[0] < n or (g2[0] == n and g2[1] < g[1]):
                screening += others * 1.00  # d/f electrons: every group to the left screens fully
        n_star = _N_STAR[n]
        result.append((n_star, (z - screening) / (n_star * BOHR_RADIUS), count))
    return tuple(result)


def _sto_form_factors(z: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, sum_k f_k^2) of the Slater-orbital atom at x = sin(theta/2)/lambda (1/A)."""
    q = 4.0 * np.pi * np.asarray(x, dtype=np.float64)  # momentum transfer, 1/A
    f_total = np.zeros_like(q)
    f_sq = np.zeros_like(q)
    for n_star, zeta, count in slater_orbitals(z):
        # Density ~ r^(2n*-2) exp(-a r), a = 2 zeta; its normalised Fourier transform is
        # sin(p u) / (p tan(u) cos(u)^-p) with p = 2n*, tan(u) = q/a (closed form, stable).
        p = 2.0 * n_star
        u = np.arctan(q / (2.0 * zeta))
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.sin(p * u) * np.cos(u) ** p / (p * np.tan(u))
        f = np.where(u < 1e-8, 1.0, f)
        f_total += count * f
        f_sq += count * f * f
    return f_total, f_sq


def form_factor(symbol: str, x: np.ndarray) -> np.ndarray:
    """Atomic form factor F(x) (electrons) at x = sin(theta/2)/lambda (1/Angstrom), float64.

    Waasmaier-Kirfel (xraydb.f0) clipped to >= 0 up to x = 6/A; beyond, the Slater-orbital
    model's shape scaled to the fit at 6/A (see the module docstring).
    """
    x = np.asarray(x, dtype=np.float64)
    z = int(xraydb.atomic_number(symbol))
    inside = np.clip(np.asarray(xraydb.f0(symbol, np.minimum(x, _WK_X_MAX)), dtype=np.float64), 0.0, None)
    edge = max(float(np.asarray(xraydb.f0(symbol, [_WK_X_MAX]))[0]), 0.0)
    sto_far, _ = _sto_form_factors(z, np.maximum(x, _WK_X_MAX))
    sto_edge, _ = _sto_form_factors(z, np.array([_WK_X_MAX]))
    tail = edge * sto_far / sto_edge[0] if sto_edge[0] > 0 else np.zeros_like(x)
    return np.where(x <= _WK_X_MAX, inside, tail)


def incoherent_scattering_function(symbol: str, x: np.ndarray) -> np.ndarray:
    """S(x) in [0, Z] (Waller-Hartree, no exchange, Slater orbitals), x in 1/Angstrom, float64."""
    z = int(xraydb.atomic_number(symbol))
    _, f_sq = _sto_form_factors(z, x)
    return np.clip(z - f_sq, 0.0, float(z))


def _atoms_per_gram(material: Material) -> list[tuple[str, float, int]]:
    """[(symbol, atoms per gram, Z), ...] of a material."""
    return [(s, w * AVOGADRO / float(xraydb.atomic_mass(s)), int(xraydb.atomic_number(s))) for s, w in material.mass_fractions]


def material_mass_coefficients(material: Material, energy: np.ndarray, *, incoherent_scattering_function: bool = False) -> np.ndarray:
    """Mass attenuation coefficients (3, n) cm^2/g (photoelectric, Compton, Rayleigh) at ``energy`` (n,) MeV."""
    return _mix(material, np.asarray(energy, dtype=np.float64), incoherent_scattering_function, elam_cross_section)


def _mix(material: Material, e: np.ndarray, incoherent_scattering_function: bool, element: Callable[[str, np.ndarray, str], np.ndarray]) -> np.ndarray:
    """Mass-fraction mixture (3, n) of ``element(symbol, e, kind)`` coefficients, cm^2/g."""
    out = np.zeros((3, e.size))
    for symbol, w in material.mass_fractions:
        out[0] += w * element(symbol, e, "photo")
        out[2] += w * element(symbol, e, "coh")
        if incoherent_scattering_function:
            out[1] += w * element(symbol, e, "incoh")
    if not incoherent_scattering_function:
        kn = klein_nishina_total(torch.from_numpy(e)).numpy() * 1e-2  # mm^2 -> cm^2 per electron
        out[1] = kn * material.electrons_per_gram()
    return out


@lru_cache(maxsize=512)
def _elam_on_grid(symbol: str, kind: str, e_min: float, e_max: float, n: int) -> np.ndarray:
    """``elam_cross_section`` on a table's energy grid, cached: xraydb's spline evaluation is a
    Python loop (~10 ms per call) and materials share elements."""
    values = elam_cross_section(symbol, _LogGrid(e_min, e_max, n).values, kind)
    values.setflags(write=False)
    return values


# --- tables on the device -----------------------------------------------------------------------


def _log_pairs(values: np.ndarray) -> np.ndarray:
    """(..., n) positive-or-zero values -> (..., n, 2) [log v_i, log v_{i+1} - log v_i] (last slope 0)."""
    logs = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), _LOG_ZERO)
    slope = np.zeros_like(logs)
    slope[..., :-1] = logs[..., 1:] - logs[..., :-1]
    return np.stack((logs, slope), axis=-1)


class _LogGrid:
    """Index arithmetic of a log-uniform grid: float position of log(v) without searching."""

    def __init__(self, lo: float, hi: float, n: int):
        self.n = n
        self.log_lo = math.log(lo)
        self.step = (math.log(hi) - self.log_lo) / (n - 1)
        self.values = np.exp(self.log_lo + self.step * np.arange(n))
        self.values[0], self.values[-1] = lo, hi

    def locate(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower node index (int32), fraction in [0, 1]) of ``value`` (clamped to the grid ends).

        In-place arithmetic on one temporary: this runs every Woodcock step. value = 0 gives
        log = -inf and clamps to the first node; a negative or NaN value is a caller bug and
        ends in an index error, never in a silent wrong answer.
        """
        u = torch.log(value).sub_(self.log_lo).mul_(1.0 / self.step).clamp_(0.0, self.n - 1)
        i0 = u.floor().clamp_(max=self.n - 2)
        return i0.int(), u.sub_(i0)


class Majorant:
    """Woodcock majorant: max over materials of max_density[m] * mu_total(m, E), mm^-1.

    Tabulated on the cross-section grid as the node-wise maximum, interpolated log-log like the
    tables: on every grid interval the interpolated maximum dominates each material's
    interpolation (same weights), times 1.0001 for float32 rounding. Never below 1e-20 mm^-1,
    so a step length -ln(u)/majorant stays finite even for an all-vacuum world.
    """

    def __init__(self, tables: CrossSectionTables, max_density: Sequence[float]):
        dens = np.asarray(max_density, dtype=np.float64).reshape(-1)
        if dens.size != len(tables.materials) or not np.all(np.isfinite(dens)) or np.any(dens < 0):
            raise ConfigError(
                f"majorant: max_density must hold one finite density >= 0 (g/cm3) per material ({len(tables.materials)}), got {list(dens)}"
            )
        self.max_density = dens.tolist()
        per_material = dens[:, None] * tables.mass_coefficients.sum(axis=1) * 0.1  # (M, n) mm^-1
        node_max = np.maximum(per_material.max(axis=0) * _MAJORANT_MARGIN, 1e-20)
        self._grid = tables._grid
        self._pairs = torch.as_tensor(_log_pairs(node_max), dtype=torch.float32, device=tables.device)
        self.device = tables.device

    def __call__(self, energy: torch.Tensor) -> torch.Tensor:
        """(N,) MeV -> (N,) majorant, mm^-1."""
        i0, t = self._grid.locate(energy)
        rows = self._pairs.index_select(0, i0)
        return torch.exp(torch.addcmul(rows[:, 0], t, rows[:, 1]))


class CrossSectionTables:
    """Linear attenuation per unit density of a list of materials, and angular sampling data.

    Attributes:
        materials: the materials; ``material_index`` arguments index this list.
        device: where the tensors live.
        e_min, e_max: MeV, grid ends. points_per_decade: grid density.
        photoelectric, compton, rayleigh, incoherent_scattering_function: the flags.
        energies: (n,) float64 numpy grid, MeV.
        mass_coefficients: (M, 3, n) float64 numpy, cm^2/g (photoelectric, Compton, Rayleigh),
            zero for disabled processes.
        hc: h c in MeV * Angstrom (x = E/hc * sin(theta/2)).
    """

    # Rayleigh x^2 grid: node 0 at x^2 = 0, then log-uniform from 1e-6 to the x_max^2 of the
    # highest energy (1/A^2); F^2 is constant below ~1e-3 so the first cell is exact.
    _X2_LO = 1e-6
    _X2_PER_DECADE = 128
    # S(x)/Z grid: log-uniform in x from 1e-4 to x_max (1/A); S/Z ~ 1e-6 at the low end, clamped.
    _X_LO = 1e-4
    _X_PER_DECADE = 100

    def __init__(
        self,
        materials: Sequence[Material],
        *,
        device: str | torch.device = "cpu",
        e_min: float = 1 * keV,
        e_max: float = 2 * MeV,
        points_per_decade: int = 400,
        photoelectric: bool = True,
        compton: bool = True,
        rayleigh: bool = True,
        incoherent_scattering_function: bool = False,
    ):
        self.materials = list(materials)
        if not self.materials or not all(isinstance(m, Material) for m in self.materials):
            raise ConfigError(f"cross-section tables: expected a non-empty list of Material, got {materials!r}")
        # Below 1 keV a photon's range in tissue is micrometres (absorb it locally), and the
        # scattering-function rejection of sample_compton would accept < 0.1 % of candidates.
        if not (1 * keV <= e_min < e_max <= 3 * MeV):
            raise ConfigError(f"cross-section tables: energy range [{e_min}, {e_max}] MeV, expected 1e-3 <= e_min < e_max <= 3 MeV (no pair production above)")
        if int(points_per_decade) < 10:
            raise ConfigError(f"cross-section tables: points_per_decade {points_per_decade}, expected >= 10")
        self.device = torch.device(device)
        self.e_min, self.e_max = float(e_min), float(e_max)
        self.points_per_decade = int(points_per_decade)
        self.photoelectric, self.compton, self.rayleigh = bool(photoelectric), bool(compton), bool(rayleigh)
        self.incoherent_scattering_function = bool(incoherent_scattering_function)
        self.hc = HC

        n = int(math.ceil(self.points_per_decade * math.log10(self.e_max / self.e_min))) + 1
        self._grid = _LogGrid(self.e_min, self.e_max, n)
        self.energies = self._grid.values
        def on_grid(symbol: str, _e: np.ndarray, kind: str) -> np.ndarray:
            return _elam_on_grid(symbol, kind, self.e_min, self.e_max, n)

        isf = self.incoherent_scattering_function
        coeff = np.stack([_mix(m, self.energies, isf, on_grid) for m in self.materials])
        coeff[:, 0] *= self.photoelectric
        coeff[:, 1] *= self.compton
        coeff[:, 2] *= self.rayleigh
        self.mass_coefficients = coeff
        mu = coeff * 0.1  # cm^2/g -> mm^-1 per (g/cm3)
        # One row per (material, node) holding [log mu_i, slope] of the three processes and of
        # their total, so a lookup is a single gather.
        parts = _log_pairs(mu).transpose(0, 2, 3, 1).reshape(-1, 6)  # (M*n, [3 logs, 3 slopes])
        total = _log_pairs(mu.sum(axis=1)).reshape(-1, 2)  # (M*n, [log, slope])
        self._mu_pairs = torch.as_tensor(np.concatenate((parts, total), axis=1), dtype=torch.float32, device=self.device)
        self._total_pairs = torch.as_tensor(total, dtype=torch.float32, device=self.device)
        self._build_rayleigh()
        self._build_isf()

    # -- attenuation ---------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return self._grid.n

    def _rows(self, material_index: torch.Tensor, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat table row (int32), interpolation fraction) of each photon."""
        i0, t = self._grid.locate(energy)
        # int32 index arithmetic is cheaper than int64 on CPU; n_materials * n_points << 2^31.
        m = material_index if material_index.dtype == torch.int32 else material_index.int()
        return i0.add_(m, alpha=self._grid.n), t

    def mu(self, material_index: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """(N,) material index (int32/int64), (N,) MeV -> (N, 3) mm^-1 per (g/cm3): photoelectric, Compton, Rayleigh.

        The columns are rescaled to sum to ``mu_total`` (to float rounding), so a process chosen
        by a threshold on the running sum is consistent with the Woodcock decision made with
        ``mu_total``. The rescaling is < 1e-4 except in grid cells holding an absorption edge,
        where the interpolated sum and the interpolated total differ by up to a few %.
        """
        flat, t = self._rows(material_index, energy)
        rows = self._mu_pairs.index_select(0, flat)  # (N, 8): three logs, three slopes, total log and slope
        parts = torch.exp(torch.addcmul(rows[:, :3], t[:, None], rows[:, 3:6]))
        total = torch.exp(torch.addcmul(rows[:, 6], t, rows[:, 7]))
        # all processes off: total = sum = 0 -> scale 0, never 0/0
        scale = total.div_(parts.sum(dim=1).clamp_min_(1e-30))
        return parts.mul_(scale[:, None])

    def mu_total(self, material_index: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """(N,) material index (int32/int64), (N,) MeV -> (N,) mm^-1 per (g/cm3), total of the enabled processes.

        One log, one gather of a (N, 2) row block, one exp: pass int32 material indices to
        save a conversion.
        """
        flat, t = self._rows(material_index, energy)
        rows = self._total_pairs.index_select(0, flat)
        return torch.exp(torch.addcmul(rows[:, 0], t, rows[:, 1]))

    def majorant(self, max_density: Sequence[float]) -> Majorant:
        """Majorant for materials whose densities never exceed ``max_density`` (g/cm3, one per material)."""
        return Majorant(self, max_density)

    # -- Rayleigh ------------------------------------------------------------------------
    def _build_rayleigh(self) -> None:
        x2_hi = (self.e_max / HC) ** 2 * 1.0001
        n_log = int(math.ceil(self._X2_PER_DECADE * math.log10(x2_hi / self._X2_LO))) + 1
        self._x2_grid = _LogGrid(self._X2_LO, x2_hi, n_log)
        nodes = np.concatenate(([0.0], self._x2_grid.values))  # (L,)
        # Integrate F^2 over x^2 with 8 trapezoid sub-steps per cell (F^2 changes < 2 % per cell).
        sub = 8
        fine = np.concatenate([np.linspace(a, b, sub, endpoint=False) for a, b in zip(nodes[:-1], nodes[1:])] + [nodes[-1:]])
        f2 = np.zeros((len(self.materials), fine.size))
        cache: dict[str, np.ndarray] = {}
        for m, material in enumerate(self.materials):
            for symbol, atoms, _ in _atoms_per_gram(material):
                if symbol not in cache:
                    cache[symbol] = form_factor(symbol, np.sqrt(fine)) ** 2
                f2[m] += atoms * cache[symbol]
        f2 /= f2[:, :1]  # normalise per material (only shapes matter for sampling)
        cells = 0.5 * (f2[:, 1:] + f2[:, :-1]) * np.diff(fine)
        cum_fine = np.concatenate((np.zeros((len(self.materials), 1)), np.cumsum(cells, axis=1)), axis=1)
        cum = cum_fine[:, ::sub]  # (M, L) at the nodes
        self.rayleigh_x2_nodes = nodes
        self.rayleigh_cumulative_table = cum  # (M, L) float64, unnormalised F^2 cumulative over x^2
        norm = cum / cum[:, -1:]
        # Flattened, strictly ordered across materials by adding the material index: one
        # searchsorted inverts any material's cumulative (float64: the offset costs no precision).
        offset = norm + np.arange(len(self.materials))[:, None]
        self._ray_flat = torch.as_tensor(offset.reshape(-1), dtype=torch.float64, device=self.device)
        self._ray_nodes = torch.as_tensor(nodes, dtype=torch.float64, device=self.device)
        self._ray_len = nodes.size

    def rayleigh_cumulative(self, material_index: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Normalised F^2 cumulative (0..1 over the grid) of each material at x^2 (1/A^2), float64 (N,)."""
        m = material_index.long()
        x2 = x2.double()
        i0, t = self._x2_grid.locate(x2)
        # log-grid cell i0 is full-grid cell i0 + 1 (node 0 is x^2 = 0); below the first log node
        # the first cell [0, x2_lo] is used, where F^2 is constant so the cumulative is linear.
        below = x2 < self._X2_LO
        j = torch.where(below, 0, i0.long() + 1)
        frac = torch.where(below, x2 * (1.0 / self._X2_LO), t)
        base = j.add_(m, alpha=self._ray_len)
        c_lo = self._ray_flat.index_select(0, base)
        c_hi = self._ray_flat.index_select(0, base + 1)
        return torch.lerp(c_lo, c_hi, frac).sub_(m)

    def rayleigh_inverse(self, material_index: torch.Tensor, cumulative: torch.Tensor) -> torch.Tensor:
        """x^2 (1/A^2, float64) where each material's normalised cumulative equals ``cumulative`` (N,)."""
        m = material_index.long()
        target = cumulative.double() + m
        start = m * self._ray_len
        j = torch.searchsorted(self._ray_flat, target, right=True).sub_(1)
        j = torch.minimum(torch.maximum(j, start), start + (self._ray_len - 2))
        c_lo = self._ray_flat.index_select(0, j)
        width = self._ray_flat.index_select(0, j + 1).sub_(c_lo)
        # zero-width cells (F = 0 far in the tail) cannot be drawn into; guard the division anyway
        frac = (target - c_lo).div_(width.clamp_min_(1e-300)).clamp_(0.0, 1.0)
        node = j.sub_(start)
        lo = self._ray_nodes.index_select(0, node)
        return torch.lerp(lo, self._ray_nodes.index_select(0, node + 1), frac)

    # -- incoherent scattering function ---------------------------------------------------
    def _build_isf(self) -> None:
        x_hi = self.e_max / HC * 1.0001
        n = int(math.ceil(self._X_PER_DECADE * math.log10(x_hi / self._X_LO))) + 1
        self._x_grid = _LogGrid(self._X_LO, x_hi, n)
        x = self._x_grid.values
        ratio = np.zeros((len(self.materials), n))
        for m, material in enumerate(self.materials):
            s = np.zeros(n)
            electrons = 0.0
            for symbol, atoms, z in _atoms_per_gram(material):
                s += atoms * incoherent_scattering_function(symbol, x)
                electrons += atoms * z
            ratio[m] = s / electrons
        self.isf_x_nodes = x
        self.isf_ratio_table = ratio  # (M, n) float64, S_mat(x)/Z_mat
        self._isf = torch.as_tensor(ratio.reshape(-1), dtype=torch.float32, device=self.device)

    def scattering_function_ratio(self, material_index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """S_mat(x)/Z_mat in [0, 1] at x = sin(theta/2)/lambda (1/A), (N,), dtype of ``x``."""
        i0, t = self._x_grid.locate(x)
        m = material_index if material_index.dtype == torch.int32 else material_index.int()
        base = i0.add_(m, alpha=self._x_grid.n)
        lo = self._isf.index_select(0, base)
        hi = self._isf.index_select(0, base + 1)
        return torch.lerp(lo, hi, t.to(lo.dtype)).to(x.dtype)
