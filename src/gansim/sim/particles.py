"""What sources hand to actors: particles of one run and the events they stand for.

A source emits, per run, batches of particles that left the patient (the exit
surface of the analog Monte Carlo, or what a GAN generates there). Beyond that point
particles travel in straight lines through the world (no attenuation): actors such as
the projection actor follow them along their direction.

Only particles with energy > 0 are in a batch. Events in which nothing leaves (absorbed
events, rows a GAN source turned to zero energy, rows it skipped) appear only in the
batch's :class:`EventCounts`, so statistics stay exact without zero-energy rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from gansim.physics.mc import EXIT_COLUMNS

__all__ = ["EventCounts", "ParticleBatch", "PARTICLE_COLUMNS", "EVENT_COLUMNS"]

#: Columns every batch holds, each a (m,) tensor on the source's device: GATE's exit keys of
#: :data:`gansim.physics.mc.EXIT_COLUMNS` without the event ones -- ``KineticEnergy`` float32 MeV
#: (> 0), ``PrePosition_*`` float32 mm (world frame), ``PreDirection_*`` float32 unit vector,
#: ``TimeFromBeginOfEvent`` and ``GlobalTime`` float64 ns (decay time + flight), ``Weight`` float32
#: -- then ``EventID`` int64 (unique in the simulation) and ``PhotonIndex`` int64 (0, or 1 for the
#: second photon of a pair).
PARTICLE_COLUMNS: tuple[str, ...] = tuple(c for c in EXIT_COLUMNS if not c.startswith("Event")) + ("EventID", "PhotonIndex")

#: Columns a batch holds when its source knows the decay (analog Monte Carlo; a conditional
#: GAN source whose conditions are the emission point/direction): float32, world frame.
EVENT_COLUMNS: tuple[str, ...] = tuple(c for c in EXIT_COLUMNS if c.startswith(("EventPosition_", "EventDirection_")))


@dataclass
class EventCounts:
    """Event accounting of one batch (or, summed, of a run or a simulation).

    Attributes:
        decays: decays (analog) or generator rows (GAN) consumed; each consumed a decay time.
        events: events simulated: ``decays - skipped``.
        skipped: rows dropped by the ``SkipEvents`` policy (no event, but their decay time passed).
        zero_energy: events that emit nothing: absorbed events (analog), rows turned to zero
            energy by the ``ZeroEnergy`` policy (GAN), both photons of a pair at zero energy.
        invalid: generator rows that could not be used (non-finite values, a pair line that
            misses the sphere); they are also counted as skipped or zero-energy by the policy.
        particles: particles in the batch (energy > 0).
    """

    decays: int = 0
    events: int = 0
    skipped: int = 0
    zero_energy: int = 0
    invalid: int = 0
    particles: int = 0

    def __iadd__(self, other: EventCounts) -> EventCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ParticleBatch:
    """Particles one source emitted during one run.

    Attributes:
        source: name of the source.
        run_id: index of the run (0-based, into the simulation's run timing intervals).
        columns: :data:`PARTICLE_COLUMNS` (+ :data:`EVENT_COLUMNS` when known), (m,) tensors.
        counts: the events this batch accounts for (including those that emitted nothing).
    """

    source: str
    run_id: int
    columns: dict[str, torch.Tensor]
    counts: EventCounts

    def __len__(self) -> int:
        return int(self.columns["KineticEnergy"].shape[0])

    def position(self) -> torch.Tensor:
        """(m, 3) float32 mm."""
        return torch.stack([self.columns[f"PrePosition_{a}"] for a in "XYZ"], dim=1)

    def direction(self) -> torch.Tensor:
        """(m, 3) float32 unit vectors."""
        return torch.stack([self.columns[f"PreDirection_{a}"] for a in "XYZ"], dim=1)
