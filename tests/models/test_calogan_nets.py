"""The faithful CaloGAN networks: shapes and sizes of the paper, Keras behaviours, in-painting start, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gansim.models.calogan_nets import CARRY_OVER_BIAS, CaloGANDiscriminator, CaloGANGenerator, _Inpainting
from gansim.nn.keras_compat import KERAS_LEAKY_SLOPE, SameConv, SamePadding, keras_batch_norm
from gansim.nn.minibatch import MinibatchDiscrimination


@pytest.fixture(scope="module")
def nets() -> tuple[CaloGANGenerator, CaloGANDiscriminator]:
    torch.manual_seed(0)
    return CaloGANGenerator(), CaloGANDiscriminator()


def test_sizes_match_the_paper(nets: tuple[CaloGANGenerator, CaloGANDiscriminator]) -> None:
    g, d = nets
    n_g = sum(p.numel() for p in g.parameters())
    n_dense = sum(s.dense.weight.numel() + s.dense.bias.numel() for s in g.streams)
    # "about 29.7 M parameters, of which 29.4 M are in the three dense projections (layer 0 alone: 18 M)"
    assert 29.6e6 < n_g < 29.8e6 and 29.3e6 < n_dense < 29.5e6
    assert 17.9e6 < g.streams[0].dense.weight.numel() < 18.1e6
    assert [s.n_features for s in d.stacks] == [5 * 25 * 8, 14 * 4 * 8, 14 * 3 * 8]  # 1000, 448, 336
    assert 2.6e6 < sum(p.numel() for p in d.parameters()) < 2.8e6


def test_shapes_relu_outputs_and_gradients_reach_every_parameter(nets: tuple[CaloGANGenerator, CaloGANDiscriminator]) -> None:
    g, d = nets
    g.train(), d.train()
    z, e = torch.randn(6, 1024), torch.rand(6) * 99 + 1
    images = g(z, e)
    assert [tuple(i.shape) for i in images] == [(6, 3, 96), (6, 12, 12), (6, 12, 6)]
    assert all(bool((i >= 0).all()) for i in images)
    logits = d(images, e)
    assert logits.shape == (6,)
    g.zero_grad(), d.zero_grad()
    logits.sum().backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().sum()) > 0, name  # a parameter that gets no gradient never learns


def test_conditioning_is_multiplicative(nets: tuple[CaloGANGenerator, CaloGANDiscriminator]) -> None:
    """h = z E / 100: at E = 0 every latent gives the same shower."""
    g, _ = nets
    g.eval()
    with torch.no_grad():
        a = g(torch.randn(3, 1024), torch.zeros(3))
        b = g(torch.randn(3, 1024), torch.zeros(3))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_inpainting_starts_by_ignoring_the_previous_layer() -> None:
    """With the locally connected weights at zero, the carry-over weight is softmax([0, -10])[1] = 1 / (1 + e^10)."""
    mix = _Inpainting((12, 12))
    assert float(mix.lc.bias[1].detach().min()) == float(mix.lc.bias[1].detach().max()) == CARRY_OVER_BIAS
    assert float(mix.lc.bias[0].detach().abs().max()) == 0.0
    with torch.no_grad():
        mix.lc.weight.zero_()
    own, carried = torch.rand(2, 1, 12, 12), torch.rand(2, 1, 12, 12) + 5.0
    w = 1.0 / (1.0 + math.exp(10.0))  # 4.54e-5
    torch.testing.assert_close(mix(own, carried), (1 - w) * own + w * carried)


def test_keras_behaviours() -> None:
    assert KERAS_LEAKY_SLOPE == 0.3
    bn = keras_batch_norm(2, 4)
    assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)  # Keras momentum 0.99, eps 1e-3
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    padded = SamePadding((2, 2))(x)  # an even kernel: TensorFlow pads only bottom and right
    assert padded.shape == (1, 1, 4, 4)
    torch.testing.assert_close(padded[..., :3, :3], x)
    assert float(padded[..., 3, :].abs().sum()) == 0 and float(padded[..., :, 3].abs().sum()) == 0


@pytest.mark.parametrize(("dims", "kernel", "size"), [(1, 2, (7,)), (2, (2, 2), (5, 9)), (2, (3, 2), (4, 6)), (3, (2, 3, 4), (3, 5, 6))])
def test_same_conv_is_padding_then_convolution(dims: int, kernel: int | tuple[int, ...], size: tuple[int, ...]) -> None:
    """SameConv (symmetric padding and a crop) gives SamePadding + conv's numbers and gradients, with its parameter keys."""
    torch.manual_seed(dims)
    conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[dims](3, 4, kernel)
    fused = SameConv(conv)
    assert set(fused.state_dict()) == {"1.weight", "1.bias"}
    x = torch.randn(2, 3, *size, requires_grad=True)
    reference = conv(SamePadding(conv.kernel_size)(x))
    out = fused(x)
    assert out.shape == (2, 4, *size)
    torch.testing.assert_close(out, reference)
    (g_ref,) = torch.autograd.grad(reference.square().sum(), x)
    (g_out,) = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(g_out, g_ref)
    with pytest.raises(ValueError, match="stride 1"):
        SameConv(torch.nn.Conv2d(3, 4, 2, stride=2))


def test_minibatch_discrimination_by_hand() -> None:
    layer = MinibatchDiscrimination(2, n_kernels=1, kernel_dim=2, activation=None)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 1.0]])
    # o(x_i) = sum_j exp(-|x_i - x_j|_1), j = i included
    d = torch.tensor([[0.0, 3.0, 1.0], [3.0, 0.0, 2.0], [1.0, 2.0, 0.0]])
    torch.testing.assert_close(layer(x), torch.exp(-d).sum(dim=1, keepdim=True))
    assert isinstance(MinibatchDiscrimination(5).forward(torch.randn(4, 5)), torch.Tensor)


def test_discriminator_sees_the_energy_well() -> None:
    """Two identical shower batches with different requested energies get different logits (|E_tot - E| is an input)."""
    torch.manual_seed(1)
    d = CaloGANDiscriminator().eval()
    images = [torch.rand(4, 3, 96) * 0.01, torch.rand(4, 12, 12) * 0.1, torch.rand(4, 12, 6) * 0.001]
    with torch.no_grad():
        a = d(images, torch.full((4,), 10.0))
        b = d(images, torch.full((4,), 90.0))
    assert not torch.allclose(a, b)
    assert isinstance(d.output, nn.Linear) and d.output.out_features == 1
