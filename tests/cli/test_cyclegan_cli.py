"""The 3-D CycleGAN through the command line: prepare, train, translate (header-true), plan (tiny volumes)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from gansim.cli.main import app

from conftest import CYCLEGAN_TINY as TINY
from conftest import write_toy_volume_pairs as _write_pair_set

runner = CliRunner()

@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vols")
    _write_pair_set(root / "data")
    run = root / "run"
    result = runner.invoke(app, ["train", str(root / "data"), "-o", str(run), *TINY])
    assert result.exit_code == 0, result.output
    return root / "data", run


def test_train_writes_model_report_and_training_views(volume_run: tuple[Path, Path]) -> None:
    _, run = volume_run
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    # paired data, but no paired L1 in the objective: the model is not a 'paired' one
    assert manifest["family"] == "cyclegan" and manifest["paired"] is False and manifest["training"]["data"]["paired"] is True
    assert manifest["inference"]["window"] == [16, 16, 16]
    metrics = manifest["metrics"]
    assert set(metrics["A2B"]["summary"]) >= {"mae", "psnr", "ssim", "nmi"} and metrics["A2B"]["rows"][0]["subject"] == "ing00"
    # views at the first stats tick (every 4 patches) at or after each checkpoint (every 6)
    assert sorted(p.name for p in (run / "views").iterdir()) == ["a2b-000000000008.npy", "a2b-000000000012.npy"]
    html = (run / "report" / "report.html").read_text()
    assert "A2B during training" in html and "A2B ing00" in html and "B2A: scores per subject" in html


def test_translate_keeps_grid_header_and_names(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, run = volume_run
    source = data / "testA" / "ing00.nii.gz"
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", str(run / "model"), str(data / "testA"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ing00.nii.gz"]  # not '00' (DCAN's strip('.nii.gz'))
    a, b = nib.load(source), nib.load(out / "ing00.nii.gz")
    assert a.shape == b.shape
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-6)
    assert int(b.header["sform_code"]) == 2 and int(b.header["qform_code"]) == 1
    values = np.asarray(b.dataobj)
    assert np.isfinite(values).all() and values.max() > 50  # intensities back in the input's range, not [-1, 1]
    refused = runner.invoke(app, ["translate", str(run / "model"), str(source), "-o", str(out / "ing00.nii.gz")])
    assert refused.exit_code == 2 and "already exist" in refused.output
    back = runner.invoke(app, ["translate", str(run / "model"), str(out / "ing00.nii.gz"), "-o", str(tmp_path / "back.nii.gz"), "--direction", "B2A"])
    assert back.exit_code == 0, back.output
    bad = runner.invoke(app, ["translate", str(run / "model"), str(source), "-o", str(tmp_path / "x.nii.gz"), "--direction", "A2C"])
    assert bad.exit_code == 2 and "A2B" in bad.output


def test_landmark_world_position_through_prepare_and_translate(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, run = volume_run
    original = nib.load(data / "testA" / "ing00.nii.gz")
    landmark_voxel = np.array([13, 11, 10])
    world = original.affine @ np.append(landmark_voxel, 1)
    prepared = tmp_path / "prepared"
    result = runner.invoke(app, ["prepare", str(data), "-o", str(prepared), "--margin", "1", "--set", "model.width=4", "--set", "model.n_blocks=1"])
    assert result.exit_code == 0, result.output
    assert "smallest valid whole-volume input" in result.output and "multiple (4, 4, 4)" in result.output
    cropped = nib.load(prepared / "testA" / "ing00.nii.gz")
    assert cropped.shape != original.shape
    voxel = np.linalg.solve(cropped.affine, world)[:3]
    np.testing.assert_allclose(voxel, np.round(voxel), atol=1e-4)  # the landmark sits on a voxel of the cropped grid
    i, j, k = np.round(voxel).astype(int)
    assert np.asarray(cropped.dataobj)[i, j, k] == pytest.approx(float(np.asarray(original.dataobj)[tuple(landmark_voxel)]))
    out = tmp_path / "t.nii.gz"
    assert runner.invoke(app, ["translate", str(run / "model"), str(prepared / "testA" / "ing00.nii.gz"), "-o", str(out)]).exit_code == 0
    np.testing.assert_allclose(nib.load(out).affine @ np.append([i, j, k], 1), world, atol=1e-4)


def test_plan_prints_valid_shapes_and_memory() -> None:
    result = runner.invoke(app, ["plan", "--shape", "17", "23", "31", "--set", "model.width=8", "--set", "data.patch=[32,32,32]"])
    assert result.exit_code == 0, result.output
    assert "20×24×32" in result.output and "parameters" in result.output and "total" in result.output
    bad = runner.invoke(app, ["train", "/nonexistent-but-unused", "-o", "x", "--family", "cyclegan", "--set", "data.patch=[15,16,16]"])
    assert bad.exit_code == 2


def test_a_patch_the_generator_cannot_take_is_refused(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = volume_run
    result = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "r"), *TINY, "--set", "data.patch=[18,16,16]"])
    assert result.exit_code == 2 and "multiple of (4, 4, 4)" in result.output and "20×16×16" in result.output
    # a multiple, but below the critic's smallest input (one logit needs 12 voxels a side with 2 critic layers)
    small = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "s"), *TINY, "--set", "data.patch=[8,8,8]"])
    assert small.exit_code == 2 and "at least" in small.output and "generator and critic" in small.output, small.output
    assert not (tmp_path / "s" / "checkpoints").exists()


def _scores(run: Path) -> dict:
    return json.loads((run / "model" / "manifest.json").read_text())["metrics"]


def test_unpaired_training_is_still_scored_on_the_paired_test_set(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = volume_run
    run = tmp_path / "u"
    result = runner.invoke(app, ["train", str(data), "-o", str(run), *TINY, "--set", "data.pairing=unpaired"])
    assert result.exit_code == 0, result.output
    metrics = _scores(run)
    assert metrics["A2B"]["rows"][0]["subject"] == "ing00" and (run / "report" / "report.html").is_file()
    assert sorted(p.name for p in (run / "views").iterdir()) == ["a2b-000000000008.npy", "a2b-000000000012.npy"]
    assert json.loads((run / "model" / "manifest.json").read_text())["training"]["data"]["paired"] is False


def test_csv_pairing_with_a_split_column_through_train(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    data, _ = volume_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    # the csv lies in the data set and is named relative to it: it moves with the data
    (copy / "pairs.csv").write_text("split,A,B\ntrain,ing00.nii.gz,ing00.nii.gz\ntrain,ing01.nii.gz,ing01.nii.gz\ntest,ing00.nii.gz,ing00.nii.gz\n")
    run = tmp_path / "c"
    result = runner.invoke(app, ["train", str(copy), "-o", str(run), *TINY, "--set", "data.pairing=csv", "--set", "data.pairs_csv=pairs.csv"])
    assert result.exit_code == 0, result.output
    assert _scores(run)["A2B"]["rows"][0]["subject"] == "ing00"
    # prepare rewrites the csv into its output, and training on the output takes the same setting
    prepared = tmp_path / "prepared"
    prep = runner.invoke(app, ["prepare", str(copy), "-o", str(prepared), "--set", "data.pairing=csv", "--set", "data.pairs_csv=pairs.csv", *TINY[:8]])
    assert prep.exit_code == 0, prep.output
    assert (prepared / "pairs.csv").read_text().splitlines()[0] == "split,A,B"
    again = runner.invoke(app, ["train", str(prepared), "-o", str(tmp_path / "c2"), *TINY, "--set", "data.pairing=csv", "--set", "data.pairs_csv=pairs.csv"])
    assert again.exit_code == 0, again.output


def test_scores_are_in_the_targets_units_whatever_the_inputs_scale(volume_run: tuple[Path, Path], tmp_path: Path) -> None:
    """The same subject given at 4 times the intensity gets the same scores: the output is scored in the target's units."""
    from gansim.models import load_model
    from gansim.models.cyclegan_evaluate import translation_scores

    data, run = volume_run
    model = load_model(run / "model", device="cpu")
    a = nib.load(data / "testA" / "ing00.nii.gz")
    scaled = tmp_path / "ing00.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(a.dataobj) * 4.0, a.affine, a.header), scaled)
    plain, _ = translation_scores(model, [(data / "testA" / "ing00.nii.gz", data / "testB" / "ing00.nii.gz")], "A2B")
    bright, _ = translation_scores(model, [(scaled, data / "testB" / "ing00.nii.gz")], "A2B")
    for key in ("mae", "psnr", "ssim", "nmi"):
        assert bright["rows"][0][key] == pytest.approx(plain["rows"][0][key], rel=1e-4), key


def test_data_brain_volumes_then_prepare_crops_to_the_head(tmp_path: Path) -> None:
    """The built-in volumes through the command line: layout, oblique header, refusal to overwrite, and
    ``prepare`` cropping the noisy air away (Rician noise fills their background) with the affine kept true."""
    pytest.importorskip("nilearn")
    out = tmp_path / "vols"
    result = runner.invoke(app, ["data", "brain-volumes", "-o", str(out), "--subjects", "1", "--test-subjects", "1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    names = {side: sorted(p.name for p in (out / side).iterdir()) for side in ("trainA", "trainB", "testA", "testB")}
    assert names == {"trainA": ["sub-001.nii.gz"], "trainB": ["sub-001.nii.gz"], "testA": ["sub-002.nii.gz"], "testB": ["sub-002.nii.gz"]}
    t1 = nib.load(out / "trainA" / "sub-001.nii.gz")
    assert t1.shape == (72, 88, 64)
    rotation = t1.affine[:3, :3] / np.linalg.norm(t1.affine[:3, :3], axis=0)
    assert not np.allclose(np.abs(rotation), np.eye(3), atol=1e-3)  # oblique
    again = runner.invoke(app, ["data", "brain-volumes", "-o", str(out), "--subjects", "1", "--test-subjects", "1"])
    assert again.exit_code == 2 and "--force" in again.output
    wrong = runner.invoke(app, ["data", "brain-volumes", "-o", str(tmp_path / "x"), "--classes", "3"])
    assert wrong.exit_code == 2 and "brain-slices options" in wrong.output

    cropped = tmp_path / "crop"
    prep = runner.invoke(app, ["prepare", str(out), "-o", str(cropped)])
    assert prep.exit_code == 0, prep.output
    summary = json.loads((cropped / "prepare.json").read_text())
    first = next(f for f in summary["files"] if f["split"] == "train" and f["side"] == "A")
    assert all(s < o for s, o in zip(first["shape"], first["original_shape"])), first  # the air is cropped on every axis
    small = nib.load(cropped / "trainA" / "sub-001.nii.gz")
    lo = np.array(first["box_lo"])  # the crop box: the head's box grown by the margin, clipped to the volume
    assert first["shape"] == (np.array(first["box_hi"]) - lo).tolist()
    # canonical voxel (0, 0, 0) of the crop is canonical voxel lo of the input: the same world point
    canon_in, canon_out = nib.as_closest_canonical(t1), nib.as_closest_canonical(small)
    np.testing.assert_allclose(canon_out.affine @ [0, 0, 0, 1], canon_in.affine @ [*lo, 1], atol=1e-3)
    assert "smallest valid whole-volume input" in prep.output
