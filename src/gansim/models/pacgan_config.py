"""Typed settings of the progressive auxiliary-classifier GAN (family ``pacgan``).

The networks grow from ``start_size`` to ``image_size`` (each level doubles the side), one level
after another. Each level runs ``epochs[level]`` passes over the training images; the first
``fade_fraction`` of the level's images fade the new layers in (α from 0 to 1, counted in images
seen). Per-level lists (``batch_sizes``, ``critic_iterations``, ``epochs``, ``factors``) have one
entry per level; a single value is used for every level.

Defaults are PACGAN's (``Training/config.json``): 512 input channels, widths ×[1, 1, 1/2, 1/4, 1/8,
1/16, 1/32], z 512, embedding 3, Adam 1e-3 (0.5, 0.999), λ_GP 10, λ_cls1 4, λ_cls2 2, 100 epochs
a level, validation tracked from 60 % of each level's epochs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from gansim.config import FamilyConfig, OptimizerSettings, StrictModel

__all__ = ["SliceDataSettings", "PACGANSettings", "ScheduleSettings", "ValidationSettings", "EvaluationSettings", "PACGANConfig", "level_sizes"]


def level_sizes(start_size: int, image_size: int) -> list[int]:
    """Image side per level: ``start_size``, ×2, ... up to ``image_size`` (which must be start_size·2^k)."""
    sizes = [start_size]
    while sizes[-1] < image_size:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != image_size:
        raise ValueError(f"image_size {image_size} is not start_size {start_size} times a power of 2 (the networks double the side at each level)")
    return sizes


class SliceDataSettings(StrictModel):
    """Where the labelled slices come from and how they are split and scaled."""

    image_file: str | None = Field(None, description="the NIfTI [W, H, C, N] inside the data folder; null: the largest Real<S>x<S>.nii.gz, else the only .nii/.nii.gz there")
    labels: str | None = Field(None, description="labels.csv (ID, Label, Subject_ID); null: labels.csv in the data folder")
    test_data: str | None = Field(None, description="the test set's folder (PACGAN's DATA_TEST_DIRECTORY), evaluated when validation.mode is 'test'")
    test_labels: str | None = Field(None, description="the test set's labels.csv; null: labels.csv in test_data")
    n_folds: int = Field(5, ge=2, description="stratified group k-fold over subjects: the validation set is one fold")
    fold: int = Field(4, ge=0, description="which fold is the validation set (0-based); PACGAN's loop keeps the last of 5, fold 4")
    split_seed: int = Field(8, ge=0, description="shuffling seed of the k-fold split (PACGAN: random_state=8)")
    intensity: Literal["auto", "none", "range"] = Field("auto", description="'range': map intensity_range (null: the training images' min..max) linearly to [-1, 1]; 'none': the images are already in [-1, 1] (PACGAN's files); 'auto': 'none' when they are, else 'range'")
    intensity_range: tuple[float, float] | None = Field(None, description="the intensities mapped to -1 and +1 with intensity='range'")
    class_names: list[str] | None = Field(None, description="names of classes 0, 1, ... for reports and predictions.csv (e.g. ['CN', 'AD'])")

    @model_validator(mode="after")
    def _check(self) -> SliceDataSettings:
        if self.fold >= self.n_folds:
            raise ValueError(f"fold {self.fold} does not exist with n_folds={self.n_folds}; expected 0..{self.n_folds - 1}")
        if self.intensity_range is not None and not self.intensity_range[0] < self.intensity_range[1]:
            raise ValueError(f"intensity_range {self.intensity_range}: expected lo < hi")
        return self


class PACGANSettings(StrictModel):
    """The networks and the loss."""

    start_size: int = Field(4, ge=4, description="side of the first level's images (the critic's last block needs 4×4)")
    image_size: int = Field(256, ge=4, description="side of the final images; start_size·2^k")
    channels: int | None = Field(None, ge=1, description="image channels (1 or 3); null: from the data")
    num_classes: int | None = Field(None, ge=2, description="classes; null: from the data's labels")
    z_dim: int = Field(512, gt=0, description="latent size")
    embedding_dim: int = Field(3, gt=0, description="size of the class embedding joined to z")
    in_channels: int = Field(512, gt=0, description="channels at the first level; level k has in_channels·factors[k]")
    factors: list[float] | None = Field(None, description="width factor per level; null: PACGAN's [1, 1, 1/2, 1/4, 1/8, 1/16, 1/32] (continuing by halves), cut to the number of levels")
    aux_hidden: int = Field(150, gt=0, description="width of the auxiliary classifier's first layer (PACGAN: 150, no non-linearity after it)")
    projection: bool = Field(False, description="add a projection term <embed(y), features> to the critic's score (Miyato & Koyama 2018); the auxiliary head stays, as the classifier")
    minibatch_std_group: int | None = Field(None, ge=2, description="minibatch standard deviation over groups of this many images; null: over the whole batch (PACGAN)")
    gp_weight: float = Field(10.0, ge=0, description="λ_GP of the two-sided WGAN-GP penalty (computed in float32)")
    drift_weight: float = Field(1e-3, ge=0, description="ε of ProGAN's drift term ε·E[D(real)²]")
    lambda_cls_1: float = Field(4.0, ge=0, description="λ_cls1; with lambda_meaning='readme' it weights the cross-entropy of generated images")
    lambda_cls_2: float = Field(2.0, ge=0, description="λ_cls2; with lambda_meaning='readme' it weights the cross-entropy of real images (PACGAN: λ_cls1/2)")
    lambda_meaning: Literal["readme", "code"] = Field(
        "readme",
        description="'readme': the critic weights the real images' class loss by λ_cls2 and the generated images' by λ_cls1, as PACGAN's README says; "
        "'code': swapped (λ_cls1 on real, λ_cls2 on generated), as PACGAN's train.py does. The generator's class loss is λ_cls1 on its images either way",
    )

    @model_validator(mode="after")
    def _check(self) -> PACGANSettings:
        sizes = level_sizes(self.start_size, self.image_size)
        if self.factors is not None:
            if len(self.factors) < len(sizes):
                raise ValueError(f"factors has {len(self.factors)} entries for {len(sizes)} levels ({sizes[0]} to {sizes[-1]} px)")
            if any(not f > 0 or not math.isfinite(f) for f in self.factors):
                raise ValueError(f"factors {self.factors}: every factor must be > 0")
        return self

    @property
    def sizes(self) -> list[int]:
        return level_sizes(self.start_size, self.image_size)

    def widths(self) -> list[int]:
        """Channels per level (at least 1)."""
        factors = self.factors or [1.0, 1.0] + [2.0 ** -k for k in range(1, 64)]
        return [max(1, int(round(self.in_channels * f))) for f in factors[: len(self.sizes)]]


PerLevelInt = int | list[int]


class ScheduleSettings(StrictModel):
    """How long each level trains and with which batch."""

    epochs: PerLevelInt = Field(100, description="passes over the training images per level (one value for all, or one per level)")
    batch_sizes: PerLevelInt = Field(16, description="images per step and process, per level (PACGAN: [32, 32, 32, 16, 16, 16, 16])")
    critic_iterations: PerLevelInt = Field(1, description="critic steps per generator step, per level (PACGAN: [1, 1, 1, 1, 1, 2, 2])")
    fade_fraction: float = Field(0.5, gt=0, le=1, description="the first fade_fraction of a level's images fade its new layers in (PACGAN: half its epochs)")
    same_batch_for_critic: bool = Field(True, description="the critic's repeated steps reuse one real batch (PACGAN); false: a fresh batch per step")

    @field_validator("epochs", "batch_sizes", "critic_iterations")
    @classmethod
    def _positive(cls, value: PerLevelInt) -> PerLevelInt:
        values = value if isinstance(value, list) else [value]
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"{value}: expected a positive integer or a non-empty list of them")
        return value

    def per_level(self, name: str, n_levels: int) -> list[int]:
        """The setting ``name`` as one value per level; a list of another length is an error naming it."""
        value = getattr(self, name)
        if isinstance(value, int):
            return [value] * n_levels
        if len(value) != n_levels:
            raise ValueError(f"schedule.{name} has {len(value)} entries; the model has {n_levels} levels")
        return list(value)


class ValidationSettings(StrictModel):
    """PACGAN's VALIDATE and TESTING modes.

    ``validate``: train on the other folds; after every epoch the score is the whole-set ROC AUC of
    the auxiliary classifier on the real validation images plus that on as many generated images
    with the same labels; from ``start_check_at`` of a level's epochs on, the best-scoring weights
    are copied, and the next level (and the final model) starts from them.
    ``test``: train on every training image, each level for the epochs given in ``best_epochs``
    (or read from the validate run ``best_from``), then classify the test set.
    ``none``: train on the other folds, no tracking; the final weights are the model.
    """

    mode: Literal["validate", "test", "none"] = "validate"
    start_check_at: float = Field(0.6, ge=0, le=1, description="track the best epoch only after this fraction of a level's epochs")
    best_from: str | None = Field(None, description="test mode: a validate run's directory (or its model) whose best epoch per level sets the epochs")
    best_epochs: list[int] | None = Field(None, description="test mode: epochs per level, instead of best_from")
    generate_per_class: list[int] | None = Field(None, description="after training, write this many generated images per class beside the model (PACGAN's N_IMAGES_GENERATED); null: none")


class EvaluationSettings(StrictModel):
    """The end-of-training report (when ``train.evaluate``): classification of the held-out images and image-quality metrics."""

    encoder_epochs: int = Field(15, ge=1, description="epochs of the small encoder trained on the real training images, whose features give FD and KID")
    encoder: str | None = Field(None, description="a saved encoder directory to score with instead (keeps scores of several runs comparable)")
    n_pairs: int = Field(1000, ge=10, description="random same-class pairs per class for SSIM and MS-SSIM")
    inception_weights: str | None = Field(None, description="a trusted TorchScript InceptionV3 feature extractor file for Inception FID/KID (never downloaded); null: not computed")
    grid_per_class: int = Field(8, ge=1, le=32, description="images per class in the report's grids")


class PACGANConfig(FamilyConfig):
    """The whole config of a PACGAN run."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 16, "tick_rows": 2_000, "checkpoint_rows": 50_000, "ema_halflife_rows": 10_000, "validation_fraction": 0.0}
    family: Literal["pacgan"] = "pacgan"
    data: SliceDataSettings = Field(default_factory=SliceDataSettings)
    model: PACGANSettings = Field(default_factory=PACGANSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    optim: dict[str, OptimizerSettings] = Field(default_factory=lambda: {name: OptimizerSettings(lr=1e-3, betas=(0.5, 0.999)) for name in ("G", "D")})

    @model_validator(mode="after")
    def _check_levels(self) -> PACGANConfig:
        n = len(self.model.sizes)
        for name in ("epochs", "batch_sizes", "critic_iterations"):
            self.schedule.per_level(name, n)
        if self.validation.best_epochs is not None and len(self.validation.best_epochs) != n:
            raise ValueError(f"validation.best_epochs has {len(self.validation.best_epochs)} entries; the model has {n} levels")
        return self
