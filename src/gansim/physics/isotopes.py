"""Radionuclides of nuclear medicine: half-lives, photon lines, positron emission.

An :class:`Isotope` lists the photons a decay emits *directly* — nuclear gamma lines and
the K x-rays that follow electron capture or internal conversion — as ``(energy, yield
per decay)``. Annihilation photons are not lines: a positron emitter's
``beta_plus_fraction`` says how many positrons (hence annihilation pairs) a decay gives,
and the emission code makes the 511 keV pairs from it (see ``gansim.physics.emission``:
pair sources emit only annihilation photons; Ga-68's 1077 keV prompt gamma is in its
``lines`` and is what a single-photon source of Ga-68 would emit).

Which photons are listed: every gamma line with a yield of at least 0.1 % per decay, and
the K x-rays (K alpha 1, K alpha 2, K beta 3, K beta 1, K beta 2). L x-rays (2-5 keV,
absorbed within micrometres of water) and conversion/Auger electrons are left out.

Data sources (stated per nuclide below):

- Gamma yields: DDEP recommended values (LNHB "Table de radionucléides", Laraweb) for
  Tc-99m, In-111, Lu-177 and I-131; ENSDF as tabulated in ICRP Publication 107
  (Eckerman & Endo 2008) for I-123 and Ga-68.
- K x-ray yields: ICRP Publication 107 (ENSDF decay data with an atomic-relaxation
  model). Small K-M4,5 (K beta 5) and K-O components are added to the nearest listed
  line (K beta 1, K beta 2) so the K total is ICRP 107's.
- K x-ray energies: the Elam et al. (2002) tables as shipped in xraydb (the package's
  cross-section library), rounded to 0.1 eV; tests/physics/test_isotopes.py checks them.
- Half-lives: ENSDF (NNDC NuDat) unless a DDEP value is named.
- Beta+ fractions: ENSDF / ICRP 107 (F-18 0.9673, Ga-68 0.8891).
- Positron ranges in water: Conti & Eriksson, EJNMMI Physics 3:8 (2016), table 1:
  the mean and maximum range.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

import torch

from gansim.errors import ConfigError
from gansim.units import keV, mm, s

__all__ = ["Isotope", "ISOTOPES", "get_isotope", "sample_line_energies"]

_minute = 60.0 * s
_hour = 3600.0 * s
_day = 86400.0 * s


@dataclass(frozen=True)
class Isotope:
    """A radionuclide as a photon source.

    Attributes:
        name: canonical name, GATE style ("Tc99m", "F18").
        half_life: ns.
        lines: ``(photon energy MeV, yield per decay)`` for the gamma lines and the main
            K x-rays; yields are absolute (photons per 100 decays / 100).
        beta_plus_fraction: positrons per decay (0 for non-emitters).
        positron_mean_range_water: mean positron range in water, mm (0 for non-emitters).
        positron_max_range_water: maximum positron range in water, mm (0 for non-emitters).
    """

    name: str
    half_life: float
    lines: tuple[tuple[float, float], ...]
    beta_plus_fraction: float = 0.0
    positron_mean_range_water: float = 0.0
    positron_max_range_water: float = 0.0

    def __post_init__(self) -> None:
        if not (self.half_life > 0):
            raise ConfigError(f"isotope {self.name}: half-life {self.half_life!r} ns, expected > 0")
        for energy, yield_ in self.lines:
            if not (energy > 0 and 0 < yield_ <= 1):
                raise ConfigError(f"isotope {self.name}: line ({energy!r} MeV, yield {yield_!r}); expected energy > 0 and 0 < yield <= 1")
        if not (0 <= self.beta_plus_fraction <= 1):
            raise ConfigError(f"isotope {self.name}: beta+ fraction {self.beta_plus_fraction!r}, expected in [0, 1]")
        mean, top = self.positron_mean_range_water, self.positron_max_range_water
        if self.beta_plus_fraction > 0 and not (0 < mean < top):
            raise ConfigError(f"isotope {self.name}: positron ranges mean {mean!r} mm, max {top!r} mm; expected 0 < mean < max for a positron emitter")

    @property
    def photons_per_decay(self) -> float:
        """Sum of the line yields: photons (not counting annihilation) per decay."""
        return float(sum(y for _, y in self.lines))

    @property
    def annihilation_photons_per_decay(self) -> float:
        """511 keV photons per decay when every positron annihilates: 2 x beta+ fraction."""
        return 2.0 * self.beta_plus_fraction


def _lines(*pairs: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """(keV, yield) pairs -> (MeV, yield), sorted by energy."""
    return tuple(sorted((e * keV, y) for e, y in pairs))


# Tc-99m. Half-life 6.0067 h (DDEP). Gamma 140.511 keV 88.5 % (DDEP). Tc K x-rays (ICRP 107).
_TC99M = Isotope(
    "Tc99m",
    6.0067 * _hour,
    _lines(
        (140.511, 0.885),
        (18.251, 0.0214),  # K alpha 2
        (18.367, 0.0406),  # K alpha 1
        (20.5964, 0.00336),  # K beta 3
        (20.6263, 0.00658),  # K beta 1 (+ K beta 5)
        (21.0017, 0.00189),  # K beta 2
    ),
)

# I-123. Half-life 13.2234 h (DDEP). Gammas (ENSDF via ICRP 107). Te K x-rays (ICRP 107).
_I123 = Isotope(
    "I123",
    13.2234 * _hour,
    _lines(
        (158.97, 0.833),
        (346.35, 0.00126),
        (440.02, 0.00428),
        (505.33, 0.00316),
        (528.96, 0.0139),
        (538.54, 0.00382),
        (27.202, 0.250),  # K alpha 2
        (27.473, 0.465),  # K alpha 1
        (30.9432, 0.0428),  # K beta 3
        (30.9932, 0.0839),  # K beta 1 (+ K beta 5)
        (31.7107, 0.0279),  # K beta 2 (+ K-O)
    ),
)

# In-111. Half-life 2.8047 d (ENSDF). Gammas 171.28 keV 90.61 %, 245.35 keV 94.12 % (DDEP).
# Cd K x-rays (ICRP 107).
_IN111 = Isotope(
    "In111",
    2.8047 * _day,
    _lines(
        (171.28, 0.9061),
        (245.35, 0.9412),
        (22.984, 0.240),  # K alpha 2
        (23.173, 0.450),  # K alpha 1
        (26.0584, 0.0397),  # K beta 3
        (26.0926, 0.0779),  # K beta 1 (+ K beta 5)
        (26.6471, 0.0239),  # K beta 2 (+ K-O)
    ),
)

# Lu-177. Half-life 6.647 d (ENSDF). Gammas (DDEP). Hf K x-rays (ICRP 107).
_LU177 = Isotope(
    "Lu177",
    6.647 * _day,
    _lines(
        (71.6418, 0.001726),
        (112.9498, 0.0620),
        (208.3662, 0.1038),
        (249.6742, 0.002012),
        (321.3159, 0.00216),
        (54.612, 0.0163),  # K alpha 2
        (55.790, 0.0285),  # K alpha 1
        (62.986, 0.00304),  # K beta 3
        (63.244, 0.00601),  # K beta 1 (+ K beta 5)
        (64.9128, 0.00251),  # K beta 2 (+ K-O)
    ),
)

# I-131. Half-life 8.0252 d (ENSDF). Gammas (DDEP). Xe K x-rays (ICRP 107).
_I131 = Isotope(
    "I131",
    8.0252 * _day,
    _lines(
        (80.185, 0.02607),
        (177.214, 0.00277),
        (284.305, 0.0614),
        (325.789, 0.00274),
        (364.489, 0.812),
        (503.004, 0.00354),
        (636.989, 0.0712),
        (642.719, 0.002183),
        (722.911, 0.01786),
        (29.454, 0.0140),  # K alpha 2
        (29.775, 0.0259),  # K alpha 1
        (33.5589, 0.00244),  # K beta 3
        (33.6204, 0.00478),  # K beta 1 (+ K beta 5)
        (34.4143, 0.00167),  # K beta 2 (+ K-O)
    ),
)

# F-18. Half-life 109.77 min (ENSDF), beta+ 96.73 % (ENSDF / ICRP 107); no photon line
# >= 0.1 % (O K x-rays are 0.5 keV). Positron range in water: mean 0.6 mm, max 2.4 mm
# (Conti & Eriksson 2016).
_F18 = Isotope("F18", 109.77 * _minute, (), 0.9673, 0.6 * mm, 2.4 * mm)

# Ga-68. Half-life 67.71 min (ENSDF), beta+ 88.91 % (ENSDF / ICRP 107). Gammas 1077.34 keV
# 3.22 %, 1883.16 keV 0.137 % (ENSDF via ICRP 107); Zn K x-rays after electron capture
# (ICRP 107; its Zn K beta / K alpha, 0.124, is 16 % below the Elam/Scofield 0.147 of
# xraydb: kept as published, it moves 0.1 % of decays between 8.6 and 9.6 keV photons that
# water absorbs within a few mm: mean free path 1-2 mm). Positron range in water: mean 2.9 mm, max
# 9.2 mm (Conti & Eriksson 2016).
_GA68 = Isotope(
    "Ga68",
    67.71 * _minute,
    _lines(
        (1077.34, 0.0322),
        (1883.16, 0.00137),
        (8.6141, 0.0138),  # K alpha 2
        (8.6372, 0.0269),  # K alpha 1
        (9.5676, 0.00171),  # K beta 3
        (9.5704, 0.00334),  # K beta 1 (+ K beta 5)
    ),
    0.8891,
    2.9 * mm,
    9.2 * mm,
)

ISOTOPES: dict[str, Isotope] = {iso.name: iso for iso in (_TC99M, _I123, _IN111, _LU177, _I131, _F18, _GA68)}

_SYMBOL_FIRST = re.compile(r"^([a-z]{1,2})(\d{1,3})(m?)$")
_MASS_FIRST = re.compile(r"^(\d{1,3})(m?)([a-z]{1,2})$")


def _key(element: str, mass: str, meta: str) -> str:
    return f"{element.lower()}{int(mass)}{meta}"


_BY_KEY: dict[str, Isotope] = {}
for _iso in ISOTOPES.values():
    _match = _SYMBOL_FIRST.match(_iso.name.lower())
    assert _match is not None, _iso.name
    _BY_KEY[_key(*_match.groups())] = _iso


def get_isotope(name: str) -> Isotope:
    """The isotope called ``name``: "Tc99m", "Tc-99m", "tc99m", "99mTc", "Tc 99m", "F18", "18F", "F-18"...

    Raises:
        ConfigError: unknown name, with the nearest known names.
    """
    text = re.sub(r"[\s_\-]", "", str(name)).lower()
    candidates = []
    m = _SYMBOL_FIRST.match(text)
    if m:
        candidates.append(_key(*m.groups()))
    m = _MASS_FIRST.match(text)
    if m:
        mass, meta, element = m.groups()
        candidates.append(_key(element, mass, meta))
        if meta:  # "99mo" may also mean Mo-99 (the "m" is then the element's first letter)
            candidates.append(_key("m" + element, mass, ""))
    for key in candidates:
        if key in _BY_KEY:
            return _BY_KEY[key]
    known = list(ISOTOPES)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.4)
    if not close and candidates:
        by_key = difflib.get_close_matches(candidates[0], list(_BY_KEY), n=3, cutoff=0.4)
        close = [_BY_KEY[k].name for k in by_key]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown isotope {name!r}{hint} (known: {', '.join(known)})")


@functools.lru_cache(maxsize=64)
def _line_tables(isotope: Isotope, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(energies float32 MeV, cumulative probabilities float64) of the isotope's lines on ``device``."""
    energies = torch.tensor([e for e, _ in isotope.lines], dtype=torch.float32, device=device)
    yields = torch.tensor([y for _, y in isotope.lines], dtype=torch.float64, device=device)
    cdf = torch.cumsum(yields, 0) / yields.sum()
    return energies, cdf


def sample_line_energies(isotope: Isotope, n: int, generator: torch.Generator, device: str | torch.device) -> torch.Tensor:
    """Energies (n,) float32 MeV of ``n`` photons, one per event, each line drawn with probability yield / sum of yields.

    Raises:
        ConfigError: the isotope has no photon lines (e.g. F-18: use annihilation pairs).
    """
    if not isotope.lines:
        raise ConfigError(f"isotope {isotope.name} has no photon lines (a pure positron emitter: use annihilation pairs)")
    if n < 0:
        raise ConfigError(f"number of photons {n}: expected >= 0")
    energies, cdf = _line_tables(isotope, torch.device(device))
    u = torch.rand(n, dtype=torch.float64, generator=generator, device=energies.device)
    # right=True: the first line whose cumulative probability exceeds u; the clamp only
    # guards the last cumulative rounding to slightly below 1.
    index = torch.searchsorted(cdf, u, right=True).clamp_(max=len(isotope.lines) - 1)
    return energies[index]
