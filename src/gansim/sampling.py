"""Generating particles into a file: in batches, with bounded memory, reproducible, optionally under torchrun.

With ``seed`` the latent vectors of row ``i`` come from block ``i // 65536`` of
a seeded stream, so the output does not depend on the batch size nor on the
number of processes: under ``torchrun`` process ``r`` of ``w`` generates its
contiguous share of rows into a part file and process 0 joins the parts in
order, giving the same file a single process writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import DataError, OutputExistsError
from gansim.io.atomic import check_writable
from gansim.io.phsp import detect_format, open_reader, open_writer

__all__ = ["generate_to_file"]


def _cond_chunks(cond_file: Path, file_keys: list[str], start: int, n: int, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    """Rows ``start .. start+n-1`` of the condition file's ``file_keys`` columns, in chunks; NaN/Inf refused with file and row."""
    from gansim.io.phsp.columns import validate_table

    with open_reader(cond_file) as reader:
        row = 0
        for chunk in reader.iter_chunks(chunk_rows, file_keys):
            m = len(next(iter(chunk.values())))
            lo, hi = max(start, row), min(start + n, row + m)
            if lo < hi:
                part = {k: v[lo - row : hi - row] for k, v in chunk.items()}
                validate_table(part, source=f"{cond_file} (conditions)", first_row=lo)
                yield part
            row += m
            if row >= start + n:
                return


def _with_conditions(table: dict[str, np.ndarray], cond: Mapping[str, Any], keys: list[str], m: int) -> dict[str, np.ndarray]:
    """Add the condition columns (float32, one value per row) to a generated table."""
    out = dict(table)
    for key in keys:
        value = np.asarray(cond[key], dtype=np.float32)
        out[key] = np.full(m, value, dtype=np.float32) if value.ndim == 0 else value
    return out


def _generate_rows(
    model: Any, writer: Any, start: int, n: int, cond: Mapping[str, float], cond_file: Path | None, file_keys: list[str], seed: int, batch_size: int, keep_conditions: bool
) -> int:
    if cond_file is None:
        for table in model.iter_samples(n, cond=dict(cond) or None, seed=seed, batch_size=batch_size, start=start):
            m = len(next(iter(table.values())))
            writer.write(_with_conditions(table, cond, model.cond_keys, m) if keep_conditions else table)
        return n
    written = 0
    for chunk in _cond_chunks(cond_file, file_keys, start, n, batch_size):
        m = len(next(iter(chunk.values())))
        merged = {**chunk, **{k: v for k, v in cond.items()}}
        for table in model.iter_samples(m, cond=merged, seed=seed, batch_size=batch_size, start=start + written):
            writer.write(_with_conditions(table, merged, model.cond_keys, m) if keep_conditions else table)
        written += m
    return written


def generate_to_file(
    model_path: str | Path,
    output: str | Path,
    *,
    n: int | None = None,
    cond: Mapping[str, float] | None = None,
    cond_file: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 100_000,
    device: str = "auto",
    force: bool = False,
    writer_options: Mapping[str, Any] | None = None,
    keep_conditions: bool = False,
) -> int:
    """Generate particles from a model directory into ``output``; return the number of rows written.

    Conditions come from ``cond`` (one value each, by name), from the columns of
    ``cond_file`` named like the model's conditions (one row per particle), or
    from both (each condition from exactly one of them). ``keep_conditions``
    writes the condition columns beside the generated ones.
    """
    from gansim.io.phsp import accepted_writer_options

    # options such as particle/drop_unknown concern MCPL and IAEA only; other formats store any column
    accepted = accepted_writer_options(output)
    writer_options = {k: v for k, v in (writer_options or {}).items() if k in accepted}
    from gansim.models import load_model
    from gansim.training.distributed import init_distributed

    output = Path(output)
    detect_format(output)  # fail on an unknown suffix before any work
    if output.exists() and not force:
        raise OutputExistsError(f"{output}: already exists; pass --force to overwrite it")
    cond = dict(cond or {})
    cond_path = Path(cond_file) if cond_file is not None else None
    if cond_path is not None:
        with open_reader(cond_path) as reader:
            available = reader.n_rows
        if available is None:
            available = sum(len(next(iter(c.values()))) for c in open_reader(cond_path).iter_chunks(batch_size))
        if n is None:
            n = available
        elif n > available:
            raise DataError(f"{cond_path}: holds {available} condition rows but -n {n} was asked for")
    if n is None:
        raise DataError("give the number of particles with -n (or a --cond-file)")
    if n < 0:
        raise DataError(f"-n must be >= 0, got {n}")
    dist = init_distributed(device)
    columns_out: list[str] = []
    try:
        from gansim.training.device import resolve_device

        # under torchrun each process takes the GPU of its local rank
        model = load_model(model_path, device=resolve_device(device, local_rank=dist.local_rank if dist.enabled else None))
        file_keys: list[str] = []
        if cond_path is not None:
            with open_reader(cond_path) as reader:
                columns = reader.columns
            file_keys = [k for k in model.cond_keys if k in columns]
            overlap = sorted(set(cond) & set(file_keys))
            if overlap:
                raise DataError(f"condition(s) {overlap} given both with --cond and in {cond_path}; give each condition once")
            missing = [k for k in model.cond_keys if k not in file_keys and k not in cond]
            if missing:
                raise DataError(f"{cond_path}: no column for condition(s) {missing} and no --cond for them; the model needs {model.cond_keys}, the file has {', '.join(columns)}")
            if not file_keys:
                raise DataError(f"{cond_path}: holds none of the model's conditions {model.cond_keys}")
        columns_out = model.keys + (model.cond_keys if keep_conditions else [])
        ratio = model.manifest.get("training", {}).get("data", {}).get("histories_per_particle")
        if ratio and "orig_histories" in accepted and "orig_histories" not in writer_options:
            # N generated particles stand for N × (histories per particle of the training file) primaries
            writer_options["orig_histories"] = max(1, round(n * ratio))
        if not dist.enabled:
            with open_writer(output, columns=columns_out, force=force, **writer_options) as writer:
                return _generate_rows(model, writer, 0, n, cond, cond_path, file_keys, seed, batch_size, keep_conditions)
        # Each process writes its contiguous share; process 0 joins the parts in rank order.
        share = [n * r // dist.world_size for r in range(dist.world_size + 1)]
        part = output.with_name(f".{output.name}.part{dist.rank}{_suffix(output)}")
        with open_writer(part, columns=columns_out, force=True, **writer_options) as writer:
            _generate_rows(model, writer, share[dist.rank], share[dist.rank + 1] - share[dist.rank], cond, cond_path, file_keys, seed, batch_size, keep_conditions)
        dist.barrier()
        if dist.is_main:
            parts = [output.with_name(f".{output.name}.part{r}{_suffix(output)}") for r in range(dist.world_size)]
            check_writable(output, force)
            with open_writer(output, columns=columns_out, force=force, **writer_options) as writer:
                for p in parts:
                    with open_reader(p) as reader:
                        for chunk in reader.iter_chunks(batch_size, columns_out):
                            writer.write(chunk)
            for p in parts:
                _remove_phsp(p)
        dist.barrier()
        return n
    finally:
        dist.shutdown()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".mcpl.gz", ".iaeaphsp"):
        if name.endswith(s):
            return path.name[-len(s) :]
    return path.suffix


def _remove_phsp(path: Path) -> None:
    path.unlink(missing_ok=True)
    header = path.with_suffix(".IAEAheader")
    if path.suffix.lower() == ".iaeaphsp" and header.exists():
        os.unlink(header)
