"""Shower-shape variables of calorimeter showers, separation power and the KS statistic.

Two sets, each with the exact definitions of the code that introduced it
(``../shared/reference/calogan.md`` §c and §e):

* :func:`calogan_shower_shapes` — CaloGAN's ``analysis/feats1d.py`` (layer energies, fractions,
  depth, ``l_d``, shower depth and its width, lateral widths, E_ratio, sparsity), with the lateral
  width computed along **both** image axes (CaloGAN only used axis 1, phi), CaloChallenge's
  ``1 -`` sparsity beside CaloGAN's (named ``sparsity_cc_i``), and CaloFlow's additions (centre
  of energy per axis, the five brightest cells over the layer energy).
* :func:`cylindrical_shower_shapes` — CaloChallenge's ``HighLevelFeatures.CalculateFeatures`` for
  cylindrical (layer, alpha, r) voxels: per layer energy, centre of energy in eta/phi/r, widths,
  sparsity (``1 -`` fraction), plus E_tot and E_tot/E_inc.

:func:`calochallenge_feature_vector` stacks either set into CaloChallenge's high-level classifier
input (the vector FPD and KPD are computed on). Energies are in MeV and positions in mm (gansim
units); the geometry (cell centres, axis names) comes from :mod:`gansim.io.calo_geometry`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from gansim.errors import ConfigError, DataError
from gansim.io.calo_geometry import CALOGAN, CartesianGeometry, CylindricalGeometry

__all__ = [
    "CALOGAN_EPSILON",
    "CALOGAN_PAPER_VARIABLES",
    "calogan_shower_shapes",
    "cylindrical_shower_shapes",
    "calochallenge_feature_vector",
    "separation_power",
    "ks_statistic",
]

#: CaloGAN's ``myepsilon``: added to denominators of the lateral width and E_ratio (feats1d.py).
CALOGAN_EPSILON = 1e-6
#: CaloChallenge's guard in the centre-of-energy and width denominators (HighLevelFeatures.py).
_CC_EPSILON = 1e-16
#: CaloChallenge's guard inside log10 of energies (evaluate.py, prepare_high_data_for_classifier).
_CC_LOG_EPSILON = 1e-8
#: Showers per chunk in :func:`cylindrical_shower_shapes` (bounds the float64 working copy).
_CHUNK_ROWS = 2048
#: Number of brightest cells per layer in CaloFlow's high-level set.
_N_BRIGHTEST = 5

#: The variables of the CaloGAN paper's shower-shape figure (CaloGANTrainingComparison.ipynb), as
#: keys of :func:`calogan_shower_shapes`; CaloGAN's lateral width sigma_i is ``width_phi_i``.
CALOGAN_PAPER_VARIABLES: tuple[str, ...] = (
    "e0", "e1", "e2", "etot", "f0", "f1", "f2", "depth", "ratio_0", "ratio_1", "ratio_2", "l_d",
    "width_phi_0", "width_phi_1", "width_phi_2", "s_d", "sparsity_0", "sparsity_1", "sparsity_2", "sigma_sd",
)


# ----------------------------------------------------------------------------------------------
# input checks


def _incident_energy(energy: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    """(N,) or (N, 1) incident energies in MeV -> (N,) float64; None passes through."""
    if energy is None:
        return None
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim == 2 and e.shape[1] == 1:
        e = e[:, 0]
    if e.shape != (n,):
        raise DataError(f"{what}: incident energy of shape {np.shape(energy)}: expected ({n},) or ({n}, 1) (MeV)")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise DataError(f"{what}: incident energies must be finite and > 0 MeV")
    return e


def _check_cells(cells: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(cells)):
        raise DataError(f"{what}: non-finite cell energies (NaN or inf)")


def _apply_threshold(cells: np.ndarray, threshold: float) -> np.ndarray:
    """Zero the cells below ``threshold`` MeV (the readout cut CaloChallenge applies before evaluating)."""
    if not math.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"threshold {threshold!r}: expected a finite energy >= 0 (MeV)")
    if threshold == 0:
        return cells
    return np.where(cells < threshold, 0.0, cells)


def _calogan_layers(layers: Sequence[np.ndarray] | Mapping[str, np.ndarray], geometry: CartesianGeometry) -> list[np.ndarray]:
    """The layer images as float64 arrays (N, n1, n2), checked against the geometry."""
    if isinstance(layers, Mapping):
        missing = [layer.name for layer in geometry.layers if layer.name not in layers]
        if missing:
            raise DataError(f"shower layers: missing {', '.join(missing)}; got {', '.join(map(str, layers))}")
        arrays = [layers[layer.name] for layer in geometry.layers]
    else:
        arrays = list(layers)
        if len(arrays) != len(geometry.layers):
            raise DataError(f"shower layers: got {len(arrays)} arrays, geometry {geometry.name!r} has {len(geometry.layers)} layers")
    out: list[np.ndarray] = []
    n: int | None = None
    for layer, arr in zip(geometry.layers, arrays):
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim != 3 or a.shape[1:] != layer.shape:
            raise DataError(f"{layer.name}: shape {a.shape}: expected (N, {layer.shape[0]}, {layer.shape[1]}) ({geometry.name})")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise DataError(f"{layer.name}: {a.shape[0]} showers, but {geometry.layers[0].name} has {n}")
        _check_cells(a, layer.name)
        out.append(a)
    return out


# ----------------------------------------------------------------------------------------------
# CaloGAN set


def _calogan_lateral(img: np.ndarray, centres: np.ndarray, axis: int, e_layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of energy and lateral width (mm) along image ``axis`` (1 or 2), CaloGAN's formula.

    width = sqrt(sum I x^2 / (E + eps) - (sum I x / (E + eps))^2), eps = 1e-6 MeV (feats1d.py).
    The square root's argument is clipped at 0: for a single lit cell it is the tiny positive
    |x|^2 E eps / (E + eps)^2, which rounding can push below 0, where CaloGAN's code gives NaN.
    """
    profile = img.sum(axis=3 - axis)  # (N, n_axis): energy per row/column along ``axis``
    denom = e_layer + CALOGAN_EPSILON
    mean = profile @ centres / denom
    mean2 = profile @ (centres * centres) / denom
    return mean, np.sqrt(np.clip(mean2 - mean * mean, 0.0, None))


def _top_cells(flat: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest cells of each shower, descending: (N, k)."""
    k = min(k, flat.shape[1])
    part = np.partition(flat, flat.shape[1] - k, axis=1)[:, flat.shape[1] - k:]
    return -np.sort(-part, axis=1)


def calogan_shower_shapes(
    layers: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    energy: np.ndarray | None = None,
    geometry: CartesianGeometry = CALOGAN,
    *,
    threshold: float = 0.0,
) -> dict[str, np.ndarray]:
    """Every CaloGAN shower-shape variable (and CaloFlow's additions), one value per shower.

    Args:
        layers: the layer images in beam order, ``[(N, 3, 96), (N, 12, 12), (N, 12, 6)]`` MeV for
            CaloGAN (or a mapping ``{"layer_0": ..., ...}``); axis 1 is phi (x), axis 2 eta (y).
        energy: incident energies, (N,) or (N, 1) MeV, or None (then ``etot_over_einc`` is left out).
        geometry: cell centres (mm) and axis names.
        threshold: cells below it (MeV) are zeroed first (CaloFlow used 1e-2 MeV); 0 keeps all.

    Returns (every array (N,) float64; i is the layer index, energies MeV, positions mm):
        ``e{i}`` layer energy; ``etot`` = sum of layers (overflow excluded); ``f{i}`` = e_i / etot;
        ``depth`` = deepest layer with e_i != 0 (0 also for an empty shower, as CaloGAN);
        ``l_d`` = sum_i i e_i; ``s_d`` = l_d / etot; ``sigma_sd`` = sqrt(sum_i i^2 e_i / etot - s_d^2);
        ``ec_phi_{i}``, ``ec_eta_{i}`` centre of energy along axis 1 (phi) and axis 2 (eta);
        ``width_phi_{i}``, ``width_eta_{i}`` lateral widths along them (``width_phi_i`` is CaloGAN's sigma_i);
        ``ratio_{i}`` E_ratio = (I1 - I2) / (I1 + I2 + eps) of the two hottest cells;
        ``sparsity_{i}`` CaloGAN's fraction of cells > 0; ``sparsity_cc_{i}`` CaloChallenge's 1 - that;
        ``brightest_{k}_{i}`` (k = 1..5) the k-th hottest cell over e_i (CaloFlow);
        ``etot_over_einc`` when ``energy`` is given.

    Edge cases, as CaloGAN's code does them: an empty layer has width 0, centre 0, E_ratio 0 and
    brightest fractions 0 (the eps = 1e-6 MeV in the denominators); an empty shower (etot = 0) has
    f_i, s_d and sigma_sd NaN (CaloGAN divides by etot without a guard) and depth 0. The eps
    biases a width by at most |x| sqrt(eps / e_i), e.g. 1e-4 mm for 1 GeV in a cell 2.5 mm off-axis.
    """
    images = [_apply_threshold(img, threshold) for img in _calogan_layers(layers, geometry)]
    n = images[0].shape[0]
    einc = _incident_energy(energy, n, geometry.name)
    out: dict[str, np.ndarray] = {}
    e_layers = [img.sum(axis=(1, 2)) for img in images]
    for i, e in enumerate(e_layers):
        out[f"e{i}"] = e
    etot = np.sum(e_layers, axis=0)
    out["etot"] = etot
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, e in enumerate(e_layers):
            out[f"f{i}"] = e / etot
        depth = np.zeros(n, dtype=np.float64)
        for i, e in enumerate(e_layers):
            depth[e != 0] = i  # later layers overwrite: the deepest non-empty layer wins
        out["depth"] = depth
        idx = np.arange(len(e_layers), dtype=np.float64)
        l_d = np.tensordot(idx, np.asarray(e_layers), axes=1)
        l_d2 = np.tensordot(idx * idx, np.asarray(e_layers), axes=1)
        out["l_d"] = l_d
        s_d = l_d / etot
        out["s_d"] = s_d
        # rounding can leave -1e-16 for a shower in one layer; NaN (empty shower) passes through clip
        out["sigma_sd"] = np.sqrt(np.clip(l_d2 / etot - s_d * s_d, 0.0, None))
        if einc is not None:
            out["etot_over_einc"] = etot / einc
    for i, (layer, img, e) in enumerate(zip(geometry.layers, images, e_layers)):
        for axis in (1, 2):
            name = layer.axis_names[axis - 1]
            centre, width = _calogan_lateral(img, layer.centres(axis), axis, e)
            out[f"ec_{name}_{i}"] = centre
            out[f"width_{name}_{i}"] = width
        flat = img.reshape(n, -1)
        top = _top_cells(flat, max(2, _N_BRIGHTEST))
        out[f"ratio_{i}"] = (top[:, 0] - top[:, 1]) / (CALOGAN_EPSILON + top[:, 0] + top[:, 1])
        lit = (flat > 0).mean(axis=1)
        out[f"sparsity_{i}"] = lit
        out[f"sparsity_cc_{i}"] = 1.0 - lit
        for k in range(min(_N_BRIGHTEST, top.shape[1])):
            out[f"brightest_{k + 1}_{i}"] = top[:, k] / (e + CALOGAN_EPSILON)
    return out


# ----------------------------------------------------------------------------------------------
# CaloChallenge set (cylindrical voxels)


def _cc_voxel_coordinates(layer_alpha: np.ndarray, r_centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-voxel (eta, phi, r) of one layer in its (alpha, r) order, r fastest (mm)."""
    r = np.tile(r_centres, layer_alpha.size)
    alpha = np.repeat(layer_alpha, r_centres.size)
    return r * np.cos(alpha), r * np.sin(alpha), r


def _cc_moments(energy: np.ndarray, coord: np.ndarray, e_layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CaloChallenge's centre of energy and width along one coordinate (HighLevelFeatures.py)."""
    denom = e_layer + _CC_EPSILON
    mean = energy @ coord / denom
    mean2 = energy @ (coord * coord) / denom
    return mean, np.sqrt(np.clip(mean2 - mean * mean, 0.0, None))


def _flat_showers(showers: np.ndarray, geometry: CylindricalGeometry) -> np.ndarray:
    """The showers as (N, n_voxels), in their own dtype (converted chunk by chunk later)."""
    s = np.asarray(showers)
    regular = geometry.regular_shape()
    if s.ndim == 4 and regular is not None and s.shape[1:] == regular:
        s = s.reshape(s.shape[0], -1)
    if s.ndim != 2 or s.shape[1] != geometry.n_cells:
        shape4 = f" or (N, {', '.join(map(str, regular))})" if regular is not None else ""
        raise DataError(f"showers of shape {s.shape}: expected (N, {geometry.n_cells}){shape4} for {geometry.name} (MeV)")
    return s


def _cylindrical_chunk(flat: np.ndarray, geometry: CylindricalGeometry) -> dict[str, np.ndarray]:
    """The per-layer features of one chunk of showers (n, n_voxels) float64."""
    out: dict[str, np.ndarray] = {}
    for layer, layer_id, sl in zip(geometry.layers, geometry.layer_ids, geometry.layer_slices()):
        cells = flat[:, sl]
        e = cells.sum(axis=1)
        out[f"e{layer_id}"] = e
        eta, phi, r = _cc_voxel_coordinates(layer.alpha_centres() - math.pi, layer.r_centres())
        out[f"ec_r_{layer_id}"], out[f"width_r_{layer_id}"] = _cc_moments(cells, r, e)
        if layer.n_alpha > 1:
            out[f"ec_eta_{layer_id}"], out[f"width_eta_{layer_id}"] = _cc_moments(cells, eta, e)
            out[f"ec_phi_{layer_id}"], out[f"width_phi_{layer_id}"] = _cc_moments(cells, phi, e)
        out[f"sparsity_cc_{layer_id}"] = 1.0 - (cells > 0).mean(axis=1)
    out["etot"] = flat.sum(axis=1)
    return out


def cylindrical_shower_shapes(
    showers: np.ndarray,
    energy: np.ndarray | None,
    geometry: CylindricalGeometry,
    *,
    threshold: float = 0.0,
) -> dict[str, np.ndarray]:
    """CaloChallenge's high-level features of cylindrical showers, one value per shower.

    Args:
        showers: (N, n_voxels) MeV flattened in (layer, alpha, r) order (or (N, L, A, R) for a
            regular geometry).
        energy: incident energies (N,) or (N, 1) MeV, or None (then ``etot_over_einc`` is left out).
        geometry: the voxel binning (r edges mm, alpha bins per layer).
        threshold: cells below it (MeV) are zeroed first, as the challenge zeroes cells under the
            readout threshold (15.15 keV for DS2/DS3, 1 MeV for DS1) before evaluating.

    Returns (every array (N,) float64; l is the detector layer id ``geometry.layer_ids``):
        ``e{l}`` layer energy; ``etot`` sum of all voxels; ``etot_over_einc``;
        ``ec_r_{l}``, ``width_r_{l}`` centre of energy and width in r (every layer);
        ``ec_eta_{l}``, ``ec_phi_{l}``, ``width_eta_{l}``, ``width_phi_{l}`` with eta = r cos(alpha),
        phi = r sin(alpha) at the voxel centres (only for layers binned in alpha, as CaloChallenge);
        ``sparsity_cc_{l}`` = 1 - fraction of voxels > 0 (CaloChallenge's definition).

    Centres and widths divide by (e_l + 1e-16), so an empty layer gives 0 for both; widths are
    sqrt(<x^2> - <x>^2) clipped at 0. CaloChallenge's alpha bin centres start at -pi
    (XMLHandler: midpoints of linspace(-pi, pi, n_alpha + 1)); :meth:`CylindricalLayer.alpha_centres`
    counts from 0, so pi is subtracted here to reproduce the challenge's signs of eta and phi.
    """
    flat = _flat_showers(showers, geometry)
    n = flat.shape[0]
    einc = _incident_energy(energy, n, geometry.name)
    # rows in chunks: DS3 holds 40,500 voxels per shower, and a float64 copy of 10^4 showers is 3 GB
    chunks = []
    for start in range(0, max(n, 1), _CHUNK_ROWS):
        part = np.asarray(flat[start:start + _CHUNK_ROWS], dtype=np.float64)
        _check_cells(part, f"showers ({geometry.name})")
        chunks.append(_cylindrical_chunk(_apply_threshold(part, threshold), geometry))
    out = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    if einc is not None:
        out["etot_over_einc"] = out["etot"] / einc
    return out


_LAYER_KEY = re.compile(r"^e(\d+)$")


def calochallenge_feature_vector(shapes: Mapping[str, np.ndarray], energy: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """CaloChallenge's high-level vector (the classifier's "high" input, and FPD/KPD's features).

    Column order as ``prepare_high_data_for_classifier`` in the challenge's ``evaluate.py``:
    log10 E_inc, log10(E_l + 1e-8) for every layer, EC_eta / 100, EC_phi / 100, width_eta / 100,
    width_phi / 100 (layers binned in angle), log10(E_tot + 1e-8), sparsity (``1 -``, every
    layer), EC_r / 100, width_r / 100 (every layer, when present); energies MeV, positions mm.

    Args:
        shapes: the output of :func:`cylindrical_shower_shapes` or :func:`calogan_shower_shapes`
            (the latter has no r features, so those columns are absent).
        energy: incident energies (N,) or (N, 1) MeV.

    Returns:
        (N, D) float64 array and its D column names.
    """
    layers = sorted(int(m.group(1)) for key in shapes if (m := _LAYER_KEY.match(key)))
    if not layers or "etot" not in shapes:
        raise DataError("shower shapes: expected layer energies e0, e1, ... and etot (from calogan_shower_shapes or cylindrical_shower_shapes)")
    n = len(np.asarray(shapes["etot"]))
    einc = _incident_energy(energy, n, "feature vector")
    columns: list[tuple[str, np.ndarray]] = [("log10_einc", np.log10(einc))]
    columns += [(f"log10_e{lid}", np.log10(np.asarray(shapes[f"e{lid}"], dtype=np.float64) + _CC_LOG_EPSILON)) for lid in layers]
    for name in ("ec_eta", "ec_phi", "width_eta", "width_phi"):
        columns += [(f"{name}_{lid}/100", np.asarray(shapes[f"{name}_{lid}"], dtype=np.float64) / 1e2) for lid in layers if f"{name}_{lid}" in shapes]
    columns.append(("log10_etot", np.log10(np.asarray(shapes["etot"], dtype=np.float64) + _CC_LOG_EPSILON)))
    missing = [f"sparsity_cc_{lid}" for lid in layers if f"sparsity_cc_{lid}" not in shapes]
    if missing:
        raise DataError(f"shower shapes: missing {', '.join(missing)}")
    columns += [(f"sparsity_cc_{lid}", np.asarray(shapes[f"sparsity_cc_{lid}"], dtype=np.float64)) for lid in layers]
    for name in ("ec_r", "width_r"):
        columns += [(f"{name}_{lid}/100", np.asarray(shapes[f"{name}_{lid}"], dtype=np.float64) / 1e2) for lid in layers if f"{name}_{lid}" in shapes]
    names = [c[0] for c in columns]
    matrix = np.stack([c[1] for c in columns], axis=1)
    return matrix, names


# ----------------------------------------------------------------------------------------------
# 1-D comparisons


def _finite_1d(values: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise DataError(f"{what}: empty sample")
    return v


def _edges(reference: np.ndarray, bins: np.ndarray | int, binning: str) -> np.ndarray:
    finite = reference[np.isfinite(reference)]
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ConfigError(f"bins {bins!r}: expected a whole number >= 1 or an array of edges")
        if finite.size == 0:
            raise DataError("separation power: the reference has no finite value to take bins from")
        if binning == "uniform":
            return np.histogram_bin_edges(finite, bins=int(bins))
        if binning == "quantile":
            edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, int(bins) + 1)))
            return edges if edges.size >= 2 else np.histogram_bin_edges(finite, bins=1)
        raise ConfigError(f"binning {binning!r}: expected 'uniform' or 'quantile'")
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ConfigError("bins: expected >= 2 increasing finite edges")
    return edges


def _histogram(values: np.ndarray, edges: np.ndarray, overflow: bool) -> np.ndarray:
    """Fractions of the sample per bin; with ``overflow``, plus underflow, overflow and non-finite bins."""
    finite = values[np.isfinite(values)]
    counts = np.histogram(finite, bins=edges)[0].astype(np.float64)
    if not overflow:
        total = counts.sum()
        return counts / total if total > 0 else counts
    extra = [np.sum(finite < edges[0]), np.sum(finite > edges[-1]), values.size - finite.size]
    return np.concatenate([counts, np.asarray(extra, dtype=np.float64)]) / values.size


def separation_power(
    reference: np.ndarray,
    generated: np.ndarray,
    bins: np.ndarray | int = 30,
    *,
    binning: str = "uniform",
    overflow: bool = True,
) -> float:
    """Separation power (triangular discrimination), CaloChallenge's histogram score in [0, 1].

    S = 1/2 sum_k (h1_k - h2_k)^2 / (h1_k + h2_k), h the normalised histograms (sum 1) on shared
    bins (eq. 15 of arXiv:2009.03796; ``_separation_power`` in the challenge's plotting helper).
    0 for identical histograms, 1 for disjoint ones.

    Args:
        reference, generated: 1-D samples of one variable.
        bins: edges, or a number of bins taken from the reference: equal width over its range
            (``binning="uniform"``) or equal population (``binning="quantile"``, CaloGAN's
            comparison notebook used 10 such bins).
        overflow: count generated (and reference) values outside the edges, and non-finite values,
            in three extra bins, so that a sample out of range shows as separated. ``False`` is
            CaloChallenge's exact behaviour (its ``plt.hist(density=True)`` drops values outside the
            fixed range and normalises what is left).
    """
    ref = _finite_1d(reference, "separation power: reference")
    gen = _finite_1d(generated, "separation power: generated")
    edges = _edges(ref, bins, binning)
    h1 = _histogram(ref, edges, overflow)
    h2 = _histogram(gen, edges, overflow)
    total = h1 + h2
    lit = total > 0
    return float(0.5 * np.sum((h1[lit] - h2[lit]) ** 2 / total[lit]))


def ks_statistic(reference: np.ndarray, generated: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic D = sup_x |F_ref(x) - F_gen(x)| of the empirical CDFs.

    Non-finite values are an error (a NaN has no place on the CDF; drop or count them first).
    """
    a = np.sort(_finite_1d(reference, "KS statistic: reference"))
    b = np.sort(_finite_1d(generated, "KS statistic: generated"))
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise DataError("KS statistic: non-finite values in the samples")
    # the sup is reached at a sample point; evaluate both right-continuous CDFs at every one
    points = np.concatenate([a, b])
    fa = np.searchsorted(a, points, side="right") / a.size
    fb = np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))
