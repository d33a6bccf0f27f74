"""Feature-wise linear modulation (FiLM, Perez et al. 2018): a condition scales and shifts hidden units.

``FiLMMLP`` is a fully connected network whose every hidden layer is modulated by the
condition: ``h <- act(W h + b) * (1 + gamma_i(c)) + beta_i(c)``. The modulation starts as the
identity (its projection is zero-initialised), so a fresh network behaves like a plain MLP and
learns how much the condition should change each unit.
"""

from __future__ import annotations

import torch
from torch import nn

from gansim.errors import ConfigError
from gansim.nn.mlp import activation_layer

__all__ = ["FiLMMLP"]


class FiLMMLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, each modulated by the condition.

    Args:
        in_features: input width (e.g. the latent size).
        cond_features: condition width (e.g. 1 for a scaled log energy).
        width: hidden width.
        depth: number of hidden layers (>= 1).
        activation: a name of :data:`gansim.nn.mlp.ACTIVATIONS`.

    Shapes: ``x (n, in_features), cond (n, cond_features) -> (n, width)`` (the last hidden
    layer, after its modulation: heads are added by the caller).
    """

    def __init__(self, in_features: int, cond_features: int, width: int, depth: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        if min(in_features, cond_features, width, depth) < 1:
            raise ConfigError(f"FiLMMLP needs in_features, cond_features, width, depth >= 1; got {in_features}, {cond_features}, {width}, {depth}")
        self.width, self.depth = width, depth
        self.layers = nn.ModuleList(nn.Linear(in_features if i == 0 else width, width) for i in range(depth))
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(layer.bias)
        self.act = activation_layer(activation)
        self.film = nn.Linear(cond_features, 2 * width * depth)
        nn.init.zeros_(self.film.weight)  # identity modulation at the start
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma_beta = self.film(cond).view(-1, self.depth, 2, self.width)
        h = x
        for i, layer in enumerate(self.layers):
            h = self.act(layer(h)) * (1.0 + gamma_beta[:, i, 0]) + gamma_beta[:, i, 1]
        return h
