"""Radiomics-lite features against hand-computed GLCMs, numpy/scipy first-order statistics, and the FRD's basic properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gansim.errors import ConfigError, DataError
from gansim.metrics.radiomics_lite import (
    FIRST_ORDER_FEATURES,
    GLCM_FEATURES,
    RadiomicsSettings,
    feature_names,
    frd,
    glcm_matrices,
    radiomics_features,
    standardise,
    transform_features,
)


def named(features: np.ndarray, channels: int = 1) -> list[dict[str, float]]:
    names = feature_names(channels)
    return [dict(zip(names, row)) for row in features]


def test_glcm_counts_match_hand_counted_matrices() -> None:
    levels = np.array([[[0, 0, 1], [0, 1, 1], [2, 2, 2]]])
    counts = glcm_matrices(levels, np.ones_like(levels, dtype=bool), 3)
    # symmetric pair counts, counted by hand for the offsets 0, 45 (up-right), 90 (up), 135 (up-left) degrees
    expected = [
        [[2, 2, 0], [2, 2, 0], [0, 0, 4]],
        [[2, 0, 0], [0, 2, 2], [0, 2, 0]],
        [[2, 1, 1], [1, 2, 2], [1, 2, 0]],
        [[0, 2, 1], [2, 0, 1], [1, 1, 0]],
    ]
    np.testing.assert_array_equal(counts[0], np.array(expected, dtype=float))


def test_glcm_features_of_a_checkerboard_by_hand() -> None:
    # levels 0/1 with 2 gray levels: horizontal and vertical pairs always differ, diagonal pairs never
    img = np.array([[[-0.5, 0.5], [0.5, -0.5]]])
    f = named(radiomics_features(img, RadiomicsSettings(gray_levels=2, mask_threshold=-1.0))[0])[0]
    # 0 and 90 degrees: p = 1/2 off the diagonal -> contrast 1, homogeneity 1/2, ASM 1/2, entropy 1, correlation -1
    # 45 and 135 degrees: all mass on one diagonal cell -> contrast 0, homogeneity 1, ASM 1, entropy 0, correlation 1 (constant)
    assert f["glcm_contrast"] == pytest.approx(0.5)
    assert f["glcm_dissimilarity"] == pytest.approx(0.5)
    assert f["glcm_homogeneity"] == pytest.approx(0.75)
    assert f["glcm_asm"] == pytest.approx(0.75)
    assert f["glcm_entropy"] == pytest.approx(0.5)
    assert f["glcm_correlation"] == pytest.approx(0.0)
    # first order: values -0.5, 0.5, 0.5, -0.5; energy = sum (x + 1)^2 = 2 (0.25 + 2.25)
    assert f["mean"] == pytest.approx(0.0) and f["std"] == pytest.approx(0.5)
    assert f["energy"] == pytest.approx(5.0) and f["range"] == pytest.approx(1.0)
    assert f["entropy"] == pytest.approx(1.0) and f["uniformity"] == pytest.approx(0.5)


def test_constant_image_has_the_textbook_glcm_values() -> None:
    img = np.full((2, 1, 8, 8), 0.3)
    rows = named(radiomics_features(img)[0])
    for f in rows:
        assert f["glcm_contrast"] == 0.0 and f["glcm_dissimilarity"] == 0.0
        assert f["glcm_homogeneity"] == pytest.approx(1.0) and f["glcm_asm"] == pytest.approx(1.0)
        assert f["glcm_correlation"] == pytest.approx(1.0) and f["glcm_entropy"] == 0.0
        assert f["std"] == 0.0 and f["skewness"] == 0.0 and f["kurtosis"] == 0.0 and f["range"] == 0.0
        assert f["entropy"] == 0.0 and f["uniformity"] == pytest.approx(1.0)


def test_first_order_features_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(3)
    settings = RadiomicsSettings(histogram_bins=20, mask_threshold=-0.5)
    images = np.clip(rng.normal(0.0, 0.6, size=(6, 1, 12, 10)), -1.2, 1.0)  # some values below the window
    images[:, :, :3] = -1.0  # background rows, out of the mask
    feats = named(radiomics_features(images, settings)[0])
    for img, f in zip(images[:, 0], feats):
        v = img[img > settings.mask_threshold]
        assert f["mean"] == pytest.approx(v.mean(), rel=1e-12)
        assert f["std"] == pytest.approx(v.std(), rel=1e-12)
        assert f["skewness"] == pytest.approx(stats.skew(v), rel=1e-9)
        assert f["kurtosis"] == pytest.approx(stats.kurtosis(v), rel=1e-9)
        for q in (10, 50, 90):
            assert f[f"p{q}"] == pytest.approx(np.percentile(v, q), rel=1e-12)
        hist, _ = np.histogram(np.clip(v, -1.0, 1.0 - 1e-12), bins=20, range=(-1.0, 1.0))
        p = hist / hist.sum()
        assert f["entropy"] == pytest.approx(stats.entropy(p, base=2), rel=1e-12)
        assert f["uniformity"] == pytest.approx(np.sum(p**2), rel=1e-12)
        assert f["energy"] == pytest.approx(np.sum((v + 1.0) ** 2), rel=1e-12)
        assert f["range"] == pytest.approx(np.ptp(v), rel=1e-12)


def test_glcm_only_counts_pairs_inside_the_mask() -> None:
    rng = np.random.default_rng(5)
    region = rng.uniform(-0.8, 0.9, size=(4, 5))
    padded = np.full((1, 1, 8, 9), -1.0)
    padded[0, 0, 2:6, 3:8] = region
    settings = RadiomicsSettings(mask_threshold=-0.9)
    masked = radiomics_features(padded, settings)[0]
    cropped = radiomics_features(region[None, None], settings)[0]  # no background: every pixel is in the mask
    np.testing.assert_allclose(masked, cropped, rtol=1e-12, atol=1e-12)


def test_blank_image_is_described_over_all_pixels_and_counted() -> None:
    images = np.full((3, 1, 8, 8), -1.0)
    images[0, 0, 2:5, 2:5] = 0.5
    feats, info = radiomics_features(images)
    assert info["n_empty_mask"] == 2
    f = named(feats)
    assert f[1]["mean"] == -1.0 and f[1]["energy"] == 0.0 and np.all(np.isfinite(feats))
    assert f[0]["mean"] == pytest.approx(0.5)


def test_multichannel_names_and_shapes() -> None:
    rng = np.random.default_rng(1)
    feats, _ = radiomics_features(rng.uniform(-1, 1, size=(4, 2, 8, 8)))
    names = feature_names(2)
    per_channel = len(FIRST_ORDER_FEATURES) + len(GLCM_FEATURES)
    assert feats.shape == (4, 2 * per_channel) and len(names) == 2 * per_channel
    assert names[0] == "mean_c0" and names[per_channel] == "mean_c1"
    one, _ = radiomics_features(rng.uniform(-1, 1, size=(4, 8, 8)))  # (N, H, W) is one channel
    assert one.shape == (4, per_channel)


def test_chunked_processing_gives_the_same_features(monkeypatch) -> None:
    images = np.random.default_rng(8).uniform(-1, 1, size=(11, 2, 8, 8))
    images[3] = -1.0  # a blank image inside a later chunk
    whole, info = radiomics_features(images)
    monkeypatch.setattr("gansim.metrics.radiomics_lite._CHUNK_PIXELS", 3 * 64)  # chunks of 3 images
    chunked, info_chunked = radiomics_features(images)
    np.testing.assert_array_equal(chunked, whole)
    assert info_chunked == info and info["n_empty_mask"] == 1


def test_transforms_and_standardisation() -> None:
    names = feature_names(1)
    x = np.arange(2 * len(names), dtype=float).reshape(2, -1)
    t = transform_features(x, names)
    for col, name in enumerate(names):
        if name in ("energy", "glcm_contrast", "glcm_dissimilarity"):
            np.testing.assert_allclose(t[:, col], np.log1p(x[:, col]))
        elif name == "kurtosis":
            np.testing.assert_allclose(t[:, col], np.log(x[:, col] + 3.0))
        else:
            np.testing.assert_array_equal(t[:, col], x[:, col])
    ref = np.array([[1.0, 5.0], [3.0, 5.0]])
    z_ref, z_other = standardise(ref, np.array([[2.0, 7.0]]))
    pooled = np.array([np.std([1.0, 3.0, 2.0]), np.std([5.0, 5.0, 7.0])])  # the spread of both sets together
    np.testing.assert_allclose(z_ref, [[-1.0 / pooled[0], 0.0], [1.0 / pooled[0], 0.0]])
    np.testing.assert_allclose(z_other, [[0.0, 2.0 / pooled[1]]])  # centred on the reference's mean
    # a column (nearly) constant in the reference cannot blow up: |z| stays of order 1 whatever its reference spread
    tight = standardise(np.array([[0.0], [1e-6]]), np.array([[1.0], [1.0]]))[1]
    assert np.abs(tight).max() < 2
    assert np.allclose(standardise(np.ones((3, 1)), np.ones((2, 1)))[1], 0.0)  # constant everywhere: only centred


def blobs(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16]
    r = rng.uniform(3, 6, n)[:, None, None]
    inside = (yy - 8) ** 2 + (xx - 8) ** 2 < r**2
    img = np.where(inside, rng.uniform(0.0, 0.8, n)[:, None, None] + rng.normal(0, 0.1, (n, 16, 16)), -1.0)
    return np.clip(img + shift * inside, -1, 1)[:, None]


def test_frd_zero_for_identical_sets_and_larger_for_a_shifted_set() -> None:
    real, fresh, shifted = blobs(200, 0), blobs(200, 1), blobs(200, 2, shift=0.3)
    same = frd(real, real)
    assert same["value"] == pytest.approx(0.0, abs=1e-8)
    assert same["n_real"] == 200 and same["settings"]["features"] == feature_names(1)
    assert frd(real, shifted)["value"] > frd(real, fresh)["value"]


def test_bad_input_and_settings_are_refused() -> None:
    bad = np.zeros((2, 1, 8, 8))
    bad[1, 0, 3, 3] = np.nan
    with pytest.raises(DataError, match=r"fake images: NaN or Inf in image\(s\) \[1\]"):
        frd(np.zeros((2, 1, 8, 8)), bad)
    with pytest.raises(DataError, match="expected .N, C, H, W."):
        radiomics_features(np.zeros(5))
    with pytest.raises(ConfigError, match="window"):
        RadiomicsSettings(window=(1.0, -1.0))
    with pytest.raises(ConfigError, match="gray_levels"):
        RadiomicsSettings(gray_levels=1)
