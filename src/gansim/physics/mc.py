"""Analog photon Monte Carlo runs that write GATE-style exit phase spaces, chunk by chunk.

One row per photon that leaves the exit surface, with GATE's phase-space keys
(:data:`EXIT_COLUMNS`): the exit energy, position, direction and times, and the event's
ID, decay point, first-photon direction and energy. With ``absorbed_rows`` every event in
which nothing leaves gets one row of zeros except ``EventID`` and the ``Event*`` keys,
as GATE's ``store_absorbed_event`` does: this is how a conditional GAN learns the
probability of absorption. Events are processed in chunks of ``chunk_size`` and written
as they come, so memory is bounded whatever the number of primaries; each chunk's
emission draws from its own generator seeded from ``(seed, chunk index)``, so one seed
(and chunk size) gives the same file every time on a given device. The photons of consecutive chunks
share the transport's steps (the next chunk joins when half of the current one is
done), which keeps the tensors large; its random stream is seeded from ``seed`` too.
"""

from __future__ import annotations

import time as _time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from gansim.errors import ConfigError
from gansim.io.phsp import accepted_writer_options, detect_format, open_writer
from gansim.io.phsp.columns import Table
from gansim.physics.emission import EmissionSource, Primaries
from gansim.physics.pet import hits_to_pairs, pairs_to_tlor
from gansim.physics.sources import DecayTimes
from gansim.physics.transport import ExitPhotons, PhotonTransport

__all__ = ["EXIT_COLUMNS", "LAYOUTS", "MCSummary", "run_mc", "iter_mc_chunks", "chunk_seed"]

LAYOUTS = ("photons", "pairs", "tlor")

EXIT_COLUMNS: tuple[str, ...] = (
    "KineticEnergy",
    "PrePosition_X",
    "PrePosition_Y",
    "PrePosition_Z",
    "PreDirection_X",
    "PreDirection_Y",
    "PreDirection_Z",
    "TimeFromBeginOfEvent",
    "GlobalTime",
    "Weight",
    "EventID",
    "EventPosition_X",
    "EventPosition_Y",
    "EventPosition_Z",
    "EventDirection_X",
    "EventDirection_Y",
    "EventDirection_Z",
    "EventKineticEnergy",
)


@dataclass
class MCSummary:
    """Counts and energy bookkeeping of a run (energies in MeV; ``seconds`` is wall time,
    including what the consumer does between chunks, such as writing them)."""

    events: int = 0
    photons_emitted: int = 0
    photons_exited: int = 0
    absorbed_events: int = 0
    rows_written: int = 0
    energy_emitted: float = 0.0
    energy_exited: float = 0.0
    energy_deposited: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    chunks: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["events_per_second"] = self.events_per_second
        return d


def chunk_seed(seed: int, chunk: int, stream: int = 0) -> int:
    """A 63-bit seed for chunk ``chunk`` of a run seeded with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(stream), int(chunk)]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _whole(value: object, what: str) -> int:
    """An integer count; 1e6 given as a float is accepted when it is whole."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value != int(value):
        raise ConfigError(f"{what} {value!r}: expected a whole number")
    return int(value)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _event_times(source: EmissionSource, *, n: int | None, activity: float | None, duration: float | None, start_time: float, chunk_size: int, seed: int, device: torch.device) -> Iterator[torch.Tensor]:
    """Decay times (float64 ns) of the events, chunk by chunk."""
    if n is not None:
        if activity is not None:
            raise ConfigError("give either a number of primaries n or an activity and a duration, not both")
        if n < 0:
            raise ConfigError(f"number of primaries {n}: expected >= 0")
        if duration is not None:
            # n decays spread over the window as the decay law says (the Poisson process given its count)
            if not duration > 0:
                raise ConfigError(f"duration {duration!r}: must be > 0")
            times = DecayTimes(1.0, source.half_life, start_time, start_time + duration)
            yield from times.spread(n, chunk_size, _generator(device, chunk_seed(seed, 0, stream=1)))
            return
        done = 0
        while done < n:
            k = min(chunk_size, n - done)
            yield torch.full((k,), float(start_time), dtype=torch.float64, device=device)
            done += k
        return
    if activity is None or duration is None:
        raise ConfigError("give a number of primaries n, or both an activity (Bq) and a duration")
    if not activity > 0 or not duration > 0:
        raise ConfigError(f"activity {activity!r} and duration {duration!r}: both must be > 0")
    rate = activity * source.events_per_decay
    times = DecayTimes(rate, source.half_life, start_time, start_time + duration)
    yield from times.chunks(chunk_size, _generator(device, chunk_seed(seed, 0, stream=1)))


def _rows(primaries: Primaries, event_time: torch.Tensor, exits: ExitPhotons, first_event_id: int, absorbed_rows: bool) -> tuple[Table, int]:
    """The output table of one chunk (rows ordered by event then photon) and its number of absorbed events."""
    n = int(event_time.shape[0])
    ev = primaries.event_of_photon[exits.primary]
    absorbed = torch.nonzero(torch.bincount(ev, minlength=n) == 0).squeeze(1)
    n_absorbed = int(absorbed.shape[0])
    if not absorbed_rows:
        absorbed = absorbed[:0]
    first_photon = torch.searchsorted(primaries.event_of_photon, torch.arange(n, device=ev.device))
    order = torch.argsort(torch.cat([exits.primary * 2, first_photon[absorbed] * 2 + 1]), stable=True)
    m, a = int(ev.shape[0]), int(absorbed.shape[0])

    def both(exit_values: torch.Tensor, absorbed_values: torch.Tensor) -> np.ndarray:
        return torch.cat([exit_values, absorbed_values])[order].cpu().numpy()

    zeros32 = torch.zeros(a, dtype=torch.float32, device=ev.device)
    zeros64 = torch.zeros(a, dtype=torch.float64, device=ev.device)
    ev_all = torch.cat([ev, absorbed])
    table: Table = {
        "KineticEnergy": both(exits.energy, zeros32),
        "PrePosition_X": both(exits.position[:, 0], zeros32),
        "PrePosition_Y": both(exits.position[:, 1], zeros32),
        "PrePosition_Z": both(exits.position[:, 2], zeros32),
        "PreDirection_X": both(exits.direction[:, 0], zeros32),
        "PreDirection_Y": both(exits.direction[:, 1], zeros32),
        "PreDirection_Z": both(exits.direction[:, 2], zeros32),
        "TimeFromBeginOfEvent": both(exits.time - event_time[ev], zeros64),
        "GlobalTime": both(exits.time, zeros64),
        "Weight": both(torch.ones(m, dtype=torch.float32, device=ev.device), zeros32),
        "EventID": (ev_all[order] + first_event_id).cpu().numpy().astype(np.int64),
    }
    ev_sorted = ev_all[order]
    for axis, name in enumerate("XYZ"):
        table[f"EventPosition_{name}"] = primaries.event_position[ev_sorted, axis].cpu().numpy()
        table[f"EventDirection_{name}"] = primaries.event_direction[ev_sorted, axis].cpu().numpy()
    table["EventKineticEnergy"] = primaries.event_energy[ev_sorted].cpu().numpy()
    return {k: table[k] for k in EXIT_COLUMNS}, n_absorbed


def iter_mc_chunks(
    transport: PhotonTransport,
    source: EmissionSource,
    *,
    n: int | None = None,
    activity: float | None = None,
    duration: float | None = None,
    start_time: float = 0.0,
    seed: int = 0,
    chunk_size: int = 1 << 18,
    absorbed_rows: bool = True,
    summary: MCSummary | None = None,
) -> Iterator[tuple[Table, Primaries, ExitPhotons]]:
    """Run the Monte Carlo and yield ``(rows, primaries, exits)`` chunk by chunk (the core of :func:`run_mc`).

    Args:
        transport: phantom, exit surface and cross sections.
        source: what each event emits and where.
        n: number of events (decays that emit; see :mod:`gansim.physics.emission`), or
        activity: Bq in gansim units (``100 * MBq``) with
        duration: ns (``10 * s``); decays follow a Poisson process decaying with the isotope's half-life.
            With ``n`` and a duration, the n decays are spread over the window by the same law
            (without a duration they all happen at ``start_time``).
        start_time: ns, time of the first decay window.
        seed: one seed gives the same chunks every time (same chunk size and device).
        chunk_size: events per chunk; up to ~1.5 chunks are in flight, ~1.5 KB per event
            with temporaries (2^18 events: ~0.6 GB above the runtime).
        absorbed_rows: one row per event in which no photon leaves.
        summary: filled in as chunks are produced.
    """
    chunk_size = _whole(chunk_size, "chunk_size")
    if n is not None:
        n = _whole(n, "number of primaries n")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size {chunk_size}: expected >= 1")
    device = transport.device
    if source.positions.device != device:
        raise ConfigError(f"the source samples on {source.positions.device} but the transport runs on {device}; build both for one device")
    transport.check_energies(torch.tensor([source.max_energy]))
    summary = summary if summary is not None else MCSummary()
    density_at: Callable[[torch.Tensor], torch.Tensor] = lambda p: transport.phantom.lookup(p)[1]  # noqa: E731
    emitted: deque[tuple[Primaries, torch.Tensor]] = deque()  # chunks handed to the transport, not yet returned
    last = _time.perf_counter()

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        times = _event_times(source, n=n, activity=activity, duration=duration, start_time=start_time, chunk_size=chunk_size, seed=seed, device=device)
        for chunk, event_time in enumerate(times):
            primaries = source.emit(int(event_time.shape[0]), _generator(device, chunk_seed(seed, chunk)), density_at=density_at, inside=transport.surface.contains)
            emitted.append((primaries, event_time))
            yield primaries.position, primaries.direction, primaries.energy, event_time[primaries.event_of_photon]

    # one generator for the transport of the whole stream (photons of consecutive chunks share steps)
    next_event_id = 0
    for exits in transport.run_stream(batches(), _generator(device, chunk_seed(seed, 0, stream=2))):
        primaries, event_time = emitted.popleft()
        k = int(event_time.shape[0])
        rows, n_absorbed = _rows(primaries, event_time, exits, next_event_id, absorbed_rows)
        next_event_id += k
        summary.events += k
        summary.photons_emitted += int(primaries.energy.shape[0])
        summary.photons_exited += int(exits.energy.shape[0])
        summary.absorbed_events += n_absorbed
        summary.rows_written += len(rows["EventID"])
        summary.energy_emitted += float(primaries.energy.double().sum())
        summary.energy_exited += float(exits.energy.double().sum())
        summary.energy_deposited += float(exits.deposited.sum())
        summary.steps += exits.steps
        summary.chunks += 1
        now = _time.perf_counter()
        summary.seconds += now - last
        last = now
        yield rows, primaries, exits


def run_mc(
    transport: PhotonTransport,
    source: EmissionSource,
    output: str | Path,
    *,
    n: int | None = None,
    activity: float | None = None,
    duration: float | None = None,
    start_time: float = 0.0,
    seed: int = 0,
    chunk_size: int = 1 << 18,
    absorbed_rows: bool = True,
    force: bool = False,
    layout: str = "photons",
    writer_options: dict[str, object] | None = None,
    progress: Callable[[MCSummary], None] | None = None,
) -> MCSummary:
    """Run the Monte Carlo and stream the exit phase space into ``output`` (any gansim phase-space format).

    The file is written atomically (nothing is left behind if the run fails) and an
    existing file is refused unless ``force``. See :func:`iter_mc_chunks` for the arguments.

    ``layout``: ``photons`` writes one row per exit photon (GATE's keys, :data:`EXIT_COLUMNS`);
    for annihilation-pair sources, ``pairs`` writes one row per event with both photons
    (``E1 E2 X1..Z2 dX1..dZ2 t1 t2`` + event keys, :func:`gansim.physics.pet.hits_to_pairs`)
    and ``tlor`` the pair parametrisation pair GANs are trained on
    (:func:`gansim.physics.pet.pairs_to_tlor`). The pair counts (pairs, singles, absorbed)
    are added to the summary's ``extra``.

    Returns:
        the run's counts, energy bookkeeping and timing.
    """
    fmt = detect_format(output)
    if absorbed_rows and fmt in ("mcpl", "iaea"):
        raise ConfigError(
            f"{output}: absorbed-event rows (zero energy, no direction) cannot be stored in {fmt.upper()}; "
            "write .root/.npy/.npz, or turn them off (absorbed_rows=False, --no-absorbed-rows)"
        )
    if layout not in LAYOUTS:
        raise ConfigError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if layout != "photons" and not source.pairs:
        raise ConfigError(f"layout {layout!r} groups annihilation pairs; this source emits single photons (use layout 'photons')")
    if layout != "photons" and fmt in ("mcpl", "iaea"):
        raise ConfigError(f"{output}: the {layout} layout is a table of pairs, not particles; write .root, .npy or .npz")
    options = dict(writer_options or {})
    if "particle" in accepted_writer_options(output) and "particle" not in options:
        options["particle"] = "gamma"  # MCPL/IAEA need the particle type; every row is a photon
    summary = MCSummary()
    columns = list(EXIT_COLUMNS) if layout == "photons" else None  # pair columns come with the first chunk
    with open_writer(output, columns=columns, force=force, **options) as writer:
        for rows, _, _ in iter_mc_chunks(
            transport, source, n=n, activity=activity, duration=duration, start_time=start_time, seed=seed,
            chunk_size=chunk_size, absorbed_rows=absorbed_rows, summary=summary,
        ):
            if layout != "photons":
                rows, counts = hits_to_pairs(rows)
                for key, value in counts.items():
                    summary.extra[key] = int(summary.extra.get(key, 0)) + int(value)  # type: ignore[call-overload]
                if layout == "tlor":
                    rows = pairs_to_tlor(rows)
            writer.write(rows)
            if progress is not None:
                progress(summary)
        summary.rows_written = writer.rows_written  # pair layouts: one row per event, not per photon
    return summary
