"""Every format converts into every other: the built-in linac photons survive each pair, in gansim units."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from gansim.data.linac import generate_linac_phsp
from gansim.io.phsp import convert, read_table, write_table

SUFFIXES = ["root", "npy", "npz", "mcpl", "mcpl.gz", "IAEAphsp"]
COLUMNS = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z", "PDGCode"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    table = generate_linac_phsp(500, seed=3)
    root = tmp_path_factory.mktemp("src")
    paths = {}
    for suffix in SUFFIXES:
        paths[suffix] = root / f"beam.{suffix}"
        write_table(paths[suffix], table)
    return paths


@pytest.mark.parametrize("src,dst", list(itertools.product(SUFFIXES, SUFFIXES)))
def test_convert_pair(sources: dict[str, Path], tmp_path: Path, src: str, dst: str) -> None:
    reference = generate_linac_phsp(500, seed=3)
    out = tmp_path / f"out.{dst}"
    rows = convert(sources[src], out, drop_unknown=True)
    assert rows == 500
    got = read_table(out)
    for key in COLUMNS:
        assert key in got, (src, dst, key)
        # float32 storage everywhere; MCPL/IAEA store cm, so mm -> cm -> mm rounds at float32 precision
        np.testing.assert_allclose(got[key], reference[key], rtol=2e-6, atol=1e-6, err_msg=f"{src}->{dst} {key}")
