"""A short CPU training of PACGAN on the built-in brain slices, through the command line: test-split AUC, validation AUC, image quality.

1. writes the built-in data (``gansim.data.brain_slices.write_brain_slices``: 2 classes, 40 train + 15
   test subjects per class, 4 axial slices each, 64×64 px by default);
2. times a few iterations of every level with the run's architecture (the real objective in the real
   loop, random images) and picks the epochs per level (the same for every level, as PACGAN) so
   that the whole schedule fits the time budget; ``train.max_wall_time_s`` stops it in any case;
3. trains ``gansim train DATA/train -o RUN`` in a child process: levels 4 → 64 px, PACGAN's widths
   from ``--in-channels`` (default 64: 64, 64, 32, 16, 8 channels; on one core of the benchmark
   machine 128 channels ran 221 s per epoch of every level, 64 channels 74 s), z 512, embedding 3, batch
   sizes [32, 32, 32, 16, 16] and one critic step per generator step (PACGAN's, cut to 5 levels), validation mode ``validate`` (4/5 of the training
   subjects train, the other 1/5 scores every epoch; each level continues from its best epoch);
4. ``gansim classify RUN/model DATA/test/Real64x64.nii.gz --labels DATA/test/labels.csv``: the
   whole-set test AUC with its 95 % interval (a bootstrap over subjects, as ``gansim classify`` does when
   labels.csv names them), and per subject (the mean P(AD) of its slices);
5. reads the validation AUC and the image-quality numbers (encoder FD and KID, radiomics FD, with
   the real-versus-real baseline) from the model's manifest, times ``gansim generate --per-class
   100,100``, and, for context, runs the plain CNN of ``brain_slices_separability.py`` on the same data.

    python benchmarks/pacgan_brain_slices.py [--minutes 15] [--out DIR] [--force] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pacgan_speed import machine, pacgan_config, run_child, sgemm_gflops, time_level  # noqa: E402

BATCH_SIZES = [32, 32, 32, 16, 16, 16, 16]  # PACGAN's, cut to the levels
CRITIC_ITERATIONS = [1, 1, 1, 1, 1, 2, 2]
#: share of the budget the planned schedule may use (the rest: validation after every epoch, noise)
PLAN_FRACTION = 0.85


def training_split_size(data_dir: Path, n_folds: int = 5, fold: int = 4, seed: int = 8) -> tuple[int, int]:
    """(training, validation) images of gansim's default subject split (PACGAN's: fold 4 of 5, seed 8)."""
    from gansim.data.subject_split import stratified_group_split

    with open(data_dir / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = np.array([int(r["Label"]) for r in rows])
    subjects = np.array([r["Subject_ID"] for r in rows])
    train, val = stratified_group_split(labels, subjects, n_folds, fold, seed, source=str(data_dir / "labels.csv"))
    return len(train), len(val)


def plan_epochs(speeds: list[float], n_train: int, budget_s: float) -> int:
    """Epochs per level (the same for all) whose schedule takes at most PLAN_FRACTION of ``budget_s`` at ``speeds`` (images/s per level)."""
    seconds_per_epoch = sum(n_train / s for s in speeds)
    return max(1, int(PLAN_FRACTION * budget_s / seconds_per_epoch))


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IDs, labels, probabilities (N, K)) from ``gansim classify``'s predictions.csv."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    p_cols = [c for c in rows[0] if c.startswith("P_")]
    ids = np.array([int(r["ID"]) for r in rows])
    labels = np.array([int(r["Label"]) for r in rows])
    return ids, labels, np.array([[float(r[c]) for c in p_cols] for r in rows])


def subjects_of(ids: np.ndarray, labels_csv: Path) -> np.ndarray:
    """The Subject_ID of each image ``ids`` (indices into the NIfTI stack) from its labels.csv."""
    with open(labels_csv, newline="", encoding="utf-8") as f:
        subject_of = {int(r["ID"]): r["Subject_ID"] for r in csv.DictReader(f)}
    return np.array([subject_of[int(i)] for i in ids])


def subject_auc(labels: np.ndarray, p1: np.ndarray, subjects: np.ndarray) -> tuple[float, int]:
    """AUC of each subject's mean P(class 1) over its slices; (AUC, subjects)."""
    from sklearn.metrics import roc_auc_score

    names, inverse = np.unique(subjects, return_inverse=True)
    mean = np.bincount(inverse, weights=p1) / np.bincount(inverse)
    label = np.zeros(len(names), dtype=int)
    label[inverse] = labels
    return float(roc_auc_score(label, mean)), len(names)


def _fmt(v: Any, spec: str = ".4g") -> str:
    return "—" if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget (train.max_wall_time_s); the epochs are planned to fit it")
    parser.add_argument("--out", type=Path, default=None, help="working folder: data/, run/, predictions, generated images, results.json (default: a new folder under the temporary directory, kept)")
    parser.add_argument("--force", action="store_true", help="reuse a non-empty --out, overwriting what this script writes there")
    parser.add_argument("--size", type=int, default=64, help="image side (levels 4 .. size)")
    parser.add_argument("--in-channels", type=int, default=64, help="level-0 width (PACGAN: 512; 128 leaves 3 epochs per level in 15 minutes of one core)")
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per level (default: planned from a timing of every level)")
    parser.add_argument("--subjects", type=int, default=40, help="training subjects per class")
    parser.add_argument("--test-subjects", type=int, default=15, help="test subjects per class")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--cnn-epochs", type=int, default=30, help="epochs of the plain CNN baseline (brain_slices_separability.py)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 16 px, 32 channels, 10+5 subjects per class, 0.5 min, small evaluation, no CNN baseline")
    args = parser.parse_args()
    extra_sets: list[str] = []
    if args.quick:
        args.size, args.in_channels, args.z_dim, args.subjects, args.test_subjects, args.minutes = 16, 32, 64, 10, 5, min(args.minutes, 0.5)
        extra_sets = ["evaluation.encoder_epochs=2", "evaluation.n_pairs=20"]
    if args.out is None:
        import tempfile

        args.out = Path(tempfile.mkdtemp(prefix="gansim-pacgan-brain-"))  # a fresh folder, so `make bench` can run twice
    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        parser.error(f"{out} is not empty; pass --force to overwrite what this script writes there, or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    force = ["--force"] if args.force else []
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    info = machine()
    info["sgemm_gflops"] = sgemm_gflops(device)
    print(f"machine: {info['cpu']}, {info['cores']} cores usable, torch {info['torch']}, {info['threads']} threads, device {device}; "
          f"2048² float32 matmul {info['sgemm_gflops']:.1f} GFLOP/s", flush=True)
    results: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}

    # 1. the built-in data
    from gansim.data.brain_slices import write_brain_slices

    t0 = time.perf_counter()
    data = out / "data"
    summary = write_brain_slices(data, train_subjects_per_class=args.subjects, test_subjects_per_class=args.test_subjects, size=args.size, seed=0, force=args.force)
    results["data"] = {"seconds": time.perf_counter() - t0, "train": summary["train"], "test": summary["test"], "spacing_mm": summary["spacing_mm"]}
    n_train, n_val = training_split_size(data / "train")
    print(f"data: {summary['train']['slices']} training slices ({summary['train']['subjects']} subjects; split {n_train} train / {n_val} validation), "
          f"{summary['test']['slices']} test slices ({summary['test']['subjects']} subjects), {args.size}×{args.size} px, "
          f"written in {results['data']['seconds']:.0f} s", flush=True)

    # 2. the schedule: epochs per level from a timing of every level
    n_levels = int(np.log2(args.size // 4)) + 1
    batch_sizes, critic_iterations = BATCH_SIZES[:n_levels], CRITIC_ITERATIONS[:n_levels]
    cfg = pacgan_config(args.size, in_channels=args.in_channels, z_dim=args.z_dim, batch_sizes=batch_sizes, critic_iterations=critic_iterations, device=args.device)
    budget = 60.0 * args.minutes
    speeds = []
    for level in range(n_levels):
        r = time_level(cfg, level, device, seconds=1.0 if args.quick else 4.0, warmup=1, min_iterations=2)
        speeds.append(r["images_per_s"])
    epochs = args.epochs or plan_epochs(speeds, n_train, budget)
    planned = sum(epochs * n_train / s for s in speeds)
    print(f"levels {cfg.model.sizes} px, widths {cfg.model.widths()}, batch sizes {batch_sizes}; measured "
          f"{', '.join(f'{s:.0f}' for s in speeds)} images/s per level -> {epochs} epochs per level, planned {planned:.0f} s of a {budget:.0f} s budget", flush=True)
    results["plan"] = {"images_per_s": speeds, "epochs_per_level": epochs, "planned_s": planned, "budget_s": budget, "widths": cfg.model.widths(), "batch_sizes": batch_sizes}

    # 3. training through the command line
    run = out / "run"
    sets = [f"model.image_size={args.size}", f"model.in_channels={args.in_channels}", f"model.z_dim={args.z_dim}", "model.embedding_dim=3",
            f"schedule.epochs={epochs}", f"schedule.batch_sizes={json.dumps(batch_sizes)}", f"schedule.critic_iterations={json.dumps(critic_iterations)}",
            "validation.mode=validate", f"train.max_wall_time_s={budget}", "train.progress=false", 'data.class_names=["CN","AD"]', *extra_sets]
    cmd = [sys.executable, "-m", "gansim", "train", str(data / "train"), "-o", str(run), "--seed", "0", "--device", args.device, *force]
    for s in sets:
        cmd += ["--set", s]
    print("training: " + " ".join(cmd[2:]), flush=True)
    _, train_wall, train_peak = run_child(cmd, env, log=out / "train.log")
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    training = manifest["training"]
    print(f"trained {training['rows_seen']:,d} images ({training['iterations']:,d} iterations) in {training['wall_time_s']:.0f} s of training, "
          f"stopped by {training['stopped_by']}; child wall {train_wall:.0f} s (incl. evaluation), peak RSS {train_peak:.0f} MiB; "
          f"best epochs per level {training['best_epochs']}", flush=True)
    results["training"] = {k: training.get(k) for k in ("rows_seen", "iterations", "wall_time_s", "stopped_by", "best_epochs", "weights", "best")}
    results["training"].update(child_wall_s=train_wall, peak_rss_mib=train_peak)

    # 4. the test split through `gansim classify`
    image = Path(summary["test"]["image"])
    labels_csv = Path(summary["test"]["labels"])
    preds = out / "predictions.csv"
    cmd = [sys.executable, "-m", "gansim", "classify", str(run / "model"), str(image), "--labels", str(labels_csv), "-o", str(preds), "--seed", "0", "--device", args.device, *force]
    said, cls_wall, _ = run_child(cmd, env, log=out / "classify.log")
    print("classify: " + " ".join(line.strip() for line in said.splitlines() if line.strip()), flush=True)
    from gansim.metrics.classification import classification_summary

    ids, labels, probabilities = read_predictions(preds)
    subjects = subjects_of(ids, labels_csv)
    # as `gansim classify` does when the labels name subjects: the interval resamples whole subjects (their slices are correlated)
    test = classification_summary(labels, probabilities, class_names=manifest.get("classes"), seed=0, groups=subjects)
    auc = test["auc"]
    s_auc, n_subjects = subject_auc(labels, probabilities[:, 1], subjects)
    print(f"test split ({len(labels)} slices): whole-set AUC {auc['auc']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}] (95 %, {auc.get('method', 'bootstrap')}), "
          f"accuracy {test['accuracy']:.3f}; per subject ({n_subjects}, mean P(AD)): AUC {s_auc:.3f}; classify took {cls_wall:.1f} s", flush=True)
    results["test"] = {"auc": auc, "accuracy": test["accuracy"], "subject_auc": s_auc, "subjects": n_subjects, "classify_wall_s": cls_wall}

    # 5. validation AUC and image quality from the manifest
    from gansim.models.pacgan_evaluate import quality_rows

    metrics = manifest.get("metrics") or {}
    val_auc = (metrics.get("classifier") or {}).get("auc")
    if val_auc:
        print(f"validation fold ({metrics.get('n_images')} slices, the model's weights): AUC {val_auc['auc']:.3f} [{val_auc['lo']:.3f}, {val_auc['hi']:.3f}]", flush=True)
    best_last = (training.get("best") or [None])[-1]
    if best_last:
        print(f"best validation score of the last level: epoch {best_last['epoch']}, AUC real {best_last['auc_real']:.3f} + AUC generated {best_last['auc_fake']:.3f}", flush=True)
    rows = quality_rows(metrics.get("image_quality") or {})
    if rows:
        print(f"{'image quality':26s} {'encoder FD':>11s} {'encoder KID':>12s} {'radiomics FD':>13s} {'SSIM r-f':>9s} {'SSIM r-r':>9s} {'SSIM f-f':>9s}")
        for row in rows:
            print(f"{row['scope']:26s} {_fmt(row['encoder FD']):>11s} {_fmt(row['encoder KID']):>12s} {_fmt(row['radiomics FD']):>13s} "
                  f"{_fmt(row['SSIM real-fake'], '.3f'):>9s} {_fmt(row['SSIM real-real'], '.3f'):>9s} {_fmt(row['SSIM fake-fake'], '.3f'):>9s}", flush=True)
    results["validation"] = {"auc": val_auc, "best_last_level": best_last}
    results["image_quality"] = rows

    # 6. generation through the command line
    gen = out / "generated" / "generated.nii.gz"
    cmd = [sys.executable, "-m", "gansim", "generate", str(run / "model"), "--per-class", "100,100", "-o", str(gen), "--seed", "1", "--device", args.device, *force]
    _, gen_wall, gen_peak = run_child(cmd, env, log=out / "generate.log")
    print(f"gansim generate --per-class 100,100: {gen_wall:.1f} s end to end (start-up included), peak RSS {gen_peak:.0f} MiB", flush=True)
    results["generate"] = {"images": 200, "wall_s": gen_wall, "peak_rss_mib": gen_peak}

    # 7. context: the plain CNN of the data's own benchmark, on the same data (same seed and sizes)
    cnn_script = Path(__file__).resolve().parent / "brain_slices_separability.py"
    if args.quick or args.size != 64:
        print("plain CNN baseline: skipped (it is defined on the default 64 px data)")
    elif not cnn_script.is_file():
        print("plain CNN baseline: benchmarks/brain_slices_separability.py is not present")
    else:
        from brain_slices_separability import run as cnn_run

        r = cnn_run(1.0, 0, args.cnn_epochs, args.subjects, args.test_subjects)
        print(f"plain CNN (brain_slices_separability.py, {args.cnn_epochs} epochs, all {summary['train']['slices']} training slices, 1 thread): "
              f"test AUC {r['cnn_auc']:.3f} per slice, {r['cnn_subject_auc']:.3f} per subject; logistic regression {r['logreg_auc']:.3f}", flush=True)
        results["cnn_baseline"] = r
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
