"""Distances between samples, in physical units (the quality report builds on these)."""

from gansim.metrics.distances import relative_wasserstein, wasserstein_per_key

__all__ = ["relative_wasserstein", "wasserstein_per_key"]
