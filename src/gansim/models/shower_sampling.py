"""Reproducible latents and incident energies for shower generators, whatever the batch size.

Latent vectors and energies are drawn per block of :data:`SAMPLE_BLOCK_ROWS` showers from a
generator seeded by ``(seed, block)``: one seed gives the same showers whatever the batch size,
and showers ``first .. first + n - 1`` of a seed's sequence can be made on their own (a file
written in pieces, or shards under torchrun).

Only the rows asked for are kept: a block's noise is drawn in pieces of at most
:data:`DRAW_VALUES` values, so memory is the showers asked for plus one piece, however wide the
noise (the modern model takes two columns per cell: 81,000 for CaloChallenge dataset 3). The
pieces continue one random stream, so they give exactly the values of one draw of the block.
"""

from __future__ import annotations

import numpy as np
import torch

from gansim.errors import ConfigError

__all__ = [
    "SAMPLE_BLOCK_ROWS", "SHOWER_CHUNK_VALUES", "SPECTRA", "seeded_latents_and_energies", "check_sample_request", "closer_spectrum", "shower_chunk_rows",
]

SAMPLE_BLOCK_ROWS = 1024
#: noise values drawn at a time (16 MB of float32): bounds the rows of a block drawn only to be skipped
DRAW_VALUES = 1 << 22
#: values (latent noise + cells, float32: 256 MB) of one chunk of showers made in one go (see :func:`shower_chunk_rows`)
SHOWER_CHUNK_VALUES = 1 << 26


#: incident-energy spectra a shower model samples when no energies are given
SPECTRA = ("uniform", "log-uniform")


def _piece_rows(latent_dim: int) -> int:
    """Rows of noise drawn at once: a multiple of 16, because torch's CPU normal sampler turns uniforms
    into normals 16 at a time, so pieces of whole groups continue the stream exactly as one draw would."""
    return min(SAMPLE_BLOCK_ROWS, max(16, DRAW_VALUES // max(1, latent_dim) // 16 * 16))


def _block(seed: int, block: int, energy_range_gev: tuple[float, float], spectrum: str, start: int, z: torch.Tensor) -> torch.Tensor:
    """Block ``block`` of ``seed``: its latent rows ``start .. start + len(z) - 1`` written into ``z``
    (``(rows, latent_dim)``); returns all the block's energies (GeV).

    The energies follow the whole block's noise in the stream, so every noise row is drawn; those
    outside the rows asked for are dropped piece by piece and never held together.
    """
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
    g = torch.Generator().manual_seed(int(state))
    latent_dim, stop = z.shape[1], start + z.shape[0]
    step = _piece_rows(latent_dim)
    for a in range(0, SAMPLE_BLOCK_ROWS, step):
        b = min(SAMPLE_BLOCK_ROWS, a + step)
        piece = torch.randn(b - a, latent_dim, generator=g)
        keep_from, keep_to = max(a, start), min(b, stop)
        if keep_from < keep_to:
            z[keep_from - start : keep_to - start] = piece[keep_from - a : keep_to - a]
    lo, hi = energy_range_gev
    u = torch.rand(SAMPLE_BLOCK_ROWS, generator=g, dtype=torch.float64)
    return lo * (hi / lo) ** u if spectrum == "log-uniform" else lo + (hi - lo) * u


def shower_chunk_rows(n_cells: int, noise_dim: int, budget: int | None = None) -> int:
    """Showers to make (and write) in one go so that their latent noise and cells hold at most ``budget``
    values (default :data:`SHOWER_CHUNK_VALUES`), or one shower when a single one holds more.

    A chunk's latents are drawn all at once (``noise_dim`` per shower: CaloGAN 1024, the modern
    model its latent plus two per cell) and its cells come out together, so both count. Above one
    :data:`SAMPLE_BLOCK_ROWS` block the rows are whole blocks (each block's stream is drawn once);
    below, a power of two, so a chunk never straddles two blocks.
    """
    rows = max(1, (SHOWER_CHUNK_VALUES if budget is None else budget) // max(1, n_cells + noise_dim))
    if rows >= SAMPLE_BLOCK_ROWS:
        return rows - rows % SAMPLE_BLOCK_ROWS
    return 1 << (rows.bit_length() - 1)


def closer_spectrum(energy: np.ndarray, energy_range: tuple[float, float]) -> str:
    """``uniform`` or ``log-uniform`` on ``energy_range``: whichever CDF is nearer (KS distance) to the energies'."""
    e = np.sort(np.asarray(energy, dtype=np.float64))
    lo, hi = energy_range
    empirical = np.arange(1, e.size + 1) / e.size
    distance = {
        "uniform": np.max(np.abs(empirical - np.clip((e - lo) / (hi - lo), 0, 1))),
        "log-uniform": np.max(np.abs(empirical - np.clip(np.log(e / lo) / np.log(hi / lo), 0, 1))),
    }
    return min(distance, key=distance.get)


def check_sample_request(n: int, batch_size: int, first: int) -> tuple[int, int]:
    """``(n, first)`` as ints, or a ConfigError naming the bad argument."""
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ConfigError(f"n {n!r}: expected a whole number >= 0")
    if batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r}: expected >= 1")
    if int(first) != first or first < 0:
        raise ConfigError(f"first {first!r}: expected a whole number >= 0")
    return int(n), int(first)


def seeded_latents_and_energies(
    seed: int, first: int, n: int, latent_dim: int, energy_range_gev: tuple[float, float], energy_mev: float | np.ndarray | None = None, spectrum: str = "uniform"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``(n, latent_dim)`` float32 and energies ``(n,)`` float64 GeV for showers ``first .. first+n-1`` of ``seed``.

    Energies follow ``spectrum`` (:data:`SPECTRA`) on ``energy_range_gev`` unless ``energy_mev``
    gives one value or ``n`` values (MeV, finite, > 0).
    """
    if spectrum not in SPECTRA:
        raise ConfigError(f"energy spectrum {spectrum!r}: expected one of {', '.join(SPECTRA)}")
    # filled block by block: the showers asked for, never whole blocks beside them
    z_all = torch.empty(n, latent_dim)
    e_gev = torch.empty(n, dtype=torch.float64)
    for block in range(first // SAMPLE_BLOCK_ROWS, -(-(first + n) // SAMPLE_BLOCK_ROWS)):
        block_start = block * SAMPLE_BLOCK_ROWS
        start, stop = max(first, block_start), min(first + n, block_start + SAMPLE_BLOCK_ROWS)
        e = _block(seed, block, energy_range_gev, spectrum, start - block_start, z_all[start - first : stop - first])
        e_gev[start - first : stop - first] = e[start - block_start : stop - block_start]
    if energy_mev is not None:
        given = np.broadcast_to(np.asarray(energy_mev, dtype=np.float64), (n,)) if np.ndim(energy_mev) == 0 else np.asarray(energy_mev, dtype=np.float64)
        if given.shape != (n,) or not np.all(np.isfinite(given)) or np.any(given <= 0):
            raise ConfigError(f"energy_mev: expected one value or {n} finite values > 0 (MeV)")
        e_gev = torch.from_numpy(given * 1e-3)
    return z_all, e_gev
