"""Training a phase-space GAN from a file: data preparation, the generic loop, the model file.

:func:`train_phase_space` is what ``gansim train DATA [CONFIG] -o RUN_DIR`` calls.
The run directory receives ``config.json`` (resolved config), ``data.json``
(what was read), ``stats.jsonl``, ``checkpoints/`` and, at the end, ``model/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim import __version__
from gansim.data.split import heldout_mask
from gansim.data.stream import InMemoryBatches, StreamingBatches
from gansim.data.transforms import TablePipeline, direction_triplets, is_energy_column
from gansim.errors import ConfigError, DataError
from gansim.io.phsp import open_reader
from gansim.io.phsp.columns import Table, unit_of, validate_table
from gansim.models.model_file import network_tensors, save_model_dir, sha256_of_file
from gansim.models.phsp_gan import PhaseSpaceGANConfig, PhaseSpaceObjective, build_networks
from gansim.training.device import resolve_device
from gansim.training.distributed import DistributedContext, run_as_job
from gansim.training.loop import TrainingLoop
from gansim.training.run_dir import open_run_dir

__all__ = ["train_phase_space", "BOOKKEEPING_COLUMNS"]

#: Columns never generated unless asked for by name: identifiers and flags, not physics.
BOOKKEEPING_COLUMNS = frozenset({"EventID", "TrackID", "ParentID", "RunID", "ThreadID", "PDGCode", "NewHistory", "UserFlags", "TrackCreatorProcess"})


@dataclass
class ColumnSummary:
    """Streaming min/max/count of the training rows, to choose transforms and find constant columns."""

    minimum: dict[str, float]
    maximum: dict[str, float]
    train_rows: int
    heldout_rows: int
    total_rows: int
    pdg_codes: set[int]


def _write_json(path: Path, document: Any) -> None:
    """Write a small JSON file atomically."""
    from gansim.io.atomic import atomic_path

    with atomic_path(path, force=True) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n")


def _resolve_keys(cfg: PhaseSpaceGANConfig, columns: list[str], source: str) -> tuple[list[str], list[str]]:
    cond = list(cfg.data.cond_keys)
    if cfg.data.keys is not None:
        keys = list(cfg.data.keys)
    else:
        keys = [c for c in columns if c not in cond and c not in BOOKKEEPING_COLUMNS]
    for key in keys + cond:
        if key not in columns:
            raise DataError(f"{source}: no column {key!r}; the file has {', '.join(columns)}")
    both = set(keys) & set(cond)
    if both:
        raise ConfigError(f"column(s) {sorted(both)} are both generated (data.keys) and conditions (data.cond_keys)")
    if len(set(keys)) != len(keys) or len(set(cond)) != len(cond):
        raise ConfigError("data.keys and data.cond_keys must not repeat a column")
    if not keys:
        raise ConfigError(f"{source}: no column left to generate; set data.keys")
    return keys, cond


def _split_chunks(
    reader: Any,
    columns: list[str],
    chunk_rows: int,
    max_rows: int | None,
    fraction: float,
    seed: int,
    source: str,
    particle: int | None = None,
    track_pdg: bool = False,
) -> Iterator[tuple[Table, np.ndarray]]:
    """(chunk, held-out mask) over the file, checking every value is finite.

    The held-out mask is a function of the row index in the file, so selecting
    one particle type (``particle``) keeps the split the evaluation finds again.
    With ``track_pdg`` the chunks also carry ``PDGCode`` so the summary pass can
    see which particle types the file holds (no extra pass over the file).
    """
    start = 0
    read = columns + (["PDGCode"] if (particle is not None or track_pdg) and "PDGCode" not in columns else [])
    for chunk in reader.iter_chunks(chunk_rows, read):
        n = len(next(iter(chunk.values())))
        if max_rows is not None and start + n > max_rows:
            chunk = {k: v[: max_rows - start] for k, v in chunk.items()}
            n = max_rows - start
        validate_table(chunk, source=source, first_row=start)
        mask = heldout_mask(start, n, fraction, seed)
        if particle is not None:
            keep = chunk["PDGCode"] == particle
            chunk = {k: v[keep] for k, v in chunk.items() if k in columns}
            mask = mask[keep]
        yield chunk, mask
        start += n
        if max_rows is not None and start >= max_rows:
            return


def _summarise(chunks: Iterator[tuple[Table, np.ndarray]], columns: list[str]) -> ColumnSummary:
    lo = {c: np.inf for c in columns}
    hi = {c: -np.inf for c in columns}
    train = held = 0
    codes: set[int] = set()
    for chunk, mask in chunks:
        if "PDGCode" in chunk and "PDGCode" not in columns:
            codes.update(int(c) for c in np.unique(chunk["PDGCode"]))
        keep = ~mask
        train += int(keep.sum())
        held += int(mask.sum())
        for c in columns:
            v = chunk[c][keep]
            if len(v):
                lo[c] = min(lo[c], float(v.min()))
                hi[c] = max(hi[c], float(v.max()))
    return ColumnSummary(lo, hi, train, held, train + held, codes)


def _build_pipeline(keys: list[str], cfg: PhaseSpaceGANConfig, summary: ColumnSummary) -> TablePipeline:
    if cfg.data.log_keys == "auto":
        log = [k for k in keys if is_energy_column(k) and summary.minimum[k] > 0]
    else:
        log = [k for k in cfg.data.log_keys if k in keys]
        bad = [k for k in log if summary.minimum[k] <= 0]
        if bad:
            raise DataError(f"data.log_keys {bad}: these columns hold values <= 0 (min {[summary.minimum[k] for k in bad]}); a log transform needs positive values")
    directions = "auto" if cfg.data.directions == "auto" else []
    clip: dict[str, tuple[float | None, float | None]] = {}
    if cfg.data.clip_energy:
        # Energies are physical only in [0, endpoint]: a GAN's tails must not make negative or
        # above-endpoint particles (a 6 MV beam has no 39 MeV photon).
        clip.update({k: (0.0 if summary.minimum[k] >= 0 else None, summary.maximum[k]) for k in keys if is_energy_column(k)})
    clip.update({k: v for k, v in cfg.data.clip.items() if k in keys})
    return TablePipeline.default(keys, log_columns=log, directions=directions, clip=clip or None)


def _particle_filter(cfg: PhaseSpaceGANConfig, reader: Any, source: str) -> tuple[int | None, bool]:
    """(PDG code to keep, whether the summary pass must look at the file's particle types).

    An explicit ``data.particle`` selects rows; otherwise a file with a
    ``PDGCode`` column that is neither generated nor a condition is checked in
    the summary pass: one type becomes a model constant, several are an error.
    """
    from gansim.io.phsp.columns import particle_pdg_code

    if "PDGCode" not in reader.columns or "PDGCode" in (cfg.data.keys or []) or "PDGCode" in cfg.data.cond_keys:
        if cfg.data.particle is not None and "PDGCode" not in reader.columns:
            raise DataError(f"{source}: data.particle={cfg.data.particle!r} but the file has no PDGCode column")
        return None, False
    if cfg.data.particle is not None:
        return particle_pdg_code(cfg.data.particle), False
    return None, True


def _single_particle_type(summary: ColumnSummary, source: str) -> int | None:
    """The file's only PDG code; a file mixing types needs a choice."""
    if len(summary.pdg_codes) > 1:
        raise DataError(
            f"{source}: column 'PDGCode' mixes particle types ({', '.join(str(c) for c in sorted(summary.pdg_codes))}); a GAN is trained "
            "per particle type: set data.particle (e.g. --set data.particle=22), or make PDGCode a condition"
        )
    return next(iter(summary.pdg_codes)) if summary.pdg_codes else None


def _check_same_data(run_dir: Path, data_info: dict[str, Any]) -> None:
    """Resuming on other data would refit the normalisation under trained weights: refuse."""
    path = run_dir / "data.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    if old.get("sha256") and data_info["sha256"] and old["sha256"] != data_info["sha256"] or old.get("rows") != data_info["rows"]:
        raise DataError(
            f"{data_info['path']}: is not the data this run was trained on ({old.get('path')}, {old.get('rows')} rows, "
            f"sha256 {str(old.get('sha256'))[:16]}…); resume with the same file or start a new run"
        )


def train_phase_space(data: str | Path, cfg: PhaseSpaceGANConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False, log: Any = print) -> Path:
    """Train a phase-space GAN on ``data`` into ``run_dir``; return the model directory ``run_dir/model``.

    Runs as one process, or as one of several under ``torchrun`` (DDP).
    """
    data, run_dir = Path(data), Path(run_dir)
    return run_as_job(cfg.train.device, log, lambda dist, job_log: _train(data, cfg, run_dir, dist, resume=resume, force=force, log=job_log))


def _train(data: Path, cfg: PhaseSpaceGANConfig, run_dir: Path, dist: DistributedContext, *, resume: bool, force: bool, log: Any) -> Path:
    device = resolve_device(cfg.train.device, local_rank=dist.local_rank if dist.enabled else None)
    open_run_dir(run_dir, data, cfg.model_dump(mode="json"), dist, resume=resume, force=force)
    started = _dt.datetime.now(_dt.timezone.utc)
    source = str(data)
    reader = open_reader(data, **({"tree": cfg.data.tree} if cfg.data.tree else {}))
    keys, cond_keys = _resolve_keys(cfg, reader.columns, source)
    columns = keys + cond_keys
    st = cfg.train
    particle, track_pdg = _particle_filter(cfg, reader, source)
    n_file = reader.n_rows
    n_rows = min(n_file, cfg.data.max_rows) if (n_file is not None and cfg.data.max_rows) else n_file
    in_memory = n_rows is not None and n_rows <= st.in_memory_max_rows

    def chunks() -> Iterator[tuple[Table, np.ndarray]]:
        return _split_chunks(reader, columns, st.chunk_rows, cfg.data.max_rows, st.validation_fraction, st.validation_seed, source, particle, track_pdg)

    if in_memory:
        parts = list(chunks())
        table = {c: np.concatenate([p[0][c] for p in parts]) if parts else np.zeros(0) for c in columns}
        mask = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=bool)
        train_table = {c: v[~mask] for c, v in table.items()}
        summary = _summarise(iter(parts), columns)
    else:
        summary = _summarise(chunks(), columns)
    if track_pdg:
        particle = _single_particle_type(summary, source)
    if summary.train_rows == 0:
        raise DataError(f"{source}: no training rows (the file is empty or every row is held out)")
    constants: dict[str, float | int] = {k: summary.minimum[k] for k in keys if summary.minimum[k] == summary.maximum[k]}
    gan_keys = [k for k in keys if k not in constants]
    if not gan_keys:
        raise DataError(f"{source}: every generated column is constant ({constants}); nothing to learn")
    # A direction triplet with a constant component still needs all three columns to renormalise.
    for triplet in direction_triplets(keys):
        if any(k in constants for k in triplet):
            for k in triplet:
                constants.pop(k, None)
    gan_keys = [k for k in keys if k not in constants]
    if particle is not None:
        constants["PDGCode"] = particle  # generated files keep their particle type
    x_pipe = _build_pipeline(gan_keys, cfg, summary)
    c_pipe = TablePipeline.default(cond_keys, log_columns=[], directions="auto") if cond_keys else None
    if in_memory:
        x_pipe.fit([train_table])
        if c_pipe is not None:
            c_pipe.fit([train_table])
        matrix = x_pipe.forward(train_table)
        if c_pipe is not None:
            matrix = np.concatenate([matrix, c_pipe.forward(train_table)], axis=1)
        del table, train_table
        batches: Any = InMemoryBatches(matrix, len(gan_keys), st.batch_size, st.seed, device, dist.rank, dist.world_size, source)
    else:
        x_pipe.fit(({k: v[~m] for k, v in ch.items()} for ch, m in chunks()))
        if c_pipe is not None:
            c_pipe.fit(({k: v[~m] for k, v in ch.items()} for ch, m in chunks()))

        n_chunks = -(-n_rows // st.chunk_rows) if n_rows is not None else None
        if n_chunks is not None and n_chunks < dist.world_size:
            raise DataError(
                f"{source}: {n_rows:,d} rows make {n_chunks} chunk(s) of train.chunk_rows={st.chunk_rows:,d}, fewer than the "
                f"{dist.world_size} processes; lower train.chunk_rows so each process streams its own chunks"
            )

        def normalised(wanted: Any) -> Iterator[tuple[int, np.ndarray]]:
            for j, (ch, m) in enumerate(chunks()):
                if not wanted(j):  # another process's chunk: read past it without normalising
                    continue
                kept = {k: v[~m] for k, v in ch.items()}
                mat = x_pipe.forward(kept)
                yield j, (mat if c_pipe is None else np.concatenate([mat, c_pipe.forward(kept)], axis=1))

        batches = StreamingBatches(normalised, len(gan_keys), st.batch_size, st.seed, device, dist.rank, dist.world_size, source)

    data_sha = sha256_of_file(reader.path) if dist.is_main else ""
    data_info = {
        "path": str(data.resolve()),
        "format": reader.format_name,
        "sha256": data_sha,
        "rows": summary.total_rows,
        "train_rows": summary.train_rows,
        "heldout_rows": summary.heldout_rows,
        "validation": {"fraction": st.validation_fraction, "seed": st.validation_seed, "rule": "splitmix64(row_index ^ splitmix64(seed)) / 2**64 < fraction"},
        "streamed": not in_memory,
        # IAEA/MCPL normalisation: primary histories behind the (selected) rows, for dose per history
        "orig_histories": getattr(reader, "orig_histories", None),
        "histories_per_particle": (reader.orig_histories / summary.total_rows) if getattr(reader, "orig_histories", None) else None,
        "min": {k: summary.minimum[k] for k in columns},
        "max": {k: summary.maximum[k] for k in columns},
    }
    if resume:
        _check_same_data(run_dir, data_info)
    elif dist.is_main:
        _write_json(run_dir / "config.json", cfg.model_dump(mode="json"))
        _write_json(run_dir / "data.json", data_info)
    log(
        f"data: {source} ({reader.format_name}, {summary.total_rows:,d} rows, {summary.heldout_rows:,d} held out, "
        f"{'in memory' if in_memory else 'streamed'}); generating {gan_keys}"
        + (f" given {cond_keys}" if cond_keys else "")
        + (f"; constant {constants}" if constants else "")
    )
    torch.manual_seed(st.seed)
    g, d = build_networks(cfg.model, len(gan_keys), len(cond_keys))
    g, d = g.to(device), d.to(device)
    objective = PhaseSpaceObjective(g, d, cfg.model, cfg.loss, device, st.seed + dist.rank * 1_000_003)
    loop = TrainingLoop(objective, batches, st, {"G": cfg.optim.G, "D": cfg.optim.D}, run_dir, device, dist, extra_state={"config": cfg.model_dump(mode="json")})
    log(f"device: {device}; processes: {dist.world_size}; G {sum(p.numel() for p in g.parameters()):,d} weights, D {sum(p.numel() for p in d.parameters()):,d}")
    if resume:
        ckpt = loop.restore_latest()
        log(f"resuming from {ckpt}")
        if dist.is_main:  # only now that the checkpoint loaded into this config
            _write_json(run_dir / "config.json", cfg.model_dump(mode="json"))
    result = loop.run()
    model_dir = run_dir / "model"
    if dist.is_main:
        sampler = loop.ema.shadow if loop.ema is not None else g
        manifest = {
            "family": "phsp",
            "gansim_version": __version__,
            "architecture": {
                "generator": {"kind": "mlp", "width": cfg.model.g_width, "depth": cfg.model.g_depth, "activation": cfg.model.activation, "leaky_slope": cfg.model.leaky_slope, "inputs": cfg.model.z_dim + len(cond_keys), "outputs": len(gan_keys)},
                "discriminator": {"kind": "mlp", "width": cfg.model.d_width, "depth": cfg.model.d_depth, "activation": cfg.model.activation, "leaky_slope": cfg.model.leaky_slope, "spectral_norm": cfg.model.spectral_norm},
                "sampling_weights": "ema" if loop.ema is not None else "last",
            },
            "keys": [{"name": k, "unit": unit_of(k)} for k in gan_keys],
            "cond_keys": [{"name": k, "unit": unit_of(k)} for k in cond_keys],
            "constants": constants,
            "output_keys": [k for k in keys if k in gan_keys or k in constants] + [k for k in constants if k not in keys],
            "transforms": {"x": x_pipe.to_dict(), "c": c_pipe.to_dict() if c_pipe is not None else None},
            "latent": {"dim": cfg.model.z_dim, "distribution": cfg.model.latent, "low": -1.0, "high": 1.0},
            "training": {
                "data": data_info,
                "rows_seen": result.rows_seen,
                "iterations": result.iterations,
                "wall_time_s": result.wall_time_s,
                "started": started.isoformat(),
                "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "device": str(device),
                "processes": dist.world_size,
                "torch": torch.__version__,
                "host": platform.node(),
                "resumed_from": result.resumed_from,
                "last_stats": result.last_stats,
                "config": cfg.model_dump(mode="json"),
            },
            "metrics": {},
        }
        tensors = {**network_tensors("generator", sampler), **network_tensors("discriminator", d)}
        save_model_dir(model_dir, manifest, tensors, force=True)
        log(f"model: {model_dir}")
        if st.evaluate and summary.heldout_rows > 0:
            from gansim.metrics.evaluate import evaluate_model

            log("evaluating on the held-out rows ...")
            evaluate_model(model_dir, run_dir, seed=st.seed)
            log(f"report: {run_dir / 'report' / 'report.html'}")
    dist.barrier()
    return model_dir
