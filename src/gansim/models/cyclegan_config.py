"""Typed settings of the 3-D CycleGAN (family ``cyclegan``): data, networks, losses, inference.

Defaults follow CycleGAN (Zhu et al. 2017) and the DCAN 3-D port where they agree: Adam 2e-4
(0.5, 0.999) for both networks, constant for half the run then linearly to 0, least-squares
adversarial loss, cycle λ = 10, identity 0.5·λ, an image pool of 50, batch 1. The paired L1 term
is off by default (the DCAN port's default of 40 makes it a supervised model); give
``loss.lambda_paired`` for co-registered pairs, and the manifest says the model is paired.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from gansim.config import FamilyConfig, OptimizerSettings, StrictModel
from gansim.models.cyclegan_nets import VolumeNetSettings
from gansim.training.cpu_heap import VOLUME_MMAP_THRESHOLD

__all__ = ["VolumeDataSettings", "CycleLossSettings", "InferenceSettings", "CycleGANConfig"]


class VolumeDataSettings(StrictModel):
    """Where the volumes come from, how they pair, how they are scaled and cut into patches."""

    pairing: Literal["name", "csv", "unpaired"] = Field("name", description="'name': trainA and trainB paired by sorted file name; 'csv': by pairs_csv; 'unpaired': not paired")
    pairs_csv: str | None = Field(None, description="pairing 'csv': a CSV with columns A and B (file names) and optionally split (train/test; without it the test set pairs by name); a relative path is inside the data folder")
    percentiles: tuple[float, float] = Field((0.5, 99.5), description="percentiles mapped to -1 (of the whole volume: the air) and +1 (of its head mask)")
    patch: tuple[int, int, int] = Field((64, 64, 64), description="training patch shape (voxels); each axis a multiple of the generator's (gansim plan tells)")
    foreground_fraction: float = Field(0.9, ge=0, le=1, description="fraction of patches centred on a foreground voxel")

    @model_validator(mode="after")
    def _check(self) -> VolumeDataSettings:
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"percentiles {self.percentiles}: expected 0 <= lo < hi <= 100")
        if min(self.patch) < 1:
            raise ValueError(f"patch {self.patch}: every size must be >= 1")
        if self.pairing == "csv" and not self.pairs_csv:
            raise ValueError("pairing 'csv' needs pairs_csv")
        return self


class CycleLossSettings(StrictModel):
    """The losses and the pool."""

    loss: Literal["lsgan", "hinge"] = Field("lsgan", description="adversarial loss: least squares (CycleGAN) or hinge")
    lambda_cycle: float = Field(10.0, ge=0, description="weight of the L1 cycle losses")
    lambda_identity: float = Field(0.5, ge=0, description="identity loss weight as a fraction of lambda_cycle (0 turns it off)")
    lambda_paired: float = Field(0.0, ge=0, description="weight of the L1 distance of each translation to its co-registered pair (paired data only; >0 makes the model 'paired')")
    pool_size: int = Field(50, ge=0, description="generated images kept for the critics (0: none)")
    gradient_checkpointing: bool = Field(False, description="recompute the generators' activations in the backward pass (less memory, one more forward)")


class InferenceSettings(StrictModel):
    """Whole-volume translation by sliding windows."""

    window: tuple[int, int, int] | None = Field(None, description="sliding window shape; null: the training patch")
    overlap: float = Field(0.5, ge=0, lt=1, description="overlap of neighbouring windows")
    sw_batch_size: int = Field(1, ge=1, description="windows per forward pass")
    output_scale: Literal["input", "domain"] = Field("input", description="'input': the output takes the input volume's own intensity range back (its percentiles); 'domain': the target domain's typical range from training")


def _cyclegan_optim() -> dict[str, OptimizerSettings]:
    return {name: OptimizerSettings(lr=2e-4, betas=(0.5, 0.999), scheduler="linear", decay_start=0.5) for name in ("G", "D")}


class CycleGANConfig(FamilyConfig):
    """The whole config of a 3-D CycleGAN run; ``train.total_rows`` counts patches (of each domain)."""

    # cpu_mmap_threshold: small 3-D patches fragment glibc's heap (gansim.training.cpu_heap); with it the peak is the plan's
    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 1, "total_rows": 20_000, "tick_rows": 200, "checkpoint_rows": 2_000, "ema_halflife_rows": 1_000,
                                                "validation_fraction": 0.0, "cpu_mmap_threshold": VOLUME_MMAP_THRESHOLD}
    family: Literal["cyclegan"] = "cyclegan"
    data: VolumeDataSettings = Field(default_factory=VolumeDataSettings)
    model: VolumeNetSettings = Field(default_factory=VolumeNetSettings)
    loss: CycleLossSettings = Field(default_factory=CycleLossSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    optim: dict[str, OptimizerSettings] = Field(default_factory=_cyclegan_optim)

    @model_validator(mode="after")
    def _check_paired(self) -> CycleGANConfig:
        if self.loss.lambda_paired > 0 and self.data.pairing == "unpaired":
            raise ValueError("loss.lambda_paired > 0 needs paired data (data.pairing 'name' or 'csv')")
        if self.model.spatial_dims != 3:
            raise ValueError("the CycleGAN family translates 3-D volumes: model.spatial_dims must be 3")
        return self
