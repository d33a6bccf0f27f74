"""Peak memory writing generated particles to .npy, gansim vs gaga-phsp 0.7.6 (same network).

Each tool runs in a fresh child process, under its own small wrapper process
that reads the child's peak RSS from the kernel (``ru_maxrss`` of its children):

- gansim: ``python -m gansim generate MODEL -n N -o x.npy --seed 1 --batch-size 100000``;
- gaga: what its ``gaga_generate`` does (that command itself crashes in 0.7.6):
  ``gaga.load`` then ``generate_samples_non_cond(params, G, N, 1e5, False, True)``
  (which gathers every batch into one float64 array) and ``gatetools.phsp.save_npy``.

Both with ``torch.set_num_threads(THREADS)`` (gansim: ``OMP_NUM_THREADS``).

    python benchmarks/memory_vs_gaga.py [--n 1e7]
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

import gaga_common as gc

GAGA_CODE = """
import contextlib, io, sys, time
import torch
import gaga_phsp as gaga
import gatetools.phsp as phsp
pth, n, b, out, threads = sys.argv[1], int(float(sys.argv[2])), int(float(sys.argv[3])), sys.argv[4], int(sys.argv[5])
torch.set_num_threads(threads)
params, G, D, optim = gaga.load(pth, "cpu")
with contextlib.redirect_stdout(io.StringIO()):
    fake = gaga.generate_samples_non_cond(params, G, n, b, False, True)
phsp.save_npy(out, fake, list(params["keys_list"]))
"""

# a wrapper process per measured command, so ru_maxrss of its children is that command's alone
WRAPPER = "import json, resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); print(json.dumps({'rc': p.returncode, 'err': p.stderr[-2000:], 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``cmd`` run in a fresh wrapper process."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({res['rc']}):\n{res['err']}")
    return res["peak_kib"] / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=float, default=1e7)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=gc.THREADS)
    args = parser.parse_args()
    n = int(args.n)
    _, pth, model_dir = gc.gaga_model()
    print(f"machine   {gc.machine()}, {args.threads} torch threads")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory(dir=gc.CACHE) as tmp_name:
        tmp = Path(tmp_name)
        out_s, out_g = tmp / "gansim.npy", tmp / "gaga.npy"
        s_peak, s_wall = measure(
            [
                sys.executable,
                "-m",
                "gansim",
                "generate",
                str(model_dir),
                "-n",
                str(n),
                "-o",
                str(out_s),
                "--seed",
                "1",
                "--batch-size",
                str(args.batch_size),
                "--device",
                "cpu",
            ],
            env,
        )
        s_size = out_s.stat().st_size
        out_s.unlink()
        g_peak, g_wall = measure(
            [
                gc.gaga_python(),
                "-c",
                GAGA_CODE,
                str(pth),
                str(n),
                str(args.batch_size),
                str(out_g),
                str(args.threads),
            ],
            env,
        )
        g_size = out_g.stat().st_size
    print(f"\n{n:,d} particles, batches of {args.batch_size:,d}, written to .npy")
    print(
        f"{'tool':8} | {'peak RSS':>10} | {'wall (incl. start-up, writing)':>30} | file"
    )
    print(
        f"{'gaga':8} | {g_peak:>6,.0f} MiB | {g_wall:>7.1f} s = {n / g_wall:>9,.0f} particles/s | {g_size / 1e6:,.0f} MB"
    )
    print(
        f"{'gansim':8} | {s_peak:>6,.0f} MiB | {s_wall:>7.1f} s = {n / s_wall:>9,.0f} particles/s | {s_size / 1e6:,.0f} MB"
    )
    print(
        f"gaga/gansim peak RSS ratio {g_peak / s_peak:.1f}, gansim/gaga end-to-end speed {g_wall / s_wall:.2f}"
    )


if __name__ == "__main__":
    main()
