"""Training speed, gansim vs gaga-phsp 0.7.6, on the same configuration and the same threads.

Configuration of both: G and D 3×400 MLPs (leaky ReLU 0.01), z_dim 6 (normal), 6
columns of the built-in linac data, batch 10,000, 2 D steps per G step,
Wasserstein loss with the square-hinge gradient penalty (weight 1), RMSprop.
Rows/s counts the real rows fed to D (2 batches per iteration in both tools).

- gaga: ``gaga_train`` in the gaga venv on a file of ``ROWS_PER_EPOCH`` rows
  (gaga 0.7.6's ``gaga_train`` runs ``Gan.train2``: one ``epoch`` is one pass
  over the data, here 2 iterations of 2 D batches + 1 G step); each run prints
  the duration of its training loop, and the start-up (DataLoader worker, first
  batch) is cancelled by timing ``E1`` and ``E2`` epochs:
  rows/s = (E2 − E1)·ROWS_PER_EPOCH / (t2 − t1).
- gansim: ``train_phase_space`` (evaluate False, progress False, EMA off as gaga
  has none, no validation split, plain z-score like gaga: no log/direction
  transforms) for I2 iterations' rows; rows/s from ``stats.jsonl`` ticks after
  the first one (which holds the warm-up), for as many rows as gaga's E2 epochs.

    python benchmarks/training_vs_gaga.py [--epochs 1,3]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import gaga_common as gc

BATCH = 10_000
ROWS_PER_EPOCH = 4 * BATCH  # 2 iterations × 2 D batches


def _duration_s(stdout: str) -> float:
    m = re.search(r"Duration time\s*=\s*(\d+):(\d+):(\d+(?:\.\d+)?)", stdout)
    if not m:
        raise RuntimeError(
            f"no 'Duration time' in gaga_train output:\n{stdout[-2000:]}"
        )
    h, mi, s = m.groups()
    return 3600 * int(h) + 60 * int(mi) + float(s)


def gaga_rate(
    data: Path, epochs: list[int], tmp: Path
) -> tuple[float, dict[int, float]]:
    durations = {}
    for ep in epochs:
        opts = dict(gc.GAGA_OPTIONS, epoch=ep, batch_size=BATCH)
        durations[ep] = _duration_s(gc.gaga_train(data, opts, tmp / f"gaga_{ep}.pth"))
    e1, e2 = epochs
    return (e2 - e1) * ROWS_PER_EPOCH / (durations[e2] - durations[e1]), durations


def gansim_rate(
    data: Path, total_rows: int, tmp: Path, threads: int
) -> tuple[float, float, list[float]]:
    import torch

    from gansim.config import parse_config
    from gansim.models.phsp_gan import PhaseSpaceGANConfig
    from gansim.models.phsp_train import train_phase_space

    torch.set_num_threads(threads)
    rows_per_iter = 2 * BATCH
    opt = {"name": "rmsprop", "lr": 1e-5}
    raw = {
        "data": {
            "keys": gc.KEYS,
            "log_keys": [],
            "directions": "none",
            "clip_energy": False,
        },
        "model": {
            "z_dim": gc.Z_DIM,
            "latent": "normal",
            "g_width": gc.WIDTH,
            "g_depth": gc.DEPTH,
            "d_width": gc.WIDTH,
            "d_depth": gc.DEPTH,
            "activation": "leaky_relu",
            "leaky_slope": 0.01,
        },
        "loss": {
            "adversarial": "wasserstein",
            "penalty": "square_hinge",
            "penalty_weight": 1.0,
            "d_steps": 2,
            "g_steps": 1,
        },
        "optim": {"G": opt, "D": opt},
        "train": {
            "total_rows": total_rows,
            "batch_size": BATCH,
            "tick_rows": 2 * rows_per_iter,
            "checkpoint_rows": 10**9,
            "ema_halflife_rows": None,
            "validation_fraction": 0.0,
            "evaluate": False,
            "progress": False,
            "device": "cpu",
            "seed": 0,
        },
    }
    t0 = time.perf_counter()
    train_phase_space(
        data,
        parse_config(PhaseSpaceGANConfig, raw),
        tmp / "gansim_run",
        log=lambda *_: None,
    )
    wall = time.perf_counter() - t0
    ticks = [
        json.loads(line)
        for line in (tmp / "gansim_run" / "stats.jsonl").read_text().splitlines()
        if line.strip()
    ]
    rates = [t["rows_per_s"] for t in ticks if "rows_per_s" in t]
    rows = [t["rows_seen"] for t in ticks if "rows_per_s" in t]
    # rows-weighted mean of the ticks after the first: total rows / total time
    later = list(zip(rows, rates))[1:]
    if later:
        prev = [r for r, _ in list(zip(rows, rates))[:-1]]
        tick_rows = [r - p for (r, _), p in zip(later, prev)]
        rate = sum(tick_rows) / sum(n / v for n, (_, v) in zip(tick_rows, later))
    else:
        rate = rates[-1]
    return rate, wall, rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--epochs",
        default="1,3",
        help="gaga epochs of the two timed runs; gansim trains as many rows as the larger",
    )
    parser.add_argument("--threads", type=int, default=gc.THREADS)
    args = parser.parse_args()
    epochs = [int(i) for i in args.epochs.split(",")]
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"machine   {gc.machine()}, {args.threads} torch threads (gaga_train: torch default = cores)"
    )
    data = gc.write_training_data(gc.CACHE / "linac6_40k.npy", ROWS_PER_EPOCH)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        g_rate, durations = gaga_rate(data, epochs, tmp)
        s_rate, s_wall, s_ticks = gansim_rate(
            data, max(epochs) * ROWS_PER_EPOCH, tmp, args.threads
        )
    print(
        "gaga_train loop durations: "
        + ", ".join(
            f"{e} epochs ({e * ROWS_PER_EPOCH:,d} rows): {d:.1f} s"
            for e, d in durations.items()
        )
    )
    print(
        f"gansim: {max(epochs) * ROWS_PER_EPOCH:,d} rows, wall {s_wall:.1f} s incl. set-up; ticks rows/s "
        + ", ".join(f"{r:,.0f}" for r in s_ticks)
    )
    print(f"\n{'tool':8} | rows/s (batch {BATCH:,d}, d:g 2:1)")
    print(f"{'gaga':8} | {g_rate:,.0f}")
    print(f"{'gansim':8} | {s_rate:,.0f}   (gansim/gaga {s_rate / g_rate:.2f})")


if __name__ == "__main__":
    main()
