"""NumPy phase spaces: .npy structured arrays (gaga-phsp layout) and .npz archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.phsp import open_reader, open_writer, read_table, write_table
from gansim.io.phsp.numpy_format import NpyReader, NpyWriter, NpzReader, NpzWriter, _npy_header, _pad_header

GAGA_KEYS = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PreDirection_X", "Weight"]


def random_table(n: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """A table mixing float32, float64, int32 and int64 columns."""
    rng = np.random.default_rng(seed)
    return {
        "KineticEnergy": rng.exponential(1.0, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 10.0, n),
        "PDGCode": rng.choice(np.array([22, 11, -11], dtype=np.int32), n),
        "EventID": rng.integers(0, 10**12, n, dtype=np.int64),
    }


def gaga_array(n: int = 100, seed: int = 0) -> np.ndarray:
    """What gaga-phsp saves: a 1-D structured array with one '<f4' field per column."""
    rng = np.random.default_rng(seed)
    array = np.zeros(n, dtype=[(k, "<f4") for k in GAGA_KEYS])
    for k in GAGA_KEYS:
        array[k] = rng.normal(size=n)
    return array


def write_in_chunks(path: Path, table: dict[str, np.ndarray], step: int, **options: object) -> None:
    with open_writer(path, **options) as writer:
        n = len(next(iter(table.values())))
        for start in range(0, n, step):
            writer.write({k: v[start : start + step] for k, v in table.items()})


def read_in_chunks(path: Path, chunk_rows: int, **options: object) -> tuple[dict[str, np.ndarray], list[int]]:
    with open_reader(path, **options) as reader:
        chunks = list(reader.iter_chunks(chunk_rows))
        columns = reader.columns
    table = {k: np.concatenate([c[k] for c in chunks]) for k in columns}
    return table, [len(next(iter(c.values()))) for c in chunks]


def assert_tables_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


WRITE_OPTIONS = {
    "npy": {"dtype": None},  # keep every dtype so the round trip is exact
    "npz": {},
    "npz-compressed": {"compress": True},
}


def target(tmp_path: Path, kind: str) -> Path:
    return tmp_path / f"out.{kind.split('-')[0]}"


# --------------------------------------------------------------------------- both formats


@pytest.mark.parametrize("kind", list(WRITE_OPTIONS))
def test_round_trip_in_chunks(tmp_path: Path, kind: str) -> None:
    table = random_table(100)
    path = target(tmp_path, kind)
    write_in_chunks(path, table, step=13, **WRITE_OPTIONS[kind])
    got, sizes = read_in_chunks(path, 7)
    assert sizes == [7] * 14 + [2]
    assert_tables_equal(got, table)
    assert leftovers(tmp_path) == [path.name]  # no temporary column files left


@pytest.mark.parametrize("kind", list(WRITE_OPTIONS))
def test_empty_table_round_trip(tmp_path: Path, kind: str) -> None:
    empty = {k: v[:0] for k, v in random_table(5).items()}
    path = target(tmp_path, kind)
    write_table(path, empty, **WRITE_OPTIONS[kind])
    with open_reader(path) as reader:
        assert reader.n_rows == 0 and reader.columns == list(empty)
        assert list(reader.iter_chunks(7)) == []
    loaded = np.load(path)
    dtypes = {k: loaded.dtype[k] for k in empty} if kind == "npy" else {k: loaded[k].dtype for k in empty}
    assert dtypes == {k: v.dtype for k, v in empty.items()}


@pytest.mark.parametrize("kind", list(WRITE_OPTIONS))
def test_refuses_existing_file_unless_forced(tmp_path: Path, kind: str) -> None:
    path = target(tmp_path, kind)
    write_table(path, random_table(10, seed=1), **WRITE_OPTIONS[kind])
    with pytest.raises(OutputExistsError):
        open_writer(path, **WRITE_OPTIONS[kind])
    write_table(path, random_table(20, seed=2), force=True, **WRITE_OPTIONS[kind])
    assert_tables_equal(read_table(path), random_table(20, seed=2))
    assert leftovers(tmp_path) == [path.name]


@pytest.mark.parametrize("kind", list(WRITE_OPTIONS))
def test_exception_leaves_nothing_behind(tmp_path: Path, kind: str) -> None:
    path = target(tmp_path, kind)
    with pytest.raises(RuntimeError), open_writer(path, **WRITE_OPTIONS[kind]) as writer:
        writer.write(random_table(10))
        raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", list(WRITE_OPTIONS))
def test_unknown_column_names_file_and_column(tmp_path: Path, kind: str) -> None:
    path = target(tmp_path, kind)
    write_table(path, random_table(10), **WRITE_OPTIONS[kind])
    with open_reader(path) as reader, pytest.raises(DataError) as err:
        reader.read(["KineticEnergy", "Energy"])
    assert str(path) in str(err.value) and "'Energy'" in str(err.value)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.parametrize("content", [b"", b"garbage bytes, not numpy" * 10])
def test_garbage_is_data_error(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError, match=str(path)):
        open_reader(path)


def test_float_into_int_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="PDGCode"), NpzWriter(tmp_path / "out.npz") as writer:
        writer.write({"PDGCode": np.array([22], dtype=np.int32)})
        writer.write({"PDGCode": np.array([22.5])})
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- .npy


def test_npy_writer_matches_np_save_byte_for_byte(tmp_path: Path) -> None:
    table = random_table(100)
    table["EventID"] %= 2**24  # float32 holds these integers exactly (larger ones are refused, see below)
    write_in_chunks(tmp_path / "ours.npy", table, step=13)  # default dtype float32, as gaga-phsp
    reference = np.zeros(100, dtype=[(k, "<f4") for k in table])
    for k in table:
        reference[k] = table[k]
    np.save(tmp_path / "ref.npy", reference)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_npy_keep_dtypes_matches_np_save(tmp_path: Path) -> None:
    table = random_table(100)
    write_table(tmp_path / "ours.npy", table, dtype=None)
    reference = np.zeros(100, dtype=[(k, v.dtype) for k, v in table.items()])
    for k in table:
        reference[k] = table[k]
    np.save(tmp_path / "ref.npy", reference)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_reads_gaga_npy(tmp_path: Path) -> None:
    array = gaga_array(100)
    np.save(tmp_path / "gaga.npy", array)
    got, sizes = read_in_chunks(tmp_path / "gaga.npy", 30)
    assert sizes == [30, 30, 30, 10]
    assert_tables_equal(got, {k: array[k] for k in GAGA_KEYS})


def test_npy_big_endian_and_mixed_fields(tmp_path: Path) -> None:
    array = np.zeros(5, dtype=[("Weight", ">f8"), ("PDGCode", "<i2"), ("ParticleName", "U8")])
    array["Weight"] = np.arange(5) / 3
    array["PDGCode"] = 22
    np.save(tmp_path / "mixed.npy", array)
    with NpyReader(tmp_path / "mixed.npy") as reader:
        assert reader.columns == ["Weight", "PDGCode"]  # the string field is skipped
        table = reader.read()
    assert table["Weight"].dtype == np.float64 and table["Weight"].dtype.isnative
    np.testing.assert_array_equal(table["Weight"], np.arange(5) / 3)
    assert table["PDGCode"].dtype == np.int16


def test_plain_2d_npy_needs_keys(tmp_path: Path) -> None:
    data = np.arange(30, dtype=np.float32).reshape(10, 3)
    path = tmp_path / "plain.npy"
    np.save(path, data)
    with pytest.raises(DataError, match="no column names"):
        NpyReader(path)
    with pytest.raises(DataError, match="3 columns"):
        NpyReader(path, keys=["a", "b"])
    got, sizes = read_in_chunks(path, 4, keys=["E", "X", "Y"])
    assert sizes == [4, 4, 2]
    np.testing.assert_array_equal(got["X"], data[:, 1])


def test_structured_npy_refuses_keys(tmp_path: Path) -> None:
    np.save(tmp_path / "gaga.npy", gaga_array(3))
    with pytest.raises(DataError, match="columns="):
        NpyReader(tmp_path / "gaga.npy", keys=["a"])


def test_object_npy_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=str(path)):
        NpyReader(path)


def test_truncated_npy_is_data_error(tmp_path: Path) -> None:
    np.save(tmp_path / "full.npy", gaga_array(100))
    path = tmp_path / "cut.npy"
    path.write_bytes((tmp_path / "full.npy").read_bytes()[:-7])
    with pytest.raises(DataError, match=str(path)):
        NpyReader(path)
    path.write_bytes((tmp_path / "full.npy").read_bytes()[:40])  # header cut too
    with pytest.raises(DataError, match=str(path)):
        NpyReader(path)


def test_empty_npy_from_np_save(tmp_path: Path) -> None:
    np.save(tmp_path / "empty.npy", gaga_array(0))
    with NpyReader(tmp_path / "empty.npy") as reader:
        assert reader.n_rows == 0 and reader.columns == GAGA_KEYS
        assert list(reader.iter_chunks(7)) == []


def test_npy_writer_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        NpyWriter(tmp_path / "a.npy", dtype="U4")
    write_table(tmp_path / "f8.npy", random_table(10), dtype="f8")
    assert {np.load(tmp_path / "f8.npy").dtype[k] for k in random_table(1)} == {np.dtype("<f8")}
    assert leftovers(tmp_path) == ["f8.npy"]


def test_pad_header_keeps_file_loadable(tmp_path: Path) -> None:
    # Fallback for NumPy releases whose header for the real count is shorter than the reserved one.
    dtype = np.dtype([("a", "<f4"), ("b", "<f4")])
    header = _npy_header(dtype, 3, tmp_path / "x.npy")
    padded = _pad_header(header, len(header) + 64)
    assert len(padded) == len(header) + 64
    (tmp_path / "x.npy").write_bytes(padded + np.zeros(3, dtype).tobytes())
    assert np.load(tmp_path / "x.npy").shape == (3,)


# --------------------------------------------------------------------------- .npz


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_reads_np_savez(tmp_path: Path, save: object) -> None:
    table = random_table(100)
    path = tmp_path / "ref.npz"
    save(path, **table, note=np.array("not a column"), matrix=np.eye(3))  # type: ignore[operator]
    got, sizes = read_in_chunks(path, 7)
    assert sizes == [7] * 14 + [2]
    assert_tables_equal(got, table)  # the 0-d and 2-D members are skipped


@pytest.mark.parametrize("compress", [False, True])
def test_npz_written_loads_with_np_load(tmp_path: Path, compress: bool) -> None:
    table = random_table(50)
    write_in_chunks(tmp_path / "out.npz", table, step=9, compress=compress)
    with np.load(tmp_path / "out.npz") as loaded:
        assert_tables_equal({k: loaded[k] for k in loaded.files}, table)
    with zipfile.ZipFile(tmp_path / "out.npz") as archive:
        expected = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        assert {i.compress_type for i in archive.infolist()} == {expected}


def test_npz_columns_of_different_length(tmp_path: Path) -> None:
    path = tmp_path / "ragged.npz"
    np.savez(path, a=np.zeros(3), b=np.zeros(4))
    with pytest.raises(DataError, match="differ in length"):
        NpzReader(path)


def test_truncated_npz_is_data_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "full.npz", **random_table(100))
    path = tmp_path / "cut.npz"
    path.write_bytes((tmp_path / "full.npz").read_bytes()[:-30])
    with pytest.raises(DataError, match=str(path)):
        with NpzReader(path) as reader:
            reader.read()


@pytest.mark.parametrize("rows", [100, 20_000])
def test_corrupt_npz_member_is_data_error(tmp_path: Path, rows: int) -> None:
    # small member: the CRC fails already while reading the header; big one: at the last chunk
    path = tmp_path / "flip.npz"
    np.savez(path, a=np.arange(float(rows)))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte inside the data of the stored member: CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=str(path)):
        with NpzReader(path) as reader:
            reader.read()
