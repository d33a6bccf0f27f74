"""Training a PACGAN on labelled slices: ``gansim train DATA_DIR -o run/`` (a folder in PACGAN's layout).

The run directory receives ``config.json`` (resolved), ``data.json`` (file, checksum, classes, the
split with its fold), ``stats.jsonl``, ``validation.jsonl`` (validate mode: the score after every
epoch), ``checkpoints/`` and, at the end, ``model/`` and ``report/``.

Modes (``validation.mode``, PACGAN's VALIDATE / TESTING):

- ``validate``: the training images are split by subject (stratified group k-fold, the fold in
  ``data.fold``); the model trains on the other folds, the validation fold scores every epoch,
  each level continues from its best epoch's weights and the model file holds the last level's
  best. The manifest records the best epoch of every level.
- ``test``: trains on all training images, each level for the best epochs of a validate run
  (``validation.best_from``) or ``validation.best_epochs``; the report classifies the test set.
- ``none``: as ``validate`` without tracking; the model file holds the final weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.models.model_file import sha256_of_file
from gansim.models.pacgan import LevelSchedule, PACGANObjective, SliceBatches, SliceValidator
from gansim.models.pacgan_config import PACGANConfig, PACGANSettings
from gansim.models.pacgan_model import build_networks, save_pacgan
from gansim.training.run_dir import open_run_dir
from gansim.training.device import resolve_device
from gansim.training.distributed import DistributedContext, run_as_job
from gansim.training.loop import TrainingLoop

__all__ = ["train_pacgan", "best_epochs_of"]


def best_epochs_of(path: str | Path) -> list[int]:
    """The best epoch of every level recorded by a validate run (its directory or its model directory)."""
    from gansim.models.model_file import read_manifest

    path = Path(path)
    model_dir = path / "model" if (path / "model" / "manifest.json").is_file() else path
    manifest = read_manifest(model_dir)
    training = manifest.get("training") or {}
    if training.get("mode") != "validate":
        raise ConfigError(f"{model_dir}: a {training.get('mode')!r}-mode run; best epochs come from a validate run (validation.mode 'validate')")
    if training.get("stopped_by") != "total_rows":
        raise ConfigError(f"{model_dir}: the validate run stopped early ({training.get('stopped_by')}), so its later levels have no best epoch; "
                          "finish it with --resume, or give validation.best_epochs")
    try:
        epochs = [int(e) for e in manifest["training"]["best_epochs"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{model_dir}: its manifest records no best epochs per level (training.best_epochs); give a validate run's directory") from err
    if any(e < 1 for e in epochs):
        raise ConfigError(f"{model_dir}: best epochs {epochs} must all be >= 1")
    return epochs


def _resolve_settings(cfg: PACGANConfig, images: np.ndarray, labels: np.ndarray, source: str) -> tuple[PACGANSettings, list[str]]:
    """The model settings with channels and classes taken from the data, checked against the config."""
    n, c, h, w = images.shape
    settings = cfg.model
    if settings.channels is not None and settings.channels != c:
        raise ConfigError(f"{source}: images have {c} channel(s); the config says model.channels={settings.channels}")
    k = int(labels.max()) + 1
    present = np.unique(labels)
    if len(present) != k:
        missing = sorted(set(range(k)) - set(present.tolist()))
        raise DataError(f"{source}: labels run 0..{k - 1} but class(es) {missing} have no image; classes must be numbered 0..K-1")
    if k < 2:
        raise DataError(f"{source}: every image has label {int(present[0])}; a classifier needs at least 2 classes")
    if settings.num_classes is not None and settings.num_classes != k:
        raise ConfigError(f"{source}: the labels have {k} classes; the config says model.num_classes={settings.num_classes}")
    names = cfg.data.class_names or [str(i) for i in range(k)]
    if len(names) != k:
        raise ConfigError(f"data.class_names has {len(names)} names for {k} classes")
    return settings.model_copy(update={"channels": c, "num_classes": k}), list(names)


def _to_image_size(images: np.ndarray, size: int, source: str, log: Any) -> np.ndarray:
    """Square images of side ``size``: larger ones (by a power of 2) are downsampled, others refused."""
    from gansim.io.slices import downsample

    h, w = images.shape[-2:]
    if h != w:
        raise DataError(f"{source}: slices are {h}×{w} pixels; the progressive networks need square images")
    if h == size:
        return images
    if h > size and h % size == 0 and (h // size) & (h // size - 1) == 0:
        log(f"{source}: {h}×{w} slices downsampled to {size}×{size} (model.image_size)")
        return downsample(images, size)
    raise DataError(f"{source}: slices are {h}×{w} pixels; model.image_size is {size} (give images of that side, or a power-of-2 multiple of it)")


def train_pacgan(data: str | Path, cfg: PACGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train a PACGAN on a PACGAN-layout folder (or NIfTI file with labels.csv beside it) into ``run_dir``; return the model directory."""
    data, run_dir = Path(data), Path(run_dir)
    return run_as_job(cfg.train.device, log, lambda dist, job_log: _train(data, cfg, run_dir, dist, resume=resume, force=force, log=job_log))


def _train(data: Path, cfg: PACGANConfig, run_dir: Path, dist: DistributedContext, *, resume: bool, force: bool, log: Any) -> Path:
    from gansim.data.subject_split import stratified_group_split, subject_hashes
    from gansim.io.slices import fit_intensity_scaling, read_slice_set

    # the level schedule and the mode decide where in the run a checkpoint stands: they cannot change on resume either
    open_run_dir(run_dir, data, cfg.model_dump(mode="json"), dist, resume=resume, force=force, frozen=("family", "data", "model", "schedule", "validation"))
    mode = cfg.validation.mode
    slices = read_slice_set(data, cfg.data.labels, image_file=cfg.data.image_file, require_labels=True, require_subjects=mode != "test")
    source = slices.source
    images = _to_image_size(slices.images, cfg.model.image_size, source, log)
    if slices.labels is None:  # read with require_labels: cannot happen, but never index None
        raise DataError(f"{slices.source}: no labels")
    labels = slices.labels
    settings, class_names = _resolve_settings(cfg, images, labels, source)

    test_set: tuple[np.ndarray | None, np.ndarray | None, str, np.ndarray | None] = (None, None, "test", None)
    if mode == "test":
        # read (and check against the training subjects) before training, not after hours of it
        test_set = _read_test_set(cfg, settings.image_size, log, slices.subjects)
        train_idx, val_idx = np.arange(len(labels)), np.zeros(0, dtype=np.int64)
        epochs = cfg.validation.best_epochs or (best_epochs_of(cfg.validation.best_from) if cfg.validation.best_from else None)
        if epochs is None:
            raise ConfigError("validation.mode 'test' trains each level for the best epochs of a validate run: give validation.best_from=RUN_DIR or validation.best_epochs=[...]")
        if len(epochs) != len(settings.sizes):
            raise ConfigError(f"the validate run's best epochs {epochs} are for {len(epochs)} levels; this model has {len(settings.sizes)}")
    else:
        train_idx, val_idx = stratified_group_split(labels, slices.subjects, cfg.data.n_folds, cfg.data.fold, cfg.data.split_seed, source=source)
        epochs = None
    scaling = fit_intensity_scaling(images[train_idx], cfg.data.intensity, cfg.data.intensity_range, source=source)
    schedule = LevelSchedule.build(settings.sizes, cfg.schedule, len(train_idx), epochs)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"total_rows": schedule.total})})

    data_info = {
        "path": str(data),
        "image_file": source,
        "sha256": sha256_of_file(Path(source)),
        "images": int(len(labels)),
        "image_shape": list(slices.images.shape[1:]),
        "classes": class_names,
        "class_counts": np.bincount(labels, minlength=settings.num_classes).tolist(),
        "intensity": scaling.to_dict(),
        # the training file's subjects, hashed: classify refuses to score them as unseen images
        "subject_sha256": subject_hashes(slices.subjects) if slices.subjects is not None else None,
        "split": {
            "mode": mode,
            "rule": "sklearn StratifiedGroupKFold(n_splits, shuffle=True, random_state=split_seed) by Subject_ID; the validation set is fold `fold`" if mode != "test" else "all training images (test mode)",
            "n_folds": cfg.data.n_folds, "fold": cfg.data.fold, "seed": cfg.data.split_seed,
            "images": {"train": int(len(train_idx)), "validation": int(len(val_idx))},
            "subjects": {"train": int(len(set(slices.subjects[train_idx].tolist()))) if slices.subjects is not None else None,
                         "validation": int(len(set(slices.subjects[val_idx].tolist()))) if slices.subjects is not None else None},
        },
        "schedule": {"sizes": schedule.sizes, "epochs": schedule.epochs, "level_starts": schedule.starts, "total_images": schedule.total,
                     "batch_sizes": schedule.batch_sizes, "critic_iterations": schedule.critic_iterations, "fade_images": schedule.fade_images},
    }
    if resume and (run_dir / "data.json").is_file():
        old = json.loads((run_dir / "data.json").read_text())
        if old.get("sha256") != data_info["sha256"]:
            raise DataError(f"{source}: is not the file this run was trained on ({old.get('image_file')}); resume with the same data or start a new run")
    if dist.is_main:
        (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
        (run_dir / "data.json").write_text(json.dumps(data_info, indent=2) + "\n")
    dist.barrier()
    log(f"data: {source} ({len(labels):,d} slices, {settings.num_classes} classes, {settings.channels} channel(s); "
        f"train {len(train_idx):,d}, validation {len(val_idx):,d}); levels {schedule.sizes[0]}..{schedule.sizes[-1]} px, {schedule.total:,d} images in all")

    device = resolve_device(cfg.train.device, local_rank=dist.local_rank if dist.enabled else None)
    torch.manual_seed(cfg.train.seed)  # the same initial weights in every process
    g, d = build_networks(settings)
    g, d = g.to(device), d.to(device)
    scaled = torch.from_numpy(scaling.forward(images).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    batches = SliceBatches(scaled[train_idx], y[train_idx], schedule.sizes, schedule.batch_sizes, cfg.train.seed, device, dist.rank, dist.world_size, source=source)
    validator = SliceValidator(scaled[val_idx], y[val_idx], schedule.sizes, settings.z_dim, device, cfg.train.seed) if mode == "validate" else None
    objective = PACGANObjective(g, d, settings, schedule, cfg.schedule.same_batch_for_critic, batches, device, cfg.train.seed,
                                validator=validator, start_check_at=cfg.validation.start_check_at)
    loop = TrainingLoop(objective, batches, cfg.train, cfg.optim, run_dir, device, dist=dist, extra_state={"config": cfg.model_dump(mode="json")})
    t0 = time.perf_counter()
    result = loop.run(resume=resume)
    log(f"trained on {result.rows_seen:,d} images ({result.iterations:,d} iterations) in {time.perf_counter() - t0:.0f} s")
    final_level = schedule.level_at(max(0, result.rows_seen - 1))
    chosen = "last"
    if mode == "validate" and objective.restore_snapshot(loop):
        chosen = f"best of level {final_level} (epoch {objective.best[final_level]['epoch']})"
        log(f"model: the weights of {chosen}")
    best_epochs = [int(objective.best[k]["epoch"]) if k in objective.best else int(schedule.epochs[k]) for k in range(len(schedule.sizes))]
    if dist.is_main:
        with open(run_dir / "validation.jsonl", "w") as fh:
            for record in objective.history:
                fh.write(json.dumps(record) + "\n")
    g_out = loop.ema.shadow if loop.ema is not None else objective.networks["G"]
    extra = {
        "sampling_weights": "ema" if loop.ema is not None else "last",
        "training": {
            "data": data_info,
            "mode": mode,
            "weights": chosen,
            "best": [objective.best.get(k) for k in range(len(schedule.sizes))],
            "best_epochs": best_epochs,
            **result.manifest_entry(dist.world_size, cfg.model_dump(mode="json")),
        },
    }
    model_dir = run_dir / "model"
    if dist.is_main:
        spacing = _final_spacing(slices.spacing_mm, slices.images.shape[-1], settings.image_size)
        save_pacgan(model_dir, g_out, objective.networks["D"], settings, class_names=class_names, intensity=scaling.to_dict(), spacing_mm=spacing, extra=extra, force=True)
        if cfg.validation.generate_per_class:
            _write_generated(model_dir, run_dir / "generated" / "generated.nii.gz", cfg.validation.generate_per_class, cfg.train.seed, log)
        if cfg.train.evaluate:
            from gansim.models.pacgan_evaluate import evaluate_pacgan

            if mode == "test":
                held_out, held_labels, set_name, held_subjects = test_set
            else:
                held_out, held_labels, set_name = images[val_idx], labels[val_idx], "validation"
                held_subjects = slices.subjects[val_idx] if slices.subjects is not None else None
            if held_out is not None:
                evaluate_pacgan(model_dir, run_dir, held_out, held_labels, images[train_idx], labels[train_idx], set_name=set_name, settings=cfg.evaluation,
                                seed=cfg.train.seed, level_starts=schedule.starts, sizes=schedule.sizes, log=log, held_out_subjects=held_subjects)
    dist.barrier()
    return model_dir


def _read_test_set(cfg: PACGANConfig, size: int, log: Any, train_subjects: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None, str, np.ndarray | None]:
    """The test set of test mode (data.test_data), at the model's image size; (None, None) with a note when none is given.

    A subject in both the training and the test file is an error naming it (its test AUC would be inflated).
    """
    from gansim.data.subject_split import check_no_subject_overlap
    from gansim.io.slices import read_slice_set

    if cfg.data.test_data is None:
        log("test mode without data.test_data: no test set to evaluate (give --set data.test_data=DIR)")
        return None, None, "test", None
    test = read_slice_set(cfg.data.test_data, cfg.data.test_labels, require_labels=True)
    if test.labels is None:
        raise DataError(f"{test.source}: the test set needs labels (labels.csv)")
    if train_subjects is not None and test.subjects is not None:
        check_no_subject_overlap({"training set": train_subjects, "test set": test.subjects}, source=f"{cfg.data.test_data}")
    return _to_image_size(test.images, size, test.source, log), test.labels, "test", test.subjects


def _write_generated(model_dir: Path, output: Path, per_class: list[int], seed: int, log: Any) -> None:
    """PACGAN's GENERATE step: ``per_class`` images of each class into the run directory."""
    from gansim.io.slices import write_slice_set
    from gansim.models import load_model
    from gansim.models.pacgan_model import labels_for_request

    model = load_model(model_dir, device="cpu")
    labels = labels_for_request(model.num_classes, per_class=per_class, source="validation.generate_per_class")
    images = model.generate(labels, seed=seed)
    write_slice_set(output, images, labels, spacing_mm=model.spacing_mm, description=f"gansim pacgan seed {seed}", force=True)
    log(f"{len(labels):,d} generated images written to {output}")


def _final_spacing(spacing_mm: tuple[float, float], side_in: int, side_out: int) -> tuple[float, float]:
    """Pixel spacing after resampling a side of ``side_in`` pixels to ``side_out`` (same field of view)."""
    factor = side_in / side_out
    return (float(spacing_mm[0]) * factor, float(spacing_mm[1]) * factor)
