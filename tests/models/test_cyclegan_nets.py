"""The CycleGAN's ResNet and U-Net generators and PatchGAN critic, in 2-D and 3-D, on tiny shapes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gansim.config import parse_config
from gansim.errors import ConfigError, DataError
from gansim.models.cyclegan_nets import (PatchDiscriminator, ResnetGenerator, UNetGenerator, VolumeNetSettings, build_cyclegan_networks,
                                         build_discriminator, build_generator)


def _convs(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if type(m) is kind]


@pytest.mark.parametrize("dims", [2, 3])
def test_resnet_generator_layout_and_shapes(dims: int) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(dims, 1, 2, width=4, n_down=2, n_blocks=3)
    conv, convt = (nn.Conv3d, nn.ConvTranspose3d) if dims == 3 else (nn.Conv2d, nn.ConvTranspose2d)
    convs = _convs(g, conv)
    assert convs[0].kernel_size == (7,) * dims and convs[0].out_channels == 4 and convs[-1].kernel_size == (7,) * dims and convs[-1].out_channels == 2
    downs = [c for c in convs if c.stride == (2,) * dims]
    assert [c.out_channels for c in downs] == [8, 16]  # the width doubles at each of the n_down levels
    ups = _convs(g, convt)
    assert [c.out_channels for c in ups] == [8, 4] and all(c.stride == (2,) * dims and c.output_padding == (1,) * dims for c in ups)
    assert sum(1 for m in g.modules() if type(m).__name__ == "ResidualBlock") == 3
    assert isinstance(g.model[-1], nn.Tanh)
    x = torch.randn(2, 1, *([16] * dims))
    y = g(x)
    assert y.shape == (2, 2, *([16] * dims)) and float(y.detach().abs().max()) <= 1.0
    assert g(torch.randn(1, 1, *(20, 12, 8)[:dims])).shape == (1, 2, *(20, 12, 8)[:dims])  # any multiple of 4, anisotropic


def test_resnet_generator_parameter_count_by_hand() -> None:
    """width 4, one downsampling, one residual block, instance norm, 3-D (convolutions before a norm have no bias)."""
    g = ResnetGenerator(3, 1, 1, width=4, n_down=1, n_blocks=1)
    by_hand = (343 * 1 * 4 + 8          # reflect-pad + conv k7 1->4, norm
               + 27 * 4 * 8 + 16        # conv k3 s2 4->8, norm
               + 2 * (27 * 8 * 8 + 16)  # residual block: two conv k3 8->8 with norms
               + 27 * 8 * 4 + 8         # transposed conv k3 s2 8->4, norm
               + 343 * 4 * 1 + 1)       # reflect-pad + conv k7 4->1 with bias
    assert sum(p.numel() for p in g.parameters()) == by_hand == 7993


@pytest.mark.parametrize("dims", [2, 3])
def test_unet_generator_shapes_and_skips(dims: int) -> None:
    torch.manual_seed(1)
    g = UNetGenerator(dims, 1, 1, width=4, depth=3)
    x = torch.randn(1, 1, *(16, 24, 32)[:dims])
    assert g(x).shape == x.shape
    conv = nn.Conv3d if dims == 3 else nn.Conv2d
    assert [c.out_channels for c in _convs(g, conv) if c.stride == (2,) * dims] == [8, 16, 32]
    # skip connections: with every upsampling silenced the output still follows the input (through the skips alone)
    convt = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
    with torch.no_grad():
        for up in _convs(g, convt):
            up.weight.zero_()
        assert float((g(x) - g(torch.randn_like(x))).abs().max()) > 1e-2


def test_generators_refuse_shapes_they_would_change() -> None:
    with pytest.raises(DataError, match=r"multiples of 4"):
        ResnetGenerator(3, 1, 1, width=4, n_down=2, n_blocks=1)(torch.zeros(1, 1, 16, 18, 16))
    with pytest.raises(DataError, match=r"multiples of 8"):
        UNetGenerator(3, 1, 1, width=4, depth=3)(torch.zeros(1, 1, 16, 16, 12))
    with pytest.raises(DataError, match=r"\(B, 1, X, Y, Z\)"):
        ResnetGenerator(3, 1, 1, width=4)(torch.zeros(1, 2, 16, 16, 16))


def test_forward_unchecked_is_the_layers_without_the_guard() -> None:
    """On a valid shape both give the same output; on another the guard refuses it while the layers resize it (ResNet) or fail (U-Net)."""
    torch.manual_seed(3)
    resnet, unet = ResnetGenerator(3, 1, 1, width=4, n_down=2, n_blocks=1), UNetGenerator(3, 1, 1, width=4, depth=2)
    x = torch.randn(1, 1, 16, 12, 8)
    with torch.no_grad():
        for g in (resnet, unet):
            torch.testing.assert_close(g(x), g.forward_unchecked(x), rtol=0, atol=0)
        odd = torch.randn(1, 1, 16, 18, 8)  # 18 is not a multiple of 4
        for g in (resnet, unet):
            with pytest.raises(DataError, match="multiples of 4"):
                g(odd)
        # ResNet: 18 -> ceil(18/2) = 9 -> 5 -> (transposed) 10 -> 20, another shape
        assert resnet.forward_unchecked(odd).shape == (1, 1, 16, 20, 8)
        # U-Net: 18 -> 9 at the first level; 9 -> 5 -> 10 upsampled does not match the skip's 9
        with pytest.raises(RuntimeError):
            unet.forward_unchecked(odd)


@pytest.mark.parametrize("dims", [2, 3])
def test_patch_discriminator_layout(dims: int) -> None:
    torch.manual_seed(2)
    d = PatchDiscriminator(dims, 1, width=4, n_layers=3)
    conv = nn.Conv3d if dims == 3 else nn.Conv2d
    convs = _convs(d, conv)
    assert [c.stride for c in convs] == [(2,) * dims] * 3 + [(1,) * dims] * 2 and all(c.kernel_size == (4,) * dims for c in convs)
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 1]
    assert isinstance(d.model[1], nn.LeakyReLU) and d.model[1].negative_slope == 0.2
    assert isinstance(d.model[-1], conv)  # logits: no sigmoid
    x = torch.randn(2, 1, *([32] * dims))
    assert d(x).shape == (2, 1, *([32 // 8 - 2] * dims))
    wide = PatchDiscriminator(dims, 1, width=2, n_layers=5)
    assert max(c.out_channels for c in _convs(wide, conv)) == 16  # at most 8 x width


def test_patch_discriminator_parameter_count_by_hand() -> None:
    d = PatchDiscriminator(3, 1, width=4, n_layers=2)
    by_hand = 64 * 4 + 4 + 64 * 4 * 8 + 16 + 64 * 8 * 16 + 32 + 64 * 16 + 1
    assert sum(p.numel() for p in d.parameters()) == by_hand == 11573


def test_build_networks_and_their_initialisation() -> None:
    settings = VolumeNetSettings(width=8, n_blocks=2, d_width=8, d_layers=2)
    nets = build_cyclegan_networks(settings, seed=3)
    assert set(nets) == {"G_AB", "G_BA", "D_A", "D_B"}
    again = build_cyclegan_networks(settings, seed=3)
    for name in nets:
        for p, q in zip(nets[name].parameters(), again[name].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert not torch.equal(next(nets["G_AB"].parameters()), next(nets["G_BA"].parameters()))
    weights = torch.cat([m.weight.detach().flatten() for net in nets.values() for m in net.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))])
    scales = torch.cat([m.weight.detach() for net in nets.values() for m in net.modules() if isinstance(m, nn.InstanceNorm3d)])
    biases = [m.bias for net in nets.values() for m in net.modules() if isinstance(m, (nn.Conv3d, nn.InstanceNorm3d)) and m.bias is not None]
    n = weights.numel()
    # normal(0, 0.02): the sample mean within 5 sigma (0.02 / sqrt(n)), the sample std within 5 of its sigma (0.02 / sqrt(2n))
    assert abs(float(weights.mean())) < 5 * 0.02 / math.sqrt(n)
    assert abs(float(weights.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * n)
    assert abs(float(scales.mean()) - 1.0) < 5 * 0.02 / math.sqrt(scales.numel())
    assert all(float(b.detach().abs().max()) == 0 for b in biases)


@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_gradients_reach_every_parameter(generator: str) -> None:
    settings = VolumeNetSettings(generator=generator, width=4, n_down=2, n_blocks=1, d_width=4, d_layers=2)
    nets = build_cyclegan_networks(settings, seed=0)
    x = torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    for name, net in nets.items():
        net(x).square().mean().backward()
        silent = [k for k, p in net.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0]
        assert not silent, f"{name}: no gradient for {silent}"


def test_settings_are_validated_and_2d_works() -> None:
    with pytest.raises(ConfigError, match="generator"):
        parse_config(VolumeNetSettings, {"generator": "vnet"})
    with pytest.raises(ConfigError, match="n_blok"):
        parse_config(VolumeNetSettings, {"n_blok": 3})
    flat = VolumeNetSettings(spatial_dims=2, width=4, n_blocks=1, d_width=4, d_layers=2, channels=3)
    g, d = build_generator(flat), build_discriminator(flat)
    x = torch.randn(1, 3, 32, 24)
    assert g(x).shape == x.shape and d(x).shape == (1, 1, 6, 4)
