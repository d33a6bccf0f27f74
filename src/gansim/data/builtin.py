"""Built-in synthetic data sets, by name, for demos and tests (no files needed).

:data:`BUILTIN_DATASETS` maps a name to a :class:`BuiltinDataset`, a
``(description, generate)`` named tuple: ``generate(n, seed)`` returns a table
(``dict`` column -> ``(n,)`` array, GATE names, mm/MeV/ns) and is deterministic
for a given seed::

    description, generate = BUILTIN_DATASETS["linac"]
    table = generate(100_000, 0)
    table = make_builtin("linac", 100_000, seed=0)   # same, with a helpful error for unknown names
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from gansim.data.linac import generate_linac_phsp
from gansim.errors import ConfigError

__all__ = ["BuiltinDataset", "BUILTIN_DATASETS", "make_builtin"]


class BuiltinDataset(NamedTuple):
    """One built-in data set: a one-line description and ``generate(n, seed) -> table``."""

    description: str
    generate: Callable[[int, int], dict[str, np.ndarray]]


def _linac(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The default :func:`~gansim.data.linac.generate_linac_phsp` beam."""
    return generate_linac_phsp(n, seed=seed)


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "linac": BuiltinDataset(
        "6 MV-like linac photons on a plane 700 mm below the target, 10x10 cm2 field at isocentre, "
        "~10 % flattening-filter scatter (KineticEnergy, PrePosition_X/Y/Z, PreDirection_X/Y/Z, PDGCode)",
        _linac,
    ),
}


def make_builtin(name: str, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Generate ``n`` rows of the built-in data set ``name``; ConfigError naming the known ones if unknown."""
    if name not in BUILTIN_DATASETS:
        raise ConfigError(f"unknown built-in data set {name!r}; expected one of {sorted(BUILTIN_DATASETS)}")
    return BUILTIN_DATASETS[name].generate(n, seed)
