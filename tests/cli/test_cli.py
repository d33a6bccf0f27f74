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
    assert code == 2 and "train.batch_size" in output and "cannot change" in output


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


def test_force_removes_only_run_artefacts(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    data = workdir / "data.npy"
    data.write_bytes(gaussian_npy.read_bytes())
    (workdir / "notes.txt").write_text("mine")
    code, output = _run("train", data, config_file, "-o", workdir, "--force")
    assert code == 2 and "did not write" in output and "notes.txt" in output
    assert data.exists() and (workdir / "notes.txt").exists()
    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    assert _run("train", gaussian_npy, config_file, "-o", run, "--force")[0] == 0
    code, output = _run("train", gaussian_npy, config_file, "-o", config_file)
    assert code == 2 and "not a directory" in output


def test_resume_refuses_changed_settings_and_other_data(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    before = (run / "config.json").read_text()
    code, output = _run("train", gaussian_npy, "-o", run, "--resume", "--set", "model.g_width=64")
    assert code == 2 and "model.g_width" in output and "cannot change" in output
    assert (run / "config.json").read_text() == before
    other = tmp_path / "other.npy"
    arr = np.load(gaussian_npy)
    arr["X"] += 1
    np.save(other, arr)
    code, output = _run("train", other, "-o", run, "--resume", "--total-rows", 4096)
    assert code == 2 and "not the data this run was trained on" in output
    code, output = _run("train", gaussian_npy, "-o", run, "--resume", "--total-rows", 4096, "--set", "optim.D.lr=0.0005")
    assert code == 0, output
    assert json.loads((run / "config.json").read_text())["optim"]["D"]["lr"] == 0.0005


def test_generate_default_seed_is_random_and_printed(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    code, out1 = _run("generate", run / "model", "-n", 100, "-o", tmp_path / "a.npy")
    code2, out2 = _run("generate", run / "model", "-n", 100, "-o", tmp_path / "b.npy")
    assert code == code2 == 0 and "--seed" in out1
    assert not np.array_equal(read_table(tmp_path / "a.npy")["X"], read_table(tmp_path / "b.npy")["X"])
    seed = out1.split("--seed ")[1].split()[0]
    assert _run("generate", run / "model", "-n", 100, "-o", tmp_path / "c.npy", "--seed", seed)[0] == 0
    np.testing.assert_array_equal(read_table(tmp_path / "a.npy")["X"], read_table(tmp_path / "c.npy")["X"])


def test_particle_types(tmp_path: Path) -> None:
    """Mixed PDG codes need a choice; the chosen type is kept in generated files (MCPL included)."""
    rng = np.random.default_rng(1)
    n = 3000
    names = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z"]
    arr = np.zeros(n, dtype=[(k, "<f4") for k in names] + [("PDGCode", "<i4")])
    arr["KineticEnergy"] = rng.uniform(0.1, 1, n)
    arr["PrePosition_X"], arr["PrePosition_Y"], arr["PrePosition_Z"] = rng.normal(0, 1, n), rng.normal(0, 1, n), 100.0
    u = rng.normal(size=(n, 3))
    u[:, 2] = -np.abs(u[:, 2]) - 2.0
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    arr["PreDirection_X"], arr["PreDirection_Y"], arr["PreDirection_Z"] = u.T
    arr["PDGCode"] = np.where(rng.uniform(size=n) < 0.3, 11, 22)
    data = tmp_path / "mixed.npz"
    np.savez(data, **{k: arr[k] for k in arr.dtype.names})
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(train={"total_rows": 1024})))
    code, output = _run("train", data, cfg, "-o", tmp_path / "r")
    assert code == 2 and "mixes particle types" in output and "data.particle" in output
    code, output = _run("train", data, cfg, "-o", tmp_path / "r", "--set", "data.particle=e-")
    assert code == 0, output
    code, output = _run("generate", tmp_path / "r" / "model", "-n", 200, "-o", tmp_path / "e.mcpl", "--seed", 1, "--drop-unknown")
    assert code == 0, output
    out = read_table(tmp_path / "e.mcpl")
    assert np.all(out["PDGCode"] == 11) and len(out["PDGCode"]) == 200
    assert _run("generate", tmp_path / "r" / "model", "-n", 200, "-o", tmp_path / "e.npz", "--seed", 1)[0] == 0
    assert read_table(tmp_path / "e.npz")["PDGCode"].dtype == np.int32
    assert np.all(out["KineticEnergy"] >= 0)


def test_generated_energies_stay_physical(tmp_path: Path) -> None:
    """Absorbed events (E = 0) in GATE data: generated energies are clipped into [0, training max]."""
    rng = np.random.default_rng(2)
    n = 4000
    arr = np.zeros(n, dtype=[("KineticEnergy", "<f4"), ("PrePosition_X", "<f4")])
    arr["KineticEnergy"] = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.uniform(0.05, 0.14, n))
    arr["PrePosition_X"] = rng.normal(0, 10, n)
    np.save(tmp_path / "abs.npy", arr)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(train={"total_rows": 1024})))
    assert _run("train", tmp_path / "abs.npy", cfg, "-o", tmp_path / "r")[0] == 0
    assert _run("generate", tmp_path / "r" / "model", "-n", 50000, "-o", tmp_path / "g.npy", "--seed", 3)[0] == 0
    energy = read_table(tmp_path / "g.npy")["KineticEnergy"]
    assert energy.min() >= 0.0 and energy.max() <= arr["KineticEnergy"].max()


def test_cond_file_and_cond_together(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    arr = np.zeros(2000, dtype=[("A", "<f4"), ("C1", "<f4"), ("C2", "<f4")])
    arr["C1"], arr["C2"] = rng.uniform(0, 1, 2000), rng.uniform(0, 1, 2000)
    arr["A"] = arr["C1"] + arr["C2"]
    np.save(tmp_path / "d.npy", arr)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(data={"cond_keys": ["C1", "C2"]}, train={"total_rows": 1024})))
    assert _run("train", tmp_path / "d.npy", cfg, "-o", tmp_path / "r")[0] == 0
    conds = np.zeros(100, dtype=[("C1", "<f4")])
    conds["C1"] = 0.5
    conds["C1"][42] = np.nan
    np.save(tmp_path / "c1.npy", conds)
    code, output = _run("generate", tmp_path / "r" / "model", "-o", tmp_path / "g.npy", "--cond-file", tmp_path / "c1.npy", "--cond", "C2=0.25")
    assert code == 2 and "c1.npy" in output and "row 42" in output
    conds["C1"][42] = 0.5
    np.save(tmp_path / "c1.npy", conds)
    code, output = _run("generate", tmp_path / "r" / "model", "-o", tmp_path / "g.npy", "--cond-file", tmp_path / "c1.npy", "--cond", "C2=0.25")
    assert code == 0, output
    code, output = _run("generate", tmp_path / "r" / "model", "-o", tmp_path / "g2.npy", "--cond-file", tmp_path / "c1.npy")
    assert code == 2 and "C2" in output
    code, output = _run("generate", tmp_path / "r" / "model", "-o", tmp_path / "g3.npy", "--cond-file", tmp_path / "c1.npy", "--cond", "C2=0.25", "--with-conditions")
    assert code == 0, output
    out = read_table(tmp_path / "g3.npy")
    assert set(out) == {"A", "C1", "C2"} and np.all(out["C2"] == 0.25) and np.all(out["C1"] == 0.5)


def test_info_shows_units_and_escapes_markup(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run[mm]"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    code, output = _run("info", run / "model")
    assert code == 0 and "run[mm]" in output.replace("\n", "")


def test_sigterm_leaves_no_partial_output(gaussian_npy: Path, config_file: Path, tmp_path: Path) -> None:
    """A generation killed by a scheduler (SIGTERM) removes its temporary file and leaves no output."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    assert _run("train", gaussian_npy, config_file, "-o", run)[0] == 0
    out = tmp_path / "big.npy"
    proc = subprocess.Popen([sys.executable, "-m", "gansim", "generate", str(run / "model"), "-n", "500000000", "-o", str(out), "--seed", "1", "--device", "cpu"])
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".big.npy") for p in tmp_path.iterdir()):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".big.npy")]


def test_iaea_histories_carry_into_generated_files(tmp_path: Path) -> None:
    """A model trained on an IAEA file records histories per particle; an IAEA output gets N × that ratio."""
    from gansim.data.linac import generate_linac_phsp
    from gansim.io.phsp import open_reader, write_table

    table = generate_linac_phsp(3000, seed=1)
    write_table(tmp_path / "beam.IAEAphsp", table, orig_histories=300_000)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(train={"total_rows": 1024})))
    assert _run("train", tmp_path / "beam.IAEAphsp", cfg, "-o", tmp_path / "r")[0] == 0
    manifest = json.loads((tmp_path / "r" / "model" / "manifest.json").read_text())
    assert manifest["training"]["data"]["histories_per_particle"] == pytest.approx(100.0)
    code, output = _run("generate", tmp_path / "r" / "model", "-n", 500, "-o", tmp_path / "g.IAEAphsp", "--seed", 1)
    assert code == 0, output
    with open_reader(tmp_path / "g.IAEAphsp") as reader:
        assert reader.orig_histories == 50_000 and reader.n_rows == 500


def test_train_accepts_gaga_phsp_options(gaussian_npy: Path, tmp_path: Path) -> None:
    """A gaga-phsp JSON option file (with # comments) trains after translation; unknown keys are one error."""
    options = {
        "#": "gaga-phsp style options",
        "# comment": "ignored",
        "keys": "X Y",
        "model": "v3",
        "z_dim": 3,
        "g_dim": 16,
        "d_dim": 16,
        "g_layers": 1,
        "d_layers": 1,
        "activation": "leaky_relu",
        "loss": "wasserstein",
        "penalty": "GP_SquareHinge",
        "penalty_weight": 1,
        "optimiser": "RMSprop",
        "d_learning_rate": 1e-4,
        "g_learning_rate": 1e-4,
        "d_nb_update": 2,
        "g_nb_update": 1,
        "batch_size": 256,
        "epoch": 1,
        "shuffle": True,
        "epoch_dump": 10,
        "z_rand_type": "randn",
    }
    path = tmp_path / "g1.json"
    path.write_text(json.dumps(options))
    code, output = _run("train", gaussian_npy, path, "-o", tmp_path / "r", "--set", "train.progress=false")
    assert code == 0, output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["loss"]["penalty"] == "square_hinge" and config["optim"]["D"]["name"] == "rmsprop"
    assert config["model"]["g_width"] == 16 and config["loss"]["d_steps"] == 2
    options["g_dimm"] = 3
    options["penalty"] = "GP_Square"
    path.write_text(json.dumps(options))
    code, output = _run("train", gaussian_npy, path, "-o", tmp_path / "r2")
    assert code == 2 and "g_dimm" in output and "g_dim" in output and "GP_SquareHinge" in output


def test_warnings_reach_the_user_as_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from gansim.cli.main import _plain_warnings

    saved = warnings.showwarning
    try:
        _plain_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("data/test: 2 of 2 pairs have different names", stacklevel=1)
    finally:
        warnings.showwarning = saved
    err = capsys.readouterr().err
    assert "warning: data/test: 2 of 2 pairs have different names" in err and "warnings.warn" not in err and ".py:" not in err
