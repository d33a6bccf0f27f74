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

from gansim.nn.locally_connected import tf_same_padding

__all__ = ["KERAS_LEAKY_SLOPE", "keras_batch_norm", "tf_same_padding", "SamePadding", "glorot_uniform_", "he_uniform_", "glorot_normal_"]

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


def _fans(weight: torch.Tensor, fan_in: int | None, fan_out: int | None) -> tuple[int, int]:
    if fan_in is None or fan_out is None:
        fi, fo = nn.init._calculate_fan_in_and_fan_out(weight)
        fan_in = fi if fan_in is None else fan_in
        fan_out = fo if fan_out is None else fan_out
    return fan_in, fan_out


@torch.no_grad()
def glorot_uniform_(weight: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None) -> torch.Tensor:
    """Keras' default: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    fi, fo = _fans(weight, fan_in, fan_out)
    limit = math.sqrt(6.0 / (fi + fo))
    return weight.uniform_(-limit, limit)


@torch.no_grad()
def he_uniform_(weight: torch.Tensor, fan_in: int | None = None) -> torch.Tensor:
    """Keras' he_uniform: U(-l, l), l = sqrt(6 / fan_in)."""
    fi, _ = _fans(weight, fan_in, 1)
    limit = math.sqrt(6.0 / fi)
    return weight.uniform_(-limit, limit)


@torch.no_grad()
def glorot_normal_(weight: torch.Tensor, fan_in: int | None = None, fan_out: int | None = None) -> torch.Tensor:
    """Keras 2's glorot_normal: a normal of std sqrt(2 / (fan_in + fan_out)) truncated at 2 std."""
    fi, fo = _fans(weight, fan_in, fan_out)
    std = math.sqrt(2.0 / (fi + fo))
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
