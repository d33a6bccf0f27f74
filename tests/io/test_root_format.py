"""ROOT phase spaces: RootReader/RootWriter against files uproot writes directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.phsp import convert, open_writer, read_table, write_table
from gansim.io.phsp.root_format import RootReader, RootWriter


def random_table(n: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """A table mixing the dtypes GATE writes (float64, int32) and gansim uses (float32, int64)."""
    rng = np.random.default_rng(seed)
    return {
        "KineticEnergy": rng.exponential(1.0, n).astype(np.float32),
        "PrePosition_X": rng.normal(0.0, 10.0, n),
        "PDGCode": rng.choice(np.array([22, 11, -11], dtype=np.int32), n),
        "EventID": rng.integers(0, 10**12, n, dtype=np.int64),
    }


def write_in_chunks(path: Path, table: dict[str, np.ndarray], step: int, **options: object) -> None:
    with open_writer(path, **options) as writer:
        n = len(next(iter(table.values())))
        for start in range(0, n, step):
            writer.write({k: v[start : start + step] for k, v in table.items()})


def assert_tables_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def gate_file(tmp_path: Path) -> Path:
    """A GATE-like file written by uproot itself: 'PhaseSpace' (float64/int32 + a jagged branch) and 'Hits'."""
    import awkward as ak

    path = tmp_path / "gate.root"
    rng = np.random.default_rng(1)
    with uproot.recreate(path) as f:
        f.mktree("PhaseSpace", {"KineticEnergy": np.float64, "PrePosition_X": np.float64, "PDGCode": np.int32, "Steps": "var * float32"})
        f["PhaseSpace"].extend(
            {
                "KineticEnergy": rng.random(50),
                "PrePosition_X": rng.normal(size=50),
                "PDGCode": np.full(50, 22, dtype=np.int32),
                "Steps": ak.Array([[1.0] * (i % 3) for i in range(50)]),
            }
        )
        f.mktree("Hits", {"Edep": np.float32})
        f["Hits"].extend({"Edep": np.ones(5, dtype=np.float32)})
    return path


def test_round_trip_in_chunks(tmp_path: Path) -> None:
    table = random_table(100)
    path = tmp_path / "out.root"
    write_in_chunks(path, table, step=13)
    with RootReader(path) as reader:
        assert reader.n_rows == 100
        assert reader.columns == list(table)
        chunks = list(reader.iter_chunks(7))
    assert [len(c["PDGCode"]) for c in chunks] == [7] * 14 + [2]
    assert_tables_equal({k: np.concatenate([c[k] for c in chunks]) for k in table}, table)


def test_written_file_is_plain_uproot_and_float64_exact(tmp_path: Path) -> None:
    table = random_table(100)
    path = tmp_path / "out.root"
    write_table(path, table, tree="PhaseSpace")
    with uproot.open(path) as f:
        tree = f["PhaseSpace"]
        assert tree.num_entries == 100
        arrays = tree.arrays(library="np")
    for key in table:
        assert arrays[key].dtype == table[key].dtype
        # exact: no float64 -> float32 detour anywhere
        assert np.array_equal(arrays[key], table[key])


def test_reads_gate_like_file_and_picks_tree_by_name(gate_file: Path) -> None:
    with pytest.raises(DataError) as err:
        RootReader(gate_file)
    assert str(gate_file) in str(err.value) and "'PhaseSpace'" in str(err.value) and "'Hits'" in str(err.value)

    with RootReader(gate_file, tree="PhaseSpace") as reader:
        # the jagged branch is skipped; its counter branch is an ordinary int column
        assert "Steps" not in reader.columns
        assert reader.columns[:3] == ["KineticEnergy", "PrePosition_X", "PDGCode"]
        table = reader.read(["KineticEnergy", "PDGCode"])
    assert table["KineticEnergy"].dtype == np.float64 and len(table["KineticEnergy"]) == 50
    assert set(table["PDGCode"]) == {22}

    hits = read_table(gate_file, tree="Hits")
    assert list(hits) == ["Edep"] and hits["Edep"].dtype == np.float32


def test_unknown_tree_names_file_tree_and_choices(gate_file: Path) -> None:
    with pytest.raises(DataError) as err:
        RootReader(gate_file, tree="phsp")
    msg = str(err.value)
    assert str(gate_file) in msg and "'phsp'" in msg and "'PhaseSpace'" in msg and "'Hits'" in msg


def test_single_tree_in_subdirectory_is_found(tmp_path: Path) -> None:
    path = tmp_path / "nested.root"
    with uproot.recreate(path) as f:
        f.mktree("actors/phsp", {"Weight": np.float64})
        f["actors/phsp"].extend({"Weight": np.ones(3)})
    with RootReader(path) as reader:
        assert reader.tree_name == "actors/phsp" and reader.n_rows == 3


def test_file_without_tree(tmp_path: Path) -> None:
    path = tmp_path / "hist.root"
    with uproot.recreate(path) as f:
        f["h"] = np.histogram(np.arange(10.0), bins=3)
    with pytest.raises(DataError, match="no TTree"):
        RootReader(path)


def test_unknown_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "out.root"
    write_table(path, random_table(10))
    with RootReader(path) as reader, pytest.raises(DataError) as err:
        reader.read(["KineticEnergy", "Energy"])
    assert str(path) in str(err.value) and "'Energy'" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"this is not a ROOT file" * 20])
def test_garbage_is_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.root"
    path.write_bytes(content)
    with pytest.raises(DataError, match=str(path)):
        RootReader(path)


def test_truncated_file_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.root"
    write_table(tmp_path / "full.root", random_table(1000))
    data = (tmp_path / "full.root").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=str(path)):
        # the directory sits at the end of the file: opening or reading must fail cleanly
        with RootReader(path) as reader:
            reader.read()


def test_refuses_existing_file_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "out.root"
    write_table(path, random_table(10, seed=1))
    with pytest.raises(OutputExistsError):
        RootWriter(path)
    write_table(path, random_table(20, seed=2), force=True)
    assert_tables_equal(read_table(path), random_table(20, seed=2))
    assert leftovers(tmp_path) == ["out.root"]


def test_exception_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "out.root"
    with pytest.raises(RuntimeError), open_writer(path) as writer:
        writer.write(random_table(10))
        raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_empty_table_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "empty.root"
    empty = {k: v[:0] for k, v in random_table(5).items()}
    write_table(path, empty)
    with RootReader(path) as reader:
        assert reader.n_rows == 0 and reader.columns == list(empty)
        assert list(reader.iter_chunks(7)) == []
    with uproot.open(path) as f:
        # the branch types survive even without a row
        assert {k: b.interpretation.to_dtype for k, b in f["phsp"].items()} == {k: v.dtype for k, v in empty.items()}


def test_cast_across_kinds_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="PDGCode"), RootWriter(tmp_path / "out.root") as writer:
        writer.write({"PDGCode": np.array([22], dtype=np.int32)})
        writer.write({"PDGCode": np.array([22.5])})
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("npy_options", [{"dtype": None}, {}])
def test_convert_between_root_npy_npz(tmp_path: Path, npy_options: dict[str, object]) -> None:
    # float32 data survives the default float32 .npy too; with dtype=None every dtype survives
    table = random_table(100) if npy_options else {k: v.astype(np.float32) for k, v in random_table(100).items()}
    src = tmp_path / "src.root"
    write_table(src, table)
    assert convert(src, tmp_path / "a.npy", chunk_rows=7, dst_options=npy_options) == 100
    assert convert(tmp_path / "a.npy", tmp_path / "b.npz", chunk_rows=7) == 100
    assert convert(tmp_path / "b.npz", tmp_path / "c.root", chunk_rows=7) == 100
    for name in ("a.npy", "b.npz", "c.root"):
        assert_tables_equal(read_table(tmp_path / name), table)


@pytest.mark.parametrize("compression", [None, "lz4:1", "zstd", "zlib:6"])
def test_compression_option(tmp_path: Path, compression: str | None) -> None:
    table = random_table(100)
    write_table(tmp_path / "out.root", table, compression=compression)
    assert_tables_equal(read_table(tmp_path / "out.root"), table)


@pytest.mark.parametrize("options", [{"compression": "gzip"}, {"compression": "lz4:x"}, {"tree": ""}])
def test_bad_writer_options(tmp_path: Path, options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RootWriter(tmp_path / "out.root", **options)
    assert leftovers(tmp_path) == []
