"""Image-quality metrics: SSIM/MS-SSIM pairs, the local encoder, FD/KID, the real-real floor, Inception by path.

Data: 32 x 32 one-channel images on the [-1, 1] scale, three classes (disk, square, ring) of
random size, position and brightness with a little noise. "Fake" images are the same generator
blurred and brightened; a "fresh" set is a new real sample. The encoder is trained for 2 epochs.

Statistical bounds. KID is unbiased, so for two independent samples of one distribution its
subset values scatter around 0 with standard deviation ``std``; the mean of (correlated,
overlapping) subset values has a spread of at most ``std``, so |mean| <= 3 std is a >= 3-sigma
bound. When both sides are the *same* finite set S of n images, the subsets are independent draws
from S: within a subset the pairs are distinct images (expected kernel A, the mean of k over
distinct pairs of S), but an x-y pair is one image with itself with probability 1/n (kernel D, the
mean of k(s, s)), so E[KID] = -2 (D - A) / n exactly; that is the centre of the bound then.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from gansim.errors import ConfigError, DataError, ModelFileError, OutputExistsError
from gansim.metrics.fpd_kpd import frechet_distance
from gansim.metrics.image_encoder import ImageEncoder, fit_encoder, load_encoder, save_encoder
from gansim.metrics.image_quality import MS_SSIM_MIN_SIZE, image_quality, kid, ms_ssim_scales, pair_similarity
from gansim.metrics.radiomics_lite import frechet_distance_of_features

NAMES = ["disk", "square", "ring"]
FAST = {"n_pairs": 200, "kid_subsets": 40, "kid_subset_size": 50}


def shapes(n: int, seed: int, size: int = 32, blur: float = 0.0, brighten: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, size, size) float32 images in [-1, 1] and (n,) labels 0 disk, 1 square, 2 ring."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cy = (size / 2 + rng.uniform(-3, 3, n))[:, None, None]
    cx = (size / 2 + rng.uniform(-3, 3, n))[:, None, None]
    r = (size * rng.uniform(0.2, 0.3, n))[:, None, None]
    d = np.hypot(yy - cy, xx - cx)
    square = (np.abs(yy - cy) < 0.8 * r) & (np.abs(xx - cx) < 0.8 * r)
    ring = (d < r) & (d > 0.6 * r)
    label = y[:, None, None]
    inside = np.where(label == 0, d < r, np.where(label == 1, square, ring))
    img = np.where(inside, rng.uniform(0.3, 0.9, n)[:, None, None] + rng.normal(0, 0.05, (n, size, size)), -1.0)
    if blur:
        img = gaussian_filter(img, (0, blur, blur))
    return np.clip(img + brighten, -1, 1)[:, None].astype(np.float32), y


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": shapes(360, 0),
        "real": shapes(240, 1),
        "fresh": shapes(240, 2),
        "fake": shapes(240, 3, blur=1.0, brighten=0.2),
    }


@pytest.fixture(scope="module")
def encoder(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> ImageEncoder:
    return fit_encoder(*data["train"], epochs=2, seed=0, feature_dim=64)


def distance_values(block: dict) -> dict[str, float]:
    return {"encoder_fd": block["encoder_fd"]["value"], "encoder_kid": block["encoder_kid"]["mean"], "radiomics_fd": block["radiomics_fd"]["value"]}


# ----------------------------------------------------------------------------------------------
# FD / KID


def same_set_kid_bias(features: np.ndarray) -> float:
    """E[KID] of subsets drawn independently from one finite set: -2 (D - A) / n (module docstring)."""
    n, d = features.shape
    kernel = (features @ features.T / d + 1.0) ** 3
    diag = np.trace(kernel) / n
    off = (kernel.sum() - np.trace(kernel)) / (n * (n - 1))
    return -2.0 * (diag - off) / n


def test_identical_sets_give_fd_and_kid_about_zero(data, encoder) -> None:
    real, labels = data["real"]
    result = image_quality(real, labels, real.copy(), labels.copy(), encoder=encoder, class_names=NAMES, **FAST)
    feats = encoder.features(real)
    scopes = [("overall", np.ones(len(labels), bool))] + [(name, labels == k) for k, name in enumerate(NAMES)]
    for name, rows in scopes:
        block = result["overall"] if name == "overall" else result["per_class"][name]
        assert block["encoder_fd"]["value"] == pytest.approx(0.0, abs=1e-6)
        assert block["radiomics_fd"]["value"] == pytest.approx(0.0, abs=1e-6)
        k = block["encoder_kid"]
        assert abs(k["mean"] - same_set_kid_bias(feats[rows])) <= 3 * k["std"], (name, k)
    assert result["overall"]["classifier_accuracy"]["real"] == result["overall"]["classifier_accuracy"]["fake"]


def test_blurred_brightened_fake_scores_worse_than_a_fresh_real_sample(data, encoder) -> None:
    real, labels = data["real"]
    fake = image_quality(real, labels, *data["fake"], encoder=encoder, class_names=NAMES, **FAST)
    fresh = image_quality(real, labels, *data["fresh"], encoder=encoder, class_names=NAMES, **FAST)
    for scope in ["overall", *(f"per_class/{n}" for n in NAMES)]:
        get = (lambda r: r["overall"]) if scope == "overall" else (lambda r, n=scope.split("/")[1]: r["per_class"][n])
        worse, better = distance_values(get(fake)), distance_values(get(fresh))
        for key in worse:
            assert worse[key] > better[key], (scope, key, worse[key], better[key])
        # an independent real sample: KID unbiased, about 0 within its spread
        k = get(fresh)["encoder_kid"]
        assert abs(k["mean"]) <= 3 * k["std"], (scope, k)
    # the fresh sample sits near the real-real floor; the fake set far above it
    floor = fake["baseline_real_real"]["overall"]["encoder_fd"]["value"]
    assert fake["overall"]["encoder_fd"]["value"] > 3 * floor
    # the encoder classifies real test images far above chance (1/3; sd of an accuracy on 240 images <= 0.033)
    assert fresh["overall"]["classifier_accuracy"]["real"]["value"] > 1 / 3 + 5 * 0.033


def test_per_class_entries_baseline_and_counts(data, encoder) -> None:
    real, labels = data["real"]
    fake, fake_labels = data["fake"]
    result = image_quality(real, labels, fake, fake_labels, encoder=encoder, class_names={0: "disk", 1: "square", 2: "ring"}, **FAST)
    json.dumps(result)  # plain data
    assert sorted(result["per_class"]) == sorted(NAMES)
    counts = result["counts"]
    assert counts["real"] == 240 and counts["fake"] == 240
    assert sum(c["real"] for c in counts["per_class"].values()) == 240
    for name, block in result["per_class"].items():
        n_real, n_fake = counts["per_class"][name]["real"], counts["per_class"][name]["fake"]
        assert block["encoder_fd"]["n_real"] == n_real and block["encoder_fd"]["n_fake"] == n_fake
        assert block["encoder_kid"]["subset_size"] == min(50, n_real, n_fake)
        assert block["ssim"]["real_fake"]["n_pairs"] == FAST["n_pairs"]
        assert block["classifier_accuracy"]["fake"]["n"] == n_fake
    assert result["overall"]["ssim"]["fake_fake"]["n_pairs"] == 3 * FAST["n_pairs"]
    base = result["baseline_real_real"]
    assert base["overall"]["encoder_fd"]["n_real_a"] + base["overall"]["encoder_fd"]["n_real_b"] == 240
    assert counts["baseline_halves"] == {"real_a": base["overall"]["encoder_fd"]["n_real_a"], "real_b": base["overall"]["encoder_fd"]["n_real_b"]}
    assert sorted(base["per_class"]) == sorted(NAMES)
    assert base["overall"]["encoder_fd"]["value"] > 0 and base["overall"]["radiomics_fd"]["value"] > 0
    ext = result["extractors"]
    assert ext["encoder"]["training"]["epochs"] == 2 and len(ext["encoder"]["weights_sha256"]) == 64
    assert ext["radiomics"]["features"][0] == "mean" and ext["radiomics"]["bins"] == 64 and ext["radiomics"]["window"] == [-1.0, 1.0]
    assert ext["inception"] == "not computed (no weights file given)"
    assert result["overall"]["inception_fd"] == {"value": None, "reason": "not computed (no weights file given)"}
    # seeded: the same call gives the same numbers
    again = image_quality(real, labels, fake, fake_labels, encoder=encoder, class_names=NAMES, **FAST)
    assert again["overall"] == result["overall"]


def test_without_encoder_the_encoder_metrics_say_why(data) -> None:
    real, labels = data["real"]
    result = image_quality(real[:60], labels[:60], real[60:120], labels[60:120], encoder=None, n_pairs=20, kid_subsets=5)
    assert result["overall"]["encoder_fd"]["value"] is None and "no encoder" in result["overall"]["encoder_fd"]["reason"]
    assert result["overall"]["classifier_accuracy"]["fake"]["value"] is None
    assert result["overall"]["radiomics_fd"]["value"] > 0
    assert sorted(result["per_class"]) == ["0", "1", "2"]


def test_images_on_a_zero_to_one_scale(data) -> None:
    real, labels = data["real"]
    unit = (real[:60] + 1.0) / 2.0
    result = image_quality(unit, labels[:60], unit[::-1].copy(), labels[:60][::-1].copy(), encoder=None, data_range=1.0, intensity_window=(0.0, 1.0), n_pairs=20, kid_subsets=5)
    assert result["extractors"]["radiomics"]["window"] == [0.0, 1.0]
    assert result["extractors"]["radiomics"]["mask_threshold"] == pytest.approx(0.025)
    assert result["extractors"]["ssim"]["data_range"] == 1.0
    assert result["overall"]["radiomics_fd"]["value"] == pytest.approx(0.0, abs=1e-6)  # the same images, reordered


def test_kid_equals_a_naive_double_loop() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(40, 4)), rng.normal(0.3, 1.0, size=(30, 4))
    got = kid(x, y, subset_size=10, n_subsets=6, seed=5)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / 4 + 1.0) ** 3

    draw = np.random.default_rng(5)
    values = []
    for _ in range(6):
        sx, sy = x[draw.choice(40, 10, replace=False)], y[draw.choice(30, 10, replace=False)]
        xx = sum(k(sx[i], sx[j]) for i in range(10) for j in range(10) if i != j) / 90
        yy = sum(k(sy[i], sy[j]) for i in range(10) for j in range(10) if i != j) / 90
        xy = sum(k(sx[i], sy[j]) for i in range(10) for j in range(10)) / 100
        values.append(xx + yy - 2 * xy)
    assert got["mean"] == pytest.approx(np.mean(values), rel=1e-10)
    assert got["std"] == pytest.approx(np.std(values), rel=1e-10)
    assert got["subset_size"] == 10 and got["n_subsets"] == 6
    assert kid(x, y, subset_size=100, n_subsets=2)["subset_size"] == 30  # cut to the smaller sample


def test_fd_agrees_with_the_eigenvalue_form_and_falls_back_to_it(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 8)), rng.normal(0.5, 2.0, size=(60, 8))
    direct = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance_of_features(x, y) == pytest.approx(direct, rel=1e-8)

    def broken(*args, **kwargs):
        raise ValueError("Imaginary component too high")

    monkeypatch.setattr("monai.metrics.fid.compute_frechet_distance", broken)
    assert frechet_distance_of_features(x, y) == pytest.approx(direct, rel=1e-12)


# ----------------------------------------------------------------------------------------------
# SSIM / MS-SSIM


def test_ssim_and_ms_ssim_of_identical_images_are_one(data, monkeypatch) -> None:
    real, _ = data["real"]
    same = pair_similarity(real[:20], real[:20].copy())
    np.testing.assert_allclose(same["ssim"], 1.0, atol=1e-6)
    np.testing.assert_allclose(same["ms_ssim"], 1.0, atol=1e-6)
    assert same["settings"]["ms_ssim_scales"] == 2
    other = pair_similarity(real[:20], real[20:40])
    assert np.all(other["ssim"] < 1.0)
    monkeypatch.setattr("gansim.metrics.image_quality._PAIR_PIXELS", 3 * 32 * 32)  # batches of 3 pairs
    batched = pair_similarity(real[:20], real[20:40])
    np.testing.assert_allclose(batched["ssim"], other["ssim"], rtol=1e-6)
    np.testing.assert_allclose(batched["ms_ssim"], other["ms_ssim"], rtol=1e-6)
    # a class made of one repeated image: every real-real pair is identical
    twins = np.repeat(real[:1], 10, axis=0)
    result = image_quality(twins, np.zeros(10, int), real[:10], np.zeros(10, int), encoder=None, n_pairs=15, kid_subsets=3)
    assert result["overall"]["ssim"]["real_real"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert result["overall"]["ssim"]["real_real"]["n_pairs"] == 15


def test_ms_ssim_scales_and_small_images() -> None:
    assert [ms_ssim_scales(s, s) for s in (16, 21, 22, 32, 44, 64, 128, MS_SSIM_MIN_SIZE - 1, MS_SSIM_MIN_SIZE, 256)] == [None, None, 2, 2, 3, 3, 4, 4, 5, 5]
    small = np.random.default_rng(0).uniform(-1, 1, size=(12, 1, 16, 16)).astype(np.float32)
    result = image_quality(small, np.arange(12) % 2, small[::-1].copy(), np.arange(12) % 2, encoder=None, n_pairs=10, kid_subsets=3)
    ms = result["overall"]["ms_ssim"]["real_fake"]
    assert ms["value"] is None and str(MS_SSIM_MIN_SIZE) in ms["reason"]
    assert result["overall"]["ssim"]["real_fake"]["n_pairs"] == 20
    assert result["extractors"]["ssim"]["kernel_size"] == 11


# ----------------------------------------------------------------------------------------------
# encoder


def test_encoder_save_load_gives_identical_features(tmp_path: Path, data, encoder) -> None:
    real, _ = data["real"]
    path = save_encoder(tmp_path / "enc", encoder)
    loaded = load_encoder(path)
    np.testing.assert_array_equal(loaded.features(real[:50], batch_size=16), encoder.features(real[:50], batch_size=16))
    assert loaded.info["weights_sha256"] == encoder.info["weights_sha256"]
    assert loaded.info["training"] == encoder.info["training"]
    with pytest.raises(OutputExistsError, match="force"):
        save_encoder(path, encoder)
    save_encoder(path, encoder, force=True)
    # a replaced weights file no longer matches the recorded hash
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path / "encoder.safetensors"))
    tensors["head.bias"] = tensors["head.bias"] + 1.0
    save_file(tensors, str(path / "encoder.safetensors"))
    with pytest.raises(ModelFileError, match="hash differs"):
        load_encoder(path)
    (path / "encoder.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_encoder(path)
    with pytest.raises(ModelFileError, match="expected a directory"):
        load_encoder(tmp_path / "missing")


def test_encoder_training_is_seeded_and_records_itself(data) -> None:
    x, y = data["train"]
    a = fit_encoder(x[:96], y[:96], epochs=1, seed=4, feature_dim=16, internal_size=16)
    b = fit_encoder(x[:96], y[:96], epochs=1, seed=4, feature_dim=16, internal_size=16)
    assert a.info["weights_sha256"] == b.info["weights_sha256"]
    t = a.info["training"]
    assert t["n_train"] + t["n_holdout"] == 96 and t["epochs"] == 1 and 0.0 <= t["holdout_accuracy"] <= 1.0
    assert a.features(x[:5]).shape == (5, 16)
    assert a.features(np.repeat(np.repeat(x[:3], 2, axis=2), 2, axis=3)).shape == (3, 16)  # 64 x 64 input, pooled
    with pytest.raises(DataError, match="powers of 2"):
        a.features(x[:2, :, :24, :24])
    with pytest.raises(DataError, match="channel"):
        a.features(np.repeat(x[:2], 2, axis=1))


# ----------------------------------------------------------------------------------------------
# Inception by path


class StandIn(torch.nn.Module):
    """A tiny extractor standing in for InceptionV3: checks its input, returns 4 x 4 pooled maps (48 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3 or x.shape[2] != 299 or x.shape[3] != 299:
            raise RuntimeError("expected (N, 3, 299, 299)")
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).reshape(x.shape[0], 48, 1, 1)


def test_inception_from_a_torchscript_file(tmp_path: Path, data) -> None:
    path = tmp_path / "standin.pt"
    with warnings.catch_warnings():  # recent torch deprecates TorchScript; the extractors in use are TorchScript files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(StandIn()).save(str(path))
    real, labels = data["real"]
    fake, fake_labels = data["fake"]
    result = image_quality(real[:90], labels[:90], fake[:90], fake_labels[:90], encoder=None, inception_weights=str(path), n_pairs=10, kid_subsets=10)
    inc = result["extractors"]["inception"]
    assert inc["feature_dim"] == 48 and "299" in inc["resize"] and inc["channels"] == "gray repeated to 3"
    assert inc["path"] == str(path) and len(inc["sha256"]) == 64
    overall = result["overall"]
    assert overall["inception_fd"]["value"] > result["baseline_real_real"]["overall"]["inception_fd"]["value"]
    assert np.isfinite(overall["inception_kid"]["mean"]) and overall["inception_kid"]["n_fake"] == 90
    same = image_quality(real[:90], labels[:90], real[:90], labels[:90], encoder=None, inception_weights=str(path), n_pairs=10, kid_subsets=10)
    assert same["overall"]["inception_fd"]["value"] == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ModelFileError, match="no such Inception weights file"):
        image_quality(real[:10], labels[:10], fake[:10], fake_labels[:10], encoder=None, inception_weights=str(tmp_path / "none.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torchscript archive")
    with pytest.raises(ModelFileError, match="not a TorchScript file"):
        image_quality(real[:10], labels[:10], fake[:10], fake_labels[:10], encoder=None, inception_weights=str(tmp_path / "junk.pt"))


# ----------------------------------------------------------------------------------------------
# bad input


def test_nan_and_mismatched_labels_are_refused(data, encoder) -> None:
    real, labels = data["real"]
    bad = real[:20].copy()
    bad[7, 0, 3, 3] = np.nan
    with pytest.raises(DataError, match=r"fake images: NaN or Inf in image\(s\) \[7\]"):
        image_quality(real[:20], labels[:20], bad, labels[:20], encoder=encoder)
    with pytest.raises(DataError, match=r"fake_labels: 19 label\(s\) for 20 fake images; expected one integer label per image, shape \(20,\)"):
        image_quality(real[:20], labels[:20], real[:20], labels[:19], encoder=encoder)
    with pytest.raises(DataError, match="real_labels: dtype"):
        image_quality(real[:20], labels[:20] + 0.5, real[:20], labels[:20], encoder=encoder)
    with pytest.raises(DataError, match="expected the same channels and size"):
        image_quality(real[:20], labels[:20], real[:20, :, :16, :16], labels[:20], encoder=None)
    with pytest.raises(ConfigError, match="no name for label 2"):
        image_quality(real[:20], labels[:20], real[:20], labels[:20], encoder=None, class_names={0: "a", 1: "b"})
    with pytest.raises(ConfigError, match="data_range 1.0 differs from the width 2.0 of intensity_window"):
        image_quality(real[:20], labels[:20], real[:20], labels[:20], encoder=None, data_range=1.0)
    with pytest.raises(ConfigError, match="n_pairs"):
        image_quality(real[:20], labels[:20], real[:20], labels[:20], encoder=None, n_pairs=0)
    with pytest.raises(DataError, match="NaN"):
        fit_encoder(bad, labels[:20], epochs=1, seed=0)
    with pytest.raises(DataError, match="one integer label per image"):
        fit_encoder(real[:20], labels[:19], epochs=1, seed=0)
