"""The labelled-image (PACGAN) report: image grids, training curves, ROC/confusion figures, tables, the one-file HTML."""

from __future__ import annotations

import base64
import html
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.metrics.classification import classification_summary, confusion, roc_curves
from gansim.metrics.image_report import (
    classification_sections,
    confusion_figure,
    display_window,
    image_grid,
    image_mosaic,
    metrics_table,
    roc_figure,
    training_curves,
    write_image_report,
)


def _images(text: str) -> list[str]:
    """Alt texts of the embedded PNGs in ``text`` (each must carry base64 PNG data)."""
    tags = re.findall(r"<img [^>]*>", text)
    assert all('src="data:image/png;base64,' in t for t in tags)
    return [html.unescape(a) for t in tags for a in re.findall(r'alt="([^"]*)"', t)]


def _png_size(tag: str) -> tuple[int, int]:
    """(width, height) in pixels of the PNG embedded in one <img> tag (from its IHDR chunk)."""
    data = base64.b64decode(re.search(r"base64,([^\"]+)\"", tag).group(1))
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _headings(text: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r"<h2>([^<]*)</h2>", text)]


def _labelled(n_per_class: int, k: int, seed: int = 0, shape: tuple[int, int, int] = (1, 16, 16)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class)
    x = np.tanh(rng.normal(size=(len(y), *shape)))
    return x, y


# ----------------------------------------------------------------------------------------------
# image grids


def test_mosaic_has_one_row_per_class() -> None:
    x, y = _labelled(5, 3, shape=(1, 16, 12))
    mosaic, counts, window = image_mosaic(x, y, n_classes=3, per_class=4)
    # 3 rows of 16 px and 4 columns of 12 px, 2 px gaps between tiles
    assert mosaic.shape == (3 * 16 + 2 * 2, 4 * 12 + 3 * 2, 3)
    assert counts == [4, 4, 4] and "[-1, 1]" in window
    # row 1, column 2 is the third image of class 1, mapped from [-1, 1] to [0, 1], gray in all three channels
    tile = mosaic[18:34, 28:40]
    expected = (x[np.flatnonzero(y == 1)[2], 0] + 1) / 2
    for c in range(3):
        np.testing.assert_allclose(tile[..., c], expected, atol=1e-12)
    assert np.all(mosaic[16:18] == 1.0)  # white gap between rows


def test_mosaic_with_a_missing_class_rgb_and_physical_window() -> None:
    rng = np.random.default_rng(1)
    x = 1000.0 * rng.random((6, 3, 8, 8))  # physical intensities, RGB
    y = np.array([0, 0, 0, 2, 2, 2])
    mosaic, counts, _ = image_mosaic(x, y, n_classes=3, per_class=2)
    assert mosaic.shape == (3 * 8 + 4, 2 * 8 + 2, 3)
    assert counts == [2, 0, 2]
    assert np.all(mosaic[10:18] == 1.0)  # class 1 has no image: a white row
    lo, hi, text = display_window(x[[0, 1, 3, 4]])
    assert "quantiles" in text and 0 < lo < 20 and 980 < hi < 1000  # 0.5 / 99.5 % of uniform [0, 1000)
    np.testing.assert_allclose(mosaic[:8, :8], np.clip((x[0] - lo) / (hi - lo), 0, 1).transpose(1, 2, 0))
    # a given window is used as is
    _, _, text = image_mosaic(x, y, 3, 2, window=(0.0, 500.0))
    assert text == "window [0, 500] (given)"


def test_image_grid_png_grows_with_the_classes() -> None:
    x, y = _labelled(8, 3)
    three = image_grid(x, y, ["CN", "MCI", "AD"], per_class=8, title="real slices")
    one = image_grid(x[y == 0], y[y == 0], ["CN"], per_class=8, title="real slices")
    (alt,) = _images(three)
    assert alt.startswith("real slices: up to 8 images per class (CN, MCI, AD)") and "[-1, 1]" in alt
    (w3, h3), (w1, h1) = _png_size(three), _png_size(one)
    assert w3 == pytest.approx(w1, rel=0.1)
    assert h3 > 2 * h1  # three rows of tiles against one (plus the same title margin)
    # one class present among two names; fewer images than per_class
    assert _images(image_grid(x[:3], np.zeros(3, int), ["CN", "AD"], per_class=8, title="t"))


def test_image_grid_errors() -> None:
    x, y = _labelled(2, 2)
    with pytest.raises(DataError, match=r"images: expected an \(N, C, H, W\) array with C = 1"):
        image_grid(np.zeros((4, 2, 8, 8)), y, ["a", "b"])
    with pytest.raises(DataError, match=r"labels: class indices must lie in \[0, 1\]"):
        image_grid(x, y + 1, ["a", "b"])
    with pytest.raises(DataError, match="labels: expected 4"):
        image_grid(x, y[:3], ["a", "b"])
    with pytest.raises(ConfigError, match="per_class"):
        image_grid(x, y, ["a", "b"], per_class=0)


# ----------------------------------------------------------------------------------------------
# training curves


def test_training_curves_from_the_loops_stats(gaussian_npy: Path, tmp_path: Path) -> None:
    """Records written by the real training loop (rows_seen, iterations, loss/D, loss/G, D/..., lr/..., rows_per_s)."""
    from conftest import tiny_config

    from gansim.config import parse_config
    from gansim.models.phsp_gan import PhaseSpaceGANConfig
    from gansim.models.phsp_train import train_phase_space
    from gansim.training.stats import read_stats

    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(train={"total_rows": 4096, "tick_rows": 1024}))
    train_phase_space(gaussian_npy, cfg, tmp_path / "run", log=lambda *_: None)
    records = read_stats(tmp_path / "run")
    assert len(records) >= 3 and {"rows_seen", "loss/D", "loss/G"} <= set(records[0])
    tag = training_curves(records, [0, 2048], [4, 8])
    (alt,) = _images(tag)
    assert "losses" in alt and "discriminator" in alt and "4 px, 8 px" in alt
    assert "lr/" not in alt


def test_training_curves_edge_cases() -> None:
    assert "<img" not in training_curves([], [], [])
    assert "<img" not in training_curves([{"rows_seen": 10, "lr/D": 1e-3, "rows_per_s": 5.0}], [0], [4])
    one = [{"rows_seen": 64, "iterations": 1, "loss/D": -0.5, "loss/G": 0.2, "val/auc": 0.7, "G/cls": 0.6}]
    (alt,) = _images(training_curves(one, [], []))
    assert alt.startswith("training curves: losses, generator, validation")
    with pytest.raises(DataError, match="level_starts and sizes"):
        training_curves(one, [0, 100], [4])


# ----------------------------------------------------------------------------------------------
# classification figures and tables


def test_roc_and_confusion_figures() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet([1, 1, 1], 200)
    names = ["CN", "MCI", "AD"]
    roc = roc_curves(y, p, class_names=names)
    (alt,) = _images(roc_figure(roc, "test ROC"))
    assert alt.startswith("test ROC: CN AUC") and "AD AUC" in alt
    assert "<img" not in roc_figure({}, "empty")
    (alt,) = _images(confusion_figure(confusion(y, p.argmax(1), 3), names, "test confusion"))
    assert alt.startswith("test confusion: rows true class")
    # a class without images: its row is all zeros, no division warning
    with np.errstate(all="raise"):
        assert _images(confusion_figure(np.array([[3, 1], [0, 0]]), ["a", "b"]))
    with pytest.raises(DataError, match=r"matrix: expected a square \(3, 3\)"):
        confusion_figure(np.zeros((2, 2)), names)


def test_metrics_table() -> None:
    table = metrics_table(
        [{"name": "FID <rr>", "value": 1.23456789, "n": 200, "ok": True}, {"name": "KID", "value": float("nan"), "n": np.int64(3)}],
        ["name", "value", "n", "ok"],
    )
    cells = [html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", table)]
    assert cells == ["FID <rr>", "1.235", "200", "True", "KID", "—", "3", "—"]
    assert "FID &lt;rr&gt;" in table
    assert [html.unescape(h) for h in re.findall(r"<th>([^<]*)</th>", table)] == ["name", "value", "n", "ok"]


def test_classification_sections() -> None:
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 40)
    p = rng.dirichlet([1, 1, 1], 120) + 0.5 * np.eye(3)[y]
    p /= p.sum(axis=1, keepdims=True)
    names = ["CN", "MCI", "AD"]
    full = classification_sections(classification_summary(y, p, names, n_boot=200), title="test set")
    assert [h for h, _ in full] == ["test set: scores", "test set: per class", "test set: ROC", "test set: confusion matrix"]
    assert "95 % CI [" in full[0][1] and "one-vs-rest" in full[0][1]
    unlabelled = classification_sections(classification_summary(None, p, names))
    assert len(unlabelled) == 1 and "predicted" in unlabelled[0][0]
    one_class = classification_sections(classification_summary(np.zeros(120, int), p, names))
    assert [h for h, _ in one_class] == ["classification: scores", "classification: per class", "classification: confusion matrix"]
    assert "does not occur" in html.unescape(one_class[0][1])


# ----------------------------------------------------------------------------------------------
# the report file


def test_write_image_report(tmp_path: Path) -> None:
    x, y = _labelled(4, 2)
    rng = np.random.default_rng(5)
    p = rng.dirichlet([1, 1], 8)
    sections = [("Real <images>", image_grid(x, y, ["CN", "AD"], title="real")), *classification_sections(classification_summary(y, p, ["CN", "AD"], n_boot=100))]
    manifest = {"family": "pacgan", "classes": ["CN", "AD"], "lr": np.float32(0.5), "shape": np.array([1, 16, 16]), "note": "a < b"}
    path = write_image_report(tmp_path / "report.html", title="PACGAN <test> & report", sections=sections, manifest=manifest, notes=["8 images"])
    text = path.read_text(encoding="utf-8")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["report.html"]  # one file, no temporary left
    assert "<title>PACGAN &lt;test&gt; &amp; report</title>" in text and "<h1>PACGAN &lt;test&gt; &amp; report</h1>" in text
    assert "<test>" not in text
    assert _headings(text) == ["Real <images>", "classification: scores", "classification: per class", "classification: ROC", "classification: confusion matrix", "Model manifest"]
    alts = _images(text)
    assert len(alts) == 3 and alts[0].startswith("real:") and alts[1].startswith("classification: ROC") and alts[2].startswith("classification: confusion")
    shown = re.search(r"<details><summary>[^<]*</summary><pre>(.*?)</pre></details>", text, re.DOTALL).group(1)
    assert json.loads(html.unescape(shown)) == {"family": "pacgan", "classes": ["CN", "AD"], "lr": 0.5, "shape": [1, 16, 16], "note": "a < b"}
    assert "\n  \"family\"" in html.unescape(shown)  # indented


def test_write_image_report_force(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.html"
    write_image_report(path, title="first", sections=[])
    with pytest.raises(OutputExistsError, match="report.html"):
        write_image_report(path, title="second", sections=[])
    assert "<h1>first</h1>" in path.read_text()
    write_image_report(path, title="second", sections=[("only", "<p>x</p>")], force=True)
    text = path.read_text()
    assert "<h1>second</h1>" in text and _headings(text) == ["only"] and "<details>" not in text
    assert sorted(f.name for f in path.parent.iterdir()) == ["report.html"]
