"""Registry of GAN families, keyed by the name stored in the model manifest."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any

import torch

from gansim.errors import ModelFileError

__all__ = ["FAMILIES", "register_family", "get_family", "load_model"]

#: family name -> module that registers it (imported on first use, so a source needs no training extras).
FAMILIES: dict[str, str] = {
    "phsp": "gansim.models.phsp_gan",
    "calogan": "gansim.models.calogan_model",
    "showergan": "gansim.models.showergan_model",
    "pacgan": "gansim.models.pacgan_model",
    "cyclegan": "gansim.models.cyclegan_model",
}
_REGISTERED: dict[str, Any] = {}


def register_family(name: str):  # type: ignore[no-untyped-def]
    """Class decorator: the family's loaded-model class, with ``from_model_dir(manifest, tensors, device)``."""

    def wrap(cls: Any) -> Any:
        _REGISTERED[name] = cls
        return cls

    return wrap


def get_family(name: str) -> Any:
    """The loaded-model class of a family."""
    if name not in FAMILIES:
        close = difflib.get_close_matches(name, list(FAMILIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelFileError(f"unknown model family {name!r}{hint}; this gansim knows {', '.join(FAMILIES)}")
    if name not in _REGISTERED:
        importlib.import_module(FAMILIES[name])
    return _REGISTERED[name]


def load_model(path: str | Path, device: str | torch.device = "auto") -> Any:
    """Load a model directory written by gansim; no unpickling happens.

    Args:
        path: the model directory (or its ``manifest.json``).
        device: ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda[:N]`` or ``mps``.
    """
    from gansim.models.model_file import read_model_dir
    from gansim.training.device import resolve_device

    dev = resolve_device(device)
    manifest, tensors = read_model_dir(path, device="cpu")
    cls = get_family(manifest["family"])
    return cls.from_model_dir(manifest, tensors, dev, source=str(path))
