"""Small text helpers shared by the command line's tables (``gansim info`` of every family)."""

from __future__ import annotations

from typing import Any

__all__ = ["number"]


def number(value: Any, spec: str = ".4g") -> str:
    """``value`` formatted by ``spec``, or '?' when a manifest lacks it (None, older files) or holds no number there."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "?"
    return format(value, spec)
