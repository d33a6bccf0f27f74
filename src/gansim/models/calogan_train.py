"""Training the faithful CaloGAN from a CaloGAN HDF5 file: ``gansim train eplus.h5 -o run/``.

The run directory receives ``config.json`` (resolved), ``data.json`` (file, checksum,
duplicates removed, the split), ``stats.jsonl``, ``checkpoints/`` and, at the end, ``model/``.
The split is a seeded permutation of the showers left after removing exact duplicates: the
first ``test_fraction`` are the test set, the next ``validation_fraction`` the validation set,
the rest train the model. Its seed and sizes go into the model manifest.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim import __version__
from gansim.errors import DataError
from gansim.io.calo import ShowerData, find_duplicate_showers, read_calogan
from gansim.models.calogan import CaloGANConfig, CaloGANObjective, ShowerBatches
from gansim.models.calogan_model import save_calogan
from gansim.models.calogan_nets import CaloGANDiscriminator, CaloGANGenerator
from gansim.models.model_file import sha256_of_file
from gansim.models.phsp_train import prepare_run_dir
from gansim.training.device import resolve_device
from gansim.training.loop import TrainingLoop

__all__ = ["train_calogan", "split_showers"]


def split_showers(n: int, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of the train, validation and test sets: a seeded permutation cut in three (sorted within each)."""
    if validation_fraction + test_fraction >= 1:
        raise DataError(f"validation_fraction {validation_fraction} + test_fraction {test_fraction} leave no showers to train on")
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * validation_fraction))
    return {"test": np.sort(perm[:n_test]), "validation": np.sort(perm[n_test : n_test + n_val]), "train": np.sort(perm[n_test + n_val :])}


def _select(data: ShowerData, rows: np.ndarray) -> ShowerData:
    return ShowerData(data.layout, data.geometry, data.energy[rows], [a[rows] for a in data.layers], None if data.overflow is None else data.overflow[rows])


def train_calogan(data: str | Path, cfg: CaloGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train a faithful CaloGAN on a CaloGAN-layout file into ``run_dir``; return the model directory."""
    data, run_dir = Path(data), Path(run_dir)
    prepare_run_dir(run_dir, data, resume=resume, force=force)
    showers = read_calogan(data, max_rows=cfg.data.max_rows)
    n_file = len(showers)
    duplicates = find_duplicate_showers(showers)
    keep = np.ones(n_file, dtype=bool)
    if len(duplicates):
        log(f"{data}: {len(duplicates)} exact duplicate shower(s) (the first pair: rows {int(duplicates[0, 0])} and {int(duplicates[0, 1])})"
            + ("; removed before the split" if cfg.data.drop_duplicates else "; kept (data.drop_duplicates is false)"))
        if cfg.data.drop_duplicates:
            keep[duplicates[:, 1]] = False
    unique_rows = np.flatnonzero(keep)
    split = split_showers(len(unique_rows), cfg.data.validation_fraction, cfg.data.test_fraction, cfg.data.split_seed)
    train_rows = unique_rows[split["train"]]
    data_info = {
        "path": str(data),
        "sha256": sha256_of_file(data),
        "showers_in_file": n_file,
        "duplicates": int(len(duplicates)),
        "duplicates_removed": bool(cfg.data.drop_duplicates and len(duplicates)),
        "split": {
            "seed": cfg.data.split_seed,
            "fractions": {"validation": cfg.data.validation_fraction, "test": cfg.data.test_fraction},
            "rows": {name: int(len(rows)) for name, rows in split.items()},
            "rule": "numpy default_rng(seed).permutation over the showers left after removing duplicates (in file order); test first, then validation, then train",
        },
    }
    if resume and (run_dir / "data.json").is_file():
        old = json.loads((run_dir / "data.json").read_text())
        if old.get("sha256") != data_info["sha256"]:
            raise DataError(f"{data}: is not the file this run was trained on ({old.get('path')}); resume with the same file or start a new run")
    (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
    (run_dir / "data.json").write_text(json.dumps(data_info, indent=2) + "\n")
    log(f"data: {data} ({n_file:,d} showers; train {len(train_rows):,d}, validation {len(split['validation']):,d}, test {len(split['test']):,d})")

    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    generator = CaloGANGenerator(latent_dim=cfg.model.latent_dim, attention=cfg.model.attention).to(device)
    discriminator = CaloGANDiscriminator(minibatch=cfg.model.minibatch, sparsity=cfg.model.sparsity).to(device)
    objective = CaloGANObjective(generator, discriminator, cfg.model, device, cfg.train.seed)
    train = _select(showers, train_rows)
    batches = ShowerBatches(train.layers, train.energy, cfg.train.batch_size, cfg.train.seed, device, source=str(data))
    loop = TrainingLoop(objective, batches, cfg.train, cfg.optim, run_dir, device, extra_state={"config": cfg.model_dump(mode="json")})
    t0 = time.perf_counter()
    result = loop.run(resume=resume)
    log(f"trained on {result.rows_seen:,d} showers ({result.iterations:,d} iterations) in {time.perf_counter() - t0:.0f} s")
    g = loop.ema.shadow if loop.ema is not None else objective.networks["G"]  # the averaged generator when an EMA was kept
    extra = {
        "sampling_weights": "ema" if loop.ema is not None else "last",
        "training": {
            "data": data_info,
            "rows_seen": result.rows_seen,
            "iterations": result.iterations,
            "wall_time_s": result.wall_time_s,
            "resumed_from": result.resumed_from,
            "config": cfg.model_dump(mode="json"),
            "gansim_version": __version__,
        }
    }
    model_dir = save_calogan(run_dir / "model", g, cfg.model, extra=extra, force=True)
    if cfg.train.evaluate and len(split["validation"]):
        _evaluate(model_dir, _select(showers, unique_rows[split["validation"]]), run_dir, cfg.train.seed, log)
    return model_dir


def _evaluate(model_dir: Path, validation: ShowerData, run_dir: Path, seed: int, log: Any) -> None:
    """Generated showers at the validation showers' energies against those showers: ``RUN/report``, metrics in the manifest."""
    from gansim.metrics.calo_report import compare_showers, write_shower_report
    from gansim.models import load_model
    from gansim.models.model_file import update_manifest

    log(f"evaluating on the {len(validation):,d} validation showers ...")
    model = load_model(model_dir, device="cpu")
    generated = model.sample(len(validation), validation.energy, seed=seed)
    metrics, plots = compare_showers(validation, generated, seed=seed)
    report = write_shower_report(run_dir / "report", metrics, plots, title=f"CaloGAN on its validation showers ({run_dir})")
    clf = metrics["classifier_high"]
    summary = {"separation_power": {k: v["separation_power"] for k, v in metrics["variables"].items()}}
    if "auc" in clf:
        summary["classifier_high_auc"] = clf["auc"]
        summary["classifier_high_auc_se"] = clf["auc_se"]
    update_manifest(model_dir, {"metrics": summary})
    log(f"report: {report}")
