"""Shared fixtures: tiny phase-space files and tiny configs, so every test runs in seconds on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """A small phase-space GAN config as a plain dict, with per-section overrides."""
    base: dict[str, Any] = {
        "model": {"z_dim": 4, "g_width": 32, "g_depth": 1, "d_width": 32, "d_depth": 1},
        "loss": {"adversarial": "wasserstein", "penalty": "two_sided", "penalty_weight": 10.0, "d_steps": 2},
        "optim": {"G": {"lr": 1e-3}, "D": {"lr": 1e-3}},
        "train": {"total_rows": 8192, "batch_size": 256, "tick_rows": 2048, "checkpoint_rows": 4096, "progress": False, "ema_halflife_rows": 2000, "evaluate": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


@pytest.fixture
def gaussian_npy(tmp_path: Path) -> Path:
    """A 2-D correlated Gaussian (columns X, Y) with 4,000 rows as a gaga-style structured float32 .npy."""
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(1.0, 2.0, n)
    y = 0.5 * x + rng.normal(-1.0, 0.5, n)
    arr = np.zeros(n, dtype=[("X", "<f4"), ("Y", "<f4")])
    arr["X"], arr["Y"] = x, y
    path = tmp_path / "gauss.npy"
    np.save(path, arr)
    return path


# A tiny two-particle binning: 'toy' has layers 0 (2 r x 3 alpha = 6) and 2 (3 r x 1 = 3) -> 9 voxels;
# layer 1 is empty. 'other' uses the <Particle> tag, n_bin_R, and an n_bin_R="0" layer.
_TINY_BINNING_XML = """<Bins>
   <Bin pid="11" name="toy">
      <Layer id="0" r_edges="0,5,12.5" n_bin_alpha="3"/>
      <Layer id="1" r_edges="0" n_bin_alpha="1"/>
      <Layer id="2" r_edges="0,10,20,40" n_bin_alpha="1"/>
   </Bin>
   <Particle pid="211" name="pions">
      <Layer id="0" r_edges="0,1,2" n_bin_alpha="2" n_bin_R="2"/>
      <Layer id="1" r_edges="0,1" n_bin_alpha="1" n_bin_R="0"/>
   </Particle>
</Bins>
"""


@pytest.fixture
def tiny_binning_xml(tmp_path: Path) -> Path:
    """A CaloChallenge dataset-1-style binning XML with two particles ('toy': 9 voxels, 'pions': 4)."""
    path = tmp_path / "tiny_binning.xml"
    path.write_text(_TINY_BINNING_XML)
    return path


#: options that make a PACGAN run tiny (4 -> 16 px, 2 epochs a level, 16 channels): seconds on a CPU
PACGAN_TINY = ["--set", "model.image_size=16", "--set", "model.in_channels=16", "--set", "model.z_dim=8", "--set", "model.aux_hidden=8",
               "--set", "schedule.epochs=[2,2,2]", "--set", "schedule.batch_sizes=8", "--set", "evaluation.encoder_epochs=1",
               "--set", "evaluation.n_pairs=20", "--set", "train.tick_rows=64", "--device", "cpu"]


def write_toy_slices(folder: Path, n_subjects: int, seed: int, prefix: str) -> None:
    """Two classes of squares of different sizes, 3 slices per subject, intensities 0..1000 (so the scaling is exercised)."""
    from gansim.io.slices import write_slice_set

    rng = np.random.default_rng(seed)
    images, labels, subjects = [], [], []
    for s in range(n_subjects):
        label = s % 2
        for _ in range(3):
            image = rng.uniform(0, 200, size=(1, 16, 16))
            half = 3 + 2 * label + int(rng.integers(0, 2))
            image[0, 8 - half : 8 + half, 8 - half : 8 + half] = 900 + rng.normal(0, 20)
            images.append(image)
            labels.append(label)
            subjects.append(f"{prefix}{s:03d}")
    write_slice_set(folder / "Real16x16.nii.gz", np.asarray(images, np.float32), np.asarray(labels), subjects=np.asarray(subjects), spacing_mm=(1.5, 1.5))


#: options that make a CycleGAN run tiny (16³ patches, widths 4, 12 patches): seconds on a CPU
CYCLEGAN_TINY = ["--set", "data.patch=[16,16,16]", "--set", "model.width=4", "--set", "model.n_blocks=1", "--set", "model.d_width=4", "--set", "model.d_layers=2",
                 "--set", "train.total_rows=12", "--set", "train.tick_rows=4", "--set", "train.checkpoint_rows=6", "--device", "cpu"]


def _oblique_affine(spacing=(0.9, 1.1, 1.6), angles=(0.2, -0.15)) -> np.ndarray:
    cx, sx, cz, sz = np.cos(angles[0]), np.sin(angles[0]), np.cos(angles[1]), np.sin(angles[1])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = (-12.0, 20.0, -7.5)
    return affine


def write_toy_volume_pairs(root: Path, n_train: int = 2, shape=(26, 22, 20)) -> None:
    """Co-registered 'T1w'/'T2w' blobs (an ellipsoid with two tissues, contrast inverted) on an oblique, anisotropic grid, in LPS-like axis order."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    affine = _oblique_affine()
    affine[:3, 0] *= -1  # flip the first axis: not the canonical orientation
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    for split, count in (("train", n_train), ("test", 1)):
        for i in range(count):
            r = np.sqrt(((grid / np.array([0.7, 0.6, 0.5])[:, None, None, None]) ** 2).sum(0)) * (1 + 0.05 * rng.normal())
            inner = r < 0.5
            brain = r < 1.0
            t1 = np.where(inner, 800.0, np.where(brain, 500.0, 0.0)) + brain * rng.normal(0, 5, shape)  # a zero background: a box to crop to
            t2 = np.where(inner, 300.0, np.where(brain, 900.0, 0.0)) + brain * rng.normal(0, 5, shape)
            for domain, data in (("A", t1), ("B", t2)):
                folder = root / f"{split}{domain}"
                folder.mkdir(parents=True, exist_ok=True)
                image = nib.Nifti1Image(np.abs(data).astype(np.float32), affine)
                image.set_sform(affine, code=2)
                image.set_qform(affine, code=1)
                nib.save(image, folder / f"ing{i:02d}.nii.gz")
