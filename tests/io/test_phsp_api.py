"""Cross-format behaviour of gansim.io.phsp: particle types, convert between MCPL/IAEA/ROOT/npy,
orig_histories, option checking in open_reader/open_writer, integer precision in .npy, finite MCPL values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gansim.data.linac import generate_linac_phsp
from gansim.errors import ConfigError, DataError
from gansim.io.phsp import PARTICLE_NAMES, accepted_reader_options, accepted_writer_options, convert, open_reader, open_writer, particle_pdg_code, read_table, write_table
from gansim.io.phsp.iaea_format import IaeaHeader, IaeaReader, IaeaWriter

needs_mcpl = pytest.mark.skipif(importlib.util.find_spec("mcpl") is None, reason="needs the mcpl package")

KINEMATICS = ("KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z")


def kinematics(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Energies, positions (mm) and unit directions only: no PDGCode, no Weight."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    return {
        "KineticEnergy": rng.uniform(0.1, 6.0, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Y": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Z": rng.uniform(-500.0, 500.0, n).astype(np.float32),
        "PreDirection_X": u[:, 0].astype(np.float32),
        "PreDirection_Y": u[:, 1].astype(np.float32),
        "PreDirection_Z": u[:, 2].astype(np.float32),
    }


def full_table(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Kinematics plus Weight and a PDGCode every format can store."""
    rng = np.random.default_rng(seed + 100)
    table = kinematics(n, seed)
    table["Weight"] = rng.uniform(0.5, 2.0, n).astype(np.float32)
    table["PDGCode"] = rng.choice(np.array([22, 11, -11, 2112, 2212], np.int32), n)
    return table


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], keys: tuple[str, ...] | list[str]) -> None:
    for key in keys:
        if np.issubdtype(np.asarray(want[key]).dtype, np.integer):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            # float32 storage of cm (IAEA, MCPL) -> mm: a few ulp
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-5, err_msg=key)


# --------------------------------------------------------------------------- particle names


def test_particle_pdg_code_vocabulary() -> None:
    assert particle_pdg_code("gamma") == particle_pdg_code("photon") == particle_pdg_code(" Gamma ") == 22
    assert particle_pdg_code("e-") == particle_pdg_code("electron") == 11
    assert particle_pdg_code("e+") == particle_pdg_code("POSITRON") == -11
    assert particle_pdg_code("neutron") == 2112 and particle_pdg_code("proton") == 2212
    assert particle_pdg_code(13) == 13 and particle_pdg_code(np.int64(-13)) == -13
    assert particle_pdg_code("2112") == 2112  # as a command line passes it
    with pytest.raises(ConfigError, match="muon") as info:
        particle_pdg_code("muon", source="out.mcpl")
    for name in PARTICLE_NAMES:
        assert repr(name) in str(info.value)
    assert "out.mcpl" in str(info.value)
    for bad in (0, True, 2**31, 1.5, None):
        with pytest.raises(ConfigError):
            particle_pdg_code(bad)  # type: ignore[arg-type]


@needs_mcpl
def test_mcpl_writer_does_not_invent_a_particle_type(tmp_path: Path) -> None:
    from gansim.io.phsp.mcpl_format import McplReader, McplWriter

    table = kinematics(10)
    path = tmp_path / "noparticle.mcpl"
    with pytest.raises(DataError) as info:  # columns known up front: refused before any file exists
        write_table(path, table)
    message = str(info.value)
    assert str(path) in message and "PDGCode" in message and "particle=" in message and "--particle gamma" in message
    with pytest.raises(DataError, match="--particle gamma"):  # columns only known at the first chunk
        with McplWriter(path) as writer:
            writer.write(table)
    assert list(tmp_path.iterdir()) == []

    for name, code in PARTICLE_NAMES.items():
        write_table(tmp_path / f"{name}.mcpl", table, particle=name)
        reader = McplReader(tmp_path / f"{name}.mcpl")
        assert reader.universal_pdgcode == code, name
        np.testing.assert_array_equal(reader.read(["PDGCode"])["PDGCode"], code)
    write_table(tmp_path / "alias.mcpl", table, pdgcode=2112)  # the old option still works
    assert McplReader(tmp_path / "alias.mcpl").universal_pdgcode == 2112
    write_table(tmp_path / "both.mcpl", table, particle="neutron", pdgcode=2112)
    with pytest.raises(ConfigError, match="disagree"):
        McplWriter(tmp_path / "bad.mcpl", particle="gamma", pdgcode=11)
    with pytest.raises(ConfigError, match="'photon'"):
        McplWriter(tmp_path / "bad.mcpl", particle="muon")
    # a PDGCode column wins over the option
    write_table(tmp_path / "col.mcpl", {**table, "PDGCode": np.full(10, 11, np.int32)}, particle="gamma")
    np.testing.assert_array_equal(read_table(tmp_path / "col.mcpl")["PDGCode"], 11)
    assert not (tmp_path / "bad.mcpl").exists()


def test_iaea_writer_takes_the_same_particle_names(tmp_path: Path) -> None:
    table = kinematics(5)
    for name, code in PARTICLE_NAMES.items():
        write_table(tmp_path / f"{name}.IAEAphsp", table, particle=name.upper())
        np.testing.assert_array_equal(read_table(tmp_path / f"{name}.IAEAphsp")["PDGCode"], code)
    write_table(tmp_path / "code.IAEAphsp", table, particle=2212)
    np.testing.assert_array_equal(read_table(tmp_path / "code.IAEAphsp")["PDGCode"], 2212)
    with pytest.raises(ConfigError, match="IAEA format"):
        IaeaWriter(tmp_path / "mu", particle=13)  # a valid PDG code the format cannot hold
    with pytest.raises(DataError, match="--particle gamma"):
        write_table(tmp_path / "none.IAEAphsp", table)


@needs_mcpl
def test_linac_table_knows_it_is_photons(tmp_path: Path) -> None:
    table = generate_linac_phsp(200, seed=1)
    write_table(tmp_path / "linac.mcpl", table)  # no particle= needed any more
    write_table(tmp_path / "linac.IAEAphsp", table)
    for path in (tmp_path / "linac.mcpl", tmp_path / "linac.IAEAphsp"):
        got = read_table(path)
        np.testing.assert_array_equal(got["PDGCode"], 22)
        assert_close(got, table, KINEMATICS)
    write_table(tmp_path / "linac.npy", table)  # default float32 layout: 22 is exact
    np.testing.assert_array_equal(read_table(tmp_path / "linac.npy")["PDGCode"], 22)


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize("suffix", [".npy", ".root"])
def test_convert_without_pdgcode_to_iaea_and_mcpl_with_particle(tmp_path: Path, suffix: str) -> None:
    table = kinematics(100, seed=3)
    src = tmp_path / f"src{suffix}"
    write_table(src, table)
    with pytest.raises(DataError, match="particle"):
        convert(src, tmp_path / "a.IAEAphsp")
    assert convert(src, tmp_path / "a.IAEAphsp", particle="gamma", chunk_rows=33) == 100
    got = read_table(tmp_path / "a.IAEAphsp")
    np.testing.assert_array_equal(got["PDGCode"], 22)
    assert_close(got, table, KINEMATICS)
    if importlib.util.find_spec("mcpl") is not None:
        assert convert(src, tmp_path / "a.mcpl", particle="e-", chunk_rows=33) == 100
        got = read_table(tmp_path / "a.mcpl")
        np.testing.assert_array_equal(got["PDGCode"], 11)
        assert_close(got, table, KINEMATICS)
    # particle= and drop_unknown= mean nothing to npy/npz/ROOT writers: not forwarded, no error
    assert convert(src, tmp_path / "b.npz", particle="gamma", drop_unknown=True) == 100
    assert_close(read_table(tmp_path / "b.npz"), table, KINEMATICS)


@needs_mcpl
def test_convert_mcpl_to_iaea_and_back(tmp_path: Path) -> None:
    table = full_table(500, seed=4)
    table["GlobalTime"] = np.random.default_rng(1).uniform(0.0, 10.0, 500).astype(np.float32)  # ns
    write_table(tmp_path / "src.mcpl", table)

    # The MCPL reader always yields GlobalTime, which IAEA cannot store.
    with pytest.raises(DataError, match="GlobalTime") as info:
        convert(tmp_path / "src.mcpl", tmp_path / "a.IAEAphsp")
    assert "drop_unknown=True" in str(info.value) and "--drop-unknown" in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "src.mcpl"]

    assert convert(tmp_path / "src.mcpl", tmp_path / "a.IAEAphsp", drop_unknown=True, chunk_rows=128) == 500
    iaea = read_table(tmp_path / "a.IAEAphsp")
    assert "GlobalTime" not in iaea
    assert_close(iaea, table, [*KINEMATICS, "Weight", "PDGCode"])

    # The IAEA reader always yields NewHistory, which MCPL cannot store.
    with pytest.raises(DataError, match="NewHistory") as info:
        convert(tmp_path / "a.IAEAphsp", tmp_path / "back.mcpl")
    assert "drop_unknown=True" in str(info.value) and "--drop-unknown" in str(info.value)
    assert convert(tmp_path / "a.IAEAheader", tmp_path / "back.mcpl", drop_unknown=True, chunk_rows=128) == 500
    back = read_table(tmp_path / "back.mcpl")
    assert_close(back, table, [*KINEMATICS, "Weight", "PDGCode"])
    np.testing.assert_array_equal(back["GlobalTime"], 0.0)  # IAEA has no time

    # an explicit dst_options value that contradicts the argument is refused
    with pytest.raises(ConfigError, match="drop_unknown"):
        convert(tmp_path / "src.mcpl", tmp_path / "c.IAEAphsp", drop_unknown=True, dst_options={"drop_unknown": False})


# --------------------------------------------------------------------------- orig_histories


def test_iaea_to_iaea_keeps_orig_histories(tmp_path: Path) -> None:
    write_table(tmp_path / "src.IAEAphsp", full_table(50), orig_histories=1_000_000)
    with IaeaReader(tmp_path / "src.IAEAphsp") as reader:
        assert reader.orig_histories == 1_000_000
    assert convert(tmp_path / "src.IAEAheader", tmp_path / "dst.IAEAphsp", chunk_rows=7) == 50
    assert IaeaHeader.read(tmp_path / "dst.IAEAheader").orig_histories == 1_000_000
    assert IaeaReader(tmp_path / "dst").orig_histories == 1_000_000
    # dst_options wins
    convert(tmp_path / "src.IAEAphsp", tmp_path / "own.IAEAphsp", dst_options={"orig_histories": 7})
    assert IaeaHeader.read(tmp_path / "own.IAEAheader").orig_histories == 7
    # formats without the notion just do not get it
    assert convert(tmp_path / "src.IAEAphsp", tmp_path / "x.npz") == 50


@needs_mcpl
def test_orig_histories_through_mcpl(tmp_path: Path) -> None:
    from gansim.io.phsp.mcpl_format import McplReader

    write_table(tmp_path / "plain.mcpl", full_table(20))
    assert McplReader(tmp_path / "plain.mcpl").orig_histories is None
    write_table(tmp_path / "n.mcpl", full_table(20), orig_histories=123_456_789_012)
    reader = McplReader(tmp_path / "n.mcpl")
    assert reader.orig_histories == 123_456_789_012
    assert reader.stat_sums == {"IAEA_ORIG_HISTORIES": 123_456_789_012.0}

    write_table(tmp_path / "src.IAEAphsp", full_table(20), orig_histories=1_000_000)
    convert(tmp_path / "src.IAEAphsp", tmp_path / "mid.mcpl.gz", drop_unknown=True)
    assert McplReader(tmp_path / "mid.mcpl.gz").orig_histories == 1_000_000
    convert(tmp_path / "mid.mcpl.gz", tmp_path / "end.IAEAphsp", drop_unknown=True)
    assert IaeaHeader.read(tmp_path / "end.IAEAheader").orig_histories == 1_000_000

    with pytest.raises(ConfigError, match="orig_histories"):
        write_table(tmp_path / "bad.mcpl", full_table(5), orig_histories=-1)
    with pytest.raises(ConfigError, match="stat:sum:"):
        write_table(tmp_path / "bad.mcpl", full_table(5), comments=["stat:sum:nevents:  1"])
    assert not (tmp_path / "bad.mcpl").exists()


# --------------------------------------------------------------------------- option checking


def test_options_a_format_does_not_take_are_data_errors(tmp_path: Path) -> None:
    write_table(tmp_path / "a.npy", kinematics(5))
    with pytest.raises(DataError) as info:
        open_reader(tmp_path / "a.npy", tree="phsp")
    assert str(info.value).startswith("option 'tree' applies to ROOT files only; ")
    assert f"{tmp_path / 'a.npy'} is an npy file" in str(info.value)
    with pytest.raises(DataError, match="option 'tree' applies to ROOT files only"):
        read_table(tmp_path / "a.npy", tree="phsp")
    write_table(tmp_path / "a.root", kinematics(5))
    with pytest.raises(DataError, match=r"option 'keys' applies to npy files only; .*a\.root is a ROOT file"):
        open_reader(tmp_path / "a.root", keys=["x"])
    with pytest.raises(DataError, match="option 'bogus' is not a phase-space reading option of any format"):
        open_reader(tmp_path / "a.npy", bogus=1)

    with pytest.raises(DataError, match=r"option 'particle' applies to MCPL and IAEA files only; .*b\.npy is an npy file"):
        open_writer(tmp_path / "b.npy", particle="gamma")
    with pytest.raises(DataError, match="option 'dtype' applies to npy and npz files only"):
        write_table(tmp_path / "b.IAEAphsp", kinematics(5), particle="gamma", dtype="f4")
    with pytest.raises(DataError, match="option 'tree'"):
        convert(tmp_path / "a.npy", tmp_path / "b.npz", dst_options={"tree": "t"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.root"]  # nothing was created
    with open_reader(tmp_path / "a.root", tree="phsp") as reader:  # the right format still takes them
        assert reader.n_rows == 5


def test_accepted_options_per_format(tmp_path: Path) -> None:
    assert accepted_reader_options("a.root") == {"tree"}
    assert accepted_reader_options("a.npy") == {"keys"}
    assert accepted_reader_options("a.IAEAphsp") == frozenset()
    assert {"particle", "drop_unknown", "orig_histories"} <= accepted_writer_options("a.mcpl")
    assert {"particle", "drop_unknown", "orig_histories"} <= accepted_writer_options("a.IAEAphsp")
    assert accepted_writer_options("a.npy") == {"dtype"}
    assert "columns" not in accepted_writer_options("a.root") and "tree" in accepted_writer_options("a.root")


# --------------------------------------------------------------------------- .npy precision


def test_npy_float32_refuses_integers_it_would_change(tmp_path: Path) -> None:
    path = tmp_path / "ids.npy"
    ok = {"EventID": np.array([0, 1, 2**24, 2**30], np.int64), "X": np.array([0.1, 1e-9, 1e30, 3.0])}
    write_table(path, ok)  # exact in float32 (powers of two), and floats are simply rounded
    got = read_table(path)
    np.testing.assert_array_equal(got["EventID"], ok["EventID"].astype(np.float32))
    np.testing.assert_array_equal(got["X"], ok["X"].astype(np.float32))

    bad = tmp_path / "bad.npy"
    with pytest.raises(DataError) as info, open_writer(bad) as writer:
        writer.write({"EventID": np.arange(10, dtype=np.int64)})
        writer.write({"EventID": np.array([5, 2**24 + 1, 7], np.int64)})
    message = str(info.value)
    assert str(bad) in message and "'EventID'" in message and "16777217" in message and "row 11" in message
    assert ".npz" in message and "dtype=None" in message
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ids.npy"]

    big = {"EventID": np.array([3, 2**24 + 1], np.int64)}
    write_table(tmp_path / "kept.npy", big, dtype=None)
    np.testing.assert_array_equal(read_table(tmp_path / "kept.npy")["EventID"], big["EventID"])
    write_table(tmp_path / "f8.npy", big, dtype="f8")
    with pytest.raises(DataError, match="'EventID'"):
        write_table(tmp_path / "i2.npz", {"EventID": np.array([40_000], np.int64)}, dtype="i2")


# --------------------------------------------------------------------------- finite MCPL values


@needs_mcpl
@pytest.mark.parametrize(
    ("column", "value"),
    [("PrePosition_X", np.nan), ("PrePosition_Z", -np.inf), ("Weight", np.nan), ("Weight", np.inf), ("GlobalTime", np.nan), ("PrePosition_Y", 1e300)],
)
def test_mcpl_refuses_non_finite_values(tmp_path: Path, column: str, value: float) -> None:
    table = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in full_table(20).items()}
    table["GlobalTime"] = np.zeros(20)
    table[column][13] = value
    with pytest.raises(DataError) as info:
        write_table(tmp_path / "x.mcpl", table)
    assert repr(column) in str(info.value) and "row 13" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    if value == 1e300:  # finite, only too large for float32
        write_table(tmp_path / "x.mcpl", table, double_precision=True)
        assert read_table(tmp_path / "x.mcpl")[column][13] == 1e300
