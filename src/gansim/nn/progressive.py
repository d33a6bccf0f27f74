"""Layers of progressively grown GANs (Karras et al. 2018, ProGAN; PACGAN builds on them), for any dimension.

- **Equalised learning rate** (:class:`EqualizedLinear`, :class:`EqualizedConv`): weights are
  stored as N(0, 1) draws and multiplied at run time by He's constant ``gain / sqrt(fan_in)``, so
  Adam's step (which is scale-free) moves every layer by the same relative amount whatever its
  fan-in. The stored weight is not the effective one; :meth:`effective_weight` gives it.
- **Pixel norm** (:class:`PixelNorm`): each position's feature vector divided by its root mean
  square over channels, which keeps the generator's signal magnitudes from escalating.
- **Minibatch standard deviation** (:class:`MinibatchStdDev`): one extra channel holding the
  mean over features of their standard deviation across a group of samples, so the critic can
  see a batch with too little variety (mode collapse).

Tensors are channels-first, ``(B, C, *spatial)``, with any number of spatial dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gansim.errors import ConfigError

__all__ = ["EqualizedLinear", "EqualizedConv", "PixelNorm", "MinibatchStdDev"]

_CONV = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}


class EqualizedLinear(nn.Module):
    """``(B, in_features) -> (B, out_features)`` with the weight scaled by ``gain / sqrt(in_features)`` at run time."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.effective_weight(), self.bias)


class EqualizedConv(nn.Module):
    """A stride-1 convolution over ``spatial_dims`` dimensions with an equalised learning rate.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels, out_channels: channel counts.
        kernel_size: an int or one per dimension; ``padding`` defaults to ``kernel // 2`` ('same'
            for odd kernels, as ProGAN's 3×3 and 1×1 convolutions).
        gain: He's gain (sqrt 2 for leaky-ReLU layers, 1 for the to-image layer).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int | Sequence[int] = 3,
                 padding: int | Sequence[int] | None = None, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ConfigError(f"spatial_dims={spatial_dims!r}: expected 1, 2 or 3")
        kernel = (kernel_size,) * spatial_dims if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(kernel) != spatial_dims:
            raise ConfigError(f"kernel_size={kernel_size!r}: expected {spatial_dims} sizes")
        self.spatial_dims, self.kernel_size = spatial_dims, kernel
        self.padding = tuple(k // 2 for k in kernel) if padding is None else ((padding,) * spatial_dims if isinstance(padding, int) else tuple(padding))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * math.prod(kernel))

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _CONV[self.spatial_dims](x, self.effective_weight(), self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """``x / sqrt(mean over channels of x^2 + eps)`` at every position; shape unchanged."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """``(B, C, *spatial) -> (B, C + 1, *spatial)``: the last channel is the group's mean feature spread.

    The samples are split into groups of ``group_size`` (``None``: the whole batch, as PACGAN does);
    within a group, the standard deviation (population, over the group's samples) of every
    feature at every position is taken, averaged over channels and positions, and that one number
    fills the new channel of each of the group's samples. A batch that is not a multiple of
    ``group_size`` uses the largest divisor of the batch not above it.

    With ``running_momentum``, a running mean of that number over the batches seen while
    :attr:`update_running` is True (set it for real batches only) is kept as a buffer, and in eval
    mode every image gets it: a discriminator used as a classifier then gives each image the same
    answer whatever else is in its batch (like batch norm's running statistics).
    :meth:`reset_running` forgets it (e.g. when the network below it changes).
    """

    def __init__(self, group_size: int | None = 4, eps: float = 1e-8, running_momentum: float | None = None) -> None:
        super().__init__()
        if group_size is not None and group_size < 1:
            raise ConfigError(f"group_size={group_size}: expected >= 1 or None (the whole batch)")
        if running_momentum is not None and not 0 < running_momentum <= 1:
            raise ConfigError(f"running_momentum={running_momentum}: expected 0 < momentum <= 1 or None")
        self.group_size, self.eps, self.running_momentum = group_size, eps, running_momentum
        self.update_running = False
        if running_momentum is not None:
            self.register_buffer("running_spread", torch.zeros(()))
            self.register_buffer("running_updates", torch.zeros((), dtype=torch.int64))

    def reset_running(self) -> None:
        if self.running_momentum is not None:
            self.running_spread.zero_()
            self.running_updates.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if self.running_momentum is not None and not self.training and int(self.running_updates) > 0:
            channel = self.running_spread.to(x.dtype).expand(batch, 1, *x.shape[2:])
            return torch.cat([x, channel], dim=1)
        group = batch if self.group_size is None else max(g for g in range(1, min(self.group_size, batch) + 1) if batch % g == 0)
        grouped = x.reshape(group, batch // group, *x.shape[1:])  # sample i is in group i % (batch // group)
        spread = torch.sqrt(grouped.var(dim=0, unbiased=False) + self.eps)  # (B / group, C, *spatial)
        per_group = spread.mean(dim=tuple(range(1, spread.dim())))  # (B / group,)
        if self.running_momentum is not None and self.training and self.update_running:
            with torch.no_grad():  # the first update takes the batch's value (no device synchronisation to find out)
                m = torch.where(self.running_updates == 0, 1.0, self.running_momentum)
                self.running_spread.mul_(1 - m).add_(m * per_group.mean().detach().to(self.running_spread.dtype))
                self.running_updates.add_(1)
        channel = per_group.repeat(group).reshape(batch, 1, *([1] * (x.dim() - 2))).expand(batch, 1, *x.shape[2:])
        return torch.cat([x, channel], dim=1)
