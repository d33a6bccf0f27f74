"""A trained modern shower GAN as a model file, and sampling showers from it.

The model directory holds the generator's weights (safetensors) and a JSON manifest: family
``showergan``, the settings, the geometry as data (so CaloChallenge dataset-1 binnings travel
with the model), the cell threshold and the energy range. Loading reads only those two files.
Showers come out in the layout's file units (MeV), as :class:`gansim.io.calo.ShowerData`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import warnings

import numpy as np
import torch

from gansim.errors import ConfigError, ModelFileError
from gansim.io.calo import ShowerData
from gansim.io.calo_geometry import CartesianGeometry, CylindricalGeometry, cell_table, geometry_from_spec, geometry_spec
from gansim.models.model_file import architecture_settings, load_network_tensors, network_tensors, save_model_dir
from gansim.models.registry import register_family
from gansim.models.shower_sampling import check_sample_request, seeded_latents_and_energies
from gansim.models.showergan import ShowerGANSettings
from gansim.models.showergan_nets import ShowerGenerator

__all__ = ["ShowerGANModel", "save_showergan", "build_generator", "flatten_showers", "unflatten_showers"]

GEV_PER_MEV = 1e-3


def flatten_showers(data: ShowerData) -> np.ndarray:
    """(N, C) MeV cells in :func:`~gansim.io.calo_geometry.cell_table` order (CaloGAN: layers' images flattened and joined)."""
    return np.concatenate([np.asarray(a).reshape(len(data), -1) for a in data.layers], axis=1)


def unflatten_showers(cells: np.ndarray, geometry: CartesianGeometry | CylindricalGeometry) -> list[np.ndarray]:
    """The inverse of :func:`flatten_showers`: ShowerData ``layers`` for ``geometry``."""
    if isinstance(geometry, CylindricalGeometry):
        return [cells]
    out, start = [], 0
    for layer in geometry.layers:
        out.append(cells[:, start : start + layer.n_cells].reshape(-1, *layer.shape))
        start += layer.n_cells
    return out


def build_generator(settings: ShowerGANSettings, geometry: CartesianGeometry | CylindricalGeometry, energy_range_gev: tuple[float, float], threshold_mev: float) -> ShowerGenerator:
    """A fresh generator for ``geometry`` (weights as initialised)."""
    return ShowerGenerator(cell_table(geometry), settings.latent_dim, settings.g_width, settings.g_depth, energy_range_gev, threshold_mev * GEV_PER_MEV,
                           settings.occupancy, settings.occupancy_temperature, settings.occupancy_layer_offsets)


def save_showergan(
    path: str | Path,
    generator: ShowerGenerator,
    settings: ShowerGANSettings,
    geometry: CartesianGeometry | CylindricalGeometry,
    *,
    spectrum: str = "uniform",
    extra: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write the generator and its manifest as a model directory; ``spectrum`` is the energy spectrum sampled when none is given."""
    manifest: dict[str, Any] = {
        "family": "showergan",
        "layout": geometry.name,
        "geometry": geometry_spec(geometry),
        "architecture": {"generator": "gansim modern shower GAN (FiLM on log E; response, layer-fraction and shape heads)", **settings.model_dump(mode="json")},
        "energy_range_gev": list(generator.energy_range_gev),
        "cell_threshold_mev": generator.threshold_gev / GEV_PER_MEV,
        "units": {"cells": "MeV", "energy": "MeV (incident energy of the primary)"},
        "energy_spectrum": spectrum,
    }
    manifest.update(extra or {})
    return save_model_dir(path, manifest, network_tensors("generator", generator), force=force)


@register_family("showergan")
class ShowerGANModel:
    """A trained modern shower generator.

    Attributes:
        generator: the network (eval mode, no gradients).
        settings: its settings.
        geometry: the layout it makes showers for.
        manifest: the model file's manifest.
    """

    def __init__(self, generator: ShowerGenerator, settings: ShowerGANSettings, geometry: CartesianGeometry | CylindricalGeometry, manifest: dict[str, Any], device: torch.device) -> None:
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.settings, self.geometry, self.manifest, self.device = settings, geometry, manifest, device

    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> ShowerGANModel:
        settings = architecture_settings(manifest, ShowerGANSettings, source, "shower GAN")
        architecture = manifest.get("architecture")
        if isinstance(architecture, dict) and "occupancy" not in architecture:
            settings = settings.model_copy(update={"occupancy": "threshold"})  # files from before stochastic occupancy
        elif isinstance(architecture, dict) and "occupancy_layer_offsets" not in architecture:
            settings = settings.model_copy(update={"occupancy_layer_offsets": False})  # files from before the per-layer offsets
        try:
            geometry = geometry_from_spec(manifest["geometry"], source=f"{source}: manifest 'geometry'")
            energy_range = tuple(float(v) for v in manifest["energy_range_gev"])
            threshold_mev = float(manifest["cell_threshold_mev"])
        except KeyError as err:
            raise ModelFileError(f"{source}: manifest lacks key {err.args[0]!r}") from err
        except (ConfigError, TypeError, ValueError) as err:
            raise ModelFileError(f"{source}: manifest is not a shower GAN's ({err})") from err
        if len(energy_range) != 2 or not 0 < energy_range[0] < energy_range[1] or not threshold_mev > 0:
            raise ModelFileError(f"{source}: manifest energy_range_gev {energy_range} / cell_threshold_mev {threshold_mev}: expected 0 < lo < hi and a threshold > 0")
        generator = build_generator(settings, geometry, energy_range, threshold_mev)  # type: ignore[arg-type]
        load_network_tensors(generator, tensors, "generator", source)
        return cls(generator, settings, geometry, manifest, device)

    @property
    def noise_dim(self) -> int:
        """Noise columns drawn per shower: the latent and, with stochastic occupancy, two per cell."""
        return self.generator.noise_dim

    @torch.inference_mode()
    def sample(self, n: int, energy_mev: float | np.ndarray | None = None, *, seed: int = 0, batch_size: int = 1024, first: int = 0) -> ShowerData:
        """``n`` showers in MeV; energies (MeV) given as one value or ``n`` values, else uniform in the training range.

        One seed gives the same showers whatever ``batch_size``; ``first`` picks showers
        ``first .. first + n - 1`` of the seed's sequence.
        """
        n, first = check_sample_request(n, batch_size, first)
        spectrum = str(self.manifest.get("energy_spectrum", "uniform"))
        z_all, e_gev = seeded_latents_and_energies(seed, first, n, self.generator.noise_dim, self.generator.energy_range_gev, energy_mev, spectrum)
        lo, hi = self.generator.energy_range_gev
        # the training range is the training showers' min..max: a test shower a hair outside it is no extrapolation
        if energy_mev is not None and n and (float(e_gev.min()) < lo * 0.99 or float(e_gev.max()) > hi * 1.01):
            warnings.warn(
                f"energies {float(e_gev.min()):.4g}-{float(e_gev.max()):.4g} GeV reach outside the model's training range "
                f"(energy_range_gev {lo:.4g}-{hi:.4g} GeV): those showers are extrapolated",
                stacklevel=2,
            )
        parts = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            cells = self.generator(z_all[start:stop].to(self.device), e_gev[start:stop].to(self.device, torch.float32))
            parts.append((cells / GEV_PER_MEV).cpu().numpy())
        flat = np.concatenate(parts) if parts else np.zeros((0, self.geometry.n_cells), np.float32)
        return ShowerData(self.geometry.name, self.geometry, e_gev.numpy() / GEV_PER_MEV, unflatten_showers(flat, self.geometry), None)
