"""Woodcock (delta) tracking of photons through a voxelised phantom up to an exit surface.

Every photon flies a free path drawn from the majorant attenuation ``mu_max(E)`` (the
largest attenuation any voxel of any material could have at that energy); at the end of
the path the real attenuation ``mu(x, E)`` is looked up and the collision is real with
probability ``mu / mu_max`` (photoelectric, Compton or Rayleigh in proportion to their
partial attenuations), otherwise fictitious and the photon flies on. This samples the
exact free-path distribution of a heterogeneous medium without computing voxel-boundary
crossings. A photon whose path would cross the exit surface is recorded there, with its
energy, position on the surface, direction and time, and leaves the simulation.

Electrons are not transported: the photoelectron's energy, the Compton electron's energy
and photons falling below ``energy_cut`` are deposited where they are produced, which is
the standard approximation for SPECT/PET emission transport. Fluorescence is not emitted.

All photons of a batch are transported together with tensor operations; the batch is
compacted every step so the cost follows the photons still alive.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from gansim.errors import ConfigError
from gansim.physics.cross_sections import CrossSectionTables
from gansim.physics.interactions import rotate_directions, sample_compton, sample_rayleigh
from gansim.physics.phantoms import VoxelPhantom
from gansim.physics.surfaces import ExitSurface
from gansim.units import c_light, keV

__all__ = ["ExitPhotons", "PhotonTransport"]

# A photon that has made this many steps (real + fictitious) is a bug or a pathological
# geometry, not physics: the mean number of steps in a patient is of order 10-100.
_MAX_STEPS = 100_000


@dataclass
class ExitPhotons:
    """Photons that crossed the exit surface, and what stayed behind.

    Attributes:
        primary: (M,) long, index of the photon in the input batch each exit photon comes from.
        energy: (M,) float32 MeV.
        position: (M, 3) float32 mm, on the exit surface.
        direction: (M, 3) float32 unit vectors.
        time: (M,) float64 ns, the input time plus the flight time.
        n_compton: (M,) int32, Compton scatterings the photon made.
        n_rayleigh: (M,) int32, Rayleigh scatterings the photon made.
        deposited: (N,) float64 MeV per input photon, energy left in the phantom (photo-absorption,
            Compton electrons, photons below the energy cut).
        steps: photon steps (real + fictitious) made since the previous batch was returned (all
            of them for a single batch), for diagnostics.
    """

    primary: torch.Tensor
    energy: torch.Tensor
    position: torch.Tensor
    direction: torch.Tensor
    time: torch.Tensor
    n_compton: torch.Tensor
    n_rayleigh: torch.Tensor
    deposited: torch.Tensor
    steps: int


class PhotonTransport:
    """Transport batches of photons through ``phantom`` until they leave ``surface`` or are absorbed.

    Args:
        phantom: the voxelised phantom (material index and density per voxel, world material around it).
        surface: the exit surface; it must enclose the phantom's image (checked here).
        tables: cross-section tables built for ``phantom.all_materials`` in that order, on the
            device the transport runs on (which processes are on is decided there).
        energy_cut: photons below this energy (MeV) deposit it locally and stop; at least the
            tables' lowest energy.
    """

    def __init__(self, phantom: VoxelPhantom, surface: ExitSurface, tables: CrossSectionTables, *, energy_cut: float = 1 * keV) -> None:
        names_phantom = [m.name for m in phantom.all_materials]
        names_tables = [m.name for m in tables.materials]
        if names_phantom != names_tables:
            raise ConfigError(f"cross-section tables are for materials {names_tables}; the phantom needs {names_phantom} in that order")
        if energy_cut < tables.e_min:
            raise ConfigError(f"energy_cut {energy_cut / keV:g} keV is below the cross-section tables' lowest energy {tables.e_min / keV:g} keV")
        surface.check_encloses(phantom.geometry.corners(), "the phantom image")
        self.device = tables.device
        self.phantom = phantom.to(self.device)
        self.surface = surface
        self.tables = tables
        self.energy_cut = float(energy_cut)
        self.majorant = tables.majorant(phantom.max_density())
        # Outside the image, flying away from it, a photon only ever meets the world material:
        # its free path is then drawn from the world's own attenuation (no fictitious steps in
        # the air between the phantom and a large exit surface). Continuous index of a point:
        # (p - b) @ to_index; the image spans [-0.5, n - 0.5] on each axis.
        geometry = phantom.geometry
        inverse = np.linalg.inv(geometry.index_to_world_matrix)
        self._to_index = torch.as_tensor(inverse.T, dtype=torch.float32, device=self.device)
        # axis-aligned images (the common case): elementwise scaling instead of a K=3 matmul
        self._to_index_diag = self._to_index.diagonal().clone() if np.count_nonzero(inverse - np.diag(np.diag(inverse))) == 0 else None
        self._index_offset = torch.as_tensor(-geometry.index_to_world_offset @ inverse.T, dtype=torch.float32, device=self.device)
        self._index_hi = torch.as_tensor(np.asarray(geometry.shape, dtype=np.float64) - 0.5, dtype=torch.float32, device=self.device)
        self._world_index = torch.tensor([len(phantom.materials)], device=self.device)
        self._world_density = float(phantom.world_material.density)

    def _world_mu(self, energy: torch.Tensor) -> torch.Tensor:
        """(N,) MeV -> (N,) mm^-1, attenuation of the world material."""
        return self.tables.mu_total(self._world_index.expand(energy.shape[0]), energy) * self._world_density

    def _leaving_image(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """(N,) bool: outside the image and moving away from it along one of its axes (never re-enters)."""
        if self._to_index_diag is not None:
            idx = torch.addcmul(self._index_offset, position, self._to_index_diag)
            d = direction * self._to_index_diag
        else:
            idx = torch.addmm(self._index_offset, position, self._to_index)
            d = direction @ self._to_index
        away = ((idx < -0.5) & (d <= 0)) | ((idx > self._index_hi) & (d >= 0))
        return away.any(dim=1)

    def check_energies(self, energy: torch.Tensor) -> None:
        """Raise ConfigError when a source energy lies outside the cross-section tables."""
        if energy.numel() and float(energy.max()) > self.tables.e_max:
            raise ConfigError(f"photon energy {float(energy.max()):g} MeV is above the cross-section tables' highest energy {self.tables.e_max:g} MeV")

    def run(self, position: torch.Tensor, direction: torch.Tensor, energy: torch.Tensor, time: torch.Tensor, generator: torch.Generator) -> ExitPhotons:
        """Transport one batch.

        Args:
            position: (N, 3) mm, inside the exit surface.
            direction: (N, 3) unit vectors.
            energy: (N,) MeV.
            time: (N,) ns (float64 keeps ns resolution over hours of acquisition).
            generator: random generator on the transport device.

        Returns:
            the exit photons and the energy each input photon left behind.
        """
        return next(self.run_stream(iter([(position, direction, energy, time)]), generator))

    def run_stream(self, batches: Iterator[Batch], generator: torch.Generator, *, refill_below: float = 0.5) -> Iterator[ExitPhotons]:
        """Transport batches of photons, refilling the photons in flight from the next batch.

        A batch's photons start in flight together; when fewer than ``refill_below`` times
        the batch size are still flying, the next batch joins them, so every step works on
        a large tensor instead of the long tail of a single batch. Results come back per
        batch, in order, as soon as every photon of that batch (and of the ones before it)
        is done. Deterministic for a given generator and sequence of batch sizes.

        Args:
            batches: ``(position (N, 3) mm, direction (N, 3), energy (N,) MeV, time (N,) ns)``
                per batch, as :meth:`run` takes them; consumed lazily.
            generator: random generator on the transport device.
            refill_below: fraction of the last batch's size under which the next batch joins.
        """
        dev = self.device
        pending = _Pending(dev)
        # The state of the photons in flight lives in two packed tensors, compacted together
        # once per step: float32 (M, 9) = position (3), direction (3), energy, majorant and world
        # attenuation at that energy (kept until the energy changes); float64 (M, 2) = time and
        # the photon's index among all batches not yet returned (exact up to 2^53).
        state = torch.zeros(0, 9, dtype=torch.float32, device=dev)
        clock = torch.zeros(0, 2, dtype=torch.float64, device=dev)
        more = True
        last_size = 0
        for iteration in itertools.count():
            if pending.joined and iteration - pending.joined[0] > _MAX_STEPS:
                raise RuntimeError(f"photon transport: photons still in flight after {_MAX_STEPS} steps; {int(state.shape[0])} photons alive")
            if more and int(state.shape[0]) <= refill_below * last_size:
                batch = next(batches, None)
                if batch is None:
                    more = False
                else:
                    new_state, new_clock, last_size = self._start_batch(batch, pending)
                    pending.joined.append(iteration)
                    state, clock = torch.cat([state, new_state]), torch.cat([clock, new_clock])
            # hand back every leading batch that has no photon left in flight
            yield from pending.retire(clock[:, 1])
            m = int(state.shape[0])
            if m == 0:
                if not more:
                    return
                continue
            pending.steps += m
            pos, dirn, e = state[:, 0:3], state[:, 3:6], state[:, 6]
            mu_max = torch.where(self._leaving_image(pos, dirn), state[:, 8], state[:, 7])
            u = torch.rand(m, 2, device=dev, generator=generator)
            free_path = torch.log1p(-u[:, 0]).div_(mu_max).neg_()  # Exp(1) / mu_max, never log(0)
            to_exit = self.surface.distance_to_exit(pos, dirn)
            leaves = free_path >= to_exit
            step = torch.minimum(free_path, to_exit)
            pos.addcmul_(step[:, None], dirn)  # in place: moves the photons in `state`
            clock[:, 0] += step.double().div_(c_light)
            if bool(leaves.any()):
                gone = torch.nonzero(leaves).squeeze(1)
                pending.exit_state.append(state.index_select(0, gone))
                pending.exit_clock.append(clock.index_select(0, gone))

            material, density = self.phantom.lookup(pos)
            threshold = u[:, 1].mul_(mu_max)
            real = (threshold < self.tables.mu_total(material, e) * density) & ~leaves
            dead = leaves
            idx = torch.nonzero(real).squeeze(1)
            if idx.numel():
                # work on the colliding rows only: gather them, update, scatter back
                rows = state.index_select(0, idx)
                mat = material.index_select(0, idx)
                e_real = rows[:, 6]
                mu_parts = self.tables.mu(mat, e_real) * density.index_select(0, idx)[:, None]
                r = threshold.index_select(0, idx)
                # 0 photoelectric, 1 Compton, 2 Rayleigh (mu's columns add up to mu_total)
                kind = (r >= mu_parts[:, 0]).to(torch.int8) + (r >= mu_parts[:, 0] + mu_parts[:, 1]).to(torch.int8)
                primary = clock[:, 1].index_select(0, idx).long()
                dead = dead.clone()
                photo = torch.nonzero(kind == 0).squeeze(1)
                if photo.numel():
                    pending.deposited.index_add_(0, primary.index_select(0, photo), e_real.index_select(0, photo).double())
                    dead.index_fill_(0, idx.index_select(0, photo), True)
                compton = torch.nonzero(kind == 1).squeeze(1)
                if compton.numel():
                    sub = rows.index_select(0, compton)
                    e_old = sub[:, 6]
                    e_new, cos_theta = sample_compton(e_old, generator, tables=self.tables, material_index=mat.index_select(0, compton))
                    phi = torch.rand(compton.shape[0], device=dev, generator=generator).mul_(2 * torch.pi)
                    below = e_new < self.energy_cut
                    # the Compton electron, and a photon that falls below the cut, deposit locally
                    p = primary.index_select(0, compton)
                    pending.deposited.index_add_(0, p, (e_old - e_new.masked_fill(below, 0.0)).double())
                    pending.n_compton.index_add_(0, p, torch.ones_like(p, dtype=torch.int32))
                    sub[:, 3:6] = rotate_directions(sub[:, 3:6], cos_theta, phi)
                    sub[:, 6] = e_new
                    sub[:, 7] = self.majorant(e_new)
                    sub[:, 8] = self._world_mu(e_new)
                    where = idx.index_select(0, compton)
                    state.index_copy_(0, where, sub)
                    if bool(below.any()):
                        dead.index_fill_(0, where[below], True)
                rayleigh = torch.nonzero(kind == 2).squeeze(1)
                if rayleigh.numel():
                    sub = rows.index_select(0, rayleigh)
                    cos_theta = sample_rayleigh(sub[:, 6], mat.index_select(0, rayleigh), self.tables, generator)
                    phi = torch.rand(rayleigh.shape[0], device=dev, generator=generator).mul_(2 * torch.pi)
                    sub[:, 3:6] = rotate_directions(sub[:, 3:6], cos_theta, phi)
                    state.index_copy_(0, idx.index_select(0, rayleigh), sub)
                    p = primary.index_select(0, rayleigh)
                    pending.n_rayleigh.index_add_(0, p, torch.ones_like(p, dtype=torch.int32))
            if bool(dead.any()):
                alive = torch.nonzero(~dead).squeeze(1)
                state, clock = state.index_select(0, alive), clock.index_select(0, alive)

    def _start_batch(self, batch: Batch, pending: _Pending) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Check a batch, register it with ``pending`` and return its packed state."""
        position, direction, energy, time = batch
        dev = self.device
        n = int(energy.shape[0])
        state = torch.empty(n, 9, dtype=torch.float32, device=dev)
        state[:, 0:3] = position.to(dev, torch.float32)
        state[:, 3:6] = direction.to(dev, torch.float32)
        state[:, 6] = energy.to(dev, torch.float32)
        if n and not bool(self.surface.contains(state[:, 0:3]).all()):
            raise ConfigError("a source emits photons outside the exit surface; enlarge the surface or move the source")
        self.check_energies(state[:, 6])
        base = pending.add(n)
        clock = torch.empty(n, 2, dtype=torch.float64, device=dev)
        clock[:, 0] = time.to(dev, torch.float64)
        clock[:, 1] = torch.arange(base, base + n, device=dev, dtype=torch.float64)
        # photons born below the cut never fly
        low = state[:, 6] < self.energy_cut
        if bool(low.any()):
            pending.deposited.index_add_(0, clock[low, 1].long(), state[low, 6].double())
            keep = torch.nonzero(~low).squeeze(1)
            state, clock = state.index_select(0, keep), clock.index_select(0, keep)
        state[:, 7] = self.majorant(state[:, 6])
        state[:, 8] = self._world_mu(state[:, 6])
        return state, clock, n


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class _Pending:
    """Bookkeeping of the batches in flight: per-photon tallies and exits, handed back in order.

    Photons are numbered consecutively over the batches not yet returned; when the oldest
    batch is returned, every number drops by its size, so tallies stay small flat tensors.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sizes: list[int] = []
        self.joined: list[int] = []  # step at which each batch joined, to catch photons that never finish
        self.deposited = torch.zeros(0, dtype=torch.float64, device=device)
        self.n_compton = torch.zeros(0, dtype=torch.int32, device=device)
        self.n_rayleigh = torch.zeros(0, dtype=torch.int32, device=device)
        self.exit_state: list[torch.Tensor] = []
        self.exit_clock: list[torch.Tensor] = []
        self.steps = 0

    def add(self, n: int) -> int:
        """Register a batch of ``n`` photons; return the number of its first photon."""
        base = sum(self.sizes)
        self.sizes.append(n)
        self.deposited = torch.cat([self.deposited, torch.zeros(n, dtype=torch.float64, device=self.device)])
        self.n_compton = torch.cat([self.n_compton, torch.zeros(n, dtype=torch.int32, device=self.device)])
        self.n_rayleigh = torch.cat([self.n_rayleigh, torch.zeros(n, dtype=torch.int32, device=self.device)])
        return base

    def retire(self, in_flight: torch.Tensor) -> Iterator[ExitPhotons]:
        """Yield the leading batches none of whose photons is in flight (``in_flight``: their numbers)."""
        while self.sizes:
            first_alive = float(in_flight.min()) if in_flight.numel() else float("inf")
            n = self.sizes[0]
            if first_alive < n:
                return
            yield self._pop(n)
            in_flight -= n  # shifts the caller's clock column in place

    def _pop(self, n: int) -> ExitPhotons:
        out = torch.cat(self.exit_state) if self.exit_state else torch.zeros(0, 9, device=self.device)
        out_clock = torch.cat(self.exit_clock) if self.exit_clock else torch.zeros(0, 2, dtype=torch.float64, device=self.device)
        mine = out_clock[:, 1] < n
        keep = torch.nonzero(~mine).squeeze(1)
        self.exit_state = [out.index_select(0, keep)]
        rest = out_clock.index_select(0, keep)
        rest[:, 1] -= n
        self.exit_clock = [rest]
        sel = torch.nonzero(mine).squeeze(1)
        out, out_clock = out.index_select(0, sel), out_clock.index_select(0, sel)
        primary = out_clock[:, 1].long()
        result = ExitPhotons(
            primary=primary,
            energy=out[:, 6].contiguous(),
            position=out[:, 0:3].contiguous(),
            direction=out[:, 3:6].contiguous(),
            time=out_clock[:, 0].contiguous(),
            n_compton=self.n_compton[primary],
            n_rayleigh=self.n_rayleigh[primary],
            deposited=self.deposited[:n].clone(),
            steps=self.steps,
        )
        self.steps = 0
        self.sizes.pop(0)
        self.joined.pop(0)
        self.deposited, self.n_compton, self.n_rayleigh = self.deposited[n:], self.n_compton[n:], self.n_rayleigh[n:]
        return result
