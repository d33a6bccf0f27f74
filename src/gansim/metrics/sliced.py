r"""Sliced 1-Wasserstein distance between two multi-column samples.

For samples :math:`X \sim P` and :math:`Y \sim Q` in :math:`\mathbb{R}^d` (the columns ``keys``),

.. math::

    SW_1(P, Q) = \int_{S^{d-1}} W_1(\theta_\# P, \theta_\# Q)\, d\sigma(\theta)
               \approx \frac{1}{L} \sum_{l=1}^{L} W_1(\theta_l \cdot X, \theta_l \cdot Y),

with :math:`\sigma` the uniform measure on the unit sphere and :math:`\theta_l` fixed random
unit directions (``n_projections`` = L of them, drawn from ``numpy.random.default_rng(seed)``
as normalised standard-normal vectors).  Each 1-D :math:`W_1 = \int |F - G|\,dx` is exact
for the empirical distributions.

Columns in physical units (mm, MeV, ns) are not commensurable, so by default each column is
standardised with the *reference* sample's mean and standard deviation,
:math:`x \to (x - \mu_{ref}) / \sigma_{ref}` (a constant reference column uses
:math:`\sigma_{ref} = 1`); the same affine map is applied to the generated sample, so the
result is dimensionless and in units of reference standard deviations.  With
``standardise=False`` the distance is in the columns' common unit (only meaningful when they
share one).

Closed form used by the tests: for :math:`P = N(0, I_d)`, :math:`Q = N(m, I_d)`,
:math:`W_1(\theta_\# P, \theta_\# Q) = |\theta \cdot m|` (a shift), so
:math:`SW_1 = |m|\, E|\theta_1| = |m|\, \Gamma(d/2) / (\sqrt{\pi}\, \Gamma((d+1)/2))`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from gansim.errors import ConfigError, DataError
from gansim.metrics.subsample import stack_columns

__all__ = ["sliced_wasserstein", "random_directions"]

# Elements of a projected block (rows x projections) held at once: 2**22 float64 = 32 MiB per sample.
_BLOCK_ELEMENTS = 1 << 22


def random_directions(n_projections: int, dim: int, seed: int = 0) -> np.ndarray:
    """``(n_projections, dim)`` unit vectors, uniform on the sphere :math:`S^{dim-1}`, reproducible from ``seed``.

    Each row is a standard-normal vector from ``numpy.random.default_rng(seed)`` divided by its
    Euclidean norm (the normal distribution is rotation invariant, so the direction is uniform).
    """
    if isinstance(n_projections, bool) or not isinstance(n_projections, (int, np.integer)) or n_projections < 1:
        raise ConfigError(f"n_projections must be a positive integer, got {n_projections!r}")
    if dim < 1:
        raise DataError(f"need at least one column to project, got {dim}")
    g = np.random.default_rng(seed).standard_normal((int(n_projections), int(dim)))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    # A zero vector has probability 0; guard anyway so the result is always a unit vector.
    g[norms[:, 0] == 0] = 1.0
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _projected_w1(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Exact 1-D W1 between ``x @ theta`` and ``y @ theta`` for every row ``theta`` of ``directions``."""
    n_proj = len(directions)
    out = np.empty(n_proj, dtype=np.float64)
    block = max(1, _BLOCK_ELEMENTS // max(len(x), len(y)))
    for start in range(0, n_proj, block):
        d = directions[start:start + block].T  # (dim, b)
        px = x @ d
        py = y @ d
        if len(x) == len(y):
            # Equal sizes: the optimal coupling pairs order statistics, W1 = mean_i |x_(i) - y_(i)|.
            px.sort(axis=0)
            py.sort(axis=0)
            out[start:start + d.shape[1]] = np.mean(np.abs(px - py), axis=0)
        else:
            for j in range(d.shape[1]):
                out[start + j] = wasserstein_distance(px[:, j], py[:, j])
    return out


def sliced_wasserstein(
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    keys: Sequence[str],
    *,
    n_projections: int = 128,
    seed: int = 0,
    standardise: bool = True,
) -> dict[str, Any]:
    r"""Sliced 1-Wasserstein distance between the columns ``keys`` of two tables (see the module docstring).

    Returns ``{"sw1": mean_l W1_l, "sw1_max": max_l W1_l, "sw1_mc_se": std_l(W1_l) / sqrt(L),
    "n_projections": L, "seed", "standardised", "keys", "ref_rows", "gen_rows"}``, where
    ``W1_l`` is the 1-D distance along direction ``l``.  ``sw1_mc_se`` is the Monte-Carlo
    standard error of ``sw1`` from the finite number of directions only (not from the finite
    samples).  With ``standardise=True`` the values are in reference standard deviations.

    Raises :class:`DataError` for a missing, ragged, empty or non-finite column (naming the key).
    """
    keys = list(keys)
    if not keys:
        raise DataError("sliced_wasserstein needs at least one key to compare")
    x = stack_columns(reference, keys, "reference")
    y = stack_columns(generated, keys, "generated sample")
    if len(x) == 0 or len(y) == 0:
        raise DataError(f"cannot compare an empty sample ({len(x)} reference, {len(y)} generated rows) for keys {', '.join(keys)}")
    if standardise:
        mu = x.mean(axis=0)
        sd = x.std(axis=0)
        sd[sd == 0] = 1.0
        x = (x - mu) / sd
        y = (y - mu) / sd
    directions = random_directions(n_projections, len(keys), seed)
    w = _projected_w1(x, y, directions)
    return {
        "sw1": float(w.mean()),
        "sw1_max": float(w.max()),
        "sw1_mc_se": float(w.std(ddof=1) / np.sqrt(len(w))) if len(w) > 1 else float("nan"),
        "n_projections": int(n_projections),
        "seed": seed,
        "standardised": bool(standardise),
        "keys": keys,
        "ref_rows": len(x),
        "gen_rows": len(y),
    }
