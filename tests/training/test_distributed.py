"""DistributedDataParallel under torchrun on CPU (gloo), two processes: training and generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gansim.io.phsp import read_table

from conftest import tiny_config


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gansim", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_train_and_generate_with_two_processes(gaussian_npy: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(train={"total_rows": 4096, "batch_size": 128, "device": "cpu"})))
    run = tmp_path / "run"
    result = _torchrun("train", str(gaussian_npy), str(cfg), "-o", str(run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["training"]["processes"] == 2
    # rows are counted for the whole job: 2 processes × 128 rows × 2 D steps per iteration
    assert manifest["training"]["rows_seen"] == manifest["training"]["iterations"] * 2 * 128 * 2
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats and all(np.isfinite(r["loss/D"]) for r in stats)

    # generation split over two processes gives the file one process writes
    out2 = tmp_path / "two.npy"
    result = _torchrun("generate", str(run / "model"), "-n", "70001", "-o", str(out2), "--seed", "9", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "gansim", "generate", str(run / "model"), "-n", "70001", "-o", str(tmp_path / "one.npy"), "--seed", "9", "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = read_table(out2), read_table(tmp_path / "one.npy")
    for key in ("X", "Y"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5)
    assert not any(p.name.startswith(".two.npy.part") for p in tmp_path.iterdir())


def test_resume_under_ddp_equals_uninterrupted(gaussian_npy: Path, tmp_path: Path) -> None:
    """Each process's data position and RNG streams are checkpointed: a resumed 2-process run is bit-identical."""
    from safetensors.torch import load_file

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_config(train={"total_rows": 4096, "batch_size": 128, "device": "cpu", "tick_rows": 1024})))
    full, split = tmp_path / "full", tmp_path / "split"
    assert _torchrun("train", str(gaussian_npy), str(cfg), "-o", str(full), cwd=tmp_path).returncode == 0
    first = _torchrun("train", str(gaussian_npy), str(cfg), "-o", str(split), "--total-rows", "2500", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _torchrun("train", str(gaussian_npy), "-o", str(split), "--resume", "--total-rows", "4096", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = load_file(str(full / "model" / "weights.safetensors")), load_file(str(split / "model" / "weights.safetensors"))
    for key in a:
        assert (a[key] == b[key]).all(), key
    la = [json.loads(x)["loss/D"] for x in (full / "stats.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss/D"] for x in (split / "stats.jsonl").read_text().splitlines()]
    assert la == lb


def test_shower_gan_trains_with_two_processes(tmp_path: Path) -> None:
    """The modern shower GAN on a CaloChallenge file under torchrun: one model, rows counted for the whole job."""
    from gansim.data.calo import make_calo_showers
    from gansim.io.calo import write_calochallenge

    write_calochallenge(tmp_path / "ds2.h5", make_calo_showers(60, "eplus", seed=3, layout="calochallenge-ds2"))
    run = tmp_path / "run"
    tiny = ["--set", "model.latent_dim=8", "--set", "model.g_width=32", "--set", "model.g_depth=1", "--set", "model.d_width=32", "--set", "model.d_depth=1",
            "--set", "train.progress=false", "--set", "train.evaluate=false", "--set", "train.tick_rows=32", "--set", "train.checkpoint_rows=64"]
    result = _torchrun("train", str(tmp_path / "ds2.h5"), "-o", str(run), "--total-rows", "128", "--batch-size", "8", "--device", "cpu", *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["family"] == "showergan" and manifest["training"]["processes"] == 2
    # 2 processes x 8 showers x 2 critic batches per iteration
    assert manifest["training"]["rows_seen"] == 128 == manifest["training"]["iterations"] * 2 * 8 * 2
    assert result.stdout.count("model written to") == 1


def test_pacgan_trains_and_generates_with_two_processes(tmp_path: Path) -> None:
    """PACGAN under torchrun: each process its share of every epoch, the level schedule counted for the whole job,
    the validation the same on every process; generation shared out and gathered by process 0."""
    from gansim.io.slices import read_slice_set

    from conftest import PACGAN_TINY, write_toy_slices

    write_toy_slices(tmp_path / "data", 20, 0, "s")
    run = tmp_path / "run"
    result = _torchrun("train", str(tmp_path / "data"), "-o", str(run), *PACGAN_TINY, "--set", "train.evaluate=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    training = manifest["training"]
    assert training["processes"] == 2
    assert training["rows_seen"] >= training["data"]["schedule"]["total_images"]
    history = [json.loads(line) for line in (run / "validation.jsonl").read_text().splitlines()]
    assert [(r["level"], r["epoch"]) for r in history] == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    out = tmp_path / "gen" / "two.nii.gz"
    result = _torchrun("generate", str(run / "model"), "--per-class", "3,2", "-o", str(out), "--seed", "4", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "gansim", "generate", str(run / "model"), "--per-class", "3,2", "-o", str(tmp_path / "one" / "one.nii.gz"),
                             "--seed", "4", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = read_slice_set(out), read_slice_set(tmp_path / "one" / "one.nii.gz")
    assert a.labels.tolist() == b.labels.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_allclose(a.images, b.images, rtol=1e-5, atol=1e-3)


def test_cyclegan_trains_with_two_processes(tmp_path: Path) -> None:
    """The 3-D CycleGAN under torchrun: both processes draw their own patches, one model is written."""
    from conftest import CYCLEGAN_TINY, write_toy_volume_pairs

    write_toy_volume_pairs(tmp_path / "vols")
    run = tmp_path / "run"
    result = _torchrun("train", str(tmp_path / "vols"), "-o", str(run), *CYCLEGAN_TINY, "--set", "train.evaluate=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads((run / "model" / "manifest.json").read_text())["training"]
    assert training["processes"] == 2 and training["rows_seen"] == training["iterations"] * 2  # batch 1 per process
