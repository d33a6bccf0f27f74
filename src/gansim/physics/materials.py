"""Materials (elemental mass fractions and density) and the CT Hounsfield-unit -> material table.

Named materials carry the Geant4/NIST compositions and densities of ``G4NistMaterialBuilder``
(facts: ICRU/ICRP tissue compositions, NIST compound data). Densities are g/cm3, mass
fractions are per element symbol and sum to 1 (they are renormalised when the published
numbers round to within 1e-3 of 1).

A voxel's attenuation is ``density_g_cm3 * tables.mu(material, E)``, so a material's
``density`` is only its nominal value: phantoms store a density per voxel (e.g. lung at
0.3 g/cm3 with the G4_LUNG_ICRP composition).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xraydb

from gansim.errors import ConfigError, DataError

__all__ = [
    "Material",
    "NAMED_MATERIALS",
    "get_material",
    "material_from_formula",
    "mixture",
    "HUTable",
    "default_hu_table",
    "SCHNEIDER_2000_DENSITY",
]

# Largest atomic number with both Elam cross sections and a Waasmaier-Kirfel form factor in xraydb.
_MAX_Z = 98
_SUM_TOLERANCE = 1e-3


def _element_symbol(symbol: str, what: str) -> str:
    """Canonical element symbol ('pb' -> 'Pb'), ConfigError naming ``what`` when unknown."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise ConfigError(f"{what}: element {symbol!r} is not an element symbol")
    canonical = symbol.strip().capitalize()
    try:
        z = int(xraydb.atomic_number(canonical))
    except Exception:  # xraydb raises several types for unknown symbols
        z = 0
    if not 1 <= z <= _MAX_Z:
        known = [str(xraydb.atomic_symbol(i)) for i in range(1, _MAX_Z + 1)]
        near = difflib.get_close_matches(canonical, known, n=3)
        raise ConfigError(f"{what}: unknown element {symbol!r} (expected an element symbol H..Cf; nearest: {near})")
    return canonical


@dataclass(frozen=True)
class Material:
    """A material: name, nominal density and elemental composition by mass.

    Attributes:
        name: label (e.g. "G4_WATER").
        density: nominal density, g/cm3, >= 0 (0 = vacuum).
        mass_fractions: ((element symbol, mass fraction), ...), fractions > 0 summing to 1;
            one entry per element (duplicates are merged), in the given order.
    """

    name: str
    density: float
    mass_fractions: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        what = f"material {self.name!r}"
        density = float(self.density)
        if not math.isfinite(density) or density < 0:
            raise ConfigError(f"{what}: density {self.density!r} g/cm3, expected a finite number >= 0")
        merged: dict[str, float] = {}
        try:
            pairs = [(str(s), float(w)) for s, w in self.mass_fractions]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{what}: mass_fractions must be (element, fraction) pairs, got {self.mass_fractions!r}") from exc
        for symbol, w in pairs:
            if not math.isfinite(w) or w < 0:
                raise ConfigError(f"{what}: mass fraction of {symbol} is {w}, expected a finite number >= 0")
            key = _element_symbol(symbol, what)
            merged[key] = merged.get(key, 0.0) + w
        merged = {s: w for s, w in merged.items() if w > 0}
        total = sum(merged.values())
        if not merged or abs(total - 1.0) > _SUM_TOLERANCE:
            raise ConfigError(f"{what}: mass fractions sum to {total:.6g}, expected 1 (within {_SUM_TOLERANCE})")
        object.__setattr__(self, "density", density)
        object.__setattr__(self, "mass_fractions", tuple((s, w / total) for s, w in merged.items()))

    @property
    def elements(self) -> tuple[str, ...]:
        """Element symbols in composition order."""
        return tuple(s for s, _ in self.mass_fractions)

    def electrons_per_gram(self) -> float:
        """Electrons per gram, N_A * sum_i w_i Z_i / A_i (1/g)."""
        return _AVOGADRO * sum(w * xraydb.atomic_number(s) / xraydb.atomic_mass(s) for s, w in self.mass_fractions)


_AVOGADRO = 6.02214076e23  # 1/mol, exact (SI 2019)


def _by_atoms(name: str, density: float, counts: dict[str, float]) -> Material:
    """Material from atom counts per formula unit (mass fractions from xraydb atomic masses)."""
    masses = {s: n * float(xraydb.atomic_mass(s)) for s, n in counts.items()}
    total = sum(masses.values())
    return Material(name, density, tuple((s, m / total) for s, m in masses.items()))


def _named() -> dict[str, Material]:
    # Compositions and densities as defined for these names by Geant4's NIST material builder
    # (NIST/ICRU-44/46/ICRP-89 data). G4_Galactic is Geant4's "vacuum" (H at 1e-25 g/cm3); here its
    # density is exactly 0 so that it never interacts.
    mats = [
        _by_atoms("G4_WATER", 1.0, {"H": 2, "O": 1}),
        Material("G4_AIR", 0.00120479, (("C", 0.000124), ("N", 0.755267), ("O", 0.231781), ("Ar", 0.012827))),
        Material(
            "G4_LUNG_ICRP",
            1.04,
            (("H", 0.105), ("C", 0.083), ("N", 0.023), ("O", 0.779), ("Na", 0.002), ("P", 0.001), ("S", 0.002), ("Cl", 0.003), ("K", 0.002)),
        ),
        Material(
            "G4_BONE_CORTICAL_ICRP",
            1.92,
            (("H", 0.034), ("C", 0.155), ("N", 0.042), ("O", 0.435), ("Na", 0.001), ("Mg", 0.002), ("P", 0.103), ("S", 0.003), ("Ca", 0.225)),
        ),
        Material(
            "G4_TISSUE_SOFT_ICRP",
            1.03,
            (("H", 0.105), ("C", 0.256), ("N", 0.027), ("O", 0.602), ("Na", 0.001), ("P", 0.002), ("S", 0.003), ("Cl", 0.002), ("K", 0.002)),
        ),
        Material(
            "G4_ADIPOSE_TISSUE_ICRP",
            0.95,
            (("H", 0.114), ("C", 0.598), ("N", 0.007), ("O", 0.278), ("Na", 0.001), ("S", 0.001), ("Cl", 0.001)),
        ),
        Material("G4_Pb", 11.35, (("Pb", 1.0),)),
        Material("G4_W", 19.3, (("W", 1.0),)),
        _by_atoms("G4_PLEXIGLASS", 1.19, {"C": 5, "H": 8, "O": 2}),
        _by_atoms("G4_SODIUM_IODIDE", 3.667, {"Na": 1, "I": 1}),
        Material("G4_Galactic", 0.0, (("H", 1.0),)),
    ]
    return {m.name: m for m in mats}


NAMED_MATERIALS: dict[str, Material] = _named()


def _lookup_key(name: str) -> str:
    key = name.strip().upper()
    return key[3:] if key.startswith("G4_") else key


_BY_KEY = {_lookup_key(n): m for n, m in NAMED_MATERIALS.items()}


def get_material(name: str) -> Material:
    """The named material ``name`` (case-insensitive, "G4_" prefix optional: "water", "g4_pb").

    Raises:
        ConfigError: unknown name, listing the nearest known names.
    """
    if not isinstance(name, str):
        raise ConfigError(f"material name {name!r}: expected a string such as 'G4_WATER'")
    found = _BY_KEY.get(_lookup_key(name))
    if found is None:
        near_keys = difflib.get_close_matches(_lookup_key(name), list(_BY_KEY), n=3, cutoff=0.5)
        near = [_BY_KEY[k].name for k in near_keys]
        raise ConfigError(f"unknown material {name!r}; nearest: {near}; known: {sorted(NAMED_MATERIALS)}")
    return found


def material_from_formula(name: str, formula: str, density: float) -> Material:
    """A compound from its chemical formula ("H2O", "Ca5(PO4)3OH", "CH2" ...), density g/cm3."""
    try:
        counts = xraydb.chemparse(formula)
    except Exception as exc:
        raise ConfigError(f"material {name!r}: cannot parse chemical formula {formula!r} ({exc})") from exc
    if not counts:
        raise ConfigError(f"material {name!r}: chemical formula {formula!r} has no elements")
    for symbol in counts:
        _element_symbol(symbol, f"material {name!r} formula {formula!r}")
    return _by_atoms(name, density, {s.capitalize(): float(n) for s, n in counts.items()})


def mixture(name: str, components: Sequence[tuple[Material, float]], density: float) -> Material:
    """A mixture of materials by mass fraction (fractions >= 0 summing to 1 within 1e-3), density g/cm3."""
    if not components:
        raise ConfigError(f"mixture {name!r}: no components")
    fractions: dict[str, float] = {}
    total = 0.0
    for item in components:
        try:
            material, w = item
            w = float(w)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"mixture {name!r}: components must be (Material, mass fraction) pairs, got {item!r}") from exc
        if not isinstance(material, Material):
            raise ConfigError(f"mixture {name!r}: component {material!r} is not a Material")
        if not math.isfinite(w) or w < 0:
            raise ConfigError(f"mixture {name!r}: mass fraction {w} of {material.name}, expected a finite number >= 0")
        total += w
        for symbol, f in material.mass_fractions:
            fractions[symbol] = fractions.get(symbol, 0.0) + w * f
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ConfigError(f"mixture {name!r}: component mass fractions sum to {total:.6g}, expected 1 (within {_SUM_TOLERANCE})")
    return Material(name, density, tuple(fractions.items()))


# --- CT numbers -----------------------------------------------------------------------------

# Schneider, Bortfeld & Schlegel 2000, Phys. Med. Biol. 45:459, HU -> mass density (g/cm3)
# calibration as distributed with GATE (Schneider2000DensitiesTable.txt). Piecewise linear; the
# step at 100/101 HU is in the published calibration (soft tissue -> skeletal tissue fit).
SCHNEIDER_2000_DENSITY: tuple[tuple[float, float], ...] = (
    (-1000.0, 1.21e-3),
    (-98.0, 0.93),
    (-97.0, 0.930486),
    (14.0, 1.03),
    (23.0, 1.031),
    (100.0, 1.1199),
    (101.0, 1.0762),
    (1600.0, 1.9642),
    (3000.0, 2.8),
)


class HUTable:
    """CT Hounsfield units -> (material index, density g/cm3).

    ``rows`` are ``(hu_lower, material)`` with strictly increasing ``hu_lower``: a voxel with
    ``rows[r][0] <= HU < rows[r+1][0]`` gets ``rows[r][1]``; HU below the first bound gets the
    first row's material, HU above the last bound the last one. The density is the
    piecewise-linear curve through ``(density_hu, density_values)``, held constant beyond its
    end points (no extrapolation into metal densities).

    Attributes:
        rows: list of (hu_lower, Material).
        materials: the distinct materials of the rows, in first-appearance order; ``convert``'s
            material indices index this list (all of them, used or not).
        density_hu, density_values: float64 arrays of the density curve.
    """

    def __init__(self, rows: Sequence[tuple[float, Material]], density_hu: Sequence[float], density_values: Sequence[float]):
        if not rows:
            raise ConfigError("HU table: no (hu_lower, material) rows")
        bounds = []
        for r, row in enumerate(rows):
            try:
                hu, material = row
                hu = float(hu)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"HU table row {r}: expected (hu_lower, Material), got {row!r}") from exc
            if not isinstance(material, Material):
                raise ConfigError(f"HU table row {r}: {material!r} is not a Material")
            if not math.isfinite(hu):
                raise ConfigError(f"HU table row {r}: hu_lower {hu} must be finite")
            bounds.append(hu)
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ConfigError(f"HU table: row lower bounds must increase strictly, got {bounds}")
        dh = np.asarray(density_hu, dtype=np.float64).reshape(-1)
        dv = np.asarray(density_values, dtype=np.float64).reshape(-1)
        if dh.size < 2 or dh.shape != dv.shape:
            raise ConfigError(f"HU table density curve: expected >= 2 (HU, density) points of equal count, got {dh.size} HU and {dv.size} densities")
        if not (np.all(np.isfinite(dh)) and np.all(np.isfinite(dv))) or np.any(np.diff(dh) <= 0) or np.any(dv < 0):
            raise ConfigError(f"HU table density curve: HU must be finite and strictly increasing and densities finite >= 0, got {list(zip(dh.tolist(), dv.tolist()))}")
        self.rows: list[tuple[float, Material]] = [(b, m) for b, (_, m) in zip(bounds, rows)]
        self.materials: list[Material] = []
        for _, m in self.rows:
            if m not in self.materials:
                self.materials.append(m)
        self._bounds = np.asarray(bounds, dtype=np.float64)
        self._row_material = np.asarray([self.materials.index(m) for _, m in self.rows], dtype=np.int16)
        self.density_hu = dh
        self.density_values = dv

    def density(self, hu: np.ndarray | float) -> np.ndarray:
        """Density (g/cm3, float64, same shape) of HU values."""
        return np.interp(np.asarray(hu, dtype=np.float64), self.density_hu, self.density_values)

    def convert(self, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Material]]:
        """Map a CT image to materials and densities.

        Args:
            hu: HU values, any shape, finite.

        Returns:
            (material index int16 same shape, density float32 g/cm3 same shape, ``self.materials``).
        """
        values = np.asarray(hu)
        if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
            raise DataError("HU image: expected finite numbers (found NaN/Inf or a non-numeric array)")
        v = values.astype(np.float64, copy=False)
        row = np.searchsorted(self._bounds, v, side="right") - 1
        np.clip(row, 0, len(self._bounds) - 1, out=row)
        index = self._row_material[row]
        density = self.density(v).astype(np.float32)
        return index, density, list(self.materials)

    # -- files ---------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> HUTable:
        """Read a JSON HU table.

        Format::

            {"materials": [
                {"hu_lower": -1000, "material": "G4_AIR"},
                {"hu_lower": 120, "name": "bone_mix", "density": 1.1,
                 "mass_fractions": {"H": 0.09, "C": 0.3, "O": 0.5, "Ca": 0.11}},
                {"hu_lower": 300, "name": "apatite", "density": 3.1, "formula": "Ca5(PO4)3OH"},
                {"hu_lower": 500, "name": "mix", "density": 1.4,
                 "mixture": [["G4_TISSUE_SOFT_ICRP", 0.6], ["G4_BONE_CORTICAL_ICRP", 0.4]]}],
             "density": [[-1000, 0.00121], [0, 1.0], [3000, 2.8]]}

        Each row names a known material ("material"), or defines one by "mass_fractions",
        "formula" or "mixture" of known names (its nominal "density" defaults to the density
        curve at ``hu_lower``). "density" lists the (HU, g/cm3) points of the density curve.
        """
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError as exc:
            raise DataError(f"HU table file {p}: not found") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"HU table file {p}: not readable JSON ({exc})") from exc
        return cls.from_dict(doc, where=str(p))

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "HU table") -> HUTable:
        """Build from the parsed JSON document described in ``from_file``."""
        if not isinstance(doc, dict) or "materials" not in doc or "density" not in doc:
            raise DataError(f"{where}: expected an object with keys 'materials' and 'density'")
        try:
            curve = np.asarray(doc["density"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: 'density' must be a list of [HU, g/cm3] pairs") from exc
        if curve.ndim != 2 or curve.shape[1] != 2:
            raise DataError(f"{where}: 'density' must be a list of [HU, g/cm3] pairs, got shape {curve.shape}")
        rows = []
        for r, entry in enumerate(doc["materials"]):
            rows.append(_row_from_dict(entry, r, where, curve))
        return cls(rows, curve[:, 0], curve[:, 1])

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this table (materials written as mass fractions)."""
        return {
            "materials": [
                {"hu_lower": hu, "name": m.name, "density": m.density, "mass_fractions": dict(m.mass_fractions)} for hu, m in self.rows
            ],
            "density": [[float(h), float(v)] for h, v in zip(self.density_hu, self.density_values)],
        }

    def to_file(self, path: str | Path) -> None:
        """Write the table as JSON (readable by ``from_file``)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def _number(value: Any, what: str, key: str) -> float:
    """A finite float from a table entry, or a DataError naming where it is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what}: {key} {value!r} is not a number") from None
    if not np.isfinite(number):
        raise DataError(f"{what}: {key} {value!r} is not finite")
    return number


def _row_from_dict(entry: Any, r: int, where: str, curve: np.ndarray) -> tuple[float, Material]:
    what = f"{where}: materials[{r}]"
    if not isinstance(entry, dict) or "hu_lower" not in entry:
        raise DataError(f"{what}: expected an object with 'hu_lower' and one of 'material', 'mass_fractions', 'formula', 'mixture'")
    hu = _number(entry["hu_lower"], what, "hu_lower")
    kinds = [k for k in ("material", "mass_fractions", "formula", "mixture") if k in entry]
    if len(kinds) != 1:
        raise DataError(f"{what}: expected exactly one of 'material', 'mass_fractions', 'formula', 'mixture', got {kinds}")
    kind = kinds[0]
    if kind == "material":
        return hu, get_material(str(entry["material"]))
    name = str(entry.get("name", f"hu_{hu:g}"))
    density = _number(entry["density"], what, "density") if "density" in entry else float(np.interp(hu, curve[:, 0], curve[:, 1]))
    if kind == "mass_fractions":
        fr = entry["mass_fractions"]
        if not isinstance(fr, dict):
            raise DataError(f"{what}: 'mass_fractions' must map element symbols to fractions")
        return hu, Material(name, density, tuple((str(s), _number(w, what, f"mass fraction of {s}")) for s, w in fr.items()))
    if kind == "formula":
        return hu, material_from_formula(name, str(entry["formula"]), density)
    comps = entry["mixture"]
    if not isinstance(comps, list) or not all(isinstance(c, (list, tuple)) and len(c) == 2 for c in comps):
        raise DataError(f"{what}: 'mixture' must be a list of [material name, mass fraction] pairs")
    return hu, mixture(name, [(get_material(str(n)), _number(w, what, f"mass fraction of {n}")) for n, w in comps], density)


def default_hu_table() -> HUTable:
    """A Schneider-like HU table with the Schneider 2000 density calibration.

    Rows: air (< -950), G4_LUNG_ICRP [-950, -120), G4_ADIPOSE_TISSUE_ICRP [-120, -20),
    G4_TISSUE_SOFT_ICRP [-20, 120), then 14 soft-tissue/cortical-bone mixtures in steps
    [120, 200), [200, 300) ... [1400, 1500), and G4_BONE_CORTICAL_ICRP from 1500 HU.
    Each mixture's cortical-bone mass fraction ``w`` makes ideal mixing of the two named
    end members reproduce the calibrated density at the bin centre,
    ``1/rho = (1-w)/1.03 + w/1.92`` (clipped to [0, 1]); its nominal density is that
    bin-centre density. This mirrors Schneider's idea (composition interpolated between
    soft tissue and cortical bone with HU) with a simpler, documented rule; it is not
    Schneider's 24-material table.
    """
    soft = get_material("G4_TISSUE_SOFT_ICRP")
    bone = get_material("G4_BONE_CORTICAL_ICRP")
    curve_h = np.array([h for h, _ in SCHNEIDER_2000_DENSITY])
    curve_v = np.array([v for _, v in SCHNEIDER_2000_DENSITY])
    rows: list[tuple[float, Material]] = [
        (-1000.0, get_material("G4_AIR")),
        (-950.0, get_material("G4_LUNG_ICRP")),
        (-120.0, get_material("G4_ADIPOSE_TISSUE_ICRP")),
        (-20.0, soft),
    ]
    edges = [120.0] + [float(h) for h in range(200, 1501, 100)]
    for lo, hi in zip(edges, edges[1:]):
        rho = float(np.interp(0.5 * (lo + hi), curve_h, curve_v))
        w = (1 / soft.density - 1 / rho) / (1 / soft.density - 1 / bone.density)
        w = min(max(w, 0.0), 1.0)
        rows.append((lo, mixture(f"soft_bone_{int(lo)}_{int(hi)}HU", [(soft, 1 - w), (bone, w)], rho)))
    rows.append((1500.0, bone))
    return HUTable(rows, curve_h, curve_v)
