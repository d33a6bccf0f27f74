"""Checkpoints that resume exactly, stored as data: safetensors + JSON, never a pickle.

A checkpoint is a directory ``ckpt-<rows seen>/`` holding

- ``tensors.safetensors``: every tensor of the state (module weights, optimiser
  moments, EMA weights, RNG states as uint8 tensors);
- ``state.json``: the rest of the nested state (step counters, hyper-parameters,
  NumPy generator states, config) with ``{"__tensor__": name}`` placeholders.

It is written into a temporary directory and renamed into place, so a crash
while saving never leaves a half checkpoint that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from gansim.errors import ModelFileError

__all__ = ["flatten_state", "unflatten_state", "save_checkpoint", "load_checkpoint", "list_checkpoints", "latest_checkpoint", "prune_checkpoints"]

CHECKPOINT_FORMAT = "gansim-checkpoint"
CHECKPOINT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{12})$")


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor] | None = None, prefix: str = "t") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state into a JSON-able skeleton and a flat dict of tensors.

    Handles dicts (any hashable keys: int keys of optimiser states survive),
    lists, tuples, tensors, NumPy arrays and scalars, str, int, float, bool, None.
    """
    if tensors is None:
        tensors = {}
    if isinstance(obj, torch.Tensor):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}, tensors
    if isinstance(obj, np.ndarray):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": name}, tensors
    if isinstance(obj, np.generic):
        return obj.item(), tensors
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten_state(v, tensors, prefix)[0] for k, v in obj.items()}, tensors
        items = [[flatten_state(k, tensors, prefix)[0], flatten_state(v, tensors, prefix)[0]] for k, v in obj.items()]
        return {"__items__": items}, tensors
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, prefix)[0] for v in obj]}, tensors
    if isinstance(obj, list):
        return [flatten_state(v, tensors, prefix)[0] for v in obj], tensors
    if obj is None or isinstance(obj, (str, bool, int, float)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}, tensors
        return obj, tensors
    raise TypeError(f"cannot store an object of type {type(obj).__name__} in a checkpoint (only plain data and tensors)")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_hashable(unflatten_state(k, tensors)): unflatten_state(v, tensors) for k, v in obj["__items__"]}
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def save_checkpoint(run_dir: Path, rows_seen: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``run_dir/checkpoints/ckpt-<rows_seen>/`` atomically; return its path."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{rows_seen:012d}"
    skeleton, tensors = flatten_state(state)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=root))
    try:
        save_file(tensors, str(tmp / "tensors.safetensors"))
        document = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "rows_seen": rows_seen, "state": skeleton}
        with open(tmp / "state.json", "w") as fh:
            json.dump(document, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():  # same rows seen saved twice (e.g. final save right after a periodic one)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint directory written by :func:`save_checkpoint` (no unpickling)."""
    path = Path(path)
    state_file, tensor_file = path / "state.json", path / "tensors.safetensors"
    if not state_file.is_file() or not tensor_file.is_file():
        raise ModelFileError(f"{path}: not a gansim checkpoint (expected state.json and tensors.safetensors inside)")
    try:
        document = json.loads(state_file.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{state_file}: corrupt checkpoint state ({err})") from err
    if document.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{state_file}: key 'format' is {document.get('format')!r}; expected {CHECKPOINT_FORMAT!r}")
    if document.get("format_version") != CHECKPOINT_VERSION:
        raise ModelFileError(f"{state_file}: checkpoint format_version {document.get('format_version')!r}; this gansim reads {CHECKPOINT_VERSION}")
    try:
        tensors = load_file(str(tensor_file))
    except Exception as err:  # safetensors raises its own error types
        raise ModelFileError(f"{tensor_file}: corrupt checkpoint tensors ({err})") from err
    return unflatten_state(document["state"], tensors)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (``keep <= 0`` keeps everything)."""
    if keep <= 0:
        return
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
