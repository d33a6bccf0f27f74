"""Distances between samples in physical units, the classifier two-sample test, and the HTML quality report."""

from gansim.metrics.binned import per_condition_bins
from gansim.metrics.classifier import classifier_two_sample_test
from gansim.metrics.distances import relative_wasserstein, wasserstein_per_key
from gansim.metrics.sliced import sliced_wasserstein
from gansim.metrics.subsample import deterministic_subsample

__all__ = [
    "classifier_two_sample_test",
    "deterministic_subsample",
    "per_condition_bins",
    "relative_wasserstein",
    "sliced_wasserstein",
    "wasserstein_per_key",
]
