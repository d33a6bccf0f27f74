"""Whole-set AUC (not PACGAN's mean of per-batch AUCs), its stratified bootstrap interval, ROC, confusion, predictions.csv."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, roc_auc_score

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.metrics.classification import (
    MAX_ROC_POINTS,
    _rank_auc,
    _ScoreLayout,
    bootstrap_auc,
    classification_summary,
    confusion,
    roc_curves,
    whole_set_auc,
    write_predictions_csv,
)
from gansim.metrics.classifier import hanley_mcneil_se


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _binormal(n_per_class: int, d: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 scores N(0, 1), class 1 scores N(d, 1): the true AUC is Phi(d / sqrt 2). Returns labels (2n,), probabilities (2n, 2)."""
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(0.0, 1.0, n_per_class), rng.normal(d, 1.0, n_per_class)])
    y = np.repeat([0, 1], n_per_class)
    p1 = 1.0 / (1.0 + np.exp(-s))  # monotone in s: the same AUC
    return y, np.stack([1.0 - p1, p1], axis=1)


def _delong_se(y: np.ndarray, score: np.ndarray) -> float:
    """DeLong, DeLong & Clarke-Pearson (1988) standard error of a two-class AUC (structural components)."""
    pos, neg = score[y == 1], score[y == 0]
    h = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = h.mean(axis=1), h.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def _pacgan_batch_mean_auc(y: np.ndarray, p: np.ndarray, batch: int) -> float:
    """PACGAN's validation/test AUC: the mean over batches of the batch's AUC, 0 for a batch holding one class."""
    aucs = []
    for start in range(0, len(y), batch):
        yb, pb = y[start : start + batch], p[start : start + batch]
        aucs.append(roc_auc_score(yb, pb[:, 1]) if len(set(yb.tolist())) == 2 else 0.0)
    return float(np.mean(aucs))


# ----------------------------------------------------------------------------------------------
# whole-set AUC


@pytest.mark.parametrize("k", [2, 3])
def test_whole_set_auc_equals_sklearn(k: int) -> None:
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 400)
    logits = rng.normal(size=(400, k)) + 0.8 * np.eye(k)[y]
    p = _softmax(logits)
    expected = roc_auc_score(y, p[:, 1]) if k == 2 else roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert whole_set_auc(y, p) == pytest.approx(expected, abs=1e-12)
    # ties (probabilities rounded to one decimal) count one half, as in sklearn
    pr = np.round(p, 1)
    pr_norm = pr / pr.sum(axis=1, keepdims=True)
    expected_ties = roc_auc_score(y, pr_norm[:, 1]) if k == 2 else roc_auc_score(y, pr_norm, multi_class="ovr", average="macro")
    assert whole_set_auc(y, pr_norm) == pytest.approx(expected_ties, abs=1e-12)


def test_pacgan_batch_mean_is_not_the_auc() -> None:
    """Two constructed sets where the mean of per-batch AUCs is wrong, one each way.

    1. A perfect classifier on a set ordered by class (as a labels.csv sorted by diagnosis is):
       half the batches hold one class and score 0, so PACGAN reports 0.5 for an AUC of 1.
    2. Scores that drift between batches (each batch ranked perfectly inside itself): every batch
       scores 1, yet across the set half the positives rank below negatives of other batches.
    """
    y = np.repeat([0, 1], 64)
    s = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.01, 128)
    p = np.stack([1 - s, s], axis=1)
    assert whole_set_auc(y, p) == 1.0
    # batches of 32: two of class 0 only, two of class 1 only -> PACGAN's mean is 0
    assert _pacgan_batch_mean_auc(y, p, 32) == 0.0
    # reordered so that only half the batches mix: class 0 only, class 1 only, then two mixed batches
    order = np.r_[0:32, 64:96, 32:48, 96:112, 48:64, 112:128]
    mixed, pm = y[order], p[order]
    assert _pacgan_batch_mean_auc(mixed, pm, 32) == 0.5
    assert whole_set_auc(mixed, pm) == 1.0

    # case 2: 4 batches of 16 (8 + 8); within batch b the scores are b + (0.5 for positives) + small
    b = np.repeat(np.arange(4), 16)
    y2 = np.tile(np.repeat([0, 1], 8), 4)
    s2 = b + 0.5 * y2 + np.tile(np.linspace(0, 0.1, 8), 8)
    p2 = np.stack([1 - s2 / 5, s2 / 5], axis=1)
    assert _pacgan_batch_mean_auc(y2, p2, 16) == 1.0
    # across batches: a positive of batch i beats every negative of batches <= i and none of > i
    expected = sum(8 * 8 * (i + 1) for i in range(4)) / (32 * 32)
    assert whole_set_auc(y2, p2) == pytest.approx(expected)
    assert expected == pytest.approx(0.625)


def test_weighted_auc_equals_auc_of_the_resample() -> None:
    """The bootstrap's O(N) weighted AUC is the rank AUC of the explicitly repeated sample, ties included."""
    rng = np.random.default_rng(5)
    scores = np.round(rng.normal(size=60), 1)  # many ties
    positive = rng.random(60) < 0.4
    layout = _ScoreLayout(scores, positive)
    weights = np.stack([np.bincount(rng.integers(0, 60, 60), minlength=60) for _ in range(5)]).astype(float)
    got = layout.auc(weights)
    for row, w in zip(got, weights):
        w = w.astype(int)
        assert row == pytest.approx(float(_rank_auc(np.repeat(scores, w), np.repeat(positive, w))), abs=1e-12)


# ----------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_interval_contains_the_auc_and_is_seeded() -> None:
    y, p = _binormal(150, 1.0, seed=1)
    a = bootstrap_auc(y, p, n_boot=1000, seed=3)
    assert a["auc"] == pytest.approx(whole_set_auc(y, p))
    assert a["lo"] < a["auc"] < a["hi"]
    assert a["n_boot"] == a["n_valid"] == 1000 and a["level"] == 0.95
    assert bootstrap_auc(y, p, n_boot=1000, seed=3) == a
    assert bootstrap_auc(y, p, n_boot=1000, seed=4)["lo"] != a["lo"]
    json.dumps(a, allow_nan=False)


def test_bootstrap_keeps_a_rare_class_in_every_resample() -> None:
    """Stratified: 2 images of class 2 among 100; unstratified, ~13 % of resamples would lack it (0.98^100)."""
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(49, int), np.ones(49, int), [2, 2]]
    p = _softmax(rng.normal(size=(100, 3)) + 1.5 * np.eye(3)[y])
    a = bootstrap_auc(y, p, n_boot=500, seed=0)
    assert a["n_valid"] == 500
    assert a["lo"] <= a["auc"] <= a["hi"]


def test_bootstrap_width_scales_as_one_over_sqrt_n() -> None:
    """Width of the interval ~ 2 z SE with SE^2 = S10/n1 + S01/n0 (DeLong), so 16x the images gives a 4x narrower interval.

    Band: the SE estimated from 100 + 100 images scatters by ~7 % (its variance estimate by ~15 %),
    the 2.5/97.5 % quantiles of 2000 resamples by ~2 %; 30 % is ~4 sigma of the ratio.
    """
    small = bootstrap_auc(*_binormal(100, 1.0, seed=10), n_boot=2000, seed=0)
    large = bootstrap_auc(*_binormal(1600, 1.0, seed=11), n_boot=2000, seed=0)
    ratio = (small["hi"] - small["lo"]) / (large["hi"] - large["lo"])
    assert 4.0 / 1.3 < ratio < 4.0 * 1.3


def test_bootstrap_against_a_known_auc_and_the_analytic_standard_errors() -> None:
    """Binormal scores with d = 1: true AUC = Phi(1/sqrt 2) = 0.760.

    * The true AUC lies inside the 95 % interval (fixed seeds).
    * The bootstrap SD estimates the same variance as DeLong's (the bootstrap is its plug-in
      version, differing by O(1/n)); its Monte Carlo error with 2000 resamples is
      1/sqrt(2 * 2000) = 1.6 %, so they agree to 10 % (> 5 sigma).
    * Hanley-McNeil assumes exponential scores, an approximation for binormal ones: 20 %.
    """
    d = 1.0
    true_auc = float(norm.cdf(d / math.sqrt(2)))
    y, p = _binormal(800, d, seed=21)
    a = bootstrap_auc(y, p, n_boot=2000, seed=0)
    assert a["lo"] < true_auc < a["hi"]
    delong = _delong_se(y, p[:, 1])
    assert a["se"] == pytest.approx(delong, rel=0.10)
    assert a["se"] == pytest.approx(hanley_mcneil_se(a["auc"], 800, 800), rel=0.20)
    # the interval is about +- 1.96 SE wide
    assert (a["hi"] - a["lo"]) == pytest.approx(2 * 1.96 * delong, rel=0.15)


def test_bootstrap_coverage() -> None:
    """Over 100 independent binormal sets (AUC 0.760, 60 + 60 images) the 95 % interval holds the true AUC about 95 times.

    The count is binomial (sd 2.2 at 95 %); the percentile interval under-covers a little at small N.
    Bound: at least 85 covering sets, 4.5 sd under nominal.
    """
    true_auc = float(norm.cdf(1.0 / math.sqrt(2)))
    covered = 0
    for trial in range(100):
        a = bootstrap_auc(*_binormal(60, 1.0, seed=1000 + trial), n_boot=500, seed=trial)
        covered += a["lo"] <= true_auc <= a["hi"]
    assert covered >= 85


def test_bootstrap_three_classes_and_level() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 600)
    p = _softmax(rng.normal(size=(600, 3)) + np.eye(3)[y])
    a95 = bootstrap_auc(y, p, n_boot=800, seed=1)
    a68 = bootstrap_auc(y, p, n_boot=800, seed=1, level=0.68)
    assert a95["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert a95["lo"] < a68["lo"] < a95["auc"] < a68["hi"] < a95["hi"]
    # a 68 % interval is about +- 1 SE
    assert (a68["hi"] - a68["lo"]) / 2 == pytest.approx(a68["se"], rel=0.15)


# ----------------------------------------------------------------------------------------------
# ROC and confusion


@pytest.mark.parametrize("k", [2, 3])
def test_roc_curves(k: int) -> None:
    rng = np.random.default_rng(k + 10)
    y = rng.integers(0, k, 300)
    p = _softmax(rng.normal(size=(300, k)) + np.eye(k)[y])
    names = ["CN", "MCI", "AD"][:k] if k == 3 else ["CN", "AD"]
    curves = roc_curves(y, p, class_names=names)
    assert list(curves) == (["AD"] if k == 2 else names)
    for curve in curves.values():
        fpr, tpr = np.array(curve["fpr"]), np.array(curve["tpr"])
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        assert np.trapezoid(tpr, fpr) == pytest.approx(curve["auc"], abs=1e-12)
    assert np.mean([c["auc"] for c in curves.values()]) == pytest.approx(whole_set_auc(y, p))


def test_confusion_counts() -> None:
    y = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    pred = [0, 1, 1, 1, 2, 2, 2, 0, 2]
    m = confusion(y, pred, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m.dtype == np.int64 and m.sum() == 9
    assert np.array_equal(m, confusion_matrix(y, pred, labels=[0, 1, 2]))
    assert confusion([0, 0], [0, 0], 3).tolist() == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(DataError, match="predicted"):
        confusion([0, 1], [0, 3], 3)
    with pytest.raises(DataError, match="predicted"):
        confusion([0, 1], [0], 3)


# ----------------------------------------------------------------------------------------------
# summary


def test_summary_with_labels_is_strict_json() -> None:
    y, p = _binormal(400, 1.0, seed=4)
    s = classification_summary(y, p, ["CN", "AD"], seed=0, n_boot=500)
    json.dumps(s, allow_nan=False)
    predicted = p.argmax(axis=1)
    assert s["n_images"] == 800 and s["n_classes"] == 2 and s["class_names"] == ["CN", "AD"]
    assert s["counts"] == {"CN": 400, "AD": 400}
    assert s["predicted_counts"] == {"CN": int((predicted == 0).sum()), "AD": int((predicted == 1).sum())}
    assert s["accuracy"] == pytest.approx(float((predicted == y).mean()))
    recall = [float((predicted[y == c] == c).mean()) for c in (0, 1)]
    assert s["recall"] == pytest.approx({"CN": recall[0], "AD": recall[1]})
    assert s["balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert s["confusion"] == confusion(y, predicted, 2).tolist()
    assert s["auc"]["auc"] == pytest.approx(whole_set_auc(y, p)) and s["auc"]["n_boot"] == 500
    # 800 distinct scores give an ROC of ~hundreds of points: thinned, end points kept, AUC of the full curve
    curve = s["roc"]["AD"]
    assert len(curve["fpr"]) <= MAX_ROC_POINTS
    assert (curve["fpr"][0], curve["tpr"][0], curve["fpr"][-1], curve["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert curve["auc"] == pytest.approx(whole_set_auc(y, p))


def test_summary_without_labels_and_with_a_missing_class() -> None:
    rng = np.random.default_rng(0)
    p = _softmax(rng.normal(size=(50, 3)))
    s = classification_summary(None, p, ["a", "b", "c"])
    assert set(s) == {"n_images", "n_classes", "class_names", "predicted_counts"}
    assert sum(s["predicted_counts"].values()) == 50

    y = np.r_[np.zeros(25, int), np.ones(25, int)]  # class "c" absent
    s = classification_summary(y, p, ["a", "b", "c"])
    json.dumps(s, allow_nan=False)
    assert "auc" not in s and "roc" not in s
    assert "'c'" in s["auc_skipped"] and "2" in s["auc_skipped"]
    assert s["recall"]["c"] is None and s["counts"]["c"] == 0
    assert s["balanced_accuracy"] == pytest.approx((s["recall"]["a"] + s["recall"]["b"]) / 2)


# ----------------------------------------------------------------------------------------------
# predictions.csv


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_predictions_csv(tmp_path: Path) -> None:
    p = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.1, 0.7, 0.2]])
    out = write_predictions_csv(tmp_path / "predictions.csv", ids=[10, 11, 12], probabilities=p, labels=[0, 2, 2], class_names=["CN", "MCI", "AD"])
    rows = _read_csv(out)
    assert rows[0] == ["ID", "Label", "P_CN", "P_MCI", "P_AD", "Predicted"]
    assert rows[1:] == [["10", "0", "0.9", "0.05", "0.05", "0"], ["11", "2", "0.2", "0.3", "0.5", "2"], ["12", "2", "0.1", "0.7", "0.2", "1"]]

    # without labels or names; full precision kept to 8 significant digits
    q = np.array([[1 / 3, 2 / 3]])
    out2 = write_predictions_csv(tmp_path / "unlabelled.csv", ids=["img_a"], probabilities=q)
    rows = _read_csv(out2)
    assert rows[0] == ["ID", "P_class 0", "P_class 1", "Predicted"]
    assert rows[1][0] == "img_a" and float(rows[1][1]) == pytest.approx(1 / 3, rel=1e-8) and rows[1][3] == "1"


def test_predictions_csv_refuses_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    p = np.array([[0.4, 0.6]])
    write_predictions_csv(path, [0], p)
    before = path.read_text()
    with pytest.raises(OutputExistsError, match="predictions.csv"):
        write_predictions_csv(path, [0], np.array([[0.8, 0.2]]))
    assert path.read_text() == before
    write_predictions_csv(path, [0], np.array([[0.8, 0.2]]), force=True)
    assert _read_csv(path)[1] == ["0", "0.8", "0.2", "0"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["predictions.csv"]  # no temporary file left


# ----------------------------------------------------------------------------------------------
# errors


def test_errors_name_what_is_wrong(tmp_path: Path) -> None:
    p = np.full((4, 2), 0.5)
    with pytest.raises(DataError, match=r"class 1 \('AD'\) does not occur"):
        whole_set_auc([0, 0, 0, 0], p, class_names=["CN", "AD"])
    with pytest.raises(DataError, match=r"class 2 \('class 2'\)"):
        bootstrap_auc([0, 1, 0, 1], np.full((4, 3), 1 / 3))
    with pytest.raises(DataError, match=r"class 0 \('CN'\)"):
        roc_curves([1, 1, 1, 1], p, class_names=["CN", "AD"])
    bad = p.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match=r"probabilities: 1 of 4 rows hold NaN.*row 2"):
        whole_set_auc([0, 1, 0, 1], bad)
    with pytest.raises(DataError, match=r"probabilities: expected an \(N, K\)"):
        whole_set_auc([0, 1], np.array([0.2, 0.8]))
    with pytest.raises(DataError, match=r"labels: class indices must lie in \[0, 1\].*\[5\]"):
        whole_set_auc([0, 1, 5, 1], p)
    with pytest.raises(DataError, match=r"labels: expected 4 class indices"):
        whole_set_auc([0, 1], p)
    with pytest.raises(DataError, match="labels: expected integer"):
        whole_set_auc([0, 1, 0.5, 1], p)
    with pytest.raises(DataError, match="class_names: expected 2 names"):
        classification_summary(None, p, ["a", "b", "c"])
    with pytest.raises(DataError, match="distinct"):
        classification_summary(None, p, ["a", "a"])
    with pytest.raises(ConfigError, match="level"):
        bootstrap_auc([0, 1, 0, 1], p, level=95)
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_auc([0, 1, 0, 1], p, n_boot=0)
    with pytest.raises(DataError, match="ids: expected 4"):
        write_predictions_csv(tmp_path / "x.csv", [1, 2], p)
    assert not (tmp_path / "x.csv").exists()


def test_cluster_bootstrap_resamples_subjects_not_slices() -> None:
    """m identical slices per subject: resampling subjects gives exactly the interval of one slice per subject,
    while resampling slices pretends to have m times the data (an interval about sqrt(m) too narrow)."""
    from gansim.metrics.classification import bootstrap_auc

    rng = np.random.default_rng(3)
    n, m = 60, 5
    y = np.arange(n) % 2
    score = rng.normal(size=n) + 0.8 * y
    p = np.stack([1 - 1 / (1 + np.exp(-score)), 1 / (1 + np.exp(-score))], axis=1)
    one = bootstrap_auc(y, p, n_boot=1000, seed=4)
    subjects = np.repeat([f"s{i:03d}" for i in range(n)], m)
    grouped = bootstrap_auc(np.repeat(y, m), np.repeat(p, m, axis=0), n_boot=1000, seed=4, groups=subjects)
    assert (grouped["lo"], grouped["hi"]) == pytest.approx((one["lo"], one["hi"]), abs=1e-12)
    naive = bootstrap_auc(np.repeat(y, m), np.repeat(p, m, axis=0), n_boot=1000, seed=4)
    ratio = (grouped["hi"] - grouped["lo"]) / (naive["hi"] - naive["lo"])
    assert 0.7 * np.sqrt(m) < ratio < 1.4 * np.sqrt(m)
    assert "by group (60 groups)" in grouped["method"]
    with pytest.raises(Exception, match="one group per image"):
        bootstrap_auc(y, p, groups=subjects)
