"""PACGAN-layout slice sets: read/write round trips, PACGAN's own files, every error, downsampling, scaling."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, DataError, ModelFileError, OutputExistsError
from gansim.io.slices import (
    IntensityScaling,
    SliceSet,
    downsample,
    find_image_file,
    fit_intensity_scaling,
    read_slice_set,
    write_slice_set,
)


def _images(n: int = 5, c: int = 1, h: int = 8, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 30.0, (n, c, h, w)).astype(np.float32)


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _pacgan_folder(folder: Path, n: int = 6, sizes: tuple[int, ...] = (4, 8, 16), seed: int = 1) -> np.ndarray:
    """A folder as PACGAN's preprocessing writes it: Real<S>x<S>.nii.gz [S, S, 1, N], affine eye(4), values in [-1, 1].

    Returns the largest file's NIfTI array [W, H, 1, N].
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for s in sizes:
        arrays[s] = rng.uniform(-1.0, 1.0, (s, s, 1, n)).astype(np.float32)
        nib.save(nib.Nifti1Image(arrays[s], np.eye(4)), str(folder / f"Real{s}x{s}.nii.gz"))
    rows = ["ID,Label,Subject_ID"] + [f"{i},{i % 2},S{i // 2:03d}" for i in reversed(range(n))]  # any row order
    _write_csv(folder / "labels.csv", rows)
    return arrays[max(sizes)]


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("channels", [1, 3])
def test_write_read_round_trip(tmp_path: Path, channels: int) -> None:
    images = _images(7, channels, 6, 10)
    labels = np.array([0, 1, 2, 1, 0, 2, 1])
    subjects = np.array([f"sub-{i // 2}" for i in range(7)])
    image_path, csv_path = write_slice_set(tmp_path / "set" / "slices.nii.gz", images, labels, subjects=subjects, spacing_mm=(0.75, 1.5), description="test set")
    assert csv_path == tmp_path / "set" / "labels.csv"
    s = read_slice_set(tmp_path / "set", require_subjects=True)
    assert isinstance(s, SliceSet)
    assert s.images.dtype == np.float32 and s.images.shape == (7, channels, 6, 10)
    np.testing.assert_array_equal(s.images, images)
    np.testing.assert_array_equal(s.labels, labels)
    assert s.labels.dtype == np.int64
    np.testing.assert_array_equal(s.ids, np.arange(7))
    np.testing.assert_array_equal(s.subjects, subjects)
    assert s.spacing_mm == (0.75, 1.5)
    assert s.source == str(image_path) and len(s) == 7

    img = nib.load(str(image_path))
    hdr = img.header
    assert img.shape == (10, 6, channels, 7)  # [W, H, C, N]
    assert hdr.get_data_dtype() == np.float32
    assert hdr.get_xyzt_units()[0] == "mm"
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
    np.testing.assert_allclose(img.affine, np.diag([0.75, 1.5, 1.0, 1.0]))
    np.testing.assert_allclose(hdr.get_zooms(), (0.75, 1.5, 1.0, 1.0))
    assert hdr["descrip"].tobytes().rstrip(b"\0") == b"test set"
    assert float(hdr["cal_min"]) == images.min() and float(hdr["cal_max"]) == images.max()


def test_write_without_labels_and_read_without_labels(tmp_path: Path) -> None:
    images = _images(3)
    image_path, csv_path = write_slice_set(tmp_path / "gen.nii", images)
    assert csv_path is None and not (tmp_path / "labels.csv").exists()
    s = read_slice_set(image_path, require_labels=False)
    assert s.labels is None and s.subjects is None and s.spacing_mm == (1.0, 1.0)
    np.testing.assert_array_equal(s.images, images)


def test_ids_give_the_csv_row_order(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1])
    _, csv_path = write_slice_set(tmp_path / "x.nii.gz", _images(4), labels, ids=np.array([2, 0, 3, 1]), labels_path=tmp_path / "lab.csv")
    assert csv_path.read_text().split() == ["ID,Label", "2,4", "0,3", "3,1", "1,1"]
    s = read_slice_set(tmp_path / "x.nii.gz", tmp_path / "lab.csv")
    np.testing.assert_array_equal(s.labels, labels)


def test_axis_order_matches_the_nifti(tmp_path: Path) -> None:
    """images[n, c, h, w] == nifti[w, h, c, n], reading PACGAN's files and writing ours."""
    w, h, c, n = 5, 4, 3, 2
    nifti = np.arange(w * h * c * n, dtype=np.float32).reshape(w, h, c, n)  # every voxel differs
    nib.save(nib.Nifti1Image(nifti, np.eye(4)), str(tmp_path / "a.nii.gz"))
    s = read_slice_set(tmp_path / "a.nii.gz", require_labels=False)
    assert s.images.shape == (n, c, h, w)
    for idx in [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3), (1, 0, 3, 0)]:
        nn, cc, hh, ww = idx
        assert s.images[nn, cc, hh, ww] == nifti[ww, hh, cc, nn]
    write_slice_set(tmp_path / "out" / "b.nii.gz", s.images)
    np.testing.assert_array_equal(nib.load(str(tmp_path / "out" / "b.nii.gz")).get_fdata(dtype=np.float32), nifti)


def test_reads_pacgan_folder_picking_the_largest_pyramid_file(tmp_path: Path) -> None:
    nifti = _pacgan_folder(tmp_path / "ADNI_train", n=6, sizes=(4, 8, 16))
    assert find_image_file(tmp_path / "ADNI_train") == tmp_path / "ADNI_train" / "Real16x16.nii.gz"
    s = read_slice_set(tmp_path / "ADNI_train", require_subjects=True)
    assert s.images.shape == (6, 1, 16, 16)
    np.testing.assert_array_equal(s.images, nifti.transpose(3, 2, 1, 0))
    np.testing.assert_array_equal(s.labels, np.arange(6) % 2)  # ordered by image index, not row order
    np.testing.assert_array_equal(s.subjects, [f"S{i // 2:03d}" for i in range(6)])
    assert s.spacing_mm == (1.0, 1.0)
    assert fit_intensity_scaling(s.images, "auto", None, s.source).mode == "none"
    # an explicit file name inside the folder
    small = read_slice_set(tmp_path / "ADNI_train", image_file="Real8x8.nii.gz")
    assert small.images.shape == (6, 1, 8, 8)


def test_three_d_nifti_is_one_channel(tmp_path: Path) -> None:
    nifti = np.random.default_rng(3).normal(size=(6, 5, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(nifti, np.eye(4)), str(tmp_path / "only.nii"))
    _write_csv(tmp_path / "labels.csv", ["ID,Label"] + [f"{i},0" for i in range(4)])
    s = read_slice_set(tmp_path)
    assert s.images.shape == (4, 1, 5, 6) and s.subjects is None
    np.testing.assert_array_equal(s.images[:, 0], nifti.transpose(2, 1, 0))


def test_header_spacing_units_and_missing_zoom(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((4, 4, 1, 2), np.float32), np.eye(4))
    img.header.set_zooms((0.002, 0.003, 1.0, 1.0))
    img.header.set_xyzt_units(xyz="meter")
    nib.save(img, str(tmp_path / "m.nii"))
    assert read_slice_set(tmp_path / "m.nii", require_labels=False).spacing_mm == pytest.approx((2.0, 3.0))
    img = nib.Nifti1Image(np.zeros((4, 4, 1, 2), np.float32), np.eye(4))
    img.header["pixdim"][1:3] = 0.0  # a header without pixel sizes
    nib.save(img, str(tmp_path / "z.nii"))
    assert read_slice_set(tmp_path / "z.nii", require_labels=False).spacing_mm == (1.0, 1.0)


# --------------------------------------------------------------------------- read errors


def test_find_image_file_errors_list_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data folder not found"):
        find_image_file(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no \.nii / \.nii\.gz file.*notes\.txt"):
        find_image_file(tmp_path)
    for name in ("a.nii.gz", "b.nii"):
        nib.save(nib.Nifti1Image(np.zeros((2, 2, 1, 1), np.float32), np.eye(4)), str(tmp_path / name))
    with pytest.raises(DataError, match=r"2 NIfTI files.*a\.nii\.gz, b\.nii"):
        find_image_file(tmp_path)
    with pytest.raises(DataError, match=r"c\.nii\.gz: image file not found.*a\.nii\.gz"):
        find_image_file(tmp_path, "c.nii.gz")
    for name in ("Real8x8.nii.gz", "Real8x8.nii"):
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 1, 1), np.float32), np.eye(4)), str(tmp_path / name))
    with pytest.raises(DataError, match="Real8x8.nii and Real8x8.nii.gz"):
        find_image_file(tmp_path)


def test_missing_file_lists_the_folder(tmp_path: Path) -> None:
    (tmp_path / "Real64x64.nii.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"Real256x256\.nii\.gz: not found.*Real64x64\.nii\.gz"):
        read_slice_set(tmp_path / "Real256x256.nii.gz")


def test_not_a_nifti(tmp_path: Path) -> None:
    (tmp_path / "junk.nii.gz").write_bytes(b"this is not a NIfTI file at all" * 20)
    with pytest.raises(DataError, match=r"junk\.nii\.gz: not a readable NIfTI"):
        read_slice_set(tmp_path / "junk.nii.gz", require_labels=False)
    (tmp_path / "t.nii").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match=r"t\.nii: not a readable NIfTI"):
        read_slice_set(tmp_path / "t.nii", require_labels=False)


def test_truncated_nifti(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((16, 16, 1, 8), np.float32), np.eye(4)), str(tmp_path / "full.nii"))
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.nii: cannot read the image data"):
        read_slice_set(tmp_path / "cut.nii", require_labels=False)


@pytest.mark.parametrize("shape", [(4, 4, 2, 3), (4, 4), (4, 4, 1, 2, 2)])
def test_bad_shapes(tmp_path: Path, shape: tuple[int, ...]) -> None:
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), str(tmp_path / "s.nii"))
    with pytest.raises(DataError, match=r"s\.nii: .*" + r"\[" + ", ".join(map(str, shape)) + r"\]"):
        read_slice_set(tmp_path / "s.nii", require_labels=False)


def test_nan_names_the_first_bad_slice(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 1, 6), np.float32)
    data[1, 2, 0, 4] = np.nan
    data[0, 0, 0, 5] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "nan.nii"))
    with pytest.raises(DataError, match=r"nan\.nii: slice 4 \(of 6; 2 slices in all\) holds NaN or Inf"):
        read_slice_set(tmp_path / "nan.nii", require_labels=False)


@pytest.fixture
def four_slices(tmp_path: Path) -> Path:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 1, 4), np.float32), np.eye(4)), str(tmp_path / "img.nii.gz"))
    return tmp_path


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (["Id,Class", "0,1"], r"labels\.csv: missing column\(s\) ID, Label; the columns found are \['Id', 'Class'\]"),
        (["ID,Label", "0,0", "1,a", "2,0", "3,0"], r"labels\.csv, line 3, column 'Label': 'a' is not a non-negative integer"),
        (["ID,Label", "0,0", "1,1.5", "2,0", "3,0"], r"line 3, column 'Label': '1\.5'"),
        (["ID,Label", "0,0", "1,0", "2,-1", "3,0"], r"line 4, column 'Label': '-1'"),
        (["ID,Label", "0,0", "x,0"], r"line 3, column 'ID': 'x' is not an integer"),
        (["ID,Label", "0,0", "4,0"], r"line 3, column 'ID': 4 is outside 0\.\.3 \(.*img\.nii\.gz holds 4 slices\)"),
        (["ID,Label", "0,0", "-1,0"], r"line 3, column 'ID': -1 is outside 0\.\.3"),
        (["ID,Label", "0,0", "1,0", "0,1"], r"line 4, column 'ID': ID 0 is also on line 2"),
        (["ID,Label", "0,0", "2,1"], r"labels\.csv: 2 of the 4 slices of img\.nii\.gz have no row \(IDs 1, 3\)"),
        (["ID,Label", "0,0", "1"], r"labels\.csv, line 3: 1 fields, the header has 2"),
        ([""], r"labels\.csv: empty"),
    ],
)
def test_labels_csv_errors(four_slices: Path, lines: list[str], pattern: str) -> None:
    _write_csv(four_slices / "labels.csv", lines)
    with pytest.raises(DataError, match=pattern):
        read_slice_set(four_slices)


def test_labels_csv_accepts_pandas_style_files(four_slices: Path) -> None:
    # a BOM, an unnamed index column, float-formatted integers, spaces, extra columns, shuffled rows
    (four_slices / "labels.csv").write_text("\ufeff,ID, Label ,Subject_ID,Age\n0,3, 1.0 ,s2,70\n1,0,0,s1,71\n2,2,1,s2,70\n\n3,1,0,s1,71\n", encoding="utf-8")
    s = read_slice_set(four_slices, require_subjects=True)
    np.testing.assert_array_equal(s.labels, [0, 0, 1, 1])
    np.testing.assert_array_equal(s.subjects, ["s1", "s1", "s2", "s2"])


def test_subject_requirements(four_slices: Path) -> None:
    _write_csv(four_slices / "labels.csv", ["ID,Label"] + [f"{i},0" for i in range(4)])
    assert read_slice_set(four_slices).subjects is None
    with pytest.raises(DataError, match=r"labels\.csv: missing column\(s\) Subject_ID"):
        read_slice_set(four_slices, require_subjects=True)
    _write_csv(four_slices / "labels.csv", ["ID,Label,Subject_ID", "0,0,a", "1,0,", "2,0,b", "3,0,b"])
    with pytest.raises(DataError, match=r"line 3, column 'Subject_ID': empty"):
        read_slice_set(four_slices, require_subjects=True)
    assert read_slice_set(four_slices).subjects is None  # incomplete and not required: not used


def test_missing_labels(four_slices: Path) -> None:
    with pytest.raises(DataError, match=r"labels\.csv: labels file not found.*img\.nii\.gz"):
        read_slice_set(four_slices)
    with pytest.raises(DataError, match=r"other\.csv: labels file not found"):
        read_slice_set(four_slices, four_slices / "other.csv", require_labels=False)
    assert read_slice_set(four_slices, require_labels=False).labels is None


def test_partial_labels_when_not_required_warn_and_give_none(four_slices: Path) -> None:
    _write_csv(four_slices / "labels.csv", ["ID,Label", "0,0", "2,1"])
    with pytest.warns(UserWarning, match=r"2 of the 4 slices .* no row"):
        s = read_slice_set(four_slices, require_labels=False)
    assert s.labels is None
    _write_csv(four_slices / "labels.csv", ["ID,Label", "0,0", "9,1"])  # rows are still checked
    with pytest.raises(DataError, match="9 is outside"):
        read_slice_set(four_slices, four_slices / "labels.csv", require_labels=False)
    # the default csv is optional when labels are not required: invalid, it is ignored with a warning
    with pytest.warns(UserWarning, match=r"9 is outside.*labels beside img\.nii\.gz are ignored"):
        assert read_slice_set(four_slices, require_labels=False).labels is None


# --------------------------------------------------------------------- write errors, force


def test_force_semantics_leave_both_files_untouched(tmp_path: Path) -> None:
    image_path, csv_path = write_slice_set(tmp_path / "a.nii.gz", _images(3), np.array([0, 1, 0]))
    before = (image_path.read_bytes(), csv_path.read_bytes())
    with pytest.raises(OutputExistsError, match=r"a\.nii\.gz: already exists"):
        write_slice_set(tmp_path / "a.nii.gz", _images(3, seed=5), np.array([1, 1, 1]))
    # the image is new but the csv exists: nothing is written
    with pytest.raises(OutputExistsError, match=r"labels\.csv: already exists"):
        write_slice_set(tmp_path / "b.nii.gz", _images(3, seed=5), np.array([1, 1, 1]))
    assert not (tmp_path / "b.nii.gz").exists()
    assert (image_path.read_bytes(), csv_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "labels.csv"]  # no temporaries left
    write_slice_set(tmp_path / "a.nii.gz", _images(3, seed=5), np.array([1, 1, 1]), force=True)
    s = read_slice_set(tmp_path)
    np.testing.assert_array_equal(s.labels, [1, 1, 1])
    np.testing.assert_array_equal(s.images, _images(3, seed=5))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"images": np.zeros((2, 8, 8), np.float32)}, DataError, r"shape \(2, 8, 8\); expected \(N, C, H, W\)"),
        ({"images": np.zeros((2, 2, 8, 8), np.float32)}, DataError, r"C = 1 or 3"),
        ({"images": np.full((2, 1, 4, 4), np.nan, np.float32)}, DataError, r"image 0 holds NaN"),
        ({"labels": np.array([0, 1])}, DataError, r"labels: shape \(2,\); expected \(3,\)"),
        ({"labels": np.array([0.0, 0.5, 1.0])}, DataError, r"labels: non-integer"),
        ({"labels": np.array([0, -1, 1])}, DataError, r"labels: negative value -1"),
        ({"labels": np.array([0, 1, 1]), "ids": np.array([0, 0, 1])}, DataError, r"ids must be a permutation of 0\.\.2"),
        ({"ids": np.array([0, 1, 2])}, DataError, r"ids or subjects given without labels"),
        ({"labels": np.array([0, 1, 1]), "subjects": np.array(["a", "", "b"])}, DataError, r"subjects must be \(3,\) non-empty"),
        ({"path": "x.nii.bz2"}, ConfigError, r"must end in \.nii\.gz or \.nii"),
        ({"spacing_mm": (1.0, 0.0)}, ConfigError, r"spacing_mm"),
        ({"description": "x" * 80}, ConfigError, r"at most 79 ASCII"),
    ],
)
def test_write_errors(tmp_path: Path, kwargs: dict, error: type, pattern: str) -> None:
    args = {"path": "out.nii.gz", "images": _images(3)} | kwargs
    args["path"] = tmp_path / args["path"]
    with pytest.raises(error, match=pattern):
        write_slice_set(**args)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- downsample


def test_downsample_constant_identity_and_nearest_inverse() -> None:
    const = np.full((2, 3, 12, 12), 0.7, np.float32)
    for size in (6, 4, 3):  # integer factors 2, 3, 4: area averaging, exact
        out = downsample(const, size)
        assert out.shape == (2, 3, size, size) and out.dtype == np.float32
        np.testing.assert_array_equal(out, 0.7 * np.ones_like(out))
    np.testing.assert_allclose(downsample(const, 5), np.full((2, 3, 5, 5), 0.7, np.float32), rtol=1e-6)  # bilinear path

    x = _images(3, 3, 8, 8)
    same = downsample(x, 8)
    np.testing.assert_array_equal(same, x)
    assert same is not x

    up = x.repeat(2, axis=2).repeat(2, axis=3)  # nearest-neighbour 2x upsampling
    np.testing.assert_array_equal(downsample(up, 8), x)
    up3 = x.repeat(4, axis=2).repeat(4, axis=3)
    np.testing.assert_array_equal(downsample(up3, 8), x)


def test_downsample_is_antialiased() -> None:
    # a pixel checkerboard (the highest frequency) must average out, not alias into a pattern
    board = ((np.indices((16, 16)).sum(axis=0) % 2) * 2.0 - 1.0).astype(np.float32)[None, None]
    np.testing.assert_array_equal(downsample(board, 4), np.zeros((1, 1, 4, 4), np.float32))
    # factor 3.2: the antialias filter spans ~6 px of the board, leaving ~1e-3; plain bilinear leaves 0.64
    assert np.abs(downsample(board, 5)).max() < 0.05


def test_downsample_torch_and_errors() -> None:
    x = torch.from_numpy(_images(2, 1, 16, 16))
    out = downsample(x, 4)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (2, 1, 4, 4)
    torch.testing.assert_close(out, x.reshape(2, 1, 4, 4, 4, 4).double().mean(dim=(3, 5)).float())
    np.testing.assert_array_equal(downsample(x.numpy(), 4), out.numpy())
    assert downsample(np.ones((1, 1, 4, 4), np.int16), 2).dtype == np.float32
    with pytest.raises(ConfigError, match=r"size 32.*1\.\.16"):
        downsample(x, 32)
    with pytest.raises(ConfigError, match="size 0"):
        downsample(x, 0)
    with pytest.raises(DataError, match=r"shape \(16, 16\)"):
        downsample(x[0, 0], 4)


# ------------------------------------------------------------------------ intensity scaling


def test_range_scaling_round_trip() -> None:
    s = IntensityScaling("range", 0.0, 4095.0)
    x = np.random.default_rng(2).uniform(0.0, 4095.0, (4, 1, 8, 8)).astype(np.float32)
    y = s.forward(x)
    assert y.dtype == np.float32 and y.min() >= -1.0 and y.max() <= 1.0
    np.testing.assert_array_equal(s.forward(np.array([0.0, 4095.0, 2047.5])), [-1.0, 1.0, 0.0])
    # float32 tolerance of the data's magnitude: a few ulps of 4095
    np.testing.assert_allclose(s.inverse(y), x, rtol=0, atol=4 * np.spacing(np.float32(4095.0)))
    t = torch.from_numpy(x)
    torch.testing.assert_close(s.forward(t), torch.from_numpy(y), rtol=0, atol=4 * float(np.spacing(np.float32(1.0))))
    torch.testing.assert_close(s.inverse(s.forward(t)), t, rtol=0, atol=4 * float(np.spacing(np.float32(4095.0))))
    none = IntensityScaling("none")
    np.testing.assert_array_equal(none.forward(y), y)
    np.testing.assert_array_equal(none.inverse(y), y)


def test_scaling_dict_round_trip_and_errors() -> None:
    for s in (IntensityScaling("range", -5.5, 300.0), IntensityScaling("none")):
        assert IntensityScaling.from_dict(s.to_dict(), "m") == s
    assert IntensityScaling.from_dict({"mode": "none"}) == IntensityScaling("none")
    bad = [
        (None, "expected a mapping"),
        ({"mode": "log"}, "key 'mode' is 'log'"),
        ({"mode": "range", "lo": 0.0}, "key 'hi' missing"),
        ({"mode": "range", "lo": "0", "hi": 1.0}, "key 'lo' is '0'"),
        ({"mode": "range", "lo": 2.0, "hi": 1.0}, "lo < hi"),
        ({"mode": "range", "lo": 0.0, "hi": float("inf")}, "key 'hi' is inf"),
        ({"mode": "range", "lo": 0.0, "hi": 1.0, "gamma": 2}, r"unknown key\(s\) \['gamma'\]"),
    ]
    for d, pattern in bad:
        with pytest.raises(ModelFileError, match="model.json: .*" + pattern):
            IntensityScaling.from_dict(d, "model.json")
    with pytest.raises(ConfigError):
        IntensityScaling("range", 1.0, 1.0)


def test_fit_intensity_scaling_modes() -> None:
    unit = np.random.default_rng(4).uniform(-1.0, 1.0, (3, 1, 4, 4)).astype(np.float32)
    assert fit_intensity_scaling(unit, "auto", None, "f") == IntensityScaling("none")
    assert fit_intensity_scaling(unit, "none", None, "f") == IntensityScaling("none")
    raw = unit * 500.0 + 600.0
    s = fit_intensity_scaling(raw, "auto", None, "f")
    assert s == IntensityScaling("range", float(raw.min()), float(raw.max()))
    y = s.forward(raw)
    assert y.min() == -1.0 and y.max() == 1.0
    assert fit_intensity_scaling(torch.from_numpy(raw), "range", None, "f") == s
    assert fit_intensity_scaling(unit, "range", (0.0, 1000.0), "f") == IntensityScaling("range", 0.0, 1000.0)
    assert fit_intensity_scaling(unit, "auto", (0.0, 1000.0), "f") == IntensityScaling("range", 0.0, 1000.0)

    with pytest.raises(DataError, match=r"f: every intensity is 3.*give intensity_range"):
        fit_intensity_scaling(np.full((2, 1, 4, 4), 3.0), "range", None, "f")
    with pytest.raises(DataError, match="every intensity is 5"):
        fit_intensity_scaling(np.full((2, 1, 4, 4), 5.0), "auto", None, "f")
    assert fit_intensity_scaling(np.full((2, 1, 4, 4), 0.5), "auto", None, "f").mode == "none"
    with pytest.raises(DataError, match=r"f: intensities span 100\.\.1100, outside \[-1, 1\]"):
        fit_intensity_scaling(np.array([100.0, 1100.0]), "none", None, "f")
    with pytest.raises(DataError, match="NaN"):
        fit_intensity_scaling(np.array([0.0, np.nan]), "auto", None, "f")
    with pytest.raises(ConfigError, match="'none' with intensity_range"):
        fit_intensity_scaling(unit, "none", (0.0, 1.0), "f")
    with pytest.raises(ConfigError, match="expected finite lo < hi"):
        fit_intensity_scaling(unit, "range", (1.0, 0.0), "f")
    with pytest.raises(ConfigError, match="'auto', 'none' or 'range'"):
        fit_intensity_scaling(unit, "minmax", None, "f")  # type: ignore[arg-type]


def test_no_warning_on_complete_labels(tmp_path: Path) -> None:
    write_slice_set(tmp_path / "q.nii.gz", _images(2), np.array([0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_slice_set(tmp_path, require_labels=False)


def test_more_than_32767_slices_are_written_as_nifti2(tmp_path: Path) -> None:
    """NIfTI-1 keeps each dimension in 16 bits: a larger stack is written as NIfTI-2 and reads back the same."""
    n = 33_000
    images = np.random.default_rng(0).normal(size=(n, 1, 4, 4)).astype(np.float32)
    labels = np.arange(n) % 2
    write_slice_set(tmp_path / "big.nii.gz", images, labels)
    assert isinstance(nib.load(tmp_path / "big.nii.gz"), nib.Nifti2Image)
    back = read_slice_set(tmp_path / "big.nii.gz")
    np.testing.assert_array_equal(back.images, images)
    assert back.labels is not None and np.array_equal(back.labels, labels)
