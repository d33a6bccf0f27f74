"""Progressive-GAN layers: equalised learning rate, pixel norm and minibatch standard deviation, in 1-3 D."""

from __future__ import annotations

import math

import pytest
import torch

from gansim.errors import ConfigError
from gansim.nn.progressive import EqualizedConv, EqualizedLinear, MinibatchStdDev, PixelNorm


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_equalized_conv_is_a_convolution_with_he_scaled_weights(dims: int) -> None:
    torch.manual_seed(dims)
    layer = EqualizedConv(dims, 6, 5, kernel_size=3)
    assert layer.scale == pytest.approx(math.sqrt(2.0) / math.sqrt(6 * 3**dims))
    x = torch.randn(2, 6, *([7] * dims))
    reference = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    with torch.no_grad():
        layer.bias.normal_()
    torch.testing.assert_close(layer(x), reference(x, layer.weight * layer.scale, layer.bias, padding=1))
    assert layer(x).shape == (2, 5, *([7] * dims))  # 'same' for the odd kernel


def test_equalized_weights_are_unit_normal_and_the_step_is_scale_free() -> None:
    """Stored weights are N(0, 1) whatever the fan-in. Adam's first step moves every stored weight by
    lr (its update is m / sqrt(v) = +-1 at step one), so every layer's effective weights change by lr
    times their own spread: the same relative step for a fan-in of 16 and of 1024."""
    torch.manual_seed(0)
    relative = []
    for fan_in in (16, 1024):
        layer = EqualizedLinear(fan_in, 256)
        assert float(layer.weight.detach().std()) == pytest.approx(1.0, rel=0.05)  # 256 * fan_in draws
        effective_std = float(layer.effective_weight().detach().std())
        assert effective_std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.05)
        before = layer.effective_weight().detach().clone()
        optimiser = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.randn(8, fan_in)).square().mean().backward()
        optimiser.step()
        relative.append(float((layer.effective_weight().detach() - before).abs().mean()) / effective_std)
    assert relative == pytest.approx([1e-3, 1e-3], rel=0.06)  # the effective std is within 5 % of the scale


def test_pixel_norm_gives_unit_mean_square_over_channels() -> None:
    x = torch.randn(3, 8, 4, 5) * torch.linspace(0.1, 10, 3).reshape(3, 1, 1, 1)
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(3, 4, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y / y.norm(dim=1, keepdim=True), x / x.norm(dim=1, keepdim=True))  # direction kept


def test_minibatch_stddev_by_hand() -> None:
    x = torch.tensor([[[0.0, 2.0]], [[2.0, 2.0]], [[4.0, 2.0]], [[6.0, 2.0]]])  # (B=4, C=1, L=2)
    whole = MinibatchStdDev(group_size=None, eps=0.0)(x)
    # whole batch: position 0 values 0, 2, 4, 6 -> population std sqrt(5); position 1: 0; mean sqrt(5)/2
    assert whole.shape == (4, 2, 2)
    torch.testing.assert_close(whole[:, 1], torch.full((4, 2), math.sqrt(5.0) / 2))
    torch.testing.assert_close(whole[:, :1], x)
    pairs = MinibatchStdDev(group_size=2, eps=0.0)(x)
    # groups {0, 2} and {1, 3} (sample i in group i % 2): stds 2 and 2 at position 0, 0 at position 1
    torch.testing.assert_close(pairs[:, 1], torch.ones(4, 2))
    odd = MinibatchStdDev(group_size=4, eps=0.0)(x[:3])  # 3 samples, no group of 4: groups of 3
    torch.testing.assert_close(odd[:, 1], torch.full((3, 2), float(torch.tensor([0.0, 2.0, 4.0]).std(unbiased=False)) / 2))
    with pytest.raises(ConfigError):
        MinibatchStdDev(group_size=0)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(1)
    net = torch.nn.Sequential(EqualizedConv(2, 3, 4), PixelNorm(), MinibatchStdDev(2), EqualizedConv(2, 5, 1, kernel_size=1, gain=1.0))
    net(torch.randn(4, 3, 6, 6)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
