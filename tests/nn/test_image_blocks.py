"""Layer factories for 2-D and 3-D images: instance norm over all spatial axes, padding, residual blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gansim.errors import ConfigError
from gansim.nn.image_blocks import InstanceNorm, ResidualBlock, conv_block, conv_transpose_type, conv_type, norm_layer, pad_layer


@pytest.mark.parametrize("dims", [2, 3])
def test_instance_norm_normalises_each_sample_and_channel_over_all_spatial_axes(dims: int) -> None:
    gen = torch.Generator().manual_seed(dims)
    shape = (2, 3, 6, 5, 4)[: 2 + dims]
    offset = torch.tensor([[5.0, -3.0, 0.5], [100.0, 1.0, -7.0]]).reshape(2, 3, *([1] * dims))
    scale = torch.tensor([[2.0, 0.1, 30.0], [1.0, 7.0, 0.01]]).reshape(2, 3, *([1] * dims))
    x = torch.randn(*shape, generator=gen) * scale + offset
    norm = InstanceNorm(dims, 3)
    assert isinstance(norm, nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d) and norm.affine and not norm.track_running_stats
    y = norm(x).detach()
    spatial = tuple(range(2, 2 + dims))
    torch.testing.assert_close(y.mean(dim=spatial), torch.zeros(2, 3), atol=1e-5, rtol=0)
    # variance 1 up to the eps (1e-5) added to each channel's own variance v: v / (v + eps)
    v = x.var(dim=spatial, unbiased=False)
    torch.testing.assert_close(y.var(dim=spatial, unbiased=False), v / (v + norm.eps), atol=1e-4, rtol=0)
    # training and evaluation normalise alike (no running statistics)
    torch.testing.assert_close(norm.eval()(x), y)


def test_instance_norm_is_not_per_slice() -> None:
    """The Keras model normalised one spatial axis; here a slope along Z survives normalisation."""
    z = torch.arange(8.0).reshape(1, 1, 1, 1, 8).expand(1, 1, 4, 4, 8)
    y = InstanceNorm(3, 1)(z).detach()
    slice_means = y.mean(dim=(2, 3))[0, 0]
    assert torch.all(slice_means[1:] > slice_means[:-1])  # still increasing along Z
    assert abs(float(y.mean())) < 1e-6


def test_factories_by_dimension_and_bad_values() -> None:
    assert conv_type(2) is nn.Conv2d and conv_type(3) is nn.Conv3d
    assert conv_transpose_type(2) is nn.ConvTranspose2d and conv_transpose_type(3) is nn.ConvTranspose3d
    assert isinstance(norm_layer("batch", 3, 4), nn.BatchNorm3d) and isinstance(norm_layer("none", 2, 4), nn.Identity)
    with pytest.raises(ConfigError, match="spatial_dims=4"):
        conv_type(4)
    with pytest.raises(ConfigError, match="norm='group'.*'instance'"):
        norm_layer("group", 3, 4)
    with pytest.raises(ConfigError, match="padding='circular'"):
        pad_layer("circular", 3, 1)


@pytest.mark.parametrize(("kind", "np_mode"), [("reflect", "reflect"), ("replicate", "edge"), ("zeros", "constant")])
def test_padding_matches_numpy(kind: str, np_mode: str) -> None:
    x = torch.randn(1, 2, 5, 4, 6, generator=torch.Generator().manual_seed(1))
    y = pad_layer(kind, 3, 2)(x)
    expected = np.pad(x.numpy(), [(0, 0), (0, 0), (2, 2), (2, 2), (2, 2)], mode=np_mode)
    np.testing.assert_array_equal(y.numpy(), expected)


def test_conv_block_has_a_bias_only_without_norm() -> None:
    with_norm = conv_block(3, 2, 4, 3, padding=1)
    without = conv_block(3, 2, 4, 3, padding=1, norm="none")
    assert with_norm[1].bias is None and without[1].bias is not None
    assert with_norm(torch.zeros(1, 2, 5, 6, 7)).shape == (1, 4, 5, 6, 7)


@pytest.mark.parametrize("dims", [2, 3])
def test_residual_block_adds_its_input(dims: int) -> None:
    torch.manual_seed(0)
    block = ResidualBlock(dims, 4)
    x = torch.randn(2, 4, *([6] * dims))
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in block.parameters())
    # with the last norm's scale and shift at zero the branch is silent: the block is the identity
    last_norm = block.body[1][2]
    with torch.no_grad():
        last_norm.weight.zero_()
        last_norm.bias.zero_()
    torch.testing.assert_close(block(x), x)
    # two k3 convolutions with reflection padding and a norm after each, ReLU between
    kinds = [type(m) for m in block.body.modules() if not isinstance(m, nn.Sequential)]
    pad, conv, inorm = (nn.ReflectionPad3d, nn.Conv3d, nn.InstanceNorm3d) if dims == 3 else (nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d)
    assert kinds == [pad, conv, inorm, nn.ReLU, pad, conv, inorm]
