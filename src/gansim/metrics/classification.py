r"""The discriminator as a classifier: whole-set AUC with a bootstrap interval, ROC curves, confusion matrix.

PACGAN reports validation and test AUCs as *means of per-batch AUCs*, and scores a batch that
holds one class only as 0. That number depends on the batch size and on how the classes happen to
fall into batches, and it is biased low. Every AUC here is computed once over the whole set:

.. math::  AUC = P(s_+ > s_-) + \tfrac12 P(s_+ = s_-) = \frac{R_+ - n_+(n_+ + 1)/2}{n_+ n_-},

with :math:`R_+` the sum of the mid-ranks of the positive images' scores among all scores (the
Mann-Whitney form, identical to the area under the empirical ROC curve, ties counted one half).

* two classes (K = 2): class 1 is the positive class, its probability the score;
* more classes (K > 2): one-vs-rest per class (class k positive, every other class negative, the
  probability of class k the score), averaged with equal weights (macro), as scikit-learn's
  ``roc_auc_score(multi_class="ovr", average="macro")``. The scores need not sum to one.

Shapes: ``labels`` (N,) integers in [0, K); ``probabilities`` (N, K) floats (softmax of the
auxiliary head; any score that orders images works). AUCs, accuracies and recalls are
dimensionless fractions in [0, 1].
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from gansim.errors import ConfigError, DataError
from gansim.io.atomic import atomic_path

__all__ = [
    "MAX_ROC_POINTS",
    "bootstrap_auc",
    "class_labels",
    "classification_summary",
    "confusion",
    "roc_curves",
    "whole_set_auc",
    "write_predictions_csv",
]

#: Most points kept per ROC curve in :func:`classification_summary` (a curve of N images has up to N + 1).
MAX_ROC_POINTS = 200
#: Elements of one block of resample weights (float64, ~16 MB; a few temporaries of that size live at once in :func:`bootstrap_auc`).
_BLOCK_ELEMENTS = 1 << 21


# ----------------------------------------------------------------------------------------------
# input checks


def _check_probabilities(probabilities: Any) -> np.ndarray:
    """``probabilities`` as a finite float64 (N, K) array with N >= 1 and K >= 2."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise DataError(f"probabilities: expected an (N, K) array with N >= 1 images and K >= 2 classes, got shape {p.shape}")
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"probabilities: {len(rows)} of {p.shape[0]} rows hold NaN or Inf (first at row {int(rows[0])}); "
            "the classifier's output must be finite"
        )
    return p


def _check_labels(labels: Any, n: int, k: int, what: str = "labels") -> np.ndarray:
    """``labels`` as an int64 (n,) array of class indices in [0, k)."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: expected {n} class indices (one per image, shape ({n},)), got shape {y.shape}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            raise DataError(f"{what}: expected integer class indices, got non-integer values (e.g. {y[~np.isclose(y, np.round(y))][:3].tolist()})")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise DataError(f"{what}: expected integer class indices, got values of type {y.dtype}")
    y = y.astype(np.int64)
    outside = (y < 0) | (y >= k)
    if outside.any():
        raise DataError(f"{what}: class indices must lie in [0, {k - 1}] for {k} classes, got {sorted(set(y[outside].tolist()))[:5]}")
    return y


def class_labels(class_names: Sequence[str] | None, k: int) -> list[str]:
    """The display names of K classes: ``class_names`` checked (K distinct non-empty names), or ``class 0`` ... ``class K-1``."""
    if class_names is None:
        return [f"class {i}" for i in range(k)]
    names = [str(n) for n in class_names]
    if len(names) != k:
        raise DataError(f"class_names: expected {k} names (one per column of the probabilities), got {len(names)}: {names}")
    if any(not n.strip() for n in names) or len(set(names)) != k:
        raise DataError(f"class_names: expected {k} distinct, non-empty names, got {names}")
    return names


def _require_every_class(y: np.ndarray, k: int, names: list[str]) -> None:
    """An AUC needs at least one image of every class (each one-vs-rest split needs positives and negatives)."""
    counts = np.bincount(y, minlength=k)
    absent = [i for i in range(k) if counts[i] == 0]
    if absent:
        which = ", ".join(f"{i} ({names[i]!r})" for i in absent)
        raise DataError(
            f"labels: class {which} does not occur among the {len(y)} images (counts per class {counts.tolist()}); "
            "an AUC needs at least one image of every class"
        )


def _check_level(level: float) -> float:
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"level: expected a confidence level strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return float(level)


# ----------------------------------------------------------------------------------------------
# AUC


def _rank_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC along the last axis.

    Args:
        scores: (..., N) scores.
        positive: (N,) booleans, the positive images (same for every row of ``scores``).

    Returns:
        (...) AUCs: the probability that a positive outscores a negative, ties counted one half.
    """
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    ranks = rankdata(scores, axis=-1)  # mid-ranks: ties get the mean of their ranks
    rank_sum = ranks[..., positive].sum(axis=-1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


class _ScoreLayout:
    r"""The scores of one (one-vs-rest) AUC sorted once, grouped by tied value, for weighted AUCs.

    With multiplicities :math:`w_i` the AUC is
    :math:`\sum_{i+} \sum_{j-} w_i w_j [H(s_i - s_j)] / (W_+ W_-)` with H = 1, 1/2, 0 for >, =, <.
    Summing the weights per distinct score value u (positive :math:`P_u`, negative :math:`M_u`)
    gives :math:`\sum_u P_u (\sum_{v<u} M_v + M_u/2) / (W_+ W_-)`: a cumulative sum, no sort.
    """

    def __init__(self, scores: np.ndarray, positive: np.ndarray) -> None:
        self.order = np.argsort(scores, kind="stable")
        ordered = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first index of each distinct value
        self.positive = positive[self.order]

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """(B,) AUCs of B weighted samples; ``weights`` (B, N) non-negative multiplicities in the original image order."""
        w = weights[:, self.order]
        pos = np.add.reduceat(np.where(self.positive, w, 0.0), self.starts, axis=1)
        neg = np.add.reduceat(np.where(self.positive, 0.0, w), self.starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def _per_class_auc(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(K,) one-vs-rest AUCs for K > 2, or the single AUC (class 1 positive) for K = 2, as a (1,) array."""
    k = p.shape[1]
    if k == 2:
        return np.atleast_1d(_rank_auc(p[:, 1], y == 1))
    return np.array([_rank_auc(p[:, c], y == c) for c in range(k)])


def whole_set_auc(labels: Any, probabilities: Any, *, class_names: Sequence[str] | None = None) -> float:
    """The AUC over the whole set (not a mean over batches).

    Args:
        labels: (N,) true class indices in [0, K).
        probabilities: (N, K) per-class probabilities (or any per-class scores).
        class_names: K names, used in error messages only.

    Returns:
        K = 2: the AUC of class 1 against class 0 (``roc_auc_score(labels, p[:, 1])``);
        K > 2: the macro average of the K one-vs-rest AUCs.

    Raises:
        DataError: NaN/Inf probabilities, labels out of range, or a class without any image.
    """
    p = _check_probabilities(probabilities)
    y = _check_labels(labels, p.shape[0], p.shape[1])
    _require_every_class(y, p.shape[1], class_labels(class_names, p.shape[1]))
    return float(_per_class_auc(y, p).mean())


def bootstrap_auc(labels: Any, probabilities: Any, n_boot: int = 2000, seed: int = 0, level: float = 0.95, *, groups: Any | None = None) -> dict[str, Any]:
    """Whole-set AUC with a stratified percentile-bootstrap confidence interval.

    Each of the ``n_boot`` resamples draws, *within each class*, as many images as that class has,
    with replacement (the class counts are kept). Stratifying keeps every class in every
    resample, so every resample has a defined AUC and none is dropped or scored 0; it also
    matches the design of a test set whose class counts were fixed when it was put together.
    The interval is the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the resampled AUCs.

    With ``groups`` (e.g. the subject of each slice), whole groups are resampled instead of
    images (a cluster bootstrap, within each class: a group counts in the class most of its
    images have): slices of one subject are correlated, and resampling them one by one gives an
    interval that is too narrow.

    Args:
        labels: (N,) true class indices in [0, K); every class must occur.
        probabilities: (N, K) per-class probabilities.
        groups: (N,) group of each image (any hashable values), or None.
        n_boot: number of resamples (the quantiles of 2000 resamples are good to about 1/20 of
            the standard error).
        seed: seed of the resampling (numpy ``default_rng``): the same inputs and seed give the same interval.
        level: confidence level in (0, 1).

    Returns:
        ``auc`` (the whole-set AUC of the data), ``lo`` and ``hi`` (the interval), ``se`` (standard
        deviation of the resampled AUCs), ``n_boot``, ``n_valid`` (resamples with a defined AUC:
        all of them, thanks to the stratification), ``level``, ``seed`` and ``method``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ConfigError(f"n_boot: expected an integer number of bootstrap resamples >= 2, got {n_boot!r}")
    level = _check_level(level)
    p = _check_probabilities(probabilities)
    y = _check_labels(labels, p.shape[0], p.shape[1])
    k = p.shape[1]
    _require_every_class(y, k, class_labels(None, k))
    auc = float(_per_class_auc(y, p).mean())

    # A resample is a vector of multiplicities (how often each image was drawn; within class c
    # they sum to n_c). The AUC of a weighted sample needs no re-sorting (see _ScoreLayout), so
    # each resample costs O(N), not O(N log N).
    n = len(y)
    if groups is None:
        unit_of = np.arange(n)  # each image is its own resampling unit
        unit_class = y
    else:
        g = np.asarray(groups).astype(str)
        if g.shape != (n,):
            raise DataError(f"groups: expected one group per image ({n}), got shape {g.shape}")
        _, unit_of = np.unique(g, return_inverse=True)
        unit_class = np.array([np.bincount(y[unit_of == u], minlength=k).argmax() for u in range(int(unit_of.max()) + 1)])
        missing = [c for c in range(k) if not np.any(unit_class == c)]
        if missing:
            raise DataError(f"groups: no group has most of its images in class(es) {missing}; the cluster bootstrap needs every class")
    members = [np.flatnonzero(unit_class == c) for c in range(k)]
    n_units = len(unit_class)
    columns = [1] if k == 2 else list(range(k))
    layouts = [_ScoreLayout(p[:, col], y == col) for col in columns]
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ELEMENTS // max(n, n_units))
    aucs = np.empty(int(n_boot))
    for first in range(0, int(n_boot), block):
        b = min(block, int(n_boot) - first)
        unit_weights = np.zeros((b, n_units))
        for idx in members:
            # n_c draws with replacement among the class's n_c units, counted per unit and resample
            draws = rng.integers(0, len(idx), size=(b, len(idx))) + len(idx) * np.arange(b)[:, None]
            unit_weights[:, idx] = np.bincount(draws.ravel(), minlength=b * len(idx)).reshape(b, len(idx))
        weights = unit_weights[:, unit_of]  # an image weighs as often as its unit was drawn
        aucs[first : first + b] = np.mean([layout.auc(weights) for layout in layouts], axis=0)

    valid = aucs[np.isfinite(aucs)]
    lo, hi = np.quantile(valid, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return {
        "auc": auc,
        "lo": float(lo),
        "hi": float(hi),
        "se": float(valid.std(ddof=1)),
        "n_boot": int(n_boot),
        "n_valid": len(valid),
        "level": level,
        "seed": int(seed),
        "method": "percentile bootstrap, resampled within each class" + ("" if groups is None else f", by group ({n_units} groups)"),
    }


# ----------------------------------------------------------------------------------------------
# ROC and confusion


def roc_curves(labels: Any, probabilities: Any, *, class_names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Whole-set ROC curves.

    Returns:
        K = 2: one curve, keyed by the name of class 1 (the positive class; class 0 negative);
        K > 2: one curve per class (that class against the rest), keyed by class name
        (``class k`` when no names are given). Each curve: ``fpr`` and ``tpr`` (lists of the same
        length, from (0, 0) to (1, 1), collinear intermediate points dropped) and ``auc``.
    """
    from sklearn.metrics import roc_curve

    p = _check_probabilities(probabilities)
    k = p.shape[1]
    names = class_labels(class_names, k)
    y = _check_labels(labels, p.shape[0], k)
    _require_every_class(y, k, names)
    curves: dict[str, dict[str, Any]] = {}
    for c in [1] if k == 2 else range(k):
        fpr, tpr, _ = roc_curve(y == c, p[:, c], drop_intermediate=True)
        curves[names[c]] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(_rank_auc(p[:, c], y == c))}
    return curves


def _thin(curve: dict[str, Any], max_points: int) -> dict[str, Any]:
    """The curve with at most ``max_points`` points, evenly spaced in index, both end points kept (the AUC is the full curve's)."""
    n = len(curve["fpr"])
    if n <= max_points:
        return dict(curve)
    keep = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))
    return {"fpr": [curve["fpr"][i] for i in keep], "tpr": [curve["tpr"][i] for i in keep], "auc": curve["auc"]}


def confusion(labels: Any, predicted: Any, n_classes: int) -> np.ndarray:
    """(K, K) int64 confusion matrix: entry [i, j] counts images of true class i predicted as class j."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ConfigError(f"n_classes: expected a positive integer, got {n_classes!r}")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"labels: expected a 1-D array of class indices, got shape {y.shape}")
    y = _check_labels(y, len(y), int(n_classes))
    pred = _check_labels(predicted, len(y), int(n_classes), what="predicted")
    k = int(n_classes)
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# summary and predictions.csv


def classification_summary(
    labels: Any | None,
    probabilities: Any,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    groups: Any | None = None,
) -> dict[str, Any]:
    """Everything about the classifier's performance as plain, strict-JSON data.

    With ``groups`` (the subject of each image) the AUC's interval comes from a cluster bootstrap
    over the groups (see :func:`bootstrap_auc`).

    Always: ``n_images``, ``n_classes``, ``class_names``, ``predicted_counts`` (name -> images
    predicted as that class; the prediction is the arg-max of the probabilities).

    With ``labels``: ``counts`` (name -> true images), ``accuracy``, ``balanced_accuracy`` (mean
    recall over the classes that occur), ``recall`` (name -> fraction of that class predicted
    right, None for a class without images), ``confusion`` (K lists of K counts, rows true,
    columns predicted) and, when every class occurs, ``auc`` (:func:`bootstrap_auc`'s dict) and
    ``roc`` (:func:`roc_curves`, each curve thinned to at most :data:`MAX_ROC_POINTS` points).
    When a class has no image the AUC is undefined: ``auc_skipped`` says which class is missing
    instead.
    """
    p = _check_probabilities(probabilities)
    n, k = p.shape
    names = class_labels(class_names, k)
    predicted = np.argmax(p, axis=1)
    summary: dict[str, Any] = {
        "n_images": int(n),
        "n_classes": int(k),
        "class_names": names,
        "predicted_counts": {names[c]: int(v) for c, v in enumerate(np.bincount(predicted, minlength=k))},
    }
    if labels is None:
        return summary
    y = _check_labels(labels, n, k)
    matrix = confusion(y, predicted, k)
    counts = matrix.sum(axis=1)
    recall = [float(matrix[c, c] / counts[c]) if counts[c] else None for c in range(k)]
    present = [r for r in recall if r is not None]
    summary.update({
        "counts": {names[c]: int(counts[c]) for c in range(k)},
        "accuracy": float(np.trace(matrix) / n),
        "balanced_accuracy": float(np.mean(present)),
        "recall": {names[c]: recall[c] for c in range(k)},
        "confusion": matrix.tolist(),
    })
    try:
        _require_every_class(y, k, names)
    except DataError as err:
        summary["auc_skipped"] = str(err)
        return summary
    summary["auc"] = bootstrap_auc(y, p, n_boot=n_boot, seed=seed, level=level, groups=groups)
    summary["roc"] = {name: _thin(curve, MAX_ROC_POINTS) for name, curve in roc_curves(y, p, class_names=names).items()}
    return summary


def write_predictions_csv(
    path: str | os.PathLike[str],
    ids: Sequence[Any],
    probabilities: Any,
    labels: Any | None = None,
    class_names: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Write ``predictions.csv`` atomically; refuse to overwrite without ``force``.

    Columns: ``ID``; ``Label`` (the true class index, only when ``labels`` are given);
    ``P_<name>`` per class (``P_class 0`` ... without names; probabilities with 8 significant
    digits); ``Predicted`` (the arg-max class index). Class indices (not names) fill ``Label`` and
    ``Predicted``, so the file reads back like a ``labels.csv`` (``ID,Label``); the names are in
    the header.

    Args:
        path: the CSV file.
        ids: N image identifiers (e.g. the indices into the NIfTI stack).
        probabilities: (N, K).
        labels: (N,) true class indices, or None.
        class_names: K names for the column headers.
        force: overwrite an existing file.
    """
    p = _check_probabilities(probabilities)
    n, k = p.shape
    names = class_labels(class_names, k)
    ids = list(ids)
    if len(ids) != n:
        raise DataError(f"ids: expected {n} image identifiers (one per row of the probabilities), got {len(ids)}")
    y = None if labels is None else _check_labels(labels, n, k)
    predicted = np.argmax(p, axis=1)
    header = ["ID"] + (["Label"] if y is not None else []) + [f"P_{name}" for name in names] + ["Predicted"]
    with atomic_path(path, force=force, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i in range(n):
            row: list[Any] = [ids[i]]
            if y is not None:
                row.append(int(y[i]))
            row += [format(float(v), ".8g") for v in p[i]]
            row.append(int(predicted[i]))
            writer.writerow(row)
    return Path(path)

