"""Networks of the modern shower GAN: any calorimeter layout, energies consistent by construction.

A shower is one row of cells (``gansim.io.calo_geometry.cell_table`` order), in GeV, with its
incident energy ``E`` (GeV). Both networks see the condition ``c = 2 log(E/E_lo)/log(E_hi/E_lo) - 1``
(so ``c`` spans [-1, 1] over the training range).

**Generator** (:class:`ShowerGenerator`): ``z ~ N(0, 1)`` -> a FiLM-conditioned MLP
(:class:`gansim.nn.FiLMMLP`) -> three heads:

- the response ``r = E_tot / E`` as ``exp(head)``;
- the layer-energy fractions ``f_l`` (a softmax over layers);
- each layer's normalised cell shape ``s_c`` (a softmax over the layer's cells);

cells are ``E * r * f_l * s_c``, so the layer energies and the total are those of the heads
exactly, less the energy of the faint cells the threshold removes.

With **stochastic occupancy** (the default of :class:`gansim.models.showergan.ShowerGANSettings`) a
fourth head gives each cell's log-odds of being lit (plus, by default, one offset per layer shared
by its cells, in units of the data's spread of the layer's log-odds of lit cells), and one noise
column per cell draws it lit or not (a Bernoulli draw through logistic noise); the shape softmax
shares the layer's energy among the lit cells only; a fifth head gives each cell's own log-normal
fluctuation around the shower's smooth shape (a second noise column per cell). Real showers are
sparse by chance (a cell is lit when a shower's spots land in it), which a smooth function of one
latent vector imitates poorly; a per-cell draw does. The draw learns through the critic's lit-cell
features only (straight-through Gumbel-sigmoid).

Each head works in standardised units, like the columns of a tabular GAN: its output
``u`` becomes ``mean + std * u`` with the training data's mean and spread of log r, of
``log f_l`` and of ``log(s_c + 1e-9)`` (:meth:`ShowerGenerator.init_from_data`, stored with the
weights). So an optimiser step moves every quantity by a fraction of its natural spread: the
response, which varies by 0.1 %, is not thrown around by steps sized for cell shapes that vary by
orders of magnitude, and a fresh generator makes showers near the data's typical (geometric mean)
shower. Cells below ``threshold`` (GeV) are set to zero, which gives the showers their sparsity;
in training the zeroing is a straight-through estimator (forward: zero; backward: as if kept), so
a cell still learns where it should go.

**Critic** (:class:`ShowerCritic`, spectrally normalised MLP): sees the shower through
differentiable physics features rather than raw MeV, each standardised with the training data's
mean and spread (:meth:`ShowerCritic.fit_standardisation`):

- per lit cell ``log(e_c + t) - log(E_l + t)`` (the log of the normalised cell energy), standardised
  over the showers where the cell is lit; an empty cell reads the lit mean (0 once standardised),
  its state being in the next feature;
- per cell whether it is lit (for generated showers with the generator's straight-through
  gradient of the occupancy draw);
- per layer ``log((E_l + t)/E)``, centres of energy in x and y, widths in x and y (mm, from the
  geometry's cell centres) and the fraction of lit cells;
- the response ``log((E_tot + t)/E)``;
- the condition ``c``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gansim.errors import ConfigError, DataError
from gansim.io.calo_geometry import CellTable
from gansim.nn.film import FiLMMLP
from gansim.nn.mlp import MLP

__all__ = ["ShowerGenerator", "ShowerCritic", "log_energy_condition", "segment_softmax", "OCCUPANCY_MODES"]

#: how the generator makes empty cells: only below the threshold, or also by a per-cell Bernoulli draw
OCCUPANCY_MODES = ("threshold", "stochastic")
#: the data's lit fraction of a cell is clipped to [clip, 1 - clip] before its log-odds are taken
OCCUPANCY_CLIP = 1e-3


def log_energy_condition(energy_gev: torch.Tensor, energy_range_gev: tuple[float, float]) -> torch.Tensor:
    """``(n,)`` GeV -> ``(n, 1)``: ``2 log(E/E_lo) / log(E_hi/E_lo) - 1`` (-1 at E_lo, +1 at E_hi)."""
    lo, hi = energy_range_gev
    return (2.0 * torch.log(energy_gev / lo) / math.log(hi / lo) - 1.0).unsqueeze(1)


def segment_softmax(logits: torch.Tensor, segment: torch.Tensor, n_segments: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax of ``logits`` (n, C) within each segment of cells (``segment`` (C,) long in [0, n_segments)).

    With ``weights`` (n, C) >= 0, ``w_c exp(l_c) / sum_segment w exp(l)``: cells of weight 0 get
    nothing and a segment whose weights are all 0 is all 0 (not NaN).
    """
    index = segment.expand(logits.shape[0], -1)
    peak = torch.full((logits.shape[0], n_segments), -torch.inf, dtype=logits.dtype, device=logits.device)
    peak = peak.scatter_reduce(1, index, logits.detach(), "amax")  # a per-segment shift: exp never overflows
    terms = torch.exp(logits - peak.gather(1, index))
    if weights is not None:
        terms = terms * weights
    totals = torch.zeros_like(peak).scatter_add(1, index, terms)
    if weights is not None:
        totals = totals + (totals.detach() == 0).to(totals.dtype)  # an empty segment: 0 / 1
    return terms / totals.gather(1, index)


class _CellGeometry(nn.Module):
    """The layout as non-persistent buffers (rebuilt from the geometry, never stored in model files)."""

    def __init__(self, cells: CellTable) -> None:
        super().__init__()
        self.n_cells, self.n_layers = cells.n_cells, cells.n_layers
        layer = torch.from_numpy(cells.layer)
        self.register_buffer("layer", layer, persistent=False)
        one_hot = torch.zeros(cells.n_cells, cells.n_layers)
        one_hot[torch.arange(cells.n_cells), layer] = 1.0
        self.register_buffer("one_hot", one_hot, persistent=False)  # (C, L): cells -> layer sums by one matmul
        self.register_buffer("x", torch.from_numpy(cells.x).float(), persistent=False)
        self.register_buffer("y", torch.from_numpy(cells.y).float(), persistent=False)
        self.register_buffer("cells_per_layer", one_hot.sum(dim=0), persistent=False)

    def layer_sums(self, cells: torch.Tensor) -> torch.Tensor:
        """(n, C) -> (n, L)."""
        return cells @ self.one_hot


def _check_init_data(cells: np.ndarray, energy: np.ndarray, n_cells: int) -> None:
    if cells.ndim != 2 or cells.shape[1] != n_cells or energy.shape != (cells.shape[0],) or cells.shape[0] < 2:
        raise ConfigError(f"initialisation data: expected cells (N >= 2, {n_cells}) and energy (N,), got {cells.shape} and {energy.shape}")


def _lit_column_stats(values: np.ndarray, lit: np.ndarray, layer: np.ndarray, empty_layer_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the mean and spread of ``values`` (N, C) over the showers where ``lit`` (N, C) bool -> (C,), (C,).

    A cell lit in fewer than two showers (no spread to learn from) takes its layer's lowest mean
    and largest spread; a layer with no such cell at all: ``empty_layer_mean`` and 1.
    """
    count = lit.sum(axis=0)
    masked = np.where(lit, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = masked.sum(axis=0) / count
        std = np.sqrt(np.maximum((np.where(lit, values - mean, 0.0) ** 2).sum(axis=0) / count, 0.0))
    for lid in np.unique(layer):
        cells, seen = layer == lid, (layer == lid) & (count >= 2)
        fill_mean, fill_std = (mean[seen].min(), std[seen].max()) if seen.any() else (empty_layer_mean, 1.0)
        mean[cells & (count < 2)], std[cells & (count < 2)] = fill_mean, fill_std
    return mean, std


def _lit_log_shape_stats(shapes: np.ndarray, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the mean and spread of ``log s_c`` over the showers where the cell is lit ((N, C) -> (C,), (C,)).

    Cells lit in fewer than two showers as in :func:`_lit_column_stats`; an empty layer: log 1e-9.
    """
    lit = shapes > 0
    return _lit_column_stats(np.log(np.where(lit, shapes, 1.0)), lit, layer, math.log(1e-9))


class ShowerGenerator(nn.Module):
    """``(z (n, latent), E (n,) GeV) -> cells (n, C) GeV`` for the layout of ``cells``.

    Args:
        cells: the layout (:func:`gansim.io.calo_geometry.cell_table`).
        latent_dim: size of z.
        width, depth: the FiLM MLP's hidden width and number of hidden layers.
        energy_range_gev: (lo, hi) of the condition's scaling.
        threshold_gev: cells below it are zero.
    """

    def __init__(self, cells: CellTable, latent_dim: int, width: int, depth: int, energy_range_gev: tuple[float, float], threshold_gev: float,
                 occupancy: str = "threshold", occupancy_temperature: float = 0.5, occupancy_layer_offsets: bool = True) -> None:
        super().__init__()
        if occupancy not in OCCUPANCY_MODES:
            raise ConfigError(f"occupancy {occupancy!r}: expected one of {', '.join(OCCUPANCY_MODES)}")
        self.geometry = _CellGeometry(cells)
        self.latent_dim, self.energy_range_gev, self.threshold_gev = latent_dim, tuple(energy_range_gev), float(threshold_gev)
        self.occupancy, self.occupancy_temperature = occupancy, float(occupancy_temperature)
        self.occupancy_layer_offsets = occupancy == "stochastic" and bool(occupancy_layer_offsets)
        self.body = FiLMMLP(latent_dim, 1, width, depth)
        self.response_head = nn.Linear(width, 1)
        self.fraction_head = nn.Linear(width, cells.n_layers)
        self.shape_head = nn.Linear(width, cells.n_cells)
        heads = [self.response_head, self.fraction_head, self.shape_head]
        if occupancy == "stochastic":
            self.occupancy_head = nn.Linear(width, cells.n_cells)
            self.spread_head = nn.Linear(width, cells.n_cells)  # each lit cell's own log-normal fluctuation
            heads += [self.occupancy_head, self.spread_head]
            # the data's log-odds of each cell being lit (set by init_from_data)
            self.register_buffer("occupancy_logit", torch.zeros(cells.n_cells))
        if self.occupancy_layer_offsets:
            # one log-odds offset per layer, shared by its cells: how busy this shower is in the layer.
            # Per-cell heads alone start with nearly independent draws, so a layer's lit fraction
            # hardly varies between showers; the data's varies by energy and by chance.
            self.occupancy_layer_head = nn.Linear(width, cells.n_layers)
            heads.append(self.occupancy_layer_head)
            # the spread over showers of each layer's log-odds of its lit fraction (set by init_from_data)
            self.register_buffer("occupancy_layer_std", torch.ones(cells.n_layers))
        for head in heads:
            # outputs about as spread as the data's from the start (the units are the data's spreads);
            # a 0.3 start left the showers under-dispersed: mean SP 0.128 against 0.104 after 300k showers
            nn.init.normal_(head.weight, std=1.0 / math.sqrt(width))
            nn.init.zeros_(head.bias)
        # the data's mean and spread of each head's quantity (log r, log f_l, log(s_c + 1e-9)); set by init_from_data
        for name, size in (("response", 1), ("fraction", cells.n_layers), ("shape", cells.n_cells)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    @property
    def noise_dim(self) -> int:
        """Columns of the standard-normal noise ``z`` the forward pass takes: the latent, then (stochastic occupancy) two per cell."""
        return self.latent_dim + (2 * self.geometry.n_cells if self.occupancy == "stochastic" else 0)

    @torch.no_grad()
    def init_from_data(self, cells: np.ndarray, energy: np.ndarray, min_std: float = 1e-4) -> None:
        """Set the heads' output scaling to the data's mean and spread of log r, log f_l and log(s_c + 1e-9).

        Args:
            cells: (N, C) GeV (a subset of the training showers is enough).
            energy: (N,) GeV.
            min_std: floor of the spreads (a quantity that never varies still gets a scale).
        """
        cells, energy = np.asarray(cells, np.float64), np.asarray(energy, np.float64)
        _check_init_data(cells, energy, self.geometry.n_cells)
        layer = self.geometry.layer.cpu().numpy()
        e_layer = cells @ self.geometry.one_hot.cpu().numpy().astype(np.float64)
        total = e_layer.sum(axis=1)
        ok = total > 0
        if not ok.any():
            raise DataError("initialisation data: every training shower is empty")
        log_response = np.log(total[ok] / energy[ok])
        log_fraction = np.log(e_layer[ok] / total[ok, None] + 1e-9)
        with np.errstate(invalid="ignore", divide="ignore"):
            shapes = np.where(e_layer[:, layer] > 0, cells / e_layer[:, layer], 0.0)
        for name, values in (("response", log_response[:, None]), ("fraction", log_fraction)):
            getattr(self, f"{name}_mean").copy_(torch.from_numpy(values.mean(axis=0)).float())
            getattr(self, f"{name}_std").copy_(torch.from_numpy(np.maximum(values.std(axis=0), min_std)).float())
        if self.occupancy == "stochastic":
            shape_mean, shape_std = _lit_log_shape_stats(shapes[ok], layer)  # the draw makes the zeros: the shapes are of lit cells
            # clipped so that a cell never lit in these showers can still learn to light
            lit = np.clip((cells[ok] > 0).mean(axis=0), OCCUPANCY_CLIP, 1.0 - OCCUPANCY_CLIP)
            self.occupancy_logit.copy_(torch.from_numpy(np.log(lit) - np.log1p(-lit)).float())
            if self.occupancy_layer_offsets:
                layer_lit = ((cells[ok] > 0) @ self.geometry.one_hot.cpu().numpy()) / self.geometry.cells_per_layer.cpu().numpy()
                layer_lit = np.clip(layer_lit, OCCUPANCY_CLIP, 1.0 - OCCUPANCY_CLIP)
                layer_log_odds = np.log(layer_lit) - np.log1p(-layer_lit)
                self.occupancy_layer_std.copy_(torch.from_numpy(np.maximum(layer_log_odds.std(axis=0), min_std)).float())
        else:
            log_shape = np.log(shapes[ok] + 1e-9)
            shape_mean, shape_std = log_shape.mean(axis=0), log_shape.std(axis=0)
        self.shape_mean.copy_(torch.from_numpy(shape_mean).float())
        self.shape_std.copy_(torch.from_numpy(np.maximum(shape_std, min_std)).float())

    def forward(self, z: torch.Tensor, energy_gev: torch.Tensor, return_lit: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``z`` (n, :attr:`noise_dim`) standard normal, ``energy_gev`` (n,) -> cells (n, C) GeV.

        With ``return_lit``, also the lit indicator (n, C): 1 where a cell is not zero. Its value
        is ``cells > 0``; for stochastic occupancy its gradient is the occupancy draw's
        (straight-through), which is how the occupancy head learns: the energies reach only the
        lit cells, and no gradient from the energies reaches the draw (a cell switched on would
        look like "more energy here", pushing every cell on).
        """
        if z.shape[1] != self.noise_dim:
            raise ValueError(f"noise z: expected {self.noise_dim} columns (latent {self.latent_dim}{' + two per cell' if self.occupancy == 'stochastic' else ''}), got {z.shape[1]}")
        n_cells = self.geometry.n_cells
        latent = z[:, : self.latent_dim]
        lit_noise, spread_noise = z[:, self.latent_dim : self.latent_dim + n_cells], z[:, self.latent_dim + n_cells :]
        h = self.body(latent, log_energy_condition(energy_gev, self.energy_range_gev))
        log_response = self.response_mean + self.response_std * self.response_head(h)
        total = energy_gev.unsqueeze(1) * torch.exp(log_response)  # (n, 1) GeV
        fractions = torch.softmax(self.fraction_mean + self.fraction_std * self.fraction_head(h), dim=1)  # (n, L)
        shape_units = self.shape_head(h)
        drawn = None
        if self.occupancy == "stochastic":
            # a lit cell's energy fluctuates on its own around the shower's smooth shape (spots land
            # by chance), by a learnt share of the data's spread: softplus(-2) = 0.13 at first
            shape_units = shape_units + nn.functional.softplus(self.spread_head(h) - 2.0) * spread_noise
            log_odds = self.occupancy_logit + self.occupancy_head(h)
            if self.occupancy_layer_offsets:
                log_odds = log_odds + (self.occupancy_layer_std * self.occupancy_layer_head(h))[:, self.geometry.layer]
            drawn = self._lit_cells(log_odds, lit_noise)
        shape_logits = self.shape_mean + self.shape_std * shape_units
        weights = None if drawn is None else drawn.detach()  # the energies teach the shapes, never the draw
        shapes = segment_softmax(shape_logits, self.geometry.layer, self.geometry.n_layers, weights=weights)  # (n, C)
        cells = (total * fractions)[:, self.geometry.layer] * shapes
        kept = (cells >= self.threshold_gev).to(cells.dtype)
        # straight-through threshold: forward the zeroed cells, backward the identity
        cells = cells - (cells * (1.0 - kept)).detach()
        if not return_lit:
            return cells
        return cells, (kept if drawn is None else drawn * kept)

    def _lit_cells(self, log_odds: torch.Tensor, normal_noise: torch.Tensor) -> torch.Tensor:
        """Each cell lit with probability ``sigmoid(log_odds)`` (n, C), independently given the shower's latent.

        The standard-normal noise becomes logistic noise through its own CDF, so ``log_odds + noise
        > 0`` is a Bernoulli draw; forward the hard 0/1, backward the gradient of
        ``sigmoid((log_odds + noise) / temperature)`` (the straight-through Gumbel-sigmoid).
        """
        logistic = torch.special.log_ndtr(normal_noise) - torch.special.log_ndtr(-normal_noise)
        score = log_odds + logistic
        soft = torch.sigmoid(score / self.occupancy_temperature)
        hard = (score > 0).to(score.dtype)
        return hard + soft - soft.detach()


class ShowerCritic(nn.Module):
    """``(cells (n, C) GeV, E (n,) GeV) -> logits (n,)``: a spectrally normalised MLP on shower features.

    Args:
        cells: the layout.
        width, depth: hidden width and number of inner layers of the MLP.
        energy_range_gev, threshold_gev: as the generator's.
        spectral_norm: spectral normalisation of every linear layer.
    """

    def __init__(self, cells: CellTable, width: int, depth: int, energy_range_gev: tuple[float, float], threshold_gev: float, spectral_norm: bool = True) -> None:
        super().__init__()
        self.geometry = _CellGeometry(cells)
        self.energy_range_gev, self.threshold_gev = tuple(energy_range_gev), float(threshold_gev)
        n_features = 2 * cells.n_cells + 6 * cells.n_layers + 2
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        # what an empty cell's log-energy feature reads: the cell's mean over the showers where it
        # is lit, so the feature standardises to 0 and its spread is that of lit cells only
        self.register_buffer("unlit_log_shape", torch.zeros(cells.n_cells))
        self.head = MLP(n_features, 1, width, depth, activation="leaky_relu", leaky_slope=0.2, spectral_norm=spectral_norm)

    @property
    def n_features(self) -> int:
        return int(self.feature_mean.numel())

    def raw_features(self, cells: torch.Tensor, energy_gev: torch.Tensor, lit: torch.Tensor | None = None) -> torch.Tensor:
        """(n, C) GeV, (n,) GeV -> (n, F) unstandardised features (see the module docstring).

        ``lit`` (n, C): the lit indicator with the generator's gradient (``ShowerGenerator(...,
        return_lit=True)``); by default ``cells > 0``, which has none.
        """
        geo, t = self.geometry, self.threshold_gev
        if lit is None:
            lit = (cells > 0).to(cells.dtype)
        e_layer = geo.layer_sums(cells)  # (n, L)
        per_cell_layer = e_layer[:, geo.layer]
        # an empty cell is told by its lit flag; its energy feature sits at the lit cells' mean:
        # were it log(t / E_l), the far-off empty value would set the feature's spread, and a
        # lit cell's energy being off by its own spread would barely show
        log_shape = torch.where(lit > 0.5, torch.log(cells + t) - torch.log(per_cell_layer + t), self.unlit_log_shape)
        shape = cells / (per_cell_layer + 1e-12)
        cx, cy = geo.layer_sums(shape * geo.x), geo.layer_sums(shape * geo.y)
        wx = torch.sqrt(torch.relu(geo.layer_sums(shape * geo.x**2) - cx**2) + 1e-6)
        wy = torch.sqrt(torch.relu(geo.layer_sums(shape * geo.y**2) - cy**2) + 1e-6)
        lit_fraction = geo.layer_sums(lit) / geo.cells_per_layer
        log_fraction = torch.log((e_layer + t) / energy_gev.unsqueeze(1))
        # the response on its own: it varies by ~0.1 %, far less than any layer fraction, so the
        # critic would hardly find it as a sum of the fractions' exponentials
        log_response = torch.log((e_layer.sum(dim=1, keepdim=True) + t) / energy_gev.unsqueeze(1))
        cond = log_energy_condition(energy_gev, self.energy_range_gev)
        return torch.cat([log_shape, lit, log_fraction, cx, cy, wx, wy, lit_fraction, log_response, cond], dim=1)

    def features(self, cells: torch.Tensor, energy_gev: torch.Tensor, lit: torch.Tensor | None = None) -> torch.Tensor:
        """Standardised features (n, F): what :attr:`head` reads."""
        return (self.raw_features(cells, energy_gev, lit) - self.feature_mean) / self.feature_std

    @torch.no_grad()
    def fit_standardisation(self, cells: np.ndarray, energy: np.ndarray, min_std: float = 1e-2) -> None:
        """Mean and spread of every feature on real showers ((N, C) GeV, (N,) GeV); spreads floored at ``min_std``.

        The per-cell log-energy features take their mean and spread over the showers where the
        cell is lit (:func:`_lit_column_stats`), and that mean becomes :attr:`unlit_log_shape`.
        The floor keeps a feature that is constant in the data (an always-empty cell) from
        being magnified without bound.
        """
        cells, energy = np.asarray(cells), np.asarray(energy)
        _check_init_data(cells, energy, self.geometry.n_cells)
        device = self.feature_mean.device
        raw = self.raw_features(torch.as_tensor(cells, dtype=torch.float32, device=device), torch.as_tensor(energy, dtype=torch.float32, device=device))
        mean, std = raw.mean(dim=0), raw.std(dim=0)
        n_cells = self.geometry.n_cells
        lit_mean, lit_std = _lit_column_stats(raw[:, :n_cells].double().cpu().numpy(), cells > 0, self.geometry.layer.cpu().numpy(), 0.0)
        mean[:n_cells], std[:n_cells] = torch.from_numpy(lit_mean).to(mean), torch.from_numpy(lit_std).to(std)
        self.unlit_log_shape.copy_(mean[:n_cells])
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(min_std))

    def forward(self, cells: torch.Tensor, energy_gev: torch.Tensor, lit: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(cells, energy_gev, lit)).squeeze(1)
