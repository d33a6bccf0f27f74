"""Small text helpers shared by the command line's tables (``gansim info`` of every family) and the training logs."""

from __future__ import annotations

from typing import Any

__all__ = ["number"]


def number(value: Any, spec: str = ".4g", missing: str = "?") -> str:
    """``value`` formatted by ``spec``, or ``missing`` when there is no number (None: a manifest lacks it, or a summary
    has no finite value, e.g. the PSNR of identical volumes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return missing
    return format(value, spec)
