"""Exponential moving average of a network's weights (the network used for sampling)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``shadow = beta * shadow + (1 - beta) * current`` after each update.

    The averaging window is a half-life in rows seen, as in stylegan2-ada:
    ``beta = 0.5 ** (rows_per_update / halflife)`` with
    ``halflife = min(halflife_rows, rampup * rows_seen)``, so early random
    weights do not linger in the average of a short run, and the window does
    not depend on the batch size. The shadow is a frozen deep copy of the
    module, saved and sampled from like the module itself.
    """

    def __init__(self, module: nn.Module, halflife_rows: int, rampup: float | None = 0.05) -> None:
        if halflife_rows <= 0:
            raise ValueError(f"EMA half-life must be > 0 rows, got {halflife_rows}")
        self.halflife_rows = halflife_rows
        self.rampup = rampup
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    def beta(self, rows_seen: int, rows_per_update: int) -> float:
        halflife = float(self.halflife_rows)
        if self.rampup is not None:
            halflife = min(halflife, self.rampup * rows_seen)
        return 0.5 ** (rows_per_update / max(halflife, 1e-8))

    @torch.no_grad()
    def update(self, module: nn.Module, rows_seen: int, rows_per_update: int) -> None:
        decay = self.beta(rows_seen, rows_per_update)
        for s, p in zip(self.shadow.parameters(), module.parameters()):
            s.lerp_(p.detach(), 1.0 - decay)
        for s, b in zip(self.shadow.buffers(), module.buffers()):
            s.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
