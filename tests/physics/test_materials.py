"""Materials: named compositions, lookup, formulas, mixtures and the HU table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError
from gansim.physics.materials import (
    NAMED_MATERIALS,
    SCHNEIDER_2000_DENSITY,
    HUTable,
    Material,
    default_hu_table,
    get_material,
    material_from_formula,
    mixture,
)

REQUIRED = [
    "G4_WATER",
    "G4_AIR",
    "G4_LUNG_ICRP",
    "G4_BONE_CORTICAL_ICRP",
    "G4_TISSUE_SOFT_ICRP",
    "G4_ADIPOSE_TISSUE_ICRP",
    "G4_Pb",
    "G4_PLEXIGLASS",
    "G4_Galactic",
]


def test_named_materials_present_and_normalised():
    for name in REQUIRED:
        m = NAMED_MATERIALS[name]
        assert m.name == name
        assert sum(w for _, w in m.mass_fractions) == pytest.approx(1.0, abs=1e-12)
        assert all(w > 0 for _, w in m.mass_fractions)
    # Geant4/NIST densities (g/cm3)
    expected = {"G4_WATER": 1.0, "G4_AIR": 0.00120479, "G4_LUNG_ICRP": 1.04, "G4_BONE_CORTICAL_ICRP": 1.92, "G4_Pb": 11.35, "G4_PLEXIGLASS": 1.19, "G4_Galactic": 0.0}
    for name, rho in expected.items():
        assert NAMED_MATERIALS[name].density == rho


def test_water_and_pmma_fractions_from_atomic_masses():
    water = dict(NAMED_MATERIALS["G4_WATER"].mass_fractions)
    # H2O with standard atomic weights 1.008 and 15.999: H = 2.016/18.015
    assert water["H"] == pytest.approx(2 * 1.008 / (2 * 1.008 + 15.999), rel=2e-4)
    pmma = dict(NAMED_MATERIALS["G4_PLEXIGLASS"].mass_fractions)  # C5H8O2, NIST: H 0.080538, C 0.599848, O 0.319614
    assert pmma["H"] == pytest.approx(0.080538, rel=1e-3)
    assert pmma["C"] == pytest.approx(0.599848, rel=1e-3)
    assert pmma["O"] == pytest.approx(0.319614, rel=1e-3)


def test_electrons_per_gram_water():
    # 10 electrons per 18.015 g/mol
    assert NAMED_MATERIALS["G4_WATER"].electrons_per_gram() == pytest.approx(10 * 6.02214076e23 / 18.015, rel=2e-4)


@pytest.mark.parametrize("name", ["water", "WATER", "g4_water", "G4_WATER", " G4_Water "])
def test_get_material_case_and_prefix(name):
    assert get_material(name) is NAMED_MATERIALS["G4_WATER"]


def test_get_material_lead_short_name():
    assert get_material("pb") is NAMED_MATERIALS["G4_Pb"]
    assert get_material("G4_galactic").density == 0.0


def test_get_material_unknown_suggests():
    with pytest.raises(ConfigError, match="G4_WATER"):
        get_material("watr")
    with pytest.raises(ConfigError, match="G4_LUNG_ICRP"):
        get_material("G4_LUNG_ICPR")


def test_material_from_formula_matches_named():
    water = material_from_formula("w", "H2O", 1.0)
    ref = dict(NAMED_MATERIALS["G4_WATER"].mass_fractions)
    for s, w in water.mass_fractions:
        assert w == pytest.approx(ref[s], abs=1e-9)
    apatite = dict(material_from_formula("hap", "Ca5(PO4)3OH", 3.16).mass_fractions)
    # Ca10(PO4)6(OH)2, molar mass 1004.6 g/mol: Ca 39.89 %
    assert apatite["Ca"] == pytest.approx(5 * 40.078 / 502.31, rel=1e-3)


@pytest.mark.parametrize("formula", ["H2Xq", "((", ""])
def test_material_from_formula_errors(formula):
    with pytest.raises(ConfigError, match="formula"):
        material_from_formula("bad", formula, 1.0)


def test_mixture_mass_fractions():
    water, lead = get_material("water"), get_material("pb")
    mix = dict(mixture("wpb", [(water, 0.7), (lead, 0.3)], 2.0).mass_fractions)
    w = dict(water.mass_fractions)
    assert mix["Pb"] == pytest.approx(0.3)
    assert mix["H"] == pytest.approx(0.7 * w["H"])
    assert mix["O"] == pytest.approx(0.7 * w["O"])
    with pytest.raises(ConfigError, match="sum to 0.9"):
        mixture("bad", [(water, 0.6), (lead, 0.3)], 1.0)
    with pytest.raises(ConfigError, match="no components"):
        mixture("bad", [], 1.0)


def test_material_validation():
    with pytest.raises(ConfigError, match="density"):
        Material("x", -1.0, (("H", 1.0),))
    with pytest.raises(ConfigError, match="sum to 0.5"):
        Material("x", 1.0, (("H", 0.5),))
    with pytest.raises(ConfigError, match="unknown element 'Qq'"):
        Material("x", 1.0, (("Qq", 1.0),))
    # duplicates merge, symbols are canonicalised
    m = Material("x", 1.0, (("h", 0.25), ("H", 0.25), ("o", 0.5)))
    assert m.mass_fractions == (("H", 0.5), ("O", 0.5))


# --- HU table -----------------------------------------------------------------------------


def _curve(hu):
    h = np.array([p[0] for p in SCHNEIDER_2000_DENSITY])
    v = np.array([p[1] for p in SCHNEIDER_2000_DENSITY])
    return np.interp(hu, h, v)


def test_default_hu_table_materials_and_densities():
    table = default_hu_table()
    hu = np.array([[-3024, -1000, -960], [-500, -100, 0], [40, 1000, 2000], [1499, 1500, 5000]], dtype=np.int16).reshape(2, 2, 3)
    index, density, mats = table.convert(hu)
    assert index.shape == hu.shape and index.dtype == np.int16
    assert density.shape == hu.shape and density.dtype == np.float32
    assert len(mats) == 4 + 14 + 1 and mats == table.materials
    names = [mats[i].name for i in index.reshape(-1)]
    assert names[:3] == ["G4_AIR", "G4_AIR", "G4_AIR"]  # below the first bound -> first row
    assert names[3] == "G4_LUNG_ICRP" and names[4] == "G4_ADIPOSE_TISSUE_ICRP"
    assert names[5] == names[6] == "G4_TISSUE_SOFT_ICRP"
    assert names[7] == "soft_bone_1000_1100HU"
    assert names[8] == names[10] == names[11] == "G4_BONE_CORTICAL_ICRP"
    assert names[9] == "soft_bone_1400_1500HU"
    # Schneider 2000 calibration, held constant beyond its ends
    expect = _curve(hu.reshape(-1).astype(float))
    np.testing.assert_allclose(density.reshape(-1), expect, rtol=1e-6)
    assert density.reshape(-1)[0] == pytest.approx(1.21e-3)
    assert density.reshape(-1)[-1] == pytest.approx(2.8)
    # explicit spot values of the calibration: -500 HU on the air-lung segment, 0 HU on -97..14
    assert density.reshape(-1)[3] == pytest.approx(1.21e-3 + (0.93 - 1.21e-3) * 500 / 902, rel=1e-6)
    assert density.reshape(-1)[5] == pytest.approx(0.930486 + (1.03 - 0.930486) * 97 / 111, rel=1e-6)


def test_default_hu_table_bone_fraction_increases_and_matches_density():
    table = default_hu_table()
    soft, bone = get_material("G4_TISSUE_SOFT_ICRP"), get_material("G4_BONE_CORTICAL_ICRP")
    ca_soft, ca_bone = 0.0, dict(bone.mass_fractions)["Ca"]
    mixes = [m for _, m in table.rows if m.name.startswith("soft_bone")]
    fractions = []
    for m in mixes:
        w = (dict(m.mass_fractions)["Ca"] - ca_soft) / ca_bone  # bone mass fraction from its calcium
        fractions.append(w)
        # ideal mixing of the end members reproduces the mixture's (bin-centre) density
        assert 1 / m.density == pytest.approx((1 - w) / soft.density + w / bone.density, rel=1e-9)
    assert all(b > a for a, b in zip(fractions, fractions[1:]))
    assert 0 < fractions[0] < 0.25 and 0.9 < fractions[-1] <= 1


def test_hu_table_rejects_bad_input():
    water = get_material("water")
    with pytest.raises(ConfigError, match="increase strictly"):
        HUTable([(0, water), (0, water)], [0, 1], [1, 1])
    with pytest.raises(ConfigError, match="density curve"):
        HUTable([(0, water)], [0, 0], [1, 1])
    with pytest.raises(ConfigError, match="not a Material"):
        HUTable([(0, "G4_WATER")], [0, 1], [1, 1])
    with pytest.raises(DataError, match="finite"):
        default_hu_table().convert(np.array([0.0, np.nan]))


def test_hu_table_json_round_trip(tmp_path):
    doc = {
        "materials": [
            {"hu_lower": -1000, "material": "G4_AIR"},
            {"hu_lower": -200, "name": "fatty", "mass_fractions": {"H": 0.12, "C": 0.6, "O": 0.28}},
            {"hu_lower": 0, "material": "water"},
            {"hu_lower": 300, "name": "apatite", "formula": "Ca5(PO4)3OH", "density": 3.16},
            {"hu_lower": 800, "name": "mix", "mixture": [["G4_TISSUE_SOFT_ICRP", 0.6], ["G4_BONE_CORTICAL_ICRP", 0.4]]},
        ],
        "density": [[-1000, 0.0012], [0, 1.0], [2000, 2.0]],
    }
    path = tmp_path / "hu.json"
    path.write_text(json.dumps(doc))
    table = HUTable.from_file(path)
    hu = np.array([-1100.0, -500.0, -200.0, 100.0, 299.9, 300.0, 900.0, 3000.0])
    index, density, mats = table.convert(hu)
    assert [mats[i].name for i in index] == ["G4_AIR", "G4_AIR", "fatty", "G4_WATER", "G4_WATER", "apatite", "mix", "mix"]
    np.testing.assert_allclose(density, np.interp(hu, [-1000, 0, 2000], [0.0012, 1.0, 2.0]), rtol=1e-6)
    # a material without a density gets the curve at its lower bound
    assert mats[1].density == pytest.approx(np.interp(-200, [-1000, 0, 2000], [0.0012, 1.0, 2.0]))
    # write/read back gives the same conversion
    out = tmp_path / "back.json"
    table.to_file(out)
    index2, density2, mats2 = HUTable.from_file(out).convert(hu)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_array_equal(density2, density)
    assert [m.mass_fractions for m in mats2] == [m.mass_fractions for m in mats]


def test_hu_table_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        HUTable.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="JSON"):
        HUTable.from_file(bad)
    bad.write_text(json.dumps({"materials": [{"hu_lower": 0}], "density": [[0, 1], [1, 1]]}))
    with pytest.raises(DataError, match=r"materials\[0\]"):
        HUTable.from_file(bad)
    bad.write_text(json.dumps({"materials": [{"hu_lower": 0, "material": "watr"}], "density": [[0, 1], [1, 1]]}))
    with pytest.raises(ConfigError, match="G4_WATER"):
        HUTable.from_file(bad)
