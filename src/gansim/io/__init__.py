"""Readers and writers of the file formats gansim's users already have.

``gansim.io.phsp`` holds the phase-space formats (ROOT, NumPy, MCPL, IAEA).
"""
