"""The built-in paired T1w/T2w brain volumes (MNI152 subjects, spin-echo contrasts, oblique grids)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nilearn")

import nibabel as nib  # noqa: E402

from gansim.data import brain_volumes as bv  # noqa: E402
from gansim.data.brain import load_template  # noqa: E402
from gansim.errors import ConfigError, OutputExistsError  # noqa: E402
from gansim.physics.mr_signal import SEQUENCES, TISSUES_3T, tissue_signal  # noqa: E402

# the default field of view (180 x 220 x 192 mm) on a coarse anisotropic grid: ~50 k voxels
SHAPE = (36, 44, 32)
SPACING = (5.0, 5.0, 6.0)


def _faces(volume: np.ndarray) -> list[np.ndarray]:
    return [volume[0], volume[-1], volume[:, 0], volume[:, -1], volume[:, :, 0], volume[:, :, -1]]


# ----------------------------------------------------------------------------- one subject


def test_volumes_have_the_shape_dtype_and_are_deterministic() -> None:
    a, b, affine = bv.make_subject_volumes(3, SHAPE, SPACING)
    assert a.shape == b.shape == SHAPE and a.dtype == b.dtype == np.float32
    assert affine.shape == (4, 4) and affine.dtype == np.float64
    assert (a >= 0).all() and (b >= 0).all() and np.isfinite(a).all() and np.isfinite(b).all()
    a2, b2, affine2 = bv.make_subject_volumes(3, SHAPE, SPACING)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(affine, affine2)
    a3, _, affine3 = bv.make_subject_volumes(4, SHAPE, SPACING)
    assert not np.array_equal(a, a3) and not np.allclose(affine, affine3)


def test_the_affine_is_oblique_anisotropic_and_centred_on_the_brain() -> None:
    for seed in range(4):
        anatomy = bv.make_subject_anatomy(seed, SHAPE, SPACING)
        linear = anatomy.affine[:3, :3]
        # columns: orthogonal voxel axes of the given lengths, right-handed
        np.testing.assert_allclose(np.linalg.norm(linear, axis=0), SPACING, rtol=1e-12)
        gram = (linear / SPACING).T @ (linear / SPACING)
        np.testing.assert_allclose(gram, np.eye(3), atol=1e-12)
        assert np.linalg.det(linear) > 0
        # oblique: pitch and yaw of at least 2 degrees put off-diagonal terms of >= sin(2 deg) * spacing
        off = linear[~np.eye(3, dtype=bool)]
        assert (np.abs(off) > math.sin(math.radians(2.0)) * min(SPACING) * 0.99).sum() >= 4
        assert not np.allclose(anatomy.affine, np.eye(4))
        # the central voxel is at the nominal centre up to the clipped shift
        centre = anatomy.affine[:3, :3] @ ((np.asarray(SHAPE) - 1) / 2) + anatomy.affine[:3, 3]
        assert np.all(np.abs(centre - bv.VOLUME_CENTRE_MM) <= 5.0 + 1e-9)


def test_the_whole_brain_is_in_view() -> None:
    template = load_template()
    template_ml = sum(template.maps[k].astype(np.float64).sum() / 255.0 for k in ("gm_brain", "wm_brain", "csf")) / 1e3  # 1 mm voxels
    for seed in range(6):
        anatomy = bv.make_subject_anatomy(seed, SHAPE, SPACING, texture=False)
        total = sum(anatomy.fractions.values())
        assert max(float(face.max()) for face in _faces(total)) < 0.01, seed
        # and all of it: the template's tissue volume times head_scale^3, up to the few per cent
        # that the smooth random deformation changes it
        ml = float(total.sum()) * np.prod(SPACING) / 1e3
        assert ml == pytest.approx(template_ml * anatomy.subject.head_scale**3, rel=0.08), seed


def test_both_contrasts_come_from_the_same_tissues() -> None:
    # without noise and bias each scan is a constant gain times the partial-volume signal of the anatomy
    a, b, affine = bv.make_subject_volumes(7, SHAPE, SPACING, noise=0.0, bias=0.0)
    anatomy = bv.make_subject_anatomy(7, SHAPE, SPACING)
    np.testing.assert_array_equal(affine, anatomy.affine)
    for scan, sequence in ((a, "t1w"), (b, "t2w")):
        model = tissue_signal(anatomy.fractions, sequence, anatomy.tissues, relaxation_scale=anatomy.relaxation_scale)
        inside = model > 0
        gain = scan[inside] / model[inside]
        np.testing.assert_allclose(gain, np.median(gain), rtol=1e-5)
        assert (scan[~inside] == 0).all() and inside.sum() > 1000
        # the gain puts the brightest nominal pure tissue at ~REFERENCE_INTENSITY (10 % sd per scan)
        pure = max(float(tissue_signal({t: np.ones(1)}, sequence)[0]) for t in TISSUES_3T)
        assert 0.6 < np.median(gain) * pure / bv.REFERENCE_INTENSITY < 1.6


def test_t1w_and_t2w_contrasts_are_reversed_inside_the_brain() -> None:
    for seed in (0, 1):
        a, b, _ = bv.make_subject_volumes(seed, SHAPE, SPACING)
        anatomy = bv.make_subject_anatomy(seed, SHAPE, SPACING)
        median = {}
        for tissue, f in anatomy.fractions.items():
            voxels = f > 0.7
            assert voxels.sum() >= 20, (tissue, int(voxels.sum()))
            median[tissue] = (float(np.median(a[voxels])), float(np.median(b[voxels])))
        assert median["wm"][0] > median["gm"][0] > median["csf"][0], median
        assert median["csf"][1] > median["gm"][1] > median["wm"][1], median


def test_background_is_rician_noise_and_vanishes_without_noise() -> None:
    a, b, _ = bv.make_subject_volumes(2, SHAPE, SPACING)
    anatomy = bv.make_subject_anatomy(2, SHAPE, SPACING)
    background = sum(anatomy.fractions.values()) == 0
    assert background.sum() > 10_000
    for scan in (a, b):
        x = scan[background].astype(np.float64)
        # zero signal + Rician noise = Rayleigh: E[x]^2 / E[x^2] = pi / 4; the sample ratio's sd
        # (delta method, Rayleigh moments) is ~0.52 / sqrt(n); bound at 5 sd
        n = x.size
        ratio = x.mean() ** 2 / (x**2).mean()
        assert abs(ratio - math.pi / 4) < 5 * 0.52 / math.sqrt(n), ratio
        # noise sd = DEFAULT_NOISE * REFERENCE_INTENSITY * a gain factor of 10 % sd
        sigma = math.sqrt((x**2).mean() / 2)
        assert 0.6 < sigma / (bv.DEFAULT_NOISE * bv.REFERENCE_INTENSITY) < 1.6
    quiet, _, _ = bv.make_subject_volumes(2, SHAPE, SPACING, noise=0.0)
    assert (quiet[background] == 0).all()


def test_bias_field_is_a_smooth_quadratic_independent_per_contrast() -> None:
    flat_a, flat_b, affine = bv.make_subject_volumes(5, SHAPE, SPACING, noise=0.0, bias=0.0)
    biased_a, biased_b, _ = bv.make_subject_volumes(5, SHAPE, SPACING, noise=0.0, bias=0.05)
    inside = (flat_a > 0.05 * flat_a.max()) & (flat_b > 0.05 * flat_b.max())
    points = bv.grid_points(affine, SHAPE).reshape(*SHAPE, 3)[inside] / 100.0
    x, y, z = points.T
    basis = np.stack([np.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], axis=1)
    logs = []
    for flat, biased in ((flat_a, biased_a), (flat_b, biased_b)):
        log_ratio = np.log(biased[inside].astype(np.float64) / flat[inside])
        coefficients, *_ = np.linalg.lstsq(basis, log_ratio, rcond=None)
        # exactly the exp of a quadratic in world mm (float32 rounding only) ...
        assert np.abs(basis @ coefficients - log_ratio).max() < 1e-5
        # ... and not flat: several per cent across the brain
        assert log_ratio.max() - log_ratio.min() > 0.03
        logs.append(log_ratio)
    # different fields in the two contrasts
    assert np.abs(logs[0] - logs[1]).max() > 0.01


def test_texture_exponent_makes_t1w_follow_the_texture_to_first_order() -> None:
    k = bv.texture_exponent("3t")
    assert 1.3 < k < 2.0
    half = {"gm": np.full(1, 0.5), "wm": np.full(1, 0.5)}
    for texture in (1.01, 0.99):
        ratio = tissue_signal(half, "t1w", relaxation_scale=np.full(1, texture**k)) / tissue_signal(half, "t1w")
        # first order in ln(texture): the residual is second order, ~(0.01)^2
        assert abs(float(ratio[0]) - texture) < 3e-4
    # and T2w moves the other way
    assert float(tissue_signal(half, "t2w", relaxation_scale=np.full(1, 1.01**k))[0]) < float(tissue_signal(half, "t2w")[0])


def test_effect_reaches_the_subject_model() -> None:
    control = bv.make_subject_anatomy(1, (4, 4, 4), SPACING).subject
    patient = bv.make_subject_anatomy(1, (4, 4, 4), SPACING, effect=2.0).subject
    # the same draws plus the class effect (unless clipped at the model's limits)
    assert patient.atrophy > control.atrophy and patient.hippocampus > control.hippocampus


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (32, 32)},
        {"shape": (32, 1, 32)},
        {"shape": (32, 32.0, 32)},
        {"spacing_mm": (1.0, 0.0, 1.0)},
        {"spacing_mm": (1.0, float("nan"), 1.0)},
        {"noise": -0.1},
        {"effect": -1.0},
        {"sequence_a": "flair"},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict) -> None:
    args = {"seed": 0, "shape": (4, 4, 4), "spacing_mm": SPACING, **kwargs}
    with pytest.raises(ConfigError):
        bv.make_subject_volumes(**args)


# ----------------------------------------------------------------------------- files


def _read(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image


def test_written_data_set_layout_headers_and_values(tmp_path: Path) -> None:
    out = tmp_path / "brains"
    summary = bv.write_brain_volumes(out, n_train=2, n_test=1, shape=SHAPE, spacing_mm=SPACING, seed=11)
    for folder, names in {"trainA": ["sub-001", "sub-002"], "trainB": ["sub-001", "sub-002"], "testA": ["sub-003"], "testB": ["sub-003"]}.items():
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"{n}.nii.gz" for n in names]
    assert json.loads((out / "dataset.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["layout"] == {"A": "T1w", "B": "T2w"} and summary["paired"] is True
    assert summary["sequences"]["A"] == SEQUENCES["t1w"].to_dict()
    # no staging or trash folders left beside the data set
    assert [p.name for p in tmp_path.iterdir()] == ["brains"]

    for split, number in (("train", 1), ("train", 2), ("test", 3)):
        a_expected, b_expected, affine = bv.make_subject_volumes(bv.subject_seed(11, number), SHAPE, SPACING)
        a, image_a = _read(out / f"{split}A" / f"sub-{number:03d}.nii.gz")
        b, image_b = _read(out / f"{split}B" / f"sub-{number:03d}.nii.gz")
        np.testing.assert_array_equal(a, a_expected)
        np.testing.assert_array_equal(b, b_expected)
        for image in (image_a, image_b):
            header = image.header
            assert image.get_data_dtype() == np.float32
            assert int(header["sform_code"]) == int(header["qform_code"]) == bv.XFORM_CODE
            np.testing.assert_allclose(image.get_sform(), affine, atol=1e-4)
            np.testing.assert_allclose(image.get_qform(), affine, atol=1e-4)
            np.testing.assert_allclose(header.get_zooms(), SPACING, rtol=1e-6)
            assert header.get_xyzt_units()[0] == "mm"
            assert abs(affine[:3, :3][~np.eye(3, dtype=bool)]).max() > 0.1  # oblique in the file too
        # A and B of a subject share the grid
        np.testing.assert_array_equal(image_a.affine, image_b.affine)
        entry = summary[split]["A"][[e["subject"] for e in summary[split]["A"]].index(f"sub-{number:03d}")]
        np.testing.assert_allclose(entry["affine"], affine, rtol=0, atol=1e-12)


def test_unpaired_training_uses_different_subjects(tmp_path: Path) -> None:
    out = tmp_path / "unpaired"
    summary = bv.write_brain_volumes(out, n_train=2, n_test=1, shape=SHAPE, spacing_mm=SPACING, seed=5, paired=False)
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["sub-001.nii.gz", "sub-002.nii.gz"]
    assert sorted(p.name for p in (out / "trainB").iterdir()) == ["sub-003.nii.gz", "sub-004.nii.gz"]
    assert [e["subject"] for e in summary["test"]["A"]] == [e["subject"] for e in summary["test"]["B"]] == ["sub-005"]
    a, image_a = _read(out / "trainA" / "sub-001.nii.gz")
    b, image_b = _read(out / "trainB" / "sub-003.nii.gz")
    np.testing.assert_array_equal(a, bv.make_subject_volumes(bv.subject_seed(5, 1), SHAPE, SPACING)[0])
    np.testing.assert_array_equal(b, bv.make_subject_volumes(bv.subject_seed(5, 3), SHAPE, SPACING)[1])
    assert not np.allclose(image_a.affine, image_b.affine)
    # the test pair is still co-registered
    assert np.array_equal(nib.load(out / "testA" / "sub-005.nii.gz").affine, nib.load(out / "testB" / "sub-005.nii.gz").affine)


def test_force_semantics(tmp_path: Path) -> None:
    out = tmp_path / "set"
    small = {"shape": (12, 14, 10), "spacing_mm": SPACING}  # the centre of the brain only: fast
    bv.write_brain_volumes(out, n_train=3, n_test=1, seed=1, **small)
    before = (out / "trainA" / "sub-001.nii.gz").read_bytes()
    with pytest.raises(OutputExistsError, match="not empty"):
        bv.write_brain_volumes(out, n_train=2, n_test=0, seed=2, **small)
    assert (out / "trainA" / "sub-001.nii.gz").read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1

    (out / "notes.txt").write_text("mine")
    summary = bv.write_brain_volumes(out, n_train=2, n_test=0, seed=2, force=True, **small)
    # the data set is replaced as a whole: no stale subject or test folder, the user's file kept
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "notes.txt", "trainA", "trainB"]
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["sub-001.nii.gz", "sub-002.nii.gz"]
    assert (out / "trainA" / "sub-001.nii.gz").read_bytes() != before
    assert json.loads((out / "dataset.json").read_text())["parameters"]["seed"] == 2 == summary["parameters"]["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]

    # an existing empty folder is fine; a file in the way is refused
    (tmp_path / "empty").mkdir()
    bv.write_brain_volumes(tmp_path / "empty", n_train=1, n_test=0, **small)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        bv.write_brain_volumes(tmp_path / "file", n_train=1, n_test=0, force=True, **small)


def test_a_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = bv._write_nifti

    def failing(*args, **kwargs):  # the third file fails
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(bv, "_write_nifti", failing)
    with pytest.raises(OSError, match="disk full"):
        bv.write_brain_volumes(tmp_path / "set", n_train=2, n_test=0, shape=(8, 8, 8), spacing_mm=SPACING)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"n_test": -1}, {"seed": 1.5}, {"paired": "yes"}, {"texture": 1}, {"shape": (8, 8)}, {"tissues": "7t"}])
def test_bad_write_arguments_are_refused_before_writing(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        bv.write_brain_volumes(tmp_path / "set", **{"shape": (8, 8, 8), **kwargs})
    assert list(tmp_path.iterdir()) == []


def test_presets_cover_the_template_brain() -> None:
    for shape, spacing in bv.PRESETS.values():
        fov = np.asarray(shape) * np.asarray(spacing)
        # the template brain's box (144 x 180 x 154 mm) x the largest head scale (1.1) fits
        assert np.all(fov >= np.array([144.0, 180.0, 154.0]) * 1.1)
    assert all(n % 8 == 0 for n in bv.DEFAULT_SHAPE)
