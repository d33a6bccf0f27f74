"""One unit system for the whole package: lengths in mm, energies in MeV, times in ns.

Multiply a number by a unit to express it in gansim's internal units, divide to
read it back (``10 * cm == 100.0``; ``e / keV`` gives keV).
"""

from __future__ import annotations

# length
mm = 1.0
cm = 10.0 * mm
m = 1000.0 * mm
um = 1e-3 * mm
nm = 1e-6 * mm
# energy
MeV = 1.0
keV = 1e-3 * MeV
eV = 1e-6 * MeV
GeV = 1e3 * MeV
# time
ns = 1.0
ps = 1e-3 * ns
us = 1e3 * ns
ms = 1e6 * ns
s = 1e9 * ns
# activity
Bq = 1.0 / s
kBq = 1e3 * Bq
MBq = 1e6 * Bq
# angle
rad = 1.0
deg = 3.141592653589793 / 180.0 * rad
# speed of light in mm/ns
c_light = 299.792458 * mm / ns
