"""3-D CycleGAN training speed: voxels/s per patch size at the default networks, peak memory beside the memory plan's estimate.

gansim's CycleGAN family at its own default config (``CycleGANConfig()``: ResNet generators of
width 32 with 2 stride-2 levels and 6 residual blocks, PatchGAN critics of width 64 with 3
stride-2 layers, instance norm, LSGAN, cycle λ 10, identity 0.5·λ, an image pool of 50, Adam
2e-4 (0.5, 0.999), generator EMA, batch 1), or with ``--generator unet`` its U-Net generators.
Weights and volumes are random: speed does not depend on training.

* For each patch size (``--patches``, cubes; each must be a valid training patch: a multiple of
  the generators' 4 and at least the critic's 24), a fresh child process builds the real
  objective (:class:`gansim.models.cyclegan.CycleGANObjective`) on the real patch sampler
  (:class:`~gansim.models.cyclegan.VolumePatches`, one random A and one random B volume of twice
  the patch per axis, paired) in the real loop (:class:`gansim.training.loop.TrainingLoop`). The
  first ``--warmup`` iterations are untimed (the first is run under torch's FLOP counter, which
  counts forward and backward convolutions: 2 FLOPs per multiply-add); then iterations are timed
  until ``--seconds`` have passed (at least ``--min-iterations``).
* An iteration is one step of both generators and one step of both critics on one A patch and
  one B patch per batch element. **voxels/s counts the voxels of the A patches** (the config's
  ``train.total_rows`` counts patches of each domain the same way); the B patches double the real
  voxels the networks see.
* Memory: the child's own peak RSS (VmHWM of /proc/self/status: ``ru_maxrss`` would include the
  parent's peak, which Linux keeps across fork and exec; on CUDA ``torch.cuda.max_memory_allocated``), its RSS after the imports (torch, gansim) and before the
  first iteration (data and networks built), and beside them :func:`gansim.models.volume_plan.memory_plan`
  for the same configuration: parameters, gradients, Adam state, EMA, inputs, fakes and a full
  pool of 50 per domain, activations and workspace. The plan counts tensors only, so it is to be
  compared with the peak RSS minus the RSS after the imports (see cyclegan_memory_plan.py for
  the careful comparison).

On the CPU the loop fixes glibc's mmap threshold at the config's ``train.cpu_mmap_threshold`` (1 MiB,
:mod:`gansim.training.cpu_heap`), as ``gansim train`` does; ``--glibc-heap`` runs with it null instead,
so two runs give the setting's price in speed and its saving in memory.

    python benchmarks/cyclegan_speed.py [--threads 2] [--device cpu] [--patches 24 32 48 64] [--generator resnet] [--seconds 20]
                                        [--glibc-heap] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pacgan_speed import machine, peak_mib, rss_mib, run_child, sgemm_gflops, time_iterations  # noqa: E402

DEFAULT_PATCHES = [24, 32, 48, 64]
QUICK_PATCHES = [24, 32]
MIB = 2**20


def import_gansim() -> None:
    """Import every gansim module a child uses, so that an RSS reading after this call holds the libraries and no data."""
    import gansim.models.cyclegan  # noqa: F401
    import gansim.models.cyclegan_config  # noqa: F401
    import gansim.models.cyclegan_nets  # noqa: F401
    import gansim.training.loop  # noqa: F401


def cyclegan_config(patch: int | tuple[int, int, int], *, generator: str = "resnet", batch: int = 1, device: str = "cpu",
                    pool_size: int | None = None, checkpointing: bool = False) -> Any:
    """gansim's default CycleGAN config with the given patch, generator kind, batch and device (and pool size, checkpointing).

    Raises ConfigError when ``patch`` is not a valid training patch for the networks.
    """
    from gansim.config import parse_config
    from gansim.errors import ConfigError
    from gansim.models.cyclegan_config import CycleGANConfig
    from gansim.models.cyclegan_train import check_patch
    from gansim.models.volume_plan import shape_rule, valid_shapes_near

    shape = (patch,) * 3 if isinstance(patch, int) else tuple(patch)
    loss: dict[str, Any] = {"gradient_checkpointing": checkpointing}
    if pool_size is not None:
        loss["pool_size"] = pool_size
    raw = {"model": {"generator": generator}, "data": {"patch": list(shape)}, "loss": loss,
           "train": {"progress": False, "device": device, "batch_size": batch}}
    cfg = parse_config(CycleGANConfig, raw, source="cyclegan benchmark")
    check_patch(cfg)
    rule = shape_rule(cfg.model)
    if not rule.valid(shape, training=True):
        near = ", ".join("×".join(map(str, o.shape)) for o in valid_shapes_near(shape, cfg.model, k=2, training=True))
        raise ConfigError(f"patch {shape}: not a valid training patch for this {generator} CycleGAN (multiples of {rule.multiple}, "
                          f"at least {rule.training_minimum}); valid near it: {near}")
    return cfg


def make_patches(cfg: Any, device: torch.device, volume_shape: tuple[int, ...] | None = None, seed: int = 0) -> Any:
    """The real patch sampler on one random A and one random B volume (uniform in [-1, 1]) of ``volume_shape`` (default: twice the patch)."""
    from gansim.models.cyclegan import VolumePatches

    shape = volume_shape or tuple(2 * p for p in cfg.data.patch)
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = rng.uniform(-1, 1, shape).astype(np.float32)
    return VolumePatches([a], [b], cfg.data.pairing != "unpaired", cfg.data.patch, cfg.train.batch_size, cfg.train.seed, device,
                         foreground_fraction=cfg.data.foreground_fraction, source="random volumes")


def make_networks(cfg: Any, device: torch.device) -> tuple[Any, Any]:
    """Both generators (one module) and both critics (one module), initialised as ``gansim train`` does, on ``device``."""
    from gansim.models.cyclegan import CycleGenerators, PatchCritics
    from gansim.models.cyclegan_nets import build_cyclegan_networks

    torch.manual_seed(cfg.train.seed)
    nets = build_cyclegan_networks(cfg.model, seed=cfg.train.seed)
    generators = CycleGenerators(nets["G_AB"], nets["G_BA"], checkpointing=cfg.loss.gradient_checkpointing).to(device)
    critics = PatchCritics(nets["D_A"], nets["D_B"]).to(device)
    return generators, critics


def make_loop(cfg: Any, generators: Any, critics: Any, patches: Any, device: torch.device, run_dir: Path) -> Any:
    """The real objective in the real loop (optimisers, EMA) as ``gansim train`` builds them."""
    from gansim.models.cyclegan import CycleGANObjective, CycleLossWeights
    from gansim.training.loop import TrainingLoop

    weights = CycleLossWeights(cfg.loss.loss, cfg.loss.lambda_cycle, cfg.loss.lambda_identity, cfg.loss.lambda_paired)
    objective = CycleGANObjective(generators, critics, weights, device, cfg.train.seed, pool_size=cfg.loss.pool_size)
    return TrainingLoop(objective, patches, cfg.train, cfg.optim, run_dir, device)


def plan_for(cfg: Any, device: str = "cpu") -> dict[str, Any]:
    """:func:`memory_plan` of training on patches of ``cfg.data.patch`` with ``cfg``'s batch, pool, identity, EMA, checkpointing."""
    from gansim.models.volume_plan import config_memory_plan

    return config_memory_plan(cfg, device=device)


def time_patch(cfg: Any, device: torch.device, *, seconds: float, warmup: int = 1, min_iterations: int = 2, max_iterations: int = 500) -> dict[str, Any]:
    """Training speed at ``cfg.data.patch``: warm-up (the first under the FLOP counter), then iterations until ``seconds`` have passed."""
    from torch.utils.flop_counter import FlopCounterMode

    rss_import = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        patches = make_patches(cfg, device)
        generators, critics = make_networks(cfg, device)
        loop = make_loop(cfg, generators, critics, patches, device, Path(tmp))
        rss_ready = rss_mib()
        gflop: float | None = None
        for i in range(warmup):
            if i == 0:
                counter = FlopCounterMode(display=False)
                with counter:
                    loop._iteration()
                gflop = counter.get_total_flops() / 1e9
            else:
                loop._iteration()
        times, wall, rows = time_iterations(loop, device, seconds=seconds, min_iterations=min_iterations, max_iterations=max_iterations)
        pooled = len(loop.objective.pool_a.images)
    total = float(sum(times))
    voxels = int(np.prod(cfg.data.patch))
    return {"patch": list(cfg.data.patch), "voxels": voxels, "batch": cfg.train.batch_size, "generator": cfg.model.generator,
            "iterations": len(times), "seconds": total, "wall_s": wall, "patches_per_s": rows / total, "voxels_per_s": rows * voxels / total,
            "iterations_per_s": len(times) / total, "median_iteration_s": float(np.median(times)), "fastest_iteration_s": min(times),
            "gflop_per_iteration": gflop, "gflop_per_s": None if gflop is None else gflop * len(times) / total,
            "rss_after_import_mib": rss_import, "rss_before_training_mib": rss_ready, "pool_images_per_domain": pooled}


def _child_patch(args: argparse.Namespace) -> None:
    """``--one-patch P``: time patch P³ in this fresh process; print one JSON line with its peak memory."""
    import_gansim()
    device = torch.device(args.device)
    cfg = cyclegan_config(args.one_patch, generator=args.generator, batch=args.batch, device=args.device)
    if args.glibc_heap:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"cpu_mmap_threshold": None})})
    result = time_patch(cfg, device, seconds=args.seconds, warmup=args.warmup, min_iterations=args.min_iterations)
    result["peak_mib"] = peak_mib(device)
    result["memory"] = "cuda max allocated" if device.type == "cuda" else "peak RSS"
    print("RESULT " + json.dumps(result), flush=True)


def _spawn_patch(args: argparse.Namespace, patch: int, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-patch", str(patch), "--generator", args.generator, "--batch", str(args.batch),
           "--device", args.device, "--threads", str(args.threads), "--seconds", str(args.seconds), "--warmup", str(args.warmup),
           "--min-iterations", str(args.min_iterations)] + (["--glibc-heap"] if args.glibc_heap else [])
    out, _, _ = run_child(cmd, env)
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def child_env(threads: int) -> dict[str, str]:
    """The environment of a child: this one with the thread count fixed."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def describe_machine(device: torch.device) -> dict[str, Any]:
    """The machine (CPU, cores, torch, threads, how busy: a matrix product's GFLOP/s), printed as one line and returned."""
    info = machine()
    info["sgemm_gflops"] = sgemm_gflops(device)
    print(f"machine: {info['cpu']}, {info['cores']} cores usable, torch {info['torch']}, {info['threads']} threads, device {device}"
          + (f" ({info['cuda']})" if device.type == "cuda" else "") + f"; 2048² float32 matmul {info['sgemm_gflops']:.1f} GFLOP/s", flush=True)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--patches", type=int, nargs="+", default=None, help=f"cubic patch sides (default {DEFAULT_PATCHES}; --quick {QUICK_PATCHES})")
    parser.add_argument("--generator", choices=["resnet", "unet"], default="resnet")
    parser.add_argument("--batch", type=int, default=1, help="patches per domain per step (the config's default: 1)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per patch size (at least --min-iterations iterations)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first (the first is the FLOP count and pays for allocations)")
    parser.add_argument("--min-iterations", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: patches {QUICK_PATCHES}, 1 timed iteration")
    parser.add_argument("--glibc-heap", action="store_true",
                        help="CPU: train with train.cpu_mmap_threshold null (glibc's heap as it is) instead of the config's 1 MiB threshold")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    parser.add_argument("--one-patch", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.patches = args.patches or QUICK_PATCHES
        args.seconds, args.warmup, args.min_iterations = 0.0, 1, 1
    args.patches = args.patches or DEFAULT_PATCHES
    torch.set_num_threads(args.threads)
    if args.one_patch is not None:
        _child_patch(args)
        return

    device = torch.device(args.device)
    env = child_env(args.threads)
    info = describe_machine(device)
    configs = {p: cyclegan_config(p, generator=args.generator, batch=args.batch, device=args.device) for p in args.patches}  # refuses bad patches first
    cfg0 = configs[args.patches[0]]
    m = cfg0.model
    generator = (f"ResNet generators (width {m.width}, {m.n_down} stride-2 levels, {m.n_blocks} residual blocks)" if m.generator == "resnet"
                 else f"U-Net generators (width {m.width}, depth {m.n_down})")
    print(f"networks: {generator}; PatchGAN critics (width {m.d_width}, {m.d_layers} stride-2 layers); norm {m.norm}; "
          f"loss {cfg0.loss.loss}, cycle λ {cfg0.loss.lambda_cycle:g}, identity {cfg0.loss.lambda_identity:g}·λ, pool {cfg0.loss.pool_size}; "
          f"batch {args.batch}; Adam; EMA; CPU heap: " + ("glibc's own (cpu_mmap_threshold null)" if args.glibc_heap
                                                           else f"cpu_mmap_threshold {cfg0.train.cpu_mmap_threshold} B"), flush=True)
    plans = {p: plan_for(c, args.device) for p, c in configs.items()}
    n_params = plans[args.patches[0]]["parameters"]
    print("parameters: " + ", ".join(f"{k} {v:,d}" for k, v in n_params.items()) + f" (total {sum(n_params.values()):,d})", flush=True)

    print(f"\n{'patch':>6s} {'iters':>5s} {'s/iter':>7s} {'patches/s':>9s} {'voxels/s':>10s} {'GFLOP/it':>8s} {'GFLOP/s':>7s} "
          f"{'peak MiB':>8s} {'import':>7s} {'ready':>7s} {'plan MiB':>8s} {'import+plan':>11s}", flush=True)
    rows = []
    for p in args.patches:
        r = _spawn_patch(args, p, env)
        plan = plans[p]["training"]
        r["plan_mib"] = {k: v / MIB for k, v in plan.items()}
        r["plan_plus_import_mib"] = r["rss_after_import_mib"] + plan["total"] / MIB
        rows.append(r)
        gflop = "—" if r["gflop_per_iteration"] is None else f"{r['gflop_per_iteration']:.0f}"
        rate = "—" if r["gflop_per_s"] is None else f"{r['gflop_per_s']:.1f}"
        print(f"{p:>5d}³ {r['iterations']:5d} {r['median_iteration_s']:7.2f} {r['patches_per_s']:9.3f} {r['voxels_per_s']:10.0f} {gflop:>8s} {rate:>7s} "
              f"{r['peak_mib']:8.0f} {r['rss_after_import_mib']:7.0f} {r['rss_before_training_mib']:7.0f} {plan['total'] / MIB:8.0f} "
              f"{r['plan_plus_import_mib']:11.0f}", flush=True)
    total_patches = cfg0.train.total_rows
    print(f"(voxels/s: voxels of the A patches per second; the B patches double what the networks see. peak: {rows[0]['memory']} of a fresh process "
          f"per patch size; import: RSS after importing torch and gansim; ready: RSS with data, networks, optimisers and EMA built; "
          f"plan: memory_plan's training total with a full pool of {cfg0.loss.pool_size} per domain (the timed runs filled "
          f"{', '.join(str(r['pool_images_per_domain']) for r in rows)}))")
    print("the config's default run (" + f"{total_patches:,d} patches) at these speeds: "
          + ", ".join(f"{r['patch'][0]}³ {total_patches / r['patches_per_s'] / 3600:.1f} h" for r in rows), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "parameters": n_params, "config": json.loads(cfg0.model_dump_json()), "patches": rows,
                                         "plans": {str(p): {k: v for k, v in plans[p].items() if k in ("training", "methods", "assumptions")} for p in args.patches},
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
