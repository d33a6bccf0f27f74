"""The progressive class-conditional generator and discriminator (PACGAN's networks, any number of levels, any dimension).

Level ``k`` works on images of side ``start_size·2^k``. Every level's layers exist from the start
(so one optimiser holds them all and a checkpoint has one shape); a forward pass at level ``k``
uses levels ``0..k`` only. While a level fades in (``alpha < 1``) its output is blended with the
previous level's, upsampled (generator) or fed the downsampled image (discriminator), as in
ProGAN and PACGAN.

Tensors are channels-first: images ``(B, C, *spatial)`` with ``spatial_dims`` spatial axes (2 for
slices; the layers are written for any dimension), labels ``(B,)`` int64.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gansim.nn.progressive import EqualizedConv, EqualizedLinear, MinibatchStdDev, PixelNorm

__all__ = ["ProgressiveGenerator", "ProgressiveDiscriminator"]

_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_SLOPE = 0.2


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _SLOPE)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour ×2 along every spatial axis."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """2×…×2 average pooling (the exact inverse of nearest upsampling on piecewise-constant images)."""
    return _POOL[x.dim() - 2](x, 2)


class _ConvPair(nn.Module):
    """Two 3×… equalised convolutions, each followed by leaky ReLU (and pixel norm in the generator)."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int, pixel_norm: bool) -> None:
        super().__init__()
        self.conv1 = EqualizedConv(spatial_dims, c_in, c_out, 3)
        self.conv2 = EqualizedConv(spatial_dims, c_out, c_out, 3)
        self.norm = PixelNorm() if pixel_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(_lrelu(self.conv1(x)))
        return self.norm(_lrelu(self.conv2(x)))


class ProgressiveGenerator(nn.Module):
    """``G(z (B, z_dim), y (B,), level, alpha) -> images (B, channels, side, ...)`` in (-1, 1) (tanh).

    Args:
        widths: channels per level (level 0 first).
        channels: image channels.
        num_classes, embedding_dim: the class embedding joined to z; z and the embedding are
            pixel-normalised together, as in PACGAN.
        z_dim: latent size.
        start_size: side of level 0's images.
        spatial_dims: 2 for slices.
    """

    def __init__(self, widths: list[int], channels: int, num_classes: int, embedding_dim: int, z_dim: int, start_size: int = 4, spatial_dims: int = 2) -> None:
        super().__init__()
        self.widths, self.channels, self.num_classes, self.z_dim = list(widths), channels, num_classes, z_dim
        self.start_size, self.spatial_dims = start_size, spatial_dims
        self.embedding = nn.Embedding(num_classes, embedding_dim)
        self.norm = PixelNorm()
        # PACGAN's 1×1 -> 4×4 transposed convolution is a dense layer from the joined vector to every
        # position of the first map; written as one, with ProGAN's gain sqrt(2)/4 for it
        self.project = EqualizedLinear(z_dim + embedding_dim, widths[0] * start_size**spatial_dims, gain=math.sqrt(2.0) / 4)
        self.initial_conv = EqualizedConv(spatial_dims, widths[0], widths[0], 3)
        self.blocks = nn.ModuleList([_ConvPair(spatial_dims, widths[k - 1], widths[k], pixel_norm=True) for k in range(1, len(widths))])
        self.to_image = nn.ModuleList([EqualizedConv(spatial_dims, w, channels, 1, gain=1.0) for w in widths])

    @property
    def n_levels(self) -> int:
        return len(self.widths)

    def size_at(self, level: int) -> int:
        return self.start_size * 2**level

    def forward(self, z: torch.Tensor, y: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.n_levels - 1 if level is None else level
        joined = self.norm(torch.cat([z, self.embedding(y)], dim=1))
        x = _lrelu(self.project(joined)).view(z.shape[0], self.widths[0], *(self.start_size,) * self.spatial_dims)
        x = self.norm(x)
        x = self.norm(_lrelu(self.initial_conv(x)))
        if level == 0:
            return torch.tanh(self.to_image[0](x))
        for k in range(1, level + 1):
            upsampled = _upsample(x)
            x = self.blocks[k - 1](upsampled)
        out = self.to_image[level](x)
        if alpha < 1.0:
            out = alpha * out + (1.0 - alpha) * self.to_image[level - 1](upsampled)
        return torch.tanh(out)


class ProgressiveDiscriminator(nn.Module):
    """``D(images, level, alpha, y=None) -> (score (B,), class_logits (B, num_classes))``.

    The critic's score and the auxiliary classifier share the trunk. The classifier head is
    ``aux_hidden`` wide then ``num_classes`` (PACGAN: 150 then a hard-wired 2, no non-linearity
    between). With ``projection`` the score also gets ``<embed(y), features>`` (a projection
    discriminator); ``y`` is then required.

    Args:
        widths: channels per level (level 0 first), as the generator's.
        channels: image channels.
        num_classes: classes of the auxiliary head.
        aux_hidden: width of the head's first layer.
        projection: add the projection term.
        minibatch_std_group: group size of the minibatch standard deviation; None: the whole batch.
        start_size, spatial_dims: as the generator's.
    """

    def __init__(self, widths: list[int], channels: int, num_classes: int, aux_hidden: int = 150, projection: bool = False,
                 minibatch_std_group: int | None = None, start_size: int = 4, spatial_dims: int = 2) -> None:
        super().__init__()
        self.widths, self.channels, self.num_classes = list(widths), channels, num_classes
        self.start_size, self.spatial_dims = start_size, spatial_dims
        self.from_image = nn.ModuleList([EqualizedConv(spatial_dims, channels, w, 1) for w in widths])
        self.blocks = nn.ModuleList([_ConvPair(spatial_dims, widths[k], widths[k - 1], pixel_norm=False) for k in range(1, len(widths))])
        c0 = widths[0]
        self.minibatch_std = MinibatchStdDev(minibatch_std_group, running_momentum=0.05)  # set on real batches by the objective
        self.final_conv = EqualizedConv(spatial_dims, c0 + 1, c0, 3)
        self.final_dense = EqualizedConv(spatial_dims, c0, c0, start_size, padding=0)  # start_size^d -> 1^d
        self.score = EqualizedLinear(c0, 1, gain=1.0)
        self.aux_hidden = EqualizedLinear(c0, aux_hidden, gain=1.0)
        self.aux_out = EqualizedLinear(aux_hidden, num_classes, gain=1.0)
        self.embed = nn.Embedding(num_classes, c0) if projection else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(c0))

    @property
    def n_levels(self) -> int:
        return len(self.widths)

    def features(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """The trunk's output ``(B, widths[0])`` for images of side ``start_size·2^level``."""
        level = self.n_levels - 1 if level is None else level
        h = _lrelu(self.from_image[level](x))
        if level > 0:
            h = _downsample(self.blocks[level - 1](h))
            if alpha < 1.0:
                h = alpha * h + (1.0 - alpha) * _lrelu(self.from_image[level - 1](_downsample(x)))
            for k in range(level - 1, 0, -1):
                h = _downsample(self.blocks[k - 1](h))
        h = _lrelu(self.final_conv(self.minibatch_std(h)))
        return _lrelu(self.final_dense(h)).flatten(1)

    def forward(self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x, level, alpha)
        score = self.score(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("a projection discriminator needs the labels y for its score")
            score = score + (self.embed(y) * h).sum(dim=1)
        return score, self.aux_out(self.aux_hidden(h))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of full-size images (the discriminator as a classifier)."""
        return self.aux_out(self.aux_hidden(self.features(x)))
