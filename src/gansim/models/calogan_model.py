"""A trained faithful CaloGAN as a model file, and sampling showers from it.

The model directory holds the generator's weights (safetensors) and a JSON manifest (family
``calogan``, the settings, the layout, units, training facts). Loading reads only those two
files; nothing is unpickled. Showers come out in the file units of the layout: MeV cells and
an incident energy in MeV (``gansim.io.calo.ShowerData``), ready for
:func:`gansim.io.calo.write_calogan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, ModelFileError
from gansim.io.calo import ShowerData
from gansim.io.calo_geometry import CALOGAN
from gansim.models.calogan import GEV_PER_MEV, CaloGANSettings
from gansim.models.calogan_nets import CaloGANGenerator
from gansim.models.model_file import save_model_dir
from gansim.models.registry import register_family

__all__ = ["CaloGANModel", "save_calogan", "SAMPLE_BLOCK_ROWS"]

#: Latent vectors and energies are drawn per block of this many showers from a generator seeded by
#: (seed, block), so a seed gives the same showers whatever the batch size.
SAMPLE_BLOCK_ROWS = 1024


def save_calogan(path: str | Path, generator: CaloGANGenerator, settings: CaloGANSettings, *, extra: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write the generator (weights and BatchNorm statistics) and its manifest as a model directory."""
    manifest: dict[str, Any] = {
        "family": "calogan",
        "layout": "calogan",
        "architecture": {"generator": "CaloGAN (Paganini et al. 2018), faithful port", **settings.model_dump(mode="json")},
        "units": {"cells": "MeV", "energy": "MeV (kinetic energy of the primary)"},
        "layers": [{"name": layer.name, "shape": list(layer.shape), "axes": list(layer.axis_names)} for layer in CALOGAN.layers],
    }
    manifest.update(extra or {})
    tensors = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    return save_model_dir(path, manifest, tensors, force=force)


@register_family("calogan")
class CaloGANModel:
    """A trained CaloGAN generator, ready to make showers.

    Attributes:
        settings: the model's settings (latent size, attention...).
        manifest: the model file's manifest.
        device: where it runs.
    """

    def __init__(self, generator: CaloGANGenerator, settings: CaloGANSettings, manifest: dict[str, Any], device: torch.device) -> None:
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.settings, self.manifest, self.device = settings, manifest, device

    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> CaloGANModel:
        try:
            arch = dict(manifest["architecture"])
        except KeyError as err:
            raise ModelFileError(f"{source}: manifest lacks key {err.args[0]!r}") from err
        arch.pop("generator", None)
        try:
            settings = CaloGANSettings.model_validate(arch)
        except Exception as err:
            raise ModelFileError(f"{source}: manifest 'architecture' is not a CaloGAN's ({err})") from err
        generator = CaloGANGenerator(latent_dim=settings.latent_dim, attention=settings.attention)
        state = {k[len("generator.") :]: v for k, v in tensors.items() if k.startswith("generator.")}
        try:
            generator.load_state_dict(state)
        except RuntimeError as err:
            raise ModelFileError(f"{source}: generator weights do not match the manifest's architecture ({err})") from err
        return cls(generator, settings, manifest, device)

    def _block(self, seed: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (SAMPLE_BLOCK_ROWS, latent) and uniform energies in the training range (GeV) of one block."""
        state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
        g = torch.Generator().manual_seed(int(state))
        z = torch.randn(SAMPLE_BLOCK_ROWS, self.settings.latent_dim, generator=g)
        lo, hi = self.settings.energy_range_gev
        return z, lo + (hi - lo) * torch.rand(SAMPLE_BLOCK_ROWS, generator=g, dtype=torch.float64)

    @torch.inference_mode()
    def sample(self, n: int, energy_mev: float | np.ndarray | None = None, *, seed: int = 0, batch_size: int = 1024, first: int = 0) -> ShowerData:
        """``n`` showers in MeV; energies (MeV) given as one value or ``n`` values, else uniform in the training range.

        One seed gives the same showers whatever ``batch_size``; ``first`` picks showers
        ``first .. first + n - 1`` of the seed's sequence (so a file can be written in pieces).
        """
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ConfigError(f"n {n!r}: expected a whole number >= 0")
        if batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r}: expected >= 1")
        n, first = int(n), int(first)
        if first < 0:
            raise ConfigError(f"first {first!r}: expected >= 0")
        z_parts, e_parts = [], []
        first_block = first // SAMPLE_BLOCK_ROWS
        for block in range(first_block, -(-(first + n) // SAMPLE_BLOCK_ROWS)):
            z, e = self._block(seed, block)
            z_parts.append(z)
            e_parts.append(e)
        offset = first - first_block * SAMPLE_BLOCK_ROWS
        z_all = torch.cat(z_parts)[offset : offset + n] if z_parts else torch.zeros(0, self.settings.latent_dim)
        e_gev = torch.cat(e_parts)[offset : offset + n] if e_parts else torch.zeros(0, dtype=torch.float64)
        if energy_mev is not None:
            given = np.broadcast_to(np.asarray(energy_mev, dtype=np.float64), (n,)) if np.ndim(energy_mev) == 0 else np.asarray(energy_mev, dtype=np.float64)
            if given.shape != (n,) or not np.all(np.isfinite(given)) or np.any(given <= 0):
                raise ConfigError(f"energy_mev: expected one value or {n} finite values > 0 (MeV)")
            e_gev = torch.from_numpy(given * GEV_PER_MEV)
        layers: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            images = self.generator(z_all[start:stop].to(self.device), e_gev[start:stop].to(self.device, torch.float32))
            for i, image in enumerate(images):
                layers[i].append((image.double() / GEV_PER_MEV).float().cpu().numpy())
        cells = [np.concatenate(parts) if parts else np.zeros((0, *layer.shape), np.float32) for parts, layer in zip(layers, CALOGAN.layers)]
        return ShowerData("calogan", CALOGAN, (e_gev.numpy() / GEV_PER_MEV), cells, None)
