"""gaga-phsp option files -> gansim phase-space configs (gansim.models.gaga_config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gansim.config import parse_config, read_config_file
from gansim.errors import ConfigError
from gansim.models.gaga_config import GAGA_KNOWN_KEYS, GAGA_PENALTIES, is_gaga_options, translate_gaga_options
from gansim.models.phsp_gan import PhaseSpaceGANConfig


def g1() -> dict:
    """gaga-phsp tests/json/g1.json (comment keys included, as in the file)."""
    return {
        "#": "GAN model v1, v2, ... Default is v3",
        "model": "v3",
        "loss": "wasserstein",
        "d_layers": 3,
        "g_layers": 3,
        "d_dim": 50,
        "g_dim": 50,
        "activation": "leaky_relu",
        "z_dim": 10,
        "z_rand_type": "normal",
        "penalty": "GP_SquareHinge",
        "penalty_weight": 1,
        "#clamp_lower": -0.01,
        "#clamp_upper": 0.01,
        "#start_pth": "",
        "optimiser": "RMSprop",
        "shuffle": False,
        "#d_weight_decay": 0.5,
        "#beta_1": "0.9",
        "#RMSProp_d_centered": True,
        "d_learning_rate": 4e-4,
        "g_learning_rate": 4e-4,
        "r_instance_noise_sigma": -1,
        "f_instance_noise_sigma": -1,
        "schedule_learning_rate_step": 10,
        "schedule_learning_rate_gamma": 0.8,
        "d_nb_update": 2,
        "g_nb_update": 1,
        "epoch": 100,
        "batch_size": 10000,
        "#label_smoothing": 0.2,
        "keys": "X Y",
        "gpu_mode": "auto",
        "epoch_dump": 500,
        "epoch_store_model_every": 10000,
    }


def cg1() -> dict:
    """gaga-phsp tests/json/cg1.json: conditional, keys "X Y cx cy", cond "cx cy"."""
    opts = g1()
    opts.update(d_dim=60, g_dim=60, z_dim=15, schedule_learning_rate_step=500, schedule_learning_rate_gamma=0.9,
                epoch=10000, keys="X Y cx cy", cond_keys="cx cy", epoch_store_model_every=500)  # fmt: skip
    return opts


def linac_2019() -> dict:
    """The 2019 linac config_001.json as far as gaga-phsp 0.7 accepts it: 3x400, z 6, RMSprop 1e-5, clamp ±0.01."""
    return {
        "model": "v3",
        "loss": "wasserstein",
        "d_layers": 3,
        "g_layers": 3,
        "d_dim": 400,
        "g_dim": 400,
        "z_dim": 6,
        "activation": "relu",
        "z_rand_type": "randn",
        "penalty": "clamp",
        "penalty_weight": 0,
        "clamp_lower": -0.01,
        "clamp_upper": 0.01,
        "optimiser": "RMSprop",
        "d_learning_rate": 1e-5,
        "g_learning_rate": 1e-5,
        "d_nb_update": 5,
        "g_nb_update": 1,
        "epoch": 2000,
        "batch_size": 10000,
        "shuffle": True,
        "keys": "Ekine X Y dX dY dZ",
        "gpu_mode": "gpu",
        "epoch_dump": 100,
        "r_instance_noise_sigma": -1,
        "f_instance_noise_sigma": -1,
    }


def _parse(cfg: dict) -> PhaseSpaceGANConfig:
    return parse_config(PhaseSpaceGANConfig, cfg, source="test")


def test_known_keys_cover_the_reference_lists() -> None:
    for key in ("keys", "cond_keys", "g_dim", "d_layers", "z_rand_type", "beta_1", "beta_2", "clamp_lower", "RMSprop_d_momentum",
                "RMSProp_g_alpha", "RMSProp_d_centered", "schedule_learning_rate_gamma", "dataloader_num_workers", "spectral_norm"):  # fmt: skip
        assert key in GAGA_KNOWN_KEYS


def test_is_gaga_options() -> None:
    assert is_gaga_options(g1())
    assert is_gaga_options(linac_2019())
    assert not is_gaga_options({"model": {"z_dim": 4}, "train": {"total_rows": 10}})
    assert not is_gaga_options({"family": "phsp"})
    assert not is_gaga_options({"keys": "X Y"})  # nothing gaga-only
    assert not is_gaga_options({**g1(), "train": {"batch_size": 4}})


def test_g1(tmp_path: Path) -> None:
    cfg, notes = translate_gaga_options(g1(), source="g1.json", n_rows_hint=1_000_000)
    c = _parse(cfg)
    assert c.data.keys == ["X", "Y"] and c.data.cond_keys == []
    assert (c.model.z_dim, c.model.g_width, c.model.g_depth, c.model.d_width, c.model.d_depth) == (10, 50, 3, 50, 3)
    assert c.model.activation == "leaky_relu" and c.model.leaky_slope == 0.01
    assert c.model.latent == "normal"
    assert c.loss.adversarial == "wasserstein" and c.loss.penalty == "square_hinge" and c.loss.penalty_weight == 1
    assert (c.loss.d_steps, c.loss.g_steps) == (2, 1)
    assert c.train.batch_size == 10000 and c.train.device == "auto"
    # 100 passes over 1e6 rows (100 whole batches of 10,000)
    assert c.train.total_rows == 100 * 1_000_000
    for net in (c.optim.D, c.optim.G):
        assert net.name == "rmsprop" and net.lr == 4e-4 and net.alpha == 0.99 and net.momentum == 0 and net.weight_decay == 0
        assert net.scheduler == "step" and net.gamma == 0.8
    # StepLR stepped once per epoch with step x d_nb_update (D) and step x g_nb_update (G)
    assert c.optim.D.step_rows == 10 * 2 * 1_000_000
    assert c.optim.G.step_rows == 10 * 1 * 1_000_000
    assert any(n.startswith("ignored: epoch_dump") for n in notes)
    assert any(n.startswith("ignored: shuffle") for n in notes)
    assert any("z_rand_type 'normal'" in n for n in notes)
    # the same file read from disk: '#' keys dropped by read_config_file too
    path = tmp_path / "g1.json"
    path.write_text(json.dumps(g1()))
    assert translate_gaga_options(read_config_file(path), source=str(path), n_rows_hint=1_000_000)[0] == cfg


def test_partial_batches_are_dropped_like_gaga() -> None:
    cfg, _ = translate_gaga_options(g1(), source="g1.json", n_rows_hint=25_000)
    assert cfg["train"]["total_rows"] == 100 * 20_000


def test_cg1_conditions_by_name() -> None:
    cfg, notes = translate_gaga_options(cg1(), source="cg1.json", n_rows_hint=50_000)
    c = _parse(cfg)
    assert c.data.keys == ["X", "Y"] and c.data.cond_keys == ["cx", "cy"]
    assert (c.model.z_dim, c.model.g_width, c.model.d_width) == (15, 60, 60)
    assert not any("not the last" in n for n in notes)
    assert any("including the conditions" in n for n in notes)


def test_linac_2019() -> None:
    cfg, notes = translate_gaga_options(linac_2019(), source="config_001.json", n_rows_hint=2_000_000)
    c = _parse(cfg)
    assert c.data.keys == ["Ekine", "X", "Y", "dX", "dY", "dZ"]
    assert (c.model.z_dim, c.model.g_width, c.model.g_depth) == (6, 400, 3)
    assert c.model.activation == "relu"
    assert c.loss.penalty == "clamp" and c.loss.clamp == (-0.01, 0.01) and c.loss.penalty_weight == 0
    assert c.optim.D.lr == 1e-5 and c.optim.D.name == "rmsprop" and c.optim.D.scheduler == "none"
    assert c.train.device == "cuda" and c.train.total_rows == 2000 * 2_000_000
    # in 2019 an epoch was one iteration of d_nb_update D steps
    cfg_it, _ = translate_gaga_options(linac_2019(), source="config_001.json", epoch_unit="iteration")
    assert _parse(cfg_it).train.total_rows == 2000 * 5 * 10000


def test_legacy_2019_keys_are_rejected_with_a_hint() -> None:
    opts = {**linac_2019(), "type": "wasserstein", "gp_weight": 0, "layer_norm": False}
    with pytest.raises(ConfigError) as err:
        translate_gaga_options(opts, source="config_001.json", n_rows_hint=10**6)
    msg = str(err.value)
    assert "'type'" in msg and "'layer_norm'" in msg and "'gp_weight'" in msg and "penalty_weight" in msg


@pytest.mark.parametrize("name", sorted(GAGA_PENALTIES))
def test_every_penalty(name: str) -> None:
    expected = {
        "GP_L1_LS": ("two_sided", "L1"), "GP_L2_LS": ("two_sided", "L2"), "GP_Linf_LS": ("two_sided", "Linf"),
        "GP_L1_Hinge": ("one_sided", "L1"), "GP_L2_Hinge": ("one_sided", "L2"), "GP_Linf_Hinge": ("one_sided", "Linf"),
        "GP_0GP": ("zero_centred", None), "GP_SquareHinge": ("square_hinge", None), "clamp": ("clamp", None),
        "no_penalty": ("none", None),
    }[name]  # fmt: skip
    opts = {**g1(), "penalty": name, "penalty_weight": 10, "clamp_lower": -0.02, "clamp_upper": 0.03}
    cfg, notes = translate_gaga_options(opts, source="g1.json", n_rows_hint=10**6)
    c = _parse(cfg)
    assert c.loss.penalty == expected[0] and c.loss.penalty_weight == 10
    if expected[1]:
        assert c.loss.penalty_norm == expected[1]
    if name == "clamp":
        assert c.loss.clamp == (-0.02, 0.03)
    else:
        assert "ignored: clamp_lower (only used with penalty 'clamp')" in notes


def test_unknown_keys_one_error_with_suggestions() -> None:
    opts = {**g1(), "g_dimm": 3, "RMSprop_d_alpha": 0.9, "batchsize": 5, "zzz_totally_new": 1}
    with pytest.raises(ConfigError) as err:
        translate_gaga_options(opts, source="my_opts.json", n_rows_hint=10**6)
    msg = str(err.value)
    assert msg.startswith("my_opts.json")
    for key, hint in (("g_dimm", "'g_dim'"), ("RMSprop_d_alpha", "'RMSProp_d_alpha'"), ("batchsize", "'batch_size'")):
        line = next(line for line in msg.splitlines() if f"{key!r}" in line)
        assert hint in line
    assert "'zzz_totally_new'" in msg


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("penalty", "GP_L3_LS", "'GP_L1_LS'"),
        ("loss", "bce", "'non_saturating_bce'"),
        ("optimiser", "sgd", "'SGD'"),
        ("activation", "gelu", "'my_leaky_relu'"),
        ("z_rand_type", "gauss", "'randn'"),
        ("gpu_mode", "cuda", "'gpu'"),
    ],
)
def test_bad_values_name_the_allowed_ones(key: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        translate_gaga_options({**g1(), key: value}, source="g1.json", n_rows_hint=10**6)
    msg = str(err.value)
    assert key in msg and repr(value) in msg and allowed in msg


def test_all_problems_in_one_error() -> None:
    opts = {**g1(), "penalty": "bad", "loss": "bad", "oops": 1}
    del opts["z_dim"]
    with pytest.raises(ConfigError) as err:
        translate_gaga_options(opts, source="g1.json", n_rows_hint=10**6)
    msg = str(err.value)
    assert "penalty" in msg and "loss" in msg and "'oops'" in msg and "z_dim" in msg


def test_comment_keys_ignored() -> None:
    opts = {**g1(), "#": "a comment", "#optimiser": "SGD leads to bad results", "#gp_weight": 3}
    cfg, notes = translate_gaga_options(opts, source="g1.json", n_rows_hint=10**6)
    assert cfg["optim"]["D"]["name"] == "rmsprop"
    assert not any("#" in n for n in notes)


def test_cond_keys_not_in_keys() -> None:
    with pytest.raises(ConfigError, match=r"cond_keys \['cz'\] are not in keys"):
        translate_gaga_options({**cg1(), "cond_keys": "cx cz"}, source="cg1.json", n_rows_hint=10**6)


def test_cond_keys_not_last_warns() -> None:
    cfg, notes = translate_gaga_options({**cg1(), "keys": "cx X Y cy"}, source="cg1.json", n_rows_hint=10**6)
    assert cfg["data"]["keys"] == ["X", "Y"] and cfg["data"]["cond_keys"] == ["cx", "cy"]
    assert any("would have used ['Y', 'cy']" in n for n in notes)


def test_keys_as_list_and_hash_for_space() -> None:
    cfg, _ = translate_gaga_options({**cg1(), "keys": "X#Y#cx#cy", "cond_keys": ["cx", "cy"]}, source="cg1.json", n_rows_hint=10**6)
    assert cfg["data"]["keys"] == ["X", "Y"] and cfg["data"]["cond_keys"] == ["cx", "cy"]


def test_epoch_needs_row_count() -> None:
    with pytest.raises(ConfigError, match="n_rows_hint"):
        translate_gaga_options(g1(), source="g1.json")


def test_adam_and_sgd() -> None:
    opts = {**g1(), "optimiser": "adam", "beta_1": "0.5", "beta_2": "0.999", "d_weight_decay": 0.1, "g_weight_decay": 0.2}
    c = _parse(translate_gaga_options(opts, source="a.json", n_rows_hint=10**6)[0])
    assert c.optim.D.name == "adam" and c.optim.D.betas == (0.5, 0.999) and c.optim.D.weight_decay == 0.1 and c.optim.G.weight_decay == 0.2
    with pytest.raises(ConfigError, match="beta_2"):
        translate_gaga_options({**g1(), "optimiser": "adam", "beta_1": 0.5, "d_weight_decay": 0, "g_weight_decay": 0}, source="a.json", n_rows_hint=10**6)
    c = _parse(translate_gaga_options({**g1(), "optimiser": "SGD"}, source="s.json", n_rows_hint=10**6)[0])
    assert c.optim.G.name == "sgd" and c.optim.G.momentum == 0


def test_rmsprop_options_and_centered_refused() -> None:
    opts = {**g1(), "RMSprop_d_momentum": 0.1, "RMSProp_g_alpha": 0.9, "RMSProp_d_weight_decay": 0.01}
    c = _parse(translate_gaga_options(opts, source="r.json", n_rows_hint=10**6)[0])
    assert c.optim.D.momentum == 0.1 and c.optim.G.alpha == 0.9 and c.optim.D.weight_decay == 0.01 and c.optim.G.weight_decay == 0
    with pytest.raises(ConfigError, match="centred RMSprop"):
        translate_gaga_options({**g1(), "RMSProp_g_centered": True}, source="r.json", n_rows_hint=10**6)


def test_latent_and_activation_variants() -> None:
    cfg, notes = translate_gaga_options({**g1(), "z_rand_type": "rand", "activation": "my_leaky_relu"}, source="g.json", n_rows_hint=10**6)
    c = _parse(cfg)
    assert c.model.latent == "uniform" and any("[0, 1)" in n and n.startswith("warning") for n in notes)
    assert c.model.activation == "leaky_relu" and c.model.leaky_slope == 0.01
    cfg, notes = translate_gaga_options({**g1(), "z_rand_type": "uniform"}, source="g.json", n_rows_hint=10**6)
    assert cfg["model"]["latent"] == "normal" and any("silently uses randn" in n for n in notes)


def test_losses() -> None:
    for gaga, ours in (("wasserstein", "wasserstein"), ("hinge", "hinge"), ("non_saturating_bce", "non_saturating")):
        assert _parse(translate_gaga_options({**g1(), "loss": gaga}, source="g.json", n_rows_hint=10**6)[0]).loss.adversarial == ours


def test_positional_encoding_not_supported() -> None:
    opts = {**g1(), "model": "v4", "positional_encoding": "x 2", "positional_encoding_options": {"num_encoding_functions": 6}}
    with pytest.raises(ConfigError, match="not supported"):
        translate_gaga_options(opts, source="test006_pos_enc.json", n_rows_hint=10**6)


def test_pth_bookkeeping_keys_ignored() -> None:
    opts = {**g1(), "x_dim": 2, "hostname": "h", "keys_list": ["X", "Y"], "start_pth": None, "dataloader_num_workers": 4}
    cfg, notes = translate_gaga_options(opts, source="g.json", n_rows_hint=10**6)
    _parse(cfg)
    for key in ("x_dim", "hostname", "keys_list", "start_pth", "dataloader_num_workers"):
        assert any(n.startswith(f"ignored: {key}") for n in notes)
