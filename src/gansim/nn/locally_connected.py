"""Locally connected layers (unshared convolution), written once for any number of spatial dimensions.

A locally connected layer slides a window over the input like a convolution, but every output
position has its own filters: in a calorimeter image a cell's position carries physical meaning
(the shower axis sits on a fixed cell corner), so LAGAN and CaloGAN untie the weights
(Keras ``LocallyConnected2D``, removed from Keras 3). ``calogan.md`` §b lists where CaloGAN
uses them: the generator's two 2×2 layers per stream, the in-painting attention's 3×3 layer,
and the discriminator's locally connected blocks.

**Semantics** (Keras 2 ``LocallyConnected1D/2D``, ``implementation`` 1, 2 and 3 compute the same
function; they differ only in how the kernel is stored, see "Initialisation" below):

* output position ``o`` (a multi-index over the output grid) sees the input window that starts at
  ``o * stride - pad_before`` and spans ``kernel_size`` cells along every spatial axis;
* ``out[b, c_out, o] = sum_{c_in, j} x_pad[b, c_in, o*stride + j] * W_o[c_in, j, c_out] + bias[c_out, o]``;
* ``padding="valid"``: no padding, ``n_out = floor((n - k) / s) + 1`` (needs ``n >= k``);
* ``padding="same"``: ``n_out = ceil(n / s)``, zero padding by TensorFlow's rule
  ``pad_total = max((n_out - 1) * s + k - n, 0)``, ``pad_before = pad_total // 2``,
  ``pad_after = pad_total - pad_before``, so an even kernel pads one more cell on the *end* side
  (a 2×2 kernel at stride 1 pads only bottom/right, PyTorch's ``ZeroPad2d((0, 1, 0, 1))``).
  Keras 2's locally connected layers accept only ``"valid"``; ``"same"`` is offered here with the
  rule Keras' ``Conv2D`` uses, so that a ``ZeroPadding`` + ``"valid"`` pair or a conv-like
  'same' layer can both be expressed.

**Layout.** gansim is channels-first: ``x`` is ``(B, C_in, *input_size)``; Keras'
``data_format="channels_last"`` input ``(B, *input_size, C_in)`` maps to it by
``x.movedim(-1, 1)``. Parameters:

* ``weight``: ``(P, C_in * prod(kernel_size), C_out)``, ``P = prod(output_size)`` output positions
  in row-major (C) order over the output grid, the middle axis ordered ``(C_in, k_1, ..., k_d)``
  with the last kernel axis fastest (the order of :func:`torch.nn.functional.unfold`);
* ``bias``: ``(C_out, *output_size)`` (so ``bias[c]`` is the bias image of output channel ``c``),
  or ``None`` when ``bias=False``.

Keras (implementation 1, channels_last) stores the kernel as ``(P, prod(kernel) * C_in, C_out)``
with the middle axis ordered ``(k_1, ..., k_d, C_in)`` and the bias as ``(*output_size, C_out)``;
:meth:`LocallyConnected.to_keras_weights` and :meth:`LocallyConnected.load_keras_weights` convert.

**Initialisation.** Keras' defaults are ``kernel_initializer="glorot_uniform"`` and zero bias.
Keras computes the fans from the *stored kernel shape* ``(P, K*C_in, C_out)`` (``K = prod(kernel)``,
implementation 1), not from one position's filter, so the number of output positions enters the
fans. Keras 2.0 changed the rule while CaloGAN was being written, and CaloGAN pins no version
(its issue #11), so every rule is offered by name (``fan_convention``):

* ``"keras"`` (default; keras-team/keras#7200, merged 2017-06-30, and every later Keras 2 and
  tf.keras): receptive field ``prod(shape[:-2]) = P``: ``fan_in = P*K*C_in``, ``fan_out = P*C_out``;
* ``"keras-2.0-prefix"`` (Keras 2.0.x before #7200): receptive field ``prod(shape[:2]) = P*K*C_in``:
  ``fan_in = P*(K*C_in)**2``, ``fan_out = P*K*C_in*C_out``;
* ``"keras-2.0-sqrt"`` (the first Keras 2.0 code, which treated only 2-, 4- and 5-D shapes as
  layers): ``fan_in = fan_out = sqrt(P*K*C_in*C_out)``;
* ``"conv"``: the fans of one position's filter, as a convolution counts them:
  ``fan_in = K*C_in``, ``fan_out = K*C_out``.

The ``*_normal`` initialisers draw from a normal truncated at ±2 standard deviations with the
uncorrected ``stddev = sqrt(scale / fan)`` of Keras 2.0 (later Keras divides it by 0.8796 so that
the truncated draw has variance ``scale / fan``).

**Implementation.** The input is copied once to a batch-last layout, the windows are gathered
with ``Tensor.unfold`` per spatial axis into ``(P, C_in*K, B)`` and each position's filter is
applied by one batched matrix product (``torch.baddbmm``); the backward of the window gathering
is a hand-written strided sum (twice faster than autograd's), itself differentiable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from gansim.errors import ConfigError, DataError
from gansim.nn.keras_compat import tf_same_padding, variance_scaling_

__all__ = [
    "LocallyConnected",
    "KERNEL_INITS",
    "FAN_CONVENTIONS",
    "PADDINGS",
    "tf_same_padding",
    "conv_output_size",
    "keras_fans",
]

#: Kernel initialisers by their Keras names.
KERNEL_INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "zeros")
#: How fans are counted for the kernel, see the module docstring.
FAN_CONVENTIONS = ("keras", "keras-2.0-prefix", "keras-2.0-sqrt", "conv")
#: Padding modes (case-insensitive, as in Keras).
PADDINGS = ("valid", "same")


def _tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """``value`` as an n-tuple of positive ints (an int is repeated); ConfigError otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values: tuple[int, ...] = (int(value),) * n
    else:
        try:
            values = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ConfigError(f"{name}={value!r}: expected an int or a sequence of {n} ints") from None
        if len(values) != n:
            raise ConfigError(f"{name}={value!r}: expected {n} values (one per spatial dimension), got {len(values)}")
    if any(v < 1 for v in values):
        raise ConfigError(f"{name}={value!r}: every value must be >= 1")
    return values


def _padding_mode(padding: str) -> str:
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in PADDINGS:
        raise ConfigError(f"padding={padding!r}: expected one of {', '.join(PADDINGS)}")
    return mode


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length along one axis, as Keras/TensorFlow compute it.

    ``"valid"``: ``floor((n - kernel) / stride) + 1`` (ConfigError if ``n < kernel``);
    ``"same"``: ``ceil(n / stride)``.
    """
    mode = _padding_mode(padding)
    if mode == "same":
        return -(-n // stride)
    if n < kernel:
        raise ConfigError(f"'valid' padding needs an input of at least the kernel size: input {n} < kernel {kernel}")
    return (n - kernel) // stride + 1


def keras_fans(
    n_positions: int, kernel_elems: int, in_channels: int, out_channels: int, convention: str = "keras"
) -> tuple[float, float]:
    """``(fan_in, fan_out)`` of a locally connected kernel ``(P, K*C_in, C_out)`` under ``convention``.

    Args:
        n_positions: P, the number of output positions.
        kernel_elems: K, the number of cells in one window (``prod(kernel_size)``).
        in_channels, out_channels: C_in, C_out.
        convention: one of :data:`FAN_CONVENTIONS` (formulas in the module docstring).
    """
    p, kc = n_positions, kernel_elems * in_channels
    if convention == "keras":
        return float(p * kc), float(p * out_channels)
    if convention == "keras-2.0-prefix":
        return float(p * kc * kc), float(p * kc * out_channels)
    if convention == "keras-2.0-sqrt":
        fan = math.sqrt(p * kc * out_channels)
        return fan, fan
    if convention == "conv":
        return float(kc), float(kernel_elems * out_channels)
    raise ConfigError(f"fan_convention={convention!r}: expected one of {', '.join(FAN_CONVENTIONS)}")


class _Windows(torch.autograd.Function):
    """Batch-last window extraction ``(C, *padded, B) -> (P, C * prod(kernel), B)`` with a fast backward.

    The forward is a view (``Tensor.unfold`` per axis) and one copy. The autograd backward of
    ``Tensor.unfold`` (``unfold_backward``) measured about twice slower on CPU than adding the
    gradient of each kernel offset back into a strided slice, which is what :meth:`backward`
    does, with differentiable ops, so double backward (gradient penalties) still works.
    """

    @staticmethod
    def forward(ctx, xb: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...], output_size: tuple[int, ...]) -> Tensor:  # type: ignore[override]
        ctx.input_shape = tuple(xb.shape)
        ctx.geometry = (kernel_size, stride, output_size)
        return _extract_windows(xb, kernel_size, stride, output_size)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        kernel_size, stride, output_size = ctx.geometry
        return _fold_windows(grad, ctx.input_shape, kernel_size, stride, output_size), None, None, None


def _extract_windows(xb: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...], output_size: tuple[int, ...]) -> Tensor:
    """``(C, *padded, B) -> (P, C * prod(kernel), B)``, features ordered ``(C, k_1..k_d)``."""
    d = len(kernel_size)
    channels, batch = xb.shape[0], xb.shape[-1]
    # Tensor.unfold per spatial axis gives a view (C, o_1..o_d, B, k_1..k_d) for any d.
    for axis, (k, s) in enumerate(zip(kernel_size, stride)):
        xb = xb.unfold(1 + axis, k, s)
    xb = xb.permute(*range(1, 1 + d), 0, *range(2 + d, 2 + 2 * d), 1 + d)
    return xb.reshape(math.prod(output_size), channels * math.prod(kernel_size), batch)


def _fold_windows(
    grad: Tensor, input_shape: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...], output_size: tuple[int, ...]
) -> Tensor:
    """The adjoint of :func:`_extract_windows` ("fold"): ``(P, C*K, B) -> (C, *padded, B)``, overlaps summed."""
    d = len(kernel_size)
    channels, batch = input_shape[0], input_shape[-1]
    # (o_1..o_d, C, k_1..k_d, B) -> (C, k_1..k_d, o_1..o_d, B): one kernel offset is one strided slab.
    g = grad.reshape(*output_size, channels, *kernel_size, batch)
    g = g.permute(d, *range(d + 1, 2 * d + 1), *range(d), 2 * d + 1)
    out = grad.new_zeros(input_shape)
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        window = tuple(slice(j, j + s * (n - 1) + 1, s) for j, s, n in zip(offset, stride, output_size))
        out[(slice(None), *window)] += g[(slice(None), *offset)]
    return out


class LocallyConnected(nn.Module):
    """Locally connected layer (convolution with unshared weights) for any number of spatial dimensions.

    Args:
        spatial_dims: number of spatial axes d (1, 2, 3, ...), like MONAI's ``spatial_dims``.
        in_channels: C_in.
        out_channels: C_out (Keras ``filters``).
        input_size: the d spatial sizes of the input; the weights depend on it, so it is fixed.
        kernel_size: window size, an int or d ints.
        stride: an int or d ints.
        padding: ``"valid"`` or ``"same"`` (TensorFlow rule; see the module docstring).
        bias: learn a bias per output position and channel (Keras ``use_bias``).
        kernel_init: one of :data:`KERNEL_INITS` (Keras names; default Keras' ``glorot_uniform``).
        fan_convention: one of :data:`FAN_CONVENTIONS`, how the initialiser counts fans.

    Shapes: ``x (B, C_in, *input_size) -> (B, C_out, *output_size)``.

    Attributes:
        output_size: the d output sizes.
        padding_pairs: ``(before, after)`` zero cells added per spatial axis.
        weight: ``(P, C_in * prod(kernel_size), C_out)``, ``P = prod(output_size)``.
        bias: ``(C_out, *output_size)`` or ``None``; initialised to zero.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        input_size: Sequence[int],
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "valid",
        bias: bool = True,
        *,
        kernel_init: str = "glorot_uniform",
        fan_convention: str = "keras",
    ) -> None:
        super().__init__()
        if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, (int, np.integer)) or spatial_dims < 1:
            raise ConfigError(f"spatial_dims={spatial_dims!r}: expected an int >= 1")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name}={value!r}: expected an int >= 1")
        if kernel_init not in KERNEL_INITS:
            raise ConfigError(f"kernel_init={kernel_init!r}: expected one of {', '.join(KERNEL_INITS)}")
        if fan_convention not in FAN_CONVENTIONS:
            raise ConfigError(f"fan_convention={fan_convention!r}: expected one of {', '.join(FAN_CONVENTIONS)}")
        d = int(spatial_dims)
        self.spatial_dims = d
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        if isinstance(input_size, (int, np.integer)) and d != 1:
            # An int is accepted only in 1-D: guessing a square/cubic input would hide bugs.
            raise ConfigError(f"input_size={input_size!r}: expected {d} sizes (one per spatial dimension)")
        self.input_size = _tuple(input_size, d, "input_size")
        self.kernel_size = _tuple(kernel_size, d, "kernel_size")
        self.stride = _tuple(stride, d, "stride")
        self.padding = _padding_mode(padding)
        self.kernel_init = kernel_init
        self.fan_convention = fan_convention
        if self.padding == "same":
            self.padding_pairs = tuple(tf_same_padding(n, k, s) for n, k, s in zip(self.input_size, self.kernel_size, self.stride))
        else:
            self.padding_pairs = ((0, 0),) * d
        try:
            self.output_size = tuple(
                conv_output_size(n, k, s, self.padding) for n, k, s in zip(self.input_size, self.kernel_size, self.stride)
            )
        except ConfigError as err:
            raise ConfigError(f"LocallyConnected input_size={self.input_size}, kernel_size={self.kernel_size}: {err}") from None
        self.n_positions = math.prod(self.output_size)
        self.kernel_elems = math.prod(self.kernel_size)
        self.weight = nn.Parameter(torch.empty(self.n_positions, self.in_channels * self.kernel_elems, self.out_channels))
        self.bias = nn.Parameter(torch.empty(self.out_channels, *self.output_size)) if bias else None
        self._needs_padding = any(before or after for before, after in self.padding_pairs)
        self.reset_parameters()

    def fans(self) -> tuple[float, float]:
        """``(fan_in, fan_out)`` the initialiser uses (see :func:`keras_fans`)."""
        return keras_fans(self.n_positions, self.kernel_elems, self.in_channels, self.out_channels, self.fan_convention)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the kernel with ``kernel_init`` and set the bias to zero (Keras' defaults)."""
        fan_in, fan_out = self.fans()
        variance_scaling_(self.weight, self.kernel_init, fan_in, fan_out, generator=generator)
        if self.bias is not None:
            self.bias.zero_()

    def extra_repr(self) -> str:
        return (
            f"spatial_dims={self.spatial_dims}, {self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding!r}, bias={self.bias is not None}"
        )

    def _check_input(self, x: Tensor) -> None:
        expected = (self.in_channels, *self.input_size)
        if x.dim() != self.spatial_dims + 2 or tuple(x.shape[1:]) != expected:
            raise DataError(
                f"LocallyConnected: input of shape {tuple(x.shape)}; expected (B, {', '.join(map(str, expected))}) "
                "(channels first)"
            )

    def patches(self, x: Tensor) -> Tensor:
        """The windows each output position sees: ``(B, C_in, *input_size) -> (P, C_in * prod(kernel), B)``.

        The middle axis is ordered ``(C_in, k_1, ..., k_d)``, matching :attr:`weight`. The batch is
        last on purpose: gathering the windows then copies contiguous runs of B values, and the
        per-position product ``W_p^T (C_out, K) @ patches_p (K, B)`` has the batch as its long side,
        which measured 3-5 times faster on CPU than the (P, B, K) layout of ``F.unfold``.
        """
        # Batch-last copy (C, *spatial, B) of the input, with the zero padding written in the same pass.
        moved = x.movedim(0, -1)
        if self._needs_padding:
            padded = [n + before + after for n, (before, after) in zip(self.input_size, self.padding_pairs)]
            xb = x.new_zeros(self.in_channels, *padded, x.shape[0])
            interior = tuple(slice(before, before + n) for n, (before, _) in zip(self.input_size, self.padding_pairs))
            xb[(slice(None), *interior)] = moved
        else:
            xb = moved.contiguous()
        return _Windows.apply(xb, self.kernel_size, self.stride, self.output_size)

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, C_in, *input_size) -> (B, C_out, *output_size)``."""
        self._check_input(x)
        batch = x.shape[0]
        patches = self.patches(x)  # (P, K*C_in, B)
        weight_t = self.weight.transpose(1, 2)  # (P, C_out, K*C_in), a view: BLAS reads it transposed
        if self.bias is not None:
            # bias (C_out, *output_size) -> (P, C_out, 1), added inside the batched product.
            bias = self.bias.reshape(self.out_channels, self.n_positions).t().unsqueeze(-1)
            out = torch.baddbmm(bias, weight_t, patches)
        else:
            out = torch.bmm(weight_t, patches)  # (P, C_out, B)
        return out.permute(2, 1, 0).reshape(batch, self.out_channels, *self.output_size)

    # ---- Keras weight layout ------------------------------------------------------------------

    def to_keras_weights(self) -> list[np.ndarray]:
        """The parameters in Keras' layout (implementation 1, channels_last), for ``layer.set_weights``.

        Returns ``[kernel (P, prod(kernel)*C_in, C_out)]`` plus ``bias (*output_size, C_out)`` when
        the layer has a bias; float32 numpy copies. Keras' locally connected layers know only
        ``"valid"``: a ``"same"`` layer corresponds to ``ZeroPadding{d}D(padding_pairs)`` followed by a
        ``"valid"`` one with these weights.
        """
        w = self.weight.detach().cpu()
        w = w.reshape(self.n_positions, self.in_channels, *self.kernel_size, self.out_channels)
        # (P, C_in, k_1..k_d, C_out) -> (P, k_1..k_d, C_in, C_out)
        w = w.movedim(1, 1 + self.spatial_dims)
        kernel = w.reshape(self.n_positions, self.kernel_elems * self.in_channels, self.out_channels)
        arrays = [kernel.numpy().astype(np.float32, copy=True)]
        if self.bias is not None:
            arrays.append(self.bias.detach().cpu().movedim(0, -1).numpy().astype(np.float32, copy=True))
        return arrays

    @torch.no_grad()
    def load_keras_weights(self, kernel: np.ndarray | Tensor, bias: np.ndarray | Tensor | None = None) -> None:
        """Set the parameters from Keras' layout (the inverse of :meth:`to_keras_weights`).

        Args:
            kernel: ``(P, prod(kernel_size)*C_in, C_out)``; the middle axis ordered ``(k_1..k_d, C_in)``.
                Keras' ``LocallyConnected2D`` ``(out_rows*out_cols, ...)`` kernel is accepted as is.
            bias: ``(*output_size, C_out)`` (Keras' 2-D bias ``(out_rows, out_cols, filters)``) or
                ``(P, C_out)``; required exactly when the layer has a bias.
        """
        k = torch.as_tensor(np.asarray(kernel), dtype=self.weight.dtype)
        expected = (self.n_positions, self.kernel_elems * self.in_channels, self.out_channels)
        if tuple(k.shape) != expected:
            raise DataError(f"Keras locally connected kernel: shape {tuple(k.shape)}; expected {expected} (P, K*C_in, C_out)")
        k = k.reshape(self.n_positions, *self.kernel_size, self.in_channels, self.out_channels)
        k = k.movedim(1 + self.spatial_dims, 1).reshape(expected)
        if self.bias is None:
            if bias is not None:
                raise DataError("Keras locally connected bias given, but this layer was built with bias=False")
            self.weight.copy_(k)
            return
        if bias is None:
            raise DataError("Keras locally connected bias missing: this layer was built with bias=True")
        b = torch.as_tensor(np.asarray(bias), dtype=self.bias.dtype)
        if tuple(b.shape) not in ((*self.output_size, self.out_channels), (self.n_positions, self.out_channels)):
            raise DataError(
                f"Keras locally connected bias: shape {tuple(b.shape)}; expected "
                f"{(*self.output_size, self.out_channels)} or {(self.n_positions, self.out_channels)}"
            )
        self.weight.copy_(k)
        self.bias.copy_(b.reshape(*self.output_size, self.out_channels).movedim(-1, 0))

