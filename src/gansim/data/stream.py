"""Training batches from a phase-space table, in memory or streamed from disk, resumable exactly.

Both sources yield normalised float32 matrices split into ``(x, c)``: the
generated columns and the condition columns (``c`` is None without
conditions). The order of rows is a function of (seed, epoch) only, so a
checkpoint needs just the position, and every process of a DDP job reads its
own disjoint share.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from gansim.errors import DataError

__all__ = ["BatchSource", "InMemoryBatches", "StreamingBatches"]


class BatchSource(abc.ABC):
    """Endless, resumable stream of training batches already on the training device."""

    #: Real rows in one batch of this process.
    batch_size: int

    @abc.abstractmethod
    def next_batch(self) -> Any:
        """The next batch (tensors on the training device)."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Position in the stream (plain data), enough to continue exactly."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict`."""


def _epoch_rng(seed: int, epoch: int, chunk: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, chunk])


class InMemoryBatches(BatchSource):
    """Batches drawn without replacement from a matrix held in memory (on the GPU when it fits).

    Args:
        matrix: (n, n_x + n_c) float32, already normalised.
        n_x: number of generated columns (the rest are conditions).
        batch_size: rows per batch for this process.
        seed: order seed; epoch ``e`` uses the permutation of ``default_rng([seed, e])``.
        device: where batches are returned.
        rank, world_size: this process's share is ``perm[rank::world_size]``.
        source: the file name, for error messages.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        n_x: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        source: str = "data",
    ) -> None:
        n = matrix.shape[0]
        if n // world_size < batch_size:
            raise DataError(
                f"{source}: {n} training rows give {n // world_size} per process, fewer than batch_size={batch_size}; "
                "lower the batch size or give more data"
            )
        self.batch_size = batch_size
        self.n_x = n_x
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.device = device
        tensor = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        # Keep the table on the GPU when it is small enough: indexing there avoids a host->device copy per batch.
        if device.type == "cuda" and tensor.numel() * 4 < 4 * 1024**3:
            tensor = tensor.to(device)
        self.matrix = tensor
        self.n = n
        self.epoch = 0
        self.cursor = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        perm = _epoch_rng(self.seed, epoch).permutation(self.n)[self.rank :: self.world_size]
        return torch.from_numpy(perm).to(self.matrix.device)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cursor + self.batch_size > len(self._perm):  # drop the incomplete tail, start a new epoch
            self.epoch += 1
            self.cursor = 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        rows = self.matrix.index_select(0, idx).to(self.device, non_blocking=True)
        return rows[:, : self.n_x], (rows[:, self.n_x :] if rows.shape[1] > self.n_x else None)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "memory", "epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._perm = self._permutation(self.epoch)


class StreamingBatches(BatchSource):
    """Batches from a file too large for memory, read chunk by chunk.

    Chunk ``j`` of the file belongs to process ``j % world_size``; inside a chunk
    the rows are shuffled with ``default_rng([seed, epoch, j])``; a batch may
    span two chunks. Held-out rows are skipped by the same hash used at fit
    time. The position (epoch, chunk, offset) is the whole state.

    Args:
        open_chunks: callable returning a fresh iterator over the file's chunks
            as ``(chunk index, normalised float32 matrix)`` with the training-row
            mask already applied, normalising only the chunks ``wanted(j)`` accepts:
            ``(wanted: Callable[[int], bool]) -> Iterator[tuple[int, np.ndarray]]``.
        n_x, batch_size, seed, device, rank, world_size: as in :class:`InMemoryBatches`.
    """

    def __init__(
        self,
        open_chunks: Any,
        n_x: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        source: str = "data",
    ) -> None:
        self.open_chunks = open_chunks
        self.n_x = n_x
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.source = source
        self.epoch, self.chunk, self.offset = 0, 0, 0
        self._handed_out = False
        self._iter = self._batches(0, 0, 0)

    def _local_chunks(self, epoch: int, first_chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(chunk index, shuffled rows) for this process, starting at ``first_chunk``."""
        for j, matrix in self.open_chunks(lambda j: j % self.world_size == self.rank and j >= first_chunk):
            perm = _epoch_rng(self.seed, epoch, j).permutation(len(matrix))
            yield j, matrix[perm]

    def _batches(self, epoch: int, chunk: int, offset: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        while True:
            pending: list[np.ndarray] = []
            have = 0
            start: tuple[int, int] | None = None  # (chunk, offset) where the pending batch began
            yielded = False
            for j, rows in self._local_chunks(epoch, chunk):
                pos = offset if j == chunk else 0
                while pos < len(rows):
                    if start is None:
                        start = (j, pos)
                    take = min(self.batch_size - have, len(rows) - pos)
                    pending.append(rows[pos : pos + take])
                    have += take
                    pos += take
                    if have == self.batch_size:
                        self.epoch, (self.chunk, self.offset) = epoch, start
                        batch = np.concatenate(pending) if len(pending) > 1 else pending[0]
                        pending, have, start = [], 0, None
                        yielded = True
                        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
                        yield tensor[:, : self.n_x], (tensor[:, self.n_x :] if tensor.shape[1] > self.n_x else None)
            if not yielded and chunk == 0 and offset == 0:
                raise DataError(f"{self.source}: fewer training rows per process than batch_size={self.batch_size}")
            epoch, chunk, offset = epoch + 1, 0, 0  # the incomplete tail batch is dropped

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._handed_out = True
        return next(self._iter)

    def state_dict(self) -> dict[str, Any]:
        # Where the last handed-out batch began; on resume that batch is read again and skipped.
        return {"kind": "stream", "epoch": self.epoch, "chunk": self.chunk, "offset": self.offset, "handed_out": self._handed_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.chunk, self.offset = int(state["epoch"]), int(state["chunk"]), int(state["offset"])
        self._iter = self._batches(self.epoch, self.chunk, self.offset)
        self._handed_out = bool(state["handed_out"])
        if self._handed_out:
            next(self._iter)
