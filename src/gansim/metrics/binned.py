"""Metrics per bin of the conditioning variables (e.g. per beam-energy or per incidence-angle range).

For a conditional generator the marginal comparison can hide a wrong dependence on the
condition; comparing within bins of the condition checks it.  Bin edges come from the
*reference* sample's quantiles of each condition key: with ``b`` bins, the interior edges are
the quantiles at ``1/b, 2/b, ..., (b-1)/b`` (``numpy.quantile``, linear interpolation), repeated
edges (discrete conditions) are merged, and the outer bins are open-ended so that every row of
both samples falls in exactly one bin.  Bin ``i`` of a key is the half-open interval
``[lo_i, hi_i)``, ``lo_0 = -inf``, ``hi_last = +inf``.  For several condition keys the bins are
the Cartesian product of each key's bins (each key binned by its own marginal quantiles),
at most ``MAX_BINS`` (64) in total.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError
from gansim.metrics.distances import wasserstein_per_key
from gansim.metrics.subsample import stack_columns, table_rows, take_rows

__all__ = ["per_condition_bins", "quantile_edges", "MAX_BINS", "MIN_BIN_ROWS"]

#: Most bins in total over all condition keys.
MAX_BINS = 64
#: Fewest rows of each sample in a bin for the metric to be computed there.
MIN_BIN_ROWS = 20

MetricFn = Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray], Sequence[str]], Any]


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges ``[-inf, q_1/b, ..., q_(b-1)/b, +inf]`` from the quantiles of ``values``, repeated edges merged.

    Returns between 2 and ``bins + 1`` increasing edges (2 when ``values`` is constant: one bin).
    """
    values = np.asarray(values, dtype=np.float64)
    inner = np.quantile(values, np.arange(1, bins) / bins) if bins > 1 else np.empty(0)
    inner = np.unique(inner)  # sorted, repeated edges merged
    return np.concatenate([[-np.inf], inner, [np.inf]])


def per_condition_bins(
    reference: Mapping[str, np.ndarray],
    generated: Mapping[str, np.ndarray],
    cond_keys: str | Sequence[str],
    keys: Sequence[str],
    *,
    bins: int = 4,
    metric_fn: MetricFn = wasserstein_per_key,
    min_rows: int = MIN_BIN_ROWS,
) -> list[dict[str, Any]]:
    """``metric_fn(ref_bin, gen_bin, keys)`` in each bin of the condition keys (edges from the reference's quantiles).

    ``ref_bin`` / ``gen_bin`` are tables holding the rows of the bin for the columns
    ``keys`` and ``cond_keys``.  With ``k`` condition keys each gets ``bins`` quantile bins,
    reduced to ``floor(64 ** (1/k))`` (with a warning) when ``bins ** k`` exceeds ``MAX_BINS``.
    A bin where either sample has fewer than ``min_rows`` rows is not evaluated (its entry says
    why); a bin where neither sample has rows (e.g. between the values of a discrete condition)
    is left out.

    Returns one entry per non-empty bin, in C order of the condition keys' bin indices::

        {"bin": {cond_key: [lo, hi]}, "ref_rows": int, "gen_rows": int,
         "metrics": metric_fn(...) or None, "skipped": None or the reason}

    ``lo``/``hi`` are in the condition's unit; the interval is ``[lo, hi)``.

    Raises :class:`DataError` for missing, ragged, empty or non-finite columns (naming the key),
    :class:`ConfigError` for ``bins`` < 1 or ``min_rows`` < 1.
    """
    cond = [cond_keys] if isinstance(cond_keys, str) else list(cond_keys)
    keys = list(keys)
    if not cond:
        raise DataError("per_condition_bins needs at least one condition key to bin by")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer, got {bins!r}")
    if min_rows < 1:
        raise ConfigError(f"min_rows must be at least 1, got {min_rows!r}")
    columns = list(dict.fromkeys(keys + cond))
    n_ref = table_rows(reference, "reference", columns)
    table_rows(generated, "generated sample", columns)
    if n_ref == 0:
        raise DataError(f"reference has no rows; cannot bin condition keys {', '.join(cond)}")
    per_key = int(bins)
    if per_key ** len(cond) > MAX_BINS:
        per_key = int(math.floor(MAX_BINS ** (1.0 / len(cond)) + 1e-9))
        warnings.warn(
            f"{bins} bins for each of {len(cond)} condition keys would give {bins ** len(cond)} bins; "
            f"using {per_key} per key ({per_key ** len(cond)} in total, at most {MAX_BINS})",
            stacklevel=2,
        )
    ref_c = stack_columns(reference, cond, "reference")
    gen_c = stack_columns(generated, cond, "generated sample")
    edges = [quantile_edges(ref_c[:, j], per_key) for j in range(len(cond))]
    shape = tuple(len(e) - 1 for e in edges)

    def bin_index(c: np.ndarray) -> np.ndarray:
        # side="right": a value equal to an interior edge goes to the bin above, i.e. bins are [lo, hi).
        per_dim = [np.searchsorted(e[1:-1], c[:, j], side="right") for j, e in enumerate(edges)]
        return np.ravel_multi_index(per_dim, shape)

    ref_bin = bin_index(ref_c)
    gen_bin = bin_index(gen_c)
    out: list[dict[str, Any]] = []
    for flat in range(int(np.prod(shape))):
        multi = np.unravel_index(flat, shape)
        ref_sel = np.flatnonzero(ref_bin == flat)
        gen_sel = np.flatnonzero(gen_bin == flat)
        if len(ref_sel) == 0 and len(gen_sel) == 0:
            continue  # e.g. between the values of a discrete condition: nothing to compare or report
        entry: dict[str, Any] = {
            "bin": {k: [float(edges[j][multi[j]]), float(edges[j][multi[j] + 1])] for j, k in enumerate(cond)},
            "ref_rows": int(len(ref_sel)),
            "gen_rows": int(len(gen_sel)),
            "metrics": None,
            "skipped": None,
        }
        if len(ref_sel) < min_rows or len(gen_sel) < min_rows:
            entry["skipped"] = f"fewer than {min_rows} rows ({len(ref_sel)} reference, {len(gen_sel)} generated)"
        else:
            entry["metrics"] = metric_fn(take_rows(reference, ref_sel, columns), take_rows(generated, gen_sel, columns), keys)
        out.append(entry)
    return out
