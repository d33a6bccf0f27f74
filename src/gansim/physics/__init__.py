"""Photon-transport Monte Carlo for SPECT and PET training data.

Photons only (photoelectric absorption, Compton, Rayleigh); electrons deposit their
energy locally. Cross sections come from xraydb; geometry is a voxelised phantom
tracked by Woodcock (delta) tracking inside an exit surface.
"""
