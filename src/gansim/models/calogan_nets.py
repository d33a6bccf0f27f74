"""The CaloGAN networks (Paganini, de Oliveira, Nachman, PRL 120 (2018) 042003), ported faithfully to PyTorch.

Every shape and Keras behaviour follows ``../shared/reference/calogan.md`` §b (read from
CaloGAN's ``models/architectures.py``, ``ops.py`` and ``train.py``). Tensors are
channels-first here; Keras was channels-last, which changes no maths.

Generator: ``h = z * (E / 100 GeV)``, z ~ N(0, 1)^1024. One LAGAN-style stream per layer:
Dense(1024 -> (r+2)(c+2)·36) → reshape (36, r+2, c+2) → Conv2D(16, 2×2, 'same', he_uniform) →
LeakyReLU(0.3) → BatchNorm → LocallyConnected2D(6, 2×2, he_uniform) → LeakyReLU →
LocallyConnected2D(1, 2×2, no bias, glorot_normal). In-painting attention carries layer 0
into layer 1's grid (UpSampling(4, 1), AvgPool(1, 8)) and layer 1 into layer 2's (AvgPool(1, 2)):
the two images are stacked, zero-padded by 1, a LocallyConnected2D(2, 3×3) and a softmax over
the two channels give per-cell weights; the carry-over channel's bias starts at -10 so the
previous layer is ignored at first. ReLU on each output image (GeV).

Discriminator, per layer: Conv2D(64, 2×2, 'same') → LeakyReLU → [ZeroPad 1, LC(16, 3×3, stride
(1, 2)), LeakyReLU, BN] → [ZeroPad 1, LC(8, 2×2), LeakyReLU, BN] → [ZeroPad 1, LC(8, 2×2, stride
(1, 2)), LeakyReLU, BN] → flatten (1000, 448, 336 features), then minibatch discrimination on
the features, the layer's sparsity (fraction of cells > 0) and minibatch discrimination on it.
Global features: layer energies / 10, E_tot / 100, |E_tot - E| and 10·[|E_tot - E| > 5 GeV],
minibatch discrimination on (E_0, E_1, E_2). Output: one logit (Keras had Dense(1, sigmoid) and
BCE; the logit with BCE-with-logits is the same loss, computed stably).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gansim.io.calo_geometry import CALOGAN, CartesianGeometry
from gansim.nn.keras_compat import KERAS_LEAKY_SLOPE, SameConv, glorot_uniform_, he_uniform_, keras_batch_norm
from gansim.nn.locally_connected import LocallyConnected
from gansim.nn.minibatch import MinibatchDiscrimination

__all__ = ["CaloGANGenerator", "CaloGANDiscriminator", "LATENT_DIM", "CARRY_OVER_BIAS"]

LATENT_DIM = 1024
CARRY_OVER_BIAS = -10.0  # initial bias of the in-painting carry-over channel: softmax weight ~4.5e-5


def _leaky() -> nn.Module:
    return nn.LeakyReLU(KERAS_LEAKY_SLOPE)


def _dense(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    glorot_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _conv_same(in_channels: int, out_channels: int, init: str) -> SameConv:
    conv = nn.Conv2d(in_channels, out_channels, 2)
    fan_in, fan_out = in_channels * 4, out_channels * 4
    if init == "he_uniform":
        he_uniform_(conv.weight, fan_in=fan_in)
    else:
        glorot_uniform_(conv.weight, fan_in=fan_in, fan_out=fan_out)
    nn.init.zeros_(conv.bias)
    return SameConv(conv)


class _GeneratorStream(nn.Module):
    """One layer's stream: latent (B, 1024) -> image (B, 1, r, c) before the output ReLU."""

    def __init__(self, shape: tuple[int, int], latent_dim: int) -> None:
        super().__init__()
        r, c = shape
        self.grid = (r + 2, c + 2)
        self.dense = _dense(latent_dim, (r + 2) * (c + 2) * 36)
        self.conv = _conv_same(36, 16, "he_uniform")
        self.bn = keras_batch_norm(2, 16)
        # Keras' initialisers with Keras' fans for locally connected kernels (see gansim.nn.locally_connected)
        self.lc1 = LocallyConnected(2, 16, 6, (r + 2, c + 2), 2, kernel_init="he_uniform")
        self.lc2 = LocallyConnected(2, 6, 1, (r + 1, c + 1), 2, bias=False, kernel_init="glorot_normal")
        self.act = _leaky()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b = h.shape[0]
        # Keras reshaped (B, (r+2)(c+2)36) to (r+2, c+2, 36) channels-last; same order here, then channels first
        x = self.dense(h).view(b, self.grid[0], self.grid[1], 36).permute(0, 3, 1, 2)
        x = self.bn(self.act(self.conv(x)))
        x = self.act(self.lc1(x))
        return self.lc2(x)


class _Inpainting(nn.Module):
    """Mix a layer's own image with the previous layer's carried over: per-cell softmax weights of 2 channels."""

    def __init__(self, shape: tuple[int, int]) -> None:
        super().__init__()
        r, c = shape
        self.pad = nn.ZeroPad2d(1)
        self.lc = LocallyConnected(2, 2, 2, (r + 2, c + 2), 3)
        with torch.no_grad():
            self.lc.bias[1] = CARRY_OVER_BIAS  # bias (channels, r, c); channel 1 = the carried-over image

    def forward(self, own: torch.Tensor, carried: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([own, carried], dim=1)  # (B, 2, r, c)
        weights = torch.softmax(self.lc(self.pad(stacked)), dim=1)
        return (weights * stacked).sum(dim=1, keepdim=True)


def _to_layer1_grid(layer0: torch.Tensor) -> torch.Tensor:
    """(B, 1, 3, 96) -> (B, 1, 12, 12): UpSampling(4, 1) then AvgPool(1, 8)."""
    up = layer0.repeat_interleave(4, dim=2)
    return nn.functional.avg_pool2d(up, (1, 8))


def _to_layer2_grid(layer1: torch.Tensor) -> torch.Tensor:
    """(B, 1, 12, 12) -> (B, 1, 12, 6): AvgPool(1, 2)."""
    return nn.functional.avg_pool2d(layer1, (1, 2))


class CaloGANGenerator(nn.Module):
    """Latent z (B, 1024) and incident energy (B,) GeV -> three layer images (B, r, c) in GeV, >= 0.

    Args:
        geometry: the CaloGAN layout (its three layer shapes).
        latent_dim: 1024 in the paper.
        attention: in-painting attention between consecutive layers (the paper's default).
    """

    def __init__(self, geometry: CartesianGeometry = CALOGAN, latent_dim: int = LATENT_DIM, attention: bool = True) -> None:
        super().__init__()
        shapes = [layer.shape for layer in geometry.layers]
        if shapes != [layer.shape for layer in CALOGAN.layers]:
            raise ValueError(f"the CaloGAN generator is built for the CaloGAN layer shapes {[l.shape for l in CALOGAN.layers]}, got {shapes}")
        self.latent_dim = latent_dim
        self.streams = nn.ModuleList(_GeneratorStream(s, latent_dim) for s in shapes)
        self.attention = attention
        if attention:
            self.inpaint = nn.ModuleList([_Inpainting(shapes[1]), _Inpainting(shapes[2])])

    def forward(self, z: torch.Tensor, energy_gev: torch.Tensor) -> list[torch.Tensor]:
        h = z * (energy_gev.reshape(-1, 1) / 100.0)
        images = [stream(h) for stream in self.streams]  # (B, 1, r, c) each, before ReLU
        if self.attention:
            images[1] = self.inpaint[0](images[1], _to_layer1_grid(images[0]))
            images[2] = self.inpaint[1](images[2], _to_layer2_grid(images[1]))
        return [torch.relu(image).squeeze(1) for image in images]


class _DiscriminatorStack(nn.Module):
    """One layer image (B, 1, r, c) -> flat features (B, F)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        super().__init__()
        r, c = shape
        self.conv = _conv_same(1, 64, "glorot_uniform")
        size = (r, c)
        blocks = []
        for out_ch, kernel, stride, in_ch in ((16, 3, (1, 2), 64), (8, 2, (1, 1), 16), (8, 2, (1, 2), 8)):
            padded = (size[0] + 2, size[1] + 2)
            lc = LocallyConnected(2, in_ch, out_ch, padded, kernel, stride=stride)  # glorot_uniform, Keras' default
            blocks.append(nn.Sequential(nn.ZeroPad2d(1), lc, _leaky(), keras_batch_norm(2, out_ch)))
            size = lc.output_size
        self.blocks = nn.Sequential(*blocks)
        self.n_features = 8 * size[0] * size[1]
        self.act = _leaky()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.act(self.conv(image)))
        # Keras flattened channels-last: keep that order so feature i means the same cell and filter
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class CaloGANDiscriminator(nn.Module):
    """Three layer images (B, r, c) in GeV and the requested energy (B,) GeV -> one logit (B,).

    Args:
        geometry: the CaloGAN layout.
        minibatch: minibatch discrimination on each layer's features (``mbd``).
        sparsity: each layer's fraction of cells > 0 as a feature, with minibatch discrimination on it.
    """

    def __init__(self, geometry: CartesianGeometry = CALOGAN, minibatch: bool = True, sparsity: bool = True) -> None:
        super().__init__()
        shapes = [layer.shape for layer in geometry.layers]
        self.stacks = nn.ModuleList(_DiscriminatorStack(s) for s in shapes)
        self.minibatch, self.sparsity = minibatch, sparsity
        width = 0
        if minibatch:
            self.mbd = nn.ModuleList(MinibatchDiscrimination(stack.n_features) for stack in self.stacks)
        if sparsity:
            self.sparsity_mbd = nn.ModuleList(MinibatchDiscrimination(1) for _ in self.stacks)
        for stack in self.stacks:
            width += stack.n_features + (10 if minibatch else 0) + ((1 + 10) if sparsity else 0)
        self.energy_mbd = MinibatchDiscrimination(3)
        width += 3 + 1 + 1 + 1 + 10  # E_i / 10, E_tot / 100, |E_tot - E|, 10 [|E_tot - E| > 5 GeV], mbd(E_i)
        self.output = _dense(width, 1)
        self.n_features = width

    def forward(self, images: Sequence[torch.Tensor], energy_gev: torch.Tensor) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        for i, (stack, image) in enumerate(zip(self.stacks, images)):
            features = stack(image.unsqueeze(1))
            parts.append(features)
            if self.minibatch:
                parts.append(self.mbd[i](features))
            if self.sparsity:
                frac = (image > 0).flatten(1).float().mean(dim=1, keepdim=True)
                parts.extend([frac, self.sparsity_mbd[i](frac)])
        layer_energy = torch.stack([image.flatten(1).sum(dim=1) for image in images], dim=1)  # (B, 3) GeV
        total = layer_energy.sum(dim=1, keepdim=True)
        miss = (total - energy_gev.reshape(-1, 1)).abs()
        parts.extend([layer_energy / 10.0, total / 100.0, miss, 10.0 * (miss > 5.0).float(), self.energy_mbd(layer_energy)])
        return self.output(torch.cat(parts, dim=1)).squeeze(1)
