"""Cropping volume data sets: boxes on each axis's own size, world positions kept, pairing, atomic output."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from gansim.data.volume_prepare import crop, foreground_box, prepare_dataset
from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.volumes import read_volume

SPACING = (0.8, 1.0, 1.7)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def oblique_affine() -> np.ndarray:
    """Axes i -> P, j -> S, k -> R (a permutation with a flip), spacing (0.8, 1.0, 1.7) mm, rotated 15° about x and 25° about z."""
    cols = np.array([[0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=float).T
    aff = np.eye(4)
    aff[:3, :3] = _rotation(2, 25.0) @ _rotation(0, 15.0) @ cols @ np.diag(SPACING)
    aff[:3, 3] = (-20.0, 35.5, 12.25)
    return aff


def save(path: Path, arr: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(arr.astype(np.float32), affine)
    img.set_sform(affine, code=2)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    nib.save(img, str(path))
    return path


def canonical_shape(file_shape: tuple[int, ...], affine: np.ndarray) -> list[int]:
    """The RAS+ order of a file-order shape (which canonical axis each file axis becomes)."""
    out = [0, 0, 0]
    for i, axis in enumerate(nib.orientations.io_orientation(affine)[:, 0]):
        out[int(axis)] = file_shape[i]
    return out


# file-order boxes of the synthetic pair (A's and B's foreground overlap but differ) and its landmark
SHAPE = (20, 18, 14)
BOX_A = (slice(4, 12), slice(5, 13), slice(3, 9))
BOX_B = (slice(6, 15), slice(3, 11), slice(4, 10))
LANDMARK = (7, 8, 5)


def make_pair(root: Path, split: str, name: str, affine: np.ndarray, shape=SHAPE, box_a=BOX_A, box_b=BOX_B, landmark=LANDMARK) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    a[box_a], b[box_b] = 100.0, 50.0
    a[landmark], b[landmark] = 1000.0, 500.0
    save(root / f"{split}A" / name, a, affine)
    save(root / f"{split}B" / name, b, affine)
    return a, b


# ------------------------------------------------------------------------------- boxes and crops


@pytest.mark.parametrize("shape", [(10, 7, 16), (16, 7, 10), (9, 12, 9)], ids=["X<Z", "X>Z", "X=Z"])
def test_foreground_box_uses_each_axis_own_size(shape: tuple[int, int, int]) -> None:
    """The DCAN cropper took the Z size for X (wrong when X != Z, IndexError when X < Z)."""
    data = np.zeros(shape, np.float32)
    lo, hi = np.array([1, 2, 3]), np.array(shape) - np.array([2, 1, 1])
    data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 5.0
    data[lo[0], lo[1] + 1, hi[2] - 1] = 9.0
    got_lo, got_hi = foreground_box(data)
    np.testing.assert_array_equal(got_lo, lo)
    np.testing.assert_array_equal(got_hi, hi)
    # the box reaching the volume's last voxel on every axis
    full = np.zeros(shape, np.float32)
    full[0, 0, 0] = full[-1, -1, -1] = 1.0
    np.testing.assert_array_equal(foreground_box(full)[1], shape)


def test_foreground_box_threshold_and_empty() -> None:
    data = np.zeros((8, 9, 10), np.float32)
    data[2:4, 3:5, 4:6] = 10.0
    data[6, 7, 8] = 0.5  # dim (5 % of the tissue, as background noise): below Otsu's threshold
    lo, hi = foreground_box(data)
    np.testing.assert_array_equal(lo, [2, 3, 4])
    np.testing.assert_array_equal(hi, [4, 5, 6])
    np.testing.assert_array_equal(foreground_box(data, threshold=0.1)[1], [7, 8, 9])  # a given threshold counts it
    with pytest.raises(DataError, match=r"vol\.nii: constant volume"):
        foreground_box(np.zeros((4, 4, 4)), source="vol.nii")
    with pytest.raises(DataError, match="constant volume"):
        foreground_box(np.full((4, 4, 4), 3.0))
    with pytest.raises(DataError, match="no voxel above"):
        foreground_box(data, threshold=20.0)
    with pytest.raises(DataError, match="3-D"):
        foreground_box(np.ones((4, 4)))


def test_foreground_box_is_the_head_under_rician_background_noise() -> None:
    """An unmasked MR magnitude image: Rician noise of 2 % of the tissue signal fills the background,
    so many background voxels lie above a fixed 1 % of the maximum; the box must still be the head's."""
    rng = np.random.default_rng(4)
    shape = (40, 44, 36)
    grid = np.indices(shape).astype(np.float64)
    centre = np.array([20.0, 22.0, 18.0])[:, None, None, None]
    radii = np.array([12.0, 15.0, 10.0])[:, None, None, None]
    head = (((grid - centre) / radii) ** 2).sum(axis=0) <= 1.0
    signal = np.where(head, 1000.0, 0.0)
    sigma = 20.0  # 2 % of the tissue signal
    noisy = np.hypot(signal + rng.normal(0.0, sigma, shape), rng.normal(0.0, sigma, shape))
    assert (noisy[~head] > 0.01 * np.percentile(noisy, 99.9)).mean() > 0.5  # a 1 % threshold would call most of the air foreground
    lo, hi = foreground_box(noisy)
    idx = np.argwhere(head)
    np.testing.assert_array_equal(lo, idx.min(axis=0))
    np.testing.assert_array_equal(hi, idx.max(axis=0) + 1)


def test_crop_keeps_world_coordinates(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).uniform(1, 10, SHAPE).astype(np.float32)
    vol = read_volume(save(tmp_path / "v.nii.gz", arr, oblique_affine()))
    lo, hi = np.array([2, 3, 1]), np.array([9, 12, 15])
    data, aff = crop(vol, lo, hi)
    assert data.shape == (7, 9, 14)
    idx = np.indices(data.shape).reshape(3, -1)
    np.testing.assert_allclose(aff[:3, :3] @ idx + aff[:3, 3:4], vol.affine[:3, :3] @ (idx + lo[:, None]) + vol.affine[:3, 3:4], atol=1e-9)
    np.testing.assert_array_equal(data, vol.data[2:9, 3:12, 1:15])
    for bad_lo, bad_hi in [((0, 0, 0), (99, 5, 5)), ((3, 0, 0), (3, 5, 5)), ((-1, 0, 0), (5, 5, 5))]:
        with pytest.raises(DataError, match=r"v\.nii\.gz: crop box"):
            crop(vol, bad_lo, bad_hi)


# --------------------------------------------------------------------------------- prepare


def test_prepare_keeps_landmark_world_position_and_crops_union(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    aff = oblique_affine()
    a, b = make_pair(root, "train", "ing01.nii.gz", aff)
    # a test pair whose union box, grown by the margin, is clipped at both ends of axis i
    make_pair(root, "test", "ing02.nii.gz", aff, box_a=(slice(1, 19), slice(8, 10), slice(6, 8)), box_b=(slice(1, 19), slice(8, 10), slice(6, 8)), landmark=(10, 9, 7))
    summary = prepare_dataset(root, out, margin_vox=2, multiple=(4, 8, 16))

    # union of the A (4:12, 5:13, 3:9) and B (6:15, 3:11, 4:10) boxes, 2 voxels more on each side
    expected = a[2:17, 1:15, 1:12]
    world = (aff @ [*LANDMARK, 1.0])[:3]
    for side, arr in (("A", a), ("B", b)):
        img = nib.load(str(out / f"train{side}" / "ing01.nii.gz"))  # same name: no 'ing01' -> '01'
        got = np.asarray(img.dataobj)
        np.testing.assert_array_equal(got, arr[2:17, 1:15, 1:12])
        peak = np.unravel_index(int(np.argmax(got)), got.shape)
        np.testing.assert_allclose((img.affine @ [*peak, 1.0])[:3], world, atol=1e-4)  # float32 srow
        assert (int(img.header["sform_code"]), int(img.header["qform_code"])) == (2, 1)
        np.testing.assert_allclose(img.header.get_zooms(), SPACING, rtol=1e-6)
    assert expected.shape == (15, 14, 11)
    test_img = nib.load(str(out / "testA" / "ing02.nii.gz"))
    assert test_img.shape == (20, 6, 6)  # i: 1-2 .. 19+2 clipped to 0..20
    peak = np.unravel_index(int(np.argmax(np.asarray(test_img.dataobj))), test_img.shape)
    np.testing.assert_allclose((test_img.affine @ [*peak, 1.0])[:3], (aff @ [10, 9, 7, 1.0])[:3], atol=1e-4)

    train = [f for f in summary["files"] if f["split"] == "train"]
    assert [(f["side"], f["name"], f["pair"]) for f in train] == [("A", "ing01.nii.gz", "ing01.nii.gz"), ("B", "ing01.nii.gz", "ing01.nii.gz")]
    assert train[0]["shape"] == canonical_shape((15, 14, 11), aff) == list(read_volume(out / "trainA" / "ing01.nii.gz").shape)
    assert train[0]["original_shape"] == canonical_shape(SHAPE, aff)
    assert train[0]["box_lo"] == train[1]["box_lo"]
    max_file = (20, 14, 11)
    assert summary["max_shape"] == canonical_shape(max_file, aff)
    assert summary["smallest_valid_shape"] == [-(-s // m) * m for s, m in zip(summary["max_shape"], (4, 8, 16))]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop", "data"]  # no temporary left


def test_prepare_margin_in_mm(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    aff = oblique_affine()
    a, _ = make_pair(root, "train", "s.nii.gz", aff)
    summary = prepare_dataset(root, out, margin_mm=2.0)
    # 2 mm is 3 voxels of 0.8 mm, 2 of 1.0 mm and 2 of 1.7 mm along the file's axes i, j, k
    assert summary["files"][0]["margin_vox"] == canonical_shape((3, 2, 2), aff)
    np.testing.assert_array_equal(np.asarray(nib.load(str(out / "trainA" / "s.nii.gz")).dataobj), a[1:18, 1:15, 1:12])


def test_prepare_unpaired_crops_each_by_its_own_box(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    aff = oblique_affine()
    a, b = make_pair(root, "train", "x.nii.gz", aff)
    save(root / "trainA" / "y.nii.gz", a, aff)  # 2 A, 1 B
    summary = prepare_dataset(root, out, margin_vox=1, pairing="unpaired")
    np.testing.assert_array_equal(np.asarray(nib.load(str(out / "trainA" / "x.nii.gz")).dataobj), a[3:13, 4:14, 2:10])
    np.testing.assert_array_equal(np.asarray(nib.load(str(out / "trainB" / "x.nii.gz")).dataobj), b[5:16, 2:12, 3:11])
    assert [f["pair"] for f in summary["files"]] == [None, None, None]


def test_prepare_mha_keeps_world_positions(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    a = np.zeros(SHAPE, np.float32)
    a[BOX_A] = 100.0
    a[LANDMARK] = 1000.0
    image = sitk.GetImageFromArray(np.ascontiguousarray(a.transpose(2, 1, 0)))
    image.SetSpacing(SPACING)
    image.SetOrigin((5.0, -7.0, 20.0))
    image.SetDirection(tuple((_rotation(1, 20.0) @ _rotation(2, -30.0) @ np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]])).ravel()))
    for side in "AB":
        (root / f"train{side}").mkdir(parents=True)
        sitk.WriteImage(image, str(root / f"train{side}" / "m.mha"))
    prepare_dataset(root, out, margin_vox=0)
    back = sitk.ReadImage(str(out / "trainA" / "m.mha"))
    got = sitk.GetArrayFromImage(back).transpose(2, 1, 0)
    np.testing.assert_array_equal(got, a[4:12, 5:13, 3:9])
    assert back.GetSpacing() == pytest.approx(SPACING, rel=1e-12)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-12)
    np.testing.assert_allclose(back.TransformIndexToPhysicalPoint((3, 3, 2)), image.TransformIndexToPhysicalPoint(LANDMARK), atol=1e-9)


def test_prepare_csv_pairing_rewrites_the_csv(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    aff = oblique_affine()
    a, b = make_pair(root, "train", "p.nii.gz", aff)
    save(root / "trainB" / "q.nii.gz", b, aff)
    save(root / "trainA" / "r.nii.gz", a, aff)
    make_pair(root, "test", "t1.nii.gz", aff)
    make_pair(root, "test", "t2.nii.gz", aff)
    # one csv for both splits (a split column), named by data.pairs_csv relative to the data set
    (root / "pairs.csv").write_text("split,A,B\ntrain,r.nii.gz,trainB/q.nii.gz\ntrain,p.nii.gz,p.nii.gz\ntest,t1.nii.gz,t2.nii.gz\ntest,t2.nii.gz,t1.nii.gz\n")
    with pytest.raises(ConfigError, match="pairs csv"):
        prepare_dataset(root, out, pairing="csv")
    summary = prepare_dataset(root, out, pairing="csv", pairs_csv="pairs.csv")
    assert [(f["split"], f["name"], f["pair"]) for f in summary["files"]] == [
        ("train", "r.nii.gz", "q.nii.gz"), ("train", "q.nii.gz", "r.nii.gz"), ("train", "p.nii.gz", "p.nii.gz"), ("train", "p.nii.gz", "p.nii.gz"),
        ("test", "t1.nii.gz", "t2.nii.gz"), ("test", "t2.nii.gz", "t1.nii.gz"), ("test", "t2.nii.gz", "t1.nii.gz"), ("test", "t1.nii.gz", "t2.nii.gz")]
    assert (out / "pairs.csv").read_text().splitlines() == [
        "split,A,B", "train,trainA/r.nii.gz,trainB/q.nii.gz", "train,trainA/p.nii.gz,trainB/p.nii.gz",
        "test,testA/t1.nii.gz,testB/t2.nii.gz", "test,testA/t2.nii.gz,testB/t1.nii.gz"]
    # the rewritten csv pairs the cropped data set the same way (what `gansim train OUT` reads)
    from gansim.io.volumes import find_volume_sets, pair_volumes

    sets = find_volume_sets(out)
    again = pair_volumes(sets["test"]["A"], sets["test"]["B"], "csv", out / "pairs.csv", split="test")
    assert [(x.name, y.name) for x, y in again] == [("t1.nii.gz", "t2.nii.gz"), ("t2.nii.gz", "t1.nii.gz")]
    # without a split column the csv pairs the training split and the test split pairs by name
    (root / "train_only.csv").write_text("A,B\nr.nii.gz,q.nii.gz\np.nii.gz,p.nii.gz\n")
    summary = prepare_dataset(root, out, pairing="csv", pairs_csv=root / "train_only.csv", force=True)
    assert [(f["name"], f["pair"]) for f in summary["files"] if f["split"] == "test"][:2] == [("t1.nii.gz", "t1.nii.gz"), ("t1.nii.gz", "t1.nii.gz")]
    bad = root / "bad_split.csv"
    bad.write_text("split,A,B\nvalidation,r.nii.gz,q.nii.gz\n")
    with pytest.raises(DataError, match=r"bad_split\.csv, line 2, column 'split': 'validation'"):
        prepare_dataset(root, out, pairing="csv", pairs_csv=bad, force=True)


def test_smallest_valid_shape_respects_the_minimum(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    make_pair(root, "train", "s1.nii.gz", oblique_affine())
    summary = prepare_dataset(root, out, multiple=4, minimum=(32, 8, 8))
    # the cropped pair (union box and the default 4-voxel margin) is 14×19×17: raised to the minimum on axis 0,
    # then every axis rounded up to the multiple
    assert summary["max_shape"] == [14, 19, 17] and summary["smallest_valid_shape"] == [32, 20, 20]


def test_prepare_force_and_nothing_partial(tmp_path: Path) -> None:
    root, out = tmp_path / "data", tmp_path / "crop"
    aff = oblique_affine()
    make_pair(root, "train", "s1.nii.gz", aff)
    out.mkdir()
    prepare_dataset(root, out)  # an empty folder is fine
    (out / "old.txt").write_text("from before")
    with pytest.raises(OutputExistsError, match="crop: already exists"):
        prepare_dataset(root, out)
    assert (out / "old.txt").exists()
    prepare_dataset(root, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["trainA", "trainB"]

    # an empty B volume in the second pair: an error, and the previous output stays as it was
    save(root / "trainA" / "s2.nii.gz", np.ones(SHAPE) * np.arange(SHAPE[2]), aff)
    save(root / "trainB" / "s2.nii.gz", np.zeros(SHAPE), aff)
    with pytest.raises(DataError, match=r"trainB/s2\.nii\.gz: the volume is all zeros: nothing to learn or translate"):
        prepare_dataset(root, out, force=True)
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["s1.nii.gz"]
    with pytest.raises(DataError, match="nothing to learn"):
        prepare_dataset(root, tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop", "data"]  # neither a partial 'fresh' nor temporaries


def test_prepare_refusals(tmp_path: Path) -> None:
    root = tmp_path / "data"
    aff = oblique_affine()
    make_pair(root, "train", "s1.nii.gz", aff)
    save(root / "trainA" / "s2.nii.gz", np.arange(np.prod(SHAPE)).reshape(SHAPE), aff)
    with pytest.raises(DataError, match=r"2 A volumes but 1 B volumes"):
        prepare_dataset(root, tmp_path / "o")
    shifted = aff.copy()
    shifted[0, 3] += 0.5  # half a millimetre off: not co-registered
    save(root / "trainB" / "s2.nii.gz", np.arange(np.prod(SHAPE)).reshape(SHAPE), shifted)
    with pytest.raises(DataError, match="paired volumes on different grids"):
        prepare_dataset(root, tmp_path / "o")
    with pytest.raises(ConfigError, match="is or holds the input data folder"):
        prepare_dataset(root, root, force=True)
    with pytest.raises(ConfigError, match="is or holds the input data folder"):
        prepare_dataset(root, tmp_path, force=True)
    with pytest.raises(ConfigError, match="inside the input's trainA"):
        prepare_dataset(root, root / "trainA" / "crop")
    with pytest.raises(ConfigError, match="multiple"):
        prepare_dataset(root, tmp_path / "o", multiple=(4, 0, 4))
    with pytest.raises(ConfigError, match="margin_vox"):
        prepare_dataset(root, tmp_path / "o", margin_vox=-1)
    with pytest.raises(ConfigError, match="pairing"):
        prepare_dataset(root, tmp_path / "o", pairing="order")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        prepare_dataset(root, tmp_path / "file")
    assert not (tmp_path / "o").exists()
