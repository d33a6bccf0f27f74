"""The built-in brain-slice data set and the MNI152 subject model behind it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nilearn")

from gansim.data import brain  # noqa: E402
from gansim.data.brain import (  # noqa: E402
    BRAIN_CENTRE_MM,
    HIPPOCAMPUS_CENTRES_MM,
    HIPPOCAMPUS_RADIUS_MM,
    BrainSubject,
    TemplateMissingError,
    load_template,
    rician_noise,
    sample_template,
    smoothed_template,
)
from gansim.data.brain_slices import FIELD_OF_VIEW_MM, antialias_sigma_mm, make_brain_slices, write_brain_slices  # noqa: E402
from gansim.errors import ConfigError, DataError, GansimError, OutputExistsError  # noqa: E402
from gansim.io.slices import read_slice_set  # noqa: E402


# ----------------------------------------------------------------------------- template


def test_sample_template_gives_the_files_voxel_values_at_voxel_centres() -> None:
    import nibabel as nib

    folder = brain.template_dir()
    rng = np.random.default_rng(0)
    t1 = nib.load(folder / brain.TEMPLATE_FILES["t1"])
    shape = np.array(t1.shape)
    # random voxels anywhere (most outside the brain) and random voxels inside it
    inside = np.argwhere(np.asarray(t1.dataobj) > 0)
    ijk = np.concatenate([rng.integers(0, shape, size=(300, 3)), inside[rng.choice(len(inside), 300, replace=False)]])
    points = (t1.affine[:3, :3] @ ijk.T).T + t1.affine[:3, 3]
    values = sample_template(points, ("t1", "gm", "wm"))
    for key in ("t1", "gm", "wm"):
        raw = np.asarray(nib.load(folder / brain.TEMPLATE_FILES[key]).dataobj)[tuple(ijk.T)]
        np.testing.assert_allclose(values[key], raw / 255.0, atol=1e-6, err_msg=key)
        assert values[key].dtype == np.float32 and values[key].shape == (600,)


def test_derived_maps_csf_is_dark_and_ventricles_are_csf() -> None:
    template = load_template()
    # a point in the body of the right lateral ventricle
    at_ventricle = sample_template(np.array([[8.0, -3.0, 20.0]]), ("t1", "csf", "gm_brain", "wm_brain"))
    assert at_ventricle["csf"][0] > 0.9 and at_ventricle["t1"][0] < 0.5
    # CSF is T1-dark wherever it dominates, and the tissue fractions never exceed 1
    csf = template.maps["csf"] / 255.0
    t1 = template.maps["t1"] / 255.0
    assert np.percentile(t1[csf > 0.8], 95) < 0.5 < np.percentile(t1[template.maps["wm"] > 200], 5)
    total = (template.maps["csf"].astype(int) + template.maps["gm_brain"] + template.maps["wm_brain"]) / 255.0
    assert total.max() <= 1.0 + 3 / 255  # three uint8 roundings
    assert 10_000 < template.ventricles.sum() < 30_000  # lateral ventricles of a young-adult template, in 1 mm^3


def test_sample_template_rejects_bad_input() -> None:
    with pytest.raises(DataError, match=r"\(P, 3\)"):
        sample_template(np.zeros((4, 2)))
    with pytest.raises(DataError, match="NaN"):
        sample_template(np.full((1, 3), np.nan))
    with pytest.raises(ConfigError, match="'bone'"):
        sample_template(np.zeros((1, 3)), ("bone",))


def test_missing_nilearn_is_an_import_error_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(brain.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TemplateMissingError, match=r"pip install 'gansim\[brain\]'") as info:
        brain.template_dir()
    assert isinstance(info.value, ImportError) and isinstance(info.value, GansimError)


def test_smoothed_template_keeps_the_mean_and_zero_sigma_is_the_template() -> None:
    assert smoothed_template((0.0, 0.0, 0.0)) is load_template()
    assert antialias_sigma_mm(1.0) == 0.0 and antialias_sigma_mm(3.0) == pytest.approx(math.sqrt(8 / 12))
    smooth = smoothed_template((2.0, 2.0, 0.0))
    for key in ("gm_brain", "csf"):
        # a Gaussian conserves the sum; uint8 rounding moves each voxel by < 0.5 / 255
        a, b = load_template().maps[key].astype(float), smooth.maps[key].astype(float)
        assert abs(a.mean() - b.mean()) < 0.5 and (a != b).any()
    with pytest.raises(ConfigError, match="sigma_mm"):
        smoothed_template((1.0, -1.0, 0.0))


# --------------------------------------------------------------------- the subject model


def test_ventricle_effect_grows_the_lateral_ventricles_by_about_40_percent() -> None:
    template = load_template()
    # the subject-space volume that shows ventricle: sum of the ventricle map at the mapped points
    idx = np.argwhere(template.ventricles)
    axes = [np.arange(lo, hi, 1.0) for lo, hi in zip(idx.min(0) - 8, idx.max(0) + 9)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    points = (template.affine[:3, :3] @ grid.T).T + template.affine[:3, 3]
    ventricles = template.ventricles.astype(np.float32)

    def volume(strength: float) -> float:
        mapped = BrainSubject.neutral(ventricles=strength).template_points(points, template)
        from scipy import ndimage

        return float(ndimage.map_coordinates(ventricles, template.voxel_coordinates(mapped), order=1).sum())

    v0 = volume(0.0)
    assert v0 == pytest.approx(template.ventricles.sum(), rel=1e-6)
    assert 1.35 < volume(1.0) / v0 < 1.50  # documented: +43 %
    assert volume(2.0) / v0 > volume(1.0) / v0 and volume(-1.0) / v0 < 0.8


def test_hippocampus_and_atrophy_effects_have_their_documented_sizes() -> None:
    template = load_template()
    r = HIPPOCAMPUS_RADIUS_MM
    h = np.asarray(HIPPOCAMPUS_CENTRES_MM[0])
    axis = np.arange(-2 * r, 2 * r + 0.01, 0.5)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + h
    mapped = BrainSubject.neutral(hippocampus=1.0).template_points(grid, template)
    ratio = (np.linalg.norm(mapped - h, axis=1) < r).sum() / (np.linalg.norm(grid - h, axis=1) < r).sum()
    assert 0.78 < ratio < 0.83  # documented: -19.5 % within r

    # grey-matter volume over the brain on a 2 mm grid: -10 % for atrophy = 1, CSF takes it
    shape = np.array(template.maps["t1"].shape)
    ijk = np.stack(np.meshgrid(*[np.arange(0, n, 2.0) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    points = (template.affine[:3, :3] @ ijk.T).T + template.affine[:3, 3]
    healthy = BrainSubject.neutral().tissue(points, template)
    atrophied = BrainSubject.neutral(atrophy=1.0).tissue(points, template)
    loss = 1 - atrophied["gm"].sum() / healthy["gm"].sum()
    assert 0.08 < loss < 0.12
    np.testing.assert_allclose(atrophied["gm"] + atrophied["csf"], healthy["gm"] + healthy["csf"], atol=1e-5)
    np.testing.assert_array_equal(atrophied["wm"], healthy["wm"])


def test_rician_noise_floor_matches_the_rayleigh_mean() -> None:
    rng = np.random.default_rng(3)
    n, sigma = 40_000, 10.0
    background = rician_noise(np.zeros(n), sigma, rng)
    # |n1 + i n2| is Rayleigh: mean sigma sqrt(pi/2), sd sigma sqrt(2 - pi/2)
    se = sigma * math.sqrt(2 - math.pi / 2) / math.sqrt(n)
    assert abs(background.mean() - sigma * math.sqrt(math.pi / 2)) < 5 * se
    assert background.min() >= 0 and background.dtype == np.float32
    np.testing.assert_array_equal(rician_noise(np.ones(3), 0.0, rng), np.ones(3, np.float32))


# ------------------------------------------------------------------------------ slices


def test_make_brain_slices_shapes_labels_and_subjects() -> None:
    images, labels, subjects, spacing = make_brain_slices(3, slices_per_subject=2, size=16, classes=3, seed=1)
    n = 3 * 3 * 2
    assert images.shape == (n, 1, 16, 16) and images.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64 and subjects.shape == (n,)
    assert spacing == (FIELD_OF_VIEW_MM / 16, FIELD_OF_VIEW_MM / 16)
    assert np.isfinite(images).all() and images.min() >= 0 and 300 < images.max() < 2000
    assert np.bincount(labels).tolist() == [6, 6, 6]
    names, counts = np.unique(subjects, return_counts=True)
    assert len(names) == 9 and set(counts) == {2} and all(s.startswith("sub-") for s in names)
    for name in names:
        assert len(set(labels[subjects == name])) == 1  # one label per subject
        assert np.ptp(np.flatnonzero(subjects == name)) == 1  # its slices are consecutive


def test_make_brain_slices_is_deterministic_per_seed_and_subject() -> None:
    a = make_brain_slices(2, slices_per_subject=2, size=16, seed=5)
    b = make_brain_slices(2, slices_per_subject=2, size=16, seed=5)
    c = make_brain_slices(2, slices_per_subject=2, size=16, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])
    # subject i comes from child seed i: more subjects leave the first ones unchanged
    more = make_brain_slices(3, slices_per_subject=2, size=16, seed=5)
    np.testing.assert_array_equal(more[0][: len(a[0])], a[0])
    np.testing.assert_array_equal(more[2][: len(a[2])], a[2])
    # a SeedSequence is not consumed: passing it twice gives the same data
    seq = np.random.SeedSequence(5)
    first = make_brain_slices(1, slices_per_subject=1, size=16, seed=seq)[0]
    np.testing.assert_array_equal(make_brain_slices(1, slices_per_subject=1, size=16, seed=seq)[0], first)


def test_background_is_zero_plus_the_noise_floor() -> None:
    clean, *_ = make_brain_slices(1, slices_per_subject=1, size=32, noise=0.0, seed=2)
    noisy, *_ = make_brain_slices(1, slices_per_subject=1, size=32, noise=0.05, seed=2)
    corner = (slice(None), 0, slice(0, 3), slice(0, 3))  # 18 mm corners of the 192 mm field: no head
    assert (clean[corner] == 0).all()
    assert 0 < noisy[corner].mean() < 0.1 * noisy.max()


def _dark_fraction(images: np.ndarray) -> np.ndarray:
    """Per image: fraction of pixels darker than half the WM level in a box around the ventricles."""
    size = images.shape[-1]
    centres = (np.arange(size) + 0.5) * FIELD_OF_VIEW_MM / size - FIELD_OF_VIEW_MM / 2
    x, y = centres + BRAIN_CENTRE_MM[0], centres + BRAIN_CENTRE_MM[1]
    box = (np.abs(x)[None, :] < 30) & (y[:, None] > -50) & (y[:, None] < 30)
    wm = np.percentile(images[:, 0].reshape(len(images), -1), 95, axis=1)  # brightness-free
    return (images[:, 0][:, box] < 0.5 * wm[:, None]).mean(axis=1)


def _class_difference(effect: float, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean dark fraction and its standard error (one slice per subject, at z = 16 mm)."""
    images, labels, _, _ = make_brain_slices(20, slices_per_subject=1, size=64, classes=classes, effect=effect, seed=seed)
    dark = _dark_fraction(images)
    groups = [dark[labels == k] for k in range(classes)]
    return np.array([g.mean() for g in groups]), np.array([g.std(ddof=1) / math.sqrt(len(g)) for g in groups])


def test_effect_zero_gives_no_class_difference() -> None:
    mean, se = _class_difference(0.0, 2, seed=1)
    assert abs(mean[1] - mean[0]) < 4 * math.hypot(*se)


def test_effect_enlarges_the_dark_csf_spaces_class_by_class() -> None:
    mean, se = _class_difference(3.0, 3, seed=2)
    # classes 0, 1, 2 have effects 0, 1.5, 3: each step must exceed 4 standard errors
    for k in (1, 2):
        assert mean[k] - mean[k - 1] > 4 * math.hypot(se[k], se[k - 1])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 48}, "size"),
        ({"size": 2}, "size"),
        ({"classes": 1}, "classes"),
        ({"n_subjects_per_class": 0}, "n_subjects_per_class"),
        ({"slices_per_subject": 0}, "slices_per_subject"),
        ({"effect": -0.5}, "effect"),
        ({"noise": float("nan")}, "noise"),
        ({"classes": True}, "classes"),
        ({"subject_prefix": ""}, "subject_prefix"),
        ({"seed": -1}, "seed"),
    ],
)
def test_make_brain_slices_argument_errors_name_the_parameter(kwargs: dict, name: str) -> None:
    args = {"n_subjects_per_class": 1, **kwargs}
    with pytest.raises(ConfigError, match=rf"^{name}="):
        make_brain_slices(**args)


# ------------------------------------------------------------------------------ writing


def _small(out: Path, **kwargs) -> dict:
    return write_brain_slices(out, train_subjects_per_class=2, test_subjects_per_class=1, slices_per_subject=2, size=16, seed=4, **kwargs)


def test_write_brain_slices_reads_back_in_pacgan_layout(tmp_path: Path) -> None:
    out = tmp_path / "brains"
    summary = _small(out)
    sets = {split: read_slice_set(out / split, require_subjects=True) for split in ("train", "test")}
    assert len(sets["train"]) == 8 and len(sets["test"]) == 4
    streams = np.random.SeedSequence(4).spawn(2)
    for stream, split, per_class in ((streams[0], "train", 2), (streams[1], "test", 1)):
        images, labels, subjects, spacing = make_brain_slices(per_class, slices_per_subject=2, size=16, seed=stream, subject_prefix=split)
        got = sets[split]
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.labels, labels)
        assert got.subjects.tolist() == subjects.tolist()
        assert got.spacing_mm == pytest.approx(spacing)
        assert Path(got.source).name == "Real16x16.nii.gz"
        assert summary[split]["slices"] == len(labels) and summary[split]["slices_per_class"] == {"0": 2 * per_class, "1": 2 * per_class}
    # different people: disjoint IDs and different images
    assert not set(sets["train"].subjects) & set(sets["test"].subjects)
    assert not np.allclose(sets["train"].images[:4], sets["test"].images)
    written = json.loads((out / "dataset.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["parameters"]["seed"] == 4 and written["spacing_mm"] == [12.0, 12.0]


def test_write_brain_slices_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "brains"
    _small(out)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    with pytest.raises(OutputExistsError):
        _small(out, effect=2.0)
    assert {p: p.read_bytes() for p in files} == before
    # a lone existing target is also refused, before anything is written
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "dataset.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="dataset.json"):
        _small(lone)
    assert sorted(p.name for p in lone.rglob("*")) == ["dataset.json"]
    summary = _small(out, effect=2.0, force=True)
    assert summary["parameters"]["effect"] == 2.0
    assert json.loads((out / "dataset.json").read_text())["parameters"]["effect"] == 2.0
    assert not list(out.rglob(".*part*"))  # no temporary left behind


def test_write_brain_slices_argument_errors(tmp_path: Path) -> None:
    for kwargs, name in (({"train_subjects_per_class": 0}, "train_subjects_per_class"), ({"size": 100}, "size"), ({"effect": -1.0}, "effect")):
        with pytest.raises(ConfigError, match=rf"^{name}="):
            write_brain_slices(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()
