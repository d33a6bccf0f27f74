"""Fully connected networks: the generator and discriminator of tabular (phase-space) GANs."""

from __future__ import annotations

import torch
from torch import nn

from gansim.errors import ConfigError

__all__ = ["ACTIVATIONS", "activation_layer", "MLP"]

#: Activation names accepted in configs. ``leaky_relu`` uses ``leaky_slope`` (gaga-phsp: 0.01).
ACTIVATIONS = ("relu", "leaky_relu", "silu", "gelu", "tanh", "elu")


def activation_layer(name: str, leaky_slope: float = 0.2) -> nn.Module:
    """A fresh activation module by name."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(leaky_slope)
    if name == "silu":
        return nn.SiLU()
    if name == "gelu":
        return nn.GELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "elu":
        return nn.ELU()
    raise ConfigError(f"activation {name!r} is not known; expected one of {', '.join(ACTIVATIONS)}")


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units: Linear(in, w), then depth × [act, Linear(w, w)], act, Linear(w, out).

    This is gaga-phsp's v3 layout (``g_layers``/``d_layers`` count the *inner*
    w×w layers), so a 3×400 gaga model maps onto ``MLP(in, out, 400, 3)``.

    Args:
        in_features: input width (latent + condition for G; data + condition for D).
        out_features: output width.
        width: hidden width.
        depth: number of inner ``width × width`` layers (>= 0).
        activation: one of :data:`ACTIVATIONS`.
        leaky_slope: negative slope of ``leaky_relu``.
        spectral_norm: wrap every Linear in spectral normalisation (Miyato et al. 2018), for discriminators.

    Shapes: ``(n, in_features) -> (n, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int,
        depth: int,
        activation: str = "leaky_relu",
        leaky_slope: float = 0.2,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or width < 1 or depth < 0:
            raise ConfigError(
                f"MLP needs in_features, out_features, width >= 1 and depth >= 0; got {in_features}, {out_features}, {width}, {depth}"
            )
        self._activation, self._leaky_slope = activation, leaky_slope
        self._spectral_norm = spectral_norm
        layers: list[nn.Module] = [self._linear(in_features, width)]
        for _ in range(depth):
            layers += [activation_layer(activation, leaky_slope), self._linear(width, width)]
        layers += [activation_layer(activation, leaky_slope), self._linear(width, out_features)]
        self.net = nn.Sequential(*layers)

    def _linear(self, n_in: int, n_out: int) -> nn.Module:
        """A Linear with He (Kaiming) initialisation for the activation, zero bias, optional spectral norm."""
        layer = nn.Linear(n_in, n_out)
        if self._activation == "leaky_relu":
            nn.init.kaiming_normal_(layer.weight, a=self._leaky_slope, nonlinearity="leaky_relu")
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
        # Spectral norm is applied after the initialisation so it normalises the initialised weight.
        return nn.utils.parametrizations.spectral_norm(layer) if self._spectral_norm else layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
