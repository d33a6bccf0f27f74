"""The faithful CaloGAN family: its training maths in the one loop, and the batches it eats.

Training follows CaloGAN's ``models/train.py`` (``../shared/reference/calogan.md`` §b):

- every iteration: one D step on a batch of real showers (label 1), one D step on a batch of
  generated showers (label 0) with energies drawn uniformly in 1-100 GeV -- real and fake are
  kept apart "because of minibatch discrimination and batch normalization" -- then **two G
  steps** (label 1 for fakes);
- binary cross-entropy on D's output (a logit here: the same loss, computed stably), and for G
  the energy term ``lambda_E * mean |sum of cells - E|`` with lambda_E = 0.05 (CaloGAN's
  ``total_energy`` output, which only ever trained G);
- Adam with beta_1 = 0.5, learning rates D 2e-5 and G 2e-4, batch 256, latent 1024.

Showers are fed in GeV (CaloGAN's files hold MeV; ``train.py`` divided by 1000), energies in GeV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from gansim.config import FamilyConfig, OptimizerSettings, StrictModel
from gansim.data.stream import BatchSource
from gansim.errors import DataError
from gansim.models.calogan_nets import LATENT_DIM, CaloGANDiscriminator, CaloGANGenerator
from gansim.training.objective import Objective, Phase

__all__ = ["CaloGANSettings", "ShowerDataSettings", "CaloGANConfig", "CaloGANObjective", "ShowerBatches", "GEV_PER_MEV"]

GEV_PER_MEV = 1e-3


class CaloGANSettings(StrictModel):
    """The faithful model's switches (the paper's defaults)."""

    latent_dim: int = Field(LATENT_DIM, gt=0)
    attention: bool = Field(True, description="in-painting attention between consecutive layers")
    minibatch: bool = Field(True, description="minibatch discrimination on each layer's features")
    sparsity: bool = Field(True, description="each layer's fraction of lit cells (and minibatch discrimination on it) as D features")
    lambda_energy: float = Field(0.05, ge=0, description="weight of G's |sum of cells - E| term (CaloGAN's lambda_E)")
    energy_range_gev: tuple[float, float] = Field((1.0, 100.0), description="energies of generated showers during training, uniform")


def _paper_optim() -> dict[str, OptimizerSettings]:
    return {"G": OptimizerSettings(lr=2e-4, betas=(0.5, 0.999)), "D": OptimizerSettings(lr=2e-5, betas=(0.5, 0.999))}


class ShowerDataSettings(StrictModel):
    """Which showers train the model: duplicates and the seeded train/validation/test split."""

    validation_fraction: float = Field(0.1, ge=0, lt=1, description="showers kept for validation (never trained on)")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="showers kept for the final test (never trained on)")
    split_seed: int = Field(12345, ge=0, description="seed of the split's permutation (recorded in the manifest)")
    drop_duplicates: bool = Field(True, description="remove exact duplicate showers before the split (the CaloGAN files have some)")
    max_rows: int | None = Field(None, gt=0, description="use only the first max_rows showers of the file")
    binning_xml: str | None = Field(None, description="CaloChallenge dataset 1: the binning XML of the file's voxels")
    particle: str | None = Field(None, description="CaloChallenge dataset 1: which particle's binning of the XML (photon, pion)")


class CaloGANConfig(FamilyConfig):
    """The whole config of a faithful CaloGAN run."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 256, "ema_halflife_rows": None}
    family: Literal["calogan"] = "calogan"
    data: ShowerDataSettings = Field(default_factory=ShowerDataSettings)
    model: CaloGANSettings = Field(default_factory=CaloGANSettings)
    optim: dict[str, OptimizerSettings] = Field(default_factory=_paper_optim)


class CaloGANObjective(Objective):
    """Phases ``D_real``, ``D_fake`` (both step D) and ``G`` (two steps) on batches ``(images, energy)`` in GeV."""

    def __init__(self, g: CaloGANGenerator, d: CaloGANDiscriminator, settings: CaloGANSettings, device: torch.device, seed: int) -> None:
        self.networks = {"G": g, "D": d}
        self.phases = [
            Phase("D_real", "D", 1, needs_batch=True),
            # the fake half-step and G see generated showers only: they consume no real rows
            Phase("D_fake", "D", 1, needs_batch=False),
            Phase("G", "G", 2, needs_batch=False),
        ]
        self.ema_network = "G"
        self.settings = settings
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + 1)
        self._bce = nn.BCEWithLogitsLoss()

    def _fake(self, g: nn.Module, n: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        lo, hi = self.settings.energy_range_gev
        energy = lo + (hi - lo) * torch.rand(n, generator=self.generator, device=self.device)
        z = torch.randn(n, self.settings.latent_dim, generator=self.generator, device=self.device)
        return g(z, energy), energy

    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, energy = batch
        n = energy.shape[0]
        g, d = nets["G"], nets["D"]
        if phase == "D_real":
            logits = d(images, energy)
            return self._bce(logits, torch.ones_like(logits)), {"D/real": logits.mean().detach()}
        if phase == "D_fake":
            with torch.no_grad():
                fake, fake_energy = self._fake(g, n)
            logits = d(fake, fake_energy)
            return self._bce(logits, torch.zeros_like(logits)), {"D/fake": logits.mean().detach()}
        if phase == "G":
            fake, fake_energy = self._fake(g, n)
            logits = d(fake, fake_energy)
            adversarial = self._bce(logits, torch.ones_like(logits))
            total = torch.stack([image.flatten(1).sum(dim=1) for image in fake], dim=1).sum(dim=1)
            energy_term = (total - fake_energy).abs().mean()
            return adversarial + self.settings.lambda_energy * energy_term, {"G/energy_MAE_GeV": energy_term.detach()}
        raise ValueError(f"unknown phase {phase!r}")


class ShowerBatches(BatchSource):
    """Batches of showers held in memory, reshuffled every epoch, resumable exactly.

    Args:
        layers: per layer (N, r, c) MeV arrays (CaloGAN layout).
        energy: (N,) incident energy, MeV.
        batch_size: showers per batch for this process.
        seed: epoch ``e`` uses the permutation of ``default_rng([seed, e])``.
        device: where batches go.
        rank, world_size: this process's share is ``perm[rank::world_size]``.

    Batches are ``([images (B, r, c) GeV ...], energy (B,) GeV)`` float32. (CaloGAN shuffled
    once and never again; a fresh permutation per epoch is the usual practice and changes
    nothing the paper reports.)
    """

    def __init__(self, layers: Sequence[np.ndarray], energy: np.ndarray, batch_size: int, seed: int, device: torch.device, rank: int = 0, world_size: int = 1, source: str = "data") -> None:
        n = int(np.asarray(energy).shape[0])
        if n // world_size < batch_size:
            raise DataError(f"{source}: {n} training showers give {n // world_size} per process, fewer than batch_size={batch_size}; lower the batch size or give more data")
        self.layers = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) * GEV_PER_MEV).to(device) for a in layers]
        self.energy = torch.from_numpy(np.asarray(energy, dtype=np.float32) * GEV_PER_MEV).to(device)
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.energy.shape[0])[self.rank :: self.world_size]
        return torch.from_numpy(perm).to(self.device)

    def next_batch(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        if self.position + self.batch_size > self._order.shape[0]:
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        index = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return [layer[index] for layer in self.layers], self.energy[index]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
