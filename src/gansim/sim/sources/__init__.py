"""Simulation sources: the analog Monte Carlo, GAN sources, and what they share."""

from gansim.sim.sources.analog import AnalogSource
from gansim.sim.sources.base import Source, SourceRun
from gansim.sim.sources.gan import SKIP_POLICIES, GANPairsSource, GANSource

__all__ = ["Source", "SourceRun", "AnalogSource", "GANSource", "GANPairsSource", "SKIP_POLICIES"]
