"""PACGAN's config.json -> gansim's typed PACGAN config (gansim.models.pacgan_foreign)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from gansim.config import parse_config
from gansim.errors import ConfigError
from gansim.models.pacgan_config import PACGANConfig
from gansim.models.pacgan_foreign import PACGAN_DEFAULTS, is_pacgan_config, load_pacgan_config, translate_pacgan_config


def shipped_config() -> dict[str, Any]:
    """PACGAN's Training/config.json as the reference lists it: every key, strings as strings, its comment keys."""
    return {
        "//Comment1": "Set the path to data directories",
        "DATA_TRAIN_DIRECTORY": "data/ADNI/ADNI_train",
        "LABEL_TRAIN_DIRECTORY": "data/ADNI/ADNI_train/labels.csv",
        "DATA_TEST_DIRECTORY": "data/ADNI/ADNI_test",
        "LABEL_TEST_DIRECTORY": "data/ADNI/ADNI_test/labels.csv",
        "//Comment2": "Set the path to saving directories",
        "IMAGE_DIRECTORY": "saved_images/PACGAN",
        "MODEL_DIRECTORY": "saved_models/PACGAN",
        "IMAGE_CHANNELS": 1,
        "CLASS_SIZE": 2,
        "DEVICE": "'cuda' if torch.cuda.is_available() else 'cpu'",
        "GPUS_N": "[0]",
        "IN_CHANNELS": 512,
        "FACTORS": "[1, 1, 1/2, 1/4, 1/8, 1/16, 1/32]",
        "LEARNING_RATE": 1e-3,
        "BATCH_SIZES": "[32, 32, 32, 16, 16, 16, 16]",
        "EMBEDDING_DIM": 3,
        "Z_DIM": 512,
        "CRITIC_ITERATIONS": "[1, 1, 1, 1, 1, 2, 2]",
        "LAMBDA_GP": 10,
        "LAMBDA_CLS_1": 4,
        "LAMBDA_CLS_2": "L_cls1/2",
        "PROGRESSIVE_EPOCHS": "[100] * len(factors)",
        "DISP_EVERY_N_EPOCHS": 50,
        "VALIDATE": "True",
        "START_CHECK_AT": 0.6,
        "TESTING": "False",
        "TEST_USING_BEST_MODEL": "True",
        "GENERATE": "True",
        "N_IMAGES_GENERATED": "[200]",
        "LOAD_MODEL": "False",
        "START_TRAIN_AT_IMG_SIZE": 4,
    }


def small_config(**changes: Any) -> dict[str, Any]:
    """3 levels (4, 8, 16 px), 3 classes, RGB, a test run trained for PROGRESSIVE_EPOCHS."""
    cfg = shipped_config()
    cfg.update(
        FACTORS="[1, 1/2, 1/4]", IN_CHANNELS=32, Z_DIM=16, EMBEDDING_DIM=2, CLASS_SIZE=3, IMAGE_CHANNELS=3,
        BATCH_SIZES="[8, 8, 4]", CRITIC_ITERATIONS="[1, 1, 2]", PROGRESSIVE_EPOCHS="[2] * len(factors)",
        VALIDATE="False", TESTING="True", TEST_USING_BEST_MODEL="False", N_IMAGES_GENERATED="[10]", DEVICE="cpu",
    )  # fmt: skip
    cfg.update(changes)
    return cfg


def translate(cfg: dict[str, Any], **kwargs: Any) -> tuple[PACGANConfig, list[str], dict[str, Any]]:
    raw, notes = translate_pacgan_config(cfg, **kwargs)
    return parse_config(PACGANConfig, raw, source="translated"), notes, raw


def error_of(cfg: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        translate_pacgan_config(cfg, source="cfg.json")
    return str(info.value)


# ---------------------------------------------------------------------------------------- the shipped file


def test_shipped_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(shipped_config(), indent=1))
    cfg, notes = load_pacgan_config(path)
    assert cfg.model.sizes == [4, 8, 16, 32, 64, 128, 256]
    assert cfg.model.widths() == [512, 512, 256, 128, 64, 32, 16]
    assert (cfg.model.channels, cfg.model.num_classes, cfg.model.z_dim, cfg.model.embedding_dim) == (1, 2, 512, 3)
    assert cfg.schedule.epochs == [100] * 7
    assert cfg.schedule.batch_sizes == [32, 32, 32, 16, 16, 16, 16]
    assert cfg.schedule.critic_iterations == [1, 1, 1, 1, 1, 2, 2]
    assert cfg.model.gp_weight == 10.0 and cfg.model.lambda_cls_1 == 4.0 and cfg.model.lambda_cls_2 == 2.0
    assert cfg.model.lambda_meaning == "readme"
    assert cfg.train.device == "auto"
    assert cfg.validation.mode == "validate" and cfg.validation.start_check_at == 0.6
    assert cfg.validation.generate_per_class == [100, 100]  # 200 split equally over 2 classes
    for net in ("G", "D"):
        assert cfg.optim[net].lr == 1e-3 and cfg.optim[net].betas == (0.5, 0.999) and cfg.optim[net].name == "adam"
    # labels.csv beside the images: gansim's default; the test set is not used in validate mode
    assert cfg.data.labels is None and cfg.data.test_data is None
    assert (cfg.data.n_folds, cfg.data.fold, cfg.data.split_seed) == (5, 4, 8)
    text = "\n".join(notes)
    for key in PACGAN_DEFAULTS:  # every key is translated or explained
        assert key in text, key
    assert "lambda_meaning=code" in text and "700 passes" in text
    assert str(tmp_path / "data/ADNI/ADNI_train") in text  # the DATA argument to give


def test_missing_keys_take_pacgans_defaults() -> None:
    full, _ = translate_pacgan_config(shipped_config())
    empty, notes = translate_pacgan_config({})
    assert empty == full
    assert any(n.startswith("missing key(s) take PACGAN's defaults") and "FACTORS" in n for n in notes)
    assert any("a long run" in n for n in notes)
    some, notes = translate_pacgan_config({"Z_DIM": 100, "LAMBDA_CLS_1": 6})
    assert some["model"]["z_dim"] == 100 and some["model"]["lambda_cls_2"] == 3.0  # the default "L_cls1/2" sees 6
    assert "LAMBDA_CLS_1" not in next(n for n in notes if n.startswith("missing"))


# ---------------------------------------------------------------------------------------- a small test run


def test_small_test_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg, notes, _ = translate(small_config(DATA_TEST_DIRECTORY="held_out", LABEL_TEST_DIRECTORY="held_out/test_labels.csv"))
    assert cfg.model.sizes == [4, 8, 16] and cfg.model.image_size == 16
    assert cfg.model.widths() == [32, 16, 8]
    assert (cfg.model.channels, cfg.model.num_classes, cfg.model.z_dim, cfg.model.embedding_dim) == (3, 3, 16, 2)
    assert cfg.schedule.batch_sizes == [8, 8, 4] and cfg.schedule.critic_iterations == [1, 1, 2] and cfg.schedule.epochs == [2, 2, 2]
    assert cfg.validation.mode == "test"
    assert cfg.validation.best_epochs == [2, 2, 2]  # TEST_USING_BEST_MODEL False: PROGRESSIVE_EPOCHS
    assert cfg.validation.generate_per_class == [3, 3, 4]  # int(10/3) each, the last class takes the remainder
    assert cfg.data.test_data == str(tmp_path / "held_out")
    assert cfg.data.test_labels == str(tmp_path / "held_out" / "test_labels.csv")
    assert cfg.train.device == "cpu"
    text = "\n".join(notes)
    assert "2-output class head" in text  # CLASS_SIZE 3
    assert "exactly 7 levels" in text


def test_test_mode_with_best_model_needs_a_validate_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg, notes, raw = translate(small_config(TEST_USING_BEST_MODEL="True"))
    assert cfg.validation.mode == "test" and cfg.validation.best_epochs is None and cfg.validation.best_from is None
    assert any("--set validation.best_from=" in n for n in notes)
    # the user's --set completes it
    raw["validation"]["best_from"] = str(tmp_path / "validate_run")
    assert parse_config(PACGANConfig, raw).validation.best_from == str(tmp_path / "validate_run")
    # labels.csv inside the test folder is the default: not written
    assert cfg.data.test_labels is None and cfg.data.test_data == str(tmp_path / "data/ADNI/ADNI_test")
    text = "\n".join(notes)
    for key in PACGAN_DEFAULTS:  # every key is translated or explained in test mode too
        assert key in text, key


@pytest.mark.parametrize(
    ("validate", "testing", "mode", "phrase"),
    [("True", "True", "validate", "TESTING True is ignored"), ("False", "False", "none", "trains on every training image")],
)
def test_validate_and_testing_combinations(validate: str, testing: str, mode: str, phrase: str) -> None:
    cfg, notes, _ = translate(small_config(VALIDATE=validate, TESTING=testing))
    assert cfg.validation.mode == mode and cfg.data.test_data is None
    assert any(phrase in n for n in notes)


# ---------------------------------------------------------------------------------------- expression forms


@pytest.mark.parametrize(
    ("key", "value", "path", "expected"),
    [
        ("Z_DIM", "128", ("model", "z_dim"), 128),
        ("Z_DIM", 128.0, ("model", "z_dim"), 128),
        ("LEARNING_RATE", "2e-4", ("optim", "G", "lr"), 2e-4),
        ("LEARNING_RATE", "1/1000", ("optim", "D", "lr"), 1e-3),
        ("LAMBDA_GP", "5", ("model", "gp_weight"), 5.0),
        ("LAMBDA_CLS_2", "LAMBDA_CLS_1/2", ("model", "lambda_cls_2"), 2.0),
        ("LAMBDA_CLS_2", "L_cls1 / 4 + 1", ("model", "lambda_cls_2"), 2.0),
        ("LAMBDA_CLS_2", 3, ("model", "lambda_cls_2"), 3.0),
        ("START_CHECK_AT", "0", ("validation", "start_check_at"), 0.0),
        ("FACTORS", [1, 1, 0.5, 0.25, 0.125, 0.0625, 0.03125], ("model", "factors"), [1, 1, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
        ("BATCH_SIZES", "[32] * 3 + [16] * 4", ("schedule", "batch_sizes"), [32, 32, 32, 16, 16, 16, 16]),
        ("BATCH_SIZES", [8, 8, 8, 8, 8, 8, 8], ("schedule", "batch_sizes"), [8] * 7),
        ("CRITIC_ITERATIONS", "[1] * (len(factors) - 2) + [2, 2]", ("schedule", "critic_iterations"), [1, 1, 1, 1, 1, 2, 2]),
        ("PROGRESSIVE_EPOCHS", "[10] * len(FACTORS)", ("schedule", "epochs"), [10] * 7),
        ("PROGRESSIVE_EPOCHS", "[z_dim // 256] * len(bs)", ("schedule", "epochs"), [2] * 7),  # any earlier value, by PACGAN's name
        ("N_IMAGES_GENERATED", "[5, 7]", ("validation", "generate_per_class"), [5, 7]),
        ("N_IMAGES_GENERATED", 7, ("validation", "generate_per_class"), [3, 4]),
        ("VALIDATE", True, ("validation", "mode"), "validate"),
        ("VALIDATE", "false", ("validation", "mode"), "none"),
        ("VALIDATE", "1 == 2", ("validation", "mode"), "none"),
    ],
)
def test_value_forms(key: str, value: Any, path: tuple[str, ...], expected: Any) -> None:
    cfg = shipped_config()
    cfg[key] = value
    _, _, raw = translate(cfg)
    got: Any = raw
    for part in path:
        got = got[part]
    assert got == pytest.approx(expected) if isinstance(expected, float) else got == expected


def test_generate_false_writes_no_images() -> None:
    cfg, notes, _ = translate({**shipped_config(), "GENERATE": "False", "N_IMAGES_GENERATED": "[1, 2, 3]"})
    assert cfg.validation.generate_per_class is None
    assert any("GENERATE False" in n for n in notes)


@pytest.mark.parametrize(
    ("device", "gpus", "expected", "phrase"),
    [
        ("'cuda' if torch.cuda.is_available() else 'cpu'", "[0]", "auto", "CUDA when available"),
        ("'cuda:1' if torch.cuda.is_available() else 'cpu'", "[0]", "auto", "--set train.device=cuda:1"),
        ("'cuda' if torch.cuda.is_available() else 'cpu'", "[2]", "auto", "--set train.device=cuda:2"),
        ("cpu", "[0]", "cpu", "train.device 'cpu'"),
        ("'cpu'", "[1]", "cpu", "ignored: GPUS_N [1]"),
        ("cuda", "[0]", "cuda:0", "train.device 'cuda:0'"),
        ("'cuda'", "[3]", "cuda:3", "train.device 'cuda:3'"),
        ("'cuda'", "[0, 1]", "cuda", "torchrun --nproc_per_node=2"),
        ("'cuda' if 1 > 2 else 'cpu'", "[0]", "cpu", "train.device 'cpu'"),
    ],
)
def test_device(device: str, gpus: str, expected: str, phrase: str) -> None:
    cfg, notes, _ = translate({**shipped_config(), "DEVICE": device, "GPUS_N": gpus})
    assert cfg.train.device == expected
    assert any(phrase in n for n in notes), notes


@pytest.mark.parametrize("available", [True, False])
def test_device_expression_of_another_form_is_evaluated_here(monkeypatch: pytest.MonkeyPatch, available: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    cfg, notes, _ = translate({**shipped_config(), "DEVICE": "'cpu' if torch.cuda.is_available() else 'cuda'"})
    assert cfg.train.device == ("cpu" if available else "cuda:0")
    assert any("depends on this machine's CUDA" in n for n in notes)


# ---------------------------------------------------------------------------------------- refused values


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("FACTORS", "__import__('os').system('touch {marker}')"),
        ("Z_DIM", "().__class__.__bases__[0].__subclasses__()"),
        ("LAMBDA_CLS_2", "(lambda: 1)()"),
        ("DEVICE", "__import__('os').system('touch {marker}') or 'cpu'"),
        ("VALIDATE", "open('{marker}', 'w')"),
        ("PROGRESSIVE_EPOCHS", "[100] * len(factors) if not __import__('os').system('touch {marker}') else []"),
    ],
)
def test_malicious_strings_are_refused(tmp_path: Path, key: str, text: str) -> None:
    marker = tmp_path / "pwned"
    message = error_of({**shipped_config(), key: text.format(marker=marker)})
    assert f"{key} = " in message and "cfg.json" in message
    assert "is not allowed" in message or "call of" in message  # the safe evaluator's reason
    assert not marker.exists()


def test_unknown_keys_one_error_with_suggestions() -> None:
    message = error_of({**shipped_config(), "Z_DIMS": 512, "factors": "[1]", "LAMBDA_CLS1": 4, "WHATEVER_THIS_IS": 1})
    assert message.count("unknown key") == 4
    assert "'Z_DIMS' (did you mean 'Z_DIM'" in message
    assert "'factors' (did you mean 'FACTORS'" in message
    assert "'LAMBDA_CLS1' (did you mean 'LAMBDA_CLS_1'" in message
    assert "'WHATEVER_THIS_IS'" in message


def test_wrong_list_lengths_are_all_reported() -> None:
    message = error_of({**shipped_config(), "BATCH_SIZES": "[32] * 6", "PROGRESSIVE_EPOCHS": "[100] * 8"})
    assert "BATCH_SIZES = '[32] * 6': 6 entries; expected one per level of FACTORS (7)" in message
    assert "PROGRESSIVE_EPOCHS = '[100] * 8': 8 entries" in message
    message = error_of({**shipped_config(), "N_IMAGES_GENERATED": "[10, 20, 30]"})
    assert "N_IMAGES_GENERATED" in message and "2 classes" in message


@pytest.mark.parametrize(
    ("key", "value", "phrase"),
    [
        ("FACTORS", "[1, 'a']", "list of positive numbers"),
        ("FACTORS", "[]", "list of positive numbers"),
        ("FACTORS", "[1, 0]", "list of positive numbers"),
        ("FACTORS", 1, "list of positive numbers"),
        ("BATCH_SIZES", "[32, 32, 32, 16, 16, 16, 0]", "integers >= 1"),
        ("CRITIC_ITERATIONS", "[1.5] * 7", "integers >= 1"),
        ("CLASS_SIZE", 1, ">= 2"),
        ("IN_CHANNELS", "0", ">= 1"),
        ("Z_DIM", "abc", "unknown name 'abc'"),
        ("Z_DIM", 12.5, "an integer"),
        ("LEARNING_RATE", 0, "> 0"),
        ("LAMBDA_GP", -1, ">= 0"),
        ("START_CHECK_AT", 1.5, "[0, 1]"),
        ("VALIDATE", "yes", 'expected "True" or "False"'),
        ("TESTING", "Maybe", 'expected "True" or "False"'),
        ("VALIDATE", 1, "True or False"),
        ("DEVICE", "'gpu'", "'cpu', 'cuda', 'cuda:N' or 'mps'"),
        ("DEVICE", "'cuda' if torch.cuda.is_available(0) else 'cpu'", "torch.cuda.is_available"),
        ("GPUS_N", "[-1]", "integers >= 0"),
        ("DATA_TRAIN_DIRECTORY", 3, "a path"),
        ("START_TRAIN_AT_IMG_SIZE", 12, "one of the level sizes [4, 8, 16, 32, 64, 128, 256]"),
        ("START_TRAIN_AT_IMG_SIZE", 2, ">= 4"),
    ],
)
def test_bad_values_name_key_and_expectation(key: str, value: Any, phrase: str) -> None:
    message = error_of({**shipped_config(), key: value})
    assert key in message and phrase in message, message


def test_dependent_value_reports_its_cause() -> None:
    message = error_of({**shipped_config(), "FACTORS": "[1, 1"})
    assert "FACTORS = " in message and "not a Python expression" in message
    assert "PROGRESSIVE_EPOCHS: '[100] * len(factors)' not evaluated: it uses FACTORS, which is invalid" in message


def test_a_key_read_later_is_named_with_the_order() -> None:
    message = error_of({**shipped_config(), "LAMBDA_CLS_1": "L_cls2 * 2"})  # PACGAN's default makes LAMBDA_CLS_2 from LAMBDA_CLS_1
    assert "LAMBDA_CLS_1 = 'L_cls2 * 2': uses LAMBDA_CLS_2 (L_cls2), which PACGAN's main.py reads after LAMBDA_CLS_1" in message, message


def test_gansim_config_is_not_translated() -> None:
    with pytest.raises(ConfigError, match="this is a gansim config"):
        translate_pacgan_config({"family": "pacgan", "model": {"z_dim": 4}})


# ---------------------------------------------------------------------------------------- widths, levels, resuming


def test_widths_follow_pacgans_truncation() -> None:
    cfg, notes, _ = translate({**shipped_config(), "IN_CHANNELS": 300})
    # PACGAN: int(300 * f); rounding would give 38 and 19 at 1/8 and 1/16
    assert cfg.model.widths() == [300, 300, 150, 75, 37, 18, 9]
    assert any("PACGAN truncates" in n for n in notes)
    assert "0 channels" in error_of({**shipped_config(), "IN_CHANNELS": 16})  # int(16 / 32) = 0


def test_load_model_and_start_size() -> None:
    message = error_of({**shipped_config(), "LOAD_MODEL": "True", "START_TRAIN_AT_IMG_SIZE": 16})
    assert "LOAD_MODEL True with START_TRAIN_AT_IMG_SIZE 16" in message and "--resume" in message
    _, notes, raw = translate({**shipped_config(), "LOAD_MODEL": "True"})
    assert raw["model"]["start_size"] == 4 and any("PACGAN loads nothing" in n for n in notes)
    _, notes, _ = translate({**shipped_config(), "START_TRAIN_AT_IMG_SIZE": 32})
    assert any(n.startswith("ignored: START_TRAIN_AT_IMG_SIZE 32") for n in notes)


# ---------------------------------------------------------------------------------------- paths


def test_relative_paths_are_relative_to_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "work").mkdir()
    path = tmp_path / "configs" / "config.json"
    path.write_text(json.dumps({**small_config(), "LABEL_TRAIN_DIRECTORY": "tables/train.csv", "DATA_TEST_DIRECTORY": "../test"}))
    monkeypatch.chdir(tmp_path / "work")
    cfg, _ = load_pacgan_config(path)
    assert cfg.data.labels == str(tmp_path / "work" / "tables" / "train.csv")  # not beside the config file
    assert cfg.data.test_data == str(tmp_path / "test")  # normalised
    cfg, _ = load_pacgan_config(path, data_dir=tmp_path / "elsewhere")
    assert cfg.data.labels == str(tmp_path / "work" / "tables" / "train.csv")
    absolute = tmp_path / "abs" / "labels.csv"
    cfg, _, _ = translate({**small_config(), "LABEL_TRAIN_DIRECTORY": str(absolute)})
    assert cfg.data.labels == str(absolute)


def test_data_directory_on_the_command_line_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg, notes, _ = translate(shipped_config(), data_dir=tmp_path / "my_slices")
    assert cfg.data.labels is None  # labels.csv beside the images, in whichever folder is used
    assert any("the command line wins" in n and str(tmp_path / "my_slices") in n for n in notes)
    cfg, notes, _ = translate(shipped_config(), data_dir="data/ADNI/ADNI_train")
    assert not any("the command line wins" in n for n in notes)
    cfg, _, _ = translate({**shipped_config(), "LABEL_TRAIN_DIRECTORY": "my_slices/labels.csv"}, data_dir="my_slices")
    assert cfg.data.labels is None


# ---------------------------------------------------------------------------------------- recognition and files


def test_is_pacgan_config() -> None:
    assert is_pacgan_config(shipped_config())
    assert is_pacgan_config({"Z_DIM": 128, "FACTORS": "[1, 1]", "Z_DIMS": 3})
    assert is_pacgan_config({"Z_DIM": 128})
    gaga_like = {"model": "v3", "loss": "wasserstein", "d_layers": 3, "g_layers": 3, "z_dim": 10, "penalty": "GP_SquareHinge",
                 "optimiser": "RMSprop", "epoch": 100, "batch_size": 10000, "keys": "X Y", "gpu_mode": "auto"}  # fmt: skip
    assert not is_pacgan_config(gaga_like)
    assert not is_pacgan_config({"family": "pacgan", "model": {"z_dim": 4}, "Z_DIM": 3, "FACTORS": "[1]"})
    assert not is_pacgan_config({})
    assert not is_pacgan_config({"Z_DIM": 128, "other": 1})
    assert not is_pacgan_config([1, 2])  # type: ignore[arg-type]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_pacgan_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{'FACTORS': 1}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_pacgan_config(bad)
    bad.write_text(json.dumps({**shipped_config(), "Z_DIMS": 1}))
    with pytest.raises(ConfigError, match=f"{bad}: invalid PACGAN config.json"):
        load_pacgan_config(bad)


def test_lambda_meaning_override_is_accepted() -> None:
    raw, _ = translate_pacgan_config(shipped_config())
    raw["model"]["lambda_meaning"] = "code"
    cfg = parse_config(PACGANConfig, raw)
    assert cfg.model.lambda_meaning == "code" and cfg.model.lambda_cls_1 == 4.0
