"""Orthogonal views of 3-D volumes (input, output, target, difference) for the translation report."""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.metrics.image_report import write_image_report
from gansim.metrics.report import _pyplot
from gansim.metrics.volume_quality import evaluate_pairs
from gansim.metrics.volume_report import (
    PLANES,
    orthogonal_views,
    plane_slice,
    subject_section,
    training_views,
    views_figure,
)

SHAPE = (20, 24, 8)
SPACING = (1.0, 1.5, 3.0)  # mm: deliberately anisotropic


def _alts(text: str) -> list[str]:
    tags = re.findall(r"<img [^>]*>", text)
    assert tags and all('src="data:image/png;base64,' in t for t in tags)
    for t in tags:
        assert base64.b64decode(re.search(r'base64,([^"]+)"', t).group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    return [html.unescape(a) for t in tags for a in re.findall(r'alt="([^"]*)"', t)]


def _volumes(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE), indexing="ij")
    head = sum(g**2 for g in grids) < 0.8
    t1 = np.where(head, 600.0, 0.0) + rng.normal(0, 5, SHAPE)
    t2 = np.where(head, 1200.0, 0.0) + rng.normal(0, 5, SHAPE)
    out = t2 + rng.normal(0, 40, SHAPE)
    return t1, out, t2


# ----------------------------------------------------------------------------------------------
# geometry and orientation


def test_plane_slice_orientation_and_extent() -> None:
    vol = np.zeros(SHAPE)
    vol[17, 3, 6] = 1.0  # a voxel to the right (high i), posterior (low j), superior (high k)
    center = (17, 3, 6)
    image, extent, axes = plane_slice(vol, "axial", center, SPACING)
    assert image.shape == (SHAPE[1], SHAPE[0]) and axes == (0, 1)  # rows j (vertical), columns i (horizontal)
    assert image[3, 17] == 1.0
    assert extent == (0.0, SHAPE[0] * SPACING[0], 0.0, SHAPE[1] * SPACING[1])
    image, extent, axes = plane_slice(vol, "coronal", center, SPACING)
    assert image.shape == (SHAPE[2], SHAPE[0]) and axes == (0, 2) and image[6, 17] == 1.0
    assert extent == (0.0, 20.0, 0.0, 24.0)
    image, extent, axes = plane_slice(vol, "sagittal", center, SPACING)
    assert image.shape == (SHAPE[2], SHAPE[1]) and axes == (1, 2) and image[6, 3] == 1.0
    assert extent == (0.0, 36.0, 0.0, 24.0)
    with pytest.raises(ConfigError, match="plane"):
        plane_slice(vol, "oblique", center, SPACING)


def test_panels_keep_the_physical_aspect_ratio() -> None:
    t1, out, _ = _volumes()
    fig, _ = views_figure([("input", t1), ("output", out)], SPACING)
    try:
        fig.canvas.draw()
        panels = [ax for ax in fig.axes if ax.get_xlabel()]  # the colour bars carry no x label
        assert len(panels) == 6
        mm = {"axial": (20.0, 36.0), "coronal": (20.0, 24.0), "sagittal": (36.0, 24.0)}  # (width, height) in mm
        for index, ax in enumerate(panels):
            plane = PLANES[index % 3][0]
            box = ax.get_window_extent()
            width, height = mm[plane]
            assert box.width / box.height == pytest.approx(width / height, rel=0.02), plane
            left, right, bottom, top = ax.images[0].get_extent()
            assert (right - left, top - bottom) == (width, height)
            assert ax.images[0].origin == "lower"
    finally:
        _pyplot().close(fig)


# ----------------------------------------------------------------------------------------------
# windows


def test_difference_row_is_symmetric_and_intensity_rows_share_a_window() -> None:
    _, out, t2 = _volumes()
    diff = out - t2
    fig, description = views_figure([("output", out, "output"), ("target", t2, "output"), ("difference", diff)], SPACING)
    try:
        panels = [ax for ax in fig.axes if ax.get_xlabel()]
        output_row, target_row, diff_row = panels[0:3], panels[3:6], panels[6:9]
        clims = {ax.images[0].get_clim() for ax in output_row + target_row}
        assert len(clims) == 1
        lo, hi = clims.pop()
        expected = np.percentile(np.concatenate([out.ravel(), t2.ravel()]), (0.5, 99.5))
        assert (lo, hi) == pytest.approx(tuple(expected))
        for ax in diff_row:
            dlo, dhi = ax.images[0].get_clim()
            assert dlo == -dhi and dhi == pytest.approx(np.percentile(np.abs(diff), 99.5))
            assert ax.images[0].get_cmap().name == "RdBu_r"
        assert all(ax.images[0].get_cmap().name == "gray" for ax in output_row + target_row)
        assert "percentiles" in description and "difference ±" in description
        assert "percentiles" in fig.get_suptitle()
    finally:
        _pyplot().close(fig)


def test_given_windows() -> None:
    t1, out, t2 = _volumes()
    fig, description = views_figure([("input", t1), ("difference", out - t2)], SPACING, window={"intensity": (0, 500), "difference": (-30, 10)})
    try:
        panels = [ax for ax in fig.axes if ax.get_xlabel()]
        assert panels[0].images[0].get_clim() == (0.0, 500.0)
        assert panels[3].images[0].get_clim() == (-30.0, 30.0)  # a given difference window is made symmetric
        assert "(given)" in description
    finally:
        _pyplot().close(fig)
    with pytest.raises(ConfigError, match="window"):
        orthogonal_views([("input", t1)], SPACING, window=(5, 5))
    with pytest.raises(ConfigError, match="groups"):
        orthogonal_views([("input", t1)], SPACING, window={"nope": (0, 1)})


# ----------------------------------------------------------------------------------------------
# the tags


def test_orthogonal_views_tag_names_rows_planes_and_convention() -> None:
    t1, out, _ = _volumes()
    tag = orthogonal_views([("input", t1), ("output", out)], SPACING, center=(5, 6, 7), title="views")
    (alt,) = _alts(tag)
    for word in ("axial (XY plane at z = 7)", "coronal (XZ plane at y = 6)", "sagittal (YZ plane at x = 5)", "rows input, output", "neurological convention", "spacing 1 x 1.5 x 3 mm"):
        assert word in alt


def test_subject_section_with_and_without_target() -> None:
    t1, out, t2 = _volumes()
    row = evaluate_pairs([("sub-01", out, t2, None)])["rows"][0]
    heading, fragment = subject_section("sub-01", t1, out, t2, SPACING, row)
    assert heading == "subject sub-01"
    assert "<table>" in fragment and "<th>mae</th>" in fragment and "<th>subject</th>" not in fragment
    (alt,) = _alts(fragment)
    assert "rows input, output, target, difference (output - target)" in alt
    heading, fragment = subject_section("sub-02", t1, out, None, SPACING, None)
    (alt,) = _alts(fragment)
    assert "rows input, output;" in alt and "target" not in alt and "<table>" not in fragment
    with pytest.raises(DataError, match="sub-03"):
        subject_section("sub-03", t1, out, t2[:, :, :4], SPACING, None)
    bad = out.copy()
    bad[2, 2, 2] = np.nan
    with pytest.raises(DataError, match="subject 'sub-04': volume 'output'.*NaN"):
        subject_section("sub-04", t1, bad, None, SPACING, None)


def test_training_views_one_row_per_snapshot() -> None:
    t1, out, t2 = _volumes()
    snapshots = [(0, t1, 0.1 * out, t2), (640, t1, 0.7 * out, t2), (1280, t1, out, t2)]
    (alt,) = _alts(training_views(snapshots, SPACING))
    assert "rows input, target, output, 0 seen, output, 640 seen, output, 1,280 seen" in alt
    assert "percentiles of the target" in alt
    # without targets, and with an input that changes at the second snapshot
    other = t1[::-1]
    (alt,) = _alts(training_views([(0, t1, out, None), (10, other, out, None)], SPACING))
    assert "rows input, output, 0 seen, input (from 10), output, 10 seen" in alt
    with pytest.raises(DataError, match="rows_seen"):
        training_views([(-1, t1, out, None)], SPACING)
    with pytest.raises(DataError, match="non-empty"):
        training_views([], SPACING)


def test_training_views_share_the_target_window() -> None:
    t1, out, t2 = _volumes()
    lo, hi = np.percentile(t2, (0.5, 99.5))
    tag = training_views([(0, t1, 5 * out, t2)], SPACING)
    (alt,) = _alts(tag)
    assert f"output [{lo:.4g}, {hi:.4g}]" in alt


# ----------------------------------------------------------------------------------------------
# bad input


def test_bad_volumes_and_settings_are_refused() -> None:
    t1, out, _ = _volumes()
    with pytest.raises(DataError, match="one \\(X, Y, Z\\) grid"):
        orthogonal_views([("input", t1), ("output", out[:-1])], SPACING)
    with pytest.raises(DataError, match="3-D"):
        orthogonal_views([("input", t1[0])], SPACING)
    bad = t1.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="'input'.*NaN"):
        orthogonal_views([("input", bad)], SPACING)
    with pytest.raises(ConfigError, match="spacing_mm"):
        orthogonal_views([("input", t1)], (1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="spacing_mm"):
        orthogonal_views([("input", t1)], (1.0, 1.0))
    with pytest.raises(ConfigError, match="center"):
        orthogonal_views([("input", t1)], SPACING, center=(0, 0, SHAPE[2]))
    with pytest.raises(DataError, match="non-empty"):
        orthogonal_views([], SPACING)


# ----------------------------------------------------------------------------------------------
# the report file


def test_report_with_several_subjects(tmp_path) -> None:
    subjects = {f"sub-{i:02d}": _volumes(seed=i) for i in range(2)}
    result = evaluate_pairs([(name, out, t2, None) for name, (_, out, t2) in subjects.items()])
    rows = {r["subject"]: r for r in result["rows"]}
    sections = [subject_section(name, t1, out, t2, SPACING, rows[name]) for name, (t1, out, t2) in subjects.items()]
    t1, out, t2 = subjects["sub-00"]
    sections.append(("training", training_views([(0, t1, 0.5 * out, t2), (100, t1, out, t2)], SPACING)))
    path = write_image_report(tmp_path / "report.html", title="T1w to T2w", sections=sections)
    text = path.read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]*)</h2>", text) == ["subject sub-00", "subject sub-01", "training"]
    alts = _alts(text)
    assert len(alts) == 3 and all("axial" in a and "coronal" in a and "sagittal" in a for a in alts)
    assert text.count("<table>") == 2
    with pytest.raises(OutputExistsError):
        write_image_report(path, title="again", sections=sections)
