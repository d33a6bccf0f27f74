"""A small run-based simulation: one volume, sources (analog Monte Carlo, GAN, GAN pairs), actors,
run timing intervals and dynamic parametrisation -- so a GAN source and the Monte Carlo it
replaces run side by side. See :mod:`gansim.sim.simulation`.
"""

from gansim.sim.actors import EnergyWindowsActor, PhaseSpaceActor, ProjectionActor, StatisticsActor, TC99M_WINDOWS
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.conditions import ConditionGenerator, FunctionConditionGenerator, VoxelizedConditionGenerator
from gansim.sim.dynamic import Changer, DynamicGeometryActor, DynamicSourceActor, ParameterChanger
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, EventCounts, ParticleBatch
from gansim.sim.simulation import Simulation
from gansim.sim.sources import AnalogSource, GANPairsSource, GANSource, Source
from gansim.sim.timing import check_run_timing_intervals, range_timing
from gansim.sim.volumes import BoxVolume, CylinderVolume, PhantomVolume, SphereVolume, Volume

__all__ = [
    "Simulation",
    "Volume", "PhantomVolume", "BoxVolume", "SphereVolume", "CylinderVolume",
    "Source", "AnalogSource", "GANSource", "GANPairsSource",
    "ConditionGenerator", "VoxelizedConditionGenerator", "FunctionConditionGenerator",
    "Actor", "RunContext", "PhaseSpaceActor", "StatisticsActor", "EnergyWindowsActor", "ProjectionActor", "TC99M_WINDOWS",
    "Changer", "ParameterChanger", "DynamicGeometryActor", "DynamicSourceActor",
    "ParticleBatch", "EventCounts", "PARTICLE_COLUMNS", "EVENT_COLUMNS",
    "check_run_timing_intervals", "range_timing",
]
