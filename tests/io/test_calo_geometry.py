"""Calorimeter geometries: cell counts, centres and the CaloGAN beam-on-a-corner convention."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import ConfigError
from gansim.io.calo_geometry import CALOCHALLENGE_DS2, CALOCHALLENGE_DS3, CALOGAN, CylindricalLayer, calochallenge_geometry


def test_calogan_layers_match_the_file_layout() -> None:
    assert [(layer.name, layer.shape) for layer in CALOGAN.layers] == [("layer_0", (3, 96)), ("layer_1", (12, 12)), ("layer_2", (12, 6))]
    assert CALOGAN.n_cells == 504  # the CaloGAN ntuple's cell_0 .. cell_503
    for layer in CALOGAN.layers:
        # every layer covers the +-240 mm window symmetrically
        for axis in (1, 2):
            edges = layer.edges(axis)
            assert edges[0] == pytest.approx(-240.0) and edges[-1] == pytest.approx(240.0)
            np.testing.assert_allclose(layer.centres(axis), -layer.centres(axis)[::-1])
    # the beam (0, 0) is on the boundary of eta strips 47/48 and inside the middle of layer 0's
    # three 160 mm phi cells; on a corner of four cells in layers 1 and 2
    assert np.isclose(CALOGAN.layers[0].edges(2)[48], 0.0) and not np.any(np.isclose(CALOGAN.layers[0].edges(1), 0.0))
    for layer in CALOGAN.layers[1:]:
        assert all(np.any(np.isclose(layer.edges(axis), 0.0)) for axis in (1, 2))
    assert sum(layer.depth for layer in CALOGAN.layers) == pytest.approx(480.0)
    assert CALOGAN.layers[0].axis_names == ("phi", "eta")


def test_calochallenge_voxel_counts_and_slices() -> None:
    assert CALOCHALLENGE_DS2.n_cells == 6480 and CALOCHALLENGE_DS2.regular_shape() == (45, 16, 9)
    assert CALOCHALLENGE_DS3.n_cells == 40500 and CALOCHALLENGE_DS3.regular_shape() == (45, 50, 18)
    slices = CALOCHALLENGE_DS2.layer_slices()
    assert slices[0] == slice(0, 144) and slices[-1] == slice(6480 - 144, 6480)
    assert calochallenge_geometry("ds3") is CALOCHALLENGE_DS3
    with pytest.raises(ConfigError, match="binning XML"):
        calochallenge_geometry("ds1-photon")


def test_bad_cylindrical_layers_are_refused() -> None:
    with pytest.raises(ConfigError, match="r_edges"):
        CylindricalLayer((0.0, 5.0, 5.0), 1)
    with pytest.raises(ConfigError, match="n_alpha"):
        CylindricalLayer((0.0, 5.0), 0)
