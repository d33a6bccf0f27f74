"""Column names of a phase space, following GATE's phase-space actor, with their units.

Every reader returns, and every writer accepts, a *table*: a ``dict`` from column
name to a 1-D NumPy array, all of the same length, in gansim units (mm, MeV, ns).
Formats with their own field names (MCPL, IAEA) map them onto these names:

=====================  ==================  ==========================  =========================
GATE column            unit                MCPL field                  IAEA field
=====================  ==================  ==========================  =========================
KineticEnergy          MeV                 ekin [MeV]                  abs(E) [MeV]
PrePosition_X/Y/Z      mm                  position [cm] (x10)         X, Y, Z [cm] (x10), each
                                                                       stored or constant
PreDirection_X/Y/Z     1 (unit vector)     direction (unit vector;     U, V stored; W computed
                                           not normalised by MCPL:     from U, V, its sign in
                                           non-unit is an error)       the sign of the type byte
Weight                 1                   weight (or one universal    Weight (stored or
                                           weight in the header)       constant, default 1)
GlobalTime             ns                  time [ms] (x1e6)            -
PDGCode                -                   pdgcode (int32, or one      type byte: 1 gamma (22),
                                           universal code in the       2 e- (11), 3 e+ (-11),
                                           header)                     4 n (2112), 5 p (2212)
NewHistory             0/1                 -                           sign bit of E (1 = new)
Polarisation_X/Y/Z     1                   polarisation (optional)     -
UserFlags              -                   userflags (uint32,          -
                                           optional)
IAEA_*                 see iaea_format     -                           extra floats / longs
=====================  ==================  ==========================  =========================
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GATE_COLUMNS",
    "UNITS",
    "unit_of",
    "PDG_GAMMA",
    "PDG_ELECTRON",
    "PDG_POSITRON",
    "PDG_NEUTRON",
    "PDG_PROTON",
    "PARTICLE_NAMES",
    "particle_pdg_code",
    "Table",
    "table_length",
    "validate_table",
]

Table = dict[str, np.ndarray]

PDG_GAMMA = 22
PDG_ELECTRON = 11
PDG_POSITRON = -11
PDG_NEUTRON = 2112
PDG_PROTON = 2212

#: Particle names the writers' ``particle=`` option accepts (case-insensitive) -> PDG code.
PARTICLE_NAMES: dict[str, int] = {
    "gamma": PDG_GAMMA,
    "photon": PDG_GAMMA,
    "e-": PDG_ELECTRON,
    "electron": PDG_ELECTRON,
    "e+": PDG_POSITRON,
    "positron": PDG_POSITRON,
    "neutron": PDG_NEUTRON,
    "proton": PDG_PROTON,
}

#: Column name -> unit symbol (as in :mod:`gansim.units`); "" for dimensionless.
UNITS: dict[str, str] = {
    "KineticEnergy": "MeV",
    "PrePosition_X": "mm",
    "PrePosition_Y": "mm",
    "PrePosition_Z": "mm",
    "PostPosition_X": "mm",
    "PostPosition_Y": "mm",
    "PostPosition_Z": "mm",
    "PreDirection_X": "",
    "PreDirection_Y": "",
    "PreDirection_Z": "",
    "PostDirection_X": "",
    "PostDirection_Y": "",
    "PostDirection_Z": "",
    "Weight": "",
    "TimeFromBeginOfEvent": "ns",
    "GlobalTime": "ns",
    "LocalTime": "ns",
    "EventID": "",
    "TrackID": "",
    "PDGCode": "",
    "NewHistory": "",
    "EventPosition_X": "mm",
    "EventPosition_Y": "mm",
    "EventPosition_Z": "mm",
    "EventDirection_X": "",
    "EventDirection_Y": "",
    "EventDirection_Z": "",
    "EventKineticEnergy": "MeV",
}

GATE_COLUMNS: tuple[str, ...] = tuple(UNITS)


def unit_of(column: str) -> str:
    """Unit symbol of a known column, ``"?"`` for a column gansim does not know."""
    return UNITS.get(column, "?")


def particle_pdg_code(value: str | int, *, option: str = "particle", source: str = "phase-space writer") -> int:
    """PDG code of a particle given by name or code, for the writers' ``particle=`` option.

    Args:
        value: a name of :data:`PARTICLE_NAMES` ("gamma"/"photon", "e-"/"electron",
            "e+"/"positron", "neutron", "proton"; case-insensitive), an integer PDG
            code, or an integer written as text ("22", as a command line gives it).
        option: option name used in error messages (``"particle"`` or ``"pdgcode"``).
        source: what is being configured (usually the output file), for error messages.

    Returns:
        the PDG code, a non-zero 32-bit integer.

    Raises:
        ConfigError: unknown name, or an integer that is not a non-zero 32-bit value.
    """
    from gansim.errors import ConfigError

    allowed = ", ".join(repr(name) for name in PARTICLE_NAMES)
    code: int | None = None
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PARTICLE_NAMES:
            return PARTICLE_NAMES[key]
        try:
            code = int(key)
        except ValueError:
            raise ConfigError(f"{source}: unknown {option} {value!r}; expected one of {allowed} or an integer PDG code") from None
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        code = int(value)
    else:
        raise ConfigError(f"{source}: {option}={value!r}; expected one of {allowed} or an integer PDG code")
    if code == 0 or not -(2**31) <= code < 2**31:
        raise ConfigError(f"{source}: {option}={value!r}; a PDG code must be a non-zero 32-bit integer (e.g. 22 for photons)")
    return code


def table_length(table: Table, *, source: str = "table") -> int:
    """Number of rows; raises :class:`~gansim.errors.DataError` when columns differ in length or are not 1-D."""
    from gansim.errors import DataError

    n: int | None = None
    for key, col in table.items():
        col = np.asarray(col)
        if col.ndim != 1:
            raise DataError(f"{source}: column {key!r} has shape {col.shape}; expected a 1-D column")
        if n is None:
            n = len(col)
        elif len(col) != n:
            raise DataError(f"{source}: column {key!r} has {len(col)} rows; expected {n} like the other columns")
    return 0 if n is None else n


def validate_table(table: Table, *, source: str = "table", finite: bool = True, first_row: int = 0) -> int:
    """Check shapes (and, by default, that every float column is finite); return the row count."""
    from gansim.errors import DataError

    n = table_length(table, source=source)
    if finite:
        for key, col in table.items():
            col = np.asarray(col)
            if np.issubdtype(col.dtype, np.floating):
                bad = ~np.isfinite(col)
                if bad.any():
                    first = first_row + int(np.flatnonzero(bad)[0])  # row number in the file, not the chunk
                    raise DataError(
                        f"{source}: column {key!r} holds {int(bad.sum())} NaN/Inf value(s) (first at row {first}); "
                        "expected finite numbers"
                    )
    return n
