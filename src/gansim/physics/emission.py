"""What a decay emits: the primary photons of each event, before transport.

Two kinds of event:

- *single photons* (SPECT isotopes, or a mono-energetic source): one photon per event,
  isotropic, its energy drawn from the isotope's lines in proportion to their yields.
  An activity of A Bq then gives ``A * photons_per_decay`` events per second, which is
  how GATE's gamma-spectrum sources are used for SPECT training data (cascade
  correlations between lines are not modelled).
- *annihilation pairs* (positron emitters): two 511 keV photons per event, back to back
  up to the acollinearity (0.5 degree FWHM by default), from the annihilation point
  (the decay point moved by a sampled positron range when asked for). An activity of
  A Bq gives ``A * beta_plus_fraction`` events per second; prompt gammas (Ga-68's
  1077 keV line) are not emitted in this mode.

The event keys follow GATE's phase-space actor: ``EventPosition`` is the decay point,
``EventDirection`` the direction of the (first) photon, ``EventKineticEnergy`` its energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from gansim.errors import ConfigError
from gansim.physics.isotopes import Isotope, sample_line_energies
from gansim.physics.sources import PositionSampler, annihilation_directions, isotropic_directions, positron_range_displacements
from gansim.units import deg, keV

__all__ = ["EmissionSource", "Primaries", "ELECTRON_MASS"]

ELECTRON_MASS = 510.99895 * keV  # CODATA 2018, m_e c^2


@dataclass
class Primaries:
    """The events of one chunk and their primary photons.

    Attributes:
        event_position: (n, 3) float32 mm, decay points.
        event_direction: (n, 3) float32, direction of each event's first photon.
        event_energy: (n,) float32 MeV, energy of each event's first photon.
        position: (P, 3) float32 mm, where each photon starts (annihilation point for pairs).
        direction: (P, 3) float32 unit vectors.
        energy: (P,) float32 MeV.
        event_of_photon: (P,) long, the event (0..n-1) each photon belongs to; photons of an
            event are adjacent and in order (first photon first).
    """

    event_position: torch.Tensor
    event_direction: torch.Tensor
    event_energy: torch.Tensor
    position: torch.Tensor
    direction: torch.Tensor
    energy: torch.Tensor
    event_of_photon: torch.Tensor


@dataclass
class EmissionSource:
    """A photon source: where decays happen and what each emits.

    Args:
        positions: sampler of decay points (point, box, sphere, activity image).
        isotope: the radionuclide; ``None`` with ``energy`` for mono-energetic photons.
        energy: mono-energetic photon energy (MeV), instead of the isotope's lines.
        pairs: emit annihilation pairs; default True for a positron emitter with no ``energy``.
        acollinearity_fwhm: FWHM (rad) of the deviation of pairs from back to back; 0 for exact.
        positron_range: move the annihilation point by a sampled positron range (pairs only).
    """

    positions: PositionSampler
    isotope: Isotope | None = None
    energy: float | None = None
    pairs: bool | None = None
    acollinearity_fwhm: float = 0.5 * deg
    positron_range: bool = False

    def __post_init__(self) -> None:
        if self.isotope is None and self.energy is None:
            raise ConfigError("a source needs an isotope or a photon energy")
        if self.energy is not None and not self.energy > 0:
            raise ConfigError(f"source photon energy {self.energy!r} MeV: expected > 0")
        if self.pairs is None:
            self.pairs = self.energy is None and self.isotope is not None and self.isotope.beta_plus_fraction > 0
        if self.pairs and self.isotope is not None and self.isotope.beta_plus_fraction <= 0 and self.energy is None:
            raise ConfigError(f"isotope {self.isotope.name} emits no positrons; annihilation pairs need a positron emitter (F18, Ga68)")
        if not self.pairs and self.energy is None and self.isotope is not None and self.isotope.photons_per_decay <= 0:
            raise ConfigError(f"isotope {self.isotope.name} has no photon lines; use pairs for a positron emitter")
        if self.positron_range and not self.pairs:
            raise ConfigError("positron_range applies to annihilation pairs only")
        if self.acollinearity_fwhm < 0:
            raise ConfigError(f"acollinearity_fwhm {self.acollinearity_fwhm!r}: expected >= 0")

    @property
    def photons_per_event(self) -> int:
        return 2 if self.pairs else 1

    @property
    def events_per_decay(self) -> float:
        """Events per decay of the isotope: what turns an activity into an event rate."""
        if self.isotope is None or self.energy is not None:
            return 1.0
        return self.isotope.beta_plus_fraction if self.pairs else self.isotope.photons_per_decay

    @property
    def half_life(self) -> float | None:
        return None if self.isotope is None else self.isotope.half_life

    @property
    def max_energy(self) -> float:
        """Highest photon energy the source emits (MeV)."""
        if self.energy is not None:
            return float(self.energy)
        if self.pairs:
            return ELECTRON_MASS
        assert self.isotope is not None
        return max(e for e, _ in self.isotope.lines)

    def emit(
        self,
        n: int,
        generator: torch.Generator,
        *,
        density_at: Callable[[torch.Tensor], torch.Tensor] | None = None,
        inside: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> Primaries:
        """Sample ``n`` events.

        Args:
            n: number of events.
            generator: random generator on the sampler's device.
            density_at: for the positron range, a callable ``position (n, 3) -> density (n,) g/cm3``
                (the phantom's lookup); ranges are scaled from water by 1/density (at least
                :data:`gansim.physics.sources.MIN_RANGE_DENSITY`).
            inside: a callable ``position (n, 3) -> bool (n,)`` (the exit surface's ``contains``):
                a positron whose annihilation point would fall outside annihilates at its decay point.
        """
        device = self.positions.device
        decay = self.positions.sample(n, generator).to(torch.float32)
        if not self.pairs:
            direction = isotropic_directions(n, generator, device)
            if self.energy is not None:
                energy = torch.full((n,), float(self.energy), dtype=torch.float32, device=device)
            else:
                assert self.isotope is not None
                energy = sample_line_energies(self.isotope, n, generator, device).to(torch.float32)
            return Primaries(decay, direction, energy, decay, direction, energy, torch.arange(n, device=device))

        start = decay
        if self.positron_range:
            assert self.isotope is not None
            density = density_at(decay) if density_at is not None else None
            start = decay + positron_range_displacements(self.isotope, n, generator, device, density=density).to(decay.dtype)
            if inside is not None:
                start = torch.where(inside(start)[:, None], start, decay)
        d1, d2 = annihilation_directions(n, generator, device, acollinearity_fwhm=self.acollinearity_fwhm)
        e = float(self.energy) if self.energy is not None else ELECTRON_MASS
        energy = torch.full((2 * n,), e, dtype=torch.float32, device=device)
        # interleave so the two photons of an event are adjacent: [e0 p1, e0 p2, e1 p1, ...]
        position = torch.stack([start, start], dim=1).reshape(2 * n, 3)
        direction = torch.stack([d1, d2], dim=1).reshape(2 * n, 3)
        event_of_photon = torch.arange(n, device=device).repeat_interleave(2)
        return Primaries(decay, d1, energy[:n].clone(), position, direction, energy, event_of_photon)
