"""The analytic linac phase space: columns, physics sanity checks, determinism, built-in registry."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gansim.data.builtin import BUILTIN_DATASETS, make_builtin
from gansim.data.linac import (
    COMPONENT_PRIMARY,
    COMPONENT_SCATTER,
    LINAC_COLUMNS,
    LINAC_FLOAT_COLUMNS,
    LINAC_PDG_CODE,
    generate_linac_phsp,
)
from gansim.data.transforms import TablePipeline
from gansim.errors import ConfigError

N = 200_000
SAD = 1000.0
PLANE_Z = 300.0
HALF_FIELD_ON_PLANE = 50.0 * (SAD - PLANE_Z) / SAD  # 100 mm field at isocentre, projected: 35 mm


@pytest.fixture(scope="module")
def table() -> dict[str, np.ndarray]:
    return generate_linac_phsp(N, seed=3, with_component=True)


def directions(t: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([t["PreDirection_X"], t["PreDirection_Y"], t["PreDirection_Z"]], axis=1).astype(np.float64)


def inside_field(t: dict[str, np.ndarray]) -> np.ndarray:
    return (np.abs(t["PrePosition_X"]) <= HALF_FIELD_ON_PLANE) & (np.abs(t["PrePosition_Y"]) <= HALF_FIELD_ON_PLANE)


def test_columns_and_dtypes(table: dict[str, np.ndarray]) -> None:
    assert tuple(table) == LINAC_COLUMNS + ("Component",)
    assert LINAC_COLUMNS == (*LINAC_FLOAT_COLUMNS, "PDGCode")
    for k in LINAC_FLOAT_COLUMNS:
        assert table[k].dtype == np.float32 and table[k].shape == (N,)
    # photons, and the table says so: files written from it know their particle type
    assert table["PDGCode"].dtype == np.int32 and table["PDGCode"].shape == (N,)
    assert (table["PDGCode"] == 22).all() and LINAC_PDG_CODE == 22
    assert set(np.unique(table["Component"])) == {COMPONENT_PRIMARY, COMPONENT_SCATTER}
    plain = generate_linac_phsp(10)
    assert tuple(plain) == LINAC_COLUMNS
    assert "Weight" not in plain


def test_directions_are_unit_and_downward(table: dict[str, np.ndarray]) -> None:
    u = directions(table)
    assert np.abs(np.linalg.norm(u, axis=1) - 1.0).max() < 1e-6
    assert (table["PreDirection_Z"] < 0).all()


def test_scoring_plane(table: dict[str, np.ndarray]) -> None:
    assert (table["PrePosition_Z"] == np.float32(PLANE_Z)).all()
    other = generate_linac_phsp(100, plane_z=-50.0)
    assert (other["PrePosition_Z"] == -50.0).all()
    # nothing outside the primary collimator cone (14 deg from the target)
    r = np.hypot(table["PrePosition_X"], table["PrePosition_Y"])
    assert r.max() <= (SAD - PLANE_Z) * np.tan(np.radians(14.0)) + 1e-3


def test_energies(table: dict[str, np.ndarray]) -> None:
    e = table["KineticEnergy"]
    assert e.min() > 0.0 and e.max() <= 6.0
    assert 1.4 <= e.mean() <= 1.9  # documented range; real 6 MV beams are 1.5-2 MeV
    prim = table["Component"] == COMPONENT_PRIMARY
    assert e[~prim].mean() < e[prim].mean() - 0.3  # scatter is softer
    # the flattening filter is thinner off axis: the beam softens away from the axis
    r = np.hypot(table["PrePosition_X"], table["PrePosition_Y"])
    assert e[prim & (r < 10)].mean() > e[prim & (r > 30) & (r < 35)].mean()


def test_component_fractions(table: dict[str, np.ndarray]) -> None:
    frac = (table["Component"] == COMPONENT_SCATTER).mean()
    assert abs(frac - 0.1) < 0.005
    assert (generate_linac_phsp(1000, scatter_fraction=0.0, with_component=True)["Component"] == 0).all()


def test_field_edge(table: dict[str, np.ndarray]) -> None:
    prim = table["Component"] == COMPONENT_PRIMARY
    inside = inside_field(table)
    assert inside[prim].mean() > 0.9
    # scatter: broader field, wider penumbra
    assert inside[~prim].mean() < inside[prim].mean() - 0.2
    # primary profile along x (central band in y): plateau ~ 1, ~ 1/2 at the geometric edge, ~ 0 beyond
    x = table["PrePosition_X"][prim & (np.abs(table["PrePosition_Y"]) < 20)]
    width = 2.0
    plateau = (np.abs(x) < 25).sum() / 50.0
    at_edge = (np.abs(np.abs(x) - HALF_FIELD_ON_PLANE) < width / 2).sum() / (2 * width)
    beyond = (np.abs(np.abs(x) - 60.0) < 5.0).sum() / 20.0
    assert 0.4 < at_edge / plateau < 0.6
    assert beyond / plateau < 0.02


def test_divergence_from_focal_spot(table: dict[str, np.ndarray]) -> None:
    """Primaries point away from the focal spot at z = SAD: direction ~ (position - source)/|position - source|."""
    pos = np.stack([table["PrePosition_X"], table["PrePosition_Y"], table["PrePosition_Z"] - SAD], axis=1)
    ray = pos.astype(np.float64)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    angle = np.arccos(np.clip((ray * directions(table)).sum(axis=1), -1.0, 1.0))
    prim = table["Component"] == COMPONENT_PRIMARY
    # the spot (sigma 0.5 mm, cut at 2 mm) seen from 700 mm: at most ~2.9 mrad
    assert angle[prim].max() < 3e-3
    assert np.median(angle[prim]) < 1.5e-3
    # the scatter source is extended: much larger angles
    assert np.median(angle[~prim]) > 5 * np.median(angle[prim])


def test_field_size_scales_the_field() -> None:
    big = generate_linac_phsp(50_000, seed=1, field_size=200.0, scatter_fraction=0.0)
    x = big["PrePosition_X"][np.abs(big["PrePosition_Y"]) < 20]
    assert np.quantile(np.abs(x), 0.9) > 1.5 * HALF_FIELD_ON_PLANE


def test_determinism() -> None:
    a = generate_linac_phsp(5000, seed=7)
    b = generate_linac_phsp(5000, seed=7)
    c = generate_linac_phsp(5000, seed=8)
    for k in LINAC_COLUMNS:
        np.testing.assert_array_equal(a[k], b[k])
    for k in ("KineticEnergy", "PrePosition_X", "PreDirection_Y"):
        assert not np.array_equal(a[k], c[k])


def test_empty_and_bad_arguments() -> None:
    empty = generate_linac_phsp(0)
    assert all(v.shape == (0,) for v in empty.values())
    with pytest.raises(ConfigError, match="non-negative"):
        generate_linac_phsp(-1)
    with pytest.raises(ConfigError, match="below the jaws"):
        generate_linac_phsp(10, plane_z=800.0)
    with pytest.raises(ConfigError, match="field_size"):
        generate_linac_phsp(10, field_size=0.0)
    with pytest.raises(ConfigError, match="scatter_fraction"):
        generate_linac_phsp(10, scatter_fraction=1.5)


def test_builtin_registry() -> None:
    description, generate = BUILTIN_DATASETS["linac"]
    assert isinstance(description, str) and description
    t = generate(1000, 4)
    ref = generate_linac_phsp(1000, seed=4)
    for k in LINAC_COLUMNS:
        np.testing.assert_array_equal(t[k], ref[k])
    np.testing.assert_array_equal(make_builtin("linac", 100, seed=2)["KineticEnergy"],
                                  generate_linac_phsp(100, seed=2)["KineticEnergy"])
    with pytest.raises(ConfigError, match="linac"):
        make_builtin("nope", 10)


def test_default_pipeline_roundtrip_on_linac() -> None:
    t = generate_linac_phsp(20_000, seed=5)
    # the kinematics a GAN learns; PDGCode is a bookkeeping column that training leaves out
    pipe = TablePipeline.default(list(LINAC_FLOAT_COLUMNS)).fit([t])
    x = pipe.forward(t)
    assert np.isfinite(x).all()
    assert (x[:, LINAC_FLOAT_COLUMNS.index("PrePosition_Z")] == 0.0).all()
    back = pipe.inverse(x)
    for k in LINAC_FLOAT_COLUMNS:
        np.testing.assert_allclose(back[k], t[k], rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(t[k]).max())))


@pytest.mark.slow
def test_speed() -> None:
    generate_linac_phsp(1000)
    start = time.perf_counter()
    generate_linac_phsp(1_000_000)
    assert time.perf_counter() - start < 3.0  # ~0.3-0.7 s on a laptop; generous for loaded CI
