"""`gansim data calo`: built-in GFlash showers written chunk by chunk in the CaloGAN or CaloChallenge layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.data.calo import make_calo_showers
from gansim.errors import DataError
from gansim.io.calo import ShowerData, detect_shower_layout, read_calogan, read_showers, write_calogan, write_shower_chunks

runner = CliRunner()


def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_data_calo_writes_the_calogan_layout_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "eplus.h5"
    code, text = _run("data", "calo", "--particle", "eplus", "-n", 150, "--seed", 3, "-o", out)
    assert code == 0, text
    assert "150 eplus showers (calogan layout)" in text
    assert detect_shower_layout(out) == "calogan"
    data = read_calogan(out)
    expected = make_calo_showers(150, "eplus", seed=3)
    np.testing.assert_allclose(data.energy, expected.energy, rtol=1e-6)
    for got, want in zip(data.layers, expected.layers):
        np.testing.assert_array_equal(got, want)
    code, text = _run("data", "calo", "-n", 10, "-o", out)
    assert code == 2 and "already exists" in text


def test_data_calo_calochallenge_ds2_and_bad_options(tmp_path: Path) -> None:
    out = tmp_path / "ds2.hdf5"
    code, text = _run("data", "calo", "--particle", "gamma", "--layout", "calochallenge-ds2", "-n", 70, "-o", out)
    assert code == 0, text
    data = read_showers(out)
    assert data.layout == "calochallenge-ds2" and data.layers[0].shape == (70, 6480)
    code, text = _run("data", "calo", "-n", 5, "-o", tmp_path / "showers.npy")
    assert code == 2 and "HDF5" in text
    code, text = _run("data", "linac", "--particle", "eplus", "-n", 5, "-o", tmp_path / "l.npy")
    assert code == 2 and "apply to the calo data set" in text
    code, text = _run("data", "calo", "--particle", "proton", "-n", 5, "-o", tmp_path / "p.h5")
    assert code == 2 and "proton" in text


def test_chunked_writer_equals_the_whole_file_writer(tmp_path: Path) -> None:
    showers = make_calo_showers(100, "gamma", seed=5)
    whole = showers.to_shower_data()
    write_calogan(tmp_path / "whole.h5", whole)
    halves = [
        ShowerData(whole.layout, whole.geometry, whole.energy[lo:hi], [a[lo:hi] for a in whole.layers], whole.overflow[lo:hi])
        for lo, hi in ((0, 64), (64, 100))
    ]
    assert write_shower_chunks(tmp_path / "chunks.h5", halves) == 100
    a, b = read_calogan(tmp_path / "whole.h5"), read_calogan(tmp_path / "chunks.h5")
    np.testing.assert_array_equal(a.energy, b.energy)
    for x, y in zip(a.layers + [a.overflow], b.layers + [b.overflow]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(DataError, match="no showers"):
        write_shower_chunks(tmp_path / "empty.h5", [])
    assert not (tmp_path / "empty.h5").exists()
