"""Reproducible latents and incident energies for shower generators, whatever the batch size.

Latent vectors and energies are drawn per block of :data:`SAMPLE_BLOCK_ROWS` showers from a
generator seeded by ``(seed, block)``: one seed gives the same showers whatever the batch size,
and showers ``first .. first + n - 1`` of a seed's sequence can be made on their own (a file
written in pieces, or shards under torchrun).
"""

from __future__ import annotations

import numpy as np
import torch

from gansim.errors import ConfigError

__all__ = ["SAMPLE_BLOCK_ROWS", "SPECTRA", "seeded_latents_and_energies", "check_sample_request", "closer_spectrum"]

SAMPLE_BLOCK_ROWS = 1024


#: incident-energy spectra a shower model samples when no energies are given
SPECTRA = ("uniform", "log-uniform")


def _block(seed: int, block: int, latent_dim: int, energy_range_gev: tuple[float, float], spectrum: str) -> tuple[torch.Tensor, torch.Tensor]:
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
    g = torch.Generator().manual_seed(int(state))
    z = torch.randn(SAMPLE_BLOCK_ROWS, latent_dim, generator=g)
    lo, hi = energy_range_gev
    u = torch.rand(SAMPLE_BLOCK_ROWS, generator=g, dtype=torch.float64)
    return z, (lo * (hi / lo) ** u if spectrum == "log-uniform" else lo + (hi - lo) * u)


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
    z_parts, e_parts = [], []
    first_block = first // SAMPLE_BLOCK_ROWS
    for block in range(first_block, -(-(first + n) // SAMPLE_BLOCK_ROWS)):
        z, e = _block(seed, block, latent_dim, energy_range_gev, spectrum)
        z_parts.append(z)
        e_parts.append(e)
    offset = first - first_block * SAMPLE_BLOCK_ROWS
    z_all = torch.cat(z_parts)[offset : offset + n] if z_parts else torch.zeros(0, latent_dim)
    e_gev = torch.cat(e_parts)[offset : offset + n] if e_parts else torch.zeros(0, dtype=torch.float64)
    if energy_mev is not None:
        given = np.broadcast_to(np.asarray(energy_mev, dtype=np.float64), (n,)) if np.ndim(energy_mev) == 0 else np.asarray(energy_mev, dtype=np.float64)
        if given.shape != (n,) or not np.all(np.isfinite(given)) or np.any(given <= 0):
            raise ConfigError(f"energy_mev: expected one value or {n} finite values > 0 (MeV)")
        e_gev = torch.from_numpy(given * 1e-3)
    return z_all, e_gev
