"""3-D volumes: names, canonical orientation, header-true writing, SimpleITK formats, scaling, data set layout."""

from __future__ import annotations

import gzip
import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from gansim.errors import ConfigError, DataError, ModelFileError, OutputExistsError
from gansim.io.volumes import (
    VolumeScaling,
    find_volume_sets,
    foreground_mask,
    pair_volumes,
    read_volume,
    split_name,
    write_like,
)

_AXIS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}
_HEADER_KEYS = ("dim", "pixdim", "sform_code", "qform_code", "srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d",
                "qoffset_x", "qoffset_y", "qoffset_z", "xyzt_units", "descrip", "intent_code", "aux_file")


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def make_affine(codes: str = "RAS", spacing=(0.8, 1.0, 1.7), tilt=(0.0, 0.0), origin=(-12.0, 7.5, 30.0)) -> np.ndarray:
    """Voxel -> RAS mm: axis i points to codes[i], scaled by spacing, then rotated by tilt[0]° about x and tilt[1]° about z."""
    cols = np.array([_AXIS[c] for c in codes], dtype=float).T
    aff = np.eye(4)
    aff[:3, :3] = _rotation(2, tilt[1]) @ _rotation(0, tilt[0]) @ cols @ np.diag(spacing)
    aff[:3, 3] = origin
    return aff


def save_nifti(path: Path, arr: np.ndarray, affine: np.ndarray, sform_code: int = 2, qform_code: int = 1, descrip: bytes = b"test volume") -> Path:
    img = nib.Nifti1Image(arr, affine)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    img.header.set_xyzt_units(xyz="mm", t="sec")
    img.header["descrip"] = descrip
    nib.save(img, str(path))
    return path


def _volume(shape=(6, 7, 9), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1.0, 100.0, shape).astype(np.float32)


def _canonical_matches_file(vol, file_arr: np.ndarray, file_affine: np.ndarray) -> None:
    """Every file voxel is found, with its value, at the canonical index of its world position."""
    idx = np.indices(file_arr.shape).reshape(3, -1)
    world = file_affine[:3, :3] @ idx + file_affine[:3, 3:4]
    ci = np.linalg.solve(vol.affine[:3, :3], world - vol.affine[:3, 3:4])
    np.testing.assert_allclose(ci, np.round(ci), atol=1e-6)  # permutation and flips only: integer indices
    ci = np.round(ci).astype(int)
    np.testing.assert_array_equal(vol.data[ci[0], ci[1], ci[2]], file_arr.reshape(-1))


# ----------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ing01.nii.gz", ("ing01", ".nii.gz")), ("a.b.nii", ("a.b", ".nii")), ("x.mha", ("x", ".mha")), ("x.nrrd", ("x", ".nrrd")),
     ("dir/x.mhd", ("x", ".mhd")), ("sub-01_T1w.NII.GZ", ("sub-01_T1w", ".NII.GZ")), ("gz.nii.gz", ("gz", ".nii.gz"))],
)
def test_split_name(name: str, expected: tuple[str, str]) -> None:
    assert split_name(name) == expected


@pytest.mark.parametrize("name", ["volume", "x.txt", "x.gz", ".nii.gz", "x.nii.gz.bak"])
def test_split_name_refuses_unknown(name: str) -> None:
    with pytest.raises(DataError, match="not a volume file name"):
        split_name(name)


# --------------------------------------------------------------------- NIfTI orientation round trips


@pytest.mark.parametrize(
    ("codes", "tilt", "sform_code", "qform_code"),
    [("LPI", (0.0, 0.0), 2, 1), ("PSR", (0.0, 0.0), 1, 1), ("RAS", (20.0, 25.0), 4, 0), ("PSR", (12.0, -18.0), 0, 1), ("LAS", (8.0, 10.0), 3, 2)],
)
def test_nifti_round_trip_restores_array_and_header(tmp_path: Path, codes: str, tilt, sform_code: int, qform_code: int) -> None:
    arr = _volume()
    aff = make_affine(codes, tilt=tilt)
    src = save_nifti(tmp_path / "in.nii.gz", arr, aff, sform_code, qform_code)
    vol = read_volume(src)
    assert vol.file_format == "nifti" and vol.data.dtype == np.float32
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    file_img = nib.load(str(src))
    _canonical_matches_file(vol, arr, file_img.affine)
    np.testing.assert_array_equal(vol.to_original(vol.data), arr)
    np.testing.assert_allclose(np.sort(vol.spacing), np.sort([0.8, 1.0, 1.7]), rtol=1e-6)

    out = write_like(tmp_path / "out.nii.gz", vol.data, vol)
    back = nib.load(str(out))
    assert back.get_data_dtype() == np.float32 and back.shape == arr.shape
    np.testing.assert_array_equal(np.asarray(back.dataobj), arr)
    np.testing.assert_array_equal(back.affine, file_img.affine)
    for key in _HEADER_KEYS:
        np.testing.assert_array_equal(back.header[key], file_img.header[key], err_msg=key)
    raw = nib.Nifti1Header.from_fileobj(gzip.open(out))  # the stored scaling, before nibabel applies it
    assert (float(raw["scl_slope"]), float(raw["scl_inter"])) == (1.0, 0.0)


def test_pixdim_only_header_round_trip(tmp_path: Path) -> None:
    """Both codes 0: nibabel's affine from pixdim; kept as is when the grid is unchanged."""
    arr = _volume((5, 6, 4))
    img = nib.Nifti1Image(arr, None)  # no affine: codes 0, only pixdim
    img.header.set_zooms((0.8, 1.0, 1.7))
    nib.save(img, str(tmp_path / "p.nii"))
    assert (int(nib.load(str(tmp_path / "p.nii")).header["sform_code"]), int(nib.load(str(tmp_path / "p.nii")).header["qform_code"])) == (0, 0)
    vol = read_volume(tmp_path / "p.nii")
    _canonical_matches_file(vol, arr, nib.load(str(tmp_path / "p.nii")).affine)
    back = nib.load(str(write_like(tmp_path / "q.nii", vol.data, vol)))
    assert (int(back.header["sform_code"]), int(back.header["qform_code"])) == (0, 0)
    np.testing.assert_array_equal(np.asarray(back.dataobj), arr)
    np.testing.assert_array_equal(back.header["pixdim"], img.header["pixdim"])


def test_new_affine_replaces_sform_and_qform_codes_kept(tmp_path: Path) -> None:
    arr = _volume((8, 9, 10))
    aff = make_affine("PSR", tilt=(10.0, 15.0))
    vol = read_volume(save_nifti(tmp_path / "in.nii.gz", arr, aff, sform_code=2, qform_code=1))
    lo = np.array([1, 2, 3])
    data = vol.data[1:5, 2:7, 3:6]
    new_aff = vol.affine.copy()
    new_aff[:3, 3] = vol.affine[:3, :3] @ lo + vol.affine[:3, 3]
    out = write_like(tmp_path / "crop.nii.gz", data, vol, affine_canonical=new_aff)
    back = nib.load(str(out))
    assert (int(back.header["sform_code"]), int(back.header["qform_code"])) == (2, 1)
    np.testing.assert_allclose(back.header.get_sform(), back.header.get_qform(), atol=1e-4)  # the same affine in both
    again = read_volume(out)
    np.testing.assert_allclose(again.affine, new_aff, atol=1e-4)
    np.testing.assert_array_equal(again.data, data)
    assert back.header["descrip"] == b"test volume"


def test_new_affine_on_a_file_without_codes_gets_scanner_codes(tmp_path: Path) -> None:
    arr = _volume((5, 6, 4))
    nib.save(nib.Nifti1Image(arr, None), str(tmp_path / "p.nii.gz"))  # codes 0
    vol = read_volume(tmp_path / "p.nii.gz")
    new_aff = vol.affine @ np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    back = nib.load(str(write_like(tmp_path / "c.nii.gz", vol.data[1:, 1:, :], vol, affine_canonical=new_aff)))
    assert (int(back.header["sform_code"]), int(back.header["qform_code"])) == (1, 1)
    np.testing.assert_allclose(read_volume(tmp_path / "c.nii.gz").affine, new_aff, atol=1e-5)


def test_four_d_singleton_squeezed_and_restored(tmp_path: Path) -> None:
    arr = _volume((5, 6, 7))[..., None]
    src = save_nifti(tmp_path / "t.nii.gz", arr, make_affine("LPI"))
    vol = read_volume(src)
    assert vol.shape == (5, 6, 7)  # LPI: flips only
    back = nib.load(str(write_like(tmp_path / "o.nii.gz", vol.data, vol)))
    assert back.shape == (5, 6, 7, 1)
    np.testing.assert_array_equal(np.asarray(back.dataobj), arr)


def test_scaled_integers_are_read_scaled_and_written_as_float(tmp_path: Path) -> None:
    raw = np.random.default_rng(3).integers(0, 500, (6, 5, 4)).astype(np.int16)
    img = nib.Nifti1Image(raw, make_affine("LAS"))
    img.header.set_slope_inter(2.0, 10.0)
    nib.save(img, str(tmp_path / "i.nii.gz"))
    vol = read_volume(tmp_path / "i.nii.gz")
    np.testing.assert_array_equal(vol.to_original(vol.data), raw.astype(np.float32) * 2 + 10)
    back = nib.load(str(write_like(tmp_path / "f.nii.gz", vol.data, vol)))
    assert back.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(back.dataobj), raw.astype(np.float32) * 2 + 10)


def test_metre_units_give_mm_affine_and_are_written_back(tmp_path: Path) -> None:
    arr = _volume((4, 5, 6))
    aff = np.diag([0.001, 0.002, 0.003, 1.0])
    aff[:3, 3] = [0.01, -0.02, 0.03]
    img = nib.Nifti1Image(arr, aff)
    img.header.set_xyzt_units(xyz="meter")
    nib.save(img, str(tmp_path / "m.nii"))
    vol = read_volume(tmp_path / "m.nii")
    np.testing.assert_allclose(vol.spacing, [1.0, 2.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 3], [10.0, -20.0, 30.0], rtol=1e-6)
    new_aff = vol.affine.copy()
    new_aff[:3, 3] += vol.affine[:3, 0]  # crop one voxel off i
    back = nib.load(str(write_like(tmp_path / "c.nii", vol.data[1:], vol, affine_canonical=new_aff)))
    assert back.header.get_xyzt_units()[0] == "meter"
    np.testing.assert_allclose(back.affine[:3, 3], [0.011, -0.02, 0.03], rtol=1e-5)


# ---------------------------------------------------------------------------------- refusals


def test_refusals_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.nii\.gz: volume file not found"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti at all" * 10)
    with pytest.raises(DataError, match=r"bad\.nii\.gz"):
        read_volume(tmp_path / "bad.nii.gz")
    (tmp_path / "bad.mha").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.mha: cannot read"):
        read_volume(tmp_path / "bad.mha")
    with pytest.raises(DataError, match="not a volume file name"):
        read_volume(tmp_path / "x.png")


@pytest.mark.parametrize(
    ("shape", "message"),
    [((6, 7), "expected a 3-D volume"), ((4, 5, 6, 3), "expected a 3-D volume"), ((1, 1, 1), "degenerate"), ((8, 1, 8), "degenerate")],
)
def test_refuses_wrong_shapes(tmp_path: Path, shape, message: str) -> None:
    nib.save(nib.Nifti1Image(np.ones(shape, np.float32) * np.arange(np.prod(shape)).reshape(shape), np.eye(4)), str(tmp_path / "s.nii.gz"))
    with pytest.raises(DataError, match=rf"s\.nii\.gz.*{message}"):
        read_volume(tmp_path / "s.nii.gz")


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_refuses_empty_volumes(tmp_path: Path, value: float) -> None:
    save_nifti(tmp_path / "e.nii.gz", np.full((5, 6, 7), value, np.float32), np.eye(4))
    with pytest.raises(DataError, match=r"e\.nii\.gz: the volume is .*nothing to learn or translate"):
        read_volume(tmp_path / "e.nii.gz")
    image = sitk.GetImageFromArray(np.full((7, 6, 5), value, np.float32))
    sitk.WriteImage(image, str(tmp_path / "e.mha"))
    with pytest.raises(DataError, match="nothing to learn or translate"):
        read_volume(tmp_path / "e.mha")


def test_refuses_nan_naming_the_first_voxel(tmp_path: Path) -> None:
    arr = _volume((5, 6, 7))
    arr[2, 4, 1] = np.nan
    arr[3, 0, 0] = np.inf
    save_nifti(tmp_path / "n.nii.gz", arr, make_affine("LPI"))
    with pytest.raises(DataError, match=r"n\.nii\.gz: voxel \[2, 4, 1\] .*2 bad voxels"):
        read_volume(tmp_path / "n.nii.gz")


def test_write_like_force_and_refusals(tmp_path: Path) -> None:
    vol = read_volume(save_nifti(tmp_path / "in.nii.gz", _volume(), make_affine("PSR")))
    out = write_like(tmp_path / "o" / "out.nii.gz", vol.data, vol)
    with pytest.raises(OutputExistsError, match="out.nii.gz"):
        write_like(out, vol.data * 2, vol)
    np.testing.assert_array_equal(read_volume(out).data, vol.data)  # untouched
    write_like(out, vol.data * 2, vol, force=True)
    np.testing.assert_array_equal(read_volume(out).data, vol.data * 2)
    with pytest.raises(DataError, match="pass affine_canonical"):
        write_like(tmp_path / "o" / "c.nii.gz", vol.data[1:], vol)
    bad = vol.data.copy()
    bad[0, 0, 1] = np.nan
    with pytest.raises(DataError, match=r"voxel \[0, 0, 1\]"):
        write_like(tmp_path / "o" / "n.nii.gz", bad, vol)
    with pytest.raises(DataError, match="3-D"):
        write_like(tmp_path / "o" / "n.nii.gz", vol.data[0], vol)
    with pytest.raises(DataError, match="invertible"):
        write_like(tmp_path / "o" / "n.nii.gz", vol.data, vol, affine_canonical=np.zeros((4, 4)))
    # a torch tensor is accepted; nothing but the outputs is left in the folder (no temporaries)
    write_like(tmp_path / "o" / "t.nii", torch.from_numpy(vol.data), vol)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["out.nii.gz", "t.nii"]


# -------------------------------------------------------------------------------- SimpleITK


def _itk_image(arr: np.ndarray, direction: np.ndarray, spacing=(0.8, 1.0, 1.7), origin=(3.0, -4.0, 12.5)) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(tuple(direction.ravel()))
    return image


_OBLIQUE_DIR = _rotation(2, 25.0) @ _rotation(0, -15.0) @ np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])


@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd"])
def test_itk_round_trip_keeps_origin_spacing_direction(tmp_path: Path, suffix: str) -> None:
    arr = _volume((6, 5, 7))
    image = _itk_image(arr, _OBLIQUE_DIR)
    sitk.WriteImage(image, str(tmp_path / f"in{suffix}"))
    vol = read_volume(tmp_path / f"in{suffix}")
    assert vol.file_format == "itk" and nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    # LPS -> RAS: sitk's physical point of a voxel, x and y negated, is the canonical affine's
    for index in [(0, 0, 0), (5, 1, 3), (2, 4, 6)]:
        p = image.TransformIndexToPhysicalPoint(index)
        ras = np.array([-p[0], -p[1], p[2]])
        ci = np.linalg.solve(vol.affine[:3, :3], ras - vol.affine[:3, 3])
        np.testing.assert_allclose(ci, np.round(ci), atol=1e-9)
        assert vol.data[tuple(np.round(ci).astype(int))] == arr[index]
    out = write_like(tmp_path / "sub" / f"out{suffix}", vol.data, vol)
    back = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), arr.transpose(2, 1, 0))
    assert back.GetOrigin() == image.GetOrigin() and back.GetSpacing() == image.GetSpacing()
    if suffix == ".nrrd":  # NRRD stores spacing x direction, so each write and read rounds the direction by an ulp
        np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), rtol=0, atol=1e-15)
    else:
        assert back.GetDirection() == image.GetDirection()
    expected = {f"out{suffix}"} | ({"out.raw"} if suffix == ".mhd" else set())
    assert {p.name for p in (tmp_path / "sub").iterdir()} == expected  # no temporaries left
    with pytest.raises(OutputExistsError):
        write_like(out, vol.data, vol)


def test_itk_crop_written_with_moved_origin(tmp_path: Path) -> None:
    arr = _volume((8, 7, 9))
    image = _itk_image(arr, _OBLIQUE_DIR)
    sitk.WriteImage(image, str(tmp_path / "in.mha"))
    vol = read_volume(tmp_path / "in.mha")
    lo = np.array([2, 1, 3])
    new_aff = vol.affine.copy()
    new_aff[:3, 3] = vol.affine[:3, :3] @ lo + vol.affine[:3, 3]
    data = vol.data[2:6, 1:5, 3:8]
    write_like(tmp_path / "c.mha", data, vol, affine_canonical=new_aff)
    again = read_volume(tmp_path / "c.mha")
    np.testing.assert_allclose(again.affine, new_aff, atol=1e-9)
    np.testing.assert_array_equal(again.data, data)
    back = sitk.ReadImage(str(tmp_path / "c.mha"))
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), rtol=1e-12)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-12)


def test_nifti_like_written_as_mha_keeps_world_positions(tmp_path: Path) -> None:
    arr = _volume((6, 5, 7))
    aff = make_affine("LPI", tilt=(10.0, 20.0))
    vol = read_volume(save_nifti(tmp_path / "in.nii.gz", arr, aff))
    back = sitk.ReadImage(str(write_like(tmp_path / "o.mha", vol.data, vol)))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back).transpose(2, 1, 0), arr)  # the file's voxel order
    for index in [(0, 0, 0), (5, 4, 6), (1, 3, 2)]:
        p = back.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose([-p[0], -p[1], p[2]], (aff @ [*index, 1])[:3], atol=1e-4)  # float32 srow in the NIfTI


# ---------------------------------------------------------------------------------- scaling


def _sphere_volume(seed: int, lo: float, hi: float, n: int = 24, radius: float = 9.0) -> tuple[np.ndarray, np.ndarray]:
    """Background uniform [0, 0.5) (air noise), a sphere of uniform [lo, hi) intensities; and the sphere's mask."""
    rng = np.random.default_rng(seed)
    grid = np.indices((n, n, n)) - (n - 1) / 2
    mask = (grid**2).sum(axis=0) <= radius**2
    vol = rng.uniform(0.0, 0.5, (n, n, n))
    vol[mask] = rng.uniform(lo, hi, mask.sum())
    return vol.astype(np.float32), mask


def test_scaling_fits_foreground_percentiles_within_sampling_error() -> None:
    vol, mask = _sphere_volume(0, 100.0, 300.0)
    fg = foreground_mask(vol)
    assert not (fg & ~mask).any()  # Otsu keeps the air out
    # and leaves out at most the sphere's darkest voxels: its cut is a bin edge (300/256 wide), which
    # Otsu may put a bin or two into the wide sphere class rather than in the empty gap
    assert vol[mask & ~fg].max(initial=100.0) < 100.0 + 2 * 300.0 / 256
    s = VolumeScaling.fit(vol)
    # lo: the 0.5th percentile of all voxels, inside the air's uniform [0, 0.5) (a fraction 1 - f of them)
    n_all, f = vol.size, mask.mean()
    q = 0.005 / (1 - f)
    sd = math.sqrt(0.005 * 0.995 / n_all) / ((1 - f) / 0.5)  # sample quantile: sqrt(p(1-p)/n) / density
    assert abs(s.lo - 0.5 * q) < 5 * sd, (s.lo, 0.5 * q, sd)
    # hi: the 99.5th percentile of the head, uniform [100, 300)
    n, q = int(fg.sum()), 0.995
    sd = math.sqrt(q * (1 - q) / n) * 200.0
    assert abs(s.hi - (100.0 + 200.0 * q)) < 5 * sd, (s.hi, sd)
    # a given mask is the foreground (the same voxels as the default one: the same fit); lo never depends on it
    assert VolumeScaling.fit(vol, masks=fg) == s
    assert VolumeScaling.fit(vol, masks=np.ones_like(mask)).lo == s.lo


def test_scaling_forward_inverse_exact_and_unclipped() -> None:
    vol, _ = _sphere_volume(1, 100.0, 300.0)
    s = VolumeScaling.fit(vol)
    y = s.forward(vol)
    assert y.dtype == np.float32
    np.testing.assert_allclose(s.forward(np.array([s.lo, s.hi])), [-1.0, 1.0], atol=1e-12)
    assert y.min() < -1.0 and y.max() > 1.0  # background and the brightest voxels are not clipped
    x = np.random.default_rng(2).uniform(-50, 500, 1000)
    np.testing.assert_allclose(s.inverse(s.forward(x)), x, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(s.inverse(s.forward(vol)), vol, rtol=1e-6, atol=1e-4)
    t = s.forward(torch.from_numpy(vol))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.inverse(t).numpy(), vol, rtol=1e-6, atol=1e-4)


def test_scaling_of_several_volumes_is_the_mean_of_their_percentiles() -> None:
    a, _ = _sphere_volume(3, 100.0, 300.0)
    b, _ = _sphere_volume(4, 200.0, 400.0, n=20, radius=7.0)
    sa, sb, both = VolumeScaling.fit(a), VolumeScaling.fit(b), VolumeScaling.fit([a, b])
    assert both.lo == pytest.approx((sa.lo + sb.lo) / 2, rel=1e-12)
    assert both.hi == pytest.approx((sa.hi + sb.hi) / 2, rel=1e-12)
    assert VolumeScaling.mean_of([sa, sb]) == both  # from the volumes' own fits, without reading them again
    with pytest.raises(ConfigError, match="different percentiles"):
        VolumeScaling.mean_of([sa, VolumeScaling.fit(b, percentiles=(1.0, 99.0))])


def test_scaling_refusals() -> None:
    vol, mask = _sphere_volume(5, 100.0, 300.0)
    flat = np.full(mask.shape, 50.0)
    flat[0, 0, 0] = 0.0  # the air's 0.5th percentile is the head's intensity too
    with pytest.raises(DataError, match="one-intensity foreground"):
        VolumeScaling.fit(flat)
    binary = VolumeScaling.fit(np.where(mask, 50.0, 0.0))  # a two-level volume scales: air -1, head +1
    assert (binary.lo, binary.hi) == (0.0, 50.0)
    with pytest.raises(DataError, match="no foreground"):
        VolumeScaling.fit(vol, masks=np.zeros_like(mask))
    with pytest.raises(DataError, match="mask of shape"):
        VolumeScaling.fit(vol, masks=mask[1:])
    with pytest.raises(ConfigError, match="percentiles"):
        VolumeScaling.fit(vol, percentiles=(99.0, 1.0))
    nan = vol.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        VolumeScaling.fit(nan)


def test_scaling_manifest_round_trip_and_errors() -> None:
    s = VolumeScaling(12.5, 830.0, (1.0, 99.0))
    d = s.to_dict()
    assert d == {"mode": "percentile", "lo": 12.5, "hi": 830.0, "percentiles": [1.0, 99.0]}
    assert VolumeScaling.from_dict(d) == s
    cases = [
        (None, "expected a mapping"),
        ({**d, "gamma": 1}, r"unknown key\(s\) \['gamma'\]"),
        ({k: v for k, v in d.items() if k != "hi"}, r"missing key\(s\) \['hi'\]"),
        ({**d, "mode": "range"}, "key 'mode'"),
        ({**d, "lo": float("nan")}, "key 'lo'"),
        ({**d, "hi": "big"}, "key 'hi'"),
        ({**d, "lo": 900.0}, "lo < hi"),
        ({**d, "percentiles": [5]}, "key 'percentiles'"),
    ]
    for entry, message in cases:
        with pytest.raises(ModelFileError, match=message):
            VolumeScaling.from_dict(entry, source="model.json 'scaling_a'")


# ------------------------------------------------------------------------------- data sets


def _touch_volumes(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return [folder / n for n in names]


def test_find_volume_sets(tmp_path: Path) -> None:
    _touch_volumes(tmp_path / "trainA", ["b.nii.gz", "a.nii.gz", ".a.nii.gz.tmp.part.nii.gz", "notes.txt", "c.mhd", "c.raw"])
    _touch_volumes(tmp_path / "trainB", ["a.nii.gz", "b.nii.gz", "c.mha"])
    sets = find_volume_sets(tmp_path)
    assert list(sets) == ["train"]
    assert [p.name for p in sets["train"]["A"]] == ["a.nii.gz", "b.nii.gz", "c.mhd"]
    assert [p.name for p in sets["train"]["B"]] == ["a.nii.gz", "b.nii.gz", "c.mha"]
    _touch_volumes(tmp_path / "testA", ["x.nii"])
    with pytest.raises(DataError, match=r"testB: folder not found.*holds: testA/, trainA/, trainB/"):
        find_volume_sets(tmp_path)
    _touch_volumes(tmp_path / "testB", ["y.nii"])
    assert [p.name for p in find_volume_sets(tmp_path)["test"]["B"]] == ["y.nii"]


def test_find_volume_sets_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data folder not found"):
        find_volume_sets(tmp_path / "nope")
    _touch_volumes(tmp_path / "trainA", ["a.nii.gz"])
    (tmp_path / "README").write_text("x")
    with pytest.raises(DataError, match=r"trainB: folder not found.*holds: README, trainA/"):
        find_volume_sets(tmp_path)
    _touch_volumes(tmp_path / "trainB", ["readme.txt"])
    with pytest.raises(DataError, match=r"trainB: no volume file.*holds: readme.txt"):
        find_volume_sets(tmp_path)


def test_pair_by_name(tmp_path: Path) -> None:
    a = _touch_volumes(tmp_path / "trainA", ["sub-02_T1w.nii.gz", "sub-01_T1w.nii.gz"])
    b = _touch_volumes(tmp_path / "trainB", ["sub-01_T2w.nii.gz", "sub-02_T2w.nii.gz"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the contrast token differs, the subject part does not: no warning
        pairs = pair_volumes(a, b)
    assert [(p.name, q.name) for p, q in pairs] == [("sub-01_T1w.nii.gz", "sub-01_T2w.nii.gz"), ("sub-02_T1w.nii.gz", "sub-02_T2w.nii.gz")]
    c = _touch_volumes(tmp_path / "otherB", ["sub-01_T2w.nii.gz", "sub-03_T2w.nii.gz"])
    with pytest.warns(UserWarning, match=r"1 of 2 pairs .*sub-02_T1w.nii.gz with sub-03_T2w.nii.gz"):
        pair_volumes(a, c)
    # one odd name on one side (so its names share no prefix) flags only its own pair
    d = _touch_volumes(tmp_path / "oddB", ["ing01.nii.gz", "zzz.nii.gz"])
    e = _touch_volumes(tmp_path / "oddA", ["ing01.nii.gz", "ing02.nii.gz"])
    with pytest.warns(UserWarning, match=r"1 of 2 pairs .*ing02.nii.gz with zzz.nii.gz"):
        pair_volumes(e, d)
    with pytest.raises(DataError, match=r"data/train: 2 A volumes but 3 B volumes"):
        pair_volumes(a, b + c[:1], source="data/train")
    with pytest.raises(ConfigError, match="pairing 'order'"):
        pair_volumes(a, b, "order")  # type: ignore[arg-type]


def test_pair_unpaired(tmp_path: Path) -> None:
    a = _touch_volumes(tmp_path / "trainA", ["x.nii"])
    b = _touch_volumes(tmp_path / "trainB", ["y.nii", "z.nii"])
    assert pair_volumes(a, b, "unpaired") == [(a[0], None), (None, b[0]), (None, b[1])]


def test_pair_by_csv(tmp_path: Path) -> None:
    a = _touch_volumes(tmp_path / "trainA", ["p1.nii.gz", "p2.nii.gz", "p3.nii.gz"])
    b = _touch_volumes(tmp_path / "trainB", ["q1.nii.gz", "q2.nii.gz", "q3.nii.gz"])
    csv_path = tmp_path / "train_pairs.csv"
    csv_path.write_text(f"subject,A,B\ns1,p1.nii.gz,trainB/q2.nii.gz\ns2,{a[1]},q1.nii.gz\n\n")
    with pytest.warns(UserWarning, match=r"2 volume\(s\) are in no row.*p3.nii.gz, q3.nii.gz"):
        pairs = pair_volumes(a, b, "csv", csv_path=csv_path)
    assert [(p.name, q.name) for p, q in pairs] == [("p1.nii.gz", "q2.nii.gz"), ("p2.nii.gz", "q1.nii.gz")]
    bad = [
        ("A,C\np1.nii.gz,q1.nii.gz\n", r"missing column\(s\) B"),
        ("A,B\np9.nii.gz,q1.nii.gz\n", r"line 2, column 'A': 'p9.nii.gz' is not one of the A volumes"),
        ("A,B\np1.nii.gz,q1.nii.gz\np2.nii.gz,q1.nii.gz\n", r"line 3, column 'B': 'q1.nii.gz' is also on line 2"),
        ("A,B\np1.nii.gz,\n", r"line 2, column 'B': empty"),
        ("A,B\n", "no rows"),
    ]
    for text, message in bad:
        csv_path.write_text(text)
        with pytest.raises(DataError, match=message):
            pair_volumes(a, b, "csv", csv_path=csv_path)
    with pytest.raises(ConfigError, match="needs csv_path"):
        pair_volumes(a, b, "csv")
    with pytest.raises(DataError, match="pairing csv not found"):
        pair_volumes(a, b, "csv", csv_path=tmp_path / "none.csv")


def test_a_csv_without_a_split_column_pairs_the_training_split_and_leaves_the_test_split_to_names(tmp_path: Path) -> None:
    a = _touch_volumes(tmp_path / "testA", ["s1.nii.gz", "s2.nii.gz"])
    b = _touch_volumes(tmp_path / "testB", ["s1.nii.gz", "s2.nii.gz"])
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("A,B\nt1.nii.gz,u1.nii.gz\n")  # rows of the training split only
    pairs = pair_volumes(a, b, "csv", csv_path=csv_path, split="test")
    assert [(p.name, q.name) for p, q in pairs] == [("s1.nii.gz", "s1.nii.gz"), ("s2.nii.gz", "s2.nii.gz")]
    # with a split column the csv pairs the test split too (crossed here, against the names)
    csv_path.write_text("split,A,B\ntrain,t1.nii.gz,u1.nii.gz\ntest,s1.nii.gz,s2.nii.gz\ntest,s2.nii.gz,s1.nii.gz\n")
    pairs = pair_volumes(a, b, "csv", csv_path=csv_path, split="test")
    assert [(p.name, q.name) for p, q in pairs] == [("s1.nii.gz", "s2.nii.gz"), ("s2.nii.gz", "s1.nii.gz")]


def test_itk_like_written_as_nifti_by_simpleitk(tmp_path: Path) -> None:
    arr = _volume((6, 5, 7))
    sitk.WriteImage(_itk_image(arr, _OBLIQUE_DIR), str(tmp_path / "in.mha"))
    vol = read_volume(tmp_path / "in.mha")
    again = read_volume(write_like(tmp_path / "o.nii.gz", vol.data, vol))
    assert again.file_format == "nifti"
    np.testing.assert_allclose(again.affine, vol.affine, atol=1e-4)  # NIfTI stores float32
    np.testing.assert_array_equal(again.data, vol.data)


def test_refuses_singular_affine(tmp_path: Path) -> None:
    img = nib.Nifti1Image(_volume((4, 5, 6)), None)
    singular = np.diag([1.0, 0.0, 1.0, 1.0])
    img.header.set_sform(singular, code=2)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    with pytest.raises(DataError, match=r"s\.nii\.gz: the affine .* is singular"):
        read_volume(tmp_path / "s.nii.gz")
