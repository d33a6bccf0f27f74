"""What a GAN family gives the generic loop: its networks and how each named phase computes a loss.

The loop, not the family, owns optimisers, ``requires_grad_`` toggling,
detaching, schedulers, EMA, AMP, checkpoints and DDP (stylegan2-ada's
``training_loop.py`` + ``loss.py`` split). A family never writes a loop.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gansim.data.stream import BatchSource  # the stream interface lives with the data; re-exported for families

__all__ = ["Phase", "Objective", "BatchSource"]


@dataclass(frozen=True)
class Phase:
    """One optimiser step kind of an iteration.

    Attributes:
        name: shown in stats (``D``, ``G``, ...); losses are reported as ``loss/<name>``.
        network: key of the network this phase trains (its optimiser steps).
        repeats: steps of this phase per iteration (the D:G update ratio).
        needs_batch: fetch a fresh real batch for the phase; when False the step
            gets the last batch fetched (e.g. G reuses the conditions D just saw).
        fresh_batch_each_repeat: with ``needs_batch``, a new batch for every repeat (True) or
            one batch for all of the phase's repeats of the iteration (PACGAN's critic).
    """

    name: str
    network: str
    repeats: int = 1
    needs_batch: bool = True
    fresh_batch_each_repeat: bool = True


class Objective(abc.ABC):
    """A family's training maths.

    Subclasses set :attr:`networks` (trainable modules by name), :attr:`phases`
    and :attr:`ema_network` (the network averaged for sampling, or None), and
    implement :meth:`loss`. Randomness must come from :attr:`generator`, which
    the loop seeds, saves and restores, so a resumed run continues the same curve.
    """

    networks: dict[str, nn.Module]
    phases: list[Phase]
    ema_network: str | None = None
    generator: torch.Generator
    #: DistributedDataParallel must look for parameters a step does not use (progressive networks use
    #: only the layers of the current level)
    ddp_find_unused_parameters: bool = False

    @abc.abstractmethod
    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one step of ``phase`` and extra scalars to report.

        ``nets`` holds every network: the one being trained (possibly wrapped in
        DistributedDataParallel, with ``requires_grad`` on) and the others frozen.
        Returned scalars are detached by the loop; do not call ``.item()`` here
        (it would synchronise the device every step).
        """

    def after_step(self, phase: str) -> None:  # noqa: B027 - optional hook
        """Called after each optimiser step of ``phase`` (e.g. WGAN weight clamping)."""

    def before_iteration(self, loop: Any) -> None:  # noqa: B027 - optional hook
        """Called by the loop (every process) before each iteration, with the loop itself.

        A schedule that is a function of ``loop.rows_seen`` (a progressive level, its fade-in)
        is set here; :attr:`phases` and the data's ``batch_size`` are read after this call.
        """

    def after_iteration(self, loop: Any) -> None:  # noqa: B027 - optional hook
        """Called by the loop (every process) after each iteration and its EMA update (e.g. validation)."""

    def state_dict(self) -> dict[str, Any]:
        """The objective's own state beyond its random generator (plain data and tensors), saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` gave."""
