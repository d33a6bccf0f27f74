"""Shower files: CaloGAN / CaloChallenge round trips, layout detection, bad files, DS1 binning XML, duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io import calo
from gansim.io.calo import (
    ShowerData,
    detect_shower_layout,
    find_duplicate_showers,
    read_binning_xml,
    read_calochallenge,
    read_calogan,
    read_showers,
    write_calochallenge,
    write_calogan,
)
from gansim.io.calo_geometry import (
    CALOCHALLENGE_DS2,
    CALOCHALLENGE_DS3,
    CALOGAN,
    CylindricalGeometry,
)
from gansim.units import GeV

# The real CaloChallenge dataset-1 photon binning (binning_dataset_1_photons.xml): 368 voxels in
# layers 0, 1, 2, 3, 12; the empty layers (a single r edge) hold no voxels.
_PHOTON_LAYERS = {
    0: ("0,5,10,30,50,100,200,400,600", 1),
    1: ("0,2,4,6,8,10,12,15,20,30,40,50,70,90,120,150,200", 10),
    2: ("0,2,5,10,15,20,25,30,40,50,60,80,100,130,160,200,250,300,350,400", 10),
    3: ("0,50,100,200,400,600", 1),
    12: ("0,100,200,400,1000,2000", 1),
}



def _photon_xml(path: Path) -> Path:
    rows = "\n".join(
        f'      <Layer id="{i}" r_edges="{_PHOTON_LAYERS[i][0] if i in _PHOTON_LAYERS else 0}" n_bin_alpha="{_PHOTON_LAYERS[i][1] if i in _PHOTON_LAYERS else 1}" />'
        for i in range(24)
    )
    path.write_text(f'<Bins>\n   <Bin pid="22" etaMin="0" etaMax="130" name="photon">\n{rows}\n   </Bin>\n</Bins>\n')
    return path


def _calogan_showers(n: int, seed: int = 0, dtype: Any = np.float32) -> ShowerData:
    """Sparse random showers with exact zeros, energies uniform in 1-100 GeV (in MeV)."""
    rng = np.random.default_rng(seed)
    layers = []
    for layer in CALOGAN.layers:
        cells = rng.exponential(50.0, size=(n, *layer.shape)) * (rng.random((n, *layer.shape)) < 0.4)
        layers.append(cells.astype(dtype))
    energy = rng.uniform(1.0, 100.0, n) * GeV
    overflow = rng.exponential(5.0, size=(n, 3)).astype(dtype)
    return ShowerData("calogan", CALOGAN, energy.astype(dtype), layers, overflow)


def _cc_showers(n: int, geometry: CylindricalGeometry, seed: int = 0, dtype: Any = np.float32) -> ShowerData:
    rng = np.random.default_rng(seed)
    cells = rng.exponential(2.0, size=(n, geometry.n_cells)) * (rng.random((n, geometry.n_cells)) < 0.3)
    energy = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n))
    return ShowerData(geometry.name, geometry, energy.astype(dtype), [cells.astype(dtype)], None)


def _raw_file(path: Path, datasets: dict[str, Any]) -> Path:
    """An HDF5 file holding exactly ``datasets`` (to build bad files by hand)."""
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)
    return path


def _calogan_raw(n: int = 20, seed: int = 1) -> dict[str, np.ndarray]:
    data = _calogan_showers(n, seed)
    out = {"energy": (data.energy.astype(np.float64) / GeV).reshape(n, 1)}
    out.update({layer.name: arr for layer, arr in zip(CALOGAN.layers, data.layers)})
    out["overflow"] = data.overflow
    return out


# ---------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_calogan_round_trip_is_exact_and_in_the_calogan_units(tmp_path: Path, dtype: Any) -> None:
    data = _calogan_showers(50, seed=3, dtype=dtype)
    path = tmp_path / "eplus.h5"
    write_calogan(path, data, dtype=dtype)
    with h5py.File(path, "r") as f:
        assert set(f) == {"energy", "layer_0", "layer_1", "layer_2", "overflow"}
        assert f["energy"].shape == (50, 1) and f["overflow"].shape == (50, 3)
        assert [f[layer.name].shape for layer in CALOGAN.layers] == [(50, 3, 96), (50, 12, 12), (50, 12, 6)]
        assert all(f[name].dtype == np.dtype(dtype) for name in f)
        # the file holds GeV: 1-100 GeV showers give values in [1, 100]
        np.testing.assert_allclose(f["energy"][:, 0], data.energy.astype(np.float64) / 1000.0, rtol=np.finfo(dtype).eps)
        assert 1.0 <= f["energy"][:].min() and f["energy"][:].max() <= 100.0
    back = read_calogan(path, dtype=dtype)
    assert back.layout == "calogan" and back.geometry == CALOGAN and len(back) == 50
    assert back.energy.dtype == np.dtype(dtype) and back.energy.shape == (50,)
    # cells are MeV in the file and in memory: no conversion, bit-exact
    for a, b in zip(back.layers, data.layers):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.overflow, data.overflow)
    # energy goes GeV -> MeV and back: at most one rounding each way
    np.testing.assert_allclose(back.energy, data.energy, rtol=2 * np.finfo(dtype).eps)


def test_calogan_float64_file_reads_as_float32(tmp_path: Path) -> None:
    data = _calogan_showers(10, seed=4, dtype=np.float64)
    path = tmp_path / "f64.h5"
    write_calogan(path, data, dtype=np.float64)
    back = read_calogan(path)  # default float32
    assert all(layer.dtype == np.float32 for layer in back.layers) and back.energy.dtype == np.float32
    np.testing.assert_array_equal(back.layers[1], data.layers[1].astype(np.float32))


def test_calogan_without_overflow_reads_back_none(tmp_path: Path) -> None:
    data = _calogan_showers(5)
    data.overflow = None
    path = tmp_path / "gen.h5"
    write_calogan(path, data)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["overflow"][:], 0.0)  # CaloGAN readers expect the dataset
    assert read_calogan(path).overflow is None
    # a foreign file without overflow at all is accepted too
    raw = _calogan_raw()
    del raw["overflow"]
    assert read_calogan(_raw_file(tmp_path / "noov.h5", raw)).overflow is None


def test_calochallenge_ds2_round_trip(tmp_path: Path) -> None:
    data = _cc_showers(20, CALOCHALLENGE_DS2, seed=5)
    path = tmp_path / "ds2.h5"
    write_calochallenge(path, data)
    with h5py.File(path, "r") as f:
        assert f["incident_energies"].shape == (20, 1) and f["showers"].shape == (20, 6480)
        np.testing.assert_array_equal(f["incident_energies"][:, 0], data.energy)  # MeV in both
    back = read_calochallenge(path)
    assert back.layout == "calochallenge-ds2" and back.geometry is CALOCHALLENGE_DS2 and back.overflow is None
    np.testing.assert_array_equal(back.energy, data.energy)
    np.testing.assert_array_equal(back.layers[0], data.layers[0])
    # by name too
    assert read_calochallenge(path, "ds2").geometry is CALOCHALLENGE_DS2


def test_ds1_binning_xml_gives_the_published_voxel_count(tmp_path: Path) -> None:
    geom = read_binning_xml(_photon_xml(tmp_path / "binning_dataset_1_photons.xml"))
    assert geom.name == "calochallenge-ds1-photon"
    assert geom.layer_ids == (0, 1, 2, 3, 12)
    assert [layer.n_alpha for layer in geom.layers] == [1, 10, 10, 1, 1]
    assert [layer.n_r for layer in geom.layers] == [8, 16, 19, 5, 5]
    assert geom.n_cells == 368  # calogan.md §e
    assert geom.layers[4].r_edges == (0.0, 100.0, 200.0, 400.0, 1000.0, 2000.0)


def test_ds1_round_trip_with_a_tiny_xml_geometry(tmp_path: Path, tiny_binning_xml: Path) -> None:
    xml = tiny_binning_xml
    geom = read_binning_xml(xml, "toy")
    assert geom.layer_ids == (0, 2) and geom.n_cells == 9 and geom.name == "calochallenge-ds1-toy"
    assert geom.layers[0].r_edges == (0.0, 5.0, 12.5) and geom.layers[0].n_alpha == 3
    pions = read_binning_xml(xml, "pion")  # plural name in the file, pid also works
    assert pions.layer_ids == (0,) and pions.n_cells == 4 and read_binning_xml(xml, "211") == pions

    data = _cc_showers(30, geom, seed=6, dtype=np.float64)
    path = tmp_path / "ds1.h5"
    write_calochallenge(path, data, dtype=np.float64)
    back = read_calochallenge(path, geom, dtype=np.float64)
    assert back.layout == "calochallenge-ds1-toy" and back.geometry == geom
    np.testing.assert_array_equal(back.layers[0], data.layers[0])
    np.testing.assert_array_equal(back.energy, data.energy)
    # gansim records the binning: the file reads back without its XML
    assert read_calochallenge(path).geometry == geom
    assert detect_shower_layout(path) == "calochallenge-ds1-toy"
    # a foreign file with the same voxels needs the XML, and says so
    foreign = _raw_file(tmp_path / "foreign.h5", {"incident_energies": data.energy[:, None], "showers": data.layers[0]})
    with pytest.raises(ConfigError, match="binning XML") as err:
        read_calochallenge(foreign)
    assert str(foreign) in str(err.value) and "showers" in str(err.value)
    assert read_showers(foreign, binning_xml=xml, particle="toy", dtype=np.float64).geometry == geom


def test_max_rows_reads_only_the_first_rows(tmp_path: Path) -> None:
    data = _calogan_showers(40, seed=7)
    path = tmp_path / "c.h5"
    write_calogan(path, data)
    head = read_calogan(path, max_rows=7)
    assert len(head) == 7 and head.layers[0].shape == (7, 3, 96) and head.overflow.shape == (7, 3)
    np.testing.assert_array_equal(head.layers[2], data.layers[2][:7])
    assert len(read_calogan(path, max_rows=1000)) == 40
    cc = _cc_showers(12, CALOCHALLENGE_DS2, seed=8)
    write_calochallenge(tmp_path / "d.h5", cc)
    np.testing.assert_array_equal(read_calochallenge(tmp_path / "d.h5", max_rows=3).layers[0], cc.layers[0][:3])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="max_rows"):
            read_calogan(path, max_rows=bad)
    with pytest.raises(ConfigError, match="dtype"):
        read_calogan(path, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# detection and dispatch


def test_detect_shower_layout_on_every_kind(tmp_path: Path) -> None:
    write_calogan(tmp_path / "calogan.h5", _calogan_showers(3))
    assert detect_shower_layout(tmp_path / "calogan.h5") == "calogan"
    rng = np.random.default_rng(9)
    for n_vox, expected in [(6480, "calochallenge-ds2"), (40500, "calochallenge-ds3"), (368, "calochallenge-ds1-photon"), (533, "calochallenge-ds1-pion"), (17, "calochallenge-ds1")]:
        p = _raw_file(tmp_path / f"cc{n_vox}.h5", {"incident_energies": np.full((2, 1), 5e3), "showers": rng.random((2, n_vox))})
        assert detect_shower_layout(p) == expected
    assert read_showers(tmp_path / "cc40500.h5").geometry is CALOCHALLENGE_DS3
    # a phase-space-like HDF5 file, a text file: not shower files
    phsp = _raw_file(tmp_path / "phsp.h5", {"E": rng.random(10), "X": rng.random(10), "Y": rng.random(10)})
    assert detect_shower_layout(phsp) is None
    (tmp_path / "notes.txt").write_text("not hdf5")
    assert detect_shower_layout(tmp_path / "notes.txt") is None
    with pytest.raises(DataError, match="no such file"):
        detect_shower_layout(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="not a shower file") as err:
        read_showers(phsp)
    assert str(phsp) in str(err.value) and "E (10,)" in str(err.value)


def test_read_showers_dispatches(tmp_path: Path) -> None:
    write_calogan(tmp_path / "a.h5", _calogan_showers(4))
    write_calochallenge(tmp_path / "b.h5", _cc_showers(4, CALOCHALLENGE_DS2))
    assert read_showers(tmp_path / "a.h5", max_rows=2).layout == "calogan"
    assert len(read_showers(tmp_path / "b.h5", max_rows=2)) == 2
    with pytest.raises(ConfigError, match="CaloChallenge files only"):
        read_showers(tmp_path / "a.h5", geometry=CALOCHALLENGE_DS2)
    with pytest.raises(ConfigError, match="give binning_xml"):
        read_showers(tmp_path / "b.h5", particle="photon")
    pions = _raw_file(tmp_path / "pions.h5", {"incident_energies": np.full((2, 1), 1e4), "showers": np.ones((2, 533))})
    with pytest.raises(ConfigError, match="binning_dataset_1_pions.xml"):
        read_showers(pions)


# ---------------------------------------------------------------------------------------------
# bad files: every message names the file and the dataset


def _bad_calogan(kind: str) -> tuple[dict[str, Any], list[str]]:
    raw = _calogan_raw(n=20)
    if kind == "missing":
        del raw["layer_2"]
        return raw, ["no dataset 'layer_2'", "the file has", "layer_0 (20, 3, 96)"]
    if kind == "shape":
        raw["layer_1"] = np.zeros((20, 12, 13))
        return raw, ["layer_1: expected (N, 12, 12), found (N, 12, 13)"]
    if kind == "energy_shape":
        raw["energy"] = np.ones((20, 2))
        return raw, ["energy: expected (N, 1), found (N, 2)"]
    if kind == "rows":
        raw["layer_0"] = raw["layer_0"][:19]
        return raw, ["different row counts", "layer_0 19", "energy 20"]
    if kind == "nan":
        raw["layer_0"][5, 1, 40] = np.nan
        return raw, ["layer_0", "NaN or Inf at row 5"]
    if kind == "inf_energy":
        raw["energy"][11, 0] = np.inf
        return raw, ["energy", "NaN or Inf at row 11"]
    if kind == "negative":
        raw["layer_2"][3, 0, 0] = -0.25
        raw["layer_2"][8, 1, 1] = -1.0
        return raw, ["layer_2", "negative energy -1", "row 3"]
    if kind == "zero_energy":
        raw["energy"][2, 0] = 0.0
        return raw, ["energy", "non-positive", "row 2"]
    if kind == "dtype":
        raw["overflow"] = np.array([[b"a", b"b", b"c"]] * 20)  # fixed-length byte strings
        return raw, ["overflow", "expected numbers"]
    if kind == "mev":
        raw["energy"] = raw["energy"] * 1000.0
        return raw, ["energy", "looks like MeV", "GeV"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "shape", "energy_shape", "rows", "nan", "inf_energy", "negative", "zero_energy", "dtype", "mev"])
def test_bad_calogan_files_name_file_and_dataset(tmp_path: Path, kind: str) -> None:
    raw, fragments = _bad_calogan(kind)
    path = _raw_file(tmp_path / f"bad_{kind}.h5", raw)
    with pytest.raises(DataError) as err:
        read_calogan(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_bad_calochallenge_files_name_file_and_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    good = {"incident_energies": np.full((4, 1), 2e4), "showers": rng.random((4, 6480))}
    cases = [
        ({"incident_energies": good["incident_energies"]}, ["no dataset 'showers'", "incident_energies (4, 1)"]),
        ({**good, "showers": rng.random((4, 6481))}, ["showers: expected (N, 6480), found (N, 6481)"]),
        ({**good, "showers": rng.random((4, 45, 144))}, ["showers: expected (N, voxels)"]),
        ({**good, "incident_energies": np.full((3, 1), 2e4)}, ["different row counts", "incident_energies 3", "showers 4"]),
        ({**good, "incident_energies": np.array([[1e3], [-5.0], [1e3], [1e3]])}, ["incident_energies", "non-positive", "row 1"]),
    ]
    bad_cells = good["showers"].copy()
    bad_cells[2, 100] = np.nan
    cases.append(({**good, "showers": bad_cells}, ["showers", "NaN or Inf at row 2"]))
    neg_cells = good["showers"].copy()
    neg_cells[3, 7] = -1e-3
    cases.append(({**good, "showers": neg_cells}, ["showers", "negative", "row 3"]))
    for i, (datasets, fragments) in enumerate(cases):
        path = _raw_file(tmp_path / f"cc_bad_{i}.h5", datasets)
        geometry = CALOCHALLENGE_DS2 if i == 1 else None
        with pytest.raises(DataError) as err:
            read_calochallenge(path, geometry)
        message = str(err.value)
        assert str(path) in message
        for fragment in fragments:
            assert fragment in message, (fragment, message)


def test_calochallenge_energy_in_gev_warns(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "gev.h5", {"incident_energies": np.full((3, 1), 50.0), "showers": np.ones((3, 6480))})
    with pytest.warns(UserWarning, match="looks like GeV"):
        read_calochallenge(path)


def test_missing_and_non_hdf5_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_calogan(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        read_calochallenge(tmp_path / "text.h5")


def test_bad_binning_xml(tmp_path: Path, tiny_binning_xml: Path) -> None:
    xml = tiny_binning_xml
    with pytest.raises(ConfigError, match="choose one with particle="):
        read_binning_xml(xml)
    with pytest.raises(ConfigError, match="no binning for particle 'kaon'.*toy"):
        read_binning_xml(xml, "kaon")
    cases = {
        "garbage.xml": ("<Bins><Bin name='x'>", "not valid XML"),
        "nolayers.xml": ("<Bins><Bin name='x'/></Bins>", "no <Bin> element"),
        "numbers.xml": ("<Bins><Bin name='x'><Layer id='0' r_edges='0,a,2' n_bin_alpha='1'/></Bin></Bins>", "Layer id=0"),
        "decreasing.xml": ("<Bins><Bin name='x'><Layer id='4' r_edges='0,5,3' n_bin_alpha='1'/></Bin></Bins>", "Layer id=4"),
        "nbinr.xml": ("<Bins><Bin name='x'><Layer id='1' r_edges='0,5,6' n_bin_alpha='1' n_bin_R='3'/></Bin></Bins>", "n_bin_R=3"),
        "empty.xml": ("<Bins><Bin name='x'><Layer id='1' r_edges='0' n_bin_alpha='1'/></Bin></Bins>", "no layer with radial bins"),
    }
    for name, (text, fragment) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as err:
            read_binning_xml(tmp_path / name)
        assert str(tmp_path / name) in str(err.value) and fragment in str(err.value), str(err.value)
    with pytest.raises(DataError, match="not found"):
        read_binning_xml(tmp_path / "absent.xml")


# ---------------------------------------------------------------------------------------------
# writing: validation, atomicity, overwrite


def test_write_refuses_bad_showers(tmp_path: Path) -> None:
    path = tmp_path / "out.h5"
    data = _calogan_showers(6)
    data.layers[1] = data.layers[1][:, :, :11]
    with pytest.raises(DataError, match=r"layer_1: expected \(N, 12, 12\), found \(N, 12, 11\)"):
        write_calogan(path, data)
    data = _calogan_showers(6)
    data.layers[0][4, 0, 0] = np.nan
    with pytest.raises(DataError, match="layer_0: NaN or Inf at row 4"):
        write_calogan(path, data)
    data = _calogan_showers(6)
    data.energy[1] = -3.0
    with pytest.raises(DataError, match="energy: non-positive"):
        write_calogan(path, data)
    with pytest.raises(DataError, match="CaloGAN geometry"):
        write_calogan(path, _cc_showers(3, CALOCHALLENGE_DS2))
    with pytest.raises(DataError, match="cylindrical"):
        write_calochallenge(path, _calogan_showers(3))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_write_is_atomic_and_refuses_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "showers.h5"
    first, second = _calogan_showers(8, seed=11), _calogan_showers(8, seed=12)
    write_calogan(path, first)
    with pytest.raises(OutputExistsError):
        write_calogan(path, second)
    np.testing.assert_array_equal(read_calogan(path).layers[0], first.layers[0])
    write_calogan(path, second, force=True)
    np.testing.assert_array_equal(read_calogan(path).layers[0], second.layers[0])

    # a failure half-way leaves the old file as it was and no temporary file behind
    calls = {"n": 0}
    real = calo._write_rows

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(calo, "_write_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        write_calogan(path, first, force=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["showers.h5"]
    np.testing.assert_array_equal(read_calogan(path).layers[0], second.layers[0])


# ---------------------------------------------------------------------------------------------
# duplicates


def test_planted_duplicates_are_found_and_near_duplicates_are_not() -> None:
    data = _calogan_showers(200, seed=13)
    planted = [(5, 50), (10, 120), (5, 199)]
    for src, dst in planted:
        data.energy[dst] = data.energy[src]
        for layer in data.layers:
            layer[dst] = layer[src]
        data.overflow[dst] = data.overflow[src]
    # a near-duplicate: shower 7 copied to 80 but one cell one ulp away
    data.energy[80] = data.energy[7]
    for layer in data.layers:
        layer[80] = layer[7]
    data.overflow[80] = data.overflow[7]
    data.layers[1][80, 6, 6] = np.nextafter(data.layers[1][7, 6, 6], np.float32(np.inf))
    # same cells, different energy: not a duplicate either
    data.energy[90] = data.energy[91] * 1.5
    for layer in data.layers:
        layer[90] = layer[91]
    data.overflow[90] = data.overflow[91]
    found = find_duplicate_showers(data)
    assert found.dtype == np.int64 and found.shape == (3, 2)
    np.testing.assert_array_equal(found, np.array(sorted(planted, key=lambda p: p[1])))


def test_duplicates_in_calochallenge_showers_and_signed_zeros() -> None:
    data = _cc_showers(30, CALOCHALLENGE_DS2, seed=14)
    assert find_duplicate_showers(data).shape == (0, 2)
    data.energy[20] = data.energy[3]
    data.layers[0][20] = data.layers[0][3]
    # -0.0 == 0.0: the same shower even though the bytes differ
    zero = np.flatnonzero(data.layers[0][3] == 0)[0]
    data.layers[0][20, zero] = -0.0
    np.testing.assert_array_equal(find_duplicate_showers(data), [[3, 20]])


def test_read_shower_energies_reads_only_the_energies_in_mev(tmp_path: Path) -> None:
    from gansim.data.calo import make_calo_showers
    from gansim.io.calo import read_shower_energies

    calogan = make_calo_showers(7, "eplus", seed=1).to_shower_data()
    write_calogan(tmp_path / "a.h5", calogan)
    np.testing.assert_allclose(read_shower_energies(tmp_path / "a.h5"), read_calogan(tmp_path / "a.h5").energy, rtol=1e-6)
    np.testing.assert_allclose(read_shower_energies(tmp_path / "a.h5", max_rows=3), read_calogan(tmp_path / "a.h5").energy[:3], rtol=1e-6)
    ds2 = make_calo_showers(5, "gamma", seed=2, layout="calochallenge-ds2")
    write_calochallenge(tmp_path / "b.h5", ds2)
    np.testing.assert_allclose(read_shower_energies(tmp_path / "b.h5"), ds2.energy, rtol=1e-6)
    np.save(tmp_path / "c.npy", np.ones(3))
    with pytest.raises(DataError, match="not a shower file"):
        read_shower_energies(tmp_path / "c.npy")
