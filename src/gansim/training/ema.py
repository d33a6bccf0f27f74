"""Exponential moving average of a network's weights (the network used for sampling)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * current`` after each update.

    The shadow is a frozen deep copy of the module (same class, same buffers),
    so it can be saved and sampled from like the module itself. Before
    ``start_rows`` have been seen the shadow simply copies the weights, so early
    random weights do not linger in the average.
    """

    def __init__(self, module: nn.Module, decay: float, start_rows: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.start_rows = start_rows
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, rows_seen: int) -> None:
        decay = self.decay if rows_seen >= self.start_rows else 0.0
        for s, p in zip(self.shadow.parameters(), module.parameters()):
            s.lerp_(p.detach(), 1.0 - decay)
        for s, b in zip(self.shadow.buffers(), module.buffers()):
            s.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
