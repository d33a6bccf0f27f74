"""IAEA reader/writer: hand-built files per the format, round trips, bad input."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.phsp import detect_format, open_reader, open_writer, read_table, write_table
from gansim.io.phsp.iaea_format import IaeaHeader, IaeaReader, IaeaWriter

# One record per row: (type byte, E [MeV] signed, X, Y, U, V [cm], weight, extra float, extra long).
# Z is constant (RECORD_CONSTANT); W comes from U, V and the sign of the type byte.
ROWS = [
    (1, -1.25, 1.0, -2.0, 0.6, 0.0, 1.0, 0.5, 0),  # photon, new history, W = +0.8
    (-2, 0.75, -3.5, 4.0, 0.0, 0.6, 0.5, -1.5, 7),  # electron, same history, W = -0.8
    (3, -2.5, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 1),  # positron, new history, W = +1
    (-4, 3.0, 10.0, 20.0, 0.28, 0.96, 1.0, 2.0, 3),  # neutron, W = -0.0 (u^2+v^2 = 1)
    (5, -0.0, 1.5, 1.5, -0.6, -0.8, 0.25, 3.0, 2),  # proton, E = 0 with new-history sign bit
]
Z_CM = 95.5


def _header(n: int, *, record_length: int = 33, byte_order: int = 1234, drop: str | None = None) -> str:
    sections = {
        "IAEA_INDEX": "1000  // test",
        "TITLE": "hand-built test phase space",
        "FILE_TYPE": "0",
        "CHECKSUM": str(record_length * n),
        "RECORD_CONTENTS": "\n".join(
            [
                "    1     // X is stored ?",
                "    1     // Y is stored ?",
                "    0     // Z is stored ?",
                "    1     // U is stored ?",
                "    1     // V is stored ?",
                "    1     // W is stored ?",
                "    1     // Weight is stored ?",
                "    1     // Extra floats stored ?",
                "    1     // Extra longs stored ?",
                "    0     // Generic float variable stored in the extrafloat array [ 0]",
                "    1     // Incremental history number stored in the extralong array [ 0]",
            ]
        ),
        "RECORD_CONSTANT": f"   {Z_CM:.4f}     // Constant Z",
        "RECORD_LENGTH": str(record_length),
        "BYTE_ORDER": str(byte_order),
        "ORIG_HISTORIES": "3",
        "PARTICLES": str(n),
        "PHOTONS": "1",
        "ELECTRONS": "1",
        "POSITRONS": "1",
        "NEUTRONS": "1",
        "PROTONS": "1",
        "TRANSPORT_PARAMETERS": "none",
        "MACHINE_TYPE": "none",
        "MONTE_CARLO_CODE_VERSION": "struct.pack",
        "GLOBAL_PHOTON_ENERGY_CUTOFF": "0.01",
        "GLOBAL_PARTICLE_ENERGY_CUTOFF": "0.1",
        "COORDINATE_SYSTEM_DESCRIPTION": "test frame",
    }
    if drop:
        del sections[drop]
    return "".join(f"${key}:\n{value}\n\n" for key, value in sections.items())


def _write_hand_built(tmp_path: Path, *, byte_order: int = 1234, long_size: int = 4, name: str = "hand") -> Path:
    """Pack the records with struct exactly as the IAEA library lays them out."""
    bo = "<" if byte_order == 1234 else ">"
    fmt = bo + "b" + "f" * 7 + ("i" if long_size == 4 else "q")  # type, E, X, Y, U, V, Weight, extra float, extra long
    data = b"".join(struct.pack(fmt, *row) for row in ROWS)
    record_length = struct.calcsize(fmt)
    assert record_length == 1 + 4 * 7 + long_size
    (tmp_path / f"{name}.IAEAphsp").write_bytes(data)
    (tmp_path / f"{name}.IAEAheader").write_text(_header(len(ROWS), record_length=record_length, byte_order=byte_order))
    return tmp_path / name


def _check_hand_built(got: dict[str, np.ndarray]) -> None:
    rows = np.array(ROWS, dtype=np.float64)
    np.testing.assert_array_equal(got["PDGCode"], [22, 11, -11, 2112, 2212])
    np.testing.assert_allclose(got["KineticEnergy"], np.abs(rows[:, 1]))
    np.testing.assert_array_equal(got["NewHistory"], [1, 0, 1, 0, 1])  # includes the -0.0 energy
    np.testing.assert_allclose(got["PrePosition_X"], rows[:, 2] * 10.0, rtol=1e-6)  # cm -> mm
    np.testing.assert_allclose(got["PrePosition_Y"], rows[:, 3] * 10.0, rtol=1e-6)
    np.testing.assert_allclose(got["PrePosition_Z"], Z_CM * 10.0)  # constant
    np.testing.assert_allclose(got["PreDirection_X"], rows[:, 4], atol=1e-6)
    np.testing.assert_allclose(got["PreDirection_Y"], rows[:, 5], atol=1e-6)
    np.testing.assert_allclose(got["PreDirection_Z"], [0.8, -0.8, 1.0, 0.0, 0.0], atol=1e-3)
    assert got["PreDirection_Z"][1] < 0  # negative type byte -> negative W
    np.testing.assert_allclose(got["Weight"], rows[:, 6])
    np.testing.assert_allclose(got["IAEA_ExtraFloat_0"], rows[:, 7])
    np.testing.assert_array_equal(got["IAEA_IncrementalHistoryNumber"], rows[:, 8].astype(int))
    assert got["IAEA_IncrementalHistoryNumber"].dtype == np.int32
    assert got["KineticEnergy"].dtype == np.float32


@pytest.mark.parametrize("which", ["base", "header", "phsp"])
def test_hand_built_file_read_from_any_name(tmp_path: Path, which: str) -> None:
    base = _write_hand_built(tmp_path)
    path = {"base": base, "header": base.with_suffix(".IAEAheader"), "phsp": base.with_suffix(".IAEAphsp")}[which]
    with IaeaReader(path) as reader:
        assert reader.n_rows == 5
        assert reader.header.stored["Z"] is False and reader.header.record_length == 33
        assert reader.columns == [
            "KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y",
            "PreDirection_Z", "Weight", "PDGCode", "NewHistory", "IAEA_ExtraFloat_0", "IAEA_IncrementalHistoryNumber",
        ]  # fmt: skip
        chunks = list(reader.iter_chunks(chunk_rows=2))
    assert [len(c["Weight"]) for c in chunks] == [2, 2, 1]
    _check_hand_built({k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})


def test_hand_built_big_endian_and_64_bit_longs(tmp_path: Path) -> None:
    _check_hand_built(read_table(_write_hand_built(tmp_path, byte_order=4321, name="big"), format="iaea"))
    _check_hand_built(read_table(_write_hand_built(tmp_path, long_size=8, name="lp64"), format="iaea"))


def test_registry_detects_both_suffixes(tmp_path: Path) -> None:
    base = _write_hand_built(tmp_path)
    assert detect_format(base.with_suffix(".IAEAheader")) == "iaea"
    got = read_table(base.with_suffix(".IAEAphsp"), columns=["PDGCode"])
    assert list(got) == ["PDGCode"]


def test_direction_with_u2_v2_above_one_is_rescaled(tmp_path: Path) -> None:
    rec = struct.pack("<b7fi", 1, 1.0, 0.0, 0.0, 0.8, 0.8, 1.0, 0.0, 0)
    (tmp_path / "over.IAEAphsp").write_bytes(rec)
    (tmp_path / "over.IAEAheader").write_text(_header(1))
    got = read_table(tmp_path / "over.IAEAheader")
    assert got["PreDirection_Z"][0] == 0.0
    np.testing.assert_allclose([got["PreDirection_X"][0], got["PreDirection_Y"][0]], [math.sqrt(0.5)] * 2, rtol=1e-6)


def _table(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    return {
        "KineticEnergy": rng.uniform(0.0, 6.0, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Y": rng.normal(0.0, 50.0, n).astype(np.float32),
        "PrePosition_Z": np.full(n, 1000.0, np.float32),
        "PreDirection_X": u[:, 0].astype(np.float32),
        "PreDirection_Y": u[:, 1].astype(np.float32),
        "PreDirection_Z": u[:, 2].astype(np.float32),
        "Weight": rng.uniform(0.5, 2.0, n).astype(np.float32),
        "PDGCode": rng.choice(np.array([22, 11, -11, 2112, 2212], np.int32), n),
        "NewHistory": rng.integers(0, 2, n).astype(np.int32),
        "IAEA_IncrementalHistoryNumber": rng.integers(0, 9, n).astype(np.int32),
        "IAEA_LATCH": rng.integers(-(2**31), 2**31 - 1, n).astype(np.int32),
        "IAEA_ZLAST": rng.normal(0.0, 10.0, n).astype(np.float32),
        "IAEA_ExtraFloat_1": rng.normal(size=n).astype(np.float32),
    }


def test_round_trip_in_chunks_with_constant_z(tmp_path: Path) -> None:
    table = _table(1000)
    with IaeaWriter(tmp_path / "rt", constant_z=1000.0, title="round trip", header_fields={"MACHINE_TYPE": "test linac"}) as writer:
        for lo in range(0, 1000, 400):
            writer.write({k: v[lo : lo + 400] for k, v in table.items()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rt.IAEAheader", "rt.IAEAphsp"]

    header = IaeaHeader.read(tmp_path / "rt.IAEAheader")
    assert header.stored["Z"] is False and header.constants["Z"] == pytest.approx(100.0)
    assert header.record_length == 1 + 4 * 8 + 4 * 2  # type, E X Y U V Weight + 2 extra floats, 2 longs
    assert header.checksum == (tmp_path / "rt.IAEAphsp").stat().st_size == 1000 * header.record_length
    assert header.n_particles == 1000
    assert header.orig_histories == int(table["NewHistory"].sum())
    assert header.sections["TITLE"] == "round trip" and header.sections["MACHINE_TYPE"] == "test linac"
    assert header.sections["BYTE_ORDER"] == "1234"
    photons = table["PDGCode"] == 22
    assert int(header.sections["PHOTONS"]) == int(photons.sum())
    # <E> in the statistics block is weight-averaged, as in the IAEA library.
    line = next(x for x in header.sections["STATISTICAL_INFORMATION_PARTICLES"].splitlines() if x.endswith("PHOTONS"))
    total_w, _wmin, _wmax, mean_e, emin, emax = map(float, line.split()[:6])
    w, e = table["Weight"][photons].astype(float), table["KineticEnergy"][photons].astype(float)
    assert total_w == pytest.approx(w.sum(), rel=1e-5)
    assert mean_e == pytest.approx((w * e).sum() / w.sum(), rel=1e-4)
    assert (emin, emax) == (pytest.approx(e.min(), rel=1e-4), pytest.approx(e.max(), rel=1e-4))

    with open_reader(tmp_path / "rt.IAEAphsp") as reader:
        got = reader.read()
    assert set(got) == set(table)
    for key, want in table.items():
        if key == "PreDirection_Z":  # recomputed from float32 U, V: precision drops where |W| is small
            np.testing.assert_allclose(got[key], want, atol=2e-3)
            assert np.array_equal(np.signbit(got[key][want != 0]), np.signbit(want[want != 0]))
        elif np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], want, rtol=1e-6, atol=1e-6, err_msg=key)


def test_defaults_particle_option_and_new_histories(tmp_path: Path) -> None:
    table = {k: v for k, v in _table(20).items() if not k.startswith(("IAEA_", "PDG", "Weight", "NewHistory"))}
    table["KineticEnergy"][0] = 0.0
    with pytest.raises(DataError, match="particle="):
        write_table(tmp_path / "g.IAEAphsp", table)
    write_table(tmp_path / "g.IAEAphsp", table, particle="gamma", orig_histories=1000)
    header = IaeaHeader.read(tmp_path / "g.IAEAheader")
    assert header.stored["Weight"] is False and header.constants["Weight"] == 1.0
    assert header.orig_histories == 1000
    got = read_table(tmp_path / "g", format="iaea")
    np.testing.assert_array_equal(got["PDGCode"], 22)
    np.testing.assert_array_equal(got["Weight"], 1.0)
    np.testing.assert_array_equal(got["NewHistory"], 1)  # independent particles: one history each
    assert got["KineticEnergy"][0] == 0.0


def test_unsupported_pdg_and_unknown_columns(tmp_path: Path) -> None:
    table = _table(10)
    table["PDGCode"][3] = 13  # muon
    with pytest.raises(DataError, match=r"\[13\]"):
        write_table(tmp_path / "mu", table, format="iaea")
    table = _table(10)
    table["GlobalTime"] = np.zeros(10, np.float32)
    with pytest.raises(DataError, match="GlobalTime") as info:
        write_table(tmp_path / "t", table, format="iaea")
    assert "drop_unknown" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    write_table(tmp_path / "t.IAEAphsp", table, drop_unknown=True)
    assert "GlobalTime" not in read_table(tmp_path / "t.IAEAheader")
    with pytest.raises(ConfigError):
        IaeaWriter(tmp_path / "c", particle="muon")
    with pytest.raises(ConfigError, match="PARTICLES"):
        IaeaWriter(tmp_path / "c", header_fields={"PARTICLES": "5"})


def test_constant_z_must_match_the_column(tmp_path: Path) -> None:
    table = _table(10)
    table["PrePosition_Z"][7] = 999.0
    with pytest.raises(DataError, match="constant_z"):
        write_table(tmp_path / "z", table, format="iaea", constant_z=1000.0)
    assert list(tmp_path.iterdir()) == []


def test_truncated_data_file(tmp_path: Path) -> None:
    base = _write_hand_built(tmp_path)
    phsp = base.with_suffix(".IAEAphsp")
    phsp.write_bytes(phsp.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"hand\.IAEAphsp.*165 bytes.*155 bytes"):
        IaeaReader(base)


def test_header_missing_record_length(tmp_path: Path) -> None:
    base = _write_hand_built(tmp_path)
    base.with_suffix(".IAEAheader").write_text(_header(5, drop="RECORD_LENGTH"))
    with pytest.raises(DataError, match=r"hand\.IAEAheader.*\$RECORD_LENGTH"):
        IaeaReader(base)


def test_bad_particle_type_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.IAEAphsp").write_bytes(struct.pack("<b7fi", 9, 1.0, 0, 0, 0, 0, 1, 0, 0))
    (tmp_path / "bad.IAEAheader").write_text(_header(1))
    with pytest.raises(DataError, match="particle type 9"):
        read_table(tmp_path / "bad", format="iaea")
    (tmp_path / "lonely.IAEAheader").write_text(_header(1))
    with pytest.raises(DataError, match="lonely.IAEAphsp"):
        IaeaReader(tmp_path / "lonely.IAEAheader")
    with pytest.raises(DataError, match="nothing.IAEAheader"):
        IaeaReader(tmp_path / "nothing")


def test_existing_files_need_force(tmp_path: Path) -> None:
    (tmp_path / "old.IAEAheader").write_text("precious")
    with pytest.raises(OutputExistsError):
        IaeaWriter(tmp_path / "old.IAEAphsp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.IAEAheader"]
    write_table(tmp_path / "old", _table(4), force=True, format="iaea")
    assert IaeaReader(tmp_path / "old").n_rows == 4


def test_exception_inside_with_leaves_no_files(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with open_writer(tmp_path / "aborted.IAEAphsp") as writer:
            writer.write(_table(30))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_base_name_is_detected_as_iaea(tmp_path):  # type: ignore[no-untyped-def]
    import numpy as np

    from gansim.io.phsp import detect_format, read_table, write_table

    table = {
        "KineticEnergy": np.array([1.0, 2.0], dtype=np.float32),
        "PrePosition_X": np.zeros(2, np.float32), "PrePosition_Y": np.zeros(2, np.float32), "PrePosition_Z": np.zeros(2, np.float32),
        "PreDirection_X": np.zeros(2, np.float32), "PreDirection_Y": np.zeros(2, np.float32), "PreDirection_Z": np.ones(2, np.float32),
        "PDGCode": np.array([22, 11], dtype=np.int32),
    }
    write_table(tmp_path / "beam.IAEAphsp", table)
    assert detect_format(tmp_path / "beam") == "iaea"
    np.testing.assert_allclose(read_table(tmp_path / "beam")["KineticEnergy"], [1.0, 2.0])
