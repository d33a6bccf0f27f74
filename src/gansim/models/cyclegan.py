"""The 3-D CycleGAN's training maths in the one loop: random patches, the image pool, the losses.

Per iteration (Zhu et al. 2017's order): one step of both generators, then one step of both
critics on the generators' last images drawn through an image pool.

- generators: ``adv(D_B(G_AB(a))) + adv(D_A(G_BA(b)))``
  ``+ λ_cycle·(|G_BA(G_AB(a)) − a| + |G_AB(G_BA(b)) − b|)``
  ``+ λ_identity·λ_cycle·(|G_AB(b) − b| + |G_BA(a) − a|)``
  ``+ λ_paired·(|G_AB(a) − b| + |G_BA(b) − a|)`` (paired, co-registered data only),
  means over voxels; ``adv`` is least squares (LSGAN, target 1) or the hinge generator loss;
- critics: ``½·(D(real) → 1, D(pooled fake) → 0)`` in least squares, or the hinge loss.

Both generators are one module (:class:`CycleGenerators`) and both critics another
(:class:`PatchCritics`), so each phase trains one network through one forward call, which is
what DistributedDataParallel needs to synchronise their gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from gansim.errors import DataError
from gansim.training.objective import BatchSource, Objective, Phase

__all__ = ["ImagePool", "CycleGenerators", "PatchCritics", "CycleGANObjective", "VolumePatches", "CycleLossWeights"]


class ImagePool:
    """Shrivastava et al.'s history of generated images: the critic sees older fakes too.

    While fewer than ``size`` images are stored each new one is kept and returned; after that, a
    new image is returned as it is with probability ½, otherwise it replaces a random stored one,
    which is returned instead. Draws come from the objective's generator, and the stored images
    are part of the objective's state, so a resumed run draws the same.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            draws = torch.rand(2, generator=generator, device=generator.device).cpu()
            if float(draws[0]) < 0.5:
                slot = min(int(float(draws[1]) * self.size), self.size - 1)
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": torch.stack(self.images).cpu() if self.images else None}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.size = int(state["size"])
        stored = state.get("images")
        self.images = [] if stored is None else [t.to(device) for t in stored]


class CycleGenerators(nn.Module):
    """``G_AB`` and ``G_BA`` as one module; ``forward(a, b, identity)`` gives every image a generator step needs.

    With ``checkpointing``, each generator pass is recomputed in the backward pass instead of
    keeping its activations (less memory for one more forward).
    """

    def __init__(self, g_ab: nn.Module, g_ba: nn.Module, checkpointing: bool = False) -> None:
        super().__init__()
        self.g_ab, self.g_ba, self.checkpointing = g_ab, g_ba, checkpointing

    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(net, x, use_reentrant=False)
        return net(x)

    def forward(self, a: torch.Tensor, b: torch.Tensor, identity: bool = True) -> dict[str, torch.Tensor]:
        fake_b, fake_a = self._run(self.g_ab, a), self._run(self.g_ba, b)
        out = {"fake_b": fake_b, "fake_a": fake_a, "rec_a": self._run(self.g_ba, fake_b), "rec_b": self._run(self.g_ab, fake_a)}
        if identity:
            out["id_b"], out["id_a"] = self._run(self.g_ab, b), self._run(self.g_ba, a)
        return out


class PatchCritics(nn.Module):
    """``D_A`` and ``D_B`` as one module: ``forward(a, b) -> (logits of a under D_A, logits of b under D_B)``."""

    def __init__(self, d_a: nn.Module, d_b: nn.Module) -> None:
        super().__init__()
        self.d_a, self.d_b = d_a, d_b

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d_a(a), self.d_b(b)


class CycleLossWeights:
    """The loss weights and kind (plain data; see the module docstring)."""

    def __init__(self, loss: str = "lsgan", cycle: float = 10.0, identity: float = 0.5, paired: float = 0.0) -> None:
        if loss not in ("lsgan", "hinge"):
            raise ValueError(f"loss {loss!r}: expected 'lsgan' or 'hinge'")
        self.loss, self.cycle, self.identity, self.paired = loss, cycle, identity, paired


def _generator_adversarial(kind: str, logits: torch.Tensor) -> torch.Tensor:
    if kind == "lsgan":
        return F.mse_loss(logits, torch.ones_like(logits))
    return -logits.mean()


def _critic_adversarial(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "lsgan":
        return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


class CycleGANObjective(Objective):
    """Phases ``G`` (both generators) and ``D`` (both critics, on pooled fakes) on batches ``(a, b)`` of patches ``(B, C, X, Y, Z)`` in [-1, 1]."""

    def __init__(self, generators: CycleGenerators, critics: PatchCritics, weights: CycleLossWeights, device: torch.device, seed: int, pool_size: int = 50) -> None:
        self.networks = {"G": generators, "D": critics}
        self.phases = [Phase("G", "G", 1, needs_batch=True), Phase("D", "D", 1, needs_batch=False)]
        self.ema_network = "G"
        self.weights, self.device = weights, device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed + 1)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None

    def loss(self, phase: str, batch: Any, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        a, b = batch
        w = self.weights
        if phase == "G":
            out = nets["G"](a, b, identity=w.identity > 0)
            logits_a, logits_b = nets["D"](out["fake_a"], out["fake_b"])
            adversarial = _generator_adversarial(w.loss, logits_b) + _generator_adversarial(w.loss, logits_a)
            cycle = F.l1_loss(out["rec_a"], a) + F.l1_loss(out["rec_b"], b)
            loss = adversarial + w.cycle * cycle
            extra = {"G/adversarial": adversarial.detach(), "G/cycle": cycle.detach()}
            if w.identity > 0:
                identity = F.l1_loss(out["id_b"], b) + F.l1_loss(out["id_a"], a)
                loss = loss + w.identity * w.cycle * identity
                extra["G/identity"] = identity.detach()
            if w.paired > 0:
                paired = F.l1_loss(out["fake_b"], b) + F.l1_loss(out["fake_a"], a)
                loss = loss + w.paired * paired
                extra["G/paired_l1"] = paired.detach()
            self._fakes = (out["fake_a"].detach(), out["fake_b"].detach())
            return loss, extra
        if phase == "D":
            if self._fakes is None:
                raise RuntimeError("the critics' step needs the generators' step first (phase order G, D)")
            fake_a = self.pool_a.query(self._fakes[0], self.generator)
            fake_b = self.pool_b.query(self._fakes[1], self.generator)
            real_logits_a, real_logits_b = nets["D"](a, b)
            fake_logits_a, fake_logits_b = nets["D"](fake_a, fake_b)
            loss_a = _critic_adversarial(w.loss, real_logits_a, fake_logits_a)
            loss_b = _critic_adversarial(w.loss, real_logits_b, fake_logits_b)
            return loss_a + loss_b, {"D/A": loss_a.detach(), "D/B": loss_b.detach()}
        raise ValueError(f"unknown phase {phase!r}")

    def state_dict(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.pool_a.load_state_dict(state["pool_a"], self.device)
            self.pool_b.load_state_dict(state["pool_b"], self.device)


class VolumePatches(BatchSource):
    """Random 3-D patches ``(a (B, 1, *patch), b (B, 1, *patch))`` from volumes in [-1, 1], resumable exactly.

    Paired data take the same patch of a subject's A and B volumes (co-registered); unpaired
    data draw A and B independently. A patch is centred on a foreground voxel with probability
    ``foreground_fraction``, else anywhere (foreground: the given head masks, from
    :func:`gansim.io.volumes.foreground_mask` of the raw volumes; without masks, the voxels above
    ``foreground_level``); volumes smaller than the patch are padded with their background value.
    Each process of a DDP job has its own random stream.

    Args:
        a_volumes, b_volumes: arrays (X, Y, Z) in [-1, 1] (any shapes).
        paired: A and B volume ``i`` belong together.
        patch: patch shape.
        batch_size: patches per batch for this process.
        seed: random seed (with the rank).
        masks_a, masks_b: per volume, (X, Y, Z) booleans of its foreground (its head), or None.
    """

    def __init__(self, a_volumes: Sequence[np.ndarray], b_volumes: Sequence[np.ndarray], paired: bool, patch: tuple[int, int, int], batch_size: int,
                 seed: int, device: torch.device, rank: int = 0, world_size: int = 1, foreground_fraction: float = 0.9,
                 foreground_level: float = -0.95, source: str = "data", masks_a: Sequence[np.ndarray] | None = None,
                 masks_b: Sequence[np.ndarray] | None = None) -> None:
        if not a_volumes or not b_volumes:
            raise DataError(f"{source}: no training volumes in A or B")
        if paired and len(a_volumes) != len(b_volumes):
            raise DataError(f"{source}: paired training needs as many A as B volumes, got {len(a_volumes)} and {len(b_volumes)}")
        self.patch = tuple(int(p) for p in patch)
        self.batch_size, self.paired, self.device = batch_size, paired, device
        self.foreground_fraction = foreground_fraction
        self.a = [self._fit(v) for v in a_volumes]
        self.b = [self._fit(v) for v in b_volumes]
        if paired:
            for i, (x, y) in enumerate(zip(self.a, self.b)):
                if x.shape != y.shape:
                    raise DataError(f"{source}: pair {i} has A of shape {x.shape} and B of shape {y.shape}; paired volumes must share their grid")
        # foreground voxels as flat indices (a subsample bounds the memory), per volume
        self.fg_a = self._foregrounds(a_volumes, masks_a, foreground_level, f"{source} (A)")
        self.fg_b = self._foregrounds(b_volumes, masks_b, foreground_level, f"{source} (B)")
        self.rng = np.random.default_rng([seed, rank, 31])

    def _fit(self, volume: np.ndarray, fill: float | None = None) -> np.ndarray:
        """``volume`` padded (with ``fill``, default its minimum) to at least the patch on every axis."""
        volume = np.asarray(volume, dtype=bool if fill is False else np.float32)
        pads = [(max(0, p - s) // 2, max(0, p - s) - max(0, p - s) // 2) for s, p in zip(volume.shape, self.patch)]
        if any(lo or hi for lo, hi in pads):
            volume = np.pad(volume, pads, mode="constant", constant_values=volume.min() if fill is None else fill)
        return volume

    def _foregrounds(self, volumes: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None, level: float, source: str) -> list[np.ndarray]:
        """Per volume, the flat indices (into the padded volume) of its foreground voxels."""
        if masks is None:
            return [self._subsample(np.flatnonzero(self._fit(v).ravel() > level)) for v in volumes]
        if len(masks) != len(volumes):
            raise DataError(f"{source}: {len(masks)} foreground masks for {len(volumes)} volumes")
        out = []
        for i, (volume, mask) in enumerate(zip(volumes, masks)):
            if np.shape(mask) != np.shape(volume):
                raise DataError(f"{source}: volume {i} has shape {np.shape(volume)} but its foreground mask {np.shape(mask)}")
            out.append(self._subsample(np.flatnonzero(self._fit(mask, fill=False).ravel())))
        return out

    @staticmethod
    def _subsample(flat: np.ndarray, limit: int = 200_000) -> np.ndarray:
        """At most about ``limit`` indices, evenly spread (bounds the memory of large volumes)."""
        if len(flat) > limit:
            flat = flat[:: len(flat) // limit + 1]
        return flat

    def _corner(self, shape: tuple[int, ...], foreground: np.ndarray) -> tuple[int, int, int]:
        if len(foreground) and self.rng.random() < self.foreground_fraction:
            centre = np.unravel_index(foreground[self.rng.integers(len(foreground))], shape)
        else:
            centre = tuple(int(self.rng.integers(s)) for s in shape)
        return tuple(int(min(max(c - p // 2, 0), s - p)) for c, p, s in zip(centre, self.patch, shape))  # type: ignore[return-value]

    def _cut(self, volume: np.ndarray, corner: tuple[int, int, int]) -> np.ndarray:
        x, y, z = corner
        px, py, pz = self.patch
        return volume[x : x + px, y : y + py, z : z + pz]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        a_patches, b_patches = [], []
        for _ in range(self.batch_size):
            i = int(self.rng.integers(len(self.a)))
            corner = self._corner(self.a[i].shape, self.fg_a[i])
            a_patches.append(self._cut(self.a[i], corner))
            if self.paired:
                b_patches.append(self._cut(self.b[i], corner))
            else:
                j = int(self.rng.integers(len(self.b)))
                b_patches.append(self._cut(self.b[j], self._corner(self.b[j].shape, self.fg_b[j])))
        a = torch.from_numpy(np.stack(a_patches)[:, None]).to(self.device)
        b = torch.from_numpy(np.stack(b_patches)[:, None]).to(self.device)
        return a, b

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
