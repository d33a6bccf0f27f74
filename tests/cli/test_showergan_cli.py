"""The modern shower GAN from the command line: a CaloChallenge file trains it by default, a CaloGAN file
with --family showergan (or a config naming it); generate with --cond-file; resume; a time limit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.data.calo import make_calo_showers
from gansim.io.calo import read_calochallenge, read_calogan, write_calochallenge, write_calogan
from gansim.models import load_model
from gansim.models.model_file import read_manifest

runner = CliRunner()
TINY = ("--set", "model.latent_dim=8", "--set", "model.g_width=32", "--set", "model.g_depth=1", "--set", "model.d_width=32", "--set", "model.d_depth=1",
        "--set", "train.progress=false", "--set", "train.tick_rows=16", "--set", "train.checkpoint_rows=16", "--set", "train.evaluate=false")


def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_a_calochallenge_file_trains_the_modern_model_and_generates_its_layout(tmp_path: Path) -> None:
    write_calochallenge(tmp_path / "ds2.h5", make_calo_showers(50, "eplus", seed=2, layout="calochallenge-ds2"))
    run = tmp_path / "run"
    code, text = _run("train", tmp_path / "ds2.h5", "-o", run, "--total-rows", 32, "--batch-size", 8, "--seed", 1, *TINY)
    assert code == 0, text
    manifest = read_manifest(run / "model")
    assert manifest["family"] == "showergan" and manifest["layout"] == "calochallenge-ds2"
    assert json.loads((run / "config.json").read_text())["family"] == "showergan"

    energies = tmp_path / "energies.txt"
    energies.write_text("5\n50\n500\n")
    with pytest.warns(UserWarning, match="outside the model's training range"):
        code, text = _run("generate", run / "model", "-o", tmp_path / "gen.h5", "--cond-file", energies, "--seed", 3)
    assert code == 0, text
    gen = read_calochallenge(tmp_path / "gen.h5")
    np.testing.assert_allclose(gen.energy, [5_000.0, 50_000.0, 500_000.0])
    with pytest.warns(UserWarning, match="outside the model's training range"):  # 500 GeV
        direct = load_model(run / "model", "cpu").sample(3, gen.energy, seed=3)
    np.testing.assert_allclose(gen.layers[0], direct.layers[0], rtol=1e-5, atol=1e-5)

    code, text = _run("generate", run / "model", "-n", 4, "-o", tmp_path / "gen2.h5", "--cond-file", tmp_path / "ds2.h5", "--seed", 3)
    assert code == 2 and "holds 50 energies" in text
    code, text = _run("generate", run / "model", "-o", tmp_path / "gen2.h5", "--cond-file", tmp_path / "ds2.h5", "--seed", 3)
    assert code == 0, text
    np.testing.assert_allclose(read_calochallenge(tmp_path / "gen2.h5").energy, read_calochallenge(tmp_path / "ds2.h5").energy, rtol=1e-6)
    bad = tmp_path / "bad.txt"
    bad.write_text("5\n-1\n")
    code, text = _run("generate", run / "model", "-o", tmp_path / "gen3.h5", "--cond-file", bad)
    assert code == 2 and "energies > 0" in text

    code, text = _run("train", tmp_path / "ds2.h5", "-o", run, "--total-rows", 64, "--resume", *TINY)
    assert code == 0, text
    assert read_manifest(run / "model")["training"]["rows_seen"] == 64


def test_a_calogan_file_trains_the_modern_model_when_asked(tmp_path: Path) -> None:
    write_calogan(tmp_path / "e.h5", make_calo_showers(40, "eplus", seed=4).to_shower_data())
    code, text = _run("train", tmp_path / "e.h5", "-o", tmp_path / "run", "--family", "showergan", "--total-rows", 16, "--batch-size", 8, *TINY)
    assert code == 0, text
    assert read_manifest(tmp_path / "run" / "model")["family"] == "showergan"
    code, text = _run("generate", tmp_path / "run" / "model", "-n", 5, "-o", tmp_path / "g.h5", "--seed", 1, "--cond", "energy=10")
    assert code == 0, text
    written = read_calogan(tmp_path / "g.h5")
    assert written.layers[1].shape == (5, 12, 12)
    np.testing.assert_allclose(written.energy, 10_000.0)  # MeV in memory; the file holds 10 GeV

    config = tmp_path / "modern.json"
    config.write_text(json.dumps({"family": "showergan", "model": {"latent_dim": 8, "g_width": 32, "g_depth": 1, "d_width": 32, "d_depth": 1}}))
    code, text = _run("train", tmp_path / "e.h5", config, "-o", tmp_path / "run2", "--total-rows", 16, "--batch-size", 8, "--set", "train.progress=false", "--set", "train.evaluate=false")
    assert code == 0, text
    assert read_manifest(tmp_path / "run2" / "model")["family"] == "showergan"
    code, text = _run("train", tmp_path / "e.h5", config, "-o", tmp_path / "run3", "--family", "calogan")
    assert code == 2 and "is a 'showergan' config" in text


def test_a_time_limit_stops_training_after_the_iteration_that_spends_it(tmp_path: Path) -> None:
    write_calochallenge(tmp_path / "ds2.h5", make_calo_showers(40, "eplus", seed=2, layout="calochallenge-ds2"))
    code, text = _run("train", tmp_path / "ds2.h5", "-o", tmp_path / "run", "--total-rows", 10**9, "--batch-size", 8, *TINY,
                      "--set", "train.max_wall_time_s=1e-6", "--set", "train.tick_rows=64")
    assert code == 0, text
    manifest = read_manifest(tmp_path / "run" / "model")
    # one iteration (two critic batches of 8), well before the first tick at 64 rows
    assert manifest["training"]["rows_seen"] == 16 and manifest["training"]["stopped_by"] == "max_wall_time_s"
    code, text = _run("train", tmp_path / "ds2.h5", "-o", tmp_path / "run", "--resume", "--total-rows", 10**9, "--batch-size", 8, *TINY,
                      "--set", "train.max_wall_time_s=1e-6", "--set", "train.tick_rows=64")
    assert code == 0, text
    assert read_manifest(tmp_path / "run" / "model")["training"]["rows_seen"] == 16  # the budget was spent: no more steps


def test_resume_through_the_command_line_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    from gansim.models.model_file import read_model_dir

    write_calochallenge(tmp_path / "ds2.h5", make_calo_showers(40, "eplus", seed=6, layout="calochallenge-ds2"))
    common = ("--batch-size", 8, "--seed", 2, *TINY, "--set", "train.ema_halflife_rows=32")
    assert _run("train", tmp_path / "ds2.h5", "-o", tmp_path / "full", "--total-rows", 64, *common)[0] == 0
    assert _run("train", tmp_path / "ds2.h5", "-o", tmp_path / "split", "--total-rows", 32, *common)[0] == 0
    code, text = _run("train", tmp_path / "ds2.h5", "-o", tmp_path / "split", "--total-rows", 64, "--resume", *common)
    assert code == 0, text
    (_, full), (_, split) = read_model_dir(tmp_path / "full" / "model"), read_model_dir(tmp_path / "split" / "model")
    assert full.keys() == split.keys()
    for key in full:
        assert np.array_equal(full[key].numpy(), split[key].numpy()), key
