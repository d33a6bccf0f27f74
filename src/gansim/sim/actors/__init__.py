"""Actors: what a simulation records (phase space, statistics, energy windows, projections)."""

from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.actors.phsp import PhaseSpaceActor
from gansim.sim.actors.projection import ProjectionActor, compare_projections
from gansim.sim.actors.statistics import StatisticsActor
from gansim.sim.actors.windows import TC99M_WINDOWS, EnergyWindowsActor, parse_energy_windows

__all__ = ["Actor", "RunContext", "PhaseSpaceActor", "StatisticsActor", "EnergyWindowsActor", "ProjectionActor", "TC99M_WINDOWS", "parse_energy_windows", "compare_projections"]
