"""IAEA phase-space files: a text header ``name.IAEAheader`` and binary records ``name.IAEAphsp``.

The format is the one of the IAEA technical report INDC(NDS)-0484 (Capote et
al., 2006) and of the IAEA ``iaea_phsp`` C library that EGSnrc, PENELOPE,
GAMOS, GATE and TOPAS use. Readers accept the header, the data file or the
bare base name.

Binary record (all fields packed, byte order from ``$BYTE_ORDER``: 1234 =
little endian, 4321 = big endian), in this order:

====================  =======  ===========================================================
field                 type     meaning
====================  =======  ===========================================================
particle type         int8     1 photon, 2 electron, 3 positron, 4 neutron, 5 proton;
                               a negative value means the direction cosine W is negative
E                     float32  kinetic energy [MeV]; a negative sign (sign bit) flags the
                               first particle of a new history
X, Y, Z               float32  position [cm]; each only if "stored", else the value is in
                               ``$RECORD_CONSTANT``
U, V                  float32  direction cosines, each only if stored
Weight                float32  only if stored (else constant, 1 when not given)
extra floats          float32  ``$RECORD_CONTENTS`` line 8 of them
extra longs           int32    ``$RECORD_CONTENTS`` line 9 of them
====================  =======  ===========================================================

W is never stored: it is ``sign * sqrt(1 - U^2 - V^2)`` with the sign from the
type byte (when ``U^2 + V^2 > 1`` the reference library rescales U, V to unit
length and sets W = 0; gansim does the same). ``$RECORD_CONTENTS`` holds nine
integers (X, Y, Z, U, V, W, Weight stored? 1/0, number of extra floats, number
of extra longs), then the type code of each extra float and each extra long.
``$RECORD_CONSTANT`` lists, in the order X, Y, Z, U, V, W, Weight, the value of
every quantity that is not stored. ``$RECORD_LENGTH`` is the record size in
bytes and the data file must hold exactly ``$RECORD_LENGTH x $PARTICLES`` bytes
(``$CHECKSUM`` is that byte count too).

gansim columns:

======================================  ===================================================
column                                  source
======================================  ===================================================
KineticEnergy [MeV]                     abs(E)
PrePosition_X/Y/Z [mm]                  X, Y, Z (stored or constant) x 10
PreDirection_X/Y/Z                      U, V, W
Weight                                  stored or constant weight
PDGCode (int32)                         type: 1->22, 2->11, 3->-11, 4->2112, 5->2212
NewHistory (int32, 0/1)                 1 where the sign bit of E is set
IAEA_XLAST / IAEA_YLAST / IAEA_ZLAST    extra float of type 1/2/3, cm -> mm
IAEA_ExtraFloat_<i>                     extra float number i of type 0 (generic), as stored
IAEA_IncrementalHistoryNumber           extra long of type 1
IAEA_LATCH                              extra long of type 2 (EGSnrc LATCH)
IAEA_ILB5 ... IAEA_ILB1                 extra longs of type 3 ... 7 (PENELOPE ILB flags)
IAEA_ExtraLong_<i>                      extra long number i of type 0 (generic)
======================================  ===================================================

An extra quantity of an unknown type code ``k`` becomes ``IAEA_ExtraFloat_<i>_Type<k>``
or ``IAEA_ExtraLong_<i>_Type<k>``; a typed name that occurs twice gets ``_<i>``
appended. The writer maps the same names back to their type codes.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from gansim import __version__
from gansim.errors import ConfigError, DataError
from gansim.io.atomic import check_writable, commit_file, temporary_sibling
from gansim.io.phsp.base import PhaseSpaceReader, PhaseSpaceWriter
from gansim.io.phsp.columns import Table, particle_pdg_code

__all__ = ["IaeaReader", "IaeaWriter", "IaeaHeader", "iaea_paths", "PDG_TO_IAEA", "IAEA_TO_PDG"]

_CM_TO_MM = 10.0
_POSITION = ("PrePosition_X", "PrePosition_Y", "PrePosition_Z")
_DIRECTION = ("PreDirection_X", "PreDirection_Y", "PreDirection_Z")

#: PDG code -> IAEA particle type, and back.
PDG_TO_IAEA: dict[int, int] = {22: 1, 11: 2, -11: 3, 2112: 4, 2212: 5}
IAEA_TO_PDG: dict[int, int] = {v: k for k, v in PDG_TO_IAEA.items()}
_TYPE_TO_PDG = np.array([0, 22, 11, -11, 2112, 2212], dtype=np.int32)
_TYPE_NAMES = ("PHOTONS", "ELECTRONS", "POSITRONS", "NEUTRONS", "PROTONS")

#: Extra float / extra long type codes of the IAEA library (iaea_header.h) -> column stem.
_EXTRA_FLOAT_TYPES: dict[int, str] = {1: "XLAST", 2: "YLAST", 3: "ZLAST"}
_EXTRA_LONG_TYPES: dict[int, str] = {1: "IncrementalHistoryNumber", 2: "LATCH", 3: "ILB5", 4: "ILB4", 5: "ILB3", 6: "ILB2", 7: "ILB1"}
#: Descriptions written next to the type codes in $RECORD_CONTENTS (as the IAEA library does).
_EXTRA_FLOAT_LABELS = {0: "Generic float variable", 1: "XLAST variable", 2: "YLAST variable", 3: "ZLAST variable"}
_EXTRA_LONG_LABELS = {
    0: "Generic integer variable", 1: "Incremental history number", 2: "LATCH EGS variable", 3: "ILB5 PENELOPE variable",
    4: "ILB4 PENELOPE variable", 5: "ILB3 PENELOPE variable", 6: "ILB2 PENELOPE variable", 7: "ILB1 PENELOPE variable",
}  # fmt: skip
#: Extra floats holding positions: converted cm <-> mm like the other positions.
_EXTRA_FLOAT_IS_POSITION = {1, 2, 3}

_HEADER_SUFFIX = ".IAEAheader"
_PHSP_SUFFIX = ".IAEAphsp"

#: Sections the writer computes itself; header_fields may not set them.
_STRUCTURAL = {
    "IAEA_INDEX", "TITLE", "FILE_TYPE", "CHECKSUM", "RECORD_CONTENTS", "RECORD_CONSTANT", "RECORD_LENGTH", "BYTE_ORDER",
    "ORIG_HISTORIES", "PARTICLES", *_TYPE_NAMES, "STATISTICAL_INFORMATION_PARTICLES", "STATISTICAL_INFORMATION_GEOMETRY",
}  # fmt: skip
#: Descriptive sections the IAEA library requires, with gansim's defaults.
_DEFAULT_TEXT: dict[str, str] = {
    "TRANSPORT_PARAMETERS": "not applicable: particles generated by gansim, not transported",
    "MACHINE_TYPE": "unknown",
    "MONTE_CARLO_CODE_VERSION": f"gansim {__version__}",
    "GLOBAL_PHOTON_ENERGY_CUTOFF": "0.0     // not known",
    "GLOBAL_PARTICLE_ENERGY_CUTOFF": "0.0     // not known",
    "COORDINATE_SYSTEM_DESCRIPTION": "as in the data gansim was trained on; positions in cm, directions as cosines",
}
_OPTIONAL_SECTIONS = (
    "BEAM_NAME", "FIELD_SIZE", "NOMINAL_SSD", "MC_INPUT_FILENAME", "VARIANCE_REDUCTION_TECHNIQUES",
    "INITIAL_SOURCE_DESCRIPTION", "PUBLISHED_REFERENCE", "AUTHORS", "INSTITUTION", "LINK_VALIDATION", "ADDITIONAL_NOTES",
)  # fmt: skip


# --------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------


def _strip_suffix(name: str) -> tuple[str, str | None]:
    low = name.lower()
    for suffix in (_HEADER_SUFFIX, _PHSP_SUFFIX):
        if low.endswith(suffix.lower()):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, None


def iaea_paths(path: str | Path, *, existing: bool = True) -> tuple[Path, Path]:
    """``(header, phsp)`` for the header file, the data file or the base name of an IAEA phase space.

    With ``existing=True`` the partner file is looked up case-insensitively among
    the usual spellings (``.IAEAheader``/``.iaeaheader``...); otherwise the
    standard spelling is used.
    """
    p = Path(path)
    base, suffix = _strip_suffix(p.name)
    parent = p.parent

    def partner(standard: str) -> Path:
        options = [standard, standard.lower(), standard.upper()]
        if existing:
            for option in options:
                if (parent / (base + option)).exists():
                    return parent / (base + option)
        return parent / (base + standard)

    if suffix is None:
        return partner(_HEADER_SUFFIX), partner(_PHSP_SUFFIX)
    if suffix.lower() == _HEADER_SUFFIX.lower():
        return p, partner(_PHSP_SUFFIX)
    return partner(_HEADER_SUFFIX), p


# --------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    return line.split("//", 1)[0].strip()


def _parse_sections(text: str) -> dict[str, list[str]]:
    """``$NAME:`` blocks -> raw content lines (comments kept; numeric parsing strips them)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("$") and ":" in stripped:
            name, rest = stripped[1:].split(":", 1)
            current = name.strip().upper()
            sections[current] = []
            if rest.strip():
                sections[current].append(rest.strip())
        elif current is not None:
            sections[current].append(raw.rstrip())
    return sections


@dataclass
class IaeaHeader:
    """What gansim needs from an ``.IAEAheader`` (positions in cm, as in the file).

    Attributes:
        stored: for each of ``"X","Y","Z","U","V","W","Weight"``, whether it varies per record.
        constants: values of the quantities that are not stored.
        extra_float_types / extra_long_types: IAEA type code of each extra float / long.
        record_length: bytes per record; byte_order: ``"<"`` or ``">"``.
        long_size: 4 (IAEA standard, int32); 8 for files written with C ``long`` on 64-bit Linux.
        sections: every ``$SECTION`` as raw text, for metadata such as ``TITLE``.
    """

    path: Path
    stored: dict[str, bool]
    constants: dict[str, float]
    extra_float_types: list[int]
    extra_long_types: list[int]
    record_length: int
    byte_order: str
    n_particles: int
    long_size: int = 4
    checksum: int | None = None
    orig_histories: int | None = None
    w_derived: bool = True
    sections: dict[str, str] = field(default_factory=dict)

    # -- parsing ----------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path) -> IaeaHeader:
        """Parse ``path``; any problem is a :class:`DataError` naming the file and the key."""
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DataError(f"{path}: cannot read the IAEA header ({exc})") from exc
        sections = _parse_sections(text)
        if not sections:
            raise DataError(f"{path}: not an IAEA header (no '$KEY:' sections found)")

        def tokens(key: str, *, required: bool = True) -> list[str] | None:
            if key not in sections:
                if required:
                    raise DataError(f"{path}: the IAEA header lacks the mandatory key ${key}")
                return None
            out: list[str] = []
            for line in sections[key]:
                out.extend(_strip_comment(line).split())
            return out

        def integer(key: str, token: str) -> int:
            try:
                value = float(token)
            except ValueError:
                raise DataError(f"{path}: ${key} holds {token!r}; expected an integer") from None
            if not math.isfinite(value) or value != int(value):
                raise DataError(f"{path}: ${key} holds {token!r}; expected an integer")
            return int(value)

        def single_int(key: str, *, required: bool = True) -> int | None:
            toks = tokens(key, required=required)
            if toks is None:
                return None
            if not toks:
                raise DataError(f"{path}: ${key} is empty; expected an integer")
            return integer(key, toks[0])

        file_type = single_int("FILE_TYPE", required=False)
        if file_type not in (None, 0):
            raise DataError(f"{path}: $FILE_TYPE is {file_type} (an event generator); only phase-space files ($FILE_TYPE 0) can be read")

        contents_tok = tokens("RECORD_CONTENTS")
        assert contents_tok is not None  # required=True raised otherwise
        contents = [integer("RECORD_CONTENTS", t) for t in contents_tok]
        if len(contents) < 9:
            raise DataError(
                f"{path}: $RECORD_CONTENTS has {len(contents)} values; expected 9 (X, Y, Z, U, V, W, Weight stored?, "
                "number of extra floats, number of extra longs) followed by the extra type codes"
            )
        names = ("X", "Y", "Z", "U", "V", "W", "Weight")
        stored = {name: bool(contents[i]) for i, name in enumerate(names)}
        n_float, n_long = contents[7], contents[8]
        if n_float < 0 or n_long < 0:
            raise DataError(f"{path}: $RECORD_CONTENTS gives negative extra counts ({n_float} floats, {n_long} longs)")
        types = contents[9:]
        if len(types) >= n_float + n_long:
            float_types, long_types = types[:n_float], types[n_float : n_float + n_long]
        elif not types:  # early IAEA library versions wrote only the nine counts
            float_types, long_types = [0] * n_float, [0] * n_long
        else:
            raise DataError(
                f"{path}: $RECORD_CONTENTS declares {n_float} extra float(s) and {n_long} extra long(s) "
                f"but lists {len(types)} type code(s)"
            )

        # $RECORD_CONSTANT: one value per non-stored quantity, in the order X Y Z U V W Weight.
        const_tok = tokens("RECORD_CONSTANT", required=False) or []
        try:
            const_values = [float(t) for t in const_tok]
        except ValueError:
            raise DataError(f"{path}: $RECORD_CONSTANT holds a non-number: {' '.join(const_tok)!r}") from None
        constants: dict[str, float] = {}
        w_derived = True
        it = iter(const_values)
        for name in names:
            if stored[name]:
                continue
            value = next(it, None)
            if value is not None:
                constants[name] = value
                if name == "W":
                    w_derived = False
            elif name == "Weight":
                constants[name] = 1.0  # the IAEA library's default
            elif name == "W" and stored["U"] and stored["V"]:
                # Some writers flag W as "not stored" (it never is) without giving a constant.
                w_derived = True
            else:
                raise DataError(f"{path}: $RECORD_CONSTANT lacks the constant value of {name} (declared not stored in $RECORD_CONTENTS)")
        if stored["W"]:
            w_derived = True

        record_length = single_int("RECORD_LENGTH")
        assert record_length is not None
        byte_order_code = single_int("BYTE_ORDER")
        if byte_order_code == 1234:
            byte_order = "<"
        elif byte_order_code == 4321:
            byte_order = ">"
        else:
            raise DataError(f"{path}: $BYTE_ORDER is {byte_order_code}; gansim reads 1234 (little endian) and 4321 (big endian)")
        n_particles = single_int("PARTICLES")
        assert n_particles is not None
        if n_particles < 0:
            raise DataError(f"{path}: $PARTICLES is {n_particles}; expected a count >= 0")

        n_floats = 1 + sum(stored[n] for n in ("X", "Y", "Z", "U", "V", "Weight")) + n_float
        minimum = 1 + 4 * n_floats + 4 * n_long
        long_size = 4
        if record_length < minimum:
            raise DataError(f"{path}: $RECORD_LENGTH is {record_length} bytes but $RECORD_CONTENTS needs at least {minimum}")
        if n_long and record_length == 1 + 4 * n_floats + 8 * n_long:
            long_size = 8  # written with C `long` on LP64 (old GAMOS copies of the IAEA code)

        return cls(
            path=path,
            stored=stored,
            constants=constants,
            extra_float_types=float_types,
            extra_long_types=long_types,
            record_length=record_length,
            byte_order=byte_order,
            n_particles=n_particles,
            long_size=long_size,
            checksum=single_int("CHECKSUM", required=False),
            orig_histories=single_int("ORIG_HISTORIES", required=False),
            w_derived=w_derived,
            sections={k: "\n".join(v).strip() for k, v in sections.items()},
        )

    # -- layout -----------------------------------------------------------------------

    def extra_columns(self) -> tuple[list[str], list[str]]:
        """gansim names of the extra floats and extra longs, in record order."""
        return (
            _extra_names(self.extra_float_types, _EXTRA_FLOAT_TYPES, "ExtraFloat"),
            _extra_names(self.extra_long_types, _EXTRA_LONG_TYPES, "ExtraLong"),
        )

    def dtype(self) -> np.dtype:
        """Structured dtype of one record (packed, in the file's byte order)."""
        bo = self.byte_order
        fields: list[tuple[str, str]] = [("type", "i1"), ("E", f"{bo}f4")]
        for name in ("X", "Y", "Z", "U", "V", "Weight"):
            if self.stored[name]:
                fields.append((name, f"{bo}f4"))
        floats, longs = self.extra_columns()
        fields += [(name, f"{bo}f4") for name in floats]
        fields += [(name, f"{bo}i{self.long_size}") for name in longs]
        size = np.dtype(fields).itemsize
        if self.record_length > size:  # trailing bytes some writers add: skipped
            fields.append(("_padding", f"V{self.record_length - size}"))
        return np.dtype(fields)


def _extra_names(types: Sequence[int], known: Mapping[int, str], generic: str) -> list[str]:
    names: list[str] = []
    for i, code in enumerate(types):
        if code == 0:
            name = f"IAEA_{generic}_{i}"
        elif code in known:
            name = f"IAEA_{known[code]}"
            if name in names or types.count(code) > 1:
                name = f"{name}_{i}"
        else:
            name = f"IAEA_{generic}_{i}_Type{code}"
        names.append(name)
    return names


def _extra_type(name: str) -> tuple[str, int] | None:
    """``("float"|"long", type code)`` for an extra-quantity column name, else ``None``."""
    m = re.fullmatch(r"IAEA_Extra(Float|Long)_\d+(?:_Type(\d+))?", name)
    if m:
        return m.group(1).lower(), int(m.group(2) or 0)
    m = re.fullmatch(r"IAEA_([A-Za-z0-9]+?)(?:_\d+)?", name)
    if m:
        stem = m.group(1)
        for code, known in _EXTRA_FLOAT_TYPES.items():
            if known == stem:
                return "float", code
        for code, known in _EXTRA_LONG_TYPES.items():
            if known == stem:
                return "long", code
    return None


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------


class IaeaReader(PhaseSpaceReader):
    """Stream an IAEA phase space (header + data file) as gansim tables.

    ``path`` may be the ``.IAEAheader``, the ``.IAEAphsp`` or their common base
    name. Every chunk column has shape ``(rows,)``: floats are float32 (mm, MeV),
    ``PDGCode``, ``NewHistory`` and extra longs int32. See the module docstring
    for the column list. ``self.path`` is the data file, ``self.header_path``
    the header and ``self.header`` the parsed :class:`IaeaHeader`.

    Attributes:
        orig_histories: ``$ORIG_HISTORIES`` of the header (the number of
            original histories, to normalise doses), ``None`` when absent.
            :func:`~gansim.io.phsp.convert` carries it to writers that take
            ``orig_histories=`` (IAEA, MCPL).
    """

    format_name = "iaea"

    def __init__(self, path: str | Path) -> None:
        header_path, phsp_path = iaea_paths(path)
        if not header_path.exists():
            raise DataError(f"{header_path}: no such file (the IAEA header belonging to {Path(path)})")
        super().__init__(phsp_path)
        self.header_path = header_path
        self.header = IaeaHeader.read(header_path)
        h = self.header
        expected = h.record_length * h.n_particles
        actual = self.path.stat().st_size
        if actual != expected:
            raise DataError(
                f"{self.path}: size mismatch: the header {header_path.name} announces {h.n_particles} particles of "
                f"{h.record_length} bytes = {expected} bytes, but the file has {actual} bytes"
                + (" (truncated?)" if actual < expected else "")
            )
        if h.checksum is not None and h.checksum != actual:
            warnings.warn(f"{header_path}: $CHECKSUM is {h.checksum} but the data file has {actual} bytes", stacklevel=2)
        self._dtype = h.dtype()
        floats, longs = h.extra_columns()
        self._extra_floats = floats
        self._extra_longs = longs
        self._columns = ["KineticEnergy", *_POSITION, *_DIRECTION, "Weight", "PDGCode", "NewHistory", *floats, *longs]
        self.orig_histories: int | None = h.orig_histories

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def n_rows(self) -> int:
        return self.header.n_particles

    def _iter_chunks(self, chunk_rows: int, columns: list[str]) -> Iterator[Table]:
        n = self.header.n_particles
        if n == 0:
            return  # np.memmap refuses empty files
        records = np.memmap(self.path, dtype=self._dtype, mode="r", shape=(n,))
        try:
            for lo in range(0, n, chunk_rows):
                yield self._convert(np.asarray(records[lo : lo + chunk_rows]), lo, columns)
        finally:
            # Drop the mapping promptly (matters on Windows, where a mapped file cannot be replaced).
            mm = getattr(records, "_mmap", None)
            del records
            if mm is not None:
                with contextlib.suppress(Exception):
                    mm.close()

    def _convert(self, rec: np.ndarray, offset: int, columns: list[str]) -> Table:
        """Records ``offset : offset + len(rec)`` -> table holding ``columns``."""
        h = self.header
        n = len(rec)
        code = rec["type"].astype(np.int16)
        kind = np.abs(code)
        bad = (kind < 1) | (kind > 5)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{self.path}: record {offset + first} has particle type {int(code[first])}; "
                "IAEA types are +-1 (photon) ... +-5 (proton) (corrupt file or wrong $RECORD_CONTENTS?)"
            )

        def quantity(name: str) -> np.ndarray:
            if h.stored[name]:
                return rec[name].astype(np.float64)
            return np.full(n, h.constants[name], dtype=np.float64)

        out: Table = {}
        energy = rec["E"].astype(np.float64)
        want = set(columns)
        if "KineticEnergy" in want:
            out["KineticEnergy"] = np.abs(energy).astype(np.float32)
        if "NewHistory" in want:
            # signbit, not < 0: the writers negate E, so a new history with E = 0 is -0.0.
            out["NewHistory"] = np.signbit(energy).astype(np.int32)
        for axis, name in zip("XYZ", _POSITION):
            if name in want:
                out[name] = (quantity(axis) * _CM_TO_MM).astype(np.float32)
        if want.intersection(_DIRECTION):
            u, v = quantity("U"), quantity("V")
            if h.w_derived:
                aux = u * u + v * v
                over = aux > 1.0
                if over.any():  # as the IAEA library: rescale U, V and set W = 0
                    scale = np.sqrt(aux[over])
                    u[over] /= scale
                    v[over] /= scale
                w = np.where(code < 0, -1.0, 1.0) * np.sqrt(np.clip(1.0 - aux, 0.0, None))
            else:
                w = np.full(n, h.constants["W"], dtype=np.float64)
            for name, values in zip(_DIRECTION, (u, v, w)):
                if name in want:
                    out[name] = values.astype(np.float32)
        if "Weight" in want:
            out["Weight"] = quantity("Weight").astype(np.float32)
        if "PDGCode" in want:
            out["PDGCode"] = _TYPE_TO_PDG[kind]
        for name, type_code in zip(self._extra_floats, h.extra_float_types):
            if name in want:
                values = rec[name].astype(np.float64)
                if type_code in _EXTRA_FLOAT_IS_POSITION:
                    values = values * _CM_TO_MM
                out[name] = values.astype(np.float32)
        for name in self._extra_longs:
            if name in want:
                out[name] = rec[name].astype(np.int32)
        return {c: out[c] for c in columns}


# --------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------


def _resolve_particle(particle: str | int | None, where: str) -> int | None:
    """PDG code of the ``particle=`` option (shared vocabulary), restricted to the five IAEA types."""
    if particle is None:
        return None
    code = particle_pdg_code(particle, option="particle", source=where)
    if code not in PDG_TO_IAEA:
        raise ConfigError(
            f"{where}: particle {particle!r} (PDG code {code}) cannot be stored in IAEA format; "
            f"it holds only PDG codes {sorted(PDG_TO_IAEA)} (photon, electron, positron, neutron, proton)"
        )
    return code


@dataclass
class _Stats:
    """Running header statistics (cm, MeV), accumulated in float64 over all chunks."""

    count: np.ndarray = field(default_factory=lambda: np.zeros(5, dtype=np.int64))
    sum_w: np.ndarray = field(default_factory=lambda: np.zeros(5))
    sum_we: np.ndarray = field(default_factory=lambda: np.zeros(5))
    min_w: np.ndarray = field(default_factory=lambda: np.full(5, np.inf))
    max_w: np.ndarray = field(default_factory=lambda: np.full(5, -np.inf))
    min_e: np.ndarray = field(default_factory=lambda: np.full(5, np.inf))
    max_e: np.ndarray = field(default_factory=lambda: np.full(5, -np.inf))
    pos_min: np.ndarray = field(default_factory=lambda: np.full(3, np.inf))
    pos_max: np.ndarray = field(default_factory=lambda: np.full(3, -np.inf))
    new_histories: int = 0

    def update(self, kind: np.ndarray, energy: np.ndarray, weight: np.ndarray, pos: list[np.ndarray], new: np.ndarray) -> None:
        for t in range(5):
            sel = kind == t + 1
            k = int(sel.sum())
            if not k:
                continue
            e, w = energy[sel], weight[sel]
            self.count[t] += k
            self.sum_w[t] += float(w.sum())
            self.sum_we[t] += float((w * e).sum())
            self.min_w[t] = min(self.min_w[t], float(w.min()))
            self.max_w[t] = max(self.max_w[t], float(w.max()))
            self.min_e[t] = min(self.min_e[t], float(e.min()))
            self.max_e[t] = max(self.max_e[t], float(e.max()))
        for i, p in enumerate(pos):
            if p.size:
                self.pos_min[i] = min(self.pos_min[i], float(p.min()))
                self.pos_max[i] = max(self.pos_max[i], float(p.max()))
        self.new_histories += int(new.sum())


class IaeaWriter(PhaseSpaceWriter):
    """Write an IAEA phase space: ``name.IAEAphsp`` (records) and ``name.IAEAheader``.

    ``path`` may name either file or the base name; ``self.path`` is the data
    file and ``self.header_path`` the header. Both are written to temporary
    files and renamed at :meth:`close`, the data file first and the header last,
    so a header that exists always describes a complete data file. Records are
    little endian ($BYTE_ORDER 1234), U and V stored, W's sign in the type byte.

    Args:
        particle: particle type of every row when there is no ``PDGCode`` column:
            "gamma"/"photon", "e-"/"electron", "e+"/"positron", "neutron",
            "proton" or one of their PDG codes (the vocabulary of
            :func:`~gansim.io.phsp.columns.particle_pdg_code`, shared with the
            MCPL writer). Without either, writing raises a :class:`DataError`.
        constant_x / constant_y / constant_z: declare that position coordinate
            constant [mm] (e.g. the Z of a scoring plane): it goes to
            ``$RECORD_CONSTANT`` instead of every record; a column of that name,
            if given, must hold this value (within float32 precision).
        title, iaea_index: ``$TITLE`` and ``$IAEA_INDEX``.
        orig_histories: ``$ORIG_HISTORIES``; default the number of new histories
            written (the particles flagged by ``NewHistory``).
        header_fields: text of descriptive sections (``MACHINE_TYPE``,
            ``BEAM_NAME``, ``AUTHORS``...) keyed by section name without ``$``.
        drop_unknown: leave out columns the format cannot store, such as
            ``GlobalTime`` or ``EventID``, instead of raising a :class:`DataError`
            (CLI: ``--drop-unknown``).
        normalize_directions: rescale directions to unit length (IAEA stores U, V
            and recomputes W, so a non-unit vector would come back changed).

    Columns: ``KineticEnergy`` [MeV, >= 0], ``PrePosition_X/Y/Z`` [mm] (unless
    constant), ``PreDirection_X/Y/Z``; optional ``Weight`` (else constant 1),
    ``PDGCode`` (22, 11, -11, 2112, 2212), ``NewHistory`` (non-zero = first
    particle of a history; without the column every particle starts its own
    history, as for independent generated particles) and the ``IAEA_*`` extras
    of the module docstring.
    """

    format_name = "iaea"

    def __init__(
        self,
        path: str | Path,
        *,
        columns: Sequence[str] | None = None,
        force: bool = False,
        particle: str | int | None = None,
        constant_x: float | None = None,
        constant_y: float | None = None,
        constant_z: float | None = None,
        title: str = "gansim phase space",
        iaea_index: str | int = "1000",
        orig_histories: int | None = None,
        header_fields: Mapping[str, str] | None = None,
        drop_unknown: bool = False,
        normalize_directions: bool = True,
    ) -> None:
        header_path, phsp_path = iaea_paths(path, existing=False)
        where = str(phsp_path)
        self.particle = _resolve_particle(particle, where)
        self.constants: dict[str, float] = {}
        for axis, value in zip("XYZ", (constant_x, constant_y, constant_z)):
            if value is not None:
                if not isinstance(value, (int, float, np.number)) or not math.isfinite(float(value)):
                    raise ConfigError(f"{where}: constant_{axis.lower()} must be a finite number [mm], got {value!r}")
                self.constants[axis] = float(value)
        if orig_histories is not None and (isinstance(orig_histories, bool) or not isinstance(orig_histories, (int, np.integer)) or orig_histories < 0):
            raise ConfigError(f"{where}: orig_histories must be an integer >= 0, got {orig_histories!r}")
        self.orig_histories = None if orig_histories is None else int(orig_histories)
        self.title = str(title)
        self.iaea_index = str(iaea_index)
        self.header_fields: dict[str, str] = {}
        for key, text in (header_fields or {}).items():
            name = str(key).strip().lstrip("$").rstrip(":").upper()
            if name in _STRUCTURAL:
                raise ConfigError(f"{where}: header_fields may not set ${name}; gansim computes it (use the writer options instead)")
            self._check_text(name, str(text), where)
            self.header_fields[name] = str(text)
        for name, text in (("TITLE", self.title), ("IAEA_INDEX", self.iaea_index)):
            self._check_text(name, text, where)
        self.drop_unknown = bool(drop_unknown)
        self.normalize_directions = bool(normalize_directions)
        self.header_path = header_path
        self._fh: IO[bytes] | None = None
        self._tmp_header: Path | None = None
        self._stats = _Stats()
        if columns is not None:
            self._plan(list(columns), where)  # fail before creating any file
        # The base class checks and reserves the data file; the header must be free too.
        check_writable(header_path, force)
        super().__init__(phsp_path, columns=columns, force=force)

    @staticmethod
    def _check_text(name: str, text: str, where: str) -> None:
        if any(line.lstrip().startswith("$") for line in text.splitlines()):
            raise ConfigError(f"{where}: text of ${name} has a line starting with '$', which would start a new header section")

    # -- planning ---------------------------------------------------------------------

    def _plan(self, columns: list[str], where: str) -> None:
        """Decide the record layout from the column set (raises DataError on bad sets)."""
        required = ["KineticEnergy", *(name for axis, name in zip("XYZ", _POSITION) if axis not in self.constants), *_DIRECTION]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(f"{where}: IAEA output needs column(s) {', '.join(missing)}; got {', '.join(columns) or 'none'}")
        if "PDGCode" not in columns and self.particle is None:
            raise DataError(
                f"{where}: the table has no PDGCode column and no particle type was given; pass particle='gamma' "
                "(or 'e-', 'e+', 'neutron', 'proton') in Python, --particle gamma on the command line"
            )
        known = {"KineticEnergy", *_POSITION, *_DIRECTION, "Weight", "PDGCode", "NewHistory"}
        floats: list[tuple[str, int]] = []
        longs: list[tuple[str, int]] = []
        unknown: list[str] = []
        for c in columns:
            if c in known:
                continue
            kind = _extra_type(c)
            if kind is None:
                unknown.append(c)
            elif kind[0] == "float":
                floats.append((c, kind[1]))
            else:
                longs.append((c, kind[1]))
        if unknown and not self.drop_unknown:
            raise DataError(
                f"{where}: the IAEA format cannot store column(s) {', '.join(unknown)}; it stores KineticEnergy, "
                "PrePosition_X/Y/Z, PreDirection_X/Y/Z, Weight, PDGCode, NewHistory and IAEA_* extras "
                "(IAEA_ExtraFloat_<i>, IAEA_ExtraLong_<i>, IAEA_IncrementalHistoryNumber, IAEA_LATCH, IAEA_XLAST...). "
                "Pass drop_unknown=True (command line: --drop-unknown) to leave them out."
            )
        self._has = set(columns)
        self._extra_floats = floats
        self._extra_longs = longs
        self._stored = {
            "X": "X" not in self.constants,
            "Y": "Y" not in self.constants,
            "Z": "Z" not in self.constants,
            "U": True,
            "V": True,
            "W": True,  # derived from U, V and the sign of the type byte
            "Weight": "Weight" in columns,
        }
        fields: list[tuple[str, str]] = [("type", "i1"), ("E", "<f4")]
        fields += [(axis, "<f4") for axis in "XYZ" if self._stored[axis]]
        fields += [("U", "<f4"), ("V", "<f4")]
        if self._stored["Weight"]:
            fields.append(("Weight", "<f4"))
        fields += [(f"f{i}", "<f4") for i in range(len(floats))]
        fields += [(f"l{i}", "<i4") for i in range(len(longs))]
        self._dtype = np.dtype(fields)

    def _start(self, columns: list[str]) -> None:
        self._plan(columns, str(self.path))
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in _finish/_abort_hook
        self._started = True

    # -- writing ----------------------------------------------------------------------

    def _write(self, chunk: Table, n: int) -> None:
        if self._fh is None:  # pragma: no cover - _start always runs first
            raise DataError(f"{self.path}: internal error: output not started")
        first_row = self.rows_written
        where = f"{self.path} (rows {first_row}..{first_row + n - 1} of the output)"
        rec = np.zeros(n, dtype=self._dtype)

        energy = np.asarray(chunk["KineticEnergy"], dtype=np.float64)
        bad = ~np.isfinite(energy) | (energy < 0.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: KineticEnergy must be finite and >= 0 (its sign flags new histories); row {first_row + i} has {energy[i]!r}")

        if "PDGCode" in self._has:
            pdg = np.asarray(chunk["PDGCode"])
            if pdg.dtype.kind == "f":
                pdg_int = np.where(np.isfinite(pdg), pdg, 0).astype(np.int64)
                pdg_int[pdg != pdg_int] = 0  # non-integral codes are invalid
            else:
                pdg_int = pdg.astype(np.int64)
            kind = np.zeros(n, dtype=np.int8)
            for code, t in PDG_TO_IAEA.items():
                kind[pdg_int == code] = t
            if (kind == 0).any():
                bad_codes = sorted({v.item() for v in np.unique(pdg[kind == 0])})
                raise DataError(
                    f"{where}: PDGCode value(s) {bad_codes[:10]} cannot be stored in IAEA format; "
                    f"it holds only {sorted(PDG_TO_IAEA)} (photon, electron, positron, neutron, proton)"
                )
        else:
            assert self.particle is not None  # _plan guarantees it
            kind = np.full(n, PDG_TO_IAEA[self.particle], dtype=np.int8)

        u = np.stack([np.asarray(chunk[c], dtype=np.float64) for c in _DIRECTION])
        norm2 = (u * u).sum(axis=0)
        if self.normalize_directions:
            bad = ~np.isfinite(norm2) | (norm2 <= 0.0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where}: direction of row {first_row + i} is {u[:, i].tolist()}; cannot normalise it")
            u /= np.sqrt(norm2)
        else:
            bad = ~(np.abs(norm2 - 1.0) <= 1e-5)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where}: direction of row {first_row + i} has squared length {norm2[i]!r}; expected a unit vector")
        rec["type"] = np.where(u[2] < 0.0, -kind, kind)
        rec["U"], rec["V"] = u[0], u[1]

        if "NewHistory" in self._has:
            new = np.asarray(chunk["NewHistory"]) != 0
        else:
            new = np.ones(n, dtype=bool)
        # Negate, do not multiply: -0.0 keeps the flag for zero energies.
        rec["E"] = np.where(new, -energy, energy)

        pos_cm: list[np.ndarray] = []
        for axis, name in zip("XYZ", _POSITION):
            if self._stored[axis]:
                values = np.asarray(chunk[name], dtype=np.float64) / _CM_TO_MM
                rec[axis] = values
                pos_cm.append(values)
            else:
                if name in chunk:
                    given = np.asarray(chunk[name], dtype=np.float64)
                    c = self.constants[axis]
                    off = np.abs(given - c) > 1e-6 * max(1.0, abs(c))
                    if off.any():
                        i = int(np.flatnonzero(off)[0])
                        raise DataError(
                            f"{where}: constant_{axis.lower()}={c} mm was declared but {name} of row {first_row + i} is {given[i]!r}"
                        )
                pos_cm.append(np.empty(0))
        weight = np.asarray(chunk["Weight"], dtype=np.float64) if self._stored["Weight"] else np.ones(n)
        if self._stored["Weight"]:
            rec["Weight"] = weight
        for i, (name, type_code) in enumerate(self._extra_floats):
            values = np.asarray(chunk[name], dtype=np.float64)
            rec[f"f{i}"] = values / _CM_TO_MM if type_code in _EXTRA_FLOAT_IS_POSITION else values
        for i, (name, _code) in enumerate(self._extra_longs):
            values = np.asarray(chunk[name])
            as_int = values.astype(np.int64)
            if (values != as_int).any() or (as_int < -(2**31)).any() or (as_int >= 2**31).any():
                raise DataError(f"{where}: column {name!r} must hold 32-bit integers")
            rec[f"l{i}"] = as_int

        self._stats.update(kind, energy, weight, pos_cm, new)
        self._fh.write(rec.tobytes())

    def _finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        size = self._tmp.stat().st_size
        n = self.rows_written
        if size != n * self._dtype.itemsize:  # pragma: no cover - would be a gansim bug
            raise DataError(f"{self.path}: internal error: wrote {size} bytes for {n} records of {self._dtype.itemsize}")
        self._tmp_header = temporary_sibling(self.header_path)
        self._tmp_header.write_text(self._header_text(size), encoding="utf-8")

    def close(self) -> None:
        """Publish the data file, then the header (idempotent)."""
        if self._closed:
            return
        try:
            super().close()
            if self._tmp_header is not None:
                commit_file(self._tmp_header, self.header_path)
                self._tmp_header = None
        except BaseException:
            self._drop_header_tmp()
            raise

    def _drop_header_tmp(self) -> None:
        if self._tmp_header is not None:
            self._tmp_header.unlink(missing_ok=True)
            self._tmp_header = None

    def _abort_hook(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        self._drop_header_tmp()

    # -- header -----------------------------------------------------------------------

    def _header_text(self, size: int) -> str:
        s = self._stats
        n = self.rows_written
        out = io.StringIO()

        def section(name: str, body: str) -> None:
            out.write(f"${name}:\n{body.rstrip()}\n\n" if body.strip() else f"${name}:\n\n")

        section("IAEA_INDEX", self.iaea_index)
        section("TITLE", self.title)
        section("FILE_TYPE", "0")
        section("CHECKSUM", str(size))
        lines = [f"    {int(self._stored[q])}     // {q} is stored ?" for q in ("X", "Y", "Z", "U", "V", "W", "Weight")]
        lines.append(f"    {len(self._extra_floats)}     // Extra floats stored ?")
        lines.append(f"    {len(self._extra_longs)}     // Extra longs stored ?")
        for i, (_name, code) in enumerate(self._extra_floats):
            lines.append(f"    {code}     // {_EXTRA_FLOAT_LABELS.get(code, 'Float variable')} stored in the extrafloat array [{i}]")
        for i, (_name, code) in enumerate(self._extra_longs):
            lines.append(f"    {code}     // {_EXTRA_LONG_LABELS.get(code, 'Integer variable')} stored in the extralong array [{i}]")
        section("RECORD_CONTENTS", "\n".join(lines))
        constants = [f"   {self.constants[axis] / _CM_TO_MM!r}     // Constant {axis}" for axis in "XYZ" if not self._stored[axis]]
        if not self._stored["Weight"]:
            constants.append("   1.0     // Constant Weight")
        section("RECORD_CONSTANT", "\n".join(constants))
        section("RECORD_LENGTH", str(self._dtype.itemsize))
        section("BYTE_ORDER", "1234")
        section("ORIG_HISTORIES", str(self.orig_histories if self.orig_histories is not None else s.new_histories))
        section("PARTICLES", str(n))
        for t, name in enumerate(_TYPE_NAMES):
            if s.count[t]:
                section(name, str(int(s.count[t])))
        texts = {**_DEFAULT_TEXT, **self.header_fields}
        for name in ("TRANSPORT_PARAMETERS", "MACHINE_TYPE", "MONTE_CARLO_CODE_VERSION", "GLOBAL_PHOTON_ENERGY_CUTOFF",
                     "GLOBAL_PARTICLE_ENERGY_CUTOFF", "COORDINATE_SYSTEM_DESCRIPTION"):  # fmt: skip
            section(name, texts.pop(name))
        out.write("//  OPTIONAL INFORMATION\n\n")
        notes = "Written by gansim in the IAEA format of the technical report INDC(NDS)-0484, Vienna, 2006."
        texts.setdefault("ADDITIONAL_NOTES", notes)
        for name in _OPTIONAL_SECTIONS:
            section(name, texts.pop(name, ""))
        for name, body in texts.items():  # user sections gansim does not know
            section(name, body)
        # Statistics as the IAEA library writes them: <E> is weight-averaged.
        stat = ["//        Weight        Wmin        Wmax         <E>        Emin        Emax    Particle"]
        for t, name in enumerate(_TYPE_NAMES):
            if s.count[t]:
                mean_e = s.sum_we[t] / s.sum_w[t] if s.sum_w[t] > 0 else 0.0
                stat.append(
                    f"  {s.sum_w[t]:14.7g} {s.min_w[t]:11.5g} {s.max_w[t]:11.5g} {mean_e:11.5g} {s.min_e[t]:11.5g} {s.max_e[t]:11.5g}    {name}"
                )
        section("STATISTICAL_INFORMATION_PARTICLES", "\n".join(stat))
        geometry = []
        for i, axis in enumerate("XYZ"):
            if self._stored[axis] and n:
                geometry.append(f"  {s.pos_min[i]:.7g}  {s.pos_max[i]:.7g}     // {axis} min, max [cm]")
        section("STATISTICAL_INFORMATION_GEOMETRY", "\n".join(geometry))
        return out.getvalue()
