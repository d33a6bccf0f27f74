"""Training a shower model (the faithful CaloGAN or the modern shower GAN) from a shower file: ``gansim train eplus.h5 -o run/``.

The faithful CaloGAN trains on CaloGAN-layout files only (its networks are built for those three
layers); the modern shower GAN on any layout gansim reads (CaloGAN, CaloChallenge).

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

from gansim.errors import ConfigError, DataError
from gansim.io.calo import ShowerData, find_duplicate_showers, read_showers
from gansim.models.calogan import CaloGANConfig, CaloGANObjective, ShowerBatches
from gansim.models.calogan_model import save_calogan
from gansim.models.calogan_nets import CaloGANDiscriminator, CaloGANGenerator
from gansim.models.shower_sampling import closer_spectrum
from gansim.models.showergan import ShowerGANConfig, ShowerGANObjective
from gansim.models.showergan_model import GEV_PER_MEV, build_generator, flatten_showers, save_showergan
from gansim.models.showergan_nets import ShowerCritic
from gansim.models.model_file import sha256_of_file
from gansim.training.device import resolve_device
from gansim.training.distributed import DistributedContext, run_as_job
from gansim.training.loop import TrainingLoop
from gansim.training.run_dir import open_run_dir

__all__ = ["train_showers", "train_calogan", "split_showers", "cell_threshold_from_data"]


def split_showers(n: int, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of the train, validation and test sets: a seeded permutation cut in three (sorted within each)."""
    if validation_fraction + test_fraction >= 1:
        raise DataError(f"validation_fraction {validation_fraction} + test_fraction {test_fraction} leave no showers to train on")
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_fraction)), int(round(n * validation_fraction))
    return {"test": np.sort(perm[:n_test]), "validation": np.sort(perm[n_test : n_test + n_val]), "train": np.sort(perm[n_test + n_val :])}


def _select(data: ShowerData, rows: np.ndarray) -> ShowerData:
    return ShowerData(data.layout, data.geometry, data.energy[rows], [a[rows] for a in data.layers], None if data.overflow is None else data.overflow[rows])


def cell_threshold_from_data(cells: np.ndarray, quantile: float, source: str = "training showers") -> float:
    """The ``quantile`` of the lit cells' energies (same unit as ``cells``): the modern model's sparsity threshold."""
    lit = cells[cells > 0]
    if lit.size == 0:
        raise DataError(f"{source}: every cell of the training showers is empty: nothing to learn a threshold (or a shower) from")
    return float(np.quantile(lit, quantile)) if quantile > 0 else float(lit.min())


#: at most this many cells (rows x cells per shower) go through the data-based initialisation at once
#: (about 1 GB of float64 temporaries; CaloChallenge dataset 3 has 40,500 cells per shower)
INIT_CELL_BUDGET = 20_000_000


def _init_rows(n: int, wanted: int, n_cells: int, seed: int) -> np.ndarray:
    """A seeded subset of at most ``wanted`` training rows (fewer for large showers) for data-based initialisation."""
    wanted = max(2, min(wanted, INIT_CELL_BUDGET // max(n_cells, 1)))
    return np.sort(np.random.default_rng([seed, 7]).permutation(n)[: min(n, wanted)])


def _build_calogan(cfg: CaloGANConfig, train: ShowerData, device: torch.device, source: str, dist: DistributedContext) -> tuple[Any, ShowerBatches, Any]:
    if train.layout != "calogan":
        raise ConfigError(f"{source}: {train.layout!r} showers; the faithful CaloGAN is built for the CaloGAN layout's three layers. Train the modern shower GAN on it (--family showergan)")
    generator = CaloGANGenerator(latent_dim=cfg.model.latent_dim, attention=cfg.model.attention).to(device)
    discriminator = CaloGANDiscriminator(minibatch=cfg.model.minibatch, sparsity=cfg.model.sparsity).to(device)
    objective = CaloGANObjective(generator, discriminator, cfg.model, device, cfg.train.seed)
    batches = ShowerBatches(train.layers, train.energy, cfg.train.batch_size, cfg.train.seed, device, dist.rank, dist.world_size, source=source)

    def save(model_dir: Path, g: torch.nn.Module, extra: dict[str, Any]) -> Path:
        return save_calogan(model_dir, g, cfg.model, extra=extra, force=True)

    return objective, batches, save


def _build_showergan(cfg: ShowerGANConfig, train: ShowerData, device: torch.device, source: str, log: Any, dist: DistributedContext) -> tuple[Any, ShowerBatches, Any, dict[str, Any]]:
    cells = flatten_showers(train).astype(np.float32)
    settings = cfg.model
    threshold_mev = settings.cell_threshold_mev or cell_threshold_from_data(cells, settings.threshold_quantile, source)
    cells[cells < threshold_mev] = 0.0  # the model makes no cell below the threshold: neither do the showers it learns from
    energy_gev = np.asarray(train.energy, np.float64) * GEV_PER_MEV
    energy_range = settings.energy_range_gev or (float(energy_gev.min()), float(energy_gev.max()))
    if not energy_range[0] < energy_range[1]:
        energy_range = (energy_range[0] * 0.99, energy_range[1] * 1.01)  # a single energy: a narrow range around it
    log(f"shower GAN: cells below {threshold_mev:.4g} MeV are zero; log-energy condition over {energy_range[0]:.4g}-{energy_range[1]:.4g} GeV")
    generator = build_generator(settings, train.geometry, energy_range, threshold_mev).to(device)
    from gansim.io.calo_geometry import cell_table

    critic = ShowerCritic(cell_table(train.geometry), settings.d_width, settings.d_depth, energy_range, threshold_mev * GEV_PER_MEV, settings.spectral_norm).to(device)
    rows = _init_rows(len(cells), settings.init_rows, cells.shape[1], cfg.train.seed)
    generator.init_from_data(cells[rows] * GEV_PER_MEV, energy_gev[rows])
    critic.fit_standardisation(cells[rows] * GEV_PER_MEV, energy_gev[rows])
    objective = ShowerGANObjective(generator, critic, settings, device, cfg.train.seed)
    batches = ShowerBatches([cells], train.energy, cfg.train.batch_size, cfg.train.seed, device, dist.rank, dist.world_size, source=source)

    spectrum = closer_spectrum(energy_gev, energy_range)  # what `generate` samples when given no energies

    def save(model_dir: Path, g: torch.nn.Module, extra: dict[str, Any]) -> Path:
        return save_showergan(model_dir, g, settings, train.geometry, spectrum=spectrum, extra=extra, force=True)

    return objective, batches, save, {"cell_threshold_mev": threshold_mev, "energy_range_gev": list(energy_range)}


def train_calogan(data: str | Path, cfg: CaloGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train a faithful CaloGAN on a CaloGAN-layout file (see :func:`train_showers`)."""
    return train_showers(data, cfg, run_dir, resume=resume, force=force, log=log)


def train_showers(data: str | Path, cfg: CaloGANConfig | ShowerGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train the config's family on a shower file into ``run_dir``; return the model directory.

    Args:
        data: a CaloGAN or CaloChallenge HDF5 file (DS1: ``cfg.data.binning_xml``, or the binning a gansim-written file records).
        cfg: a :class:`CaloGANConfig` (faithful) or :class:`ShowerGANConfig` (modern).
        run_dir: the run directory (see the module docstring).
    """
    data, run_dir = Path(data), Path(run_dir)
    return run_as_job(cfg.train.device, log, lambda dist, job_log: _train(data, cfg, run_dir, dist, resume=resume, force=force, log=job_log))


def _train(data: Path, cfg: CaloGANConfig | ShowerGANConfig, run_dir: Path, dist: DistributedContext, *, resume: bool, force: bool, log: Any) -> Path:
    """:func:`train_showers` in one process of the job (every process reads the file; the main one writes)."""
    open_run_dir(run_dir, data, cfg.model_dump(mode="json"), dist, resume=resume, force=force)
    showers = read_showers(data, max_rows=cfg.data.max_rows, binning_xml=cfg.data.binning_xml, particle=cfg.data.particle)
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
        "layout": showers.layout,
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
    if dist.is_main:
        (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
        (run_dir / "data.json").write_text(json.dumps(data_info, indent=2) + "\n")
    dist.barrier()
    log(f"data: {data} ({showers.layout}, {n_file:,d} showers; train {len(train_rows):,d}, validation {len(split['validation']):,d}, test {len(split['test']):,d})")

    device = resolve_device(cfg.train.device, local_rank=dist.local_rank if dist.enabled else None)
    torch.manual_seed(cfg.train.seed)  # the same initial weights in every process
    train = _select(showers, train_rows)
    extra_manifest: dict[str, Any] = {}
    if isinstance(cfg, ShowerGANConfig):
        objective, batches, save, extra_manifest = _build_showergan(cfg, train, device, str(data), log, dist)
    else:
        objective, batches, save = _build_calogan(cfg, train, device, str(data), dist)
    loop = TrainingLoop(objective, batches, cfg.train, cfg.optim, run_dir, device, dist=dist, extra_state={"config": cfg.model_dump(mode="json")})
    t0 = time.perf_counter()
    result = loop.run(resume=resume)
    log(f"trained on {result.rows_seen:,d} showers ({result.iterations:,d} iterations) in {time.perf_counter() - t0:.0f} s")
    g = loop.ema.shadow if loop.ema is not None else objective.networks["G"]  # the averaged generator when an EMA was kept
    extra = {
        "sampling_weights": "ema" if loop.ema is not None else "last",
        "training": {
            "data": data_info,
            **result.manifest_entry(dist.world_size, cfg.model_dump(mode="json")),
            **extra_manifest,
        }
    }
    model_dir = run_dir / "model"
    if dist.is_main:
        save(model_dir, g, extra)
        if cfg.train.evaluate and len(split["validation"]):
            _evaluate(model_dir, _select(showers, unique_rows[split["validation"]]), run_dir, cfg.train.seed, log)
    dist.barrier()
    return model_dir


def _evaluate(model_dir: Path, validation: ShowerData, run_dir: Path, seed: int, log: Any) -> None:
    """Generated showers at the validation showers' energies against those showers: ``RUN/report``, metrics in the manifest.

    The manifest's ``metrics`` is :func:`~gansim.metrics.calo_report.shower_metrics_summary` (separation
    power and KS of every variable, classifier AUCs and errors, FPD and KPD, response and resolution
    per energy bin) plus what it was evaluated on and where the report is.
    """
    from gansim.metrics.calo_report import compare_showers, shower_metrics_summary, write_shower_report
    from gansim.models import load_model
    from gansim.models.model_file import update_manifest

    log(f"evaluating on the {len(validation):,d} validation showers ...")
    model = load_model(model_dir, device="cpu")
    generated = model.sample(len(validation), validation.energy, seed=seed)
    metrics, plots = compare_showers(validation, generated, seed=seed)
    report = write_shower_report(run_dir / "report", metrics, plots, title=f"{model.manifest['family']} on its validation showers ({run_dir})")
    summary = {"evaluated_on": "validation showers", **shower_metrics_summary(metrics), "report": str(report)}
    update_manifest(model_dir, {"metrics": summary})
    log(f"report: {report}")
