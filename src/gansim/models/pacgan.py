"""The progressive auxiliary-classifier GAN's training maths in the one loop: level schedule, batches, losses, validation.

Per iteration at level ``k``: ``critic_iterations[k]`` critic steps (on one real batch, as PACGAN,
or a fresh one each), then one generator step with the same labels. Losses (PACGAN's, on the
critic's score ``D`` and its auxiliary class logits ``cls``):

- critic: ``E[D(G(z, y))] − E[D(x)] + λ_real·CE(cls(x), y) + λ_fake·CE(cls(G(z, y)), y)
  + λ_GP·GP + ε·E[D(x)²]``, the two-sided gradient penalty on per-image interpolates,
  computed in float32 outside autocast;
- generator: ``−E[D(G(z, y))] + λ_cls1·CE(cls(G(z, y)), y)``. PACGAN's generator loss also adds
  ``λ_cls2·CE(cls(x), y)`` of the real images, a constant for the generator that only costs a
  forward pass; it is left out.

``λ_fake = λ_cls1`` and ``λ_real = λ_cls2`` by default (PACGAN's README); ``lambda_meaning='code'``
swaps them in the critic as PACGAN's ``train.py`` does.

The level, the fade-in α and the batch size are functions of the images seen (:class:`LevelSchedule`),
so a run resumed at any step continues the same schedule. In ``validate`` mode, after every epoch
of a level the score ``AUC(real validation images) + AUC(as many generated images with their
labels)`` is computed on whole sets; the best-scoring weights (networks, optimisers, EMA) are
copied, not referenced (PACGAN saved its live tensors, so its "best" was the last epoch), and the
next level starts from them.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gansim.errors import DataError
from gansim.losses import drift_penalty, gradient_penalty
from gansim.models.pacgan_config import PACGANSettings, ScheduleSettings
from gansim.models.pacgan_nets import ProgressiveDiscriminator, ProgressiveGenerator
from gansim.training.objective import BatchSource, Objective, Phase

__all__ = ["LevelSchedule", "SliceBatches", "SliceValidator", "PACGANObjective", "image_pyramid"]


@dataclass(frozen=True)
class LevelSchedule:
    """Which level, fade-in α and epoch belong to a count of images seen.

    Level ``k`` lasts ``epochs[k] · n_train`` images; its first ``fade_images[k]`` images fade it in
    (α rises linearly from 0 to 1; level 0 has nothing to fade from, α = 1).
    """

    sizes: list[int]
    epochs: list[int]
    batch_sizes: list[int]
    critic_iterations: list[int]
    n_train: int
    fade_images: list[int]

    @classmethod
    def build(cls, sizes: list[int], schedule: ScheduleSettings, n_train: int, epochs: list[int] | None = None) -> LevelSchedule:
        """From the config; ``epochs`` overrides the level lengths (test mode's best epochs) but not the fade-in."""
        n = len(sizes)
        configured = schedule.per_level("epochs", n)
        fade = [0] + [max(1, int(round(schedule.fade_fraction * configured[k] * n_train))) for k in range(1, n)]
        return cls(list(sizes), list(epochs or configured), schedule.per_level("batch_sizes", n), schedule.per_level("critic_iterations", n), n_train, fade)

    @property
    def starts(self) -> list[int]:
        """Images seen when each level starts."""
        out, total = [], 0
        for e in self.epochs:
            out.append(total)
            total += e * self.n_train
        return out

    @property
    def total(self) -> int:
        return sum(self.epochs) * self.n_train

    def level_at(self, rows: int) -> int:
        return min(len(self.sizes) - 1, bisect_right(self.starts, rows) - 1)

    def alpha_at(self, rows: int) -> float:
        level = self.level_at(rows)
        if level == 0:
            return 1.0
        return min(1.0, (rows - self.starts[level]) / self.fade_images[level])

    def epochs_done(self, rows: int) -> int:
        """Whole epochs of the current level completed after ``rows`` images."""
        level = self.level_at(rows)
        return min(self.epochs[level], (rows - self.starts[level]) // self.n_train)


def image_pyramid(images: torch.Tensor, sizes: list[int]) -> dict[int, torch.Tensor]:
    """The images at every size of ``sizes`` (antialiased downsampling of the full-size ones)."""
    from gansim.io.slices import downsample

    return {size: images if size == images.shape[-1] else downsample(images, size) for size in sizes}


class SliceBatches(BatchSource):
    """Batches ``(images (B, C, s, s), labels (B,))`` at the current level's side ``s``, drawn without replacement.

    Each epoch is a permutation of ``default_rng([seed, epoch])``; this process takes every
    ``world_size``-th image of it. The level (set by the objective before each iteration) picks
    the side and the batch size; the lower resolutions are made once, on first use.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sizes: list[int], batch_sizes: list[int], seed: int,
                 device: torch.device, rank: int = 0, world_size: int = 1, source: str = "data") -> None:
        n = images.shape[0]
        if n // world_size < max(batch_sizes):
            raise DataError(f"{source}: {n} training images give {n // world_size} per process, fewer than the largest batch size {max(batch_sizes)}; "
                            "lower schedule.batch_sizes or give more images")
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.sizes, self.batch_sizes = list(sizes), list(batch_sizes)
        self.seed, self.device, self.rank, self.world_size = seed, device, rank, world_size
        self.level = 0
        self._pyramid: dict[int, torch.Tensor] = {images.shape[-1]: self.images}
        self.epoch, self.position = 0, 0
        self._order = self._share(0)

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return self.batch_sizes[self.level]

    def set_level(self, level: int) -> None:
        self.level = level
        size = self.sizes[level]
        if size not in self._pyramid:
            self._pyramid[size] = image_pyramid(self.images, [size])[size]

    def _share(self, epoch: int) -> torch.Tensor:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.images.shape[0])
        return torch.from_numpy(perm[self.rank :: self.world_size].copy()).to(self.device)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.batch_size
        if self.position + b > len(self._order):  # the epoch's last partial batch is dropped
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._share(self.epoch)
        index = self._order[self.position : self.position + b]
        self.position += b
        return self._pyramid[self.sizes[self.level]][index], self.labels[index]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._share(self.epoch)


class SliceValidator:
    """PACGAN's validation score on whole sets: AUC of the auxiliary classifier on the real validation
    images plus its AUC on as many generated images with the same labels (one-vs-rest macro AUC beyond 2 classes).

    The generated images use the same latents at every evaluation, so the score's changes come
    from the networks, not from new noise.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sizes: list[int], z_dim: int, device: torch.device, seed: int, batch_size: int = 256) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.sizes, self.device, self.batch_size = list(sizes), device, batch_size
        self._pyramid: dict[int, torch.Tensor] = {images.shape[-1]: self.images}
        gen = torch.Generator(device="cpu").manual_seed(seed + 99)
        self.z = torch.randn(images.shape[0], z_dim, generator=gen).to(device)

    def _at(self, size: int) -> torch.Tensor:
        if size not in self._pyramid:
            self._pyramid[size] = image_pyramid(self.images, [size])[size]
        return self._pyramid[size]

    @torch.no_grad()
    def evaluate(self, g: ProgressiveGenerator, d: ProgressiveDiscriminator, level: int, alpha: float) -> dict[str, float]:
        from gansim.metrics.classification import whole_set_auc

        was_training = (g.training, d.training)
        g.eval(), d.eval()
        try:
            real = self._at(self.sizes[level])
            p_real, p_fake = [], []
            for start in range(0, real.shape[0], self.batch_size):
                stop = min(real.shape[0], start + self.batch_size)
                y = self.labels[start:stop]
                p_real.append(F.softmax(d(real[start:stop], level, alpha, y)[1].float(), dim=1))
                fake = g(self.z[start:stop], y, level, alpha)
                p_fake.append(F.softmax(d(fake, level, alpha, y)[1].float(), dim=1))
        finally:
            g.train(was_training[0]), d.train(was_training[1])
        labels = self.labels.cpu().numpy()
        auc_real = whole_set_auc(labels, torch.cat(p_real).cpu().numpy())
        auc_fake = whole_set_auc(labels, torch.cat(p_fake).cpu().numpy())
        return {"auc_real": auc_real, "auc_fake": auc_fake, "score": auc_real + auc_fake}


def _to_cpu_copy(obj: Any) -> Any:
    """A deep copy of a (nested) state with every tensor cloned to the CPU: a snapshot that later steps cannot change."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


class PACGANObjective(Objective):
    """Phases ``D`` (``critic_iterations[level]`` steps) and ``G`` on batches ``(images, labels)`` of the current level.

    Args:
        g, d: the progressive networks.
        settings: the model settings (λ's, penalty weights).
        schedule: the level schedule.
        same_batch_for_critic: the critic's repeats share one real batch (PACGAN).
        data: the batch source (its level is set before every iteration).
        device: training device.
        seed: seeds the objective's random generator (latents, interpolation weights).
        validator: validation on whole sets after each epoch (``validate`` mode), or None.
        start_check_at: track the best epoch after this fraction of a level's epochs.
    """

    ddp_find_unused_parameters = True  # a level uses only its own and the lower levels' layers

    def __init__(self, g: ProgressiveGenerator, d: ProgressiveDiscriminator, settings: PACGANSettings, schedule: LevelSchedule,
                 same_batch_for_critic: bool, data: SliceBatches, device: torch.device, seed: int,
                 validator: SliceValidator | None = None, start_check_at: float = 0.6) -> None:
        self.networks = {"G": g, "D": d}
        self.ema_network = "G"
        self.settings, self.schedule, self.data, self.device = settings, schedule, data, device
        self.same_batch_for_critic = same_batch_for_critic
        self.validator, self.start_check_at = validator, start_check_at
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + 1)
        if settings.lambda_meaning == "readme":
            self.lambda_real, self.lambda_fake = settings.lambda_cls_2, settings.lambda_cls_1
        else:
            self.lambda_real, self.lambda_fake = settings.lambda_cls_1, settings.lambda_cls_2
        self.level, self.alpha = -1, 1.0
        self.history: list[dict[str, Any]] = []  # one record per validation
        self.best: dict[int, dict[str, Any]] = {}  # level -> the best validation record
        self._snapshot: dict[str, Any] | None = None  # the current level's best weights (CPU copies)

    @property
    def phases(self) -> list[Phase]:  # type: ignore[override]
        level = max(self.level, 0)
        return [Phase("D", "D", self.schedule.critic_iterations[level], needs_batch=True, fresh_batch_each_repeat=not self.same_batch_for_critic),
                Phase("G", "G", 1, needs_batch=False)]

    # ------------------------------------------------------------- schedule
    def before_iteration(self, loop: Any) -> None:
        level = self.schedule.level_at(loop.rows_seen)
        if level != self.level:
            self._enter_level(loop, level)
        self.alpha = self.schedule.alpha_at(loop.rows_seen)
        self.data.set_level(level)

    def _enter_level(self, loop: Any, level: int) -> None:
        if self._snapshot is not None:
            self.restore_snapshot(loop)  # the new level grows from the chosen weights of the last one
        self._snapshot = None
        self.networks["D"].minibatch_std.reset_running()
        self.level = level

    def restore_snapshot(self, loop: Any) -> bool:
        """Load the current level's best weights (networks, optimisers, EMA) into the loop; False when there is none."""
        snap = self._snapshot
        if snap is None:
            return False
        for name, net in self.networks.items():
            net.load_state_dict(snap["networks"][name])
        for name, opt in loop.optimizers.items():
            opt.load_state_dict(snap["optimizers"][name])
        if loop.ema is not None and snap.get("ema") is not None:
            loop.ema.load_state_dict(snap["ema"])
        return True

    def after_iteration(self, loop: Any) -> None:
        if self.validator is None:
            return
        level = self.level
        start = self.schedule.starts[level]
        rows_before = loop.rows_seen - loop.last_iteration_rows
        done_before = max(0, rows_before - start) // self.schedule.n_train
        done = self.schedule.epochs_done(loop.rows_seen) if self.schedule.level_at(loop.rows_seen) == level else self.schedule.epochs[level]
        if done <= done_before:
            return
        g = loop.ema.shadow if loop.ema is not None else self.networks["G"]
        record = {"level": level, "size": self.schedule.sizes[level], "epoch": int(done), "rows_seen": int(loop.rows_seen), "alpha": self.alpha,
                  **self.validator.evaluate(g, self.networks["D"], level, self.alpha)}
        epochs = self.schedule.epochs[level]
        tracked = done > self.start_check_at * epochs or done == epochs
        record["tracked"] = tracked
        self.history.append(record)
        best = self.best.get(level)
        if tracked and (best is None or record["score"] > best["score"]):
            self.best[level] = record
            self._snapshot = {
                "networks": {name: _to_cpu_copy(net.state_dict()) for name, net in self.networks.items()},
                "optimizers": {name: _to_cpu_copy(opt.state_dict()) for name, opt in loop.optimizers.items()},
                "ema": _to_cpu_copy(loop.ema.state_dict()) if loop.ema is not None else None,
            }

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "history": copy.deepcopy(self.history), "best": {str(k): dict(v) for k, v in self.best.items()}, "snapshot": self._snapshot}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.level = int(state["level"])
        self.history = list(state["history"])
        self.best = {int(k): dict(v) for k, v in state["best"].items()}
        self._snapshot = state.get("snapshot")

    # ----------------------------------------------------------------- loss
    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.networks["G"].z_dim, generator=self.generator, device=self.device)

    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real, y = batch
        g, d = nets["G"], nets["D"]
        level, alpha = self.level, self.alpha
        if phase == "D":
            with torch.no_grad():
                fake = g(self._latents(real.shape[0]), y, level, alpha)
            raw_d = self.networks["D"]
            raw_d.minibatch_std.update_running = True  # the classifier's running batch statistic comes from real batches only
            try:
                real_score, real_logits = d(real, level, alpha, y)
            finally:
                raw_d.minibatch_std.update_running = False
            fake_score, fake_logits = d(fake, level, alpha, y)
            ce_real = F.cross_entropy(real_logits.float(), y)
            ce_fake = F.cross_entropy(fake_logits.float(), y)
            penalty = gradient_penalty(lambda t: raw_d(t, level, alpha, y)[0], real, fake, kind="two_sided", generator=self.generator)  # float32, autocast off
            real_score, fake_score = real_score.float(), fake_score.float()
            loss = (fake_score.mean() - real_score.mean() + self.lambda_real * ce_real + self.lambda_fake * ce_fake
                    + self.settings.gp_weight * penalty + self.settings.drift_weight * drift_penalty(real_score))
            return loss, {"D/real": real_score.mean().detach(), "D/fake": fake_score.mean().detach(), "D/gp": penalty.detach(),
                          "D/ce_real": ce_real.detach(), "D/ce_fake": ce_fake.detach(), "alpha": torch.tensor(alpha, device=self.device), "level": torch.tensor(float(level), device=self.device)}
        if phase == "G":
            fake = g(self._latents(real.shape[0]), y, level, alpha)
            score, logits = d(fake, level, alpha, y)
            ce = F.cross_entropy(logits.float(), y)
            return -score.float().mean() + self.settings.lambda_cls_1 * ce, {"G/ce": ce.detach()}
        raise ValueError(f"unknown phase {phase!r}")
