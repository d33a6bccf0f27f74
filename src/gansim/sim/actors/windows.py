"""Energy windows: weighted particle counts per energy window, run and source.

A window ``(label, e_min, e_max)`` (MeV) holds the particles with ``e_min <= E < e_max``;
windows may overlap, and a particle counts in each window that holds it. The same
windows split the projection actor's images (:mod:`gansim.sim.actors.projection`)::

    sim.add_actor(EnergyWindowsActor("windows", TC99M_WINDOWS, output="windows.json"))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import torch

from gansim.errors import ConfigError, DataError
from gansim.sim.actors.base import RunContext
from gansim.sim.actors.json_output import JsonResultsActor
from gansim.sim.actors.phsp import check_source_option, check_sources
from gansim.sim.particles import ParticleBatch
from gansim.units import keV

__all__ = ["EnergyWindowsActor", "EnergyWindow", "parse_energy_windows", "window_weights", "TC99M_WINDOWS", "ALL_ENERGIES"]

#: ``(label, e_min, e_max)``, MeV.
EnergyWindow = tuple[str, float, float]

#: Tc-99m (140.5 keV) acquisition windows, MeV. ``photopeak``: the usual 20 % window,
#: 140.5 keV +- 10 % = [126.45, 154.55) keV. ``scatter``: the lower scatter window of a
#: triple/dual-energy-window scatter correction, taken adjacent below the photopeak and as
#: wide in relative terms: a 20 % window centred at 114.95 keV (126.45 / 1.1), i.e.
#: [103.46, 126.45) keV. It sees only scattered photons (a 140.5 keV photon that lost
#: at least 10 % of its energy, i.e. Compton-scattered by more than about 53 degrees).
TC99M_WINDOWS: tuple[EnergyWindow, ...] = (
    ("scatter", 126.45 * keV / 1.1 * 0.9, 126.45 * keV),
    ("photopeak", 126.45 * keV, 154.55 * keV),
)

#: One window holding every particle (energies are > 0): the projection actor's default.
ALL_ENERGIES: tuple[EnergyWindow, ...] = (("all", 0.0, math.inf),)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{what}: {value!r} is not a number; expected an energy in MeV")
    return float(value)


def parse_energy_windows(windows: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]]) -> list[EnergyWindow]:
    """Check energy windows and return them as ``[(label, e_min, e_max), ...]`` (MeV).

    Args:
        windows: ``[(label, e_min, e_max), ...]`` or ``{label: (e_min, e_max)}``, MeV
            (multiply keV values by :data:`gansim.units.keV`).

    Each window needs a unique non-empty label and ``0 <= e_min < e_max``, ``e_min`` finite;
    ``e_max`` may be ``math.inf`` (no upper bound, as in :data:`ALL_ENERGIES`), never NaN.

    Raises:
        ConfigError: naming the window and what was expected.
    """
    if isinstance(windows, Mapping):
        items: list[Any] = []
        for label, bounds in windows.items():
            if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence) or len(bounds) != 2:
                raise ConfigError(f"energy window {label!r}: {bounds!r}: expected (e_min, e_max) in MeV")
            items.append((label, *bounds))
    elif isinstance(windows, (str, bytes)) or not isinstance(windows, Sequence):
        raise ConfigError(f"energy windows {windows!r}: expected a list of (label, e_min, e_max) in MeV or a dict label -> (e_min, e_max)")
    else:
        items = list(windows)
    if not items:
        raise ConfigError("energy windows: the list is empty; expected at least one (label, e_min, e_max) in MeV")
    out: list[EnergyWindow] = []
    for i, item in enumerate(items):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 3:
            raise ConfigError(f"energy window #{i} {item!r}: expected (label, e_min, e_max) in MeV")
        label, lo, hi = item
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"energy window #{i} {item!r}: the label must be a non-empty string")
        where = f"energy window {label!r}"
        e_min, e_max = _number(lo, f"{where}: e_min"), _number(hi, f"{where}: e_max")
        if not math.isfinite(e_min) or e_min < 0:
            raise ConfigError(f"{where}: e_min = {e_min!r} MeV; expected a finite energy >= 0")
        if math.isnan(e_max) or e_max <= e_min:
            raise ConfigError(f"{where}: e_max = {e_max!r} MeV; expected e_max > e_min = {e_min!r} MeV (math.inf for no upper bound)")
        if any(label == w[0] for w in out):
            raise ConfigError(f"{where}: the label is used by another window; labels must be unique")
        out.append((label, e_min, e_max))
    return out


def window_weights(energy: torch.Tensor, weight: torch.Tensor, windows: Sequence[EnergyWindow]) -> torch.Tensor:
    """Membership of each particle in each window, times its weight.

    Args:
        energy: (m,) MeV.
        weight: (m,) particle weights.
        windows: parsed windows (:func:`parse_energy_windows`).

    Returns:
        (n_windows, m) float64 on ``energy``'s device: ``weight`` where ``e_min <= E < e_max``, else 0.

    The bounds are compared in the energy's own precision (float32 for sources), so a
    particle whose stored energy equals ``e_min`` as written counts in, and one equal to
    ``e_max`` counts out, whatever float64 -> float32 rounding does to the bound.
    """
    if energy.device.type == "mps":  # MPS has no float64
        energy, weight = energy.cpu(), weight.cpu()
    w = weight.to(torch.float64)
    rows = []
    for _, e_min, e_max in windows:
        lo = torch.tensor(e_min, dtype=energy.dtype, device=energy.device)
        inside = energy >= lo
        if math.isfinite(e_max):
            inside &= energy < torch.tensor(e_max, dtype=energy.dtype, device=energy.device)
        rows.append(torch.where(inside, w, torch.zeros((), dtype=torch.float64, device=w.device)))
    return torch.stack(rows) if rows else torch.zeros((0, energy.shape[0]), dtype=torch.float64, device=energy.device)


def bounds_for_json(windows: Sequence[EnergyWindow]) -> dict[str, list[float | None]]:
    """``{label: [e_min, e_max]}`` MeV, with ``None`` for an open upper bound (JSON has no infinity)."""
    return {label: [lo, hi if math.isfinite(hi) else None] for label, lo, hi in windows}


class EnergyWindowsActor(JsonResultsActor):
    """Weighted particle counts in energy windows, per run and per source.

    Args:
        name: the actor's name.
        windows: ``[(label, e_min, e_max), ...]`` or ``{label: (e_min, e_max)}``, MeV
            (see :func:`parse_energy_windows`; e.g. :data:`TC99M_WINDOWS`).
        output: optional ``.json`` file written atomically by :meth:`finalize`.
        sources: names of the sources to count (default all).

    results: ``{"windows": [labels], "bounds_MeV": {label: [e_min, e_max]},
    "counts": {label: [sum of weights, run k]}, "per_source": {source: {label: [per run]}}}``.
    """

    def __init__(
        self,
        name: str,
        windows: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]],
        *,
        output: str | Path | None = None,
        sources: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name, output)
        try:
            self.windows = parse_energy_windows(windows)
        except ConfigError as err:
            raise ConfigError(f"actor {name!r}: windows: {err}") from None
        self.sources = check_source_option(name, sources)
        self._recorded: list[str] = []
        self.results = self._empty_results([])

    def _empty_results(self, sources: list[str]) -> dict[str, Any]:
        labels = [w[0] for w in self.windows]
        return {
            "windows": labels,
            "bounds_MeV": bounds_for_json(self.windows),
            "counts": {label: [] for label in labels},
            "per_source": {s: {label: [] for label in labels} for s in sources},
        }

    def initialize(self, context: RunContext) -> None:
        self._recorded = check_sources(self.name, self.sources, context)
        self._prepare_output(context)
        self.results = self._empty_results(self._recorded)

    def _grow(self, run_id: int) -> None:
        """Make every per-run list long enough to hold run ``run_id`` (runs with no particle count 0)."""
        lists = list(self.results["counts"].values())
        for per_label in self.results["per_source"].values():
            lists.extend(per_label.values())
        for values in lists:
            values.extend([0.0] * (run_id + 1 - len(values)))

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        self._grow(run_id)

    def process(self, batch: ParticleBatch) -> None:
        if batch.source not in self.results["per_source"]:
            return
        for key in ("KineticEnergy", "Weight"):
            if key not in batch.columns:
                raise DataError(f"actor {self.name!r}: a batch of source {batch.source!r} has no column {key!r}")
        self._grow(batch.run_id)
        sums = window_weights(batch.columns["KineticEnergy"], batch.columns["Weight"], self.windows).sum(dim=1).tolist()
        per_source = self.results["per_source"][batch.source]
        for (label, _, _), value in zip(self.windows, sums):
            self.results["counts"][label][batch.run_id] += value
            per_source[label][batch.run_id] += value

