"""The modern shower GAN: consistent energies by construction, the threshold, the critic's features,
every parameter trained, exact resume, model files, any layout (CaloGAN and CaloChallenge)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.config import TrainingSettings
from gansim.data.calo import make_calo_showers
from gansim.errors import ConfigError, ModelFileError
from gansim.io.calo import read_showers, write_calochallenge
from gansim.io.calo_geometry import CALOGAN, CylindricalGeometry, CylindricalLayer, cell_table
from gansim.models import load_model
from gansim.models.calogan import ShowerBatches
from gansim.models.model_file import read_manifest
from gansim.models.shower_train import cell_threshold_from_data, train_showers
from gansim.models.shower_sampling import closer_spectrum, seeded_latents_and_energies
from gansim.models.showergan import ShowerGANConfig, ShowerGANObjective, ShowerGANSettings
from gansim.models.showergan_model import build_generator, flatten_showers, save_showergan, unflatten_showers
from gansim.models.showergan_nets import ShowerCritic, ShowerGenerator, log_energy_condition, segment_softmax
from gansim.nn.film import FiLMMLP
from gansim.training.loop import TrainingLoop

#: a small cylindrical layout (3 layers, uneven binning) standing in for CaloChallenge files
SMALL_CYL = CylindricalGeometry("small-cyl", (CylindricalLayer((0.0, 2.0, 5.0), 4), CylindricalLayer((0.0, 3.0, 6.0, 10.0), 2), CylindricalLayer((0.0, 8.0), 1)))
TINY = dict(latent_dim=8, g_width=32, g_depth=2, d_width=32, d_depth=1)


@pytest.fixture(scope="module")
def eplus() -> tuple[np.ndarray, np.ndarray]:
    data = make_calo_showers(64, "eplus", seed=3)
    return flatten_showers(data).astype(np.float32) * 1e-3, np.asarray(data.energy, np.float64) * 1e-3  # GeV


def _generator(threshold_gev: float = 1e-6) -> ShowerGenerator:
    torch.manual_seed(0)
    return ShowerGenerator(cell_table(CALOGAN), 8, 32, 2, (1.0, 100.0), threshold_gev)


def test_segment_softmax_sums_to_one_per_layer_and_survives_huge_logits() -> None:
    layer = torch.tensor([0, 0, 1, 1, 1, 2])
    logits = torch.tensor([[1000.0, 999.0, -1000.0, -1001.0, -1002.0, 5.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    s = segment_softmax(logits, layer, 3)
    assert torch.isfinite(s).all()
    sums = torch.zeros(2, 3).index_add_(1, layer, s)
    torch.testing.assert_close(sums, torch.ones(2, 3))
    torch.testing.assert_close(s[1], torch.tensor([0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1.0]))
    torch.testing.assert_close(s[0, :2], torch.softmax(torch.tensor([1000.0, 999.0]), 0))


def test_weighted_segment_softmax_shares_each_segment_among_its_weighted_cells() -> None:
    layer = torch.tensor([0, 0, 0, 1, 1])
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    weights = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])  # layer 1 has no lit cell
    s = segment_softmax(logits, layer, 2, weights=weights)
    torch.testing.assert_close(s[0, [0, 2]], torch.softmax(torch.tensor([0.0, 2.0]), 0))
    assert float(s[0, 1].detach()) == 0.0 and float(s[0, 3:].abs().sum().detach()) == 0.0  # an empty segment is 0, not NaN
    s.sum().backward()
    assert torch.isfinite(logits.grad).all()


def _stochastic_generator(threshold_gev: float = 1e-30) -> ShowerGenerator:
    torch.manual_seed(0)
    return ShowerGenerator(cell_table(CALOGAN), 8, 32, 2, (1.0, 100.0), threshold_gev, occupancy="stochastic")


def test_stochastic_occupancy_lights_each_cell_with_its_probability() -> None:
    g = _stochastic_generator()
    assert g.noise_dim == 8 + 2 * CALOGAN.n_cells
    with torch.no_grad():
        g.occupancy_head.weight.zero_()  # the same log-odds for every shower: those of the buffer
        g.occupancy_layer_head.weight.zero_()
        g.occupancy_logit.copy_(torch.linspace(-3.0, 3.0, CALOGAN.n_cells))
    n = 4000
    cells = g(torch.randn(n, g.noise_dim, generator=torch.Generator().manual_seed(5)), torch.full((n,), 20.0)).detach()
    lit = (cells > 0).double().mean(dim=0)
    p = torch.sigmoid(g.occupancy_logit).double()
    # each cell's lit count is binomial(n, p): within 4.5 sigma for all 504 cells (a false alarm ~ 504 * 7e-6)
    assert ((lit - p).abs() <= 4.5 * torch.sqrt(p * (1 - p) / n) + 1e-12).all()
    # each layer's energy goes to its lit cells: a layer is empty only when none of its cells is lit
    sums = g.geometry.layer_sums(cells)
    any_lit = g.geometry.layer_sums((cells > 0).to(cells.dtype)) > 0
    assert torch.equal(sums > 0, any_lit) and any_lit.all(dim=1).double().mean() > 0.99


def test_stochastic_occupancy_learns_through_the_straight_through_draw(eplus: tuple[np.ndarray, np.ndarray]) -> None:
    cells_data, energy = eplus
    g = _stochastic_generator(threshold_gev=1e-6)
    g.init_from_data(cells_data, energy)
    lit_data = np.clip((cells_data > 0).mean(axis=0), 1e-3, 1 - 1e-3)
    torch.testing.assert_close(torch.sigmoid(g.occupancy_logit).double(), torch.from_numpy(lit_data), rtol=1e-4, atol=1e-6)
    z16, e16 = torch.randn(16, g.noise_dim), torch.linspace(1, 100, 16)
    cells = g(z16, e16)
    cells.pow(2).sum().backward()
    # the energies teach everything but the occupancy draw (no "more energy here" pushing cells on)
    assert g.occupancy_head.weight.grad is None or float(g.occupancy_head.weight.grad.abs().sum()) == 0.0
    assert float(g.shape_head.weight.grad.abs().sum()) > 0
    g.zero_grad()
    cells, lit = g(z16, e16, return_lit=True)
    torch.testing.assert_close(lit, (cells > 0).float())
    (cells.pow(2).sum() + lit.sum()).backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the same noise gives the same showers; a different noise column of a cell can switch it
    z = torch.randn(4, g.noise_dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(g(z, torch.full((4,), 30.0)), g(z.clone(), torch.full((4,), 30.0)))
    with pytest.raises(ValueError, match="columns"):
        g(torch.zeros(2, 8), torch.full((2,), 30.0))
    with pytest.raises(ConfigError, match="occupancy"):
        ShowerGenerator(cell_table(CALOGAN), 8, 32, 2, (1.0, 100.0), 1e-6, occupancy="bernoulli")


def test_stochastic_shape_scaling_is_that_of_the_lit_cells() -> None:
    from gansim.models.showergan_nets import _lit_log_shape_stats

    layer = np.array([0, 0, 0, 1, 1])
    shapes = np.array([[0.5, 0.5, 0.0, 1.0, 0.0], [0.25, 0.75, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    mean, std = _lit_log_shape_stats(shapes, layer)
    logs0 = np.log([0.5, 0.25, 1.0])
    assert mean[0] == pytest.approx(logs0.mean()) and std[0] == pytest.approx(logs0.std())  # zeros left out
    assert mean[1] == pytest.approx(np.log([0.5, 0.75]).mean()) and std[1] == pytest.approx(np.log([0.5, 0.75]).std())
    assert mean[2] == pytest.approx(min(mean[0], mean[1])) and std[2] == pytest.approx(max(std[0], std[1]))  # never lit: layer's extremes
    assert mean[3] == pytest.approx(np.log(1e-9)) and std[3] == 1.0  # lit once: no spread, and no other cell of its layer to borrow from
    assert np.isfinite(mean).all() and np.isfinite(std).all()


def test_log_energy_condition_spans_minus_one_to_one() -> None:
    c = log_energy_condition(torch.tensor([1.0, 10.0, 100.0]), (1.0, 100.0))
    torch.testing.assert_close(c, torch.tensor([[-1.0], [0.0], [1.0]]))


def test_film_starts_as_identity_modulation() -> None:
    torch.manual_seed(1)
    net = FiLMMLP(4, 1, 8, 2)
    x = torch.randn(5, 4)
    torch.testing.assert_close(net(x, torch.zeros(5, 1)), net(x, torch.randn(5, 1)))
    with pytest.raises(ConfigError):
        FiLMMLP(4, 1, 8, 0)


def test_layer_energies_and_total_come_from_the_heads_exactly() -> None:
    g = _generator(threshold_gev=1e-30)  # nothing cut: the sums are the heads' values
    z, e = torch.randn(16, 8), torch.linspace(1, 100, 16)
    cells = g(z, e)
    assert cells.shape == (16, CALOGAN.n_cells) and (cells >= 0).all()
    h = g.body(z, log_energy_condition(e, g.energy_range_gev))
    total = e * torch.exp(g.response_head(h)).squeeze(1)
    fractions = torch.softmax(g.fraction_head(h), 1)
    torch.testing.assert_close(g.geometry.layer_sums(cells), total[:, None] * fractions, rtol=1e-5, atol=0)


def test_threshold_zeroes_small_cells_but_passes_their_gradient_through() -> None:
    g = _generator(threshold_gev=1e-2)  # near the uniform shower's cell (5 GeV / 504 cells): some cells on each side
    z, e = torch.randn(8, 8), torch.full((8,), 5.0)
    cells = g(z, e)
    assert (cells[cells > 0] >= 1e-2).all() and (cells == 0).any()
    g.zero_grad()
    cells.sum().backward()  # the sum of all cells, zeroed ones included, is the heads' total
    assert g.shape_head.weight.grad is not None and g.shape_head.weight.grad.abs().sum() > 0


def test_init_from_data_scales_the_heads_to_the_data(eplus: tuple[np.ndarray, np.ndarray]) -> None:
    cells, energy = eplus
    g = _generator(threshold_gev=1e-12)
    with torch.no_grad():
        for head in (g.response_head, g.fraction_head, g.shape_head):
            head.weight.zero_()  # no z dependence: every head outputs 0, i.e. the data's mean of its quantity
    g.init_from_data(cells, energy)
    out = g(torch.zeros(1, 8), torch.tensor([50.0]))[0].detach().numpy().astype(np.float64)
    log_response = np.log(cells.sum(1) / energy)
    assert out.sum() == pytest.approx(50.0 * np.exp(log_response.mean()), rel=1e-5)
    assert float(g.response_std) == pytest.approx(max(log_response.std(), 1e-4), rel=1e-4)
    layer = cell_table(CALOGAN).layer
    e_layer = np.stack([cells[:, layer == i].sum(1) for i in range(3)], 1)
    geometric = np.exp(np.log(e_layer / e_layer.sum(1, keepdims=True) + 1e-9).mean(0))
    got = np.array([out[layer == i].sum() for i in range(3)]) / out.sum()
    np.testing.assert_allclose(got, geometric / geometric.sum(), rtol=1e-4)
    # a step of the head moves its quantity by a share of the data's spread
    with torch.no_grad():
        g.response_head.bias.fill_(1.0)
    moved = g(torch.zeros(1, 8), torch.tensor([50.0]))[0].double().sum().item()
    assert np.log(moved / 50.0) == pytest.approx(log_response.mean() + float(g.response_std), abs=2e-6)  # float32 sums
    with pytest.raises(ConfigError):
        g.init_from_data(cells[:, :10], energy)


def test_critic_features_are_the_physics_they_claim() -> None:
    geo = SMALL_CYL
    critic = ShowerCritic(cell_table(geo), 16, 1, (1.0, 100.0), 1e-4)
    cells = torch.zeros(1, geo.n_cells)
    cells[0, 0] = 2.0  # layer 0, alpha bin 0, r bin 0: r = 1 mm at alpha = pi/4
    cells[0, 4] = 2.0  # layer 0, alpha bin 2, r bin 0: alpha = 5 pi/4
    cells[0, 8] = 1.0  # layer 1 (first voxel)
    f = critic.raw_features(cells, torch.tensor([10.0]))[0]
    n, L = geo.n_cells, 3
    torch.testing.assert_close(f[n : 2 * n], (cells[0] > 0).float())  # the lit indicator of every cell
    log_fraction, cx, cy, wx, wy, lit = (f[2 * n + i * L : 2 * n + (i + 1) * L] for i in range(6))
    torch.testing.assert_close(log_fraction[0], torch.log(torch.tensor((4.0 + 1e-4) / 10.0)))
    assert abs(float(cx[0])) < 1e-6 and abs(float(cy[0])) < 1e-6  # two equal deposits opposite each other
    assert float(wx[0]) == pytest.approx(math.cos(math.pi / 4), rel=1e-3) and float(wy[0]) == pytest.approx(math.sin(math.pi / 4), rel=1e-3)
    assert float(lit[0]) == pytest.approx(2 / 8, rel=1e-4) and float(lit[1]) == pytest.approx(1 / 6, rel=1e-4) and float(lit[2]) == 0.0
    assert float(f[0]) == pytest.approx(math.log(2.0 + 1e-4) - math.log(4.0 + 1e-4), rel=1e-5)
    assert float(f[-2]) == pytest.approx(math.log((5.0 + 1e-4) / 10.0), rel=1e-5)  # the response E_tot / E
    assert float(f[-1]) == pytest.approx(0.0, abs=1e-6)  # 10 GeV is the middle of 1-100 GeV in log


def test_critic_standardises_a_cells_energy_over_the_showers_where_it_is_lit() -> None:
    """An empty cell's energy feature reads the cell's lit mean (standardised: 0); the spread is the lit cells'."""
    geo = SMALL_CYL
    t = 1e-4
    critic = ShowerCritic(cell_table(geo), 16, 1, (1.0, 100.0), t)
    n = geo.n_cells
    cells = np.zeros((4, n))
    cells[:, 8] = 1.0  # layer 1's first cell: always lit, the layer's whole energy
    cells[:, 9] = [0.0, 0.0, 1.0, 3.0]  # layer 1's second cell: lit in two showers
    cells[:, 0] = 1.0  # layer 0: one cell, always the whole layer
    energy = np.full(4, 10.0)
    critic.fit_standardisation(cells, energy)
    # cell 9 lit in showers 2 and 3: log(1 + t) - log(2 + t) and log(3 + t) - log(4 + t)
    lit_values = np.log([1 + t, 3 + t]) - np.log([2 + t, 4 + t])
    assert float(critic.unlit_log_shape[9]) == pytest.approx(lit_values.mean(), rel=1e-5)
    assert float(critic.feature_mean[9]) == pytest.approx(lit_values.mean(), rel=1e-5)
    assert float(critic.feature_std[9]) == pytest.approx(lit_values.std(), rel=1e-4)
    # a cell never lit takes its layer's lowest lit mean and largest spread
    assert float(critic.unlit_log_shape[10]) == pytest.approx(min(lit_values.mean(), float(critic.unlit_log_shape[8])), rel=1e-5)
    features = critic.features(torch.as_tensor(cells, dtype=torch.float32), torch.as_tensor(energy, dtype=torch.float32))
    assert torch.all(features[:2, 9] == 0.0)  # empty: exactly the lit mean
    assert float(features[3, 9]) == pytest.approx(1.0, rel=1e-4)  # one lit spread above the lit mean
    # the lit flag decides, also when it carries a gradient: energies of a cell flagged empty are ignored
    lit = torch.as_tensor(cells > 0, dtype=torch.float32).requires_grad_(True)
    flagged = critic.raw_features(torch.as_tensor(cells, dtype=torch.float32), torch.as_tensor(energy, dtype=torch.float32), lit * torch.tensor([1.0] * 9 + [0.0] + [1.0] * (n - 10)))
    assert torch.all(flagged[:, 9] == critic.unlit_log_shape[9])


def _loop(cells: np.ndarray, energy_gev: np.ndarray, run_dir: Path, total_rows: int, loss: str = "hinge") -> TrainingLoop:
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = ShowerGANSettings(**TINY, loss=loss)
    cfg = ShowerGANConfig(model=settings, train=TrainingSettings(batch_size=4, total_rows=total_rows, tick_rows=8, checkpoint_rows=8, progress=False, ema_halflife_rows=None, seed=3))
    torch.manual_seed(0)
    table = cell_table(CALOGAN)
    g = ShowerGenerator(table, 8, 32, 2, (1.0, 100.0), 1e-6)
    d = ShowerCritic(table, 32, 1, (1.0, 100.0), 1e-6)
    g.init_from_data(cells, energy_gev)
    d.fit_standardisation(cells, energy_gev)
    device = torch.device("cpu")
    data = ShowerBatches([cells * 1e3], energy_gev * 1e3, batch_size=4, seed=3, device=device)
    return TrainingLoop(ShowerGANObjective(g, d, settings, device, seed=3), data, cfg.train, cfg.optim, run_dir, device)


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_every_parameter_learns_and_resume_equals_uninterrupted(eplus: tuple[np.ndarray, np.ndarray], tmp_path: Path, loss: str) -> None:
    cells, energy = eplus
    full = _loop(cells, energy, tmp_path / "full", 16, loss)
    before = {name: {k: v.clone() for k, v in net.named_parameters()} for name, net in full.objective.networks.items()}
    result = full.run()
    assert result.iterations == 2  # two critic batches of 4 per iteration
    if loss == "wgan-gp":
        assert "D/gp" in result.last_stats
    for name, net in full.objective.networks.items():
        unchanged = [k for k, v in net.named_parameters() if torch.equal(before[name][k], v)]
        if loss == "hinge" and name == "D":
            # the hinge loss's gradient on the critic's last bias is P(fake > -1) - P(real < 1): exactly 0
            # while every sample is inside both margins, as at the start; every other weight moves
            unchanged = [k for k in unchanged if k != "head.net.4.bias"]
        assert not unchanged, (name, unchanged)

    _loop(cells, energy, tmp_path / "split", 8, loss).run()
    resumed = _loop(cells, energy, tmp_path / "split", 16, loss)
    resumed.run(resume=True)
    for name in ("G", "D"):
        a, b = full.objective.networks[name].state_dict(), resumed.objective.networks[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)


def test_model_file_round_trip_same_showers_for_a_seed_whatever_the_batch(tmp_path: Path) -> None:
    settings = ShowerGANSettings(**TINY)
    torch.manual_seed(2)
    g = build_generator(settings, SMALL_CYL, (2.0, 50.0), 0.05)
    rng = np.random.default_rng(0)
    g.init_from_data(rng.gamma(0.5, 1.0, (30, SMALL_CYL.n_cells)) * (rng.random((30, SMALL_CYL.n_cells)) < 0.6), rng.uniform(2, 50, 30))
    assert float(g.shape_std.min()) != 1.0  # the data's scaling, which must travel with the weights
    path = save_showergan(tmp_path / "m", g, settings, SMALL_CYL)
    manifest = read_manifest(path)
    assert manifest["family"] == "showergan" and manifest["geometry"]["kind"] == "cylindrical" and manifest["cell_threshold_mev"] == pytest.approx(0.05)
    model = load_model(path, device="cpu")
    z, e = seeded_latents_and_energies(4, 0, 40, g.noise_dim, (2.0, 50.0))
    with torch.no_grad():
        saved_cells = g(z, e.float()).double().numpy() * 1e3  # MeV
    a = model.sample(40, seed=4, batch_size=7)
    np.testing.assert_allclose(a.layers[0], saved_cells, rtol=1e-5, atol=1e-6)
    b = model.sample(40, seed=4, batch_size=40)
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_allclose(a.layers[0], b.layers[0], rtol=1e-5, atol=1e-7)
    assert a.layout == "small-cyl" and a.geometry == SMALL_CYL and a.layers[0].shape == (40, SMALL_CYL.n_cells)
    assert 2000.0 <= a.energy.min() and a.energy.max() <= 50_000.0  # MeV, uniform in the training range
    lit = a.layers[0][a.layers[0] > 0]
    assert lit.size and lit.min() >= 0.05 * (1 - 1e-6)
    with torch.no_grad():
        direct = g(torch.zeros(0, g.noise_dim), torch.zeros(0))  # an empty batch is fine
    assert direct.shape == (0, SMALL_CYL.n_cells)
    c = model.sample(3, 10_000.0, seed=4)
    np.testing.assert_array_equal(c.energy, [10_000.0] * 3)
    path_file = tmp_path / "gen.h5"
    write_calochallenge(path_file, a)
    back = read_showers(path_file)
    assert back.geometry == SMALL_CYL
    # a broken manifest is a clear error
    broken = dict(manifest)
    del broken["geometry"]
    from gansim.models.showergan_model import ShowerGANModel

    with pytest.raises(ModelFileError, match="geometry"):
        ShowerGANModel.from_model_dir(broken, {}, torch.device("cpu"), source="m")
    with pytest.raises(ModelFileError, match="not a shower GAN's"):
        ShowerGANModel.from_model_dir({**manifest, "architecture": {"latent_dim": -1}}, {}, torch.device("cpu"), source="m")
    with pytest.raises(ModelFileError, match="generator weights do not match"):
        ShowerGANModel.from_model_dir(manifest, {}, torch.device("cpu"), source="m")


def test_flatten_and_unflatten_are_inverse() -> None:
    data = make_calo_showers(5, "eplus", seed=1)
    flat = flatten_showers(data)
    assert flat.shape == (5, CALOGAN.n_cells)
    for a, b in zip(unflatten_showers(flat, CALOGAN), data.layers):
        np.testing.assert_array_equal(a, b)


def test_threshold_from_data_is_the_quantile_of_lit_cells() -> None:
    cells = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 4.0]])
    assert cell_threshold_from_data(cells, 0.0) == 1.0
    assert cell_threshold_from_data(cells, 0.5) == pytest.approx(2.5)


def test_train_on_a_calochallenge_file_end_to_end(tmp_path: Path) -> None:
    data = make_calo_showers(60, "eplus", seed=5, layout="calochallenge-ds2")
    path = tmp_path / "ds2.h5"
    write_calochallenge(path, data)
    cfg = ShowerGANConfig.model_validate(
        {"model": TINY, "data": {"validation_fraction": 0.2, "test_fraction": 0.1}, "train": {"batch_size": 8, "total_rows": 32, "tick_rows": 16, "checkpoint_rows": 16, "progress": False, "evaluate": False, "device": "cpu"}}
    )
    model_dir = train_showers(path, cfg, tmp_path / "run", log=lambda m: None)
    manifest = read_manifest(model_dir)
    assert manifest["layout"] == "calochallenge-ds2" and manifest["training"]["data"]["split"]["rows"] == {"test": 6, "validation": 12, "train": 42}
    showers = load_model(model_dir, "cpu").sample(5, seed=1)
    assert showers.layers[0].shape == (5, 6480)


def test_a_partial_train_section_keeps_the_family_defaults() -> None:
    from gansim.models.calogan import CaloGANConfig

    assert ShowerGANConfig.model_validate({"train": {"progress": False}}).train.batch_size == 256
    paper = CaloGANConfig.model_validate({"train": {"progress": False, "seed": 4}}).train
    assert paper.batch_size == 256 and paper.ema_halflife_rows is None and paper.seed == 4
    assert ShowerGANConfig.model_validate({"train": {"batch_size": 64}}).train.batch_size == 64


def test_default_spectrum_is_the_one_closer_to_the_data_and_out_of_range_energies_warn(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    assert closer_spectrum(rng.uniform(1, 100, 5000), (1.0, 100.0)) == "uniform"
    assert closer_spectrum(np.exp(rng.uniform(0, np.log(1000), 5000)), (1.0, 1000.0)) == "log-uniform"
    settings = ShowerGANSettings(**TINY)
    g = build_generator(settings, SMALL_CYL, (1.0, 1000.0), 0.05)
    model = load_model(save_showergan(tmp_path / "m", g, settings, SMALL_CYL, spectrum="log-uniform"), "cpu")
    energy = model.sample(4000, seed=2).energy / 1e3  # GeV
    # log-uniform on 1-1000 GeV: a third of the showers per decade (binomial sigma 0.0075; 5 sigma)
    assert abs(np.mean(energy < 10.0) - 1 / 3) < 0.04 and abs(np.mean(energy > 100.0) - 1 / 3) < 0.04
    with pytest.warns(UserWarning, match="energy_range_gev"):
        model.sample(2, 2_000_000.0, seed=1)


def test_resume_refuses_changed_model_or_data_settings(tmp_path: Path) -> None:
    data = make_calo_showers(40, "eplus", seed=5, layout="calochallenge-ds2")
    path = tmp_path / "ds2.h5"
    write_calochallenge(path, data)
    raw = {"model": TINY, "train": {"batch_size": 8, "total_rows": 16, "tick_rows": 16, "checkpoint_rows": 16, "progress": False, "evaluate": False, "device": "cpu"}}
    train_showers(path, ShowerGANConfig.model_validate(raw), tmp_path / "run", log=lambda m: None)
    changed = ShowerGANConfig.model_validate({**raw, "model": {**TINY, "threshold_quantile": 0.01}})
    with pytest.raises(ConfigError, match="model.threshold_quantile"):
        train_showers(path, changed, tmp_path / "run", resume=True, log=lambda m: None)


def test_a_stochastic_model_file_from_before_the_layer_offsets_loads_without_them(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from gansim.models.showergan_model import ShowerGANModel

    settings = ShowerGANSettings(**TINY, occupancy="stochastic", occupancy_layer_offsets=False)
    torch.manual_seed(2)
    g = build_generator(settings, SMALL_CYL, (2.0, 50.0), 0.05)
    assert not hasattr(g, "occupancy_layer_head")
    path = save_showergan(tmp_path / "m", g, settings, SMALL_CYL)
    manifest = read_manifest(path)
    old = {**manifest, "architecture": {k: v for k, v in manifest["architecture"].items() if k != "occupancy_layer_offsets"}}
    model = ShowerGANModel.from_model_dir(old, load_file(str(Path(path) / "weights.safetensors")), torch.device("cpu"), source="old")
    assert model.generator.occupancy == "stochastic" and not model.generator.occupancy_layer_offsets
    np.testing.assert_array_equal(model.sample(5, seed=1).layers[0], load_model(path, "cpu").sample(5, seed=1).layers[0])


def test_layer_offsets_spread_a_layers_lit_fraction_over_showers_as_the_data_does() -> None:
    """With the per-cell heads silenced, the shared offset alone moves whole layers: the lit fraction's spread follows the layer std."""
    g = _stochastic_generator()
    with torch.no_grad():
        g.occupancy_head.weight.zero_()
        g.occupancy_layer_head.weight.zero_()
        g.occupancy_logit.zero_()  # p = 1/2 for every cell
        g.occupancy_layer_std.copy_(torch.tensor([0.0, 2.0, 0.0]))
        g.occupancy_layer_head.weight[1, 0] = 1.0  # layer 1's offset = 2 * h_0 (h: the body's output)
    n = 2000
    z = torch.randn(n, g.noise_dim, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        cells = g(z, torch.full((n,), 20.0))
        offset = 2.0 * g.body(z[:, :8], log_energy_condition(torch.full((n,), 20.0), (1.0, 100.0)))[:, 0]
    lit_fraction = g.geometry.layer_sums((cells > 0).to(cells.dtype)) / g.geometry.cells_per_layer
    # layers 0 and 2: binomial(n_cells, 1/2) over cells only; layer 1 follows sigmoid(offset) shower by shower
    for layer in (0, 2):
        cells_in_layer = float(g.geometry.cells_per_layer[layer])
        assert float(lit_fraction[:, layer].std()) == pytest.approx(0.5 / math.sqrt(cells_in_layer), rel=0.1)
    expected = torch.sigmoid(offset)
    residual = lit_fraction[:, 1] - expected
    assert float(residual.abs().max()) < 6 * 0.5 / math.sqrt(float(g.geometry.cells_per_layer[1]))
    assert float(torch.corrcoef(torch.stack([lit_fraction[:, 1], expected]))[0, 1]) > 0.9


def test_a_model_file_from_before_stochastic_occupancy_loads_as_threshold_only(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from gansim.models.showergan_model import ShowerGANModel

    settings = ShowerGANSettings(**TINY, occupancy="threshold")
    torch.manual_seed(2)
    g = build_generator(settings, SMALL_CYL, (2.0, 50.0), 0.05)
    path = save_showergan(tmp_path / "m", g, settings, SMALL_CYL)
    manifest = read_manifest(path)
    old = {**manifest, "architecture": {k: v for k, v in manifest["architecture"].items() if not k.startswith("occupancy")}}
    tensors = load_file(str(Path(path) / "weights.safetensors"))
    model = ShowerGANModel.from_model_dir(old, tensors, torch.device("cpu"), source="old")
    assert model.generator.occupancy == "threshold" and model.generator.noise_dim == TINY["latent_dim"]
    np.testing.assert_array_equal(model.sample(5, seed=1).layers[0], load_model(path, "cpu").sample(5, seed=1).layers[0])
