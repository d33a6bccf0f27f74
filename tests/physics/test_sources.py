"""Decay positions, times and directions against their analytic distributions.

Every statistical check is a chi-square at a fixed p-value (P_MIN) with its degrees of
freedom, or a 5-sigma bound from the sampling error; seeds are fixed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import stats

from gansim.errors import ConfigError, DataError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.isotopes import ISOTOPES
from gansim.physics.sources import (
    ActivityImageSource,
    BoxSource,
    DecayTimes,
    PointSource,
    SphereSource,
    annihilation_directions,
    isotropic_directions,
    positron_range_displacements,
    truncated_exponential_scale,
)
from gansim.units import MBq, deg, ms, s

P_MIN = 1e-4


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _chi2_p(observed: np.ndarray, expected: np.ndarray, dof: int) -> float:
    observed, expected = np.asarray(observed, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return float(stats.chi2.sf(np.sum((observed - expected) ** 2 / expected), dof))


def _uniform_p(values: np.ndarray, lo: float, hi: float, bins: int = 20) -> float:
    """p-value of a chi-square test that ``values`` are uniform on [lo, hi)."""
    counts, _ = np.histogram(values, bins=bins, range=(lo, hi))
    assert counts.sum() == len(values), "values outside the expected range"
    return _chi2_p(counts, np.full(bins, len(values) / bins), bins - 1)


def _cdf_p(values: np.ndarray, cdf, edges_q: int = 20) -> float:
    """Chi-square p-value of ``values`` against a continuous CDF, in equal-probability bins."""
    u = cdf(np.asarray(values, dtype=np.float64))
    return _uniform_p(u, 0.0, 1.0 + 1e-12, edges_q)


# -- directions ---------------------------------------------------------------------------
def test_isotropic_directions_are_unit_and_uniform_on_the_sphere() -> None:
    n = 400_000
    d = isotropic_directions(n, _gen(1), "cpu")
    assert d.dtype == torch.float32 and d.shape == (n, 3)
    v = d.double().numpy()
    assert np.abs(np.linalg.norm(v, axis=1) - 1).max() < 1e-6
    # each component of an isotropic unit vector is uniform on [-1, 1]; phi uniform
    for axis in range(3):
        assert _uniform_p(v[:, axis], -1.0, 1.0 + 1e-9) > P_MIN
    assert _uniform_p(np.arctan2(v[:, 1], v[:, 0]), -np.pi, np.pi + 1e-9) > P_MIN
    assert np.all(np.abs(v.mean(axis=0)) < 5 * math.sqrt(1 / 3 / n))


def test_back_to_back_when_acollinearity_is_zero() -> None:
    d1, d2 = annihilation_directions(1000, _gen(2), "cpu", acollinearity_fwhm=0.0)
    assert torch.equal(d2, -d1)
    with pytest.raises(ConfigError, match="acollinearity"):
        annihilation_directions(10, _gen(2), "cpu", acollinearity_fwhm=-1.0)


def test_acollinearity_angle_is_rayleigh_with_the_given_fwhm() -> None:
    n, fwhm = 300_000, 0.5 * deg
    d1, d2 = annihilation_directions(n, _gen(3), "cpu", acollinearity_fwhm=fwhm)
    assert d1.dtype == d2.dtype == torch.float32
    a, b = d1.double().numpy(), d2.double().numpy()
    assert np.abs(np.linalg.norm(b, axis=1) - 1).max() < 1e-6
    # angle between d2 and -d1, from the cross product (acos loses it near 180 degrees in float)
    delta = np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), -np.sum(a * b, axis=1))
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    # two independent N(0, sigma) components perpendicular to -d1: delta ~ Rayleigh(sigma)
    assert _cdf_p(delta, lambda x: 1 - np.exp(-(x**2) / (2 * sigma**2))) > P_MIN
    # delta^2 / (2 sigma^2) ~ Exp(1): its mean has relative standard error 1 / sqrt(n)
    assert abs(np.mean(delta**2) / (2 * sigma**2) - 1) < 5 / math.sqrt(n)
    # projected onto a plane through d1, the angle is N(0, sigma): FWHM = 2.355 sigma
    e = np.cross(a, np.array([0.0, 0.0, 1.0]))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    proj = np.arcsin(np.clip(np.sum(b * e, axis=1), -1, 1))
    assert abs(np.mean(proj**2) / sigma**2 - 1) < 5 * math.sqrt(2 / n)
    assert _cdf_p(proj, lambda x: stats.norm.cdf(x, scale=sigma)) > P_MIN


# -- simple position samplers --------------------------------------------------------------
def test_point_source_repeats_its_centre() -> None:
    p = PointSource([1.0, -2.0, 3.5]).sample(7, _gen(0))
    assert p.dtype == torch.float32 and p.shape == (7, 3)
    assert torch.equal(p, torch.tensor([[1.0, -2.0, 3.5]]).expand(7, 3))
    with pytest.raises(ConfigError, match="point source centre"):
        PointSource([1.0, 2.0])


def test_box_source_is_uniform_in_its_rotated_box() -> None:
    n = 400_000
    center, size = np.array([10.0, -5.0, 30.0]), np.array([20.0, 8.0, 4.0])
    rot = rotation_matrix([1.0, 1.0, 0.3], 0.8)
    p = BoxSource(center, size, rotation=rot).sample(n, _gen(4)).double().numpy()
    local = (p - center) @ rot  # rot^T (p - c), row-wise
    assert np.all(np.abs(local) <= size / 2 + 1e-4)
    counts, _ = np.histogramdd(local, bins=4, range=[(-h, h + 1e-3) for h in size / 2])
    assert _chi2_p(counts.ravel(), np.full(64, n / 64), 63) > P_MIN
    flat = BoxSource([0, 0, 0], [10.0, 10.0, 0.0]).sample(100, _gen(4))
    assert torch.all(flat[:, 2] == 0)  # a plane source
    with pytest.raises(ConfigError, match="box source size"):
        BoxSource([0, 0, 0], [1.0, -1.0, 1.0])
    with pytest.raises(ConfigError, match="box source rotation"):
        BoxSource([0, 0, 0], [1.0, 1.0, 1.0], rotation=np.diag([1.0, 2.0, 1.0]))


def test_sphere_source_is_uniform_in_the_ball() -> None:
    n, radius = 400_000, 25.0
    center = np.array([-3.0, 7.0, 1.0])
    p = SphereSource(center, radius).sample(n, _gen(5)).double().numpy() - center
    r = np.linalg.norm(p, axis=1)
    assert r.max() <= radius * (1 + 1e-6)
    assert _uniform_p((r / radius) ** 3, 0.0, 1.0 + 1e-6) > P_MIN  # volume fraction inside r
    assert _uniform_p(p[:, 2] / r, -1.0, 1.0 + 1e-9) > P_MIN
    with pytest.raises(ConfigError, match="sphere source radius"):
        SphereSource(center, 0.0)


# -- activity images ----------------------------------------------------------------------
def _oblique_geometry(shape: tuple[int, int, int]) -> ImageGeometry:
    """Anisotropic spacing, direction cosines that are a rotation, an origin, and a placement."""
    return ImageGeometry(
        shape,
        np.array([1.0, 2.0, 3.0]),
        origin=np.array([-5.0, 3.0, 10.0]),
        direction=rotation_matrix([1.0, 2.0, 3.0], 0.7),
        translation=np.array([20.0, -30.0, 40.0]),
        rotation=rotation_matrix("z", 0.4) @ rotation_matrix("x", -0.3),
    )


def test_activity_image_sampling_follows_the_image_in_an_oblique_anisotropic_geometry() -> None:
    rng = np.random.default_rng(6)
    shape = (6, 5, 4)
    activity = rng.integers(0, 10, size=shape).astype(np.float32)
    activity[0, 0, 0], activity[5, 4, 3], activity[2, 3, 1] = 0.0, 25.0, 0.0
    geometry = _oblique_geometry(shape)
    source = ActivityImageSource(activity, geometry)
    assert source.total_activity == float(activity.sum()) and source.n_active == int((activity > 0).sum())

    n = 1_000_000
    p = source.sample(n, _gen(7))
    assert p.dtype == torch.float32 and p.shape == (n, 3)
    c = geometry.world_to_index(p.double().numpy())
    voxel = np.floor(c + 0.5).astype(np.int64)
    inside = np.all((voxel >= 0) & (voxel < np.array(shape)), axis=1)
    flat = np.ravel_multi_index(tuple(voxel[inside].T), shape)
    counts = np.bincount(flat, minlength=activity.size)
    active = activity.ravel() > 0
    # float32 positions (|p| < 100 mm: error < 1e-5 mm) put at most ~1e-5 of the samples
    # across a voxel face; a zero voxel or the outside may receive those, no more.
    assert (n - inside.sum()) + counts[~active].sum() <= 1e-4 * n
    expected = n * activity.ravel()[active] / activity.sum()
    assert _chi2_p(counts[active], expected, int(active.sum()) - 1) > P_MIN
    # uniform inside each voxel: the continuous index minus the voxel index is U[-0.5, 0.5)
    fraction = c - voxel
    for axis in range(3):
        assert _uniform_p(fraction[:, axis], -0.5, 0.5 + 1e-6) > P_MIN


def test_activity_image_with_more_than_2_to_the_24_active_voxels() -> None:
    # torch.multinomial stops at 2^24 categories: this image has more active voxels, and
    # its hottest voxel is the last one (flat index > 2^24).
    shape = (257, 256, 256)
    assert np.prod(shape) > 2**24
    slab = (1 + np.arange(shape[0]) % 3).astype(np.float32)
    activity = np.empty(shape, dtype=np.float32)
    activity[...] = slab[:, None, None]
    hot = 0.01 * float(activity.sum(dtype=np.float64))
    activity[-1, -1, -1] = hot
    source = ActivityImageSource(activity, ImageGeometry(shape, np.ones(3)))
    assert source.n_active == activity.size
    n = 200_000
    voxel = np.floor(source.sample(n, _gen(8)).double().numpy() + 0.5).astype(np.int64)
    total = float(activity.sum(dtype=np.float64))
    slab_sum = activity.sum(axis=(1, 2), dtype=np.float64)
    counts = np.bincount(voxel[:, 0], minlength=shape[0])
    assert _chi2_p(counts, n * slab_sum / total, shape[0] - 1) > P_MIN
    hits = int(np.sum(np.all(voxel == np.array(shape) - 1, axis=1)))
    p_hot = hot / total
    assert abs(hits - n * p_hot) < 5 * math.sqrt(n * p_hot * (1 - p_hot))
    del source, activity


def test_sparse_activity_image_past_2_to_the_24_voxels() -> None:
    shape = (512, 512, 80)  # 21 M voxels, all zero but three past flat index 2^24
    activity = np.zeros(shape, dtype=np.float32)
    hot = [(500, 3, 7), (511, 511, 79), (420, 100, 0)]
    weights = np.array([1.0, 2.0, 3.0])
    for v, w in zip(hot, weights):
        assert np.ravel_multi_index(v, shape) > 2**24
        activity[v] = w
    source = ActivityImageSource(activity, ImageGeometry(shape, np.array([0.5, 0.5, 2.0])))
    assert source.n_active == 3 and source.total_activity == 6.0
    n = 60_000
    p = source.sample(n, _gen(9)).double().numpy()
    voxel = np.floor(p / np.array([0.5, 0.5, 2.0]) + 0.5).astype(np.int64)
    labels = [int(np.sum(np.all(voxel == np.array(v), axis=1))) for v in hot]
    assert sum(labels) >= n - 1e-4 * n
    assert _chi2_p(labels, n * weights / weights.sum(), 2) > P_MIN
    del source, activity


def test_activity_image_rejects_bad_images() -> None:
    g = ImageGeometry((2, 2, 2), np.ones(3))
    good = np.ones((2, 2, 2))
    with pytest.raises(DataError, match=r"non-finite.*first at \[i, j, k\] = \(1, 0, 1\)"):
        ActivityImageSource(np.where(np.arange(8).reshape(2, 2, 2) == 5, np.nan, good), g)
    with pytest.raises(DataError, match="negative voxels"):
        ActivityImageSource(-good, g)
    with pytest.raises(DataError, match="all zero"):
        ActivityImageSource(0 * good, g)
    with pytest.raises(DataError, match="differs from its geometry"):
        ActivityImageSource(np.ones((2, 2, 3)), g)
    with pytest.raises(DataError, match="3-D"):
        ActivityImageSource(np.ones((2, 4)), g)


@pytest.mark.parametrize("suffix", [".mhd", ".nii.gz", ".nrrd"])
def test_activity_image_from_file_keeps_index_order_and_header_geometry(tmp_path: Path, suffix: str) -> None:
    shape = (7, 5, 3)
    spacing, origin = (1.5, 2.0, 2.5), (-10.0, 4.0, 7.0)
    direction = rotation_matrix([0.2, 1.0, -0.5], 0.6)
    image = sitk.Image(list(shape), sitk.sitkFloat32)  # ITK size is (x, y, z) = (i, j, k)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction.ravel().tolist())
    hot = {(6, 1, 0): 1.0, (0, 4, 2): 2.0, (3, 2, 1): 5.0}
    for v, w in hot.items():
        image.SetPixel(v, w)  # ITK index (i, j, k): independent of the array transpose
    path = tmp_path / f"activity{suffix}"
    sitk.WriteImage(image, str(path))

    translation, rotation = np.array([5.0, 0.0, -3.0]), rotation_matrix("y", 0.25)
    source = ActivityImageSource.from_file(path, translation=translation, rotation=rotation)
    expected = ImageGeometry(shape, np.array(spacing), np.array(origin), direction, translation, rotation)
    assert source.shape == shape
    np.testing.assert_allclose(source.geometry.index_to_world_matrix, expected.index_to_world_matrix, atol=1e-5)
    np.testing.assert_allclose(source.geometry.index_to_world_offset, expected.index_to_world_offset, atol=1e-4)
    n = 30_000
    voxel = np.floor(expected.world_to_index(source.sample(n, _gen(10)).double().numpy()) + 0.5).astype(np.int64)
    counts = [int(np.sum(np.all(voxel == np.array(v), axis=1))) for v in hot]
    assert sum(counts) >= n - 1e-3 * n
    w = np.array(list(hot.values()))
    assert _chi2_p(counts, n * w / w.sum(), 2) > P_MIN


def test_activity_image_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        ActivityImageSource.from_file(tmp_path / "missing.mhd")
    flat = tmp_path / "flat.mhd"
    sitk.WriteImage(sitk.Image([4, 4], sitk.sitkFloat32), str(flat))
    with pytest.raises(DataError, match="is 2-D .* expected a 3-D image"):
        ActivityImageSource.from_file(flat)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read"):
        ActivityImageSource.from_file(junk)


# -- decay times --------------------------------------------------------------------------
def test_expected_count_in_gansim_units() -> None:
    assert math.isclose(DecayTimes(1 * MBq, None, 0.0, 1 * ms).expected_count, 1000.0, rel_tol=1e-12)
    tc = ISOTOPES["Tc99m"]
    six_hours = tc.half_life  # one half-life: half of A0 * tau decays
    times = DecayTimes(2 * MBq, tc.half_life, 5.0, 5.0 + six_hours)
    assert math.isclose(times.expected_count, 2e6 / s * tc.half_life / math.log(2) * 0.5, rel_tol=1e-12)
    for bad in [(-1.0, None, 0.0, 1.0), (1.0, 0.0, 0.0, 1.0), (1.0, None, 2.0, 1.0), (1.0, None, 0.0, math.inf)]:
        with pytest.raises(ConfigError):
            DecayTimes(*bad)
    with pytest.raises(ConfigError, match="chunk size"):
        next(DecayTimes(1.0, None, 0.0, 1.0).chunks(0, _gen(0)))


def test_decay_times_count_and_exponential_shape() -> None:
    half_life, duration = 2.0 * s, 4.0 * s  # two half-lives: the rate falls to a quarter
    activity = 60_000 / s
    times = DecayTimes(activity, half_life, 1.0 * s, 1.0 * s + duration)
    chunks = list(times.chunks(10_000, _gen(11)))
    assert all(len(c) == 10_000 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 10_000
    t = torch.cat(chunks)
    assert t.dtype == torch.float64
    t = t.numpy()
    assert np.all(np.diff(t) > 0) and t[0] >= 1.0 * s and t[-1] <= 1.0 * s + duration
    mu = times.expected_count
    assert math.isclose(mu, activity * half_life / math.log(2) * 0.75, rel_tol=1e-12)
    assert abs(len(t) - mu) < 5 * math.sqrt(mu)  # Poisson count
    # counts in 50 time bins are independent Poisson with means Lambda(b_i+1) - Lambda(b_i)
    edges = np.linspace(times.t_start, times.t_end, 51)
    lam = np.array([times.cumulative(e) for e in edges])
    counts, _ = np.histogram(t, bins=edges)
    assert _chi2_p(counts, np.diff(lam), 50) > P_MIN


def test_counts_in_disjoint_windows_are_poisson() -> None:
    windows, per_window = 5000, 20.0
    times = DecayTimes(per_window / (1 * ms), None, 0.0, windows * ms)
    t = torch.cat(list(times.chunks(30_000, _gen(12)))).numpy()
    counts = np.bincount((t // ms).astype(np.int64), minlength=windows)[:windows]
    # dispersion: sum (n - mu)^2 / mu ~ chi2(windows) for independent Poisson(mu) counts
    dispersion = float(np.sum((counts - per_window) ** 2 / per_window))
    assert min(stats.chi2.sf(dispersion, windows), stats.chi2.cdf(dispersion, windows)) > P_MIN / 2
    # the count histogram against the Poisson pmf, tails merged so every bin expects >= 5
    k = np.arange(9, 33)
    pmf = stats.poisson.pmf(k, per_window)
    observed = [np.sum(counts <= 8)] + [np.sum(counts == x) for x in k] + [np.sum(counts >= 33)]
    expected = windows * np.concatenate([[stats.poisson.cdf(8, per_window)], pmf, [stats.poisson.sf(32, per_window)]])
    assert _chi2_p(np.array(observed), expected, len(expected) - 1) > P_MIN


def test_chunking_is_reproducible_for_a_given_chunk_size_and_seed() -> None:
    times = DecayTimes(3_000 / s, 1.5 * s, 0.0, 2.0 * s)
    a = list(times.chunks(700, _gen(13)))
    b = list(times.chunks(700, _gen(13)))
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    c = torch.cat(list(times.chunks(700, _gen(14))))
    assert not torch.equal(torch.cat(a)[: len(c)], c[: len(torch.cat(a))])
    # another chunk size is another draw of the same process: same count law
    d = torch.cat(list(times.chunks(64, _gen(13))))
    mu = times.expected_count
    assert abs(len(d) - mu) < 5 * math.sqrt(mu) and bool(torch.all(torch.diff(d) > 0))


# -- positron range -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["F18", "Ga68"])
def test_positron_range_has_the_published_mean_and_max(name: str) -> None:
    iso = ISOTOPES[name]
    n = 300_000
    d = positron_range_displacements(iso, n, _gen(15), "cpu")
    assert d.dtype == torch.float32 and d.shape == (n, 3)
    v = d.double().numpy()
    r = np.linalg.norm(v, axis=1)
    top, mean = iso.positron_max_range_water, iso.positron_mean_range_water
    assert r.max() <= top * (1 + 1e-6)
    assert abs(r.mean() - mean) < 5 * r.std() / math.sqrt(n)
    scale = truncated_exponential_scale(mean, top)
    assert _cdf_p(r, lambda x: np.expm1(-x / scale) / np.expm1(-top / scale)) > P_MIN
    assert _uniform_p(v[:, 2] / r, -1.0, 1.0 + 1e-9) > P_MIN  # isotropic
    # scaled by 1 / density
    dense = positron_range_displacements(iso, n, _gen(15), "cpu", density=torch.full((n,), 2.0))
    r2 = np.linalg.norm(dense.double().numpy(), axis=1)
    assert abs(r2.mean() - mean / 2) < 5 * r2.std() / math.sqrt(n)
    assert r2.max() <= top / 2 * (1 + 1e-6)


def test_positron_range_errors() -> None:
    with pytest.raises(ConfigError, match="Tc99m emits no positrons"):
        positron_range_displacements(ISOTOPES["Tc99m"], 10, _gen(0), "cpu")
    with pytest.raises(ConfigError, match="shape"):
        positron_range_displacements(ISOTOPES["F18"], 10, _gen(0), "cpu", density=torch.ones(3))
    with pytest.raises(ConfigError, match="mean < max / 2"):
        truncated_exponential_scale(1.5, 2.0)
