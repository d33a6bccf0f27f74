"""Shared set-up of the side-by-side benchmarks against gaga-phsp (``*_vs_gaga.py``).

gaga-phsp is never a gansim dependency: it lives in its own virtual environment
(``GAGA_PYTHON``, default ``/tmp/gaga/bin/python``) and is only ever run in child
processes of that interpreter. To create it::

    python3.11 -m venv /tmp/gaga && /tmp/gaga/bin/pip install torch==2.13.0 \\
        && /tmp/gaga/bin/pip install -c <(echo torch==2.13.0) gaga-phsp==0.7.6

:func:`gaga_model` makes (once, cached under ``/tmp/gansim-bench``; set
``GANSIM_BENCH_CACHE`` to move it) a gaga-phsp 3×400 MLP model (z_dim 6, 6 keys
from gansim's built-in linac data) trained by ``gaga_train`` for one iteration
(the weights need not be good: only speed is measured), and imports it into
gansim with :func:`gansim.io.gaga.import_gaga`, so both tools run the same network.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

GAGA_VENV_HELP = (
    "gaga-phsp 0.7.6 is needed in a separate virtual environment (never a gansim dependency); create it with\n"
    "  python3.11 -m venv /tmp/gaga && /tmp/gaga/bin/pip install torch==2.13.0 && "
    "/tmp/gaga/bin/pip install -c <(echo torch==2.13.0) gaga-phsp==0.7.6\n"
    "or point GAGA_PYTHON at the python of an existing one."
)

CACHE = Path(os.environ.get("GANSIM_BENCH_CACHE", "/tmp/gansim-bench"))

#: The 6 generated columns (gaga keys) taken from gansim's built-in linac data.
KEYS = [
    "KineticEnergy",
    "PrePosition_X",
    "PrePosition_Y",
    "PreDirection_X",
    "PreDirection_Y",
    "PreDirection_Z",
]
Z_DIM, WIDTH, DEPTH = (
    6,
    400,
    3,
)  # gaga v3: first_layer (z→400), 3 inner 400×400 layers, last_layer (400→6)
THREADS = 2

#: gaga-phsp options of the benchmark network (gaga 0.7.6 JSON; "epoch" counts iterations there).
GAGA_OPTIONS: dict[str, Any] = {
    "gpu_mode": "cpu",
    "model": "v3",
    "keys": " ".join(KEYS),
    "g_dim": WIDTH,
    "d_dim": WIDTH,
    "g_layers": DEPTH,
    "d_layers": DEPTH,
    "z_dim": Z_DIM,
    "z_rand_type": "randn",
    "activation": "leaky_relu",
    "loss": "wasserstein",
    "penalty": "GP_SquareHinge",
    "penalty_weight": 1,
    "optimiser": "RMSprop",
    "d_learning_rate": 1e-5,
    "g_learning_rate": 1e-5,
    "d_nb_update": 2,
    "g_nb_update": 1,
    "batch_size": 10_000,
    "epoch": 1,
    "epoch_store_model_every": 1_000_000,
    "epoch_dump": -1,
    "shuffle": True,
    "dataloader_num_workers": 1,  # 0 crashes gaga 0.7.6 (persistent_workers needs workers)
    "r_instance_noise_sigma": -1,
    "f_instance_noise_sigma": -1,
}


#: Exit status of a benchmark whose peer is not installed (run_all.py reports it as skipped, not failed).
EXIT_PEER_MISSING = 3


def gaga_python() -> str:
    """The gaga venv's python, checked to import gaga_phsp; exits with a how-to message otherwise."""
    py = os.environ.get("GAGA_PYTHON", "/tmp/gaga/bin/python")
    if not Path(py).exists():
        print(f"gaga python {py} not found.\n{GAGA_VENV_HELP}", file=sys.stderr)
        sys.exit(EXIT_PEER_MISSING)
    probe = subprocess.run(
        [py, "-c", "import gaga_phsp, torch"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        sys.exit(
            f"{py} cannot import gaga_phsp/torch:\n{probe.stderr[-2000:]}\n{GAGA_VENV_HELP}"
        )
    return py


def run_gaga(code: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``code`` with the gaga python (argv: ``args``); it prints one JSON line last, returned here."""
    proc = subprocess.run(
        [gaga_python(), "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"gaga child process failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_training_data(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` rows of the built-in linac data as a structured float32 .npy with the columns KEYS."""
    import numpy as np

    from gansim.data.builtin import BUILTIN_DATASETS

    if path.exists():
        return path
    table = BUILTIN_DATASETS["linac"][1](n, seed)
    arr = np.zeros(n, dtype=[(k, "<f4") for k in KEYS])
    for k in KEYS:
        arr[k] = table[k]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    return path


def gaga_train(data: Path, options: dict[str, Any], out_pth: Path) -> str:
    """Run ``gaga_train DATA OPTIONS -o OUT`` in the gaga venv; returns its stdout."""
    opts = out_pth.with_suffix(".json")
    opts.write_text(json.dumps(options, indent=1))
    gaga_bin = Path(gaga_python()).parent / "gaga_train"
    proc = subprocess.run(
        [str(gaga_bin), str(data), str(opts), "-o", str(out_pth), "--no-progress-bar"],
        capture_output=True,
        text=True,
        cwd=out_pth.parent,
        check=False,
    )
    if proc.returncode != 0 or not out_pth.exists():
        raise RuntimeError(
            f"gaga_train failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def gaga_model() -> tuple[Path, Path, Path]:
    """``(data.npy, gaga .pth, gansim model dir)`` of the benchmark network, made once and cached."""
    from gansim.io.gaga import import_gaga

    CACHE.mkdir(parents=True, exist_ok=True)
    data = write_training_data(CACHE / "linac6_20k.npy", 20_000)
    pth = CACHE / "gaga_3x400.pth"
    if not pth.exists():
        gaga_train(data, GAGA_OPTIONS, pth)
    model_dir = CACHE / "gansim_3x400"
    if not (model_dir / "manifest.json").exists():
        import_gaga(pth, model_dir, force=True)
    return data, pth, model_dir


def mlp_flops_per_row(dims: list[int]) -> int:
    """FLOPs of one row through an MLP with layer sizes ``dims``: 2·in·out per Linear plus out bias adds.

    Activations (LeakyReLU: one compare/multiply per element) are not counted.
    """
    return sum(2 * a * b + b for a, b in itertools.pairwise(dims))


GENERATOR_DIMS = [Z_DIM] + [WIDTH] * (DEPTH + 1) + [len(KEYS)]


def sgemm_ceiling(threads: int = THREADS, size: int = 4096, repeats: int = 5) -> float:
    """Best FLOP/s of a ``size``² float32 matmul with torch on ``threads`` threads (in this process)."""
    import time

    import torch

    torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def machine() -> str:
    """CPU model and core count (lscpu), torch version."""
    import torch

    model = platform.processor() or "?"
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = fields.get("CPU(s)", "?").strip()
    except OSError:
        cores = str(os.cpu_count())
    return f"{model}, {cores} CPUs, torch {torch.__version__}, python {platform.python_version()}"
