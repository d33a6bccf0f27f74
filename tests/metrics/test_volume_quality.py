"""Paired 3-D translation metrics: masked MAE, PSNR, 3-D SSIM, Studholme NMI, the foreground mask, evaluate_pairs."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, DataError
from gansim.io.volumes import otsu_threshold
from gansim.metrics.volume_quality import (
    evaluate_pairs,
    foreground_mask,
    masked_mae,
    nmi,
    psnr,
    ssim3d,
    ssim_kernel_size,
)

SHAPE = (20, 18, 16)


def _phantom(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> np.ndarray:
    """A smooth head-like volume: an ellipsoid of tissue (two intensities) on a dark background, plus mild texture."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    r2 = sum(g**2 for g in grids)
    vol = np.where(r2 < 0.7, 400.0, 0.0) + np.where((r2 < 0.7) & (grids[0] > 0.2), 250.0, 0.0)
    return vol + rng.normal(0.0, 5.0, shape)


def _ball(shape: tuple[int, int, int], radius: float) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape), indexing="ij")
    return sum(g**2 for g in grids) <= radius**2


# ----------------------------------------------------------------------------------------------
# identities and analytic values


def test_identical_volumes() -> None:
    t = _phantom()
    assert masked_mae(t, t) == 0.0
    assert psnr(t, t) == math.inf
    assert ssim3d(t, t, data_range=None) == pytest.approx(1.0, abs=1e-6)
    assert nmi(t, t) == pytest.approx(2.0, abs=1e-12)
    mask = _ball(SHAPE, 6.0)
    assert ssim3d(t, t, data_range=100.0, mask=mask) == pytest.approx(1.0, abs=1e-6)
    assert nmi(t, t, mask) == pytest.approx(2.0, abs=1e-12)


def test_constant_offset_gives_analytic_mae_and_psnr() -> None:
    t = _phantom()
    offset = 7.5
    p = t + offset
    assert masked_mae(p, t) == pytest.approx(offset, rel=1e-12)
    peak = float(t.max() - t.min())  # the default: the target's range
    assert psnr(p, t) == pytest.approx(20 * math.log10(peak / offset), rel=1e-12)
    assert psnr(p, t, data_range=1000.0) == pytest.approx(20 * math.log10(1000.0 / offset), rel=1e-12)
    mask = _ball(SHAPE, 5.0)
    inside = float(t[mask].max() - t[mask].min())  # with a mask: the target's range inside it
    assert psnr(p, t, mask) == pytest.approx(20 * math.log10(inside / offset), rel=1e-12)
    assert masked_mae(t - offset, t, mask) == pytest.approx(offset, rel=1e-12)
    # an offset is a bijective remap: NMI stays 2
    assert nmi(p, t) == pytest.approx(2.0, abs=1e-12)


def test_psnr_matches_monai_without_mask() -> None:
    from monai.metrics import PSNRMetric

    rng = np.random.default_rng(3)
    t = _phantom()
    p = t + rng.normal(0.0, 12.0, SHAPE)
    expected = PSNRMetric(max_val=800.0)(torch.as_tensor(p)[None, None], torch.as_tensor(t)[None, None]).item()
    assert psnr(p, t, data_range=800.0) == pytest.approx(expected, rel=1e-9)


def test_ssim_without_mask_matches_monai_ssim_metric() -> None:
    from monai.metrics import SSIMMetric

    rng = np.random.default_rng(4)
    t = _phantom((24, 24, 24))
    p = t + rng.normal(0.0, 20.0, t.shape)
    expected = SSIMMetric(spatial_dims=3, data_range=650.0)(torch.as_tensor(p)[None, None].float(), torch.as_tensor(t)[None, None].float()).item()
    assert ssim3d(p, t, data_range=650.0) == pytest.approx(expected, abs=2e-5)  # float32 arithmetic in both


def test_ssim_of_noise_on_a_flat_volume_is_analytic() -> None:
    """Flat target c, prediction c + N(0, s^2): the SSIM map is luminance (≈ 1) x C2 / (v + C2), v the local weighted variance.

    E[v] = m = s^2 (1 - sum w^2) for Gaussian-window weights w summing to 1; var(v) ≈ 2 s^4 sum w^2,
    so E[SSIM] ≈ C2 / (m + C2) + C2 var(v) / (m + C2)^3 (second-order Taylor term). The luminance
    factor differs from 1 by ~ (s^2 sum w^2) / (2 c^2) < 1e-4 here. The tolerance is 5 standard errors of
    the mean over seeded replicates, estimated from the replicates themselves.
    """
    g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    g /= g.sum()
    sum_w2 = float((g**2).sum()) ** 3
    peak, c = 100.0, 50.0
    c2 = (0.03 * peak) ** 2
    means = []
    for s in (1.0, 3.0):
        values = [ssim3d(c + np.random.default_rng(seed).normal(0.0, s, (32, 32, 32)), np.full((32, 32, 32), c), data_range=peak) for seed in range(6)]
        m = s**2 * (1 - sum_w2)
        expected = c2 / (m + c2) + c2 * 2 * s**4 * sum_w2 / (m + c2) ** 3
        se = np.std(values, ddof=1) / math.sqrt(len(values))
        assert abs(np.mean(values) - expected) < 5 * se + 1e-4, (s, np.mean(values), expected, se)
        means.append(np.mean(values))
    assert means[0] > means[1]


def test_noise_reduces_ssim_on_a_structured_volume() -> None:
    t = _phantom((24, 24, 24))
    noise = np.random.default_rng(5).normal(0.0, 1.0, t.shape)
    values = [ssim3d(t + a * noise, t, data_range=650.0) for a in (0.0, 5.0, 20.0, 80.0)]
    assert values[0] == pytest.approx(1.0, abs=1e-6)
    assert all(later < earlier for earlier, later in itertools.pairwise(values))


def test_ssim_kernel_shrinks_on_short_axes() -> None:
    assert ssim_kernel_size((64, 64, 64)) == (11, 11, 11)
    assert ssim_kernel_size((64, 8, 5)) == (11, 7, 5)
    with pytest.raises(DataError, match="at least 3 voxels"):
        ssim_kernel_size((64, 64, 2))
    t = _phantom((16, 16, 6))
    assert ssim3d(t, t, data_range=None) == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# masking


def test_masking_ignores_voxels_outside() -> None:
    rng = np.random.default_rng(6)
    shape = (30, 30, 30)
    t = _phantom(shape)
    p = t + rng.normal(0.0, 10.0, shape)
    mask = _ball(shape, 6.0)
    r = 5  # half the SSIM window: voxels further than this from the mask are outside every scored window
    dilated = _ball(shape, 6.0 + r * math.sqrt(3) + 1)
    spoiled = p.copy()
    spoiled[~mask] = 1e4
    far = p.copy()
    far[~dilated] = -1e4
    assert masked_mae(spoiled, t, mask) == masked_mae(p, t, mask)
    assert psnr(spoiled, t, mask) == psnr(p, t, mask)
    assert nmi(spoiled, t, mask) == nmi(p, t, mask)
    assert ssim3d(far, t, 650.0, mask) == pytest.approx(ssim3d(p, t, 650.0, mask), abs=1e-6)
    # ... and the unmasked numbers do see the change
    assert masked_mae(spoiled, t) > 100 * masked_mae(p, t)
    assert ssim3d(far, t, 650.0) < ssim3d(p, t, 650.0) - 0.1


def test_masked_values_equal_the_metric_of_the_selected_voxels() -> None:
    rng = np.random.default_rng(7)
    t = _phantom()
    p = t + rng.normal(0.0, 10.0, SHAPE)
    mask = rng.random(SHAPE) < 0.3
    d = p[mask] - t[mask]
    assert masked_mae(p, t, mask) == pytest.approx(np.mean(np.abs(d)), rel=1e-12)
    assert psnr(p, t, mask, data_range=500.0) == pytest.approx(10 * math.log10(500.0**2 / np.mean(d**2)), rel=1e-12)
    assert masked_mae(p, t, mask.astype(np.uint8)) == masked_mae(p, t, mask)  # 0/1 masks accepted


def test_ssim_mask_entirely_in_the_border_band_is_refused() -> None:
    t = _phantom()
    mask = np.zeros(SHAPE, dtype=bool)
    mask[0:3, :, :] = True
    with pytest.raises(DataError, match="SSIM window does not fit"):
        ssim3d(t, t, 100.0, mask)


# ----------------------------------------------------------------------------------------------
# NMI


def test_nmi_matches_an_independent_computation() -> None:
    """Studholme NMI Y = (HA + HB) / HAB and scikit-learn's arithmetic NMI U = 2 MI / (HA + HB) give Y = 2 / (2 - U) on the same bins."""
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(8)
    t = _phantom()
    p = 0.5 * t + rng.normal(0.0, 40.0, SHAPE)
    bins = 32

    def labels(v: np.ndarray) -> np.ndarray:
        v = v.ravel()
        return np.clip(np.floor((v - v.min()) / (v.max() - v.min()) * bins), 0, bins - 1).astype(int)

    u = normalized_mutual_info_score(labels(p), labels(t), average_method="arithmetic")
    got = nmi(p, t, bins=bins)
    assert got == pytest.approx(2.0 / (2.0 - u), rel=1e-9)
    assert 1.0 < got < 2.0


def test_nmi_of_independent_noise_is_one_within_the_estimator_bias() -> None:
    """Independent uniform volumes: the plug-in MI has 2 N MI ~ chi^2 with df = (B - 1)^2 (the G-test), so MI ≈ df / (2N) ± sqrt(2 df) / (2N).

    NMI - 1 = MI / H(A, B) with H(A, B) ≈ 2 ln B for uniform marginals (its own plug-in bias,
    (B^2 - 1) / (2N) nats, is 0.07 % of it here).
    """
    rng = np.random.default_rng(9)
    shape = (32, 32, 32)
    n = int(np.prod(shape))
    a, b = rng.random(shape), rng.random(shape)
    bins = 16
    df = (bins - 1) ** 2
    h_joint = 2 * math.log(bins) - (bins**2 - 1) / (2 * n)
    expected, sd = df / (2 * n) / h_joint, math.sqrt(2 * df) / (2 * n) / h_joint
    got = nmi(a, b, bins=bins) - 1.0
    assert abs(got - expected) < 5 * sd, (got, expected, sd)


def test_bijective_remap_keeps_nmi_at_two_while_mae_grows() -> None:
    """A tissue-label volume remapped level by level (T1w-like to T2w-like, not even monotonic): each bin maps to one bin."""
    rng = np.random.default_rng(10)
    levels = rng.integers(0, 5, (24, 24, 24))
    t1 = np.array([0.0, 300.0, 500.0, 700.0, 900.0])[levels]
    t2 = np.array([0.0, 1500.0, 800.0, 600.0, 1100.0])[levels]
    assert nmi(t2, t1) == pytest.approx(2.0, abs=1e-12)
    assert masked_mae(t2, t1) > 200.0


def test_monotonic_remap_keeps_nmi_high() -> None:
    """x exactly uniform on 64 bins (H(A) = ln 64), y = x + 0.3 x^2 on [0, 1].

    In bin units the slope dy/dx * (range x / range y) = (1 + 0.6 x) / 1.3 lies in [0.77, 1.23], so one x bin
    meets at most 3 y bins and one y bin at most 3 x bins: H(B|A), H(A|B) <= ln 3 and
    NMI = 2 - (H(A|B) + H(B|A)) / H(A, B) >= 2 - 2 ln 3 / ln 64 = 1.47.
    """
    n = 32 * 32 * 32
    x = ((np.arange(n) + 0.5) / n).reshape(32, 32, 32)
    y = x + 0.3 * x**2
    bound = 2 - 2 * math.log(3) / math.log(64)
    got = nmi(y, x, bins=64)
    assert bound <= got < 2.0
    assert masked_mae(y, x) == pytest.approx(0.1, rel=1e-3)  # the mean of 0.3 x^2 over [0, 1]


def test_nmi_of_a_constant_against_a_varying_volume_is_one_and_both_constant_refused() -> None:
    t = _phantom()
    assert nmi(np.full(SHAPE, 3.0), t) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(DataError, match="both constant"):
        nmi(np.zeros(SHAPE), np.ones(SHAPE), subject="sub-07")
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ConfigError, match="bins"):
            nmi(t, t, bins=bad)


# ----------------------------------------------------------------------------------------------
# the foreground mask


def test_foreground_mask_keeps_the_head_and_fills_enclosed_dark_tissue() -> None:
    shape = (28, 28, 28)
    rng = np.random.default_rng(11)
    head = _ball(shape, 11.0)
    core = _ball(shape, 4.0)  # dark CSF-like cavity inside the head
    t = np.where(head, 500.0, 0.0)
    t[core] = 20.0
    t += rng.normal(0.0, 5.0, shape)
    mask = foreground_mask(t)
    assert np.array_equal(mask, head)
    assert np.array_equal(foreground_mask(t, fill_holes=False), head & ~core)
    assert 20.0 < otsu_threshold(t) < 500.0
    assert np.array_equal(foreground_mask(t, threshold=250.0), head)


def test_foreground_mask_refuses_constant_and_empty() -> None:
    with pytest.raises(DataError, match="constant"):
        foreground_mask(np.zeros(SHAPE), source="sub-02")
    with pytest.raises(DataError, match="no voxel above"):
        foreground_mask(_phantom(), threshold=1e6)
    with pytest.raises(ConfigError, match="threshold"):
        foreground_mask(_phantom(), threshold=float("nan"))


# ----------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_refused_with_names() -> None:
    t = _phantom()
    with pytest.raises(DataError, match=r"prediction of subject 'sub-03' has shape \(20, 18, 15\).*target \(20, 18, 16\)"):
        masked_mae(t[:, :, :-1], t, subject="sub-03")
    nan = t.copy()
    nan[1, 2, 3] = np.nan
    with pytest.raises(DataError, match=r"prediction of subject 'sub-04': 1 NaN voxel\(s\), the first at \[i, j, k\] = \(1, 2, 3\)"):
        psnr(nan, t, subject="sub-04")
    with pytest.raises(DataError, match=r"target of subject 'sub-04'"):
        ssim3d(t, nan, 100.0, subject="sub-04")
    with pytest.raises(DataError, match="mask.*empty"):
        masked_mae(t, t, np.zeros(SHAPE, dtype=bool))
    with pytest.raises(DataError, match="mask.*shape"):
        masked_mae(t, t, np.ones((2, 2, 2), dtype=bool))
    with pytest.raises(DataError, match="0/1"):
        masked_mae(t, t, np.full(SHAPE, 2))
    with pytest.raises(DataError, match=r"3-D \(X, Y, Z\)"):
        masked_mae(t[0], t[0])
    with pytest.raises(ConfigError, match="data_range"):
        psnr(t + 1, t, data_range=0.0)
    with pytest.raises(DataError, match="constant.*data_range"):
        psnr(np.ones(SHAPE), np.zeros(SHAPE))


# ----------------------------------------------------------------------------------------------
# evaluate_pairs


def test_evaluate_pairs_rows_and_summary() -> None:
    t = _phantom()
    mask = _ball(SHAPE, 6.0)
    offsets = (2.0, 4.0, 9.0)
    pairs = [(f"sub-{i}", t + d, t, mask) for i, d in enumerate(offsets)] + [("sub-same", t, t, None)]
    result = evaluate_pairs(pairs, data_range=800.0)
    text = json.dumps(result, allow_nan=False)  # plain JSON: no NaN, no infinity
    assert json.loads(text) == result
    rows = result["rows"]
    assert [r["subject"] for r in rows] == ["sub-0", "sub-1", "sub-2", "sub-same"]
    for r, d in zip(rows, offsets):
        assert r["mae"] == pytest.approx(d)
        assert r["psnr"] == pytest.approx(20 * math.log10(800.0 / d))
        assert r["nmi"] == pytest.approx(2.0)
        assert r["n_voxels"] == int(mask.sum()) and r["mask"] == "given" and r["data_range"] == 800.0
        assert 0.0 < r["ssim"] < 1.0
    assert rows[3]["psnr"] is None and rows[3]["mae"] == 0.0 and rows[3]["mask"] == "whole volume"
    s = result["summary"]
    maes = [*offsets, 0.0]
    assert s["mae"]["mean"] == pytest.approx(np.mean(maes))
    assert s["mae"]["std"] == pytest.approx(np.std(maes, ddof=1))
    assert s["mae"]["median"] == pytest.approx(np.median(maes))
    assert s["mae"]["n"] == 4
    assert s["psnr"]["n"] == 3 and s["psnr"]["n_infinite"] == 1
    assert s["psnr"]["mean"] == pytest.approx(np.mean([20 * math.log10(800.0 / d) for d in offsets]))
    assert set(result["units"]) == {"mae", "psnr", "ssim", "nmi"}
    assert result["settings"]["ssim"]["kernel_sizes"] == [[11, 11, 11]]


def test_evaluate_pairs_default_range_and_one_subject() -> None:
    t = _phantom()
    result = evaluate_pairs([("only", t + 3.0, t, None)])
    row = result["rows"][0]
    assert row["data_range"] == pytest.approx(float(t.max() - t.min()))
    assert row["psnr"] == pytest.approx(20 * math.log10(row["data_range"] / 3.0))
    assert result["summary"]["mae"]["std"] is None and result["summary"]["mae"]["n"] == 1


def test_evaluate_pairs_refuses_bad_subjects_by_name() -> None:
    t = _phantom()
    nan = t.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="target of subject 'sub-b'"):
        evaluate_pairs([("sub-a", t, t, None), ("sub-b", t, nan, None)])
    with pytest.raises(DataError, match="repeats"):
        evaluate_pairs([("x", t, t, None), ("x", t, t, None)])
    with pytest.raises(DataError, match="mask of subject 'sub-c'.*empty"):
        evaluate_pairs([("sub-c", t, t, np.zeros(SHAPE, dtype=bool))])
    with pytest.raises(DataError, match="non-empty list"):
        evaluate_pairs([])
    with pytest.raises(DataError, match=r"pairs\[0\]"):
        evaluate_pairs([("a", t, t)])
    with pytest.raises(ConfigError, match="bins"):
        evaluate_pairs([("a", t, t, None)], bins=1)
