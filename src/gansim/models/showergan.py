"""The modern shower GAN family: settings, config and training maths in the one loop.

Per iteration: ``n_critic`` critic steps, each on a fresh batch of real showers and as many
generated ones at **the same incident energies** (so the critic compares showers, not energy
spectra), then one generator step at those energies. The loss is WGAN-GP by default (a two-sided
gradient penalty on the critic's standardised features, plus a small drift term; the critic is
also spectrally normalised), or the hinge loss. On built-in e+ showers, WGAN-GP gave a mean
separation power over CaloGAN's shower-shape variables of 0.34 after three minutes of training
where the hinge loss gave 0.41-0.6 (and its critic saturated). There is no energy or containment penalty: the layer
energies and the total come from the generator's heads by construction (less the faint cells'
energy the threshold removes), and the response is
learnt from the data, which is right for pions too (their showers are not contained).

Stochastic occupancy (``occupancy='stochastic'``, the default) draws every cell lit or not and
gives each lit cell its own fluctuation (:class:`gansim.models.showergan_nets.ShowerGenerator`).
On 30,000 GFlash e+ showers after 10 minutes on 2 threads it brought the separation power of
the lit-cell fractions from 0.82/0.80/0.82 (layers 0/1/2, threshold only) to 0.24/0.29/0.01 and
the mean over CaloGAN's variables from 0.22 to 0.15. A per-layer log-odds offset
(``occupancy_layer_offsets``) lets a shower be busy or quiet in a layer as a whole; on one thread
after 300k showers it took the mean separation power from 0.073 to 0.040. Without the critic's response feature
(E_tot/E on its own) the response drifted off (separation power 0.998 after a 30-minute run);
with it, 0.05-0.23 after 10 minutes.

Showers are fed in GeV as flat rows of cells (:func:`gansim.io.calo_geometry.cell_table` order),
energies in GeV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from gansim.config import FamilyConfig, OptimizerSettings, StrictModel
from gansim.losses import discriminator_loss, drift_penalty, generator_loss, gradient_penalty
from gansim.models.calogan import ShowerDataSettings
from gansim.models.showergan_nets import ShowerCritic, ShowerGenerator
from gansim.training.objective import Objective, Phase

__all__ = ["ShowerGANSettings", "ShowerGANConfig", "ShowerGANObjective"]


class ShowerGANSettings(StrictModel):
    """The modern model's architecture and loss."""

    latent_dim: int = Field(128, gt=0)
    g_width: int = Field(512, gt=0, description="hidden width of the generator's FiLM MLP")
    g_depth: int = Field(3, gt=0, description="hidden layers of the generator")
    d_width: int = Field(512, gt=0, description="hidden width of the critic")
    d_depth: int = Field(2, ge=0, description="inner layers of the critic's MLP")
    loss: Literal["hinge", "wgan-gp"] = Field("wgan-gp", description="WGAN-GP or hinge")
    spectral_norm: bool = Field(True, description="spectral normalisation of the critic's linear layers")
    gp_weight: float = Field(10.0, ge=0, description="WGAN-GP: weight of the two-sided gradient penalty")
    drift_weight: float = Field(1e-3, ge=0, description="WGAN-GP: weight of mean(D(real)^2), keeping the critic's outputs near 0")
    n_critic: int = Field(2, gt=0, description="critic steps per generator step")
    cell_threshold_mev: float | None = Field(None, gt=0, description="cells below this are zero (sparsity); null: the threshold_quantile of the training data's lit cells")
    threshold_quantile: float = Field(1e-3, ge=0, lt=1, description="which quantile of the lit cells sets the threshold when cell_threshold_mev is null (the 0.1 % faintest cells are dropped from the training showers; 1e-2 emptied CaloGAN's faint layer 2 in a test)")
    energy_range_gev: tuple[float, float] | None = Field(None, description="range of the log-energy condition and of default sampling; null: the training data's range")
    occupancy: Literal["threshold", "stochastic"] = Field("stochastic", description="how cells come out empty: 'stochastic' draws each cell lit or not (probability from a generator head) and gives each lit cell its own log-normal fluctuation (two noise columns per cell), then applies the threshold; 'threshold' only zeroes cells below the threshold (no per-cell noise)")
    occupancy_temperature: float = Field(0.5, gt=0, description="stochastic occupancy: temperature of the straight-through Gumbel-sigmoid's backward pass")
    occupancy_layer_offsets: bool = Field(True, description="stochastic occupancy: a head gives each layer one log-odds offset shared by its cells (how busy the shower is there), scaled by the data's spread over showers of the layer's log-odds of lit cells; without it the cells' draws are nearly independent at first and the lit fractions come out too narrow (separation power 0.31/0.39 in layers 0/1 against 0.10/0.15 after 300k showers)")
    init_rows: int = Field(20_000, gt=1, description="training showers used for the data-based initialisation and the critic's standardisation")

    @model_validator(mode="after")
    def _check_range(self) -> ShowerGANSettings:
        if self.energy_range_gev is not None and not 0 < self.energy_range_gev[0] < self.energy_range_gev[1]:
            raise ValueError(f"energy_range_gev {self.energy_range_gev}: expected 0 < lo < hi")
        return self


def _modern_optim() -> dict[str, OptimizerSettings]:
    """Adam at 1e-4 for both networks, halved every 400,000 showers down to 5 % (a schedule that needs no horizon,
    so a run stopped by ``train.max_wall_time_s`` decays too). In one 30-minute CPU run each on the same
    data, a constant rate ended with outliers in the faint layer (f2 ten times too large on average), a mean
    separation power of 0.078 and classifier AUCs of 0.783 (low-level) / 0.987 (high-level); with the decay,
    0.030 and 0.887 / 0.982: better shower shapes, worse per-cell detail (``benchmarks/README.md``).
    For runs of many millions of showers, raise ``step_rows``."""
    decay = {"scheduler": "exponential", "gamma": 0.5, "step_rows": 400_000, "min_lr_factor": 0.05}
    return {name: OptimizerSettings(lr=1e-4, betas=(0.5, 0.9), **decay) for name in ("G", "D")}


class ShowerGANConfig(FamilyConfig):
    """The whole config of a modern shower GAN run."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 256, "total_rows": 5_000_000, "tick_rows": 200_000, "checkpoint_rows": 1_000_000, "ema_halflife_rows": 100_000}
    family: Literal["showergan"] = "showergan"
    data: ShowerDataSettings = Field(default_factory=ShowerDataSettings)
    model: ShowerGANSettings = Field(default_factory=ShowerGANSettings)
    optim: dict[str, OptimizerSettings] = Field(default_factory=_modern_optim)


class ShowerGANObjective(Objective):
    """Phases ``D`` (``n_critic`` steps, fresh real batch each) and ``G`` on batches ``([cells (B, C)], energy (B,))`` in GeV."""

    def __init__(self, g: ShowerGenerator, d: ShowerCritic, settings: ShowerGANSettings, device: torch.device, seed: int) -> None:
        self.networks = {"G": g, "D": d}
        self.phases = [Phase("D", "D", settings.n_critic, needs_batch=True), Phase("G", "G", 1, needs_batch=False)]
        self.ema_network = "G"
        self.settings = settings
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + 1)

    def _fake(self, g: nn.Module, energy: torch.Tensor, return_lit: bool = False) -> Any:
        """Generated showers at ``energy`` (and their lit flags with the draw's gradient, for the G step)."""
        z = torch.randn(energy.shape[0], self.networks["G"].noise_dim, generator=self.generator, device=self.device)
        return g(z, energy, return_lit=return_lit)

    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        (cells,), energy = batch
        g, d = nets["G"], nets["D"]
        if phase == "D":
            with torch.no_grad():
                fake = self._fake(g, energy)
            real_logits, fake_logits = d(cells, energy), d(fake, energy)
            if self.settings.loss == "hinge":
                loss = discriminator_loss("hinge", real_logits, fake_logits)
                return loss, {"D/real": real_logits.mean().detach(), "D/fake": fake_logits.mean().detach()}
            # the penalty on the critic's head, between real and fake standardised features (the
            # features have no parameters); its gradients reach the DDP reducer in the same backward
            critic = self.networks["D"]
            with torch.no_grad():
                real_f, fake_f = critic.features(cells, energy), critic.features(fake, energy)
            penalty = gradient_penalty(lambda x: critic.head(x), real_f, fake_f, kind="two_sided", generator=self.generator)
            loss = discriminator_loss("wasserstein", real_logits, fake_logits) + self.settings.gp_weight * penalty + self.settings.drift_weight * drift_penalty(real_logits)
            return loss, {"D/real": real_logits.mean().detach(), "D/fake": fake_logits.mean().detach(), "D/gp": penalty.detach()}
        if phase == "G":
            fake, lit = self._fake(g, energy, return_lit=True)
            logits = d(fake, energy, lit)
            return generator_loss("hinge" if self.settings.loss == "hinge" else "wasserstein", logits), {}
        raise ValueError(f"unknown phase {phase!r}")
