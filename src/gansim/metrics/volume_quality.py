"""Paired 3-D image-translation metrics: a translated volume against its ground truth, per subject and summarised.

The 3-D translation family (T1w <-> T2w) is scored against the *paired*, co-registered ground
truth with the four numbers papers report (reference §(d), §(g) item 9):

* :func:`masked_mae`: mean absolute error inside a mask, in the volumes' intensity units;
* :func:`psnr`: peak signal-to-noise ratio in dB, ``20 log10(data_range / RMSE)``;
* :func:`ssim3d`: structural similarity with a 3-D Gaussian window (MONAI ``compute_ssim_and_cs``,
  ``spatial_dims=3``), averaged over the mask;
* :func:`nmi`: Studholme's normalised mutual information ``(H(A) + H(B)) / H(A, B)`` of a joint
  histogram, in [1, 2]; unlike the others it does not need the two intensity scales to agree.

:func:`foreground_mask` gives a head mask from the target, and :func:`evaluate_pairs` scores a
list of subjects and summarises them as plain JSON.

Volumes are (X, Y, Z) float arrays indexed [i, j, k] (NIfTI voxel order) in physical intensities,
the prediction in the same units as the target (a model's output mapped back from its normalised
range). Every function refuses a shape mismatch, NaN or infinite voxels (naming the volume and the
subject) and an empty mask.

Conventions:

* **data_range** (PSNR, SSIM): the peak of the intensity scale. None: ``max - min`` of the
  *target* inside the mask (the ground truth sets the scale, so a prediction cannot change its
  own score by adding outliers). Pass a fixed value to compare numbers across subjects or papers.
* **Identical volumes**: MAE 0, SSIM 1, NMI 2 and PSNR ``inf`` (no cap: a cap would bias a
  mean). :func:`evaluate_pairs` stores an infinite PSNR as None (JSON has no infinity) and
  counts it in the summary's ``n_infinite``; the summary's mean is over the finite values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.io.volumes import finite_volume, foreground_mask  # the one head mask of prepare, scaling and scores
from gansim.metrics.image_quality import SSIM_KERNEL, SSIM_SIGMA

__all__ = ["METRICS", "evaluate_pairs", "foreground_mask", "masked_mae", "nmi", "psnr", "ssim3d"]

#: The metrics of :func:`evaluate_pairs`, in table order, with their units.
METRICS = {"mae": "intensity units", "psnr": "dB", "ssim": "1", "nmi": "1 (Studholme, in [1, 2])"}


# ----------------------------------------------------------------------------------------------
# input checks


def _where(subject: str | None) -> str:
    return f" of subject {subject!r}" if subject else ""


def _volume(value: Any, what: str, subject: str | None) -> np.ndarray:
    """``value`` as a finite float64 (X, Y, Z) array, or a DataError naming it."""
    return finite_volume(value, f"{what}{_where(subject)}")


def _mask(value: Any, shape: tuple[int, ...], subject: str | None) -> np.ndarray | None:
    """The mask as a boolean array of ``shape`` (None stays None); 0/1 numbers are accepted."""
    if value is None:
        return None
    m = np.asarray(value)
    if m.shape != shape:
        raise DataError(f"mask{_where(subject)}: shape {m.shape} differs from the volumes' {shape}")
    if m.dtype != bool:
        if m.dtype.kind not in "iuf" or not np.isin(m, (0, 1)).all():
            raise DataError(f"mask{_where(subject)}: expected booleans or 0/1 values, got values of type {m.dtype} outside {{0, 1}}")
        m = m.astype(bool)
    if not m.any():
        raise DataError(f"mask{_where(subject)}: empty (no voxel selected); expected a mask holding the voxels to score")
    return m


def _pair(pred: Any, target: Any, mask: Any, subject: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p = _volume(pred, "prediction", subject)
    t = _volume(target, "target", subject)
    if p.shape != t.shape:
        raise DataError(f"prediction{_where(subject)} has shape {p.shape}, the target {t.shape}: expected the same (X, Y, Z) grid")
    return p, t, _mask(mask, t.shape, subject)


def _inside(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return x.ravel() if mask is None else x[mask]


def _data_range(target: np.ndarray, mask: np.ndarray | None, data_range: float | None, subject: str | None) -> float:
    """The given range (checked), or the target's max - min inside the mask."""
    if data_range is not None:
        value = float(data_range)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"data_range {data_range!r}: expected the intensity scale's peak-to-peak range, a finite number > 0")
        return value
    t = _inside(target, mask)
    value = float(t.max() - t.min())
    if value <= 0:
        raise DataError(f"target{_where(subject)} is constant ({t.min():.6g}) inside the mask: its range cannot set data_range; pass data_range explicitly")
    return value


# ----------------------------------------------------------------------------------------------
# the metrics


def masked_mae(pred: Any, target: Any, mask: Any = None, *, subject: str | None = None) -> float:
    """Mean absolute error ``mean(|pred - target|)`` over the mask (None: every voxel), in intensity units.

    Args:
        pred, target: (X, Y, Z) volumes in the same intensity units.
        mask: (X, Y, Z) booleans (or 0/1), the voxels scored; None scores the whole volume.
        subject: named in error messages.
    """
    p, t, m = _pair(pred, target, mask, subject)
    return float(np.mean(np.abs(_inside(p, m) - _inside(t, m))))


def psnr(pred: Any, target: Any, mask: Any = None, data_range: float | None = None, *, subject: str | None = None) -> float:
    """Peak signal-to-noise ratio in dB: ``20 log10(data_range / sqrt(MSE))``, MSE over the mask.

    Args:
        pred, target: (X, Y, Z) volumes in the same intensity units.
        mask: the voxels scored (None: all).
        data_range: the peak; None takes the target's ``max - min`` inside the mask (see the module
            docstring). With ``mask=None`` and a given ``data_range`` this equals MONAI's ``PSNRMetric``.
        subject: named in error messages.

    Returns:
        PSNR in dB; ``math.inf`` when the volumes agree exactly inside the mask.
    """
    p, t, m = _pair(pred, target, mask, subject)
    peak = _data_range(t, m, data_range, subject)
    mse = float(np.mean((_inside(p, m) - _inside(t, m)) ** 2))
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(peak) - 10.0 * math.log10(mse)


def ssim_kernel_size(shape: Sequence[int]) -> tuple[int, int, int]:
    """The SSIM window per axis: 11 voxels, or the largest odd size >= 3 that fits a shorter axis."""
    sizes = []
    for n in shape:
        k = min(SSIM_KERNEL, int(n))
        k -= 1 - k % 2
        if k < 3:
            raise DataError(f"volume shape {tuple(shape)}: every axis needs at least 3 voxels for a 3-D SSIM window")
        sizes.append(k)
    return tuple(sizes)  # type: ignore[return-value]


def ssim3d(pred: Any, target: Any, data_range: float | None, mask: Any = None, *, subject: str | None = None) -> float:
    """Structural similarity of two volumes with a 3-D Gaussian window, averaged over the mask.

    The SSIM map is MONAI's ``compute_ssim_and_cs`` (``spatial_dims=3``, Gaussian window of 11
    voxels per axis, sigma 1.5 voxels, k1 = 0.01, k2 = 0.03; axes shorter than 11 voxels get the
    largest odd window that fits). MONAI evaluates the window only where it lies wholly inside the
    volume ("valid" positions), so the map covers the voxels at least ``r = (k - 1) / 2`` from
    every face; the score is the mean of the map over the voxels of ``mask`` among those (None:
    the mean of the whole map, what MONAI's ``SSIMMetric`` returns). Windows centred in the mask
    still see the voxels around it. The window is in voxels, whatever the spacing.

    Both volumes are divided by ``data_range`` before MONAI's float32 arithmetic (SSIM is
    unchanged when the images and the range are scaled together), which keeps its local variances
    accurate for intensities in the thousands.

    Args:
        pred, target: (X, Y, Z) volumes in the same intensity units.
        data_range: the peak of the intensity scale (sets SSIM's stabilising constants); None:
            the target's ``max - min`` inside the mask.
        mask: the voxels whose windows are averaged (None: all valid positions).
        subject: named in error messages.

    Returns:
        Mean SSIM (1 for identical volumes).
    """
    from monai.metrics.regression import compute_ssim_and_cs

    p, t, m = _pair(pred, target, mask, subject)
    peak = _data_range(t, m, data_range, subject)
    kernel = ssim_kernel_size(t.shape)
    x = torch.as_tensor(p / peak, dtype=torch.float32)[None, None]
    y = torch.as_tensor(t / peak, dtype=torch.float32)[None, None]
    ssim_map, _ = compute_ssim_and_cs(x, y, spatial_dims=3, kernel_size=kernel, kernel_sigma=(SSIM_SIGMA,) * 3, data_range=1.0)
    values = ssim_map[0, 0].double().numpy()
    if m is None:
        return float(values.mean())
    r = [(k - 1) // 2 for k in kernel]
    inner = m[r[0] : m.shape[0] - r[0], r[1] : m.shape[1] - r[1], r[2] : m.shape[2] - r[2]]
    if not inner.any():
        raise DataError(
            f"mask{_where(subject)}: every masked voxel lies within {r} voxels of a face of the {t.shape} volume, "
            "where the 3-D SSIM window does not fit; expected a mask reaching into the volume"
        )
    return float(values[inner].mean())


def _entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of probabilities ``p`` (zeros skipped)."""
    q = p[p > 0]
    return float(-np.sum(q * np.log(q)))


def _edges(v: np.ndarray) -> tuple[float, float]:
    lo, hi = float(v.min()), float(v.max())
    return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)  # a constant: one bin around it (as np.histogram does)


def _check_bins(bins: Any) -> None:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ConfigError(f"bins {bins!r}: expected a whole number of histogram bins >= 2")


def nmi(pred: Any, target: Any, mask: Any = None, bins: int = 64, *, subject: str | None = None) -> float:
    """Studholme's normalised mutual information ``(H(A) + H(B)) / H(A, B)`` of the voxels in the mask.

    The entropies are plug-in estimates from a ``bins`` x ``bins`` joint histogram
    (``numpy.histogram2d``), each axis spanning that volume's own min..max inside the mask in equal
    bins, so NMI needs no common intensity scale: it is 2 when one volume's bin determines the
    other's and the reverse (identical volumes, an affine or any bin-to-bin bijective remap) and 1
    for independent volumes, up to the plug-in estimator's positive bias of about
    ``(bins - 1)^2 / (2 N)`` nats of mutual information for N voxels. A constant volume against a
    varying one gives 1.

    Args:
        pred, target: (X, Y, Z) volumes (any intensity scales).
        mask: the voxels used (None: all).
        bins: histogram bins per axis, >= 2.
        subject: named in error messages.

    Raises:
        DataError: both volumes constant inside the mask (0 / 0).
    """
    _check_bins(bins)
    p, t, m = _pair(pred, target, mask, subject)
    a, b = _inside(p, m), _inside(t, m)
    joint, _, _ = np.histogram2d(a, b, bins=int(bins), range=[_edges(a), _edges(b)])
    prob = joint / joint.sum()
    h_ab = _entropy(prob)
    if h_ab == 0.0:
        raise DataError(f"prediction and target{_where(subject)} are both constant inside the mask: their normalised mutual information is undefined (0 / 0)")
    return (_entropy(prob.sum(axis=1)) + _entropy(prob.sum(axis=0))) / h_ab


# ----------------------------------------------------------------------------------------------
# per subject and summarised


def _summary(values: list[float]) -> dict[str, Any]:
    """mean, sample std (ddof 1; None below 2 values), median and n of the finite values."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    out: dict[str, Any] = {"mean": None, "std": None, "median": None, "n": int(finite.size)}
    if finite.size:
        out["mean"] = float(finite.mean())
        out["median"] = float(np.median(finite))
        out["std"] = float(finite.std(ddof=1)) if finite.size > 1 else None
    return out


def evaluate_pairs(pairs: Sequence[tuple[str, Any, Any, Any]], data_range: float | None = None, *, bins: int = 64) -> dict[str, Any]:
    """Score each (name, prediction, target, mask | None) and summarise; plain JSON-able data.

    Args:
        pairs: one tuple per subject: its name (unique), the (X, Y, Z) prediction and target in
            the same intensity units, and the mask of the voxels scored (None: the whole volume;
            :func:`foreground_mask` of the target gives the head).
        data_range: the PSNR/SSIM peak for every subject; None: each target's ``max - min``
            inside its mask.
        bins: NMI histogram bins per axis.

    Returns:
        ``rows``: one dict per subject in the given order: ``subject``, ``mae``, ``psnr`` (None
        when infinite: identical volumes), ``ssim``, ``nmi``, ``n_voxels`` (voxels scored),
        ``data_range`` (the peak used), ``mask`` ("given" or "whole volume");
        ``summary``: for each metric ``mean``, ``std`` (sample, ddof 1; None for one subject),
        ``median`` and ``n`` (subjects with a finite value), and for PSNR ``n_infinite``;
        ``units`` and ``settings`` (data-range convention, SSIM window, NMI binning).
    """
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not pairs:
        raise DataError("pairs: expected a non-empty list of (name, prediction, target, mask or None) tuples")
    _check_bins(bins)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    kernels = set()
    for index, item in enumerate(pairs):
        if not isinstance(item, (tuple, list)) or len(item) != 4:
            raise DataError(f"pairs[{index}]: expected a (name, prediction, target, mask or None) tuple, got {type(item).__name__} of length {len(item) if hasattr(item, '__len__') else '?'}")
        name, pred, target, mask = item
        name = str(name)
        if name in seen:
            raise DataError(f"pairs[{index}]: subject name {name!r} repeats an earlier one; expected unique names")
        seen.add(name)
        p, t, m = _pair(pred, target, mask, name)
        peak = _data_range(t, m, data_range, name)
        kernels.add(ssim_kernel_size(t.shape))
        value_psnr = psnr(p, t, m, peak, subject=name)
        rows.append({
            "subject": name,
            "mae": masked_mae(p, t, m, subject=name),
            "psnr": value_psnr if math.isfinite(value_psnr) else None,
            "ssim": ssim3d(p, t, peak, m, subject=name),
            "nmi": nmi(p, t, m, bins, subject=name),
            "n_voxels": int(t.size if m is None else m.sum()),
            "data_range": peak,
            "mask": "whole volume" if m is None else "given",
        })
    summary = {key: _summary([math.inf if r[key] is None else r[key] for r in rows]) for key in METRICS}
    summary["psnr"]["n_infinite"] = sum(r["psnr"] is None for r in rows)
    settings = {
        "data_range": "given" if data_range is not None else "target max - min inside the mask, per subject",
        "psnr": "20 log10(data_range / RMSE) over the mask; identical volumes give infinity, stored as None",
        "ssim": {
            "implementation": "monai.metrics.regression.compute_ssim_and_cs, spatial_dims=3",
            "kernel": "gaussian",
            "sigma_voxels": SSIM_SIGMA,
            "kernel_sizes": [list(k) for k in sorted(kernels)],  # per axis; several when short axes shrink the window
            "k1": 0.01,
            "k2": 0.03,
            "masking": "mean of the SSIM map over masked voxels at valid window positions",
        },
        "nmi": {"definition": "(H(A) + H(B)) / H(A, B) (Studholme)", "bins": int(bins), "histogram": "numpy.histogram2d, each axis over its own min..max in the mask"},
    }
    return {"rows": rows, "summary": summary, "units": dict(METRICS), "settings": settings}
