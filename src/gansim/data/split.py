"""The held-out split: a row is held out when a seeded hash of its index falls below the fraction.

Because it depends only on the row's index in the file and the seed, the
split is the same whether the file is read at once or in chunks of any size,
by one process or many, and the evaluation can find the held-out rows again
from the seed recorded in the model manifest.
"""

from __future__ import annotations

import numpy as np

__all__ = ["heldout_mask", "read_heldout"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele et al. 2014): a bijective, well-mixed 64-bit hash."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def heldout_mask(start: int, n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (n,) of held-out rows among rows ``start .. start + n - 1`` of a file."""
    if fraction <= 0.0:
        return np.zeros(n, dtype=bool)
    index = np.arange(start, start + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _splitmix64(index ^ _splitmix64(np.full(1, seed, dtype=np.uint64)))
    # top 53 bits -> uniform double in [0, 1)
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return u < fraction


def read_heldout(path: str, columns: list[str], fraction: float, seed: int, *, max_rows: int | None = None, chunk_rows: int = 1_000_000, **reader_options: object) -> dict[str, np.ndarray]:
    """The held-out rows of a phase-space file (the split recorded in a model manifest)."""
    from gansim.io.phsp import open_reader

    parts: list[dict[str, np.ndarray]] = []
    start = 0
    with open_reader(path, **reader_options) as reader:
        for chunk in reader.iter_chunks(chunk_rows, columns):
            n = len(next(iter(chunk.values())))
            mask = heldout_mask(start, n, fraction, seed)
            parts.append({k: v[mask] for k, v in chunk.items()})
            start += n
            if max_rows is not None and len(parts) and sum(len(next(iter(p.values()))) for p in parts) >= max_rows:
                break
    out = {c: np.concatenate([p[c] for p in parts]) if parts else np.zeros(0, np.float32) for c in columns}
    if max_rows is not None:
        out = {k: v[:max_rows] for k, v in out.items()}
    return out
