r"""Classifier two-sample test (C2ST): can a classifier tell generated rows from reference rows?

The two samples are balanced (the larger one is subsampled, reproducibly, to the size of the
smaller one, and both are capped at ``max_rows``), labelled 0 (reference) and 1 (generated),
split into a training and a test part (stratified, seeded), and a gradient-boosted tree
classifier is fitted on the training part.  The statistic is the area under the ROC curve on
the test part,

.. math::  AUC = P(s(Y) > s(X)) + \tfrac12 P(s(Y) = s(X)) = U / (n_1 n_2),

with :math:`U` the Mann-Whitney statistic of the test scores, :math:`n_1` generated (positive)
and :math:`n_2` reference (negative) test rows.  AUC = 0.5 means the classifier cannot tell
the samples apart; AUC = 1 means they are fully separable.

Uncertainties:

* Hanley & McNeil (1982), Radiology 143:29, eq. 1:
  :math:`SE^2 = [A(1-A) + (n_1-1)(Q_1-A^2) + (n_2-1)(Q_2-A^2)] / (n_1 n_2)`,
  :math:`Q_1 = A/(2-A)`, :math:`Q_2 = 2A^2/(1+A)` (exponential-score approximation).
* Under the null hypothesis (same distribution) the test scores of both classes are i.i.d.
  given the trained classifier, so AUC has the Mann-Whitney null distribution with mean 1/2 and
  :math:`SE_0^2 = (n_1 + n_2 + 1) / (12 n_1 n_2)` (smaller when scores tie, so this is
  conservative).  ``z_vs_half = (AUC - 1/2) / SE_0``; the Hanley-McNeil formula at A = 1/2
  equals :math:`SE_0`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from gansim.errors import ConfigError, DataError
from gansim.metrics.subsample import deterministic_subsample, stack_columns, table_rows

__all__ = ["classifier_two_sample_test", "hanley_mcneil_se", "null_auc_se", "MIN_ROWS"]

#: Fewest rows per sample the test accepts (each class needs rows in both the training and test parts).
MIN_ROWS = 20


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    r"""Standard error of an AUC estimate by Hanley & McNeil (1982), eq. 1.

    :math:`SE = \sqrt{[A(1-A) + (n_{pos}-1)(Q_1-A^2) + (n_{neg}-1)(Q_2-A^2)] / (n_{pos} n_{neg})}`
    with :math:`Q_1 = A/(2-A)` and :math:`Q_2 = 2A^2/(1+A)`.
    """
    if n_pos < 1 or n_neg < 1:
        raise DataError(f"the AUC standard error needs at least one positive and one negative row, got {n_pos} and {n_neg}")
    if not 0.0 <= auc <= 1.0:
        raise DataError(f"AUC must lie in [0, 1], got {auc}")
    a = float(auc)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1.0 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def null_auc_se(n_pos: int, n_neg: int) -> float:
    r"""Standard error of the AUC when both classes' scores are i.i.d. (no ties): :math:`\sqrt{(n_1+n_2+1)/(12 n_1 n_2)}`.

    This is the Mann-Whitney null variance :math:`n_1 n_2 (n_1+n_2+1)/12` of U divided by
    :math:`(n_1 n_2)^2`.
    """
    if n_pos < 1 or n_neg < 1:
        raise DataError(f"the null AUC standard error needs at least one positive and one negative row, got {n_pos} and {n_neg}")
    return math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))


def classifier_two_sample_test(
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    keys: Sequence[str],
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    max_rows: int = 200_000,
) -> dict[str, Any]:
    """Classifier two-sample test on the columns ``keys`` (see the module docstring for the formulas).

    Each sample is reduced to ``m = min(n_ref, n_gen, max_rows)`` rows by
    :func:`~gansim.metrics.subsample.deterministic_subsample` (reference with ``seed``,
    generated with ``seed + 1``), so the classes are balanced; only the rows used are checked
    for non-finite values.  The classifier is
    ``sklearn.ensemble.HistGradientBoostingClassifier(random_state=seed, max_iter=200,
    early_stopping=False)``; it is scale invariant (trees), so columns need no standardisation.

    Returns ``{"auc", "auc_se" (Hanley-McNeil), "null_auc": 0.5, "null_se", "z_vs_half",
    "p_value" (one-sided, P(Z >= z_vs_half) for Z ~ N(0, 1)), "n_train", "n_test",
    "n_test_ref", "n_test_gen", "ref_rows", "gen_rows", "rows_per_sample", "ref_subsample",
    "gen_subsample" (the subsample ``info`` dicts), "test_fraction", "seed", "keys",
    "classifier": "HistGradientBoostingClassifier"}``.

    Raises :class:`DataError` when a column is missing, ragged or non-finite, or a sample has
    fewer than ``MIN_ROWS`` (20) rows; :class:`ConfigError` for ``test_fraction`` outside (0, 1)
    or ``max_rows`` < ``MIN_ROWS``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    keys = list(keys)
    if not keys:
        raise DataError("classifier_two_sample_test needs at least one key to compare")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if max_rows < MIN_ROWS:
        raise ConfigError(f"max_rows must be at least {MIN_ROWS}, got {max_rows!r}")
    n_ref = table_rows(reference, "reference", keys)
    n_gen = table_rows(generated, "generated sample", keys)
    for name, n in (("reference", n_ref), ("generated sample", n_gen)):
        if n < MIN_ROWS:
            raise DataError(f"{name} has {n} rows in columns {', '.join(keys)}; the classifier test needs at least {MIN_ROWS} per sample")
    m = min(n_ref, n_gen, int(max_rows))
    ref_sub, ref_info = deterministic_subsample({k: reference[k] for k in keys}, m, seed)
    gen_sub, gen_info = deterministic_subsample({k: generated[k] for k in keys}, m, seed + 1)
    xb = stack_columns(ref_sub, keys, "reference")
    yb = stack_columns(gen_sub, keys, "generated sample")
    features = np.concatenate([xb, yb])
    labels = np.concatenate([np.zeros(m, dtype=np.int8), np.ones(m, dtype=np.int8)])
    try:
        f_train, f_test, l_train, l_test = train_test_split(features, labels, test_size=test_fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # too few rows for a stratified split at this fraction
        raise DataError(f"cannot split {m} rows per sample with test_fraction={test_fraction}: {exc}") from exc
    n_gen_test = int(np.count_nonzero(l_test == 1))
    n_ref_test = len(l_test) - n_gen_test
    if n_gen_test == 0 or n_ref_test == 0 or len(np.unique(l_train)) < 2:
        raise DataError(f"test_fraction={test_fraction} leaves a class without rows in the training or test part ({m} rows per sample); use more rows or a fraction nearer 0.3")
    clf = HistGradientBoostingClassifier(random_state=seed, max_iter=200, early_stopping=False)
    clf.fit(f_train, l_train)
    scores = clf.predict_proba(f_test)[:, 1]
    auc = float(roc_auc_score(l_test, scores))
    se0 = null_auc_se(n_gen_test, n_ref_test)
    z = (auc - 0.5) / se0
    return {
        "auc": auc,
        "auc_se": hanley_mcneil_se(auc, n_gen_test, n_ref_test),
        "null_auc": 0.5,
        "null_se": se0,
        "z_vs_half": z,
        "p_value": float(norm.sf(z)),
        "n_train": len(l_train),
        "n_test": len(l_test),
        "n_test_ref": n_ref_test,
        "n_test_gen": n_gen_test,
        "ref_rows": n_ref,
        "gen_rows": n_gen,
        "rows_per_sample": m,
        "ref_subsample": ref_info,
        "gen_subsample": gen_info,
        "test_fraction": float(test_fraction),
        "seed": seed,
        "keys": keys,
        "classifier": "HistGradientBoostingClassifier",
    }
