"""Locally connected layer: against a plain loop for 1-D/2-D/3-D, against convolution with tied weights,
TensorFlow's 'same' rule, gradients, Keras weight layout and Keras initialisation statistics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gansim.errors import ConfigError, DataError
from gansim.nn.locally_connected import (
    LocallyConnected,
    conv_output_size,
    keras_fans,
    tf_same_padding,
)


def loop_reference(layer: LocallyConnected, x: torch.Tensor) -> torch.Tensor:
    """The definition, one output position and one output channel at a time (float64, no tensor tricks).

    For output multi-index o, kernel offset j and input channel c, the input cell is
    ``o * stride - pad_before + j``; cells outside the input are zero ('same' padding).
    """
    d = layer.spatial_dims
    batch = x.shape[0]
    w = layer.weight.detach().double()
    out = torch.zeros(batch, layer.out_channels, *layer.output_size, dtype=torch.float64)
    xd = x.double()
    offsets = list(itertools.product(*(range(k) for k in layer.kernel_size)))
    for p, o in enumerate(itertools.product(*(range(n) for n in layer.output_size))):
        for co in range(layer.out_channels):
            total = torch.zeros(batch, dtype=torch.float64)
            for c in range(layer.in_channels):
                for j_flat, j in enumerate(offsets):
                    cell = [o[a] * layer.stride[a] - layer.padding_pairs[a][0] + j[a] for a in range(d)]
                    if all(0 <= cell[a] < layer.input_size[a] for a in range(d)):
                        weight = w[p, c * len(offsets) + j_flat, co]
                        total += weight * xd[(slice(None), c, *cell)]
            if layer.bias is not None:
                total += layer.bias.detach().double()[(co, *o)]
            out[(slice(None), co, *o)] = total
    return out


def _randomise(layer: LocallyConnected, seed: int) -> None:
    """Non-trivial parameters (a random bias too, so the bias layout is checked)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))


CASES = [
    # (spatial_dims, input_size, kernel, stride, padding)
    (1, (9,), 3, 1, "valid"),
    (1, (10,), 2, 2, "same"),
    (1, (7,), 4, 2, "valid"),
    (1, (7,), 4, 3, "same"),
    (2, (5, 7), 2, 1, "valid"),
    (2, (5, 7), 2, 1, "same"),
    (2, (6, 5), 3, 2, "same"),
    (2, (7, 6), (3, 2), (1, 2), "valid"),
    (2, (4, 9), (2, 3), (2, 1), "same"),
    (3, (4, 5, 3), 2, 1, "valid"),
    (3, (4, 5, 3), (3, 2, 2), (2, 1, 2), "same"),
    (3, (5, 4, 6), (2, 3, 1), (1, 2, 2), "valid"),
]


@pytest.mark.parametrize(("dims", "size", "kernel", "stride", "padding"), CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_loop(dims, size, kernel, stride, padding, bias) -> None:
    layer = LocallyConnected(dims, 2, 3, size, kernel, stride, padding, bias).double()
    _randomise(layer, seed=sum(size))
    x = torch.randn(3, 2, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = layer(x)
    assert out.shape == (3, 3, *layer.output_size)
    torch.testing.assert_close(out, loop_reference(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dims", "size", "kernel", "stride", "padding"), CASES)
def test_tied_weights_equal_convolution(dims, size, kernel, stride, padding) -> None:
    """With one filter copied to every position, the layer is a convolution (torch's own conv as referee)."""
    layer = LocallyConnected(dims, 2, 3, size, kernel, stride, padding).double()
    g = torch.Generator().manual_seed(7)
    conv_w = torch.randn(3, 2, *layer.kernel_size, generator=g, dtype=torch.float64)  # (C_out, C_in, *k)
    conv_b = torch.randn(3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(conv_w.reshape(3, -1).t().expand(layer.n_positions, -1, -1))
        layer.bias.copy_(conv_b.reshape(3, *([1] * dims)).expand_as(layer.bias))
    x = torch.randn(2, 2, *size, generator=g, dtype=torch.float64)
    pad = [v for pair in reversed(layer.padding_pairs) for v in pair]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    expected = conv(F.pad(x, pad), conv_w, conv_b, stride=layer.stride)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", range(1, 14))
def test_output_size_and_same_padding_formulas(n: int) -> None:
    for k, s in itertools.product([1, 2, 3, 4, 6], [1, 2, 3, 5]):
        _check_sizes(n, k, s)


def _check_sizes(n: int, k: int, s: int) -> None:
    out_same = conv_output_size(n, k, s, "same")
    assert out_same == math.ceil(n / s)
    before, after = tf_same_padding(n, k, s)
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    assert (before, after) == (total // 2, total - total // 2)
    # The padded input holds exactly the windows of the 'same' output.
    assert (n + before + after - k) // s + 1 == out_same
    if n >= k:
        assert conv_output_size(n, k, s, "valid") == (n - k) // s + 1
    else:
        with pytest.raises(ConfigError, match="valid"):
            conv_output_size(n, k, s, "valid")


def test_tensorflow_same_padding_examples() -> None:
    # TensorFlow's documented example: width 13, filter 6, stride 5 -> 3 outputs, 1 cell left, 2 right.
    assert conv_output_size(13, 6, 5, "same") == 3
    assert tf_same_padding(13, 6, 5) == (1, 2)
    # An even kernel at stride 1 pads only the end (CaloGAN's Conv2D 2x2 'same': ZeroPad2d((0, 1, 0, 1))).
    assert tf_same_padding(5, 2, 1) == (0, 1)
    layer = LocallyConnected(2, 1, 1, (5, 98), 2, padding="same")
    assert layer.padding_pairs == ((0, 1), (0, 1))
    assert layer.output_size == (5, 98)


def test_keras_documented_shapes_and_parameter_count() -> None:
    # Keras' docstring: LocallyConnected2D(64, (3, 3)) on 32x32x3 -> (30, 30, 64) with
    # (30*30)*(3*3*3*64) + (30*30)*64 parameters; then LocallyConnected2D(32, (3, 3)) -> (28, 28, 32).
    first = LocallyConnected(2, 3, 64, (32, 32), 3)
    second = LocallyConnected(2, 64, 32, first.output_size, 3)
    assert first.output_size == (30, 30) and second.output_size == (28, 28)
    n_params = sum(p.numel() for p in first.parameters())
    assert n_params == 30 * 30 * 3 * 3 * 3 * 64 + 30 * 30 * 64


def test_calogan_generator_shapes() -> None:
    """calogan.md §b: LC(6, 2x2) then LC(1, 2x2, no bias) take (r+2, c+2) to (r, c) for every layer."""
    for rows, cols in [(3, 96), (12, 12), (12, 6)]:
        lc1 = LocallyConnected(2, 16, 6, (rows + 2, cols + 2), 2)
        lc2 = LocallyConnected(2, 6, 1, lc1.output_size, 2, bias=False)
        assert lc1.output_size == (rows + 1, cols + 1)
        assert lc2(lc1(torch.zeros(2, 16, rows + 2, cols + 2))).shape == (2, 1, rows, cols)
        assert lc2.bias is None


def test_gradients_reach_every_parameter_and_the_input() -> None:
    layer = LocallyConnected(2, 3, 4, (6, 7), (3, 2), (2, 1), "same")
    _randomise(layer, seed=3)
    x = torch.randn(5, 3, 6, 7, requires_grad=True)
    layer(x).square().sum().backward()
    assert {name for name, _ in layer.named_parameters()} == {"weight", "bias"}
    # Every position's filters get a gradient (padding zeros never fill a whole window) and every bias.
    assert (layer.weight.grad.reshape(layer.n_positions, -1).abs().sum(1) > 0).all()
    assert (layer.bias.grad != 0).all()
    assert x.grad is not None and (x.grad != 0).any()


@pytest.mark.parametrize(
    ("dims", "size", "kernel", "stride", "padding"),
    [(1, (7,), 4, 3, "same"), (2, (5, 4), 3, 2, "same"), (3, (2, 4, 3), (2, 3, 2), (2, 2, 1), "same"), (2, (5, 6), 2, (1, 2), "valid")],
)
def test_gradcheck_and_double_backward(dims, size, kernel, stride, padding) -> None:
    """Exact first and second derivatives (the custom window backward is used; gradient penalties need the second)."""
    layer = LocallyConnected(dims, 2, 1, size, kernel, stride, padding).double()
    _randomise(layer, seed=11)
    x = torch.randn(2, 2, *size, dtype=torch.float64, requires_grad=True)

    def f(inp, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (inp,))

    params = (x, layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(f, params)
    assert torch.autograd.gradgradcheck(f, params)


def test_channels_last_input_mapping() -> None:
    """Keras channels_last (B, H, W, C) maps to ours by movedim(-1, 1); a non-contiguous view is fine."""
    layer = LocallyConnected(2, 3, 2, (4, 5), 2)
    _randomise(layer, seed=5)
    x_cl = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(layer(x_cl.movedim(-1, 1)), layer(x_cl.movedim(-1, 1).contiguous()))


@pytest.mark.parametrize(("dims", "size", "kernel", "stride", "padding"), [CASES[2], CASES[7], CASES[11]])
def test_keras_weight_layout(dims, size, kernel, stride, padding) -> None:
    """The export follows Keras' implementation-1 maths: out[o] = flatten(x_cl[window(o)]) @ kernel[o] + bias[o]."""
    layer = LocallyConnected(dims, 3, 2, size, kernel, stride, padding).double()
    _randomise(layer, seed=13)
    kernel_k, bias_k = layer.to_keras_weights()
    assert kernel_k.shape == (layer.n_positions, layer.kernel_elems * 3, 2)
    assert bias_k.shape == (*layer.output_size, 2)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    x_cl = x.movedim(1, -1).numpy()  # (B, *size, C), Keras' default layout
    expected = np.empty((2, *layer.output_size, 2))
    for p, o in enumerate(itertools.product(*(range(n) for n in layer.output_size))):
        window = tuple(slice(o[a] * layer.stride[a], o[a] * layer.stride[a] + layer.kernel_size[a]) for a in range(dims))
        patch = x_cl[(slice(None), *window)].reshape(2, -1)  # Keras: (k_1..k_d, C) flattened
        expected[(slice(None), *o)] = patch @ kernel_k[p] + bias_k[o]
    out = layer(x).movedim(1, -1).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_keras_weight_round_trip() -> None:
    source = LocallyConnected(2, 3, 4, (5, 6), (2, 3), (1, 2))
    _randomise(source, seed=17)
    target = LocallyConnected(2, 3, 4, (5, 6), (2, 3), (1, 2))
    target.load_keras_weights(*source.to_keras_weights())
    torch.testing.assert_close(target.weight, source.weight, rtol=0, atol=0)
    torch.testing.assert_close(target.bias, source.bias, rtol=0, atol=0)
    # The flat (P, C_out) bias form is accepted too; no-bias layers take the kernel alone.
    kernel, bias = source.to_keras_weights()
    target.load_keras_weights(kernel, bias.reshape(-1, 4))
    torch.testing.assert_close(target.bias, source.bias, rtol=0, atol=0)
    no_bias = LocallyConnected(2, 3, 4, (5, 6), (2, 3), (1, 2), bias=False)
    no_bias.load_keras_weights(kernel)
    torch.testing.assert_close(no_bias.weight, source.weight, rtol=0, atol=0)
    assert len(no_bias.to_keras_weights()) == 1


def test_keras_weight_errors() -> None:
    layer = LocallyConnected(2, 3, 4, (5, 6), 2)
    kernel, bias = layer.to_keras_weights()
    with pytest.raises(DataError, match="kernel"):
        layer.load_keras_weights(kernel[:, :-1], bias)
    with pytest.raises(DataError, match="bias"):
        layer.load_keras_weights(kernel, bias[:-1])
    with pytest.raises(DataError, match="missing"):
        layer.load_keras_weights(kernel)
    with pytest.raises(DataError, match="bias=False"):
        LocallyConnected(2, 3, 4, (5, 6), 2, bias=False).load_keras_weights(kernel, bias)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="padding"):
        LocallyConnected(2, 1, 1, (4, 4), 2, padding="full")
    with pytest.raises(ConfigError, match="kernel"):
        LocallyConnected(2, 1, 1, (4, 4), (2, 2, 2))
    with pytest.raises(ConfigError, match="input_size"):
        LocallyConnected(2, 1, 1, 4, 2)
    with pytest.raises(ConfigError, match="input 3 < kernel 4"):
        LocallyConnected(2, 1, 1, (3, 8), 4)
    with pytest.raises(ConfigError, match="stride"):
        LocallyConnected(1, 1, 1, (8,), 2, stride=0)
    with pytest.raises(ConfigError, match="spatial_dims"):
        LocallyConnected(0, 1, 1, (), 2)
    with pytest.raises(ConfigError, match="kernel_init"):
        LocallyConnected(1, 1, 1, (8,), 2, kernel_init="orthogonal")
    with pytest.raises(ConfigError, match="fan_convention"):
        LocallyConnected(1, 1, 1, (8,), 2, fan_convention="torch")
    # Keras accepts padding names in any case.
    assert LocallyConnected(1, 1, 1, (8,), 2, padding="SAME").padding == "same"


def test_input_shape_error_names_the_expectation() -> None:
    layer = LocallyConnected(2, 3, 1, (4, 5), 2)
    with pytest.raises(DataError, match=r"expected \(B, 3, 4, 5\)"):
        layer(torch.zeros(2, 4, 5, 3))  # channels-last by mistake


def test_keras_fans() -> None:
    # P = 4*97 output positions, K = 4 cells, C_in = 16, C_out = 6 (CaloGAN's first generator LC, layer 0).
    p, k, cin, cout = 388, 4, 16, 6
    assert keras_fans(p, k, cin, cout, "keras") == (p * k * cin, p * cout)
    assert keras_fans(p, k, cin, cout, "keras-2.0-prefix") == (p * (k * cin) ** 2, p * k * cin * cout)
    assert keras_fans(p, k, cin, cout, "keras-2.0-sqrt") == (math.sqrt(p * k * cin * cout),) * 2
    assert keras_fans(p, k, cin, cout, "conv") == (k * cin, k * cout)
    layer = LocallyConnected(2, cin, cout, (5, 98), 2)
    assert layer.fans() == keras_fans(p, k, cin, cout)


@pytest.mark.parametrize(
    ("init", "convention"), [("glorot_uniform", "keras"), ("he_uniform", "conv"), ("lecun_uniform", "keras-2.0-prefix"), ("glorot_uniform", "keras-2.0-sqrt")]
)
def test_uniform_initialisers(init: str, convention: str) -> None:
    """Keras VarianceScaling, uniform: U(-a, a) with a = sqrt(3 * scale / fan); zero bias."""
    layer = LocallyConnected(2, 4, 8, (20, 20), 3, kernel_init=init, fan_convention=convention)
    layer.reset_parameters(torch.Generator().manual_seed(0))
    fan_in, fan_out = layer.fans()
    scale, fan = {"glorot_uniform": (1.0, (fan_in + fan_out) / 2), "he_uniform": (2.0, fan_in), "lecun_uniform": (1.0, fan_in)}[init]
    a = math.sqrt(3 * scale / fan)
    w = layer.weight.detach().double().flatten()
    n = w.numel()
    assert w.abs().max() <= a
    # E[w^2] = a^2/3 and Var[w^2] = a^4/5 - a^4/9 for U(-a, a): the sample mean within 5 sigma.
    assert abs(w.square().mean().item() - a * a / 3) < 5 * math.sqrt(4 * a**4 / 45 / n)
    assert abs(w.mean().item()) < 5 * a / math.sqrt(3 * n)
    assert (layer.bias == 0).all()


def test_truncated_normal_initialiser() -> None:
    """glorot_normal as in Keras 2.0-2.2: N(0, s^2) truncated at +-2s, s = sqrt(2 / (fan_in + fan_out))."""
    layer = LocallyConnected(2, 4, 8, (20, 20), 3, kernel_init="glorot_normal", fan_convention="conv")
    layer.reset_parameters(torch.Generator().manual_seed(1))
    fan_in, fan_out = layer.fans()
    s = math.sqrt(2 / (fan_in + fan_out))
    w = layer.weight.detach().double().flatten()
    n = w.numel()
    assert w.abs().max() <= 2 * s
    # Truncated at +-2: Var = s^2 (1 - 2*2*phi(2) / (2*Phi(2) - 1)); E[z^4] = 3 - 2*(8 + 3*2)*phi(2)/(2*Phi(2)-1) in s^4.
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    var = 1 - 4 * phi2 / mass
    fourth = 3 - 2 * (2**3 + 3 * 2) * phi2 / mass
    assert abs(w.square().mean().item() / s**2 - var) < 5 * math.sqrt((fourth - var**2) / n)


def test_seeded_initialisation_is_reproducible() -> None:
    a = LocallyConnected(3, 2, 2, (3, 4, 5), 2)
    b = LocallyConnected(3, 2, 2, (3, 4, 5), 2)
    a.reset_parameters(torch.Generator().manual_seed(4))
    b.reset_parameters(torch.Generator().manual_seed(4))
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)


def test_batch_of_one_and_dtype() -> None:
    layer = LocallyConnected(1, 2, 3, (9,), 3, stride=2, padding="same").double()
    _randomise(layer, seed=2)
    x = torch.randn(1, 2, 9, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64 and out.shape == (1, 3, 5)
    torch.testing.assert_close(out, loop_reference(layer, x), rtol=1e-12, atol=1e-12)
