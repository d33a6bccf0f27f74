"""Does the photon Monte Carlo stay in bounded memory as the number of primaries grows?

Runs ``gansim mc --phantom iec --isotope Tc99m -n N -o exit.npy`` (default chunk of
2^18 events) in a fresh child process for each N and reads the child's peak RSS from
the kernel (ru_maxrss; a fresh interpreter per N, so the figures do not mix). Flat in N
means the run streams: chunks are transported and written as they come.

    python benchmarks/mc_memory.py [--n 1e5 1e6 1e7] [--format npy]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    parser.add_argument("--format", default="npy", help="output suffix (npy holds EventIDs up to 2^24; use root above)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"{'primaries':>12s} {'rows':>12s} {'file GB':>8s} {'wall s':>8s} {'primaries/s':>12s} {'peak RSS MiB':>13s}")
    for n in (int(v) for v in args.n):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"exit.{args.format}"
            cmd = [sys.executable, "-m", "gansim", "mc", "--phantom", "iec", "--isotope", "Tc99m", "-n", str(n), "-o", str(out), "--device", args.device, "--seed", "1"]
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, "-c", _CHILD, *cmd], check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            peak_mib = int(result.stdout.strip().splitlines()[-1]) / 1024
            size = out.stat().st_size
            from gansim.io.phsp import open_reader

            with open_reader(out) as reader:
                rows = reader.n_rows
        print(f"{n:12,d} {rows:12,d} {size / 1e9:8.2f} {wall:8.1f} {n / wall:12,.0f} {peak_mib:13.0f}")


if __name__ == "__main__":
    main()
