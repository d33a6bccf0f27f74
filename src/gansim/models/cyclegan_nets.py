"""The CycleGAN's networks for images or volumes of any shape: ResNet and U-Net generators, a PatchGAN critic.

All three are fully convolutional and channels-first (``(B, C, X, Y)`` or ``(B, C, X, Y, Z)``),
written once for ``spatial_dims`` 2 and 3 from :mod:`gansim.nn.image_blocks`.

- :class:`ResnetGenerator` (Johnson et al. 2016, as CycleGAN): reflect-pad + conv k7 → ``width``;
  ``n_down`` stride-2 convs doubling the width; ``n_blocks`` residual blocks; ``n_down``
  transposed convs halving it; reflect-pad + conv k7 → ``out_ch``; tanh. Each axis must be a
  multiple of ``2**n_down`` for the output to have the input's shape.
- :class:`UNetGenerator`: an encoder of ``depth`` stride-2 levels and a decoder of transposed
  convs whose outputs are joined to the encoder's features of the same size (skip connections);
  each axis must be a multiple of ``2**depth``.
- :class:`PatchDiscriminator` (pix2pix's N-layer PatchGAN): one logit per overlapping patch, no
  sigmoid (the losses take logits).

Both generators refuse, in ``forward``, a tensor whose axes are not multiples of their
``2**n_down`` (a user error that would otherwise be silently resized or fail deep inside);
``forward_unchecked`` runs the same layers without that guard. What shapes a configuration
accepts, and the memory it needs, is computed from the layers themselves (``forward_unchecked``)
by :mod:`gansim.models.volume_plan`, so the rule it finds is a property of the layers, not an echo
of the guard.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from gansim.config import StrictModel
from gansim.errors import ConfigError, DataError
from gansim.nn.image_blocks import ResidualBlock, conv_block, conv_transpose_type, conv_type, norm_layer, pad_layer

__all__ = ["VolumeNetSettings", "ResnetGenerator", "UNetGenerator", "PatchDiscriminator", "build_generator", "build_discriminator",
           "build_cyclegan_networks", "init_weights"]


class VolumeNetSettings(StrictModel):
    """Architecture of the CycleGAN's four networks (two generators of one kind, two critics)."""

    spatial_dims: Literal[2, 3] = Field(3, description="2: images (B, C, X, Y); 3: volumes (B, C, X, Y, Z)")
    generator: Literal["resnet", "unet"] = Field("resnet", description="'resnet': CycleGAN's ResNet generator; 'unet': a U-Net with skip connections")
    width: int = Field(32, gt=0, description="channels of the generator's first layer (doubled at each stride-2 level)")
    n_down: int = Field(2, ge=0, le=8, description="stride-2 levels of the generator (ResNet downsamplings; U-Net depth); each axis must be a multiple of 2**n_down")
    n_blocks: int = Field(6, ge=0, description="residual blocks at the ResNet generator's lowest resolution (unused by the U-Net)")
    norm: Literal["instance", "batch", "none"] = Field("instance", description="normalisation of every network (instance: per sample and channel over all spatial axes)")
    d_width: int = Field(64, gt=0, description="channels of the critic's first layer")
    d_layers: int = Field(3, ge=1, le=8, description="stride-2 layers of the PatchGAN critic (3: pix2pix's 70-pixel patches in 2-D)")
    channels: int = Field(1, gt=0, description="image channels of both domains")
    init_std: float = Field(0.02, gt=0, description="weights start as normal(0, init_std) draws (CycleGAN); norm scales as normal(1, init_std)")


def _check_input(x: torch.Tensor, spatial_dims: int, in_ch: int, multiple: int, name: str) -> None:
    """Refuse a tensor the generator would silently resize (an axis not a multiple of ``multiple``)."""
    if x.dim() != spatial_dims + 2 or x.shape[1] != in_ch:
        raise DataError(f"{name}: expected a tensor (B, {in_ch}, {', '.join('XYZ'[:spatial_dims])}), got shape {tuple(x.shape)}")
    bad = [n for n in x.shape[2:] if n % multiple]
    if bad:
        raise DataError(f"{name}: spatial shape {tuple(x.shape[2:])} has axes that are not multiples of {multiple}; "
                        "pad it first (gansim.models.volume_plan.pad_to_multiple) or see valid_shapes_near")


class ResnetGenerator(nn.Module):
    """``(B, in_ch, *S) -> (B, out_ch, *S)`` in [-1, 1]; every axis of ``S`` a multiple of ``2**n_down``.

    Args:
        spatial_dims: 2 or 3.
        in_ch, out_ch: image channels in and out.
        width: channels after the first convolution; ``width * 2**n_down`` in the residual blocks.
        n_down: stride-2 downsamplings (and as many upsamplings).
        n_blocks: residual blocks at the lowest resolution.
        norm: ``'instance'``, ``'batch'`` or ``'none'``.
    """

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, width: int = 32, n_down: int = 2, n_blocks: int = 6, norm: str = "instance") -> None:
        super().__init__()
        self.spatial_dims, self.in_ch, self.n_down = spatial_dims, in_ch, n_down
        layers: list[nn.Module] = [conv_block(spatial_dims, in_ch, width, 7, padding=3, norm=norm, act=nn.ReLU())]
        ch = width
        for _ in range(n_down):
            # k3 s2 p1 maps n to ceil(n / 2); zero padding here as CycleGAN (the reflection is at the ends)
            layers += [conv_type(spatial_dims)(ch, 2 * ch, 3, stride=2, padding=1, bias=norm == "none"), norm_layer(norm, spatial_dims, 2 * ch), nn.ReLU()]
            ch *= 2
        layers += [ResidualBlock(spatial_dims, ch, norm=norm) for _ in range(n_blocks)]
        for _ in range(n_down):
            # k3 s2 p1 with output_padding 1 maps m to exactly 2m
            layers += [conv_transpose_type(spatial_dims)(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=norm == "none"),
                       norm_layer(norm, spatial_dims, ch // 2), nn.ReLU()]
            ch //= 2
        layers += [pad_layer("reflect", spatial_dims, 3), conv_type(spatial_dims)(ch, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.spatial_dims, self.in_ch, 2 ** self.n_down, "ResnetGenerator input")
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """The layers without the input guard: an axis ``n`` that is not a multiple of ``2**n_down`` comes out
        with another size (each stride-2 conv maps ``n`` to ``ceil(n / 2)``, each transposed conv ``m`` to ``2m``)."""
        return self.model(x)


class _UNetLevel(nn.Module):
    """One level of the U-Net: down (stride 2) → the inner levels → up (×2), joined to this level's input."""

    def __init__(self, spatial_dims: int, outer: int, inner: int, inside: nn.Module, norm: str) -> None:
        super().__init__()
        self.down = nn.Sequential(conv_block(spatial_dims, outer, inner, 3, stride=2, padding=1, norm=norm, act=nn.LeakyReLU(0.2)),
                                  conv_block(spatial_dims, inner, inner, 3, padding=1, norm=norm, act=nn.LeakyReLU(0.2)))
        self.inside = inside
        # k2 s2 maps m to exactly 2m
        self.up = nn.Sequential(conv_transpose_type(spatial_dims)(inner, outer, 2, stride=2, bias=norm == "none"), norm_layer(norm, spatial_dims, outer), nn.ReLU())
        self.merge = conv_block(spatial_dims, 2 * outer, outer, 3, padding=1, norm=norm, act=nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([x, self.up(self.inside(self.down(x)))], dim=1))


class UNetGenerator(nn.Module):
    """``(B, in_ch, *S) -> (B, out_ch, *S)`` in [-1, 1]; every axis of ``S`` a multiple of ``2**depth``.

    Level ``i`` (0 at full resolution) has ``width * 2**i`` channels, at most ``8 * width``.
    Convolutions are k3 with reflection padding; the encoder uses LeakyReLU(0.2), the decoder ReLU
    (pix2pix's choice); a 1×1 convolution and tanh give the output.

    Args:
        spatial_dims: 2 or 3.
        in_ch, out_ch: image channels in and out.
        width: channels at full resolution.
        depth: stride-2 levels (0: no downsampling).
        norm: ``'instance'``, ``'batch'`` or ``'none'``.
    """

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, width: int = 32, depth: int = 4, norm: str = "instance") -> None:
        super().__init__()
        self.spatial_dims, self.in_ch, self.depth = spatial_dims, in_ch, depth
        widths = [width * min(2**i, 8) for i in range(depth + 1)]
        self.stem = nn.Sequential(conv_block(spatial_dims, in_ch, width, 3, padding=1, norm=norm, act=nn.LeakyReLU(0.2)),
                                  conv_block(spatial_dims, width, width, 3, padding=1, norm=norm, act=nn.LeakyReLU(0.2)))
        inner: nn.Module = nn.Identity()
        for i in reversed(range(depth)):
            inner = _UNetLevel(spatial_dims, widths[i], widths[i + 1], inner, norm)
        self.levels = inner
        self.head = nn.Sequential(conv_type(spatial_dims)(width, out_ch, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.spatial_dims, self.in_ch, 2 ** self.depth, "UNetGenerator input")
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """The layers without the input guard: an axis that is odd at some level makes the upsampled
        features one voxel longer than the skip connection's, and the concatenation fails (RuntimeError)."""
        return self.head(self.levels(self.stem(x)))


class PatchDiscriminator(nn.Module):
    """``(B, in_ch, *S) -> (B, 1, *P)``: one logit per patch (no sigmoid).

    conv k4 s2 + LeakyReLU(0.2); ``n_layers − 1`` convs k4 s2 with norm (widths doubling, at most
    8 × ``width``); one conv k4 s1 with norm; one conv k4 s1 → 1 channel. All zero-padded by 1, so
    an axis ``n`` gives ``floor(n / 2**n_layers) − 2`` logits when ``n`` is a multiple of ``2**n_layers``.
    """

    def __init__(self, spatial_dims: int, in_ch: int, width: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"n_layers={n_layers}: expected >= 1")
        conv = conv_type(spatial_dims)
        layers: list[nn.Module] = [conv(in_ch, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = width
        for n in range(1, n_layers):
            out = width * min(2**n, 8)
            layers += [conv(ch, out, 4, stride=2, padding=1, bias=norm == "none"), norm_layer(norm, spatial_dims, out), nn.LeakyReLU(0.2)]
            ch = out
        out = width * min(2**n_layers, 8)
        layers += [conv(ch, out, 4, stride=1, padding=1, bias=norm == "none"), norm_layer(norm, spatial_dims, out), nn.LeakyReLU(0.2),
                   conv(out, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(module: nn.Module, std: float = 0.02, generator: torch.Generator | None = None) -> nn.Module:
    """CycleGAN's initialisation: conv weights normal(0, std), norm scales normal(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.InstanceNorm2d, nn.InstanceNorm3d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std, generator=generator)
            nn.init.zeros_(m.bias)
    return module


def build_generator(settings: VolumeNetSettings) -> nn.Module:
    """One generator (``channels`` in and out) as ``settings`` says, not yet initialised."""
    s = settings
    if s.generator == "resnet":
        return ResnetGenerator(s.spatial_dims, s.channels, s.channels, s.width, s.n_down, s.n_blocks, s.norm)
    return UNetGenerator(s.spatial_dims, s.channels, s.channels, s.width, s.n_down, s.norm)


def build_discriminator(settings: VolumeNetSettings) -> nn.Module:
    """One PatchGAN critic as ``settings`` says, not yet initialised."""
    return PatchDiscriminator(settings.spatial_dims, settings.channels, settings.d_width, settings.d_layers, settings.norm)


def build_cyclegan_networks(settings: VolumeNetSettings, seed: int | None = None) -> dict[str, nn.Module]:
    """``{'G_AB', 'G_BA', 'D_A', 'D_B'}`` initialised as CycleGAN (from ``seed`` when given, else torch's global RNG).

    ``G_AB`` translates domain A (e.g. T1w) to B (T2w), ``G_BA`` back; ``D_A`` judges images of A, ``D_B`` of B.
    Built on torch's current default device (``with torch.device('meta'):`` builds them without memory).
    """
    nets = {"G_AB": build_generator(settings), "G_BA": build_generator(settings), "D_A": build_discriminator(settings), "D_B": build_discriminator(settings)}
    generator = None
    if seed is not None:
        device = next(nets["G_AB"].parameters()).device
        if device.type != "meta":
            generator = torch.Generator(device=device).manual_seed(seed)
    for net in nets.values():
        init_weights(net, settings.init_std, generator)
    return nets
