"""Calorimeter geometries as data: which cells a shower file holds and where they are.

One description per layout, used by the readers and writers, the models, the shower-shape
metrics and the plots alike, so that nothing re-derives cell sizes or axis conventions.

**CaloGAN** (Paganini, de Oliveira, Nachman 2018; ``../shared/reference/calogan.md`` §a): a
Pb/LAr sampling calorimeter spanning z in [-240, 240] mm, read out in three layers by
the pre-step z of each deposit: layer 0 (z < -150 mm, 90 mm deep), layer 1 (-150 <= z < 197 mm,
347 mm), layer 2 (z >= 197 mm, 43 mm). Transversely, x and y in [-240, 240] mm are binned;
**axis 1 of each layer image is x, called phi, axis 2 is y, called eta** (as the CaloGAN
converter reshapes its ntuple and as CaloFlow's ``PHI_CELLS``/``ETA_CELLS`` say): layer 0 has
3 x 96 cells of 160 x 5 mm, layer 1 12 x 12 of 40 x 40 mm, layer 2 12 x 6 of 40 x 80 mm. The
beam enters along +z at x = y = 0: on the boundary of eta strips 47 and 48 (inside the middle
160 mm phi cell) in layer 0, on the corner of four cells in layers 1 and 2.

**CaloChallenge** (2022, datasets 2 and 3; DS1 from its binning XML): cylindrical voxels in
(layer, alpha, r) order, flattened in that order in the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gansim.errors import ConfigError

__all__ = [
    "CartesianLayer",
    "CartesianGeometry",
    "CylindricalLayer",
    "CylindricalGeometry",
    "CALOGAN",
    "CALOCHALLENGE_DS2",
    "CALOCHALLENGE_DS3",
    "calochallenge_geometry",
    "CellTable",
    "cell_table",
    "geometry_spec",
    "geometry_from_spec",
]


@dataclass(frozen=True)
class CartesianLayer:
    """One readout layer of a calorimeter with rectangular cells.

    Attributes:
        name: the dataset name in the file (``layer_0``).
        shape: cells along (axis 1, axis 2) of the layer image.
        cell_size: mm along (axis 1, axis 2).
        z_range: (front, back) mm along the beam.
        axis_names: names of (axis 1, axis 2): CaloGAN's ``("phi", "eta")`` (x and y).
    """

    name: str
    shape: tuple[int, int]
    cell_size: tuple[float, float]
    z_range: tuple[float, float]
    axis_names: tuple[str, str] = ("phi", "eta")

    @property
    def n_cells(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def depth(self) -> float:
        """Thickness along the beam, mm."""
        return self.z_range[1] - self.z_range[0]

    def centres(self, axis: int) -> np.ndarray:
        """Cell centres (mm from the beam axis) along image axis ``axis`` (1 or 2): symmetric about 0."""
        if axis not in (1, 2):
            raise ConfigError(f"{self.name}: axis {axis!r}: expected 1 ({self.axis_names[0]}) or 2 ({self.axis_names[1]})")
        n, size = self.shape[axis - 1], self.cell_size[axis - 1]
        return (np.arange(n, dtype=np.float64) - 0.5 * (n - 1)) * size

    def edges(self, axis: int) -> np.ndarray:
        """Cell edges (mm), n + 1 values."""
        n, size = self.shape[axis - 1], self.cell_size[axis - 1]
        return (np.arange(n + 1, dtype=np.float64) - 0.5 * n) * size


@dataclass(frozen=True)
class CartesianGeometry:
    """A calorimeter read out in layers of rectangular cells (the CaloGAN layout).

    Attributes:
        name: the layout's name.
        layers: in beam order.
        z_front: where the calorimeter starts along the beam, mm.
        half_width: the transverse window is [-half_width, half_width] mm on both axes
            (energy outside it goes to the layer's overflow).
    """

    name: str
    layers: tuple[CartesianLayer, ...]
    z_front: float
    half_width: float

    @property
    def n_cells(self) -> int:
        return sum(layer.n_cells for layer in self.layers)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]


#: The CaloGAN detector (all numbers from ``generation/src`` of the CaloGAN repository, see the module docstring).
CALOGAN = CartesianGeometry(
    name="calogan",
    layers=(
        CartesianLayer("layer_0", (3, 96), (160.0, 5.0), (-240.0, -150.0)),
        CartesianLayer("layer_1", (12, 12), (40.0, 40.0), (-150.0, 197.0)),
        CartesianLayer("layer_2", (12, 6), (40.0, 80.0), (197.0, 240.0)),
    ),
    z_front=-240.0,
    half_width=240.0,
)


@dataclass(frozen=True)
class CylindricalLayer:
    """One layer of cylindrical voxels (CaloChallenge): ``n_alpha`` angular bins times radial bins.

    Attributes:
        r_edges: radial bin edges, mm (n_r + 1 increasing values from 0).
        n_alpha: angular bins over 2 pi (1 for a layer binned in r only).
    """

    r_edges: tuple[float, ...]
    n_alpha: int

    def __post_init__(self) -> None:
        r = np.asarray(self.r_edges, dtype=np.float64)
        if r.ndim != 1 or r.size < 2 or not np.all(np.isfinite(r)) or np.any(np.diff(r) <= 0) or r[0] < 0:
            raise ConfigError(f"cylindrical layer r_edges {self.r_edges!r}: expected >= 2 increasing finite values >= 0 (mm)")
        if isinstance(self.n_alpha, bool) or int(self.n_alpha) != self.n_alpha or self.n_alpha < 1:
            raise ConfigError(f"cylindrical layer n_alpha {self.n_alpha!r}: expected a whole number >= 1")

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_cells(self) -> int:
        return self.n_r * self.n_alpha

    def r_centres(self) -> np.ndarray:
        r = np.asarray(self.r_edges, dtype=np.float64)
        return 0.5 * (r[1:] + r[:-1])

    def alpha_centres(self) -> np.ndarray:
        """Angular bin centres in [0, 2 pi), rad."""
        return (np.arange(self.n_alpha) + 0.5) * (2 * math.pi / self.n_alpha)


@dataclass(frozen=True)
class CylindricalGeometry:
    """A calorimeter of cylindrical voxels (CaloChallenge), flattened in (layer, alpha, r) order.

    Attributes:
        name: ``calochallenge-ds1-photon``, ``calochallenge-ds2``...
        layers: in beam order (every layer present in the file, in file order).
        layer_ids: the detector layer number of each (DS1 keeps only some layers).
        layer_thickness: mm along the beam, when known (None for DS1).
    """

    name: str
    layers: tuple[CylindricalLayer, ...]
    layer_ids: tuple[int, ...] = field(default=())
    layer_thickness: float | None = None

    def __post_init__(self) -> None:
        if not self.layer_ids:
            object.__setattr__(self, "layer_ids", tuple(range(len(self.layers))))
        if len(self.layer_ids) != len(self.layers):
            raise ConfigError(f"{self.name}: {len(self.layer_ids)} layer ids for {len(self.layers)} layers")

    @property
    def n_cells(self) -> int:
        return sum(layer.n_cells for layer in self.layers)

    def layer_slices(self) -> list[slice]:
        """Where each layer's voxels sit in a flattened shower."""
        out, start = [], 0
        for layer in self.layers:
            out.append(slice(start, start + layer.n_cells))
            start += layer.n_cells
        return out

    def regular_shape(self) -> tuple[int, int, int] | None:
        """(n_layers, n_alpha, n_r) when every layer has the same binning (DS2, DS3), else None."""
        first = self.layers[0]
        if all(layer.n_alpha == first.n_alpha and layer.r_edges == first.r_edges for layer in self.layers):
            return (len(self.layers), first.n_alpha, first.n_r)
        return None


def _regular(name: str, n_layers: int, n_alpha: int, n_r: int, dr: float, thickness: float) -> CylindricalGeometry:
    layer = CylindricalLayer(tuple(float(v) for v in np.arange(n_r + 1) * dr), n_alpha)
    return CylindricalGeometry(name, tuple(layer for _ in range(n_layers)), layer_thickness=thickness)


#: CaloChallenge dataset 2: 45 layers x 16 alpha x 9 r of 4.65 mm (6,480 voxels); readout layers of
#: 2 x (1.4 mm W + 0.3 mm Si) = 3.4 mm.
CALOCHALLENGE_DS2 = _regular("calochallenge-ds2", 45, 16, 9, 4.65, 3.4)
#: CaloChallenge dataset 3: 45 layers x 50 alpha x 18 r of 2.325 mm (40,500 voxels).
CALOCHALLENGE_DS3 = _regular("calochallenge-ds3", 45, 50, 18, 2.325, 3.4)


def calochallenge_geometry(name: str) -> CylindricalGeometry:
    """``ds2``/``ds3`` (or their full names); DS1 needs its binning XML (:func:`gansim.io.calo.read_binning_xml`)."""
    key = str(name).strip().lower().replace("calochallenge-", "")
    if key == "ds2":
        return CALOCHALLENGE_DS2
    if key == "ds3":
        return CALOCHALLENGE_DS3
    if key.startswith("ds1"):
        raise ConfigError(f"CaloChallenge {name!r}: dataset 1's binning differs per particle; read it from its binning XML (gansim.io.calo.read_binning_xml)")
    raise ConfigError(f"CaloChallenge dataset {name!r}: expected ds2 or ds3 (ds1 from its binning XML)")


@dataclass(frozen=True)
class CellTable:
    """Every cell of a geometry in the flattened order of its showers (what a model sees as one row).

    Attributes:
        layer: (C,) int64 layer number of each cell (0 .. n_layers - 1, beam order).
        x, y: (C,) float64 transverse cell centres, mm. CaloGAN: x along image axis 1 (phi), y
            along axis 2 (eta), each layer image flattened in C order; cylindrical: x = r cos(alpha),
            y = r sin(alpha) at the voxel centres, in (layer, alpha, r) order.
        n_layers: number of layers.
    """

    layer: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n_layers: int

    @property
    def n_cells(self) -> int:
        return int(self.layer.size)


def cell_table(geometry: CartesianGeometry | CylindricalGeometry) -> CellTable:
    """The :class:`CellTable` of ``geometry``."""
    layers, xs, ys = [], [], []
    if isinstance(geometry, CartesianGeometry):
        for i, layer in enumerate(geometry.layers):
            x, y = np.meshgrid(layer.centres(1), layer.centres(2), indexing="ij")
            layers.append(np.full(layer.n_cells, i, dtype=np.int64))
            xs.append(x.ravel())
            ys.append(y.ravel())
    elif isinstance(geometry, CylindricalGeometry):
        for i, layer in enumerate(geometry.layers):
            alpha, r = np.meshgrid(layer.alpha_centres(), layer.r_centres(), indexing="ij")  # r fastest
            layers.append(np.full(layer.n_cells, i, dtype=np.int64))
            xs.append((r * np.cos(alpha)).ravel())
            ys.append((r * np.sin(alpha)).ravel())
    else:
        raise ConfigError(f"geometry {geometry!r}: expected a CartesianGeometry or a CylindricalGeometry")
    return CellTable(np.concatenate(layers), np.concatenate(xs), np.concatenate(ys), len(geometry.layers))


def geometry_spec(geometry: CartesianGeometry | CylindricalGeometry) -> dict:
    """Plain data describing ``geometry`` (JSON-ready), read back by :func:`geometry_from_spec`."""
    if isinstance(geometry, CartesianGeometry):
        if geometry != CALOGAN:
            raise ConfigError(f"geometry {geometry.name!r}: the only Cartesian layout gansim knows is CaloGAN's")
        return {"kind": "calogan", "name": geometry.name}
    layers = [{"id": int(i), "r_edges": [float(r) for r in layer.r_edges], "n_alpha": int(layer.n_alpha)} for i, layer in zip(geometry.layer_ids, geometry.layers)]
    return {"kind": "cylindrical", "name": geometry.name, "layer_thickness": geometry.layer_thickness, "layers": layers}


def geometry_from_spec(spec: dict, source: str = "geometry") -> CartesianGeometry | CylindricalGeometry:
    """The geometry that :func:`geometry_spec` described.

    Raises:
        ConfigError: a spec of an unknown kind, or missing/bad keys (named, with ``source``).
    """
    try:
        kind = spec.get("kind", "cylindrical") if isinstance(spec, dict) else None
        if kind == "calogan":
            return CALOGAN
        if kind != "cylindrical":
            raise ConfigError(f"{source}: geometry kind {kind!r}: expected 'calogan' or 'cylindrical'")
        layers = tuple(CylindricalLayer(tuple(float(r) for r in la["r_edges"]), int(la["n_alpha"])) for la in spec["layers"])
        ids = tuple(int(la["id"]) for la in spec["layers"])
        thickness = spec.get("layer_thickness")
        return CylindricalGeometry(str(spec["name"]), layers, ids, None if thickness is None else float(thickness))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{source}: geometry description is incomplete or malformed ({err!r})") from err
