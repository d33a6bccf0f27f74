"""The CaloChallenge classifier test: about 0.5 on one distribution, near 1 on clearly different ones."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import DataError
from gansim.metrics.calo_classifier import classifier_test, low_level_features

SMALL = {"hidden": 32, "epochs": 8, "batch_size": 200}


def test_two_samples_of_one_distribution_give_an_auc_near_one_half() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3000, 5)), rng.normal(size=(3000, 5))
    out = classifier_test(a, b, seed=1, **SMALL)
    # isotonic calibration can only lose ranking information here: the AUC is 0.5 up to its null spread
    assert abs(out["auc"] - 0.5) < 4 * out["null_se"], out
    assert out["n_test"] == 1200 and out["n_train"] == 3600


def test_shifted_samples_are_told_apart() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3000, 5)), rng.normal(size=(3000, 5))
    b[:, 2] += 2.0  # one feature shifted by two standard deviations: the Bayes AUC is Phi(2 / sqrt(2)) = 0.921
    out = classifier_test(a, b, seed=2, hidden=32, epochs=30, batch_size=200, lr=1e-3)  # trained to convergence (best epoch well before 30)
    assert out["best_epoch"] < 29
    assert abs(out["auc"] - 0.921) < 5 * out["auc_se"], out


def test_low_level_features_and_bad_input() -> None:
    layers = [np.ones((2, 3, 96)), np.full((2, 12, 12), 2.0), np.zeros((2, 12, 6))]
    feats = low_level_features(layers, np.array([1000.0, 10_000.0]))
    assert feats.shape == (2, 1 + 288 + 144 + 72)
    np.testing.assert_allclose(feats[:, 0], [3.0, 4.0])
    np.testing.assert_allclose(feats[0, 1:289], 1e-3)
    with pytest.raises(DataError, match="finite and > 0"):
        low_level_features(layers, np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="NaN"):
        classifier_test(np.full((60, 2), np.nan), np.zeros((60, 2)), **SMALL)
    with pytest.raises(DataError, match="same F"):
        classifier_test(np.zeros((60, 2)), np.zeros((60, 3)), **SMALL)
