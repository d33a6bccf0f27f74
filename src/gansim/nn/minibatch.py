"""Minibatch discrimination (Salimans et al. 2016): features that let D see a batch's diversity."""

from __future__ import annotations

import torch
from torch import nn

from gansim.nn.keras_compat import glorot_uniform_

__all__ = ["MinibatchDiscrimination"]


class MinibatchDiscrimination(nn.Module):
    """``o_b(x_i) = sum_j exp(-||M_ib - M_jb||_1)`` over the batch (j = i included), b = 1..n_kernels.

    ``M = x T`` reshaped to (batch, n_kernels, kernel_dim). CaloGAN then applies ``tanh``
    (``activation="tanh"``) and uses n_kernels = kernel_dim = 10.

    Args:
        in_features: width of the features x (batch, in_features).
        n_kernels, kernel_dim: the tensor T is (in_features, n_kernels * kernel_dim).
        activation: ``"tanh"`` or ``None``.

    Shapes: (B, in_features) -> (B, n_kernels). Memory is O(B^2 n_kernels kernel_dim).
    """

    def __init__(self, in_features: int, n_kernels: int = 10, kernel_dim: int = 10, activation: str | None = "tanh") -> None:
        super().__init__()
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim
        self.weight = nn.Parameter(torch.empty(in_features, n_kernels * kernel_dim))
        glorot_uniform_(self.weight, fan_in=in_features, fan_out=n_kernels * kernel_dim)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.weight).view(-1, self.n_kernels, self.kernel_dim)
        distance = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=-1)  # (B, B, K): L1 over kernel_dim
        out = torch.exp(-distance).sum(dim=1)
        return torch.tanh(out) if self.activation == "tanh" else out
