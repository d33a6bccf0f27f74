"""Device choice: ``auto`` is CUDA, then Apple MPS, then CPU; never a crash on a machine without a GPU."""

from __future__ import annotations

import torch

from gansim.errors import ConfigError

__all__ = ["resolve_device", "DEVICE_CHOICES"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a usable :class:`torch.device`.

    ``auto`` falls back silently to the CPU. Asking explicitly for a device that is
    not there is a :class:`ConfigError` (the user asked for it, so say so), where
    GATE's ``gpu_mode="gpu"`` ends the process.
    """
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank if local_rank is not None else torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but CUDA is not available here; use device='auto' or 'cpu'")
        if text == "cuda" and local_rank is not None:
            return torch.device("cuda", local_rank)
        return torch.device(text)
    if text == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise ConfigError("device 'mps' was asked for but Apple MPS is not available here; use device='auto' or 'cpu'")
        return torch.device("mps")
    raise ConfigError(f"device {name!r} is not known; expected one of {', '.join(DEVICE_CHOICES)} or 'cuda:N'")
