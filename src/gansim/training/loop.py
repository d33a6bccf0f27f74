"""The one training loop every GAN family runs through.

Per iteration, for each :class:`~gansim.training.objective.Phase` in order and
each of its repeats: fetch a batch (if the phase needs one), enable gradients
for the phase's network only, compute the objective's loss, step that
network's optimiser, then let the objective post-process (e.g. clamp). After
the iteration the EMA is updated. Every ``tick_rows`` rows the stats are
averaged (one device synchronisation per tick, not per step), checked for
NaN/Inf and written; every ``checkpoint_rows`` rows a checkpoint is saved.

Progress is counted in real rows seen by the whole job (all processes), so
schedules and checkpoints do not depend on the batch size or the number of GPUs.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gansim.config import OptimizerSettings, TrainingSettings, lr_factor
from gansim.errors import ConfigError, ModelFileError, TrainingDivergedError
from gansim.training.checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint
from gansim.training.cpu_heap import fix_mmap_threshold
from gansim.training.distributed import DistributedContext
from gansim.training.ema import EMA
from gansim.training.objective import BatchSource, Objective
from gansim.training.stats import StatsWriter

__all__ = ["TrainingLoop", "TrainingResult", "build_optimizer"]


def build_optimizer(settings: OptimizerSettings, params: Any) -> torch.optim.Optimizer:
    """Adam, RMSprop or SGD from its settings."""
    if settings.name == "adam":
        return torch.optim.Adam(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=settings.lr, alpha=settings.alpha, momentum=settings.momentum, weight_decay=settings.weight_decay)
    if settings.name == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    raise ConfigError(f"optimizer {settings.name!r} is not known; expected adam, rmsprop or sgd")


@dataclass
class TrainingResult:
    """What a finished (or resumed-and-finished) run reports."""

    rows_seen: int
    iterations: int
    wall_time_s: float
    last_stats: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None
    stopped_by: str = "total_rows"

    def manifest_entry(self, processes: int, config: dict[str, Any]) -> dict[str, Any]:
        """The facts every family's model manifest records under ``training``."""
        from gansim import __version__

        return {"rows_seen": self.rows_seen, "iterations": self.iterations, "wall_time_s": self.wall_time_s, "resumed_from": self.resumed_from,
                "stopped_by": self.stopped_by, "processes": processes, "config": config, "gansim_version": __version__}


class TrainingLoop:
    """Trains an :class:`Objective` on a :class:`BatchSource`.

    Args:
        objective: the family's networks and losses (networks already on ``device``).
        data: batches on ``device``; under DDP each process has its own shard.
        settings: run length, batch, ticks, checkpoints, EMA, mixed precision (``amp``: off, bf16, or fp16 with a gradient scaler per network).
        optim: optimiser settings per network name of ``objective.networks``.
        run_dir: where ``stats.jsonl`` and ``checkpoints/`` go.
        device: the training device.
        dist: the distributed context (world size 1 when not under torchrun).
        extra_state: plain data stored in every checkpoint (e.g. the resolved config).
        on_tick: called on the main process with each tick's stats record.
    """

    def __init__(
        self,
        objective: Objective,
        data: BatchSource,
        settings: TrainingSettings,
        optim: dict[str, OptimizerSettings],
        run_dir: Path,
        device: torch.device,
        dist: DistributedContext | None = None,
        extra_state: dict[str, Any] | None = None,
        on_tick: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.objective = objective
        self.data = data
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.device = device
        self.dist = dist or DistributedContext()
        self.extra_state = extra_state or {}
        self.on_tick = on_tick
        missing = [name for name in objective.networks if name not in optim]
        if missing:
            raise ConfigError(f"no optimiser settings for network(s) {missing}; expected keys {list(objective.networks)}")
        self.optim_settings = optim
        self.optimizers = {name: build_optimizer(optim[name], net.parameters()) for name, net in objective.networks.items()}
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in self.optimizers.items()}
        self.wrapped: dict[str, nn.Module] = {}
        for name, net in objective.networks.items():
            if self.dist.enabled and any(p.requires_grad for p in net.parameters()):
                ids = [device.index] if device.type == "cuda" else None
                self.wrapped[name] = DistributedDataParallel(net, device_ids=ids, find_unused_parameters=objective.ddp_find_unused_parameters)
            else:
                self.wrapped[name] = net
        self.amp_dtype, self.scalers = self._mixed_precision(settings.amp, device)
        # None: applied; else why not (not glibc, the user's environment sets it): nothing to warn about
        self.cpu_heap_note = fix_mmap_threshold(settings.cpu_mmap_threshold) if device.type == "cpu" and settings.cpu_mmap_threshold else None
        self.ema: EMA | None = None
        if objective.ema_network is not None and settings.ema_halflife_rows is not None:
            self.ema = EMA(objective.networks[objective.ema_network], settings.ema_halflife_rows, settings.ema_rampup)
        self.rows_seen = 0
        self.iterations = 0
        self.last_iteration_rows = 0  # rows the last iteration took (for objectives' after_iteration)
        self._stat_sums: dict[str, torch.Tensor] = {}
        self._stat_counts: dict[str, int] = {}
        self._tick_start_time = time.perf_counter()
        self._tick_start_rows = 0
        self._last_tick_rows = 0
        self._wall_before = 0.0
        self._run_start: float | None = None
        self._resumed_from: str | None = None

    # ----------------------------------------------------------------- state
    def _rank_state(self) -> dict[str, Any]:
        """What differs between processes: data position, RNG streams, the tick's pending stats."""
        return {
            "data": self.data.state_dict(),
            "objective_rng": self.objective.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "stat_sums": {k: v.detach().cpu() for k, v in self._stat_sums.items()},
            "stat_counts": dict(self._stat_counts),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly. A collective call under DDP (every process must call it)."""
        rank_state = self._rank_state()
        if self.dist.enabled:
            import torch.distributed as torch_dist

            ranks: list[Any] = [None] * self.dist.world_size
            torch_dist.all_gather_object(ranks, rank_state)  # internal job state, never data read from disk
        else:
            ranks = [rank_state]
        return {
            "rows_seen": self.rows_seen,
            "iterations": self.iterations,
            "last_tick_rows": self._last_tick_rows,
            "tick_start_rows": self._tick_start_rows,
            "wall_time_s": self._elapsed(),
            "networks": {name: net.state_dict() for name, net in self.objective.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "objective": self.objective.state_dict(),
            "ranks": ranks,
            "world_size": self.dist.world_size,
            "extra": self.extra_state,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        if state.get("world_size", 1) != self.dist.world_size:
            raise ConfigError(
                f"{source}: written by a job of {state.get('world_size')} process(es); resume it with the same number "
                f"(this job has {self.dist.world_size}) so the data order and the curve stay the same"
            )
        try:
            for name, net in self.objective.networks.items():
                net.load_state_dict(state["networks"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            for name, scaler in self.scalers.items():
                if name in (state.get("scalers") or {}):  # a run switched to fp16 on resume starts from a fresh scale
                    scaler.load_state_dict(state["scalers"][name])
            self.objective.load_state_dict(state.get("objective") or {})
        except (RuntimeError, KeyError, ValueError) as err:
            raise ModelFileError(f"{source}: does not match this run's networks or optimisers ({str(err).splitlines()[0]}); was the config changed?") from err
        self.rows_seen = int(state["rows_seen"])
        self.iterations = int(state["iterations"])
        self._last_tick_rows = int(state["last_tick_rows"])
        self._tick_start_rows = int(state["tick_start_rows"])
        self._wall_before = float(state["wall_time_s"])
        mine = state["ranks"][self.dist.rank]
        self.data.load_state_dict(mine["data"])
        self.objective.generator.set_state(mine["objective_rng"])
        torch.set_rng_state(mine["torch_rng"])
        self._stat_sums = {k: v.to(self.device) for k, v in mine["stat_sums"].items()}
        self._stat_counts = {k: int(v) for k, v in mine["stat_counts"].items()}

    def restore_latest(self) -> str:
        """Load the run's latest checkpoint; return its path."""
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise ConfigError(f"{self.run_dir}: --resume given but the run has no checkpoint to resume from")
        self.load_state_dict(load_checkpoint(ckpt), source=str(ckpt))
        self._resumed_from = str(ckpt)
        return str(ckpt)

    def _elapsed(self) -> float:
        return self._wall_before + (time.perf_counter() - self._run_start if self._run_start is not None else 0.0)

    def _check_weights_finite(self) -> None:
        """Refuse to checkpoint NaN/Inf weights: the last checkpoint must stay a good one."""
        bad = [f"{name}.{p_name}" for name, net in self.objective.networks.items() for p_name, p in net.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            last = latest_checkpoint(self.run_dir)
            raise TrainingDivergedError(
                f"training diverged: weights {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} became NaN/Inf by row {self.rows_seen}. "
                f"The last good checkpoint is kept ({last if last else 'none written yet'})." + _DIVERGED_HINT
            )

    # ------------------------------------------------------------------ run
    def run(self, *, resume: bool = False) -> TrainingResult:
        """Train until ``settings.total_rows`` rows were seen or ``max_wall_time_s`` has passed; resume from the latest checkpoint if asked.

        ``TrainingResult.stopped_by`` says which (``"total_rows"`` or ``"max_wall_time_s"``).
        """
        if resume and self._resumed_from is None:
            self.restore_latest()
        stats = StatsWriter(self.run_dir, resume_rows=self._last_tick_rows if self._resumed_from else None) if self.dist.is_main else None
        self._run_start = time.perf_counter()
        self._tick_start_time = self._run_start
        last: dict[str, float] = {}
        progress = _Progress(self.settings.total_rows, self.rows_seen, enabled=self.settings.progress and self.dist.is_main)
        try:
            with progress:
                done = self.rows_seen >= self.settings.total_rows
                out_of_time = not done and self._resumed_from is not None and self._out_of_time()  # a resumed run whose budget is spent
                if out_of_time and self.dist.is_main:
                    warnings.warn(
                        f"{self.run_dir}: the run has already trained {self._elapsed():.0f} s of its train.max_wall_time_s="
                        f"{self.settings.max_wall_time_s:g} s, so this resume takes no step; to continue, raise it "
                        f"(e.g. --set train.max_wall_time_s={2 * self.settings.max_wall_time_s:g})",  # type: ignore[operator]
                        stacklevel=2,
                    )
                while not done and not out_of_time:
                    before = self.rows_seen
                    self._iteration()
                    tick = _crossed(before, self.rows_seen, self.settings.tick_rows)
                    ckpt = _crossed(before, self.rows_seen, self.settings.checkpoint_rows)
                    # the time limit is checked every iteration of a single process (a clock read), and at ticks and
                    # every 64 iterations under DDP (a collective: every process must stop at the same iteration)
                    check_time = not self.dist.enabled or tick or self.iterations % 64 == 0
                    out_of_time = self.rows_seen < self.settings.total_rows and check_time and self._out_of_time()
                    done = self.rows_seen >= self.settings.total_rows or out_of_time
                    state = None
                    if (ckpt or done) and not tick:
                        # a checkpoint between ticks keeps the tick's pending stats, so a resumed run writes the same curve
                        self._check_weights_finite()
                        state = self.state_dict()
                    if tick or done:
                        last = self._flush_stats(stats, full_tick=tick)
                        progress.update(self.rows_seen, last)
                    if ckpt or done:
                        if state is None:
                            self._check_weights_finite()
                            state = self.state_dict()
                        if self.dist.is_main:
                            save_checkpoint(self.run_dir, self.rows_seen, state)
                            prune_checkpoints(self.run_dir, self.settings.keep_checkpoints)
                        self.dist.barrier()
        finally:
            if stats is not None:
                stats.close()
        stopped_by = "max_wall_time_s" if out_of_time else "total_rows"
        return TrainingResult(self.rows_seen, self.iterations, self._elapsed(), last, self._resumed_from, stopped_by)

    def _out_of_time(self) -> bool:
        """Whether ``max_wall_time_s`` has passed; every process gets the same answer (the mean of their clocks)."""
        if self.settings.max_wall_time_s is None:
            return False
        if not self.dist.enabled:
            return self._elapsed() >= self.settings.max_wall_time_s  # a clock read: no device synchronisation
        elapsed = torch.tensor([self._elapsed()], dtype=torch.float64, device=self.device)
        self.dist.all_reduce_mean_(elapsed)
        return float(elapsed.item()) >= self.settings.max_wall_time_s

    def _iteration(self) -> None:
        self.objective.before_iteration(self)
        rows_per_batch = self.data.batch_size * self.dist.world_size  # read after the hook: a schedule may change it
        batch: Any = None
        rows_before = self.rows_seen
        for phase in self.objective.phases:
            net_name = phase.network
            opt = self.optimizers[net_name]
            self._apply_schedule(net_name, opt)
            nets = {name: (self.wrapped[name] if name == net_name else self.objective.networks[name]) for name in self.objective.networks}
            for name, net in self.objective.networks.items():
                net.requires_grad_(name == net_name)
            for repeat in range(phase.repeats):
                if batch is None or (phase.needs_batch and (repeat == 0 or phase.fresh_batch_each_repeat)):
                    batch = self.data.next_batch()
                    self.rows_seen += rows_per_batch
                opt.zero_grad(set_to_none=True)
                with self._autocast():
                    loss, extra = self.objective.loss(phase.name, batch, nets)
                scaler = self.scalers.get(net_name)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    # fp16: the loss is scaled so small gradients do not flush to zero; a step whose
                    # gradients overflowed is skipped and the scale lowered (the loss still counts in the stats)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                self.objective.after_step(phase.name)
                self._accumulate(f"loss/{phase.name}", loss)
                for key, value in extra.items():
                    self._accumulate(key, value)
        for net in self.objective.networks.values():
            net.requires_grad_(True)
        self.iterations += 1
        if self.ema is not None:
            self.ema.update(self.objective.networks[self.objective.ema_network], self.rows_seen, self.rows_seen - rows_before)  # type: ignore[index]
        self.last_iteration_rows = self.rows_seen - rows_before
        self.objective.after_iteration(self)

    def _apply_schedule(self, name: str, opt: torch.optim.Optimizer) -> None:
        factor = lr_factor(self.optim_settings[name], self.rows_seen, self.settings.total_rows)
        for group, base in zip(opt.param_groups, self.base_lrs[name]):
            group["lr"] = base * factor

    def _mixed_precision(self, amp: str, device: torch.device) -> tuple[torch.dtype | None, dict[str, torch.amp.GradScaler]]:
        """The autocast dtype (None: float32 throughout) and, for fp16, one gradient scaler per trained network.

        Each network gets its own scaler because its optimiser steps on its own (several critic steps,
        then one generator step): a scaler's update belongs after the step it scaled.
        """
        if amp == "off":
            return None, {}
        if not torch.amp.is_autocast_available(device.type):
            warnings.warn(f"train.amp={amp!r}: autocast is not available on {device.type}; training in float32", stacklevel=3)
            return None, {}
        if amp == "bf16":
            return torch.bfloat16, {}
        trained = [name for name, net in self.objective.networks.items() if any(p.requires_grad for p in net.parameters())]
        return torch.float16, {name: torch.amp.GradScaler(device.type) for name in trained}

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _accumulate(self, key: str, value: torch.Tensor) -> None:
        value = value.detach().float()
        if key in self._stat_sums:
            self._stat_sums[key] += value
            self._stat_counts[key] += 1
        else:
            self._stat_sums[key] = value.clone()
            self._stat_counts[key] = 1

    def _flush_stats(self, writer: StatsWriter | None, full_tick: bool = True) -> dict[str, float]:
        """Average the tick's scalars (one sync), stop on NaN/Inf, write the record."""
        keys = sorted(self._stat_sums)
        if not keys:
            return {}
        means = torch.stack([self._stat_sums[k] / self._stat_counts[k] for k in keys])
        self.dist.all_reduce_mean_(means)
        values = means.cpu().tolist()
        now = time.perf_counter()
        record: dict[str, Any] = {"rows_seen": self.rows_seen, "iterations": self.iterations}
        record.update({k: float(v) for k, v in zip(keys, values)})
        bad = [k for k, v in zip(keys, values) if not math.isfinite(v)]
        if bad:
            last = latest_checkpoint(self.run_dir)
            raise TrainingDivergedError(
                f"training diverged: {', '.join(bad)} became NaN/Inf between rows {self._tick_start_rows} and {self.rows_seen}. "
                f"The last good checkpoint is kept ({last if last else 'none written yet'})." + _DIVERGED_HINT
            )
        elapsed = max(now - self._tick_start_time, 1e-9)
        record["rows_per_s"] = (self.rows_seen - self._tick_start_rows) / elapsed
        for name, opt in self.optimizers.items():
            record[f"lr/{name}"] = opt.param_groups[0]["lr"]
        self._stat_sums.clear()
        self._stat_counts.clear()
        self._tick_start_time, self._tick_start_rows = now, self.rows_seen
        if full_tick:
            self._last_tick_rows = self.rows_seen
        if writer is not None:
            writer.write(record)
        if self.on_tick is not None and self.dist.is_main:
            self.on_tick(record)
        return {k: v for k, v in record.items() if isinstance(v, float)}


_DIVERGED_HINT = (
    " Lower the learning rates (e.g. --set optim.D.lr=1e-4 --set optim.G.lr=1e-4, allowed with --resume),"
    " raise the penalty weight or check the data, then resume or restart."
)


def _crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in (before, after]."""
    return after // every > before // every


class _Progress:
    """A rich progress bar on a terminal; a plain line per tick elsewhere (CI logs)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self.start = start
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.console import Console

        self._console = Console(stderr=True)
        if self._console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=self._console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("train", total=self.total, completed=self.start, info="")
        return self

    def update(self, rows: int, stats: dict[str, float]) -> None:
        if not self.enabled:
            return
        info = "  ".join(f"{k.split('/')[-1] if k.startswith('loss/') else k}={v:.4g}" for k, v in stats.items() if k.startswith("loss/") or k == "rows_per_s")
        if self._bar is not None:
            self._bar.update(self._task, completed=min(rows, self.total), info=info)
        else:
            self._console.print(f"rows {rows:>12,d}/{self.total:,d}  {info}", highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
