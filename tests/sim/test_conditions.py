"""Condition generators of GAN sources: emission points against the activity image and its geometry.

Statistical checks use fixed seeds and either a chi-square p-value above P_MIN (scipy's
chi2 survival function) or a 5-sigma bound from the sampling error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import stats

from gansim.errors import ConfigError, DataError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.sources import ActivityImageSource
from gansim.sim.conditions import (
    DIRECTION_KEYS,
    POSITION_KEYS,
    ConditionGenerator,
    FunctionConditionGenerator,
    VoxelizedConditionGenerator,
    as_condition_generator,
)
from gansim.units import deg

P_MIN = 1e-4
SHAPE = (5, 4, 3)
SPACING = (1.0, 2.5, 4.0)  # x and z differ by 4x: a swapped x/z spacing cannot go unnoticed
ORIGIN = (-12.0, 7.5, 30.0)
DIRECTION = rotation_matrix("z", 30 * deg)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _geometry(**pose: object) -> ImageGeometry:
    return ImageGeometry(SHAPE, np.array(SPACING), np.array(ORIGIN), DIRECTION, **pose)  # type: ignore[arg-type]


def _points(out: dict[str, torch.Tensor], keys: tuple[str, ...] = POSITION_KEYS) -> np.ndarray:
    return torch.stack([out[k] for k in keys], dim=1).double().numpy()


def _one_hot(voxel: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros(SHAPE)
    image[voxel] = 1.0
    return image


# -- distribution over voxels -----------------------------------------------------------------
def test_voxel_frequencies_follow_the_image_chi_square() -> None:
    rng = np.random.default_rng(3)
    image = rng.uniform(0.2, 1.0, SHAPE)
    image[0, 0, 0] = 0.0  # an inactive voxel must never be drawn
    geometry = _geometry()
    gen = VoxelizedConditionGenerator((image, geometry))
    n = 200_000
    p = _points(gen.generate(n, _gen(11)))
    index = np.rint(geometry.world_to_index(p)).astype(int)
    assert np.all(index >= 0) and np.all(index < np.array(SHAPE))
    counts = np.zeros(SHAPE)
    np.add.at(counts, tuple(index.T), 1)
    assert counts[0, 0, 0] == 0
    probabilities = image / image.sum()
    active = probabilities > 0
    expected = n * probabilities[active]
    chi2 = float(np.sum((counts[active] - expected) ** 2 / expected))
    assert stats.chi2.sf(chi2, int(active.sum()) - 1) > P_MIN
    assert gen.n_active == image.size - 1
    assert gen.total_activity == pytest.approx(image.sum())


def test_points_fill_their_voxel_uniformly_with_anisotropic_spacing() -> None:
    voxel = (3, 1, 2)
    geometry = _geometry()
    gen = VoxelizedConditionGenerator((_one_hot(voxel), geometry))
    p = _points(gen.generate(50_000, _gen(5)))
    offset = geometry.world_to_index(p) - np.array(voxel)
    # inside the voxel in every axis (float32 positions: a little slack at the faces) ...
    assert np.all(np.abs(offset) <= 0.5 + 1e-4)
    # ... and filling it: a swapped x/z spacing would give 4x too wide or 4x too narrow offsets
    for axis in range(3):
        counts, _ = np.histogram(offset[:, axis], bins=10, range=(-0.5 - 1e-4, 0.5 + 1e-4))
        assert stats.chi2.sf(np.sum((counts - len(p) / 10) ** 2 / (len(p) / 10)), 9) > P_MIN


# -- placement ------------------------------------------------------------------------------
def test_translation_and_rotation_place_the_samples() -> None:
    image = np.random.default_rng(1).uniform(0.0, 1.0, SHAPE)
    t = np.array([10.0, -20.0, 35.0])
    r = rotation_matrix((1.0, 2.0, -0.5), 40 * deg)
    plain = _points(VoxelizedConditionGenerator((image, _geometry())).generate(5000, _gen(9)))
    posed_gen = VoxelizedConditionGenerator((image, _geometry()), translation=t, rotation=r)
    posed = _points(posed_gen.generate(5000, _gen(9)))
    np.testing.assert_allclose(posed, plain @ r.T + t, rtol=0, atol=1e-4)
    np.testing.assert_allclose(posed_gen.geometry.translation, t)
    np.testing.assert_allclose(posed_gen.geometry.rotation, r)
    # set_pose moves it the same way, and back
    gen = VoxelizedConditionGenerator((image, _geometry()))
    gen.set_pose(t, r)
    np.testing.assert_allclose(_points(gen.generate(5000, _gen(9))), posed, rtol=0, atol=1e-5)
    gen.set_pose()
    np.testing.assert_array_equal(_points(gen.generate(5000, _gen(9))), plain)


def test_pose_of_the_input_geometry_is_kept_unless_overridden() -> None:
    image = np.ones(SHAPE)
    t, r = np.array([1.0, 2.0, 3.0]), rotation_matrix("x", 20 * deg)
    own = VoxelizedConditionGenerator((image, _geometry(translation=t, rotation=r)))
    np.testing.assert_allclose(own.geometry.translation, t)
    np.testing.assert_allclose(own.geometry.rotation, r)
    replaced = VoxelizedConditionGenerator((image, _geometry(translation=t, rotation=r)), translation=[0, 0, 0], rotation=np.eye(3))
    np.testing.assert_allclose(replaced.geometry.translation, 0.0)


def test_activity_image_source_input_matches_array_input() -> None:
    # an ActivityImageSource keeps no array, so centring and pose are applied to its samples
    image = np.random.default_rng(2).uniform(0.0, 1.0, SHAPE)
    t, r = np.array([5.0, 0.0, -7.0]), rotation_matrix("y", 25 * deg)
    source = ActivityImageSource(image, _geometry(translation=[100.0, 0.0, 0.0]))
    options = dict(translation=t, rotation=r, use_image_origin=False)
    a = _points(VoxelizedConditionGenerator(source, **options).generate(5000, _gen(4)))  # type: ignore[arg-type]
    b = _points(VoxelizedConditionGenerator((image, _geometry()), **options).generate(5000, _gen(4)))  # type: ignore[arg-type]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    # no centring, no pose change: the source's own samples, untouched
    same = VoxelizedConditionGenerator(source)
    np.testing.assert_array_equal(_points(same.generate(100, _gen(4))), source.sample(100, _gen(4)).double().numpy())


def test_use_image_origin_false_centres_the_image() -> None:
    gen = VoxelizedConditionGenerator((np.ones(SHAPE), _geometry()), use_image_origin=False)
    centre = 0.5 * (np.array(SHAPE) - 1.0)
    np.testing.assert_allclose(gen.geometry.index_to_world(centre[None])[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(gen.geometry.direction, DIRECTION)  # the direction cosines are kept
    np.testing.assert_allclose(gen.geometry.spacing, SPACING)
    n = 200_000
    p = _points(gen.generate(n, _gen(21)))
    sigma = p.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(p.mean(axis=0)) < 5 * sigma)
    # with the header's origin the mean is the image centre instead
    at_origin = _points(VoxelizedConditionGenerator((np.ones(SHAPE), _geometry())).generate(n, _gen(21)))
    expected = _geometry().index_to_world(centre[None])[0]
    assert np.all(np.abs(at_origin.mean(axis=0) - expected) < 5 * sigma)


# -- directions and columns -----------------------------------------------------------------
def test_isotropic_directions() -> None:
    gen = VoxelizedConditionGenerator((np.ones(SHAPE), _geometry()), compute_directions=True)
    assert gen.keys == POSITION_KEYS + DIRECTION_KEYS
    n = 200_000
    d = _points(gen.generate(n, _gen(8)), DIRECTION_KEYS)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert np.all(np.abs(d.mean(axis=0)) < 5 * np.sqrt(1.0 / 3.0 / n))  # Var(d_a) = 1/3
    # E[z^2] = 1/3, Var(z^2) = E[z^4] - 1/9 = 1/5 - 1/9 = 4/45
    assert abs(np.mean(d[:, 2] ** 2) - 1.0 / 3.0) < 5 * np.sqrt(4.0 / 45.0 / n)


def test_keys_constants_dtype_and_custom_names() -> None:
    pos, dirs = ("x", "y", "z"), ("u", "v", "w")
    gen = VoxelizedConditionGenerator(
        (np.ones(SHAPE), _geometry()), compute_directions=True, position_keys=pos, direction_keys=dirs, constants={"E": 0.1405, "w8": 2}
    )
    assert gen.keys == pos + dirs + ("E", "w8")
    out = gen.generate(7, _gen(0))
    assert tuple(out) == gen.keys
    for value in out.values():
        assert value.dtype == torch.float32 and value.shape == (7,) and value.device == gen.device
    assert torch.all(out["E"] == torch.tensor(0.1405, dtype=torch.float32))
    assert torch.all(out["w8"] == 2.0)
    assert isinstance(gen, ConditionGenerator)


def test_reproducible_only_from_the_given_generator() -> None:
    gen = VoxelizedConditionGenerator((np.random.default_rng(0).uniform(size=SHAPE), _geometry()), compute_directions=True)
    global_state = torch.get_rng_state()
    a, b, c = gen.generate(1000, _gen(1)), gen.generate(1000, _gen(1)), gen.generate(1000, _gen(2))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is not touched
    for key in gen.keys:
        assert torch.equal(a[key], b[key])
        assert not torch.equal(a[key], c[key])
    empty = gen.generate(0, _gen(1))
    assert set(empty) == set(gen.keys) and all(v.shape == (0,) and v.dtype == torch.float32 for v in empty.values())


def test_update_image_switches_the_distribution_and_keeps_the_pose() -> None:
    t, r = np.array([3.0, 4.0, 5.0]), rotation_matrix("z", 70 * deg)
    gen = VoxelizedConditionGenerator((np.ones(SHAPE), _geometry()), translation=t, rotation=r, use_image_origin=False)
    voxel = (4, 2, 0)
    gen.update_image((_one_hot(voxel), _geometry()))
    assert gen.n_active == 1
    np.testing.assert_allclose(gen.geometry.translation, t)
    p = _points(gen.generate(20_000, _gen(3)))
    index = gen.geometry.world_to_index(p)
    assert np.all(np.abs(index - np.array(voxel)) <= 0.5 + 1e-4)
    # a bad new image is refused and the old one kept
    with pytest.raises(DataError):
        gen.update_image((np.zeros(SHAPE), _geometry()))
    assert gen.n_active == 1


@pytest.mark.parametrize("suffix", [".mha", ".nii.gz"])
def test_image_file_header_places_the_points(tmp_path: Path, suffix: str) -> None:
    voxel = (3, 1, 2)
    image = sitk.GetImageFromArray(_one_hot(voxel).astype(np.float32).transpose(2, 1, 0))  # [i, j, k] -> (z, y, x)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(DIRECTION.reshape(-1).tolist())
    path = tmp_path / f"activity{suffix}"
    sitk.WriteImage(image, str(path))
    gen = as_condition_generator(path)
    assert isinstance(gen, VoxelizedConditionGenerator)
    p = _points(gen.generate(20_000, _gen(6)))
    # mapped back with the geometry written, not the one read: a transposed or misread header shows
    index = _geometry().world_to_index(p)
    assert np.all(np.abs(index - np.array(voxel)) <= 0.5 + 1e-3)
    assert np.all(index.max(axis=0) - index.min(axis=0) > 0.98)  # fills the voxel in every axis
    assert as_condition_generator(gen) is gen


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros(SHAPE), "all zero"),
        (np.where(np.arange(60).reshape(SHAPE) == 7, -1.0, 1.0), "negative"),
        (np.where(np.arange(60).reshape(SHAPE) == 7, np.nan, 1.0), "non-finite"),
        (np.ones((2, 2, 2)), "shape"),
    ],
)
def test_invalid_images_are_data_errors(image: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        VoxelizedConditionGenerator((image, _geometry()))
    assert "VoxelizedConditionGenerator" in str(info.value)


def test_missing_file_and_bad_image_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        VoxelizedConditionGenerator(tmp_path / "none.mha")
    with pytest.raises(ConfigError, match="ImageGeometry"):
        VoxelizedConditionGenerator(np.ones(SHAPE))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="path"):
        as_condition_generator(lambda n, g: {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"position_keys": ("X", "Y")}, "exactly 3"),
        ({"direction_keys": ("a", "b", "c", "d"), "compute_directions": True}, "exactly 3"),
        ({"position_keys": ("X", "X", "Z")}, "distinct"),
        ({"position_keys": "XYZ"}, "list of column names"),
        ({"compute_directions": True, "direction_keys": ("X", "Y", "Z"), "position_keys": ("X", "B", "C")}, "share"),
        ({"constants": {"EventPosition_Y": 1.0}}, "clashes"),
        ({"constants": {"EventDirection_X": 1.0}, "compute_directions": True}, "clashes"),
        ({"constants": {"E": float("nan")}}, "finite"),
        ({"translation": (1.0, 2.0)}, "3 finite"),
        ({"rotation": np.ones((3, 3))}, "orthonormal"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VoxelizedConditionGenerator((np.ones(SHAPE), _geometry()), **options)


def test_bad_counts_are_config_errors() -> None:
    gen = VoxelizedConditionGenerator((np.ones(SHAPE), _geometry()))
    for n in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="integer >= 0"):
            gen.generate(n, _gen(0))  # type: ignore[arg-type]


# -- user functions -------------------------------------------------------------------------
def _uniform_xy(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"X": torch.rand(n, generator=generator, dtype=torch.float64), "Y": np.full(n, 2.0)}


def test_function_generator_converts_and_is_reproducible() -> None:
    gen = FunctionConditionGenerator(_uniform_xy, ["X", "Y"])
    a, b = gen.generate(100, _gen(1)), gen.generate(100, _gen(1))
    assert gen.keys == ("X", "Y")
    for key in gen.keys:
        assert a[key].dtype == torch.float32 and a[key].shape == (100,)
        assert torch.equal(a[key], b[key])
    assert gen.generate(0, _gen(1))["X"].shape == (0,)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda n, g: {"X": np.zeros(n)}, r"no \['Y'\]"),
        (lambda n, g: {"X": np.zeros(n), "Y": np.zeros(n), "Zz": np.zeros(n)}, r"unexpected keys \['Zz'\].*\['X', 'Y'\]"),
        (lambda n, g: {"X": np.zeros(n + 1), "Y": np.zeros(n)}, r"'X'.*shape"),
        (lambda n, g: {"X": np.zeros((n, 1)), "Y": np.zeros(n)}, r"'X'.*shape"),
        (lambda n, g: {"X": np.zeros(n), "Y": np.where(np.arange(n) == 3, np.nan, 0.0)}, r"'Y'.*row 3"),
        (lambda n, g: {"X": np.full(n, 1e39), "Y": np.zeros(n)}, r"'X'.*row 0"),
        (lambda n, g: {"X": np.array(["a"] * n), "Y": np.zeros(n)}, r"'X'.*real numbers"),
        (lambda n, g: [np.zeros(n)], "mapping"),
    ],
)
def test_function_generator_rejects_bad_output(function, message: str) -> None:
    gen = FunctionConditionGenerator(function, ("X", "Y"))
    with pytest.raises(DataError, match=message) as info:
        gen.generate(5, _gen(0))
    assert "<lambda>" in str(info.value)  # the function is named


def test_function_generator_names_the_function_and_checks_keys() -> None:
    def my_conditions(n: int, generator: torch.Generator) -> dict[str, np.ndarray]:
        return {"X": np.zeros(n)}

    with pytest.raises(DataError, match=r"my_conditions.*\['Y'\]"):
        FunctionConditionGenerator(my_conditions, ["X", "Y"]).generate(3, _gen(0))
    with pytest.raises(ConfigError, match="distinct"):
        FunctionConditionGenerator(my_conditions, ["X", "X"])
    with pytest.raises(ConfigError, match="callable"):
        FunctionConditionGenerator(3, ["X"])  # type: ignore[arg-type]
