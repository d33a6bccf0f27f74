"""A trained PACGAN as a model file: labelled images from the generator, class probabilities from the discriminator.

The model directory holds both networks' weights (safetensors) and a JSON manifest: family
``pacgan``, the architecture (channels and classes resolved), class names, the intensity scaling
(images come out in the training data's intensities) and the pixel spacing of the training images.
Loading reads only those two files; nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from gansim.errors import ConfigError, DataError, ModelFileError
from gansim.models.model_file import architecture_settings, load_network_tensors, network_tensors, save_model_dir
from gansim.models.pacgan_config import PACGANSettings
from gansim.models.pacgan_nets import ProgressiveDiscriminator, ProgressiveGenerator
from gansim.models.registry import register_family

__all__ = ["PACGANModel", "build_networks", "save_pacgan", "labels_for_request", "LATENT_BLOCK"]

#: latents are drawn in blocks of this many images, block j from ``default_rng([seed, j])``, so
#: image i of a seed is the same whatever the batch size or the slice of images asked for
LATENT_BLOCK = 64


def build_networks(settings: PACGANSettings) -> tuple[ProgressiveGenerator, ProgressiveDiscriminator]:
    """Fresh networks for resolved settings (``channels`` and ``num_classes`` set)."""
    if settings.channels is None or settings.num_classes is None:
        raise ConfigError("model.channels and model.num_classes must be known (from the data) before the networks are built")
    widths = settings.widths()
    g = ProgressiveGenerator(widths, settings.channels, settings.num_classes, settings.embedding_dim, settings.z_dim, settings.start_size)
    d = ProgressiveDiscriminator(widths, settings.channels, settings.num_classes, settings.aux_hidden, settings.projection,
                                 settings.minibatch_std_group, settings.start_size)
    return g, d


def save_pacgan(path: str | Path, g: ProgressiveGenerator, d: ProgressiveDiscriminator, settings: PACGANSettings, *, class_names: list[str],
                intensity: dict[str, Any], spacing_mm: tuple[float, float], extra: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write both networks and the manifest as a model directory."""
    manifest: dict[str, Any] = {
        "family": "pacgan",
        "architecture": {"generator": "gansim progressive class-conditional GAN (PACGAN), auxiliary-classifier discriminator", **settings.model_dump(mode="json")},
        "classes": list(class_names),
        "intensity": intensity,
        "spacing_mm": [float(s) for s in spacing_mm],
        "image_shape": [settings.channels, settings.image_size, settings.image_size],
        "units": {"images": "the training images' intensities (scaled to [-1, 1] inside the networks)", "spacing_mm": "mm per pixel of the final images along W, H"},
    }
    manifest.update(extra or {})
    return save_model_dir(path, manifest, {**network_tensors("generator", g), **network_tensors("discriminator", d)}, force=force)


def labels_for_request(num_classes: int, n: int | None = None, label: int | None = None, per_class: list[int] | None = None, source: str = "request") -> np.ndarray:
    """The labels of the images asked for, in the order they are made.

    ``per_class`` (one count per class) gives blocks of class 0, 1, ...; ``label`` gives ``n``
    images of one class; ``n`` alone splits ``n`` equally over the classes (PACGAN's
    N_IMAGES_GENERATED), the last class taking the remainder as PACGAN's generator does.
    """
    if per_class is not None:
        if n is not None or label is not None:
            raise ConfigError(f"{source}: give either per-class counts or n (with or without a label), not both")
        if len(per_class) != num_classes:
            raise ConfigError(f"{source}: {len(per_class)} per-class counts for a model of {num_classes} classes; expected {num_classes} comma-separated counts")
        if any(c < 0 for c in per_class):
            raise ConfigError(f"{source}: per-class counts {per_class} must be >= 0")
        return np.repeat(np.arange(num_classes), per_class).astype(np.int64)
    if n is None or n < 0:
        raise ConfigError(f"{source}: expected a number of images n >= 0, got {n!r}")
    if label is not None:
        if not 0 <= label < num_classes:
            raise ConfigError(f"{source}: label {label} does not exist; the model has classes 0..{num_classes - 1}")
        return np.full(n, label, dtype=np.int64)
    counts = [n // num_classes] * num_classes
    counts[-1] += n % num_classes  # the last class takes the remainder, as PACGAN's generator does
    return np.repeat(np.arange(num_classes), counts).astype(np.int64)


@register_family("pacgan")
class PACGANModel:
    """A trained PACGAN.

    Attributes:
        generator, discriminator: the networks (eval mode, no gradients).
        settings: the architecture.
        class_names: one name per class.
        manifest: the model file's manifest.
    """

    def __init__(self, g: ProgressiveGenerator, d: ProgressiveDiscriminator, settings: PACGANSettings, manifest: dict[str, Any], device: torch.device) -> None:
        from gansim.io.slices import IntensityScaling

        self.generator = g.to(device).eval().requires_grad_(False)
        self.discriminator = d.to(device).eval().requires_grad_(False)
        self.settings, self.manifest, self.device = settings, manifest, device
        self.class_names = [str(c) for c in manifest.get("classes", range(settings.num_classes or 0))]
        self.scaling = IntensityScaling.from_dict(manifest.get("intensity"), source="model manifest 'intensity'")
        self.spacing_mm = tuple(float(s) for s in manifest.get("spacing_mm", (1.0, 1.0)))

    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> PACGANModel:
        settings = architecture_settings(manifest, PACGANSettings, source, "PACGAN")
        if settings.channels is None or settings.num_classes is None:
            raise ModelFileError(f"{source}: manifest 'architecture' lacks channels or num_classes")
        if len(manifest.get("classes", [])) != settings.num_classes:
            raise ModelFileError(f"{source}: manifest 'classes' has {len(manifest.get('classes', []))} names for {settings.num_classes} classes")
        g, d = build_networks(settings)
        load_network_tensors(g, tensors, "generator", source)
        load_network_tensors(d, tensors, "discriminator", source)
        try:
            return cls(g, d, settings, manifest, device)
        except ModelFileError as err:
            raise ModelFileError(f"{source}: {err}") from err

    @property
    def num_classes(self) -> int:
        return int(self.settings.num_classes or 0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model makes and classifies."""
        return (int(self.settings.channels or 1), self.settings.image_size, self.settings.image_size)

    def latents(self, seed: int, first: int, n: int) -> torch.Tensor:
        """The latents of images ``first .. first + n - 1`` of ``seed`` (CPU, float32), whatever the batching."""
        z_dim = self.settings.z_dim
        if n == 0:
            return torch.zeros(0, z_dim)
        blocks = range(first // LATENT_BLOCK, (first + n - 1) // LATENT_BLOCK + 1)
        z = np.concatenate([np.random.default_rng([seed, j]).standard_normal((LATENT_BLOCK, z_dim), dtype=np.float32) for j in blocks])
        offset = first - blocks[0] * LATENT_BLOCK
        return torch.from_numpy(z[offset : offset + n])

    @torch.inference_mode()
    def generate(self, labels: np.ndarray, *, seed: int = 0, batch_size: int = 64, first: int = 0) -> np.ndarray:
        """Images ``(N, C, H, W)`` float32 in the training data's intensities, one per label.

        Image ``i`` depends only on ``seed``, ``first + i`` and its label: its latent does not depend on
        ``batch_size``, and the same batch size gives the same bits; another batch size gives the
        same images up to float32 rounding (CPU convolutions sum in another order for another batch).
        """
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 1:
            raise ConfigError(f"labels: expected a 1-D array of class indices, got shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ConfigError(f"labels: classes must be 0..{self.num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: expected >= 1, got {batch_size}")
        out = np.empty((len(labels), *self.image_shape), dtype=np.float32)
        for start in range(0, len(labels), batch_size):
            stop = min(len(labels), start + batch_size)
            z = self.latents(seed, first + start, stop - start).to(self.device)
            y = torch.from_numpy(labels[start:stop]).to(self.device)
            images = self.generator(z, y).float().cpu().numpy()
            out[start:stop] = self.scaling.inverse(images)
        return out

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray, *, batch_size: int = 64, source: str = "images") -> np.ndarray:
        """Class probabilities ``(N, K)`` of images ``(N, C, H, W)`` in the training data's intensities.

        Each image's answer does not depend on the others in its batch: the discriminator's
        minibatch statistic is the running value learnt on real training batches.
        """
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"{source}: images of shape {tuple(images.shape)} (N, C, H, W); this model classifies (N, {', '.join(map(str, self.image_shape))})")
        if not np.isfinite(images).all():
            bad = int(np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))[0])
            raise DataError(f"{source}: image {bad} holds NaN or Inf")
        out = np.empty((len(images), self.num_classes), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            stop = min(len(images), start + batch_size)
            x = torch.from_numpy(self.scaling.forward(images[start:stop].astype(np.float32))).to(self.device)
            out[start:stop] = F.softmax(self.discriminator.classify(x).float(), dim=1).cpu().numpy()
        return out
