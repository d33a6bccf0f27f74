"""The Keras 2 behaviours a faithful port of a Keras model must reproduce, written once.

CaloGAN and LAGAN were written in Keras 2.0 (TensorFlow backend). A port that uses PyTorch's
defaults silently changes the model (``../shared/reference/calogan.md`` §b, "Keras defaults"):

- ``LeakyReLU()`` has slope 0.3 in Keras (PyTorch: 0.01);
- ``BatchNormalization()`` keeps its running averages with momentum 0.99 and eps 1e-3
  (PyTorch's ``momentum`` is the weight of the *new* value: 0.01; eps 1e-5 by default);
- ``padding='same'`` follows TensorFlow: the total padding ``max((ceil(n/s) - 1) s + k - n, 0)``
  is split with the extra pixel at the end, so an even kernel pads only bottom/right;
- the default initialiser is ``glorot_uniform`` (PyTorch: kaiming-uniform with a=sqrt(5)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["KERAS_LEAKY_SLOPE", "keras_batch_norm", "tf_same_padding", "SamePadding", "SameConv", "variance_scaling_", "glorot_uniform_", "he_uniform_", "glorot_normal_"]

KERAS_LEAKY_SLOPE = 0.3


def keras_batch_norm(spatial_dims: int, channels: int) -> nn.Module:
    """BatchNorm over channels for 0 (features), 1, 2 or 3 spatial dims with Keras' momentum 0.99 and eps 1e-3."""
    cls = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[spatial_dims]
    return cls(channels, eps=1e-3, momentum=0.01)


class SamePadding(nn.Module):
    """Zero padding to TensorFlow's 'same' for a kernel and stride (any number of spatial dims, channels-first)."""

    def __init__(self, kernel_size: Sequence[int], stride: Sequence[int] | None = None) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.stride = tuple(int(s) for s in stride) if stride is not None else (1,) * len(self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        # F.pad takes (last axis before, last axis after, previous axis ...)
        for size, k, s in reversed(list(zip(x.shape[-len(self.kernel_size) :], self.kernel_size, self.stride))):
            pads.extend(tf_same_padding(int(size), k, s))
        return nn.functional.pad(x, pads)


class SameConv(nn.Sequential):
    """A Keras ``Conv{d}D(padding='same')`` of stride 1: :class:`SamePadding` then the convolution ``conv``.

    The two modules are kept as a sequence (so the parameters are ``1.weight``, ``1.bias``, as in
    ``nn.Sequential(SamePadding(k), conv)``), but the forward pass convolves with the symmetric
    padding ``max(before, after)`` and crops the extra outputs: the same numbers without the
    padded copy of the input, which cost the faithful CaloGAN generator more than a tenth of
    its time (an even kernel pads (0, 1): one more output row and column, dropped).
    """

    def __init__(self, conv: nn.modules.conv._ConvNd) -> None:
        if any(s != 1 for s in conv.stride) or any(d != 1 for d in conv.dilation) or conv.padding != (0,) * len(conv.kernel_size):
            raise ValueError(f"SameConv: expected an unpadded convolution of stride 1 and dilation 1, got {conv}")
        super().__init__(SamePadding(conv.kernel_size), conv)
        self._convolve = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[len(conv.kernel_size)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[1]
        pads = [tf_same_padding(int(n), k) for n, k in zip(x.shape[2:], conv.kernel_size)]
        symmetric = [max(pair) for pair in pads]
        out = self._convolve(x, conv.weight, conv.bias, padding=symmetric, groups=conv.groups)
        # output i of TensorFlow's padding is output i + (symmetric - before) of the symmetric one
        crop = tuple(slice(p - before, p - before + int(n)) for p, (before, _), n in zip(symmetric, pads, x.shape[2:]))
        return out[(slice(None), slice(None), *crop)]


def tf_same_padding(n: int, kernel: int, stride: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' zero padding along one axis: ``(before, after)`` cells.

    ``pad_total = max((ceil(n / stride) - 1) * stride + kernel - n, 0)``, ``before = pad_total // 2``,
    ``after = pad_total - before``: the odd cell goes to the end (e.g. n=13, k=6, s=5 -> (1, 2);
    n=5, k=2, s=1 -> (0, 1)).
    """
    n_out = -(-n // stride)
    total = max((n_out - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


@torch.no_grad()
def variance_scaling_(weight: torch.Tensor, name: str, fan_in: float, fan_out: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras' VarianceScaling initialisers by name (``glorot_uniform``, ``glorot_normal``, ``he_uniform``,
    ``he_normal``, ``lecun_uniform``, ``zeros``): scale 2 for he, 1 otherwise, over fan_avg (glorot)
    or fan_in; uniform on [-sqrt(3 var), sqrt(3 var)], or a normal truncated at 2 std (Keras 2.0)."""
    if name == "zeros":
        return weight.zero_()
    scale = 2.0 if name.startswith("he_") else 1.0
    fan = 0.5 * (fan_in + fan_out) if name.startswith("glorot_") else fan_in
    variance = scale / max(1.0, fan)
    if name.endswith("_uniform"):
        limit = math.sqrt(3.0 * variance)
        return weight.uniform_(-limit, limit, generator=generator)
    std = math.sqrt(variance)
    return nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


def _fans(weight: torch.Tensor, fan_in: int | None, fan_out: int | None) -> tuple[int, int]:
    if fan_in is None or fan_out is None:
        fi, fo = nn.init._calculate_fan_in_and_fan_out(weight)
        fan_in = fi if fan_in is None else fan_in
        fan_out = fo if fan_out is None else fan_out
    return fan_in, fan_out


def glorot_uniform_(weight: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None) -> torch.Tensor:
    """Keras' default: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    return variance_scaling_(weight, "glorot_uniform", *_fans(weight, fan_in, fan_out))


def he_uniform_(weight: torch.Tensor, fan_in: int | None = None) -> torch.Tensor:
    """Keras' he_uniform: U(-l, l), l = sqrt(6 / fan_in)."""
    return variance_scaling_(weight, "he_uniform", *_fans(weight, fan_in, 1))


def glorot_normal_(weight: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None) -> torch.Tensor:
    """Keras 2's glorot_normal: a normal of std sqrt(2 / (fan_in + fan_out)) truncated at 2 std."""
    return variance_scaling_(weight, "glorot_normal", *_fans(weight, fan_in, fan_out))
