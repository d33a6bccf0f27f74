"""Built-in calorimeter showers: GFlash showers binned into the CaloGAN or a CaloChallenge layout.

:func:`make_calo_showers` (or :func:`iter_calo_showers`, chunk by chunk) simulates e+, gamma or
pi+ showers with :mod:`gansim.physics.gflash` and bins their spots into the cells of
:data:`gansim.io.calo_geometry.CALOGAN` or :data:`~gansim.io.calo_geometry.CALOCHALLENGE_DS2`.

Layouts
-------
``calogan``: the beam enters at x = y = 0 (a cell corner in every layer) along +z; depth is
measured from the face (z = -240 mm; the 48 mm of vacuum before it change nothing). Steps are
assigned to layer 0 (first 90 mm), 1 (next 347 mm), 2 (last 43 mm); x is binned on axis 1 (phi)
and y on axis 2 (eta) with each layer's ``edges``; a spot outside [-240, 240) mm on either axis
goes to that layer's ``overflow``. Energy beyond the back (480 mm) is longitudinal leakage, not
stored (the CaloGAN files have no such dataset) but returned in ``diagnostics["leakage_MeV"]``.
Default medium: ``calogan`` (total deposits: Z 69.4, X0 15.6 mm, R_M 35.5 mm, E_c 9.3 MeV).

``calochallenge-ds2`` (also ``calochallenge-ds3``): 45 readout layers of 3.4 mm along the beam,
16 alpha bins (alpha = atan2(y, x) in [0, 2 pi), bin 0 starting on +x) and 9 radial bins of
4.65 mm, flattened in (layer, alpha, r) order: (N, 6480) MeV. Default medium: ``wsi``, a W/Si
effective medium like dataset 2's (1.4 mm W + 0.3 mm Si: X0 4.2 mm, R_M 10.9 mm), so that the
153 mm x 42 mm volume holds the shower as in the real data set (36 X0, 3.8 R_M); the energy
beyond the last radial bin is ``diagnostics["lateral_MeV"]``. ``medium="calogan"`` is accepted
too (CaloGAN's showers in DS2 voxels: mostly outside the 153 mm x 42 mm volume). Energies are
total deposits (not calibrated against the real dataset 2).

Reproducibility
---------------
Showers are processed in blocks of 64; every block and every random purpose (energy, profile,
start depth, spots, ...) has its own generator seeded from ``SeedSequence(seed, spawn_key=(block,
purpose))``. The result therefore depends on ``seed`` only, **not on ``chunk`` or ``max_spots``**,
and the first k showers of a larger set equal the set of k (for the same seed and settings).
Batches are whole blocks holding at most ``max_spots`` spots (bounded memory: ~100 bytes a spot).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gansim.errors import ConfigError, DataError
from gansim.io.calo import check_float_dtype
from gansim.io.calo_geometry import (
    CALOGAN,
    CartesianGeometry,
    CylindricalGeometry,
    calochallenge_geometry,
)
from gansim.physics.gflash import (
    ENERGY_STREAM,
    MAX_STEP_X0,
    DepthGrid,
    Medium,
    RandomStreams,
    Spots,
    get_medium,
    max_spots_per_shower,
    normalise_particle,
    simulate_showers,
)

__all__ = [
    "BLOCK_SIZE",
    "CALO_LAYOUTS",
    "CaloShowers",
    "bin_calogan",
    "bin_cylindrical",
    "calogan_depth_grid",
    "cylindrical_depth_grid",
    "iter_calo_showers",
    "make_calo_showers",
]

#: Layout names accepted by :func:`make_calo_showers`.
CALO_LAYOUTS = ("calogan", "calochallenge-ds2", "calochallenge-ds3")
#: Showers per random-number block (fixed: changing it changes the data set of a seed).
BLOCK_SIZE = 64
_DEFAULT_MEDIUM = {"calogan": "calogan", "calochallenge-ds2": "wsi", "calochallenge-ds3": "wsi"}


@dataclass
class CaloShowers:
    """Built-in showers of one particle in one layout (gansim units).

    Attributes:
        layout: ``calogan`` or ``calochallenge-ds2``/``-ds3``.
        geometry: the cells (:mod:`gansim.io.calo_geometry`).
        particle: ``eplus``, ``gamma`` or ``piplus``.
        medium: the GFlash medium's name.
        energy: (N,) incident kinetic energy, MeV.
        layers: CaloGAN: (N, 3, 96), (N, 12, 12), (N, 12, 6) MeV (axis 1 phi = x, axis 2 eta = y);
            CaloChallenge: [(N, voxels)] MeV in (layer, alpha, r) order.
        overflow: CaloGAN: (N, 3) MeV outside the +-240 mm window per layer; None for CaloChallenge.
        diagnostics: (N,) arrays: ``leakage_MeV`` (beyond the back), ``invisible_MeV`` (pi+) in
            MeV deposited before the medium's fluctuation and scale; ``lateral_MeV``
            (CaloChallenge: beyond the last radial bin) in stored MeV like the voxels; ``start_depth_mm``, ``T_X0``, ``alpha``,
            ``em_fraction``, ``mip_MeV`` (see :class:`gansim.physics.gflash.ShowerSample`).
    """

    layout: str
    geometry: CartesianGeometry | CylindricalGeometry
    particle: str
    medium: str
    energy: np.ndarray
    layers: list[np.ndarray]
    overflow: np.ndarray | None
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    @property
    def showers(self) -> np.ndarray:
        """CaloChallenge layouts: the (N, voxels) array (``layers[0]``)."""
        if self.overflow is not None or len(self.layers) != 1:
            raise ConfigError(f"layout {self.layout!r} has per-layer images, not a flat 'showers' array")
        return self.layers[0]

    def to_shower_data(self) -> Any:
        """The same showers as a :class:`gansim.io.calo.ShowerData` (for the HDF5 writers)."""
        from gansim.io.calo import ShowerData

        return ShowerData(layout=self.geometry.name, geometry=self.geometry, energy=self.energy,
                          layers=list(self.layers), overflow=self.overflow)

    @classmethod
    def concatenate(cls, parts: Sequence[CaloShowers]) -> CaloShowers:
        """Showers of several chunks of one data set, in order (at least one part)."""
        if not parts:
            raise ConfigError("no shower chunks to concatenate")
        first = parts[0]
        return cls(
            layout=first.layout, geometry=first.geometry, particle=first.particle, medium=first.medium,
            energy=np.concatenate([p.energy for p in parts]),
            layers=[np.concatenate([p.layers[i] for p in parts]) for i in range(len(first.layers))],
            overflow=None if first.overflow is None else np.concatenate([p.overflow for p in parts]),
            diagnostics={k: np.concatenate([p.diagnostics[k] for p in parts]) for k in first.diagnostics},
        )


# ---------------------------------------------------------------------------------------------
# grids and binning


def calogan_depth_grid(medium: Medium | str, geometry: CartesianGeometry = CALOGAN) -> DepthGrid:
    """Steps of at most 0.1 X0 aligned with the CaloGAN layers (mm from the face): 58 + 223 + 28 in CaloGAN's medium."""
    m = get_medium(medium)
    bounds = [geometry.layers[0].z_range[0] - geometry.z_front] + [layer.z_range[1] - geometry.z_front for layer in geometry.layers]
    return DepthGrid.from_boundaries(bounds, MAX_STEP_X0 * m.X0)


def cylindrical_depth_grid(geometry: CylindricalGeometry, medium: Medium | str) -> DepthGrid:
    """Steps of at most 0.1 X0 aligned with the readout layers of a CaloChallenge geometry of known thickness."""
    if geometry.layer_thickness is None:
        raise ConfigError(f"{geometry.name}: layer thickness unknown; built-in showers need dataset 2 or 3")
    m = get_medium(medium)
    return DepthGrid.from_boundaries(np.arange(len(geometry.layers) + 1) * geometry.layer_thickness, MAX_STEP_X0 * m.X0)


def _regular_bin(edges: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Index i with edges[i] <= v < edges[i+1] for equally spaced edges (-1 or n outside)."""
    n = edges.size - 1
    i = np.floor((v - edges[0]) * (n / (edges[-1] - edges[0])))
    return np.clip(i, -1, n).astype(np.int64)


def bin_calogan(spots: Spots, n: int, grid: DepthGrid, geometry: CartesianGeometry = CALOGAN) -> tuple[list[np.ndarray], np.ndarray]:
    """Sum spot energies into the CaloGAN cells.

    Args:
        spots: events 0..n-1; x on axis 1 (phi), y on axis 2 (eta), mm from the beam line.
        grid: the depth grid the spots were made on (its layers are the geometry's).

    Returns:
        Per-layer arrays (n, n_phi, n_eta) MeV and the overflow (n, n_layers) MeV, float64.
    """
    if grid.n_layers != len(geometry.layers):
        raise ConfigError(f"depth grid with {grid.n_layers} layers for {geometry.name}'s {len(geometry.layers)} layers")
    n_layers = len(geometry.layers)
    offsets = np.concatenate([[0], np.cumsum([layer.n_cells for layer in geometry.layers])])
    row = int(offsets[-1]) + n_layers  # cells, then one overflow per layer
    layer_of = grid.step_layer[spots.step]
    flat = np.empty(len(spots), dtype=np.int64)
    for i, layer in enumerate(geometry.layers):
        sel = np.flatnonzero(layer_of == i)
        n1, n2 = layer.shape
        ix = _regular_bin(layer.edges(1), spots.x[sel])
        iy = _regular_bin(layer.edges(2), spots.y[sel])
        inside = (ix >= 0) & (ix < n1) & (iy >= 0) & (iy < n2)
        base = spots.event[sel] * row
        flat[sel] = np.where(inside, base + offsets[i] + ix * n2 + iy, base + offsets[-1] + i)
    acc = np.bincount(flat, weights=spots.energy, minlength=n * row).reshape(n, row)
    layers = [acc[:, offsets[i]:offsets[i + 1]].reshape((n, *layer.shape)) for i, layer in enumerate(geometry.layers)]
    return layers, acc[:, offsets[-1]:]


def bin_cylindrical(spots: Spots, n: int, grid: DepthGrid, geometry: CylindricalGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Sum spot energies into (layer, alpha, r) voxels around the beam line.

    Returns:
        (n, voxels) MeV in (layer, alpha, r) order and the energy beyond the last radial bin (n,) MeV.
    """
    shape = geometry.regular_shape()
    if shape is None:
        raise ConfigError(f"{geometry.name}: built-in showers need a regular binning (dataset 2 or 3)")
    n_z, n_alpha, n_r = shape
    if grid.n_layers != n_z:
        raise ConfigError(f"depth grid with {grid.n_layers} layers for {geometry.name}'s {n_z} layers")
    r_edges = np.asarray(geometry.layers[0].r_edges)
    r = np.hypot(spots.x, spots.y)
    ir = np.searchsorted(r_edges, r, side="right") - 1
    inside = ir < n_r
    alpha = np.mod(np.arctan2(spots.y, spots.x), 2.0 * math.pi)
    ia = np.minimum((alpha * (n_alpha / (2.0 * math.pi))).astype(np.int64), n_alpha - 1)
    voxels = n_z * n_alpha * n_r
    flat = spots.event * voxels + grid.step_layer[spots.step] * (n_alpha * n_r) + ia * n_r + ir
    showers = np.bincount(flat[inside], weights=spots.energy[inside], minlength=n * voxels).reshape(n, voxels)
    lateral = np.bincount(spots.event[~inside], weights=spots.energy[~inside], minlength=n)
    return showers, lateral


# ---------------------------------------------------------------------------------------------
# the data set


def _check_layout(layout: str) -> tuple[str, CartesianGeometry | CylindricalGeometry]:
    key = str(layout).strip().lower()
    if key in ("ds2", "ds3"):
        key = "calochallenge-" + key
    if key == "calogan":
        return key, CALOGAN
    if key in ("calochallenge-ds2", "calochallenge-ds3"):
        return key, calochallenge_geometry(key)
    raise ConfigError(f"layout {layout!r}: expected one of {', '.join(CALO_LAYOUTS)}")


def _check_whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} = {value!r}: expected a whole number >= {minimum}")
    return int(value)


def _check_range(energy_range_gev: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in energy_range_gev)
    except (TypeError, ValueError):
        raise ConfigError(f"energy_range_GeV = {energy_range_gev!r}: expected two numbers (low, high) in GeV") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ConfigError(f"energy_range_GeV = {energy_range_gev!r}: expected 0 < low <= high, finite, in GeV")
    return lo, hi


def _batches(bound: np.ndarray, max_spots: int, max_blocks: int) -> list[tuple[int, int]]:
    """Split showers into runs of whole blocks whose spot bound stays within max_spots and that hold
    at most max_blocks blocks (>= 1 block each)."""
    n = bound.size
    starts = np.arange(0, n, BLOCK_SIZE)
    per_block = np.add.reduceat(bound, starts) if n else np.zeros(0, np.int64)
    out, lo, total, blocks = [], 0, 0, 0
    for b, cost in enumerate(per_block):
        first = int(starts[b])
        if first > lo and (total + cost > max_spots or blocks >= max_blocks):
            out.append((lo, first))
            lo, total, blocks = first, 0, 0
        total += int(cost)
        blocks += 1
    if n:
        out.append((lo, n))
    return out


def _simulate_batch(energy: np.ndarray, particle: str, med: Medium, grid: DepthGrid,
                    geometry: CartesianGeometry | CylindricalGeometry, layout: str, streams: RandomStreams,
                    out_dtype: np.dtype) -> CaloShowers:
    """Simulate and bin one batch of whole blocks."""
    sample = simulate_showers(energy, particle, med, grid, streams)
    diag = dict(sample.diagnostics)
    n = energy.size
    if layout == "calogan":
        layers, overflow = bin_calogan(sample.spots, n, grid, geometry)
        return CaloShowers(layout, geometry, particle, med.name, sample.energy.copy(),
                           [x.astype(out_dtype) for x in layers], overflow.astype(out_dtype), diag)
    showers, lateral = bin_cylindrical(sample.spots, n, grid, geometry)
    diag["lateral_MeV"] = lateral  # stored energy, like the voxels
    return CaloShowers(layout, geometry, particle, med.name, sample.energy.copy(), [showers.astype(out_dtype)], None, diag)


def iter_calo_showers(n: int, particle: str = "eplus", *, seed: int = 0, layout: str = "calogan",
                      energy_range_GeV: Sequence[float] = (1.0, 100.0), energies_MeV: np.ndarray | None = None,
                      chunk: int = 1000, medium: str | Medium | None = None, max_spots: int = 4_000_000,
                      dtype: Any = np.float32, workers: int = 1) -> Iterator[CaloShowers]:
    """Yield the showers of :func:`make_calo_showers` chunk by chunk (each a :class:`CaloShowers`).

    ``chunk`` is rounded up to whole blocks of 64 showers; each chunk is simulated in batches of
    at most ``max_spots`` spots, ``workers`` batches at a time in threads (NumPy and SciPy release
    the GIL in their array loops). The concatenated chunks do not depend on ``chunk``,
    ``max_spots`` or ``workers``.
    """
    n = _check_whole("n", n, 0)
    chunk = _check_whole("chunk", chunk, 1)
    max_spots = _check_whole("max_spots", max_spots, 1)
    seed = _check_whole("seed", seed, 0)
    workers = _check_whole("workers", workers, 1)
    particle = normalise_particle(particle)
    layout, geometry = _check_layout(layout)
    med = get_medium(_DEFAULT_MEDIUM[layout] if medium is None else medium)
    lo_gev, hi_gev = _check_range(energy_range_GeV)
    out_dtype = check_float_dtype(dtype)
    given = None
    if energies_MeV is not None:
        given = np.asarray(energies_MeV, dtype=np.float64).reshape(-1)
        if given.size != n:
            raise ConfigError(f"energies_MeV holds {given.size} energies for n = {n} showers")
        bad = np.flatnonzero(~(np.isfinite(given) & (given > 0)))
        if bad.size:
            raise DataError(f"energies_MeV: {bad.size} energies not finite or not positive (first at index {int(bad[0])}: {given[bad[0]]!r} MeV); expected MeV > 0")
    if layout == "calogan":
        grid = calogan_depth_grid(med, geometry)
    else:
        grid = cylindrical_depth_grid(geometry, med)
    chunk_rows = BLOCK_SIZE * max(1, -(-chunk // BLOCK_SIZE))
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        first_block = start // BLOCK_SIZE
        if given is None:
            streams = RandomStreams(seed=seed, n=stop - start, first_block=first_block, block_size=BLOCK_SIZE)
            energy = 1000.0 * (lo_gev + (hi_gev - lo_gev) * streams.uniform(ENERGY_STREAM, 1)[:, 0])
        else:
            energy = given[start:stop]
        bound = max_spots_per_shower(energy, particle, med, grid)
        n_blocks = -(-(stop - start) // BLOCK_SIZE)
        batches = _batches(bound, max_spots, max(1, -(-n_blocks // workers)))

        def run(batch: tuple[int, int], energy: np.ndarray = energy, first_block: int = first_block) -> CaloShowers:
            a, b = batch
            streams = RandomStreams(seed=seed, n=b - a, first_block=first_block + a // BLOCK_SIZE, block_size=BLOCK_SIZE)
            return _simulate_batch(energy[a:b], particle, med, grid, geometry, layout, streams, out_dtype)

        if workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(run, batches))
        else:
            parts = [run(batch) for batch in batches]
        yield CaloShowers.concatenate(parts)


def make_calo_showers(n: int, particle: str = "eplus", *, seed: int = 0, layout: str = "calogan",
                      energy_range_GeV: Sequence[float] = (1.0, 100.0), energies_MeV: np.ndarray | None = None,
                      chunk: int = 1000, medium: str | Medium | None = None, max_spots: int = 4_000_000,
                      dtype: Any = np.float32, workers: int = 1) -> CaloShowers:
    """n GFlash showers of ``particle`` binned into ``layout`` (see the module docstring).

    Args:
        n: number of showers.
        particle: ``eplus``, ``gamma`` or ``piplus`` (the CaloGAN file names).
        seed: the data set's seed (>= 0).
        layout: ``calogan`` or ``calochallenge-ds2`` (``calochallenge-ds3`` also works).
        energy_range_GeV: incident kinetic energies uniform in [low, high] GeV (CaloGAN: 1-100).
        energies_MeV: (n,) explicit energies in MeV instead (then ``energy_range_GeV`` is unused).
        chunk: showers per chunk (rounded up to whole blocks of 64); does not change the result.
        medium: ``calogan``, ``samplingEM``, ``wsi`` or a :class:`~gansim.physics.gflash.Medium`;
            None: ``calogan`` for the CaloGAN layout, ``wsi`` for the CaloChallenge ones.
        max_spots: spots per simulated batch (memory bound, ~100 bytes each); does not change the result.
        dtype: float type of the cell arrays (float32; float64 for exact sums).
        workers: batches simulated at once in threads (memory: workers x max_spots spots); does not
            change the result.

    Returns:
        :class:`CaloShowers`: ``energy`` (N,) MeV, ``layers`` (CaloGAN shapes) and ``overflow``
        (N, 3) MeV, or ``layers = [showers (N, 6480)]`` and ``overflow = None`` for dataset 2;
        ``diagnostics`` holds the longitudinal leakage and the rest.
    """
    parts = list(iter_calo_showers(n, particle, seed=seed, layout=layout, energy_range_GeV=energy_range_GeV,
                                   energies_MeV=energies_MeV, chunk=chunk, medium=medium, max_spots=max_spots, dtype=dtype,
                                   workers=workers))
    if parts:
        return CaloShowers.concatenate(parts)
    layout_key, geometry = _check_layout(layout)
    med = get_medium(_DEFAULT_MEDIUM[layout_key] if medium is None else medium)
    out_dtype = np.dtype(dtype)
    if layout_key == "calogan":
        layers = [np.zeros((0, *layer.shape), out_dtype) for layer in geometry.layers]
        overflow: np.ndarray | None = np.zeros((0, len(geometry.layers)), out_dtype)
    else:
        layers, overflow = [np.zeros((0, geometry.n_cells), out_dtype)], None
    keys = ["leakage_MeV", "invisible_MeV", "start_depth_mm", "T_X0", "alpha", "em_fraction", "mip_MeV"]
    if overflow is None:
        keys.append("lateral_MeV")
    return CaloShowers(layout_key, geometry, normalise_particle(particle), med.name, np.zeros(0), layers, overflow,
                       {k: np.zeros(0) for k in keys})
