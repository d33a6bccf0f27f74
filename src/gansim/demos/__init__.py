"""The demos: the main jobs of gansim on built-in data, end to end.

``gansim demo`` (``make demo``) runs ``spect``: analog Monte Carlo → conditional GAN →
a dynamic simulation with both sources → a report comparing them. ``gansim demo linac``
runs the phase-space GAN demo of a linac head.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gansim.errors import GansimError

__all__ = ["run_demo", "DEMOS", "prepare_demo_dir"]

#: demo name -> what it shows
DEMOS = {
    "spect": "Tc-99m SPECT: Monte Carlo training data, a conditional GAN source, a 3-run dynamic simulation, GAN vs Monte Carlo",
    "linac": "a linac phase-space GAN trained on an analytic 6 MV-like phase space",
}


def prepare_demo_dir(output: Path, force: bool) -> Path:
    """The demo directory, created; a non-empty one is refused unless ``force``."""
    from gansim.errors import OutputExistsError

    output = Path(output)
    if output.exists() and any(output.iterdir()) and not force:
        raise OutputExistsError(f"{output}: demo directory is not empty; pass --force to run the demo again there")
    output.mkdir(parents=True, exist_ok=True)
    return output


def run_demo(name: str, output: Path, *, minutes: float | None = None, force: bool = False, log: Callable[[str], None] = print, out: Any = None) -> dict[str, Any]:
    """Run demo ``name`` into ``output`` (``minutes``: training budget, the demo's default when None); return its headline numbers."""
    if name == "linac":
        from gansim.demos.linac import run_linac_demo

        return run_linac_demo(Path(output), minutes=3.0 if minutes is None else minutes, force=force, log=log, out=out)
    if name == "spect":
        from gansim.demos.spect import run_spect_demo

        return run_spect_demo(Path(output), minutes=5.0 if minutes is None else minutes, force=force, log=log, out=out)
    raise GansimError(f"unknown demo {name!r}; available: {', '.join(DEMOS)}")
