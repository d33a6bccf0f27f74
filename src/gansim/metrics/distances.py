"""One-dimensional distances between a reference and a generated table, per column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from gansim.errors import DataError

__all__ = ["wasserstein_per_key", "relative_wasserstein"]


def wasserstein_per_key(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], keys: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per-column 1-D Wasserstein distance (earth mover's distance), in the column's unit and relative to the reference std.

    Returns ``{key: {"w1": W1 [unit], "w1_rel": W1 / std_ref, "ref_std": std_ref [unit]}}``.
    A constant reference column has ``w1_rel`` = 0 when the generated column equals
    it and ``inf`` otherwise.
    """
    keys = list(keys) if keys is not None else [k for k in reference if k in generated]
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        if key not in reference:
            raise DataError(f"reference has no column {key!r}; it has {', '.join(reference)}")
        if key not in generated:
            raise DataError(f"generated sample has no column {key!r}; it has {', '.join(generated)}")
        ref = np.asarray(reference[key], dtype=np.float64)
        gen = np.asarray(generated[key], dtype=np.float64)
        if len(ref) == 0 or len(gen) == 0:
            raise DataError(f"column {key!r}: cannot compare an empty sample ({len(ref)} reference, {len(gen)} generated rows)")
        w1 = float(wasserstein_distance(ref, gen))
        std = float(ref.std())
        rel = w1 / std if std > 0 else (0.0 if w1 == 0 else float("inf"))
        out[key] = {"w1": w1, "w1_rel": rel, "ref_std": std}
    return out


def relative_wasserstein(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray], keys: Sequence[str] | None = None) -> dict[str, float]:
    """``{key: W1 / std_ref}``: the headline per-key distance."""
    return {k: v["w1_rel"] for k, v in wasserstein_per_key(reference, generated, keys).items()}
