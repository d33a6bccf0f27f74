"""The CycleGAN command line's edges: ``info`` of a CycleGAN model (and of manifests with missing keys),
``translate``'s output paths (a folder as -o, inputs never overwritten, every output checked first),
``plan``'s training patch versus inference window, ``data brain-volumes``' options and help texts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.errors import OutputExistsError

from conftest import CYCLEGAN_TINY as TINY
from conftest import write_toy_volume_pairs

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data folder, model folder) of one tiny run, trained once for the module."""
    root = tmp_path_factory.mktemp("volcli")
    write_toy_volume_pairs(root / "data")
    result = runner.invoke(app, ["train", str(root / "data"), "-o", str(root / "run"), *TINY])
    assert result.exit_code == 0, result.output
    return root / "data", root / "run" / "model"


def _translate(model: Path, source: Path, output: Path, *extra: str):
    return runner.invoke(app, ["translate", str(model), str(source), "-o", str(output), "--device", "cpu", *extra])


def _refused(result, *words: str) -> None:
    """Exit status 2, one error message naming ``words``, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for word in words:
        assert word in result.output, (word, result.output)


# ------------------------------------------------------------------------------------------ info


def test_info_of_a_cyclegan_model(trained: tuple[Path, Path]) -> None:
    _, model = trained
    result = runner.invoke(app, ["info", str(model)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("cyclegan", "3-D ResNet, width 4, 2 stride-2 levels, 1 residual blocks", "PatchGAN, width 4, 2 stride-2 layers",
                     "paired", "no paired L1", "2 A, 2 B volumes; pairing name, paired data", "percentiles [0.5, 99.5]",
                     "sliding windows of 16×16×16, overlap 0.5", "output scale input", "12 patches seen",
                     "scores A2B", "scores B2A", "mean over n = 1: MAE", "PSNR", "SSIM", "NMI", "on 1 test pairs"):
        assert expected in text, (expected, text)


def _minimal_model(folder: Path, manifest: dict) -> Path:
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "gansim-model", "format_version": 1, **manifest}))
    return folder


def test_info_survives_manifests_with_missing_values(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Keys an older or hand-edited manifest lacks (or holds as null) show '?', for every family's branch."""
    _, model = trained
    full = json.loads((model / "manifest.json").read_text())
    trimmed = {**full, "metrics": None, "inference": None, "intensity": None,
               "training": {"data": {"path": "somewhere"}, "rows_seen": None, "wall_time_s": None}}
    cases = {
        "cyclegan": trimmed,
        "cyclegan-bare": {"family": "cyclegan", "architecture": {}},
        "showergan": {"family": "showergan", "architecture": {}, "training": {"data": {"path": "x.h5", "showers_in_file": None, "split": None},
                                                                                 "rows_seen": None}},
        "calogan": {"family": "calogan", "architecture": {}, "training": None},
        "phsp": {"family": "phsp", "architecture": {}, "training": {"data": {"path": "x.npy", "rows": None, "validation": None}, "rows_seen": None}},
    }
    for name, manifest in cases.items():
        folder = _minimal_model(tmp_path / name, manifest)
        result = runner.invoke(app, ["info", str(folder)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert result.exception is None, (name, result.exception)
    assert "? patches seen" in runner.invoke(app, ["info", str(tmp_path / "cyclegan")], env={"COLUMNS": "250"}).output
    assert "? showers" in runner.invoke(app, ["info", str(tmp_path / "showergan")], env={"COLUMNS": "250"}).output


# ------------------------------------------------------------------------------------- translate


def test_a_file_into_an_existing_folder_keeps_its_name(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    folder = tmp_path / "out"
    folder.mkdir()
    result = _translate(model, data / "testA" / "ing00.nii.gz", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["ing00.nii.gz"]
    written = (folder / "ing00.nii.gz").read_bytes()
    again = _translate(model, data / "testA" / "ing00.nii.gz", folder)
    _refused(again, str(folder / "ing00.nii.gz"), "--force")
    assert (folder / "ing00.nii.gz").read_bytes() == written
    forced = _translate(model, data / "testA" / "ing00.nii.gz", folder, "--force")
    assert forced.exit_code == 0, forced.output


def test_an_existing_output_is_an_output_exists_error(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from gansim.cli.volumes import translate_cmd

    data, model = trained
    target = tmp_path / "t.nii.gz"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="pass --force"):
        translate_cmd(model, data / "testA" / "ing00.nii.gz", target, direction="A2B", device="cpu", overlap=None, sw_batch_size=None,
                      force=False, say=lambda m: None)
    assert target.read_bytes() == b"keep me"


def test_a_folder_into_an_existing_file_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    existing = tmp_path / "taken.nii.gz"
    existing.write_bytes(b"x")
    _refused(_translate(model, data / "testA", existing), str(existing), "existing file")
    _refused(_translate(model, data / "testA", existing, "--force"), str(existing), "existing file")
    assert existing.read_bytes() == b"x"


def test_an_input_is_never_overwritten_even_with_force(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    folder = tmp_path / "in"
    shutil.copytree(data / "testA", folder)
    before = (folder / "ing00.nii.gz").read_bytes()
    # the input folder as the output folder; the input file as the output; the file's own folder as -o
    for source, output in ((folder, folder), (folder / "ing00.nii.gz", folder / "ing00.nii.gz"), (folder / "ing00.nii.gz", folder),
                           (folder / "ing00.nii.gz", folder / ".." / "in" / "ing00.nii.gz")):
        _refused(_translate(model, source, output, "--force"), "ing00.nii.gz", "would overwrite the input")
    # a hard link to the input is the input too
    (tmp_path / "link.nii.gz").hardlink_to(folder / "ing00.nii.gz")
    _refused(_translate(model, folder / "ing00.nii.gz", tmp_path / "link.nii.gz", "--force"), "would overwrite the input")
    assert (folder / "ing00.nii.gz").read_bytes() == before


def test_every_output_is_checked_before_any_is_written(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """A folder whose second output exists: nothing is written, not even the first."""
    data, model = trained
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a01.nii.gz", "b02.nii.gz"):
        shutil.copy(data / "testA" / "ing00.nii.gz", folder / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b02.nii.gz").write_bytes(b"old")
    _refused(_translate(model, folder, out), str(out / "b02.nii.gz"), "nothing was translated", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["b02.nii.gz"] and (out / "b02.nii.gz").read_bytes() == b"old"


def test_a_bad_volume_in_a_folder_is_found_before_any_output(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Every volume of a folder is read before the first translation: a corrupt one is named and nothing is written.
    Files that are not volumes (by name) are not inputs."""
    data, model = trained
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data / "testA" / "ing00.nii.gz", folder / "a01.nii.gz")
    (folder / "b02.nii.gz").write_bytes(b"not a gzip stream")
    (folder / "notes.txt").write_text("not a volume")
    out = tmp_path / "out"
    _refused(_translate(model, folder, out), "b02.nii.gz")
    assert not out.exists() or not any(out.iterdir())
    (folder / "b02.nii.gz").unlink()
    done = _translate(model, folder, out)
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["a01.nii.gz"]  # notes.txt is no input
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    _refused(_translate(model, empty, tmp_path / "o2"), str(empty), "no volumes")


def test_output_names_that_are_not_volumes_are_refused_before_work(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    source = data / "testA" / "ing00.nii.gz"
    _refused(_translate(model, source, tmp_path / "newdir"), "not a volume file name", "existing folder")
    _refused(_translate(model, source, tmp_path / "x.nii.gz", "--direction", "A2C"), "A2B")
    # a .mhd output writes a .raw data file beside it: an existing one is refused too
    (tmp_path / "m.raw").write_bytes(b"old")
    _refused(_translate(model, source, tmp_path / "m.mhd"), str(tmp_path / "m.raw"), "--force")
    assert not (tmp_path / "m.mhd").exists()


# ------------------------------------------------------------------------------------------ plan

PLAN_NETS = ["--set", "model.width=4", "--set", "model.n_blocks=1", "--set", "model.d_width=4", "--set", "model.d_layers=2"]


def test_plan_trains_on_the_patch_and_translates_with_the_window() -> None:
    result = runner.invoke(app, ["plan", "--shape", "30", "30", "30", *PLAN_NETS, "--set", "data.patch=[16,16,16]", "--set", "inference.window=[24,24,24]"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # undo the console's line wrapping
    assert "training step: batch 1 of 16 x 16 x 16" in text, text
    assert "sliding windows of 24 x 24 x 24" in text, text
    same = runner.invoke(app, ["plan", "--shape", "30", "30", "30", *PLAN_NETS, "--set", "data.patch=[16,16,16]"])
    flat = " ".join(same.output.split())
    assert "training step: batch 1 of 16 x 16 x 16" in flat and "sliding windows of 16 x 16 x 16" in flat, flat


def test_plan_plans_a_window_below_the_critics_minimum() -> None:
    """A window only the generators must accept (8³ here; the critic needs 12³ with 2 layers, a training patch too)
    is planned as a window; a window the generators cannot take is refused."""
    result = runner.invoke(app, ["plan", "--shape", "30", "30", "30", *PLAN_NETS, "--set", "data.patch=[16,16,16]", "--set", "inference.window=[8,8,8]"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "training step: batch 1 of 16 x 16 x 16" in text and "sliding windows of 8 x 8 x 8" in text and "sliding windows of 16" not in text, text
    bad = runner.invoke(app, ["plan", "--shape", "30", "30", "30", *PLAN_NETS, "--set", "inference.window=[10,12,12]"])
    _refused(bad, "window (10, 12, 12)", "multiple of (4, 4, 4)")


# ------------------------------------------------------------------------------ data and help


def test_brain_volumes_preset_names_the_option_and_the_presets(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "brain-volumes", "-o", str(tmp_path / "v"), "--preset", "small"])
    _refused(result, "--preset 'small'", "'default'", "'full'")
    assert "--size" not in result.output and not (tmp_path / "v").exists()


def test_brain_volumes_without_a_test_set(tmp_path: Path) -> None:
    pytest.importorskip("nilearn")
    out = tmp_path / "v"
    result = runner.invoke(app, ["data", "brain-volumes", "-o", str(out), "--subjects", "1", "--test-subjects", "0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "trainA", "trainB"]
    assert "no test set" in result.output
    slices = runner.invoke(app, ["data", "brain-slices", "-o", str(tmp_path / "s"), "--test-subjects", "0"])
    _refused(slices, "--test-subjects 0", "brain-slices")


def _help_of(command: str, param: str) -> str:
    group = typer.main.get_command(app)
    return next(p.help for p in group.commands[command].params if p.name == param)  # type: ignore[attr-defined]


def test_help_texts_name_the_volume_options() -> None:
    for param in ("subjects", "test_subjects"):
        text = _help_of("data", param)
        assert "brain-slices" in text and "brain-volumes" in text, text
    assert "0: no testA/testB" in _help_of("data", "test_subjects")
    assert "trainA/" in _help_of("train", "data") and "CycleGAN" in _help_of("train", "data")
    assert "cyclegan (volumes" in _help_of("train", "family")
    assert "existing folder" in _help_of("translate", "output")
