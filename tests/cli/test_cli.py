"""The command line as a user runs it: train, info, generate, convert, data; clear errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.io.phsp import read_table

from conftest import tiny_config

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    cfg = tiny_config(train={"total_rows": 2048})
    cfg["# comment"] = "keys starting with # are comments"
    path.write_text(json.dumps(cfg))
    return path


def test_train_info_generate_convert(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, output = _run("train", gaussian_npy, config_file, "-o", run)
    assert code == 0, output
    assert (run / "model" / "manifest.json").is_file()
    code, output = _run("info", run / "model")
    assert code == 0 and "phsp" in output and "X [?]" in output
    code, output = _run("info", run / "model", "--json")
    assert json.loads(output)["family"] == "phsp"
    out = tmp_path / "gen.root"
    code, output = _run("generate", run / "model", "-n", 5000, "-o", out, "--seed", 2, "--batch-size", 777)
    assert code == 0, output
    table = read_table(out)
    assert set(table) == {"X", "Y"} and len(table["X"]) == 5000
    # same seed, other batch size and format: same particles
    code, _ = _run("generate", run / "model", "-n", 5000, "-o", tmp_path / "gen.npy", "--seed", 2)
    np.testing.assert_allclose(read_table(tmp_path / "gen.npy")["X"], table["X"], rtol=1e-5, atol=1e-5)
    # refusing to overwrite, then --force
    code, output = _run("generate", run / "model", "-n", 10, "-o", out)
    assert code == 2 and "already exists" in output and "--force" in output
    code, _ = _run("generate", run / "model", "-n", 10, "-o", out, "--force")
    assert code == 0 and len(read_table(out)["X"]) == 10
    code, output = _run("convert", tmp_path / "gen.npy", tmp_path / "gen.npz")
    assert code == 0 and "5,000 rows" in output


def test_train_refuses_non_empty_run_dir_and_resumes(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    code, output = _run("train", gaussian_npy, config_file, "-o", run)
    assert code == 2 and "not empty" in output
    code, output = _run("train", gaussian_npy, "-o", run, "--resume", "--total-rows", 4096)
    assert code == 0, output
    assert json.loads((run / "model" / "manifest.json").read_text())["training"]["rows_seen"] >= 4096
    code, output = _run("train", gaussian_npy, "-o", run, "--resume", "--batch-size", 8)
    assert code == 2 and "only --total-rows" in output


def test_unknown_config_keys_are_one_error_with_suggestions(gaussian_npy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"g_widht": 10, "activation": "relu6"}, "trian": {}}))
    code, output = _run("train", gaussian_npy, bad, "-o", tmp_path / "r")
    assert code == 2
    assert "g_widht" in output and "g_width" in output
    assert "trian" in output and "train" in output
    assert "relu6" in output and "leaky_relu" in output
    assert "Traceback" not in output


def test_missing_key_names_file_and_key(gaussian_npy: Path, tmp_path: Path) -> None:
    code, output = _run("train", gaussian_npy, "-o", tmp_path / "r", "--keys", "X,Energy")
    assert code == 2 and "'Energy'" in output and "gauss.npy" in output


def test_nan_in_data_names_file_column_and_row(tmp_path: Path) -> None:
    arr = np.zeros(100, dtype=[("X", "<f4"), ("Y", "<f4")])
    arr["Y"][17] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, arr)
    code, output = _run("train", path, "-o", tmp_path / "r")
    assert code == 2 and "nan.npy" in output and "'Y'" in output and "row 17" in output


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY garbage", b"not a numpy file at all"])
def test_empty_or_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.npy"
    path.write_bytes(content)
    code, output = _run("train", path, "-o", tmp_path / "r")
    assert code == 2 and "broken.npy" in output and "Traceback" not in output


def test_truncated_file(gaussian_npy: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.npy"
    cut.write_bytes(gaussian_npy.read_bytes()[:-100])
    code, output = _run("train", cut, "-o", tmp_path / "r")
    assert code == 2 and "cut.npy" in output


def test_wrong_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "matrix.npy"
    np.save(path, np.zeros((10, 3), dtype=np.float32))
    code, output = _run("train", path, "-o", tmp_path / "r")
    assert code == 2 and "matrix.npy" in output


def test_generate_errors(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    code, output = _run("generate", run / "model", "-n", 10, "-o", tmp_path / "x.npy", "--cond", "E=1")
    assert code == 2 and "not conditional" in output
    code, output = _run("generate", run / "model", "-n", 10, "-o", tmp_path / "x.txt")
    assert code == 2 and "x.txt" in output
    code, output = _run("generate", gaussian_npy, "-n", 10, "-o", tmp_path / "y.npy")
    assert code == 2 and "not a gansim model" in output


def test_builtin_data(tmp_path: Path) -> None:
    code, output = _run("data", "list")
    assert code == 0 and "linac" in output
    out = tmp_path / "linac.root"
    code, output = _run("data", "linac", "-o", out, "-n", 1000)
    assert code == 0, output
    table = read_table(out)
    assert len(table["KineticEnergy"]) == 1000 and float(table["KineticEnergy"].max()) <= 6.0
    code, output = _run("data", "nope", "-o", out)
    assert code == 2 and "linac" in output


def test_conditional_generation_with_cond_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = np.zeros(2000, dtype=[("A", "<f4"), ("C", "<f4")])
    arr["C"] = rng.uniform(0, 1, 2000)
    arr["A"] = arr["C"] + rng.normal(0, 0.1, 2000)
    data = tmp_path / "c.npy"
    np.save(data, arr)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(data={"cond_keys": ["C"]}, train={"total_rows": 1024})))
    assert _run("train", data, cfg, "-o", tmp_path / "r")[0] == 0
    conds = np.zeros(300, dtype=[("C", "<f4"), ("Other", "<f4")])
    conds["C"] = 0.5
    np.save(tmp_path / "cond.npy", conds)
    code, output = _run("generate", tmp_path / "r" / "model", "-o", tmp_path / "g.npy", "--cond-file", tmp_path / "cond.npy")
    assert code == 0, output
    assert len(read_table(tmp_path / "g.npy")["A"]) == 300
    code, output = _run("generate", tmp_path / "r" / "model", "-n", 5, "-o", tmp_path / "g2.npy", "--cond", "C=0.5")
    assert code == 0, output
    code, output = _run("generate", tmp_path / "r" / "model", "-n", 5, "-o", tmp_path / "g3.npy")
    assert code == 2 and "needs conditions ['C']" in output
