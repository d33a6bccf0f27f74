"""MCPL reader/writer: round trips, agreement with the reference tools, bad input."""

from __future__ import annotations

import ctypes
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

mcpl = pytest.importorskip("mcpl")

from gansim.errors import ConfigError, DataError, OutputExistsError  # noqa: E402
from gansim.io.phsp import open_reader, open_writer, read_table, write_table  # noqa: E402
from gansim.io.phsp.mcpl_format import McplReader, McplWriter, load_libmcpl  # noqa: E402

MCPLTOOL = Path(sys.executable).parent / "mcpltool"


def _table(n: int, seed: int = 0, *, extra: bool = True) -> dict[str, np.ndarray]:
    """A phase space in gansim units (mm, MeV, ns) with unit directions."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    t = {
        "KineticEnergy": rng.uniform(0.0, 6.0, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Y": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Z": np.full(n, 1000.0, np.float32),
        "PreDirection_X": u[:, 0].astype(np.float32),
        "PreDirection_Y": u[:, 1].astype(np.float32),
        "PreDirection_Z": u[:, 2].astype(np.float32),
        "GlobalTime": rng.uniform(0.0, 5.0, n).astype(np.float32),
        "Weight": rng.uniform(0.5, 2.0, n).astype(np.float32),
        "PDGCode": rng.choice(np.array([22, 11, -11], np.int32), n),
    }
    if extra:
        p = rng.normal(size=(n, 3))
        t.update({"Polarisation_X": p[:, 0], "Polarisation_Y": p[:, 1], "Polarisation_Z": p[:, 2]})
        t["UserFlags"] = rng.integers(0, 2**32 - 1, n, dtype=np.uint64).astype(np.uint32)
    return t


def _assert_tables_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if np.issubdtype(value.dtype, np.integer):
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], value, rtol=2e-6, atol=2e-6, err_msg=key)


def test_round_trip_in_chunks(tmp_path: Path) -> None:
    table = _table(1000)
    path = tmp_path / "out.mcpl"
    with McplWriter(path, comments=["made by a test"]) as writer:
        for lo in range(0, 1000, 300):  # 4 chunks, the last one short
            writer.write({k: v[lo : lo + 300] for k, v in table.items()})
    assert writer.rows_written == 1000
    assert not [p for p in tmp_path.iterdir() if p.name != "out.mcpl"], "temporary files left behind"

    with open_reader(path) as reader:
        assert isinstance(reader, McplReader)
        assert reader.n_rows == 1000
        assert set(reader.columns) == set(table)
        assert reader.source_name == "gansim"
        assert reader.comments == ["made by a test"]
        chunks = list(reader.iter_chunks(chunk_rows=333))
    assert [len(c["KineticEnergy"]) for c in chunks] == [333, 333, 333, 1]
    got = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert got["KineticEnergy"].dtype == np.float32  # single precision file
    assert got["PDGCode"].dtype == np.int32 and got["UserFlags"].dtype == np.uint32
    _assert_tables_close(got, table)


def test_written_file_read_by_mcpl_package_in_mcpl_units(tmp_path: Path) -> None:
    table = _table(257, seed=3)
    path = tmp_path / "units.mcpl"
    write_table(path, table, source_name="unit-test", comments=("a", "b"))
    with mcpl.MCPLFile(str(path)) as f:
        assert f.nparticles == 257
        assert f.sourcename == "unit-test"
        assert list(f.comments) == ["a", "b"]
        assert f.opt_polarisation and f.opt_userflags and f.opt_singleprec
        block = next(iter(f.particle_blocks))
    np.testing.assert_allclose(block.ekin, table["KineticEnergy"], rtol=1e-6)
    np.testing.assert_allclose(block.x, table["PrePosition_X"] / 10.0, rtol=1e-6)  # mm -> cm
    np.testing.assert_allclose(block.z, 100.0, rtol=1e-6)
    np.testing.assert_allclose(block.time, table["GlobalTime"] * 1e-6, rtol=1e-6)  # ns -> ms
    np.testing.assert_allclose(block.uz, table["PreDirection_Z"], atol=1e-6)
    np.testing.assert_allclose(block.weight, table["Weight"], rtol=1e-6)
    np.testing.assert_array_equal(block.pdgcode, table["PDGCode"])
    np.testing.assert_array_equal(block.userflags, table["UserFlags"])
    np.testing.assert_allclose(block.polx, table["Polarisation_X"], rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not MCPLTOOL.exists() and shutil.which("mcpltool") is None, reason="mcpltool not installed")
def test_mcpltool_accepts_written_file_and_extracts_for_gansim(tmp_path: Path) -> None:
    tool = str(MCPLTOOL) if MCPLTOOL.exists() else str(shutil.which("mcpltool"))
    table = _table(120, seed=5, extra=False)
    path = tmp_path / "tool.mcpl"
    write_table(path, table)
    out = subprocess.run([tool, "-j", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No. of particles   : 120" in out.stdout
    full = subprocess.run([tool, "-l0", str(path)], capture_output=True, text=True, timeout=60)
    assert full.returncode == 0

    # A file written by the reference library itself (mcpltool --extract), read by gansim.
    electrons = tmp_path / "electrons.mcpl"
    out = subprocess.run([tool, "--extract", "-p11", str(path), str(electrons)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    produced = [p for p in tmp_path.iterdir() if p.name.startswith("electrons.mcpl")]
    assert len(produced) == 1  # mcpltool gzips its output (electrons.mcpl.gz)
    sel = table["PDGCode"] == 11
    got = read_table(produced[0])
    assert len(got["KineticEnergy"]) == int(sel.sum())
    _assert_tables_close(got, {k: v[sel] for k, v in table.items()})


def test_file_from_reference_library_double_precision_gzip(tmp_path: Path) -> None:
    """Write with libmcpl directly (no gansim writer code), read with gansim."""
    lib = ctypes.CDLL(str(load_libmcpl()._name))

    class OutFile(ctypes.Structure):
        _fields_ = [("internal", ctypes.c_void_p)]

    class Particle(ctypes.Structure):
        _pack_ = 1
        _fields_ = [
            ("ekin", ctypes.c_double),
            ("polarisation", ctypes.c_double * 3),
            ("position", ctypes.c_double * 3),
            ("direction", ctypes.c_double * 3),
            ("time", ctypes.c_double),
            ("weight", ctypes.c_double),
            ("pdgcode", ctypes.c_int32),
            ("userflags", ctypes.c_uint32),
        ]

    lib.mcpl_create_outfile.restype = OutFile
    lib.mcpl_create_outfile.argtypes = [ctypes.c_char_p]
    for name, args in {
        "mcpl_hdr_set_srcname": [OutFile, ctypes.c_char_p],
        "mcpl_enable_doubleprec": [OutFile],
        "mcpl_enable_polarisation": [OutFile],
        "mcpl_enable_userflags": [OutFile],
        "mcpl_enable_universal_weight": [OutFile, ctypes.c_double],
        "mcpl_add_particle": [OutFile, ctypes.POINTER(Particle)],
    }.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = None
    lib.mcpl_get_empty_particle.argtypes = [OutFile]
    lib.mcpl_get_empty_particle.restype = ctypes.POINTER(Particle)
    lib.mcpl_closeandgzip_outfile.argtypes = [OutFile]
    lib.mcpl_closeandgzip_outfile.restype = ctypes.c_int

    stem = tmp_path / "reference"
    handle = lib.mcpl_create_outfile(os.fsencode(stem))  # the library appends .mcpl
    lib.mcpl_hdr_set_srcname(handle, b"ctypes test")
    lib.mcpl_enable_doubleprec(handle)
    lib.mcpl_enable_polarisation(handle)
    lib.mcpl_enable_userflags(handle)
    lib.mcpl_enable_universal_weight(handle, 2.5)
    p = lib.mcpl_get_empty_particle(handle)
    n = 50
    for i in range(n):
        p.contents.ekin = 0.1 * (i + 1)  # MeV
        p.contents.position[0] = 1.0 + i  # cm
        p.contents.position[1] = -2.0
        p.contents.position[2] = 3.25
        p.contents.direction[0] = 0.6
        p.contents.direction[1] = 0.0
        p.contents.direction[2] = -0.8
        p.contents.polarisation[1] = 1.0
        p.contents.time = 1e-3 * i  # ms
        p.contents.pdgcode = 2112 if i % 2 else 22
        p.contents.userflags = i
        lib.mcpl_add_particle(handle, p)
    assert lib.mcpl_closeandgzip_outfile(handle)
    path = tmp_path / "reference.mcpl.gz"
    assert path.exists()

    reader = McplReader(path)
    assert reader.double_precision and reader.source_name == "ctypes test"
    assert reader.n_rows == n
    got = reader.read()
    i = np.arange(n)
    assert got["KineticEnergy"].dtype == np.float64
    np.testing.assert_allclose(got["KineticEnergy"], 0.1 * (i + 1), rtol=1e-12)
    np.testing.assert_allclose(got["PrePosition_X"], 10.0 * (1.0 + i), rtol=1e-12)  # cm -> mm
    np.testing.assert_allclose(got["PrePosition_Z"], 32.5, rtol=1e-12)
    np.testing.assert_allclose(got["PreDirection_X"], 0.6, atol=1e-12)
    np.testing.assert_allclose(got["PreDirection_Z"], -0.8, atol=1e-12)
    np.testing.assert_allclose(got["GlobalTime"], 1e3 * i, rtol=1e-12)  # ms -> ns
    np.testing.assert_allclose(got["Weight"], 2.5)
    np.testing.assert_array_equal(got["PDGCode"], np.where(i % 2, 2112, 22))
    np.testing.assert_array_equal(got["UserFlags"], i)
    np.testing.assert_allclose(got["Polarisation_Y"], 1.0)


def test_universal_pdgcode_weight_double_precision_and_gzip(tmp_path: Path) -> None:
    table = _table(300, seed=7, extra=False)
    del table["PDGCode"], table["Weight"], table["GlobalTime"]
    path = tmp_path / "neutrons.mcpl.gz"
    with open_writer(path, pdgcode=2112, double_precision=True) as writer:
        writer.write({k: v[:100] for k, v in table.items()})
        writer.write({k: v[100:] for k, v in table.items()})
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neutrons.mcpl.gz"]
    reader = McplReader(path)
    assert reader.universal_pdgcode == 2112 and reader.universal_weight == 1.0 and reader.double_precision
    got = read_table(path)
    np.testing.assert_array_equal(got["PDGCode"], 2112)
    np.testing.assert_array_equal(got["Weight"], 1.0)
    np.testing.assert_array_equal(got["GlobalTime"], 0.0)
    np.testing.assert_allclose(got["PrePosition_X"], table["PrePosition_X"], rtol=1e-6)


def test_directions_are_normalised_or_refused(tmp_path: Path) -> None:
    table = _table(10, extra=False)
    for key in ("PreDirection_X", "PreDirection_Y", "PreDirection_Z"):
        table[key] = table[key] * 3.0
    write_table(tmp_path / "scaled.mcpl", table)
    got = read_table(tmp_path / "scaled.mcpl")
    np.testing.assert_allclose(got["PreDirection_X"], table["PreDirection_X"] / 3.0, atol=1e-6)
    with pytest.raises(DataError, match="squared length"):
        write_table(tmp_path / "strict.mcpl", table, normalize_directions=False)
    table["PreDirection_X"][4] = table["PreDirection_Y"][4] = table["PreDirection_Z"][4] = 0.0
    with pytest.raises(DataError, match="row 4"):
        write_table(tmp_path / "zero.mcpl", table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaled.mcpl"]


def test_negative_energy_refused_without_leftovers(tmp_path: Path) -> None:
    table = _table(10, extra=False)
    table["KineticEnergy"][3] = -1.0
    with pytest.raises(DataError, match="KineticEnergy"):
        write_table(tmp_path / "neg.mcpl", table)
    assert list(tmp_path.iterdir()) == []


def test_unknown_and_missing_columns(tmp_path: Path) -> None:
    table = _table(10, extra=False)
    table["EventID"] = np.arange(10)
    table["NewHistory"] = np.ones(10, np.int32)
    with pytest.raises(DataError, match="EventID, NewHistory") as info:
        write_table(tmp_path / "x.mcpl", table)
    assert "drop_unknown" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # refused before any file was made (columns known up front)
    write_table(tmp_path / "x.mcpl", table, drop_unknown=True)
    assert "EventID" not in read_table(tmp_path / "x.mcpl")

    table = _table(10, extra=False)
    del table["PreDirection_Y"]
    with pytest.raises(DataError, match="PreDirection_Y"):
        with McplWriter(tmp_path / "y.mcpl") as writer:  # columns only known at the first chunk
            writer.write(table)
    assert not (tmp_path / "y.mcpl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mcpl"]


def test_existing_file_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "exists.mcpl"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        McplWriter(path)
    assert path.read_bytes() == b"precious"
    write_table(path, _table(5, extra=False), force=True)
    assert McplReader(path).n_rows == 5


def test_exception_inside_with_leaves_no_files(tmp_path: Path) -> None:
    path = tmp_path / "aborted.mcpl.gz"
    with pytest.raises(RuntimeError, match="boom"):
        with McplWriter(path) as writer:
            writer.write(_table(50))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_gzip_option_must_match_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gzip"):
        McplWriter(tmp_path / "plain.mcpl", gzip=True)
    with pytest.raises(ConfigError, match="pdgcode"):
        McplWriter(tmp_path / "plain.mcpl", pdgcode=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mcpl"
    junk.write_bytes(b"this is not an MCPL file at all" * 10)
    with pytest.raises(DataError, match="junk.mcpl"):
        McplReader(junk)

    good = tmp_path / "good.mcpl"
    write_table(good, _table(100, extra=False))
    cut = tmp_path / "cut.mcpl"
    cut.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"cut\.mcpl.*truncated"):
        McplReader(cut)

    cut_gz = tmp_path / "cut.mcpl.gz"
    cut_gz.write_bytes(gzip.compress(good.read_bytes())[:-200])
    with pytest.raises(DataError, match=r"cut\.mcpl\.gz"):
        McplReader(cut_gz).read()

    with pytest.raises(DataError, match="no such file"):
        McplReader(tmp_path / "missing.mcpl")


def test_library_error_is_reported_not_silent(tmp_path: Path) -> None:
    """libmcpl exits the process on errors; gansim must say why and clean up first."""
    script = f"""
import numpy as np
from gansim.io.phsp.mcpl_format import McplWriter, load_libmcpl
w = McplWriter({str(tmp_path / "fatal.mcpl")!r}, columns=["KineticEnergy", "PrePosition_X", "PrePosition_Y",
    "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z"], particle="gamma")
w._start(w.columns)
load_libmcpl().mcpl_enable_universal_weight(w._handle, -1.0)  # invalid: the library calls its error handler
print("not reached")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "not reached" not in out.stdout
    assert "fatal error in the MCPL C library" in out.stderr and "fatal.mcpl" in out.stderr
    assert "universal_weight" in out.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed before exit
