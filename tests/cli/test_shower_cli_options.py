"""Shower files on the command line: compare on CaloChallenge dataset 1 (--binning-xml), options that
apply to phase space only are refused, generate's batch size and chunks, energies in the user's GeV."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.io.calo import read_binning_xml, read_calochallenge
from gansim.models import load_model
from gansim.models import shower_sampling
from gansim.models.showergan import ShowerGANSettings
from gansim.models.showergan_model import build_generator, save_showergan

runner = CliRunner()



def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _ds1_file(path: Path, n: int, seed: int, n_voxels: int = 9) -> Path:
    """A dataset-1-like file as the CaloChallenge publishes them: no binning recorded, so it needs the XML."""
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(np.log(1e3), np.log(1e5), (n, 1)))
    showers = rng.exponential(0.05, (n, n_voxels)) * energy * (rng.random((n, n_voxels)) < 0.6)
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=energy)
        f.create_dataset("showers", data=showers.astype(np.float32))
    return path


@pytest.fixture()
def small_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's full-size classifier takes ~12 s a run whatever the sample size; a small one tests the same wiring."""
    import gansim.metrics.calo_classifier as calo_classifier

    monkeypatch.setattr(calo_classifier, "classifier_test", functools.partial(calo_classifier.classifier_test, hidden=32, epochs=3))


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_on_dataset_1_files_with_binning_xml(tmp_path: Path, small_classifier: None, tiny_binning_xml: Path) -> None:
    xml = tiny_binning_xml
    ref, gen = _ds1_file(tmp_path / "ref.h5", 150, seed=1), _ds1_file(tmp_path / "gen.h5", 140, seed=2)

    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep")
    assert code == 2 and "--binning-xml" in text and str(ref) in text and "9 voxels" in text
    assert "read_binning_xml" not in text  # the library's Python hint is no help on the command line
    assert not (tmp_path / "rep").exists()

    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep", "--binning-xml", xml)
    assert code == 2 and "--particle" in text and "toy" in text and "particle=" not in text

    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep", "--particle", "toy")
    assert code == 2 and "--binning-xml" in text

    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep", "--binning-xml", xml, "--particle", "toy", "--max-rows", 120)
    assert code == 0, text
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    # --max-rows: the first 120 showers of each file
    assert metrics["n_reference"] == 120 and metrics["n_generated"] == 120 and metrics["layout"] == "calochallenge-ds1-toy"
    assert (tmp_path / "rep" / "report.html").is_file() and "report:" in text

    # the other particle's binning does not fit the voxels: the message names the file and the shapes
    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep2", "--binning-xml", xml, "--particle", "pion")
    assert code == 2 and str(ref) in text and "(N, 4)" in text and "(N, 9)" in text
    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep2", "--binning-xml", tmp_path / "absent.xml")
    assert code == 2 and "--binning-xml" in text and "absent.xml" in text


def test_compare_without_max_rows_reads_every_shower(tmp_path: Path, small_classifier: None, tiny_binning_xml: Path) -> None:
    xml = tiny_binning_xml
    ref, gen = _ds1_file(tmp_path / "ref.h5", 130, seed=3), _ds1_file(tmp_path / "gen.h5", 110, seed=4)
    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep", "--binning-xml", xml, "--particle", "11")
    assert code == 0, text
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["n_reference"] == 130 and metrics["n_generated"] == 110


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--keys", "E"), "--keys"),
        (("--cond", "E"), "--cond"),
        (("--bins", 3), "--bins"),
        (("--model", "run/model"), "--model"),
        (("--keys", "E", "--model", "run/model"), "--keys, --model"),
    ],
)
def test_compare_refuses_phase_space_options_for_shower_files(tmp_path: Path, extra: tuple[object, ...], named: str) -> None:
    ref, gen = _ds1_file(tmp_path / "ref.h5", 5, seed=1), _ds1_file(tmp_path / "gen.h5", 5, seed=2)
    code, text = _run("compare", ref, gen, "-o", tmp_path / "rep", *extra)
    assert code == 2 and named in text and "phase-space" in text
    assert not (tmp_path / "rep").exists()


def test_compare_refuses_shower_options_for_phase_space_and_calogan_files(tmp_path: Path, tiny_binning_xml: Path) -> None:
    xml = tiny_binning_xml
    code, text = _run("compare", tmp_path / "a.npy", tmp_path / "b.npy", "--binning-xml", xml)
    assert code == 2 and "--binning-xml" in text and "phase spaces" in text
    calogan = tmp_path / "calogan.h5"
    with h5py.File(calogan, "w") as f:
        f.create_dataset("energy", data=np.full((3, 1), 10.0))
        f.create_dataset("layer_0", data=np.zeros((3, 3, 96)))
    code, text = _run("compare", calogan, calogan, "-o", tmp_path / "rep", "--binning-xml", xml, "--particle", "toy")
    assert code == 2 and str(calogan) in text and "CaloGAN file" in text and "--binning-xml" in text


def test_train_on_dataset_1_without_binning_names_the_option(tmp_path: Path) -> None:
    data = _ds1_file(tmp_path / "ds1.h5", 20, seed=5, n_voxels=368)
    code, text = _run("train", data, "-o", tmp_path / "run")
    assert code == 2 and "--set data.binning_xml=FILE" in text and "binning_dataset_1_photons.xml" in text
    assert "read_binning_xml" not in text and not (tmp_path / "run").exists()


def test_help_texts_mention_shower_files() -> None:
    for command in ("train", "compare"):
        code, text = _run(command, "--help")
        assert code == 0 and "CaloChallenge" in text and "CaloGAN" in text, command


# ---------------------------------------------------------------------------------------------
# generate


@pytest.fixture()
def tiny_model(tmp_path: Path, tiny_binning_xml: Path) -> Path:
    """A modern shower GAN with stochastic occupancy (latent 8 + two noise columns per cell) on 9 voxels; untrained weights."""
    xml = tiny_binning_xml
    geometry = read_binning_xml(xml, "toy")
    settings = ShowerGANSettings(latent_dim=8, g_width=16, g_depth=1, d_width=16, d_depth=1)
    torch.manual_seed(0)
    return save_showergan(tmp_path / "model", build_generator(settings, geometry, (1.0, 100.0), 1e-3), settings, geometry)


def _same_showers(a: Any, b: Any) -> None:
    """Equal showers: the same energies (as the file's float32) and lit cells; values up to float32 rounding,
    which depends on the rows in a matrix product (the CPU kernels block by batch size)."""
    np.testing.assert_array_equal(np.float32(a.energy), np.float32(b.energy))
    np.testing.assert_array_equal(a.layers[0] > 0, b.layers[0] > 0)
    np.testing.assert_allclose(a.layers[0], b.layers[0], rtol=1e-5, atol=1e-6)


def test_generate_gives_the_same_showers_whatever_the_batch_size_and_chunks(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = shower_sampling.SAMPLE_BLOCK_ROWS * 2 + 52  # three latent blocks, the last one partly used
    code, text = _run("generate", tiny_model, "-n", n, "-o", tmp_path / "default.h5", "--seed", 3)
    assert code == 0, text
    assert "note:" not in text  # the default batch fits a chunk
    per_shower = 8 + 2 * 9 + 9  # latent, two noise columns per cell, the cells
    monkeypatch.setattr(shower_sampling, "SHOWER_CHUNK_VALUES", 300 * per_shower)  # chunks of 256 showers, inside a block
    code, text = _run("generate", tiny_model, "-n", n, "-o", tmp_path / "small.h5", "--seed", 3, "--batch-size", 7)
    assert code == 0, text
    code, text = _run("generate", tiny_model, "-n", n, "-o", tmp_path / "big.h5", "--seed", 3, "--batch-size", 100_000)
    assert code == 0, text
    # the batch asked for is more than a chunk: said, not silently shrunk
    assert "--batch-size 100,000" in text and "at most 256 showers" in text
    direct = load_model(tiny_model, "cpu").sample(n, seed=3, batch_size=n)
    for name in ("default", "small", "big"):
        _same_showers(read_calochallenge(tmp_path / f"{name}.h5"), direct)


def test_chunks_bound_latents_and_cells() -> None:
    rows = shower_sampling.shower_chunk_rows
    budget = shower_sampling.SHOWER_CHUNK_VALUES
    # faithful CaloGAN: 504 cells, 1024 latent columns; the modern one on CaloChallenge dataset 3: 40,500 cells, 128 + 81,000 noise
    for n_cells, noise_dim in ((504, 1024), (504, 128 + 1008), (6480, 128 + 12960), (40500, 128 + 81000), (9, 26)):
        r = rows(n_cells, noise_dim)
        assert r * (n_cells + noise_dim) <= budget, (n_cells, noise_dim)
        # whole latent blocks, or a piece of one block: no block's stream is drawn for two chunks' sake more than needed
        block = shower_sampling.SAMPLE_BLOCK_ROWS
        assert (r % block == 0) if r >= block else (block % r == 0), r
    assert rows(40500, 128 + 81000) == 512
    assert rows(10**8, 10**8) == 1  # one shower over the budget is still made, one at a time
    assert rows(10, 0, budget=10 * 5000) == 4096


def test_wide_noise_is_drawn_in_pieces_that_continue_one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk holds only its own showers' noise (a block is drawn piece by piece, the rows outside
    dropped), and the pieces give exactly the values of one draw of the block."""
    dim = 37
    whole = shower_sampling.seeded_latents_and_energies(5, 1000, 1100, dim, (1.0, 100.0))  # one piece per block here
    monkeypatch.setattr(shower_sampling, "DRAW_VALUES", 50 * dim)  # pieces of 48 rows
    assert shower_sampling._piece_rows(dim) == 48
    pieces = shower_sampling.seeded_latents_and_energies(5, 1000, 1100, dim, (1.0, 100.0))
    assert torch.equal(whole[0], pieces[0]) and torch.equal(whole[1], pieces[1])
    middle = shower_sampling.seeded_latents_and_energies(5, 1500, 30, dim, (1.0, 100.0))
    assert torch.equal(middle[0], whole[0][500:530]) and torch.equal(middle[1], whole[1][500:530])


def test_energies_are_checked_in_gev_and_name_the_option_or_file(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen.h5"
    for value in ("-3", "0", "nan", "inf"):
        code, text = _run("generate", tiny_model, "-n", 4, "-o", out, "--seed", 1, "--cond", f"energy={value}")
        assert code == 2 and f"--cond energy={value}" in text and "> 0 GeV" in text and "MeV" not in text, text
    assert not out.exists()

    bad = tmp_path / "energies.txt"
    bad.write_text("5\n-1\n20\n")
    code, text = _run("generate", tiny_model, "-o", out, "--cond-file", bad, "--seed", 1)
    assert code == 2 and str(bad) in text and "--cond-file" in text and "-1 at row 1" in text and "> 0 GeV" in text

    # a CaloGAN file stores GeV: its bad energies are reported in GeV, with the option and the file
    calogan = tmp_path / "calogan.h5"
    with h5py.File(calogan, "w") as f:
        f.create_dataset("energy", data=np.array([[10.0], [-2.0]]))
        f.create_dataset("layer_0", data=np.zeros((2, 3, 96)))
    code, text = _run("generate", tiny_model, "-o", out, "--cond-file", calogan, "--seed", 1)
    assert code == 2 and "--cond-file" in text and str(calogan) in text and "energy" in text and "> 0 GeV" in text
    assert not out.exists()


def test_generate_refuses_phase_space_options_for_a_shower_model(tiny_model: Path, tmp_path: Path) -> None:
    for extra, named in ((("--with-conditions",), "--with-conditions"), (("--particle", "gamma"), "--particle"), (("--drop-unknown",), "--drop-unknown")):
        code, text = _run("generate", tiny_model, "-n", 2, "-o", tmp_path / "g.h5", "--seed", 1, *extra)
        assert code == 2 and named in text and "shower model" in text
