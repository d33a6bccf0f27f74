"""PACGAN at its own default architecture: training images/s per level, generation and classification images/s, peak memory.

PACGAN (Lai et al., Sci. Rep. 15:34241, 2025; ../shared/reference/medical_gans.md §a) cannot be
installed here (not on PyPI, nothing can be fetched), so there is no side-by-side run; gansim is
timed with PACGAN's network and schedule instead: 512 input channels, widths ×[1, 1, 1/2, 1/4, 1/8,
1/16, 1/32] (512 ... 16 channels at 4 ... 256 px), z 512, class embedding 3, two classes, batch sizes
[32, 32, 32, 16, 16, 16, 16], critic iterations [1, 1, 1, 1, 1, 2, 2] on one shared real batch.
Weights are random: speed does not depend on training.

* training: for each level, in a child process (its peak RSS, or CUDA's peak allocation, is that
  level's memory), the real objective (:class:`PACGANObjective`) runs in the real loop
  (:class:`TrainingLoop`, gansim's PACGAN defaults: Adam, generator EMA) on random images of the
  final size, placed at the middle of the level's fade-in so both fade paths run; after warm-up
  iterations, iterations are timed until ``--seconds`` have passed. images/s counts the real images
  the critic sees (one batch per iteration: the critic's repeats share it).
* generation: the networks are saved with ``save_pacgan`` and read back with ``load_model`` (the
  path every user takes); ``model.generate`` at batch 64; classification is ``model.predict_proba``.
* memory of ``gansim generate``: a child makes ``--generate-n`` images into a .nii.gz; its peak RSS
  is its own VmHWM (not ``ru_maxrss``, which carries the parent's peak into a child), with the size
  of the image stack beside it.

    python benchmarks/pacgan_speed.py [--threads 2] [--device cpu] [--max-size 256] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: PACGAN's Training/config.json (BATCH_SIZES, CRITIC_ITERATIONS, FACTORS, IN_CHANNELS, Z_DIM, EMBEDDING_DIM)
PACGAN_BATCH_SIZES = [32, 32, 32, 16, 16, 16, 16]
PACGAN_CRITIC_ITERATIONS = [1, 1, 1, 1, 1, 2, 2]
PACGAN_FACTORS = [1.0, 1.0, 1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32]
PACGAN_EPOCHS_PER_LEVEL = 100
#: images in the random training set of a timing run (at least the largest batch)
TIMING_IMAGES = 64


def machine() -> dict[str, Any]:
    """CPU model, cores this process may use, torch version and threads."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def sgemm_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best float32 matrix-product rate (GFLOP/s) of an n×n product: how busy the machine is right now."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pacgan_config(image_size: int, *, in_channels: int = 512, z_dim: int = 512, batch_sizes: list[int] | None = None,
                  critic_iterations: list[int] | None = None, epochs: int | list[int] = PACGAN_EPOCHS_PER_LEVEL, device: str = "cpu") -> Any:
    """gansim's PACGAN config at PACGAN's architecture and schedule, cut to the levels 4 .. ``image_size`` px."""
    from gansim.config import parse_config
    from gansim.models.pacgan_config import PACGANConfig, level_sizes

    n = len(level_sizes(4, image_size))
    raw = {
        "model": {"image_size": image_size, "channels": 1, "num_classes": 2, "in_channels": in_channels, "factors": PACGAN_FACTORS[:n] + [2.0 ** -(k - 1) for k in range(7, n)],
                  "z_dim": z_dim, "embedding_dim": 3},
        "schedule": {"batch_sizes": (batch_sizes or PACGAN_BATCH_SIZES)[:n], "critic_iterations": (critic_iterations or PACGAN_CRITIC_ITERATIONS)[:n],
                     "epochs": epochs, "same_batch_for_critic": True},
        "train": {"progress": False, "device": device},
    }
    return parse_config(PACGANConfig, raw, source="pacgan_speed")


def level_loop(cfg: Any, level: int, device: torch.device, run_dir: Path, iterations_needed: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """The real loop on random full-size images, its images-seen counter set to the middle of ``level``'s fade-in.

    The level is made long enough (in epochs) that ``iterations_needed`` iterations stay inside its fade-in.
    """
    from gansim.models.pacgan import LevelSchedule, PACGANObjective, SliceBatches
    from gansim.models.pacgan_model import build_networks
    from gansim.training.loop import TrainingLoop

    settings = cfg.model
    sizes = settings.sizes
    batch = cfg.schedule.per_level("batch_sizes", len(sizes))[level]
    # fade-in = fade_fraction·epochs·n; start at its middle, so (fade_fraction/2)·epochs·n images must exceed the iterations' images
    epochs = max(PACGAN_EPOCHS_PER_LEVEL, int(np.ceil(4 * iterations_needed * batch / (cfg.schedule.fade_fraction * TIMING_IMAGES))))
    cfg = cfg.model_copy(update={"schedule": cfg.schedule.model_copy(update={"epochs": epochs})})
    torch.manual_seed(seed)
    g, d = build_networks(settings)
    g, d = g.to(device), d.to(device)
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(TIMING_IMAGES, settings.channels, settings.image_size, settings.image_size, generator=gen) * 2 - 1
    labels = torch.arange(TIMING_IMAGES) % settings.num_classes
    schedule = LevelSchedule.build(sizes, cfg.schedule, TIMING_IMAGES)
    batches = SliceBatches(images, labels, schedule.sizes, schedule.batch_sizes, seed, device)
    objective = PACGANObjective(g, d, settings, schedule, cfg.schedule.same_batch_for_critic, batches, device, seed)
    train = cfg.train.model_copy(update={"total_rows": schedule.total, "checkpoint_rows": 10 * schedule.total, "tick_rows": 10 * schedule.total})
    loop = TrainingLoop(objective, batches, train, cfg.optim, run_dir, device)
    loop.rows_seen = schedule.starts[level] + schedule.fade_images[level] // 2
    return loop, objective, schedule


def time_iterations(loop: Any, device: torch.device, *, seconds: float, min_iterations: int, max_iterations: int) -> tuple[list[float], float, int]:
    """Time whole loop iterations until ``seconds`` have passed (at least ``min_iterations``, at most ``max_iterations``).

    Returns (seconds of each iteration, wall seconds in all, rows the iterations saw).
    """
    times: list[float] = []
    rows_before = loop.rows_seen
    t_start = time.perf_counter()
    while len(times) < min_iterations or (sum(times) < seconds and len(times) < max_iterations):
        sync(device)
        t0 = time.perf_counter()
        loop._iteration()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times, time.perf_counter() - t_start, loop.rows_seen - rows_before


def time_level(cfg: Any, level: int, device: torch.device, *, seconds: float, warmup: int = 1, min_iterations: int = 2, max_iterations: int = 200) -> dict[str, Any]:
    """Training speed of one level: warm-up, then iterations until ``seconds`` have passed (at least ``min_iterations``)."""
    with tempfile.TemporaryDirectory() as tmp:
        loop, objective, schedule = level_loop(cfg, level, device, Path(tmp), warmup + max_iterations)
        for _ in range(warmup):
            loop._iteration()
        alpha_start = objective.alpha
        times, wall, rows = time_iterations(loop, device, seconds=seconds, min_iterations=min_iterations, max_iterations=max_iterations)
        if schedule.level_at(loop.rows_seen) != level or objective.level != level:
            raise RuntimeError(f"level {level}: the timed iterations left the level (rows {loop.rows_seen})")
        alpha_end = objective.alpha
    total = float(sum(times))
    return {"level": level, "size": schedule.sizes[level], "batch": schedule.batch_sizes[level], "critic_iterations": schedule.critic_iterations[level],
            "iterations": len(times), "seconds": total, "wall_s": wall, "images_per_s": rows / total, "iterations_per_s": len(times) / total,
            "fastest_iteration_s": min(times), "median_iteration_s": float(np.median(times)), "alpha": [alpha_start, alpha_end]}


def _status_mib(key: str) -> float | None:
    """A memory line of /proc/self/status (MiB), or None where that file does not exist."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """This process's resident set size now (MiB; VmRSS)."""
    value = _status_mib("VmRSS")
    return 0.0 if value is None else value


def peak_mib(device: torch.device) -> float:
    """Peak memory so far (MiB): CUDA's maximum allocated, or this process's own peak RSS.

    The peak RSS is VmHWM, the high-water mark of this process's memory map, not ``ru_maxrss``:
    Linux keeps a process's ``ru_maxrss`` across fork and exec, so a child's ``ru_maxrss`` is at
    least its parent's peak at the time it was started (a parent at 2 GiB makes every child report
    2 GiB). ``ru_maxrss`` is the fallback where /proc does not exist.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    value = _status_mib("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if value is None else value  # KiB on Linux


def _child_level(args: argparse.Namespace) -> None:
    """``--one-level K``: time level K in this (fresh) process and print one JSON line with its peak memory."""
    device = torch.device(args.device)
    cfg = pacgan_config(args.max_size, in_channels=args.in_channels, z_dim=args.z_dim, device=args.device)
    result = time_level(cfg, args.one_level, device, seconds=args.seconds, warmup=args.warmup, min_iterations=args.min_iterations)
    result["peak_mib"] = peak_mib(device)
    result["memory"] = "cuda max allocated" if device.type == "cuda" else "peak RSS"
    print("RESULT " + json.dumps(result), flush=True)


#: runs the command line exactly as ``python -m gansim`` does, then prints this process's own peak RSS (VmHWM, kB)
CLI_PEAK_RUNNER = """
import sys
try:
    from gansim.cli.main import main
    sys.argv[0] = "gansim"
    main()
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("VMHWM_KB " + line.split()[1], flush=True)
"""


def vmhwm_mib(stdout: str) -> float:
    """The peak RSS (MiB) a child printed as ``VMHWM_KB n``."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("VMHWM_KB ")), None)
    if line is None:
        raise RuntimeError(f"the child did not report its peak RSS; its output:\n{stdout[-2000:]}")
    return int(line.split()[1]) / 1024


def run_cli(arguments: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """``gansim ARGUMENTS`` in a fresh process; (stdout, wall seconds, that process's own peak RSS in MiB)."""
    out, wall, _ = run_child([sys.executable, "-c", CLI_PEAK_RUNNER, *arguments], env)
    return out, wall, vmhwm_mib(out)


def run_child(cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> tuple[str, float, float]:
    """Run ``cmd``; return (stdout, wall seconds, the kernel's ``ru_maxrss`` of the child in MiB); ``log`` receives stdout and stderr.

    That ``ru_maxrss`` includes the parent's peak when the child was started (Linux carries it over
    fork and exec): for a child's own peak, let it print VmHWM (:func:`run_cli`, :func:`peak_mib`).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child with its own resource usage (not the maximum over all children)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if log is not None:
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout}--- stderr\n{stderr}")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return stdout, wall, usage.ru_maxrss / 1024  # KiB on Linux


def _spawn_level(args: argparse.Namespace, level: int, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-level", str(level), "--max-size", str(args.max_size), "--device", args.device,
           "--threads", str(args.threads), "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--min-iterations", str(args.min_iterations),
           "--in-channels", str(args.in_channels), "--z-dim", str(args.z_dim)]
    out, _, _ = run_child(cmd, env)
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def time_generation(cfg: Any, device: torch.device, tmp: Path, *, n: int, batch: int = 64) -> tuple[dict[str, Any], Path]:
    """Images/s of ``generate`` and ``predict_proba`` of a saved-and-loaded model at the final size (random weights)."""
    from gansim.io.slices import IntensityScaling
    from gansim.models import load_model
    from gansim.models.pacgan_model import build_networks, labels_for_request, save_pacgan

    torch.manual_seed(0)
    g, d = build_networks(cfg.model)
    model_dir = save_pacgan(tmp / "model", g, d, cfg.model, class_names=["CN", "AD"], intensity=IntensityScaling().to_dict(), spacing_mm=(1.0, 1.0))
    model = load_model(model_dir, device=device)
    labels = labels_for_request(model.num_classes, n=n)
    model.generate(labels[:batch], seed=1, batch_size=batch)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    images = model.generate(labels, seed=1, batch_size=batch)
    sync(device)
    t_gen = time.perf_counter() - t0
    model.predict_proba(images[:batch], batch_size=batch)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    model.predict_proba(images, batch_size=batch)
    sync(device)
    t_cls = time.perf_counter() - t0
    g_flops, d_flops = forward_gflops(model, device)
    return {"n": n, "batch": batch, "generate_images_per_s": n / t_gen, "classify_images_per_s": n / t_cls,
            "generator_gflop_per_image": g_flops, "classifier_gflop_per_image": d_flops}, model_dir


def forward_gflops(model: Any, device: torch.device) -> tuple[float, float]:
    """GFLOP per image of the generator's and of the classifier's forward pass at the final size (torch's FLOP counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    z, y = torch.randn(1, model.settings.z_dim, device=device), torch.zeros(1, dtype=torch.long, device=device)
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            x = model.generator(z, y)
        g = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter:
            model.discriminator.classify(x)
        d = counter.get_total_flops()
    return g / 1e9, d / 1e9


def generate_memory(model_dir: Path, tmp: Path, n: int, device: str, env: dict[str, str]) -> dict[str, Any]:
    """Peak RSS of ``gansim generate MODEL -n N -o gen.nii.gz`` in a fresh child."""
    out = tmp / f"gen{n}" / "gen.nii.gz"
    _, wall, peak = run_cli(["generate", str(model_dir), "-n", str(n), "-o", str(out), "--seed", "1", "--batch-size", "64", "--device", device], env)
    import nibabel as nib

    shape = nib.load(str(out)).shape
    stack_mib = float(np.prod(shape)) * 4 / 2**20
    return {"n": n, "wall_s": wall, "images_per_s_end_to_end": n / wall, "peak_rss_mib": peak, "stack_mib": stack_mib, "file_mib": out.stat().st_size / 2**20}


def full_schedule_hours(levels: list[dict[str, Any]], n_train: int = 1000, epochs: int = PACGAN_EPOCHS_PER_LEVEL) -> float:
    """Hours for PACGAN's default schedule (``epochs`` per level) on ``n_train`` training images at the measured speeds."""
    return sum(epochs * n_train / r["images_per_s"] for r in levels) / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--max-size", type=int, default=256, help="last level's side (PACGAN: 256)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per level (at least --min-iterations iterations)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first (the first one pays for allocations and the image pyramid)")
    parser.add_argument("--min-iterations", type=int, default=2)
    parser.add_argument("--generate-n", type=int, nargs="+", default=[250, 1000], help="images made by `gansim generate` in the memory check (one child each)")
    parser.add_argument("--speed-n", type=int, default=128, help="images made and classified in the generation timing")
    parser.add_argument("--in-channels", type=int, default=512, help="level-0 width (PACGAN: 512)")
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="smoke test: 4..16 px, 64 channels, 1 s per level, small generation")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    parser.add_argument("--one-level", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.max_size, args.seconds, args.in_channels, args.z_dim = min(args.max_size, 16), 1.0, 64, 64
        args.generate_n, args.speed_n, args.warmup, args.min_iterations = [64, 128], 64, 1, 2
    torch.set_num_threads(args.threads)
    if args.one_level is not None:
        _child_level(args)
        return

    device = torch.device(args.device)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    info = machine()
    info["sgemm_gflops"] = sgemm_gflops(device)
    print(f"machine: {info['cpu']}, {info['cores']} cores usable, torch {info['torch']}, {info['threads']} threads, device {device}"
          + (f" ({info['cuda']})" if device.type == "cuda" else "") + f"; 2048² float32 matmul {info['sgemm_gflops']:.1f} GFLOP/s", flush=True)
    cfg = pacgan_config(args.max_size, in_channels=args.in_channels, z_dim=args.z_dim, device=args.device)
    widths = cfg.model.widths()
    print(f"architecture: widths {widths} at {cfg.model.sizes} px, z {cfg.model.z_dim}, embedding {cfg.model.embedding_dim}, "
          f"batch sizes {cfg.schedule.batch_sizes}, critic iterations {cfg.schedule.critic_iterations} (one shared real batch)", flush=True)
    from gansim.models.pacgan_model import build_networks

    g, d = build_networks(cfg.model)
    n_params = {"G": sum(p.numel() for p in g.parameters()), "D": sum(p.numel() for p in d.parameters())}
    del g, d
    print(f"parameters: generator {n_params['G']:,d}, discriminator {n_params['D']:,d}", flush=True)

    print(f"\n{'level':>5s} {'px':>4s} {'batch':>5s} {'D it':>4s} {'iters':>5s} {'images/s':>9s} {'G+D it/s':>9s} {'median it s':>11s} {'peak MiB':>9s}", flush=True)
    levels = []
    for level in range(len(cfg.model.sizes)):
        r = _spawn_level(args, level, env)
        levels.append(r)
        print(f"{r['level']:5d} {r['size']:4d} {r['batch']:5d} {r['critic_iterations']:4d} {r['iterations']:5d} {r['images_per_s']:9.1f} "
              f"{r['iterations_per_s']:9.3f} {r['median_iteration_s']:11.3f} {r['peak_mib']:9.0f}", flush=True)
    memory_kind = levels[0]["memory"]
    hours = full_schedule_hours(levels)
    print(f"(peak MiB: {memory_kind} of a fresh process per level; images/s: real images seen by the critic)")
    print(f"PACGAN's default schedule ({PACGAN_EPOCHS_PER_LEVEL} epochs × {len(levels)} levels) at these speeds: {hours:.1f} h per 1,000 training images", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        gen, model_dir = time_generation(cfg, device, tmp, n=args.speed_n)
        print(f"\nat {args.max_size} px, batch {gen['batch']}, {gen['n']} images: generate {gen['generate_images_per_s']:.1f} images/s "
              f"({gen['generator_gflop_per_image']:.2f} GFLOP/image: {gen['generate_images_per_s'] * gen['generator_gflop_per_image']:.1f} GFLOP/s), "
              f"classify (predict_proba) {gen['classify_images_per_s']:.1f} images/s ({gen['classifier_gflop_per_image']:.2f} GFLOP/image: "
              f"{gen['classify_images_per_s'] * gen['classifier_gflop_per_image']:.1f} GFLOP/s)", flush=True)
        memory = []
        for n in args.generate_n:
            m = generate_memory(model_dir, tmp, n, args.device, env)
            memory.append(m)
            print(f"gansim generate -n {n} to .nii.gz: {m['wall_s']:.1f} s ({m['images_per_s_end_to_end']:.1f} images/s end to end), "
                  f"peak RSS {m['peak_rss_mib']:.0f} MiB; the image stack is {m['stack_mib']:.0f} MiB, the file {m['file_mib']:.0f} MiB", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "parameters": n_params, "widths": widths, "levels": levels, "full_schedule_hours_per_1000": hours,
                                         "generation": gen, "generate_memory": memory, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
