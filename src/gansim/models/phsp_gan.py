"""The phase-space GAN family: a conditional MLP GAN over the columns of a phase-space table.

G(z, c) -> x and D(x, c) -> logit, with x the generated columns (energy,
position, direction, ...) and c the condition columns (e.g. the emission point
of a SPECT decay), all normalised by the column transforms stored in the model
file. Conditions are matched by name everywhere, never by column position.

- :class:`PhaseSpaceGANConfig` — the typed config (data, model, loss, optim, train).
- :class:`PhaseSpaceObjective` — how D and G step, for the generic training loop.
- :class:`PhaseSpaceModel` — a loaded model: ``sample(n, cond=None, generator=None)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from gansim.config import OptimizerSettings, StrictModel, TrainingSettings
from gansim.data.transforms import TablePipeline
from gansim.errors import ConfigError, DataError, ModelFileError
from gansim.io.phsp.columns import unit_of
from gansim.losses import ADVERSARIAL_LOSSES, clamp_weights_, discriminator_loss, generator_loss, gradient_penalty
from gansim.models.model_file import load_network_tensors
from gansim.models.registry import register_family
from gansim.nn.mlp import MLP
from gansim.training.objective import Objective, Phase

__all__ = [
    "PhaseSpaceGANConfig",
    "PhaseSpaceGenerator",
    "PhaseSpaceDiscriminator",
    "PhaseSpaceObjective",
    "PhaseSpaceModel",
    "sample_latent",
    "LATENT_BLOCK_ROWS",
]

#: Latent vectors are drawn in blocks of this many rows, each from its own seeded
#: generator, so generated particles do not depend on the batch size or on how
#: the rows are split between processes.
LATENT_BLOCK_ROWS = 65_536


# ----------------------------------------------------------------------------- config
class PhaseSpaceDataSettings(StrictModel):
    """Which columns are generated, which condition the generator, and how they are transformed."""

    keys: list[str] | None = Field(None, description="generated columns; default: every numeric column but the conditions and bookkeeping ones")
    cond_keys: list[str] = Field(default_factory=list, description="condition columns, matched by name")
    log_keys: list[str] | Literal["auto"] = Field("auto", description="columns modelled in log space; auto: energy columns that are all > 0")
    directions: Literal["auto", "none"] = Field("auto", description="auto: *Direction_X/Y/Z triplets renormalised to unit vectors")
    clip: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict, description="bounds applied to generated values")
    tree: str | None = Field(None, description="ROOT tree name when the file holds several")
    max_rows: int | None = Field(None, gt=0, description="use only the first max_rows rows of the file")
    particle: str | int | None = Field(None, description="keep only rows of this particle type (PDGCode or a name: gamma, e-, e+, ...); needed when the file mixes types")
    clip_energy: bool = Field(True, description="clip generated energy columns into [0, the training maximum]")


class PhaseSpaceNetworkSettings(StrictModel):
    """Architecture of G and D (gaga-phsp v3 layout: depth counts the inner width×width layers)."""

    z_dim: int = Field(8, gt=0)
    latent: Literal["normal", "uniform"] = "normal"
    g_width: int = Field(256, gt=0)
    g_depth: int = Field(3, ge=0)
    d_width: int = Field(256, gt=0)
    d_depth: int = Field(3, ge=0)
    activation: Literal["relu", "leaky_relu", "silu", "gelu", "tanh", "elu"] = "leaky_relu"
    leaky_slope: float = Field(0.2, ge=0)
    spectral_norm: bool = Field(False, description="spectral normalisation of D's layers")


class PhaseSpaceLossSettings(StrictModel):
    """Adversarial loss, discriminator regulariser and update ratio."""

    # Defaults: the non-saturating loss with an R1 penalty learned our analytic
    # test distributions in fewer steps than WGAN-GP (tests/models/test_learning.py);
    # gaga-phsp's choices (wasserstein + square_hinge, clamp) remain available.
    adversarial: Literal["wasserstein", "hinge", "non_saturating", "lsgan"] = "non_saturating"
    penalty: Literal["none", "clamp", "two_sided", "one_sided", "zero_centred", "square_hinge", "r1"] = "r1"
    penalty_weight: float = Field(1.0, ge=0, description="multiplies the penalty (for r1 this is gamma/2)")
    penalty_norm: Literal["L1", "L2", "Linf"] = "L2"
    clamp: tuple[float, float] = Field((-0.01, 0.01), description="weight clamp bounds when penalty='clamp'")
    d_steps: int = Field(1, gt=0, description="discriminator steps per iteration")
    g_steps: int = Field(1, gt=0, description="generator steps per iteration")

    @model_validator(mode="after")
    def _check_clamp(self) -> PhaseSpaceLossSettings:
        if self.clamp[0] >= self.clamp[1]:
            raise ValueError(f"clamp lower bound {self.clamp[0]} must be below the upper bound {self.clamp[1]}")
        return self


class PhaseSpaceOptimSettings(StrictModel):
    """One optimiser per network."""

    G: OptimizerSettings = Field(default_factory=lambda: OptimizerSettings(lr=1e-3, betas=(0.5, 0.99)))
    D: OptimizerSettings = Field(default_factory=lambda: OptimizerSettings(lr=1e-3, betas=(0.5, 0.99)))


class PhaseSpaceGANConfig(StrictModel):
    """The whole config of a phase-space GAN run (written resolved to ``run_dir/config.json``)."""

    family: Literal["phsp"] = "phsp"
    data: PhaseSpaceDataSettings = Field(default_factory=PhaseSpaceDataSettings)
    model: PhaseSpaceNetworkSettings = Field(default_factory=PhaseSpaceNetworkSettings)
    loss: PhaseSpaceLossSettings = Field(default_factory=PhaseSpaceLossSettings)
    optim: PhaseSpaceOptimSettings = Field(default_factory=PhaseSpaceOptimSettings)
    train: TrainingSettings = Field(default_factory=TrainingSettings)


# ----------------------------------------------------------------------------- networks
class PhaseSpaceGenerator(nn.Module):
    """G(z, c): ``(n, z_dim)`` latent and ``(n, n_cond)`` normalised conditions -> ``(n, n_out)`` normalised columns."""

    def __init__(self, z_dim: int, n_cond: int, n_out: int, width: int, depth: int, activation: str, leaky_slope: float) -> None:
        super().__init__()
        self.z_dim, self.n_cond, self.n_out = z_dim, n_cond, n_out
        self.mlp = MLP(z_dim + n_cond, n_out, width, depth, activation, leaky_slope)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(z if c is None else torch.cat([z, c], dim=1))


class PhaseSpaceDiscriminator(nn.Module):
    """D(x, c): ``(n, n_x)`` columns and ``(n, n_cond)`` conditions -> ``(n,)`` logits."""

    def __init__(self, n_x: int, n_cond: int, width: int, depth: int, activation: str, leaky_slope: float, spectral_norm: bool) -> None:
        super().__init__()
        self.n_x, self.n_cond = n_x, n_cond
        self.mlp = MLP(n_x + n_cond, 1, width, depth, activation, leaky_slope, spectral_norm)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(x if c is None else torch.cat([x, c], dim=1)).squeeze(1)


def build_networks(settings: PhaseSpaceNetworkSettings, n_x: int, n_cond: int) -> tuple[PhaseSpaceGenerator, PhaseSpaceDiscriminator]:
    g = PhaseSpaceGenerator(settings.z_dim, n_cond, n_x, settings.g_width, settings.g_depth, settings.activation, settings.leaky_slope)
    d = PhaseSpaceDiscriminator(n_x, n_cond, settings.d_width, settings.d_depth, settings.activation, settings.leaky_slope, settings.spectral_norm)
    return g, d


def sample_latent(n: int, dim: int, distribution: str, *, generator: torch.Generator | None, device: torch.device, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """``(n, dim)`` latent vectors: standard normal, or uniform on [low, high)."""
    if distribution == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    if distribution == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * (high - low) + low
    raise ConfigError(f"latent distribution {distribution!r} is not known; expected 'normal' or 'uniform'")


def _unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") and isinstance(getattr(net, "module"), nn.Module) else net


# ----------------------------------------------------------------------------- objective
class PhaseSpaceObjective(Objective):
    """How D and G step. Batches are ``(x, c)``: normalised columns and conditions (or None)."""

    def __init__(self, g: PhaseSpaceGenerator, d: PhaseSpaceDiscriminator, model: PhaseSpaceNetworkSettings, loss: PhaseSpaceLossSettings, device: torch.device, seed: int) -> None:
        if loss.adversarial not in ADVERSARIAL_LOSSES:
            raise ConfigError(f"loss.adversarial {loss.adversarial!r}; expected one of {ADVERSARIAL_LOSSES}")
        self.networks = {"G": g, "D": d}
        # G reuses the conditions of D's last batch (gaga-phsp does the same), so it consumes no rows.
        self.phases = [Phase("D", "D", loss.d_steps, needs_batch=True), Phase("G", "G", loss.g_steps, needs_batch=False)]
        self.ema_network = "G"
        self.model, self.settings, self.device = model, loss, device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + 1)

    def _latent(self, n: int) -> torch.Tensor:
        return sample_latent(n, self.model.z_dim, self.model.latent, generator=self.generator, device=self.device)

    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, c = batch
        n = x.shape[0]
        g, d = nets["G"], nets["D"]
        if phase == "D":
            with torch.no_grad():
                fake = g(self._latent(n), c)
            both_c = None if c is None else torch.cat([c, c])
            logits = d(torch.cat([x, fake]), both_c)  # one forward for real and fake
            real_logits, fake_logits = logits[:n], logits[n:]
            loss = discriminator_loss(self.settings.adversarial, real_logits, fake_logits)
            extra = {"D/real": real_logits.mean().detach(), "D/fake": fake_logits.mean().detach()}
            if self.settings.penalty not in ("none", "clamp") and self.settings.penalty_weight > 0:
                raw_d = _unwrap(d)  # gradients of the penalty still reach the DDP reducer through the final backward
                penalty = gradient_penalty(lambda t: raw_d(t, c), x, fake, kind=self.settings.penalty, norm=self.settings.penalty_norm, generator=self.generator)
                loss = loss + self.settings.penalty_weight * penalty
                extra["D/penalty"] = penalty.detach()
            return loss, extra
        if phase == "G":
            fake = g(self._latent(n), c)
            return generator_loss(self.settings.adversarial, d(fake, c)), {}
        raise ValueError(f"unknown phase {phase!r}")

    def after_step(self, phase: str) -> None:
        if phase == "D" and self.settings.penalty == "clamp":
            clamp_weights_(self.networks["D"], *self.settings.clamp)


# ----------------------------------------------------------------------------- loaded model
def _latent_block(seed: int, block: int, dim: int, distribution: str, low: float, high: float, device: torch.device) -> torch.Tensor:
    """Latent vectors of rows ``block * LATENT_BLOCK_ROWS ...`` of the stream of ``seed``: ``(LATENT_BLOCK_ROWS, dim)``.

    Drawn with NumPy's PCG64 keyed by the pair (seed, block) through a
    SeedSequence (128-bit state: no two blocks share a stream, unlike 32-bit
    seeded generators at 10^10 particles), on the CPU, so a seed gives the
    same particles on CPU, CUDA and MPS up to float rounding of the network.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, block])))
    if distribution == "normal":
        z = rng.standard_normal((LATENT_BLOCK_ROWS, dim), dtype=np.float32)
    elif distribution == "uniform":
        z = (rng.random((LATENT_BLOCK_ROWS, dim), dtype=np.float32) * (high - low) + low).astype(np.float32)
    else:
        raise ConfigError(f"latent distribution {distribution!r} is not known; expected 'normal' or 'uniform'")
    return torch.from_numpy(z).to(device)


@register_family("phsp")
class PhaseSpaceModel:
    """A trained phase-space GAN, ready to sample particles in physical units.

    Attributes:
        keys: generated columns (plus constant columns reproduced exactly), in output order.
        cond_keys: condition columns, given by name to :meth:`sample`.
        manifest: the model file's manifest (plain data).
    """

    def __init__(
        self,
        generator: PhaseSpaceGenerator,
        x_pipeline: TablePipeline,
        c_pipeline: TablePipeline | None,
        keys: list[str],
        cond_keys: list[str],
        constants: dict[str, float | int],
        latent: dict[str, Any],
        manifest: dict[str, Any],
        device: torch.device,
    ) -> None:
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.x_pipeline, self.c_pipeline = x_pipeline, c_pipeline
        self.gan_keys = keys
        self.cond_keys = cond_keys
        self.constants = constants
        self.latent = latent
        self.manifest = manifest
        self.device = device
        self.keys = list(manifest.get("output_keys", keys + list(constants)))
        self._block_cache: tuple[tuple[Any, ...], torch.Tensor] | None = None

    # --------------------------------------------------------------- loading
    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> PhaseSpaceModel:
        try:
            arch = manifest["architecture"]["generator"]
            keys = [k["name"] for k in manifest["keys"]]
            cond_keys = [k["name"] for k in manifest.get("cond_keys", [])]
            latent = manifest["latent"]
            x_pipe = TablePipeline.from_dict(manifest["transforms"]["x"])
            c_dict = manifest["transforms"].get("c")
            # integers (e.g. PDGCode) stay integers; everything else is a float
            constants = {k: (v if isinstance(v, int) else float(v)) for k, v in manifest.get("constants", {}).items()}
        except KeyError as err:
            raise ModelFileError(f"{source}: manifest lacks key {err.args[0]!r}") from err
        c_pipe = TablePipeline.from_dict(c_dict) if c_dict else None
        g = PhaseSpaceGenerator(int(latent["dim"]), len(cond_keys), len(keys), int(arch["width"]), int(arch["depth"]), arch["activation"], float(arch["leaky_slope"]))
        load_network_tensors(g, tensors, "generator", source)
        return cls(g, x_pipe, c_pipe, keys, cond_keys, constants, latent, manifest, device)

    # --------------------------------------------------------------- conditions
    def _normalised_conditions(self, cond: Mapping[str, Any] | None, n: int) -> torch.Tensor | None:
        if not self.cond_keys:
            if cond:
                raise DataError(f"this model is not conditional, but conditions {sorted(cond)} were given")
            return None
        if cond is None:
            raise DataError(f"this model needs conditions {self.cond_keys} (by name), none were given")
        unknown = sorted(set(cond) - set(self.cond_keys))
        if unknown:
            raise DataError(f"unknown condition(s) {unknown}; the model's conditions are {self.cond_keys}")
        missing = [k for k in self.cond_keys if k not in cond]
        if missing:
            raise DataError(f"missing condition(s) {missing}; the model's conditions are {self.cond_keys}")
        table: dict[str, np.ndarray] = {}
        for key in self.cond_keys:
            value = cond[key]
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape != (n,):
                raise DataError(f"condition {key!r} has shape {arr.shape}; expected a number or {n} values")
            if not np.isfinite(arr).all():
                row = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise DataError(f"condition {key!r} holds NaN/Inf values (first at row {row} of this batch)")
            table[key] = arr
        assert self.c_pipeline is not None
        return torch.from_numpy(self.c_pipeline.forward(table)).to(self.device)

    # --------------------------------------------------------------- sampling
    @torch.inference_mode()
    def sample_tensors(self, n: int, cond: Mapping[str, Any] | None = None, generator: torch.Generator | None = None, *, seed: int | None = None, start: int = 0) -> dict[str, torch.Tensor]:
        """``n`` rows as tensors on the model's device, in physical units.

        Latents come from ``generator`` when given; otherwise from per-block
        generators seeded by ``seed`` (rows ``start .. start+n-1`` of the stream),
        so the same seed gives the same particles whatever the batch size.
        """
        c = self._normalised_conditions(cond, n)
        z = self._latent(n, generator, seed, start)
        y = self._forward(z, c)
        table = self.x_pipeline.inverse(y)
        out = {k: table[k] for k in self.gan_keys}
        for key, value in self.constants.items():
            out[key] = torch.full((n,), value, dtype=y.dtype, device=y.device)
        return {k: out[k] for k in self.keys}

    #: Rows per forward pass on the CPU: small enough that the activations stay in cache
    #: (measured: 4,096 rows run a 3×128 MLP ~1.6× faster than 100,000; benchmarks/README.md).
    CPU_FORWARD_ROWS = 4096

    def _forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        n = z.shape[0]
        step = self.CPU_FORWARD_ROWS
        if self.device.type != "cpu" or n <= 2 * step:
            return self.generator(z, c)
        out = torch.empty(n, self.generator.n_out, dtype=z.dtype)
        for i in range(0, n, step):
            out[i : i + step] = self.generator(z[i : i + step], None if c is None else c[i : i + step])
        return out

    def _latent(self, n: int, generator: torch.Generator | None, seed: int | None, start: int) -> torch.Tensor:
        dim, dist = int(self.latent["dim"]), self.latent["distribution"]
        low, high = float(self.latent.get("low", -1.0)), float(self.latent.get("high", 1.0))
        if generator is not None or seed is None:
            return sample_latent(n, dim, dist, generator=generator, device=self.device, low=low, high=high)
        parts = []
        row = start
        while row < start + n:
            block, offset = divmod(row, LATENT_BLOCK_ROWS)
            take = min(LATENT_BLOCK_ROWS - offset, start + n - row)
            # Always draw the whole block: torch's samplers do not give equal prefixes for different lengths.
            key = (seed, block, dim, dist, low, high)
            if self._block_cache is None or self._block_cache[0] != key:
                z_block = _latent_block(seed, block, dim, dist, low, high, self.device)
                self._block_cache = (key, z_block)
            parts.append(self._block_cache[1][offset : offset + take])
            row += take
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def sample(self, n: int, cond: Mapping[str, Any] | None = None, generator: torch.Generator | None = None, *, seed: int | None = None, batch_size: int = 100_000) -> dict[str, np.ndarray]:
        """``n`` generated rows as a table of NumPy float32 arrays in physical units (mm, MeV, ns).

        Args:
            n: number of rows.
            cond: condition values by name (a number, or ``n`` values, per condition key).
            generator: torch generator (on the model's device) for the latent vectors.
            seed: alternatively a seed; results then do not depend on ``batch_size``.
            batch_size: rows per forward pass (bounds the memory used).
        """
        parts = list(self.iter_samples(n, cond=cond, generator=generator, seed=seed, batch_size=batch_size))
        if not parts:
            return {k: np.zeros(0, dtype=np.float32) for k in self.keys}
        return {k: np.concatenate([p[k] for p in parts]) for k in self.keys}

    def iter_samples(self, n: int, cond: Mapping[str, Any] | None = None, generator: torch.Generator | None = None, *, seed: int | None = None, batch_size: int = 100_000, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Generate ``n`` rows in batches of at most ``batch_size`` (bounded memory), as NumPy tables."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for first in range(0, n, batch_size):
            m = min(batch_size, n - first)
            sub_cond = None
            if cond is not None:
                sub_cond = {k: (v[first : first + m] if np.ndim(v) > 0 else v) for k, v in cond.items()}
            rows = self.sample_tensors(m, sub_cond, generator, seed=seed, start=start + first)
            yield {k: (np.full(m, self.constants[k], dtype=np.int32) if isinstance(self.constants.get(k), int) else v.float().cpu().numpy()) for k, v in rows.items()}

    def units(self) -> dict[str, str]:
        """Unit of each output column."""
        return {k: unit_of(k) for k in self.keys}

    def __repr__(self) -> str:
        return f"PhaseSpaceModel(keys={self.keys}, cond_keys={self.cond_keys}, device={self.device})"
