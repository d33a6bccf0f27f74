"""DistributedDataParallel under ``torchrun``: gloo on CPU, nccl on CUDA.

``torchrun --nproc_per_node 2 -m gansim train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` reads them. Without them
everything runs as a single process (world size 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

__all__ = ["DistributedContext", "init_distributed"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process prints, writes stats, checkpoints and model files."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast_object(self, obj: object) -> object:
        """Send a picklable *internal* object from rank 0 to every rank (never user data from disk)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average a tensor over ranks in place (statistics only)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor

    def shutdown(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_name: str = "auto") -> DistributedContext:
    """Initialise the process group when launched by torchrun; a no-op context otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device_name).lower() in ("auto", "cuda") or str(device_name).lower().startswith("cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)


def run_as_job(device_name: str, log: Callable[..., Any], body: Callable[[DistributedContext, Callable[..., Any]], T]) -> T:
    """Run ``body(dist, log)`` as one process of the job (torchrun) or alone, and shut the group down after.

    Processes other than the main one get a silent ``log``, so messages appear once.
    """
    context = init_distributed(device_name)
    try:
        return body(context, log if context.is_main else (lambda *a, **k: None))
    finally:
        context.shutdown()
