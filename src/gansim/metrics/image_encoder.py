"""A small image encoder trained locally on the real training images: the feature extractor of FD/KID.

No weights are downloaded (reference §(f), "domain-classifier features"): a small 2-D CNN is
trained, for a fixed number of epochs from a fixed seed, on the *real training* images and their
labels, and the Fréchet and kernel distances of generated images are computed on its
penultimate layer. Scoring later runs with the *same* saved encoder keeps their numbers
comparable; the result records the encoder's training-set size, epochs, held-out accuracy and a
hash of its weights.

Network. Input (N, C, H, W) with H and W powers of 2 >= 16, standardised with the training set's
per-channel pixel mean and std, then resized to a fixed ``internal_size`` square (area averaging
to shrink, which for powers of 2 is exact average pooling; bilinear to enlarge). Stride-2 3x3
convolutions with GroupNorm and LeakyReLU halve the size down to 4 x 4 (widths 32, 64, 128, 128, ...),
a linear layer and LeakyReLU give the ``feature_dim`` features; a linear head classifies them;
a decoder of a quarter of those widths (nearest upsampling + 3x3 convolutions) rebuilds the image.

Training objective (our choice): cross-entropy of the labels **plus** ``recon_weight`` x the mean
squared error of a small decoder that rebuilds the (standardised, resized) image from the
features. A pure classifier only needs the directions that separate the classes, so its features
can be blind to defects that do not change the label (blur, noise, intensity shifts); the
reconstruction term makes them describe the image too. ``recon_weight=0`` gives the plain
classifier. A stratified ``holdout_fraction`` of the images is kept out of training to measure
the accuracy.

Saved as a directory with ``encoder.safetensors`` (weights) and ``encoder.json`` (architecture,
classes, input normalisation, training record, weights hash); nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gansim.errors import ConfigError, DataError, ModelFileError, OutputExistsError

__all__ = ["ImageEncoder", "EncoderNet", "fit_encoder", "save_encoder", "load_encoder", "weights_sha256", "ENCODER_FORMAT"]

ENCODER_FORMAT = "gansim-image-encoder"
ENCODER_FORMAT_VERSION = 1
_JSON_NAME = "encoder.json"
_WEIGHTS_NAME = "encoder.safetensors"
_MAX_WIDTH = 128


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _widths(internal_size: int) -> list[int]:
    """Channel widths of the stride-2 blocks taking internal_size down to 4."""
    n_down = int(np.log2(internal_size // 4))
    return [min(32 * 2**k, _MAX_WIDTH) for k in range(n_down)]


class EncoderNet(nn.Module):
    """Encoder (features), classifier head and reconstruction decoder; shapes in the docstrings of the methods."""

    def __init__(self, in_channels: int, internal_size: int, feature_dim: int, n_classes: int) -> None:
        super().__init__()
        self.internal_size = internal_size
        widths = _widths(internal_size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        prev = widths[0]
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1), nn.GroupNorm(min(8, w), w), nn.LeakyReLU(0.2)]
            prev = w
        self.body = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(prev * 16, feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(feature_dim, n_classes)
        # the decoder only has to make the features describe the image: a quarter of the
        # encoder's widths keeps its cost near the encoder's (full widths cost ~10x more)
        dec_widths = [max(8, w // 4) for w in widths]
        prev = dec_widths[-1]
        self.decode_in = nn.Linear(feature_dim, prev * 16)
        up: list[nn.Module] = []
        for w in reversed(dec_widths):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, w, 3, padding=1), nn.LeakyReLU(0.2)]
            prev = w
        self.decoder = nn.Sequential(*up, nn.Conv2d(prev, in_channels, 3, padding=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) standardised, resized images -> (B, feature_dim) features."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, S, S) -> (features (B, F), class logits (B, K), reconstruction (B, C, S, S))."""
        f = self.features(x)
        h = self.decode_in(f).view(len(x), -1, 4, 4)
        return f, self.head(f), self.decoder(h)


def weights_sha256(network: nn.Module) -> str:
    """Hex SHA-256 of a network's tensors (names, dtypes, shapes and bytes, in sorted name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def _check_images(images: Any, what: str, channels: int | None = None) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or len(x) < 1:
        raise DataError(f"{what}: shape {np.shape(images)}: expected (N, C, H, W) images")
    h, w = x.shape[2:]
    if not (_is_power_of_two(h) and _is_power_of_two(w) and h >= 16 and w >= 16):
        raise DataError(f"{what}: image size {h} x {w}: the encoder expects powers of 2 >= 16 (e.g. 16, 32, 64, 128, 256)")
    if channels is not None and x.shape[1] != channels:
        raise DataError(f"{what}: {x.shape[1]} channel(s); this encoder was trained on {channels}")
    if not np.all(np.isfinite(x)):
        bad = np.unique(np.nonzero(~np.isfinite(x))[0])
        raise DataError(f"{what}: NaN or Inf in image(s) {bad[:10].tolist()}{' ...' if bad.size > 10 else ''}; expected finite values")
    return x


class ImageEncoder:
    """A trained :class:`EncoderNet` with its input normalisation, classes and training record.

    Attributes:
        network: the network (eval mode).
        info: plain data: ``architecture`` (in_channels, internal_size, feature_dim, n_classes),
            ``classes`` (label values, in head order), ``input_mean``/``input_std`` (per channel),
            ``training`` (n_train, n_holdout, epochs, seed, holdout_accuracy, ...), ``weights_sha256``.
    """

    def __init__(self, network: EncoderNet, info: dict[str, Any]) -> None:
        self.network = network.eval()
        self.info = info
        self._mean = torch.tensor(info["input_mean"], dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(info["input_std"], dtype=torch.float32).view(1, -1, 1, 1)

    @property
    def feature_dim(self) -> int:
        return int(self.info["architecture"]["feature_dim"])

    @property
    def classes(self) -> list[int]:
        return [int(c) for c in self.info["classes"]]

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise and resize a batch to the internal square size."""
        x = (x - self._mean.to(x.device)) / self._std.to(x.device)
        s = self.network.internal_size
        h, w = x.shape[2:]
        if (h, w) == (s, s):
            return x
        if h >= s and w >= s:
            return F.interpolate(x, size=(s, s), mode="area")
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)

    @torch.no_grad()
    def features_and_logits(self, images: Any, batch_size: int = 256, what: str = "images") -> tuple[np.ndarray, np.ndarray]:
        """(N, C, H, W) images -> ((N, feature_dim) features, (N, n_classes) class logits), float64; ``what`` names them in errors."""
        x = _check_images(images, what, int(self.info["architecture"]["in_channels"]))
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r}: expected a whole number >= 1")
        device = next(self.network.parameters()).device
        feats, logits = [], []
        for start in range(0, len(x), int(batch_size)):
            batch = self._prepare(torch.from_numpy(x[start : start + int(batch_size)]).to(device))
            f = self.network.features(batch)
            feats.append(f.cpu().double().numpy())
            logits.append(self.network.head(f).cpu().double().numpy())
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """(N, C, H, W) images (H, W powers of 2 >= 16, same units as the training images) -> (N, feature_dim) float64."""
        return self.features_and_logits(images, batch_size)[0]

    def predict(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """(N,) predicted label values (from ``classes``) of (N, C, H, W) images."""
        logits = self.features_and_logits(images, batch_size)[1]
        return np.asarray(self.classes)[np.argmax(logits, axis=1)]

    def describe(self) -> dict[str, Any]:
        """Plain data recording the extractor next to the scores."""
        arch = self.info["architecture"]
        return {
            "kind": "locally trained CNN encoder (classifier + reconstruction), penultimate layer",
            "feature_dim": arch["feature_dim"],
            "internal_size": arch["internal_size"],
            "resize": "area averaging to shrink, bilinear (align_corners=False) to enlarge",
            "classes": self.classes,
            "training": dict(self.info["training"]),
            "weights_sha256": self.info["weights_sha256"],
        }


def _stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean (N,) mask of held-out images: round(fraction * n_c) of each class, none of a class with < 2 images."""
    held = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return held
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        held[rng.permutation(idx)[:k]] = True
    return held


def _labels(labels: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: shape {y.shape}: expected (N,) = ({n},), one integer label per image")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise DataError(f"{what}: dtype {y.dtype}: expected integer class labels")
    return y.astype(np.int64)


def fit_encoder(
    images: Any,
    labels: Any,
    *,
    epochs: int,
    seed: int,
    feature_dim: int = 128,
    device: str = "cpu",
    internal_size: int = 32,
    batch_size: int = 64,
    lr: float = 1e-3,
    recon_weight: float = 1.0,
    holdout_fraction: float = 0.2,
) -> ImageEncoder:
    """Train an encoder on real training images and labels (see the module docstring).

    Args:
        images: (N, C, H, W) real *training* images (H, W powers of 2 >= 16); not the images the
            generator is later scored against, or the distances are biased low.
        labels: (N,) integer class labels.
        epochs: passes over the training part.
        seed: seeds the initial weights, the hold-out split and the batch order.
        feature_dim: size of the penultimate layer (the features).
        device: torch device.
        internal_size: power of 2 >= 16 every image is resized to.
        batch_size, lr: Adam mini-batch size and learning rate.
        recon_weight: weight of the reconstruction MSE next to the cross-entropy (0: classifier only).
        holdout_fraction: stratified fraction kept out to measure the accuracy (0: none; accuracy None).

    Returns:
        The trained :class:`ImageEncoder`; ``info["training"]`` records n_train, n_holdout, epochs,
        seed, the final training loss and the held-out accuracy.
    """
    x = _check_images(images, "encoder training images")
    y = _labels(labels, len(x), "encoder training labels")
    for name, value, minimum in (("epochs", epochs, 1), ("feature_dim", feature_dim, 1), ("batch_size", batch_size, 1), ("internal_size", internal_size, 16), ("seed", seed, 0)):
        if isinstance(value, bool) or int(value) != value or value < minimum:
            raise ConfigError(f"{name} {value!r}: expected a whole number >= {minimum}")
    if not _is_power_of_two(int(internal_size)):
        raise ConfigError(f"internal_size {internal_size!r}: expected a power of 2 >= 16")
    if not (0.0 <= holdout_fraction < 1.0):
        raise ConfigError(f"holdout_fraction {holdout_fraction!r}: expected 0 <= fraction < 1")
    if not (np.isfinite(recon_weight) and recon_weight >= 0) or not (np.isfinite(lr) and lr > 0):
        raise ConfigError(f"recon_weight {recon_weight!r} / lr {lr!r}: expected recon_weight >= 0 and lr > 0")
    classes = np.unique(y)
    target = np.searchsorted(classes, y)
    rng = np.random.default_rng(seed)
    held = _stratified_holdout(y, holdout_fraction, rng)
    train_idx = np.flatnonzero(~held)
    mean = x[train_idx].mean(axis=(0, 2, 3)).astype(np.float64)
    std = x[train_idx].std(axis=(0, 2, 3)).astype(np.float64)
    std = np.where(std > 0, std, 1.0)

    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        net = EncoderNet(x.shape[1], int(internal_size), int(feature_dim), len(classes)).to(dev)
    info: dict[str, Any] = {
        "architecture": {"in_channels": int(x.shape[1]), "internal_size": int(internal_size), "feature_dim": int(feature_dim), "n_classes": len(classes)},
        "classes": classes.tolist(),
        "input_mean": mean.tolist(),
        "input_std": std.tolist(),
    }
    encoder = ImageEncoder(net, {**info, "training": {}, "weights_sha256": ""})
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(target)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    net.train()
    last_loss = float("nan")
    for _ in range(int(epochs)):
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=shuffle)]
        total, count = 0.0, 0
        for start in range(0, len(order), int(batch_size)):
            idx = order[start : start + int(batch_size)]
            batch = encoder._prepare(xt[idx].to(dev))
            _, logits, recon = net(batch)
            loss = F.cross_entropy(logits, yt[idx].to(dev))
            if recon_weight > 0:
                loss = loss + recon_weight * F.mse_loss(recon, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        last_loss = total / max(count, 1)
    net.eval()
    holdout_accuracy = None
    if held.any():
        pred = encoder.predict(x[held])
        holdout_accuracy = float(np.mean(pred == y[held]))
    encoder.info["training"] = {
        "n_train": int(len(train_idx)),
        "n_holdout": int(held.sum()),
        "holdout_accuracy": holdout_accuracy,
        "chance_accuracy": float(np.max(np.bincount(target[held])) / held.sum()) if held.any() else None,
        "epochs": int(epochs),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "recon_weight": float(recon_weight),
        "final_train_loss": last_loss,
        "image_size": [int(x.shape[2]), int(x.shape[3])],
        "training_data_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest(),
    }
    encoder.info["weights_sha256"] = weights_sha256(net)
    return encoder


# ----------------------------------------------------------------------------------------------
# save / load


def save_encoder(path: str | os.PathLike[str], enc: ImageEncoder, force: bool = False) -> Path:
    """Write ``enc`` to the directory ``path`` (encoder.safetensors + encoder.json), atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in enc.network.state_dict().items()}
        save_file(state, str(tmp / _WEIGHTS_NAME), metadata={"format": ENCODER_FORMAT})
        document = {"format": ENCODER_FORMAT, "format_version": ENCODER_FORMAT_VERSION, **enc.info}
        (tmp / _JSON_NAME).write_text(json.dumps(document, indent=2) + "\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "old")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _require(document: dict[str, Any], keys: Sequence[str], source: Path) -> None:
    for key in keys:
        if key not in document:
            raise ModelFileError(f"{source}: missing key {key!r}; not a complete gansim image encoder")


def load_encoder(path: str | os.PathLike[str], device: str = "cpu") -> ImageEncoder:
    """Read an encoder written by :func:`save_encoder` (JSON + safetensors; nothing is unpickled).

    Raises:
        ModelFileError: missing files, wrong format or version, mismatched weights, or a weights
            hash that differs from the one recorded in ``encoder.json``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta_path, weights_path = path / _JSON_NAME, path / _WEIGHTS_NAME
    if not path.is_dir() or not meta_path.is_file() or not weights_path.is_file():
        raise ModelFileError(f"{path}: expected a directory holding {_JSON_NAME} and {_WEIGHTS_NAME} (written by save_encoder)")
    try:
        document = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{meta_path}: not valid JSON ({err})") from err
    if not isinstance(document, dict) or document.get("format") != ENCODER_FORMAT:
        raise ModelFileError(f"{meta_path}: key 'format' is {document.get('format') if isinstance(document, dict) else None!r}; expected {ENCODER_FORMAT!r}")
    version = document.get("format_version")
    if not isinstance(version, int) or version > ENCODER_FORMAT_VERSION:
        raise ModelFileError(f"{meta_path}: key 'format_version' is {version!r}; this gansim reads versions up to {ENCODER_FORMAT_VERSION}")
    _require(document, ("architecture", "classes", "input_mean", "input_std", "training", "weights_sha256"), meta_path)
    arch = document["architecture"]
    _require(arch, ("in_channels", "internal_size", "feature_dim", "n_classes"), meta_path)
    try:
        net = EncoderNet(int(arch["in_channels"]), int(arch["internal_size"]), int(arch["feature_dim"]), int(arch["n_classes"]))
        tensors = load_file(str(weights_path))
        net.load_state_dict(tensors)
    except Exception as err:  # safetensors and load_state_dict raise their own types
        raise ModelFileError(f"{weights_path}: weights do not load into the architecture of {meta_path} ({err})") from err
    if weights_sha256(net) != document["weights_sha256"]:
        raise ModelFileError(f"{weights_path}: weights hash differs from 'weights_sha256' in {meta_path}; the file is corrupt or was replaced")
    info = {k: v for k, v in document.items() if k not in ("format", "format_version")}
    return ImageEncoder(net.to(torch.device(device)), info)
