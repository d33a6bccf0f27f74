"""Peak memory and speed of `gansim generate` into a file, for a large number of particles.

Question: does generation stay in bounded memory (issue: 1e8 particles in well
under 1 GB of RSS)? A model with the demo's architecture (3×128 MLP, 6 generated
columns + 1 constant) is trained for a few steps on the built-in linac data, then
N particles are generated into a .npy in a fresh process whose peak RSS is read
from the kernel (ru_maxrss of the child).

    python benchmarks/generate_memory.py --n 100000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=float, default=1e7, help="particles to generate")
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--format", default="npy", help="output suffix: npy, root, mcpl, npz")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    n = int(args.n)
    from gansim.config import parse_config
    from gansim.data.builtin import BUILTIN_DATASETS
    from gansim.demo import DEMO_CONFIG
    from gansim.io.phsp import write_table
    from gansim.models.phsp_gan import PhaseSpaceGANConfig
    from gansim.models.phsp_train import train_phase_space

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_table(tmp_path / "linac.npy", BUILTIN_DATASETS["linac"][1](50_000, 0))
        raw = json.loads(json.dumps(DEMO_CONFIG))
        raw["train"].update(total_rows=2048, progress=False)
        model = train_phase_space(tmp_path / "linac.npy", parse_config(PhaseSpaceGANConfig, raw), tmp_path / "run", log=lambda *_: None)
        out = tmp_path / f"gen.{args.format}"
        cmd = [sys.executable, "-m", "gansim", "generate", str(model), "-n", str(n), "-o", str(out), "--batch-size", str(args.batch_size), "--device", args.device, "--seed", "1"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = out.stat().st_size
    print(f"particles            {n:,d}")
    print(f"output               .{args.format}, {size / 1e9:.2f} GB")
    print(f"wall time            {wall:.1f} s ({n / wall:,.0f} particles/s end to end, incl. start-up and writing)")
    print(f"peak RSS of generate {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
