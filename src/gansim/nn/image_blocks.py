"""Convolution, normalisation and padding layers for images of 2 or 3 spatial dimensions, written once.

Every factory takes ``spatial_dims`` (2: ``(B, C, X, Y)``, 3: ``(B, C, X, Y, Z)``; channels first),
as MONAI's layer factories do, so a 2-D network and its 3-D twin are the same code.

Normalisation is per sample and per channel over **all** spatial axes: :func:`InstanceNorm` is
``nn.InstanceNorm{2,3}d`` with a learned scale and shift. (The Keras 3-D CycleGAN this package
replaces normalised 5-D tensors over one spatial axis instead, which also tied it to one Z size.)
A convolution followed by such a norm carries no bias of its own: the norm subtracts the mean, so a
bias there would have a zero gradient and do nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from gansim.errors import ConfigError

__all__ = ["NORMS", "PADDINGS", "conv_type", "conv_transpose_type", "InstanceNorm", "norm_layer", "pad_layer", "conv_block", "ResidualBlock"]

#: normalisation kinds :func:`norm_layer` knows
NORMS = ("instance", "batch", "none")
#: padding kinds :func:`pad_layer` knows ('zeros' pads with 0)
PADDINGS = ("reflect", "replicate", "zeros")

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_INSTANCE = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_BATCH = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_PAD = {("reflect", 2): nn.ReflectionPad2d, ("reflect", 3): nn.ReflectionPad3d,
        ("replicate", 2): nn.ReplicationPad2d, ("replicate", 3): nn.ReplicationPad3d,
        ("zeros", 2): nn.ZeroPad2d, ("zeros", 3): nn.ZeroPad3d}


def _check_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ConfigError(f"spatial_dims={spatial_dims!r}: expected 2 (images) or 3 (volumes)")
    return spatial_dims


def conv_type(spatial_dims: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return _CONV[_check_dims(spatial_dims)]


def conv_transpose_type(spatial_dims: int) -> type[nn.ConvTranspose2d] | type[nn.ConvTranspose3d]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return _CONV_T[_check_dims(spatial_dims)]


def InstanceNorm(spatial_dims: int, channels: int) -> nn.Module:  # noqa: N802 - a layer factory, named as the layer it makes
    """Instance norm with a learned per-channel scale and shift.

    Each sample's channel is shifted to mean 0 and scaled to variance 1 over all its spatial
    voxels (``(X, Y)`` or ``(X, Y, Z)``), then multiplied by ``weight`` and shifted by ``bias``.
    No running statistics are kept, so training and evaluation normalise the same way.
    """
    return _INSTANCE[_check_dims(spatial_dims)](channels, affine=True, track_running_stats=False)


def norm_layer(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    """``'instance'`` (:func:`InstanceNorm`), ``'batch'`` (``nn.BatchNorm{2,3}d``) or ``'none'`` (identity)."""
    _check_dims(spatial_dims)
    if kind == "instance":
        return InstanceNorm(spatial_dims, channels)
    if kind == "batch":
        return _BATCH[spatial_dims](channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm={kind!r}: expected one of {', '.join(repr(k) for k in NORMS)}")


def pad_layer(kind: str, spatial_dims: int, padding: int) -> nn.Module:
    """Pad every spatial axis by ``padding`` voxels at both ends: ``'reflect'``, ``'replicate'`` or ``'zeros'``.

    Reflection needs each padded axis to be longer than ``padding``.
    """
    _check_dims(spatial_dims)
    if kind not in PADDINGS:
        raise ConfigError(f"padding={kind!r}: expected one of {', '.join(repr(k) for k in PADDINGS)}")
    if padding < 0:
        raise ConfigError(f"padding size {padding}: expected >= 0")
    return _PAD[(kind, spatial_dims)](padding)


def conv_block(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
               pad_mode: str = "reflect", norm: str = "instance", act: nn.Module | None = None) -> nn.Sequential:
    """[pad] → conv (no bias when a norm follows) → norm → [activation].

    Sizes: each spatial axis ``n`` becomes ``floor((n + 2·padding − kernel_size) / stride) + 1``.
    """
    layers: list[nn.Module] = []
    if padding:
        layers.append(pad_layer(pad_mode, spatial_dims, padding))
    layers.append(conv_type(spatial_dims)(in_channels, out_channels, kernel_size, stride=stride, bias=norm == "none"))
    layers.append(norm_layer(norm, spatial_dims, out_channels))
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """``x + F(x)`` with ``F`` = pad → conv k3 → norm → ReLU → pad → conv k3 → norm; shape unchanged.

    Args:
        spatial_dims: 2 or 3.
        channels: channels in and out.
        norm: ``'instance'``, ``'batch'`` or ``'none'``.
        pad_mode: how the 1-voxel border is padded before each convolution (reflection by default,
            as CycleGAN, so the borders carry no artificial zero edge).
    """

    def __init__(self, spatial_dims: int, channels: int, norm: str = "instance", pad_mode: str = "reflect") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(spatial_dims, channels, channels, 3, padding=1, pad_mode=pad_mode, norm=norm, act=nn.ReLU()),
            conv_block(spatial_dims, channels, channels, 3, padding=1, pad_mode=pad_mode, norm=norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *spatial) -> (B, C, *spatial)
        return x + self.body(x)
