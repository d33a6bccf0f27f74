"""Classifier AUC of the faithful CaloGAN and the modern shower GAN after the same CPU training time.

The CaloChallenge judges a shower model by a classifier trained to tell its showers from the
reference's (AUC 0.5: indistinguishable; every GAN entry of its tables sits at >= 0.89 on the
high-level features). Here both models train on the same built-in GFlash e+ showers (CaloGAN
layout) for the same wall time on the same number of CPU threads, side by side (one process each),
then make showers at the held-out test showers' energies; the classifier compares them with the
test showers on the low-level (log E, cells / E) and the high-level features. Reference-versus-
reference (a second, independent GFlash sample against the test showers) gives the floor.

    python benchmarks/calo_quality.py [--minutes 30] [--threads 1] [--showers 40000] [--work DIR] [--reuse]

Prints a table (with the mean separation power over CaloGAN's variables and the three worst) and
the modern / faithful ratio of (AUC - 0.5); writes DIR/quality.json. It takes
about ``minutes`` + 25 min on 2 cores (the classifier runs dominate the evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _train(family: str, data: Path, run: Path, minutes: float, threads: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "gansim", "train", str(data), "-o", str(run), "--family", family, "--force", "--device", "cpu",
           "--total-rows", str(10**12), "--set", f"train.max_wall_time_s={60 * minutes}", "--set", "train.evaluate=false",
           "--set", "train.progress=false", "--set", "train.checkpoint_rows=2000000"]
    log = open(run.with_suffix(".log"), "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _scores(reference, generated, seed: int) -> dict[str, object]:
    """Classifier AUCs (low- and high-level), the mean separation power over CaloGAN's paper variables and the three worst."""
    from gansim.metrics.calo_classifier import classifier_test, low_level_features
    from gansim.metrics.calo_shapes import CALOGAN_PAPER_VARIABLES, calochallenge_feature_vector, calogan_shower_shapes, separation_power

    ref = calogan_shower_shapes(reference.layers, reference.energy, reference.geometry)
    gen = calogan_shower_shapes(generated.layers, generated.energy, generated.geometry)
    out: dict[str, object] = {}
    high_r, _ = calochallenge_feature_vector(ref, reference.energy)
    high_g, _ = calochallenge_feature_vector(gen, generated.energy)
    for name, (r, g) in {"high": (high_r, high_g), "low": (low_level_features(reference.layers, reference.energy), low_level_features(generated.layers, generated.energy))}.items():
        result = classifier_test(r, g, seed=seed)
        out[f"auc_{name}"], out[f"auc_{name}_se"] = result["auc"], result["auc_se"]
    sp = {name: float(separation_power(ref[name][np.isfinite(ref[name])], gen[name][np.isfinite(gen[name])])) for name in CALOGAN_PAPER_VARIABLES}
    worst = sorted(sp, key=sp.get, reverse=True)[:3]
    return {**out, "mean_sp": float(np.mean(list(sp.values()))), "worst_sp": {name: round(sp[name], 3) for name in worst}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall time of each model")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each model (both train at once)")
    parser.add_argument("--showers", type=int, default=40_000, help="built-in e+ showers (80 %% train, 10 %% validation, 10 %% test)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gansim_calo_quality", help="data, runs and quality.json")
    parser.add_argument("--reuse", action="store_true", help="keep models already trained in WORK (evaluate only those)")
    args = parser.parse_args()
    from gansim.data.calo import make_calo_showers
    from gansim.io.calo import ShowerData, read_calogan, write_calogan
    from gansim.models import load_model
    from gansim.models.shower_train import split_showers

    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "eplus.h5"
    if not data.exists():
        write_calogan(data, make_calo_showers(args.showers, "eplus", seed=1).to_shower_data())
    t0 = time.perf_counter()
    families = [f for f in ("calogan", "showergan") if not (args.reuse and (args.work / f / "model" / "manifest.json").is_file())]
    jobs = {family: _train(family, data, args.work / family, args.minutes, args.threads) for family in families}
    codes = {family: job.wait() for family, job in jobs.items()}
    if any(codes.values()):
        raise SystemExit(f"training failed: {codes}; see {args.work}/*.log")
    print(f"trained {', '.join(families) or 'nothing (--reuse)'} for {args.minutes:g} min on {args.threads} thread(s) each (wall {time.perf_counter() - t0:.0f} s)")

    showers = read_calogan(data)
    split = split_showers(len(showers), 0.1, 0.1, 12345)  # the training runs' default split (the GFlash file has no duplicates)
    test_rows = split["test"]
    test = ShowerData(showers.layout, showers.geometry, showers.energy[test_rows], [a[test_rows] for a in showers.layers], None)
    rows: dict[str, dict[str, float]] = {}
    other = make_calo_showers(len(test), "eplus", seed=2).to_shower_data()
    rows["GFlash vs GFlash (reference floor)"] = _scores(test, other, seed=0)
    for family, label in (("calogan", "faithful CaloGAN"), ("showergan", "modern shower GAN")):
        model = load_model(args.work / family / "model", device="cpu")
        generated = model.sample(len(test), test.energy, seed=3)
        manifest = model.manifest["training"]
        rows[label] = {**_scores(test, generated, seed=0), "iterations": manifest["iterations"], "showers_seen": manifest["rows_seen"]}
    print(f"{'':36s} {'AUC low-level':>16s} {'AUC high-level':>16s} {'showers seen':>13s} {'mean SP':>8s}  worst variables (SP)")
    for label, r in rows.items():
        seen = f"{r['showers_seen']:13,d}" if "showers_seen" in r else f"{'':13s}"
        worst = ", ".join(f"{k} {v:.2f}" for k, v in r["worst_sp"].items())
        print(f"{label:36s} {r['auc_low']:9.3f} ± {r['auc_low_se']:.3f} {r['auc_high']:9.3f} ± {r['auc_high_se']:.3f} {seen} {r['mean_sp']:8.3f}  {worst}")
    for level in ("low", "high"):
        ratio = (rows["modern shower GAN"][f"auc_{level}"] - 0.5) / max(rows["faithful CaloGAN"][f"auc_{level}"] - 0.5, 1e-9)
        print(f"(AUC - 0.5), modern / faithful, {level}-level: {ratio:.2f}")
    print(f"test showers {len(test):,d}; CaloChallenge GAN entries: high-level AUC >= 0.89; goal for the modern model: < 0.85")
    (args.work / "quality.json").write_text(json.dumps({"minutes": args.minutes, "threads": args.threads, "n_test": int(len(test)), "rows": rows, "numpy": np.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()
