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

from dataclasses import dataclass

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
        steps: total number of steps (real + fictitious) made by the batch, for diagnostics.
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
        self._index_offset = torch.as_tensor(-geometry.index_to_world_offset @ inverse.T, dtype=torch.float32, device=self.device)
        self._index_hi = torch.as_tensor(np.asarray(geometry.shape, dtype=np.float64) - 0.5, dtype=torch.float32, device=self.device)
        self._world_index = torch.tensor([len(phantom.materials)], device=self.device)
        self._world_density = float(phantom.world_material.density)

    def _world_mu(self, energy: torch.Tensor) -> torch.Tensor:
        """(N,) MeV -> (N,) mm^-1, attenuation of the world material."""
        return self.tables.mu_total(self._world_index.expand(energy.shape[0]), energy) * self._world_density

    def _leaving_image(self, position: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """(N,) bool: outside the image and moving away from it along one of its axes (never re-enters)."""
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
        dev = self.device
        n = int(energy.shape[0])
        # The state of the photons in flight lives in two packed tensors, compacted together
        # once per step: float32 (M, 9) = position (3), direction (3), energy, majorant and world
        # attenuation at that energy (kept until the energy changes); float64 (M, 2) = time, input index.
        state = torch.empty(n, 9, dtype=torch.float32, device=dev)
        state[:, 0:3] = position.to(dev, torch.float32)
        state[:, 3:6] = direction.to(dev, torch.float32)
        state[:, 6] = energy.to(dev, torch.float32)
        clock = torch.empty(n, 2, dtype=torch.float64, device=dev)
        clock[:, 0] = time.to(dev, torch.float64)
        clock[:, 1] = torch.arange(n, device=dev, dtype=torch.float64)  # exact up to 2^53
        if n and not bool(self.surface.contains(state[:, 0:3]).all()):
            raise ConfigError("a source emits photons outside the exit surface; enlarge the surface or move the source")
        self.check_energies(state[:, 6])
        deposited = torch.zeros(n, dtype=torch.float64, device=dev)
        n_compton = torch.zeros(n, dtype=torch.int32, device=dev)
        n_rayleigh = torch.zeros(n, dtype=torch.int32, device=dev)

        # photons born below the cut never fly
        low = state[:, 6] < self.energy_cut
        if bool(low.any()):
            deposited[low] += state[low, 6].double()
            keep = torch.nonzero(~low).squeeze(1)
            state, clock = state.index_select(0, keep), clock.index_select(0, keep)
        state[:, 7] = self.majorant(state[:, 6])
        state[:, 8] = self._world_mu(state[:, 6])

        exit_state: list[torch.Tensor] = []
        exit_clock: list[torch.Tensor] = []
        steps = 0
        for _ in range(_MAX_STEPS):
            m = int(state.shape[0])
            if m == 0:
                break
            steps += m
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
                exit_state.append(state.index_select(0, gone))
                exit_clock.append(clock.index_select(0, gone))

            material, density = self.phantom.lookup(pos)
            threshold = u[:, 1].mul_(mu_max)
            real = (threshold < self.tables.mu_total(material, e) * density) & ~leaves
            dead = leaves
            idx = torch.nonzero(real).squeeze(1)
            if idx.numel():
                mu_parts = self.tables.mu(material[idx], e[idx]) * density[idx, None]
                r = threshold[idx]
                is_photo = r < mu_parts[:, 0]
                is_compton = ~is_photo & (r < mu_parts[:, 0] + mu_parts[:, 1])
                is_rayleigh = ~(is_photo | is_compton)
                primary = clock[:, 1]
                dead = dead.clone()
                if bool(is_photo.any()):
                    i = idx[is_photo]
                    deposited.index_add_(0, primary[i].long(), e[i].double())
                    dead[i] = True
                if bool(is_compton.any()):
                    i = idx[is_compton]
                    e_old = e[i]
                    e_new, cos_theta = sample_compton(e_old, generator, tables=self.tables, material_index=material[i])
                    phi = torch.rand(i.shape[0], device=dev, generator=generator).mul_(2 * torch.pi)
                    below = e_new < self.energy_cut
                    # the Compton electron, and a photon that falls below the cut, deposit locally
                    p = primary[i].long()
                    deposited.index_add_(0, p, (e_old - torch.where(below, torch.zeros_like(e_new), e_new)).double())
                    n_compton.index_add_(0, p, torch.ones_like(p, dtype=torch.int32))
                    state[i, 3:6] = rotate_directions(dirn[i], cos_theta, phi)
                    state[i, 6] = e_new
                    state[i, 7] = self.majorant(e_new)
                    state[i, 8] = self._world_mu(e_new)
                    dead[i[below]] = True
                if bool(is_rayleigh.any()):
                    i = idx[is_rayleigh]
                    cos_theta = sample_rayleigh(e[i], material[i], self.tables, generator)
                    phi = torch.rand(i.shape[0], device=dev, generator=generator).mul_(2 * torch.pi)
                    state[i, 3:6] = rotate_directions(dirn[i], cos_theta, phi)
                    n_rayleigh.index_add_(0, primary[i].long(), torch.ones(i.shape[0], dtype=torch.int32, device=dev))
            if bool(dead.any()):
                alive = torch.nonzero(~dead).squeeze(1)
                state, clock = state.index_select(0, alive), clock.index_select(0, alive)
        else:
            raise RuntimeError(f"photon transport did not finish after {_MAX_STEPS} steps; {int(state.shape[0])} photons still alive")

        out = torch.cat(exit_state) if exit_state else torch.zeros(0, 9, device=dev)
        out_clock = torch.cat(exit_clock) if exit_clock else torch.zeros(0, 2, dtype=torch.float64, device=dev)
        primary = out_clock[:, 1].long()
        return ExitPhotons(
            primary=primary,
            energy=out[:, 6].contiguous(),
            position=out[:, 0:3].contiguous(),
            direction=out[:, 3:6].contiguous(),
            time=out_clock[:, 0].contiguous(),
            n_compton=n_compton[primary],
            n_rayleigh=n_rayleigh[primary],
            deposited=deposited,
            steps=steps,
        )
