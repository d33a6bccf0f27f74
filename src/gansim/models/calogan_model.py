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

from gansim.io.calo import ShowerData
from gansim.io.calo_geometry import CALOGAN
from gansim.models.calogan import GEV_PER_MEV, CaloGANSettings
from gansim.models.calogan_nets import CaloGANGenerator
from gansim.models.model_file import architecture_settings, load_network_tensors, network_tensors, save_model_dir
from gansim.models.registry import register_family
from gansim.models.shower_sampling import check_sample_request, seeded_latents_and_energies

__all__ = ["CaloGANModel", "save_calogan"]



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
    return save_model_dir(path, manifest, network_tensors("generator", generator), force=force)


@register_family("calogan")
class CaloGANModel:
    """A trained CaloGAN generator, ready to make showers.

    Attributes:
        settings: the model's settings (latent size, attention...).
        manifest: the model file's manifest.
        device: where it runs.
    """

    #: the layout its showers have
    geometry = CALOGAN

    def __init__(self, generator: CaloGANGenerator, settings: CaloGANSettings, manifest: dict[str, Any], device: torch.device) -> None:
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.settings, self.manifest, self.device = settings, manifest, device

    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> CaloGANModel:
        settings = architecture_settings(manifest, CaloGANSettings, source, "CaloGAN")
        generator = CaloGANGenerator(latent_dim=settings.latent_dim, attention=settings.attention)
        load_network_tensors(generator, tensors, "generator", source)
        return cls(generator, settings, manifest, device)

    @property
    def noise_dim(self) -> int:
        """Latent columns drawn per shower (what a chunk of showers holds beside its cells)."""
        return self.settings.latent_dim

    @torch.inference_mode()
    def sample(self, n: int, energy_mev: float | np.ndarray | None = None, *, seed: int = 0, batch_size: int = 1024, first: int = 0) -> ShowerData:
        """``n`` showers in MeV; energies (MeV) given as one value or ``n`` values, else uniform in the training range.

        One seed gives the same showers whatever ``batch_size``; ``first`` picks showers
        ``first .. first + n - 1`` of the seed's sequence (so a file can be written in pieces).
        """
        n, first = check_sample_request(n, batch_size, first)
        z_all, e_gev = seeded_latents_and_energies(seed, first, n, self.settings.latent_dim, self.settings.energy_range_gev, energy_mev)
        layers: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            images = self.generator(z_all[start:stop].to(self.device), e_gev[start:stop].to(self.device, torch.float32))
            for i, image in enumerate(images):
                layers[i].append((image.double() / GEV_PER_MEV).float().cpu().numpy())
        cells = [np.concatenate(parts) if parts else np.zeros((0, *layer.shape), np.float32) for parts, layer in zip(layers, CALOGAN.layers)]
        return ShowerData("calogan", CALOGAN, (e_gev.numpy() / GEV_PER_MEV), cells, None)
