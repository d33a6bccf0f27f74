"""Training a 3-D CycleGAN on a volume data set: ``gansim train DATA -o run/`` (a folder with trainA/ and trainB/).

Every training volume is read in the canonical RAS+ frame and scaled to [-1, 1] by its own
percentiles (:class:`~gansim.io.volumes.VolumeScaling`); random patches (``data.patch``, a shape
the generators accept), mostly centred in the head mask, train both generators and both critics
in the one loop. The run directory receives ``config.json``,
``data.json`` (files, pairing, checksums), ``stats.jsonl``, ``checkpoints/``, ``views/`` (one test
volume translated at the first tick after every checkpoint, for the report's views of training), and at the end
``model/`` and ``report/`` (the test pairs translated both ways, scored against their partners).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.models.cyclegan import CycleGANObjective, CycleGenerators, CycleLossWeights, PatchCritics, VolumePatches
from gansim.models.cyclegan_config import CycleGANConfig
from gansim.models.cyclegan_model import save_cyclegan
from gansim.models.cyclegan_nets import build_cyclegan_networks
from gansim.training.device import resolve_device
from gansim.training.distributed import DistributedContext, run_as_job
from gansim.training.loop import TrainingLoop
from gansim.training.run_dir import open_run_dir

__all__ = ["train_cyclegan", "check_patch"]


def check_patch(cfg: CycleGANConfig) -> tuple[int, ...]:
    """The generators' required multiple; a training patch or window the networks cannot take is an error naming valid ones.

    The patch must also reach the smallest size both the generators and the critic accept (the
    critic needs at least one logit); the window, the generators' smallest.
    """
    from gansim.models.volume_plan import shape_rule, valid_shapes_near

    rule = shape_rule(cfg.model)
    for name, shape, training in (("data.patch", cfg.data.patch, True), ("inference.window", cfg.inference.window, False)):
        if shape is None or rule.valid(shape, training=training):
            continue
        near = ", ".join("×".join(map(str, o.shape)) for o in valid_shapes_near(shape, cfg.model, k=2, training=training))
        floor = rule.training_minimum if training else rule.minimum
        raise ConfigError(f"{name} {tuple(shape)}: each axis must be a multiple of {rule.multiple} and at least {floor} for this "
                          f"{'generator and critic' if training else 'generator'}; valid shapes near it: {near}")
    return rule.multiple


@dataclass
class _Side:
    """One domain's training volumes: as read, scaled to [-1, 1], their head masks and their own scalings."""

    volumes: list[Any] = field(default_factory=list)
    scaled: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    scalings: list[Any] = field(default_factory=list)


def _read_split(paths: list[tuple[Path | None, Path | None]], percentiles: tuple[float, float]) -> tuple[_Side, _Side, list[dict[str, Any]]]:
    from gansim.io.volumes import VolumeScaling, foreground_mask, read_volume

    side_a, side_b, scalings = _Side(), _Side(), []
    for a_path, b_path in paths:
        for path, side in ((a_path, side_a), (b_path, side_b)):
            if path is None:
                continue
            volume = read_volume(path)
            mask = foreground_mask(volume.data, source=str(path))
            scaling = VolumeScaling.fit(volume.data, masks=mask, percentiles=percentiles, source=str(path))
            side.volumes.append(volume)
            side.scaled.append(scaling.forward(volume.data))
            side.masks.append(mask)
            side.scalings.append(scaling)
            scalings.append({"file": str(path), **scaling.to_dict()})
    return side_a, side_b, scalings


def train_cyclegan(data: str | Path, cfg: CycleGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train a 3-D CycleGAN on ``data`` (trainA/, trainB/, optional testA/, testB/) into ``run_dir``; return the model directory."""
    data, run_dir = Path(data), Path(run_dir)
    return run_as_job(cfg.train.device, log, lambda dist, job_log: _train(data, cfg, run_dir, dist, resume=resume, force=force, log=job_log))


def _train(data: Path, cfg: CycleGANConfig, run_dir: Path, dist: DistributedContext, *, resume: bool, force: bool, log: Any) -> Path:
    from gansim.io.volumes import VolumeScaling, check_same_grid, find_volume_sets, pair_volumes, resolve_pairs_csv
    from gansim.models.model_file import sha256_of_file

    window = tuple(cfg.inference.window or cfg.data.patch)
    multiple = check_patch(cfg)
    open_run_dir(run_dir, data, cfg.model_dump(mode="json"), dist, resume=resume, force=force, frozen=("family", "data", "model", "loss"))
    sets = find_volume_sets(data)
    csv = resolve_pairs_csv(data, cfg.data.pairs_csv)
    train_pairs = pair_volumes(sets["train"]["A"], sets["train"]["B"], cfg.data.pairing, csv, source=str(data / "train"), split="train")
    test_pairs = _test_pairs(sets, cfg, csv, data, log)  # read now: a bad test set stops the run before training, not after
    paired = cfg.data.pairing != "unpaired"
    side_a, side_b, scalings = _read_split(train_pairs, cfg.data.percentiles)
    vols_a, vols_b = side_a.volumes, side_b.volumes
    if paired:
        for va, vb in zip(vols_a, vols_b):
            check_same_grid(va, vb)
    domain_scaling = {
        "A": VolumeScaling.mean_of(side_a.scalings, source=str(data / "trainA")).to_dict(),
        "B": VolumeScaling.mean_of(side_b.scalings, source=str(data / "trainB")).to_dict(),
    }
    data_info = {
        "path": str(data),
        "pairing": cfg.data.pairing,
        "paired": paired,
        "train": [{"A": str(a) if a else None, "B": str(b) if b else None} for a, b in train_pairs],
        "sha256": {str(p): sha256_of_file(p) for pair in train_pairs for p in pair if p is not None},
        "scalings": scalings,
        "shapes": {"A": [list(v.shape) for v in vols_a], "B": [list(v.shape) for v in vols_b]},
        "required_multiple": list(multiple),
    }
    if resume and (run_dir / "data.json").is_file():
        old = json.loads((run_dir / "data.json").read_text())
        if old.get("sha256") != data_info["sha256"]:
            raise DataError(f"{data}: holds other volumes than the ones this run was trained on; resume with the same data or start a new run")
    if dist.is_main:
        (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
        (run_dir / "data.json").write_text(json.dumps(data_info, indent=2) + "\n")
    dist.barrier()
    log(f"data: {data} ({len(vols_a)} A and {len(vols_b)} B training volumes, {'paired' if paired else 'unpaired'}); patches {cfg.data.patch}, "
        f"generator multiple {multiple}")

    device = resolve_device(cfg.train.device, local_rank=dist.local_rank if dist.enabled else None)
    torch.manual_seed(cfg.train.seed)
    nets = build_cyclegan_networks(cfg.model, seed=cfg.train.seed)
    generators = CycleGenerators(nets["G_AB"], nets["G_BA"], checkpointing=cfg.loss.gradient_checkpointing).to(device)
    critics = PatchCritics(nets["D_A"], nets["D_B"]).to(device)
    weights = CycleLossWeights(cfg.loss.loss, cfg.loss.lambda_cycle, cfg.loss.lambda_identity, cfg.loss.lambda_paired)
    patches = VolumePatches(side_a.scaled, side_b.scaled, paired, cfg.data.patch, cfg.train.batch_size, cfg.train.seed, device, dist.rank, dist.world_size,
                            foreground_fraction=cfg.data.foreground_fraction, source=str(data), masks_a=side_a.masks, masks_b=side_b.masks)
    objective = CycleGANObjective(generators, critics, weights, device, cfg.train.seed, pool_size=cfg.loss.pool_size)
    views = _ViewRecorder(run_dir / "views", test_pairs[0] if test_pairs else None, window, cfg, device) if dist.is_main else None
    loop = TrainingLoop(objective, patches, cfg.train, cfg.optim, run_dir, device, dist=dist, extra_state={"config": cfg.model_dump(mode="json")},
                        on_tick=(lambda record: views.maybe(loop, record)) if views is not None else None)
    t0 = time.perf_counter()
    result = loop.run(resume=resume)
    log(f"trained on {result.rows_seen:,d} patches ({result.iterations:,d} iterations) in {time.perf_counter() - t0:.0f} s")
    g = loop.ema.shadow if loop.ema is not None else generators
    extra = {
        "sampling_weights": "ema" if loop.ema is not None else "last",
        "training": {"data": data_info, **result.manifest_entry(dist.world_size, cfg.model_dump(mode="json"))},
    }
    model_dir = run_dir / "model"
    if dist.is_main:
        # 'paired' says whether the objective used the pairs (the paired L1); training.data.paired whether the data were paired
        save_cyclegan(model_dir, g.g_ab, g.g_ba, cfg.model, paired=paired and cfg.loss.lambda_paired > 0, percentiles=cfg.data.percentiles,
                      domain_scaling=domain_scaling, inference=cfg.inference, window=window, extra=extra, force=True)  # type: ignore[arg-type]
        if cfg.train.evaluate and test_pairs:
            from gansim.models.cyclegan_evaluate import evaluate_cyclegan

            evaluate_cyclegan(model_dir, run_dir, test_pairs, views.snapshots if views else [], log=log)
    dist.barrier()
    return model_dir


def _test_pairs(sets: dict[str, Any], cfg: CycleGANConfig, csv: Path | None, data: Path, log: Any) -> list[tuple[Path | None, Path | None]]:
    """The test pairs the run is scored on: by the pairs csv when it has a split column, else by name (:func:`pair_volumes`).

    Unpaired training still scores a paired test set (the built-in ``--unpaired`` data keep it
    paired); a test set whose A and B counts differ cannot be scored, and the run says so.
    """
    import warnings

    from gansim.io.volumes import pair_volumes

    if "test" not in sets:
        return []
    a, b = sets["test"]["A"], sets["test"]["B"]
    if cfg.data.pairing == "unpaired" and len(a) != len(b):
        log(f"{data / 'test'}: {len(a)} A and {len(b)} B volumes cannot be paired by name; the run is not scored on them")
        return []
    with warnings.catch_warnings(record=True) as caught:  # name pairing warns when names differ: pass it on through the log
        warnings.simplefilter("always")
        pairs = pair_volumes(a, b, "csv" if cfg.data.pairing == "csv" else "name", csv, source=str(data / "test"), split="test")
    for w in caught:
        log(f"warning: {w.message}")
    return pairs


class _ViewRecorder:
    """At the first stats tick at or after every ``checkpoint_rows`` patches, the current (averaged) generators
    translate the first test volume; the outputs are kept in ``RUN/views/`` and shown in the report."""

    def __init__(self, folder: Path, pair: tuple[Path | None, Path | None] | None, window: tuple[int, ...], cfg: CycleGANConfig, device: torch.device) -> None:
        self.folder, self.window, self.cfg, self.device = folder, window, cfg, device
        # a resumed run keeps the views of its earlier checkpoints
        self.snapshots: list[tuple[int, Path]] = sorted((int(p.stem.split("-")[1]), p) for p in folder.glob("a2b-*.npy")) if folder.is_dir() else []
        self.pair = pair
        # the last checkpoint boundary a view was taken for (a resumed run continues from its own views)
        every = cfg.train.checkpoint_rows
        self._done = max((rows // every * every for rows, _ in self.snapshots), default=0)

    def maybe(self, loop: Any, record: dict[str, Any]) -> None:
        boundary = record["rows_seen"] // self.cfg.train.checkpoint_rows * self.cfg.train.checkpoint_rows
        if self.pair is None or self.pair[0] is None or boundary <= self._done:
            return
        self._done = boundary
        from gansim.io.volumes import VolumeScaling, read_volume
        from gansim.models.volume_inference import translate_volume

        volume = read_volume(self.pair[0])
        scaling = VolumeScaling.fit(volume.data, percentiles=self.cfg.data.percentiles, source=str(self.pair[0]))
        g = loop.ema.shadow if loop.ema is not None else loop.objective.networks["G"]
        was = g.training
        g.eval()
        try:
            out = translate_volume(g.g_ab, scaling.forward(volume.data), self.window, device=self.device)
        finally:
            g.train(was)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"a2b-{record['rows_seen']:012d}.npy"
        np.save(path, scaling.inverse(out).astype(np.float32))
        self.snapshots.append((int(record["rows_seen"]), path))
