"""Typed configuration shared by every family: optimisers, learning-rate schedules, the run.

Configs are pydantic models that forbid unknown keys. :func:`parse_config`
turns pydantic's errors into one :class:`~gansim.errors.ConfigError` that lists
every bad key with its path, the nearest valid names and the allowed values.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gansim.errors import ConfigError

__all__ = ["StrictModel", "OptimizerSettings", "TrainingSettings", "parse_config", "read_config_file", "lr_factor"]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OptimizerSettings(StrictModel):
    """Optimiser of one network. The schedule is a function of rows seen, so a resumed run follows it exactly."""

    name: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = Field(1e-4, gt=0, description="learning rate")
    betas: tuple[float, float] = Field((0.5, 0.9), description="Adam betas")
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, description="RMSprop/SGD momentum")
    alpha: float = Field(0.99, gt=0, lt=1, description="RMSprop smoothing constant")
    scheduler: Literal["none", "step", "exponential", "cosine", "linear"] = "none"
    step_rows: int = Field(1_000_000, gt=0, description="step: multiply lr by gamma every step_rows rows; exponential: by gamma per step_rows")
    gamma: float = Field(0.5, gt=0, le=1)
    min_lr_factor: float = Field(0.0, ge=0, le=1, description="cosine and linear: final lr as a fraction of lr; step and exponential: the floor of the decay")
    decay_start: float = Field(0.5, ge=0, lt=1, description="linear: the lr is constant for this fraction of the run, then falls linearly to min_lr_factor at its end (CycleGAN: half)")


def lr_factor(settings: OptimizerSettings, rows_seen: int, total_rows: int) -> float:
    """Learning-rate multiplier after ``rows_seen`` training rows."""
    if settings.scheduler == "none":
        return 1.0
    if settings.scheduler == "step":
        return max(settings.min_lr_factor, settings.gamma ** (rows_seen // settings.step_rows))
    if settings.scheduler == "exponential":
        return max(settings.min_lr_factor, settings.gamma ** (rows_seen / settings.step_rows))
    progress = min(1.0, rows_seen / max(1, total_rows))
    if settings.scheduler == "linear":
        decay = max(0.0, progress - settings.decay_start) / (1.0 - settings.decay_start)
        return 1.0 - (1.0 - settings.min_lr_factor) * decay
    return settings.min_lr_factor + (1 - settings.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))


#: other spellings of TrainingSettings.amp's modes
_AMP_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "none": "off", "false": "off", "true": "bf16"}


class TrainingSettings(StrictModel):
    """How long and how a run goes. Progress is counted in training rows seen by the discriminator."""

    total_rows: int = Field(2_000_000, gt=0, description="stop after this many real rows were seen")
    max_wall_time_s: float | None = Field(None, gt=0, description="also stop after this much training time (s, resumed time included; checked every iteration, every 64 under torchrun); a time-limited run is not reproducible row for row")
    batch_size: int = Field(1024, gt=0, description="rows per step per process")
    seed: int = Field(0, ge=0)
    device: str = "auto"
    tick_rows: int = Field(100_000, gt=0, description="write stats every tick_rows rows")
    checkpoint_rows: int = Field(1_000_000, gt=0, description="checkpoint every checkpoint_rows rows")
    keep_checkpoints: int = Field(3, ge=0, description="0 keeps every checkpoint")
    ema_halflife_rows: int | None = Field(200_000, gt=0, description="half-life of the generator's EMA in rows seen; null disables the EMA")
    ema_rampup: float | None = Field(0.05, gt=0, description="early on the half-life is at most ema_rampup × rows seen; null: no ramp-up")
    amp: Literal["off", "bf16", "fp16"] = Field(
        "off",
        description="mixed precision: 'bf16' autocast (no loss scaling needed), 'fp16' autocast with a gradient scaler (GPUs without "
        "bfloat16, e.g. V100, T4); on CUDA and on the CPU (only faster on CPUs with 16-bit units); true means 'bf16', false 'off'",
    )
    cpu_mmap_threshold: int | None = Field(
        None, gt=0, le=32 * 1024 * 1024,
        description="on the CPU with glibc (Linux): allocations of at least this many bytes get their own mapping, returned to the system "
        "when freed, instead of glibc's heap, which keeps freed blocks: the peak then follows the live tensors, as `gansim plan` counts "
        "them, at some cost in speed with small tensors (3-D patches of 24³-32³: about 20 % on 2 cores); null leaves the C library as "
        "it is; see gansim.training.cpu_heap",
    )
    progress: bool = True
    validation_fraction: float = Field(0.05, ge=0, lt=1, description="held-out rows, chosen by a seeded hash of the row index")
    validation_seed: int = Field(12345, ge=0)
    chunk_rows: int = Field(1_000_000, gt=0, description="rows read per chunk when streaming")
    in_memory_max_rows: int = Field(50_000_000, gt=0, description="larger data sets are streamed from disk")
    evaluate: bool = Field(True, description="at the end, compare the model with the held-out rows: RUN/report/report.html, metrics in the manifest")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_mode(cls, value: Any) -> Any:
        if isinstance(value, bool) or value is None:  # the earlier boolean switch: true was bfloat16 autocast
            return "bf16" if value else "off"
        if isinstance(value, str):
            return _AMP_ALIASES.get(value.strip().lower(), value.strip().lower())
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()):
            raise ValueError(f"{value!r} is not a device; expected auto, cpu, cuda, cuda:N or mps")
        return value.strip().lower()


class FamilyConfig(StrictModel):
    """Base of a family's whole config whose training defaults differ from :class:`TrainingSettings`' own.

    A subclass sets ``TRAIN_DEFAULTS``; a ``train`` section that gives only some keys keeps the
    family's defaults for the others (not the phase-space ones of TrainingSettings).
    """

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = {}
    train: TrainingSettings = Field(default_factory=dict, validate_default=True)

    @field_validator("train", mode="before")
    @classmethod
    def _family_train_defaults(cls, value: Any) -> Any:
        return {**cls.TRAIN_DEFAULTS, **value} if isinstance(value, dict) else value


def _nearest(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields of the sub-model at ``loc`` (for suggestions)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return []
        annotation = current.model_fields[part].annotation
        current = annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def parse_config(model: type[M], data: dict[str, Any], *, source: str = "config") -> M:
    """Validate ``data`` into ``model``; every problem goes into one :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = tuple(e["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            if e["type"] == "extra_forbidden":
                allowed = _fields_at(model, loc[:-1])
                lines.append(f"  unknown key {where!r}{_nearest(str(loc[-1]), allowed)}; valid keys here: {', '.join(allowed)}")
            elif e["type"] == "literal_error":
                lines.append(f"  {where}: {e['input']!r} is not allowed; expected {e['ctx']['expected']}")
            else:
                lines.append(f"  {where}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config file; keys starting with ``#`` are comments and dropped (as gaga-phsp allows)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return _drop_comments(data)


def _drop_comments(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_comments(v) for k, v in data.items() if not (isinstance(k, str) and k.startswith("#"))}
    return data


