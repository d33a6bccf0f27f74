"""PACGAN through the command line: train (validate and test modes, PACGAN's config.json), generate, classify (tiny 4→16 px)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.io.slices import read_slice_set

from conftest import PACGAN_TINY as TINY
from conftest import write_toy_slices as _write_set

runner = CliRunner()

@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slices")
    _write_set(root / "train", 20, 0, "tr")
    _write_set(root / "test", 8, 1, "te")
    return root


@pytest.fixture(scope="module")
def validate_run(slices: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "validate"
    result = runner.invoke(app, ["train", str(slices / "train"), "-o", str(run), *TINY])
    assert result.exit_code == 0, result.output
    return run


def test_train_validate_mode_writes_model_report_and_best_epochs(validate_run: Path) -> None:
    manifest = json.loads((validate_run / "model" / "manifest.json").read_text())
    assert manifest["family"] == "pacgan" and manifest["classes"] == ["0", "1"]
    training = manifest["training"]
    assert training["mode"] == "validate" and len(training["best_epochs"]) == 3
    assert all(1 <= e <= 2 for e in training["best_epochs"])
    split = training["data"]["split"]
    assert split["images"]["train"] + split["images"]["validation"] == 60 and split["fold"] == 4
    assert manifest["intensity"]["mode"] == "range"  # 0..1000 data mapped to [-1, 1]
    assert manifest["spacing_mm"] == [1.5, 1.5]
    metrics = manifest["metrics"]
    assert metrics["evaluated_on"] == "validation images" and 0 <= metrics["classifier"]["auc"]["auc"] <= 1
    assert "encoder_fd" in metrics["image_quality"]["overall"]
    assert metrics["encoder"] == str(validate_run / "encoder") and (validate_run / "encoder" / "encoder.json").is_file()
    history = [json.loads(line) for line in (validate_run / "validation.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2] * 3 and [r["level"] for r in history] == [0, 0, 1, 1, 2, 2]
    html = (validate_run / "report" / "report.html").read_text()
    for heading in ("generated images", "training curves", "validation score", "image quality", "ROC", "confusion matrix"):
        assert heading in html


def test_info_shows_the_pacgan_model(validate_run: Path) -> None:
    result = runner.invoke(app, ["info", str(validate_run / "model")])
    assert result.exit_code == 0, result.output
    for text in ("pacgan", "levels 4→16 px", "classifier", "AUC", "best epochs per level", "image quality", "fold 4 of 5"):
        assert text in result.output, text


def test_generate_writes_nifti_and_labels(validate_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn" / "gen.nii.gz"
    result = runner.invoke(app, ["generate", str(validate_run / "model"), "--per-class", "3,4", "-o", str(out), "--seed", "7", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    image = nib.load(out)
    assert image.shape == (16, 16, 1, 7) and image.header.get_zooms()[:2] == (1.5, 1.5)
    rows = list(csv.DictReader(open(out.parent / "labels.csv")))
    assert [int(r["Label"]) for r in rows] == [0, 0, 0, 1, 1, 1, 1] and [int(r["ID"]) for r in rows] == list(range(7))
    data = np.asarray(image.dataobj)
    assert data.min() >= -1 and data.max() <= 1100  # back in the training data's intensities (0..~1000), not [-1, 1]
    assert data.max() > 10
    # same seed and batch size: the same bits; another batch size: the same images up to float32 rounding
    # (the CPU convolutions sum in another order for another batch); refused without --force
    same = tmp_path / "same" / "gen.nii.gz"
    assert runner.invoke(app, ["generate", str(validate_run / "model"), "--per-class", "3,4", "-o", str(same), "--seed", "7", "--batch-size", "2"]).exit_code == 0
    np.testing.assert_array_equal(np.asarray(nib.load(same).dataobj), data)
    again = tmp_path / "again" / "gen.nii.gz"
    assert runner.invoke(app, ["generate", str(validate_run / "model"), "--per-class", "3,4", "-o", str(again), "--seed", "7", "--batch-size", "5"]).exit_code == 0
    np.testing.assert_allclose(np.asarray(nib.load(again).dataobj), data, rtol=1e-5, atol=1e-3)
    refused = runner.invoke(app, ["generate", str(validate_run / "model"), "-n", "2", "-o", str(out), "--seed", "7"])
    assert refused.exit_code == 2 and "already exists" in refused.output
    one = runner.invoke(app, ["generate", str(validate_run / "model"), "-n", "3", "--cond", "label=1", "-o", str(tmp_path / "one" / "x.nii.gz"), "--seed", "1"])
    assert one.exit_code == 0 and [r["Label"] for r in csv.DictReader(open(tmp_path / "one" / "labels.csv"))] == ["1", "1", "1"]
    bad = runner.invoke(app, ["generate", str(validate_run / "model"), "-n", "3", "--cond", "label=2", "-o", str(tmp_path / "bad" / "x.nii.gz")])
    assert bad.exit_code == 2 and "class index 0..1" in bad.output


def test_classify_round_trip(validate_run: Path, slices: Path, tmp_path: Path) -> None:
    pred = tmp_path / "predictions.csv"
    test = slices / "test"
    result = runner.invoke(app, ["classify", str(validate_run / "model"), str(test / "Real16x16.nii.gz"), "--labels", str(test / "labels.csv"), "-o", str(pred)])
    assert result.exit_code == 0, result.output
    assert "ROC AUC (whole set)" in result.output
    rows = list(csv.DictReader(open(pred)))
    assert list(rows[0]) == ["ID", "Label", "P_0", "P_1", "Predicted"] and len(rows) == 24
    for r in rows:
        assert abs(float(r["P_0"]) + float(r["P_1"]) - 1) < 1e-6 and int(r["Predicted"]) == int(float(r["P_1"]) > float(r["P_0"]))
    assert (tmp_path / "predictions.html").is_file()
    # the same answers without labels, one image at a time
    single = runner.invoke(app, ["classify", str(validate_run / "model"), str(test / "Real16x16.nii.gz"), "-o", str(tmp_path / "p2.csv"), "--batch-size", "1"])
    assert single.exit_code == 0, single.output
    for a, b in zip(rows, csv.DictReader(open(tmp_path / "p2.csv"))):
        assert abs(float(a["P_1"]) - float(b["P_1"])) < 1e-5 and "Label" not in b


def test_test_mode_retrains_for_the_best_epochs_and_scores_the_test_set(validate_run: Path, slices: Path, tmp_path: Path) -> None:
    run = tmp_path / "test-run"
    result = runner.invoke(app, ["train", str(slices / "train"), "-o", str(run), *TINY, "--set", "validation.mode=test",
                                 "--set", f"validation.best_from={validate_run}", "--set", f"data.test_data={slices / 'test'}"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    best = json.loads((validate_run / "model" / "manifest.json").read_text())["training"]["best_epochs"]
    assert manifest["training"]["data"]["schedule"]["epochs"] == best
    assert manifest["training"]["data"]["split"]["images"] == {"train": 60, "validation": 0}
    assert manifest["metrics"]["evaluated_on"] == "test images" and manifest["metrics"]["n_images"] == 24


def test_pacgan_config_json_is_translated(slices: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "IMAGE_CHANNELS": 1, "CLASS_SIZE": 2, "DEVICE": "'cuda' if torch.cuda.is_available() else 'cpu'", "IN_CHANNELS": 16,
        "FACTORS": "[1, 1, 1/2]", "LEARNING_RATE": 1e-3, "BATCH_SIZES": "[8, 8, 8]", "EMBEDDING_DIM": 3, "Z_DIM": 8,
        "CRITIC_ITERATIONS": "[1, 1, 2]", "LAMBDA_GP": 10, "LAMBDA_CLS_1": 4, "LAMBDA_CLS_2": "L_cls1/2",
        "PROGRESSIVE_EPOCHS": "[1] * len(factors)", "VALIDATE": "True", "START_CHECK_AT": 0.5, "TESTING": "False", "GENERATE": "True",
        "N_IMAGES_GENERATED": "[4]",
    }))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(slices / "train"), str(config), "-o", str(run), "--device", "cpu", "--set", "train.evaluate=false"])
    assert result.exit_code == 0, result.output
    assert "PACGAN config.json, translated" in result.output
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["model"]["lambda_cls_2"] == 2.0 and resolved["schedule"]["epochs"] == [1, 1, 1] and resolved["model"]["image_size"] == 16
    generated = read_slice_set(run / "generated")
    assert generated.images.shape == (4, 1, 16, 16) and generated.labels.tolist() == [0, 0, 1, 1]


def test_bad_pacgan_keys_are_one_error(slices: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"Z_DIMS": 8, "FACTORZ": "[1]", "LAMBDA_GP": 10}))
    result = runner.invoke(app, ["train", str(slices / "train"), str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "Z_DIMS" in result.output and "Z_DIM" in result.output and "FACTORZ" in result.output and "FACTORS" in result.output


def test_subject_in_both_sets_is_refused_by_name(tmp_path: Path) -> None:
    from gansim.data.subject_split import check_no_subject_overlap
    from gansim.errors import DataError

    with pytest.raises(DataError, match="sub-7"):
        check_no_subject_overlap({"train": np.array(["sub-1", "sub-7"]), "validation": np.array(["sub-7", "sub-9"])}, source="labels.csv")


def test_compare_two_slice_sets(validate_run: Path, slices: Path, tmp_path: Path) -> None:
    gen = tmp_path / "gen" / "gen.nii.gz"
    assert runner.invoke(app, ["generate", str(validate_run / "model"), "--per-class", "12,12", "-o", str(gen), "--seed", "2"]).exit_code == 0
    report = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(slices / "test"), str(gen.parent), "-o", str(report), "--seed", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"0", "1"} and "baseline_real_real" in metrics
    assert "encoder trained on 12" in metrics["encoder"]
    assert "image quality" in (report / "report.html").read_text()
    again = runner.invoke(app, ["compare", str(slices / "test"), str(gen.parent), "-o", str(report), "--encoder", str(report / "encoder")])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["compare", str(slices / "test"), str(gen.parent), "-o", str(tmp_path / "x"), "--keys", "a"])
    assert bad.exit_code == 2 and "--keys" in bad.output


def test_resume_refuses_a_changed_schedule_and_finishes_a_stopped_run(slices: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = runner.invoke(app, ["train", str(slices / "train"), "-o", str(run), *TINY, "--set", "train.evaluate=false", "--set", "train.checkpoint_rows=100",
                                "--set", "train.max_wall_time_s=0.5"])
    assert first.exit_code == 0, first.output
    stopped = json.loads((run / "model" / "manifest.json").read_text())["training"]
    changed = runner.invoke(app, ["train", str(slices / "train"), "-o", str(run), "--resume", "--set", "schedule.epochs=[3,3,3]"])
    assert changed.exit_code == 2 and "schedule.epochs" in changed.output
    resumed = runner.invoke(app, ["train", str(slices / "train"), "-o", str(run), "--resume", "--set", "train.max_wall_time_s=600"])
    assert resumed.exit_code == 0, resumed.output
    training = json.loads((run / "model" / "manifest.json").read_text())["training"]
    assert training["resumed_from"] and training["rows_seen"] >= training["data"]["schedule"]["total_images"] > stopped["rows_seen"]


def test_data_brain_slices_through_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("nilearn")
    out = tmp_path / "brains"
    result = runner.invoke(app, ["data", "brain-slices", "-o", str(out), "--size", "16", "--subjects", "5", "--test-subjects", "2", "--classes", "3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "train: 60 slices of 15 subjects" in result.output
    train = read_slice_set(out / "train", require_subjects=True)
    assert train.images.shape == (60, 1, 16, 16) and sorted(set(train.labels.tolist())) == [0, 1, 2]
    again = runner.invoke(app, ["data", "brain-slices", "-o", str(out), "--size", "16"])
    assert again.exit_code == 2 and "exists" in again.output
    wrong = runner.invoke(app, ["data", "linac", "-o", str(tmp_path / "x.npy"), "--classes", "3"])
    assert wrong.exit_code == 2 and "--classes" in wrong.output


def test_training_subjects_are_not_scored_as_unseen(validate_run: Path, slices: Path, tmp_path: Path) -> None:
    train = slices / "train"
    refused = runner.invoke(app, ["classify", str(validate_run / "model"), str(train), "--labels", str(train / "labels.csv"), "-o", str(tmp_path / "p.csv")])
    assert refused.exit_code == 2 and "tr000" in refused.output and "--allow-training-subjects" in refused.output
    allowed = runner.invoke(app, ["classify", str(validate_run / "model"), str(train), "--labels", str(train / "labels.csv"), "-o", str(tmp_path / "p.csv"),
                                  "--allow-training-subjects"])
    assert allowed.exit_code == 0, allowed.output
    # test mode refuses a test set sharing a subject with the training set, before training
    leak = tmp_path / "leak"
    _write_set(leak, 4, 5, "tr")  # subjects tr000..tr003 are also training subjects
    result = runner.invoke(app, ["train", str(train), "-o", str(tmp_path / "run"), *TINY, "--set", "validation.mode=test",
                                 "--set", "validation.best_epochs=[1,1,1]", "--set", f"data.test_data={leak}"])
    assert result.exit_code == 2 and "tr000" in result.output and not (tmp_path / "run" / "checkpoints").exists()


def test_generate_never_relabels_another_stack(validate_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "same"
    assert runner.invoke(app, ["generate", str(validate_run / "model"), "-n", "4", "--cond", "label=0", "-o", str(folder / "cn.nii.gz"), "--seed", "1"]).exit_code == 0
    second = runner.invoke(app, ["generate", str(validate_run / "model"), "-n", "4", "--cond", "label=1", "-o", str(folder / "ad.nii.gz"), "--seed", "1", "--force"])
    assert second.exit_code == 2 and "cn.nii.gz" in second.output and "own folder" in second.output
    assert read_slice_set(folder / "cn.nii.gz").labels.tolist() == [0, 0, 0, 0]


def test_classify_warns_about_images_in_another_intensity_range(validate_run: Path, slices: Path, tmp_path: Path) -> None:
    from gansim.io.slices import write_slice_set

    test = read_slice_set(slices / "test")
    write_slice_set(tmp_path / "scaled" / "x.nii.gz", test.images / 1000.0 * 2 - 1, test.labels)  # PACGAN-style [-1, 1] slices
    result = runner.invoke(app, ["classify", str(validate_run / "model"), str(tmp_path / "scaled" / "x.nii.gz"), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 0 and "do not look like the training data's intensities" in result.output
