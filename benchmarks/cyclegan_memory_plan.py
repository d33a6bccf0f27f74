"""3-D CycleGAN: the memory plan's estimate (``gansim plan``) against measured peak memory, within ±25 %?

For each case (training or whole-volume inference; shape; batch; generator kind; gradient
checkpointing) :func:`gansim.models.volume_plan.memory_plan` gives an estimate in bytes, and a
fresh child process runs the case and measures it. The networks are gansim's default CycleGAN
config (``CycleGANConfig()``, or its U-Net generator), with random weights and random inputs.

What the plan counts is tensors: for training, parameters, gradients, Adam state, the generators'
EMA copy, the input patches, the fakes kept for the critics' step and the image pools, the
activations saved for backward, and a workspace for the activation gradients; for inference, one
generator's parameters and the peak of the live activations of one forward pass. What is compared:

* **CPU**: a child imports torch and gansim, makes the data (one random A and one random B volume
  of the case's shape: the data set is not part of the plan), builds the networks and reads its
  RSS (``/proc/self/status`` VmRSS): the *baseline*. It then runs the case (training: the real
  :class:`~gansim.models.cyclegan.CycleGANObjective` in the real :class:`~gansim.training.loop.TrainingLoop`,
  ``--iterations`` iterations, so that every gradient and Adam state exists and the peak is
  reached; inference: one generator forward without gradients on a random batch) and reports its
  own peak RSS (VmHWM: ``ru_maxrss`` would include the parent's peak, which Linux keeps across fork
  and exec). **measured = peak RSS − baseline**, compared with
  **estimate = the plan's total − its parameters** (the parameters are in the baseline: the
  libraries and interpreter are not tensors, and the plan does not claim to count them). The
  parameter term is checked on its own: the RSS the networks added against the plan's parameter
  bytes. Training cases use an image pool of 1 image per domain, in the plan and in the run, so
  that the pool is full after two iterations (the default pool of 50 needs 50 iterations to fill).
* **CUDA**: ``torch.cuda.max_memory_allocated`` (all tensors, parameters included; not the CUDA
  context) against the plan's total.

A ratio estimate/measured within [0.75, 1.25] passes. Training runs as ``gansim train`` does, with
the CycleGAN's ``train.cpu_mmap_threshold`` of 1 MiB (:mod:`gansim.training.cpu_heap`): glibc hands
freed blocks of 1 MiB and more back to the kernel instead of keeping them in its heap.
``--malloc-check`` (``auto``: where a case fails; ``always``; ``never``) runs a case again with the
other heap: a training case with ``train.cpu_mmap_threshold: null`` (glibc's heap as it is, which
keeps freed blocks: what the setting saves), an inference case (no training loop, glibc as it is)
with ``MALLOC_MMAP_THRESHOLD_=131072``. If an inference case passes then, the missing memory was
freed tensors the C library kept (fragmentation), not a term of the plan.

A second diagnostic (``--tensor-peak auto``, the default; ``always``, ``never``) runs a failing case
again under torch's profiler with memory profiling: the peak of bytes PyTorch's CPU allocator
handed out after the baseline (temporaries inside operators included), the CPU counterpart of
``max_memory_allocated``. ``--layer-peaks resnet/128`` instead prints, per layer of one generator
forward, the memory the layer took beyond its input and output (VmHWM reset before each layer).

    python benchmarks/cyclegan_memory_plan.py [--threads 2] [--device cpu] [--cases train/resnet/64/1 infer/resnet/184x220x184/1 ...]
                                              [--iterations 2] [--malloc-check auto|always|never] [--tensor-peak auto|always|never]
                                              [--layer-peaks GENERATOR/SHAPE] [--quick] [--json OUT]

A case is ``KIND/GENERATOR/SHAPE/BATCH[/ckpt]``: KIND ``train`` or ``infer``, GENERATOR ``resnet``
or ``unet``, SHAPE ``N`` (a cube) or ``XxYxZ``, ``ckpt`` for gradient checkpointing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cyclegan_speed import (  # noqa: E402
    MIB,
    child_env,
    describe_machine,
    cyclegan_config,
    import_gansim,
    make_loop,
    make_networks,
    make_patches,
    peak_mib,
    rss_mib,
)
from pacgan_speed import run_child  # noqa: E402

DEFAULT_CASES = ["train/resnet/24/2", "train/resnet/32/1", "train/resnet/64/1", "train/unet/48/1", "train/resnet/32/1/ckpt",
                 "infer/resnet/64/1", "infer/resnet/128/1", "infer/resnet/184x220x184/1", "infer/unet/128/1"]
QUICK_CASES = ["train/resnet/24/1", "infer/resnet/48/1", "infer/resnet/32/2"]
TOLERANCE = 0.25
#: glibc: serve (and return to the kernel at free) every block above this many bytes with its own mapping
MMAP_THRESHOLD = 131072


@dataclass(frozen=True)
class Case:
    """One comparison: training or inference, generator kind, spatial shape, batch, gradient checkpointing."""

    kind: str
    generator: str
    shape: tuple[int, int, int]
    batch: int
    checkpointing: bool = False

    @classmethod
    def parse(cls, text: str) -> Case:
        parts = text.strip().split("/")
        try:
            if len(parts) not in (4, 5) or parts[0] not in ("train", "infer") or parts[1] not in ("resnet", "unet"):
                raise ValueError
            sides = [int(s) for s in parts[2].lower().split("x")]
            shape = (sides[0],) * 3 if len(sides) == 1 else tuple(sides)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError
            batch = int(parts[3])
            if batch < 1 or (len(parts) == 5 and (parts[4] != "ckpt" or parts[0] != "train")):
                raise ValueError
        except ValueError:
            raise SystemExit(f"case {text!r}: expected KIND/GENERATOR/SHAPE/BATCH[/ckpt] with KIND train|infer, GENERATOR resnet|unet, "
                             "SHAPE N or XxYxZ, BATCH >= 1, ckpt (training only)") from None
        return cls(parts[0], parts[1], shape, batch, len(parts) == 5)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        shape = f"{self.shape[0]}³" if len(set(self.shape)) == 1 else "×".join(map(str, self.shape))
        return f"{self.kind} {self.generator} {shape} b{self.batch}{' ckpt' if self.checkpointing else ''}"

    def spec(self) -> str:
        return f"{self.kind}/{self.generator}/{'x'.join(map(str, self.shape))}/{self.batch}" + ("/ckpt" if self.checkpointing else "")


def case_config(case: Case, device: str) -> Any:
    """The default config for ``case``: its generator, batch and checkpointing; training patches of its shape and a pool of 1."""
    from gansim.config import parse_config
    from gansim.models.cyclegan_config import CycleGANConfig

    if case.kind == "train":
        return cyclegan_config(case.shape, generator=case.generator, batch=case.batch, device=device, pool_size=1, checkpointing=case.checkpointing)
    return parse_config(CycleGANConfig, {"model": {"generator": case.generator}, "train": {"progress": False, "device": device}}, source="memory benchmark")


def case_plan(case: Case, cfg: Any, device: str) -> dict[str, Any]:
    """The plan's bytes for ``case``: its parts and total (training's, or whole-volume inference's)."""
    from gansim.errors import ConfigError
    from gansim.models.volume_plan import config_memory_plan, memory_plan, shape_rule

    if case.kind == "train":
        plan = config_memory_plan(cfg, case.shape, case.batch, device=device)  # the case's config: patch = shape, its batch and checkpointing
        return {"parts": plan["training"], "methods": plan["methods"], "by_phase": plan.get("activations_by_phase")}
    rule = shape_rule(cfg.model)
    if not rule.valid(case.shape):
        raise ConfigError(f"case {case.spec()}: inference runs the generator on the shape as given; {case.shape} is not a valid input "
                          f"(multiples of {rule.multiple}, at least {rule.minimum}): pad it first")
    plan = memory_plan(cfg.model, case.shape, case.batch, training=False, device=device)
    return {"parts": plan["inference"], "methods": plan["methods"]}


def run_case(case: Case, device: torch.device, iterations: int, tensor_peak: bool = False, glibc_heap: bool = False) -> dict[str, Any]:
    """Run ``case`` in this (fresh) process; RSS in MiB at each stage, the peak, and on CUDA the allocated bytes.

    With ``tensor_peak`` (CPU), everything after the baseline runs under torch's profiler with
    memory profiling, and ``tensor_peak_mib`` is the peak of the bytes PyTorch's CPU allocator
    handed out since then (temporaries inside operators included): the CPU counterpart of
    ``torch.cuda.max_memory_allocated``, free of the C library's heap and of library pages.
    With ``glibc_heap`` a training case runs with ``train.cpu_mmap_threshold: null`` (glibc's heap as it is).
    """
    from gansim.models.cyclegan_nets import build_generator, init_weights

    cfg = case_config(case, str(device))
    if glibc_heap:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"cpu_mmap_threshold": None})})
    out: dict[str, Any] = {"rss_import_mib": rss_mib()}
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        if case.kind == "train":
            patches = make_patches(cfg, device, volume_shape=case.shape)  # the data set: not in the plan, so before the baseline
            out["rss_data_mib"] = rss_mib()
            generators, critics = make_networks(cfg, device)
        else:
            out["rss_data_mib"] = out["rss_import_mib"]
            torch.manual_seed(cfg.train.seed)
            net = init_weights(build_generator(cfg.model), cfg.model.init_std).to(device).eval()
        out["rss_baseline_mib"] = rss_mib()
        out["cuda_baseline_mib"] = torch.cuda.memory_allocated(device) / MIB if cuda else None
        with _tensor_profiler(tensor_peak and not cuda) as prof:
            if case.kind == "train":
                loop = make_loop(cfg, generators, critics, patches, device, Path(tmp))
                out["peak_by_iteration_mib"] = []
                for _ in range(iterations):
                    loop._iteration()
                    out["peak_by_iteration_mib"].append(peak_mib(device))
                out["pool_images_per_domain"] = len(loop.objective.pool_a.images)
                del loop
            else:
                with torch.no_grad():
                    x = torch.rand(case.batch, cfg.model.channels, *case.shape, device=device) * 2 - 1
                    y = net(x)
                    if cuda:
                        torch.cuda.synchronize(device)
                    del x, y
        out["peak_mib"] = peak_mib(device)
        out["rss_peak_mib"] = peak_mib(torch.device("cpu"))
        if prof is not None:
            out["tensor_peak_mib"] = _allocated_peak(prof, Path(tmp) / "trace.json") / MIB
    return out


@contextlib.contextmanager
def _tensor_profiler(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        yield prof


def _allocated_peak(prof: Any, trace: Path) -> float:
    """The largest 'Total Allocated' of the profiler's memory events (bytes allocated since profiling began and not yet freed)."""
    prof.export_chrome_trace(str(trace))
    events = json.loads(trace.read_text())["traceEvents"]
    return float(max((e["args"].get("Total Allocated", 0) for e in events if e.get("name") == "[memory]"), default=0))


def layer_peaks(generator: str, shape: tuple[int, int, int]) -> list[dict[str, Any]]:
    """CPU, Linux: for each leaf layer of one generator forward (no gradients) at ``shape``, its input and output and the memory
    it took above them while it ran (MiB).

    Before each leaf layer runs, the RSS is read and the high-water mark reset (``/proc/self/clear_refs``
    ← 5); after it, ``extra = VmHWM − RSS before − output``: the temporaries inside the layer that
    the plan's live-tensor count (module inputs and outputs) does not see (0 where the layer was served
    from memory the C library's heap already held: small layers read nothing). One forward at the
    generator's smallest shape first loads the kernels' code, so it is not counted here.
    """
    from gansim.models.cyclegan_nets import build_generator, init_weights
    from gansim.models.volume_plan import shape_rule

    cfg = case_config(Case("infer", generator, shape, 1), "cpu")
    net = init_weights(build_generator(cfg.model), cfg.model.init_std).eval()
    clear = Path("/proc/self/clear_refs")
    rows: list[dict[str, Any]] = []
    state: dict[str, float] = {}

    def before(module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
        state["rss"] = rss_mib()
        clear.write_text("5")

    def after(module: torch.nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        hwm = peak_mib(torch.device("cpu"))
        out = output.numel() * output.element_size() / MIB
        rows.append({"layer": names[module], "type": type(module).__name__, "in_mib": inputs[0].numel() * inputs[0].element_size() / MIB,
                     "out_mib": out, "rss_before_mib": state["rss"], "peak_mib": hwm, "extra_mib": max(0.0, hwm - state["rss"] - out)})

    names = {m: n for n, m in net.named_modules()}
    leaves = [m for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net(torch.rand(1, cfg.model.channels, *shape_rule(cfg.model).minimum) * 2 - 1)
        handles = [m.register_forward_pre_hook(before) for m in leaves] + [m.register_forward_hook(after) for m in leaves]
        try:
            net(torch.rand(1, cfg.model.channels, *shape) * 2 - 1)
        finally:
            for h in handles:
                h.remove()
    return rows


def _child(args: argparse.Namespace) -> None:
    import_gansim()
    if args.one_layers is not None:
        case = Case.parse(args.one_layers)
        print("RESULT " + json.dumps(layer_peaks(case.generator, case.shape)), flush=True)
        return
    result = run_case(Case.parse(args.one_case), torch.device(args.device), args.iterations, tensor_peak=args.profile_child, glibc_heap=args.glibc_heap)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(args: argparse.Namespace, case: Case, env: dict[str, str], profile: bool = False, glibc_heap: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-case", case.spec(), "--device", args.device, "--threads", str(args.threads),
           "--iterations", str(args.iterations)] + (["--profile-child"] if profile else []) + (["--glibc-heap"] if glibc_heap else [])
    out, wall, _ = run_child(cmd, env)
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["wall_s"] = wall
    return result


def compare(case: Case, plan: dict[str, Any], run: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Estimate and measurement of one case (MiB), their ratio and PASS/FAIL (see the module docstring for what is compared)."""
    parts = plan["parts"]
    if device.type == "cuda":
        estimate, measured = parts["total"] / MIB, run["peak_mib"]
        what = "plan total vs CUDA max allocated"
    else:
        estimate, measured = (parts["total"] - parts["parameters"]) / MIB, run["peak_mib"] - run["rss_baseline_mib"]
        what = "plan total - parameters vs peak RSS - RSS with the networks built"
    ratio = estimate / measured if measured > 0 else float("inf")
    return {"estimate_mib": estimate, "measured_mib": measured, "ratio": ratio, "pass": abs(ratio - 1) <= TOLERANCE, "compared": what,
            "parameters_plan_mib": parts["parameters"] / MIB, "parameters_rss_mib": run["rss_baseline_mib"] - run["rss_data_mib"]}


def _print_layer_peaks(args: argparse.Namespace) -> None:
    case = Case.parse(f"infer/{args.layer_peaks}/1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-layers", case.spec(), "--threads", str(args.threads)]
    out, _, _ = run_child(cmd, child_env(args.threads))
    rows = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    print(f"{case.generator} generator, one forward without gradients at {'×'.join(map(str, case.shape))}, {args.threads} thread(s); MiB")
    print(f"{'layer':<28s} {'type':<16s} {'input':>8s} {'output':>8s} {'RSS before':>10s} {'peak':>8s} {'extra':>8s} {'extra/out':>9s}")
    for r in rows:
        print(f"{r['layer']:<28s} {r['type']:<16s} {r['in_mib']:8.1f} {r['out_mib']:8.1f} {r['rss_before_mib']:10.0f} {r['peak_mib']:8.0f} "
              f"{r['extra_mib']:8.1f} {r['extra_mib'] / r['out_mib'] if r['out_mib'] else float('nan'):9.2f}")
    top = max(rows, key=lambda r: r["peak_mib"])
    print(f"highest peak: {top['peak_mib']:.0f} MiB in {top['layer']} ({top['type']}), of which {top['extra_mib']:.0f} MiB above its input and output")
    if args.json is not None:
        args.json.write_text(json.dumps({"layer_peaks": args.layer_peaks, "threads": args.threads, "layers": rows}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--cases", nargs="+", default=None, help=f"KIND/GENERATOR/SHAPE/BATCH[/ckpt] (default {' '.join(DEFAULT_CASES)})")
    parser.add_argument("--iterations", type=int, default=2, help="training iterations per training case (2: every gradient and Adam state exists)")
    parser.add_argument("--malloc-check", choices=["auto", "always", "never"], default="auto",
                        help=f"CPU: run a case again with the other heap (training: train.cpu_mmap_threshold null; inference: "
                             f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}) when it fails (auto), always, or never")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: cases {' '.join(QUICK_CASES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    parser.add_argument("--tensor-peak", choices=["auto", "always", "never"], default="auto",
                        help="CPU: run a case again under torch's memory profiler, for the peak of tensor bytes, when it fails (auto), always, or never")
    parser.add_argument("--layer-peaks", default=None, metavar="GENERATOR/SHAPE",
                        help="instead of the cases: per layer of one generator forward at SHAPE (e.g. resnet/128), the memory it takes above its "
                             "input and output (CPU, Linux)")
    parser.add_argument("--one-case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one-layers", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--glibc-heap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one_case is not None or args.one_layers is not None:
        _child(args)
        return
    if args.layer_peaks is not None:
        _print_layer_peaks(args)
        return
    cases = [Case.parse(c) for c in (args.cases or (QUICK_CASES if args.quick else DEFAULT_CASES))]
    device = torch.device(args.device)
    env = child_env(args.threads)
    info = describe_machine(device)
    if device.type == "cuda":
        print("compared: the plan's total against torch.cuda.max_memory_allocated of a fresh process per case", flush=True)
    else:
        print("compared: the plan's total minus its parameters against the peak RSS of a fresh process per case minus its RSS once the data "
              f"and networks were built; training: {args.iterations} iterations, image pool of 1 per domain (plan and run)", flush=True)
    print(f"\n{'case':<30s} {'estimate MiB':>12s} {'measured MiB':>12s} {'ratio':>6s} {'':4s} {'params plan/RSS':>16s} {'peak RSS':>8s} {'baseline':>8s} "
          f"{'wall s':>6s}", flush=True)
    results = []
    for case in cases:
        cfg = case_config(case, args.device)
        plan = case_plan(case, cfg, args.device)
        run = _spawn(args, case, env)
        row = {"case": case.spec(), "plan_mib": {k: v / MIB for k, v in plan["parts"].items()}, "methods": plan["methods"], "run": run,
               **compare(case, plan, run, device)}
        if plan.get("by_phase"):
            row["plan_activations_by_phase_mib"] = {k: v / MIB for k, v in plan["by_phase"].items()}
        print(f"{case.name:<30s} {row['estimate_mib']:12.0f} {row['measured_mib']:12.0f} {row['ratio']:6.2f} {'PASS' if row['pass'] else 'FAIL':4s} "
              f"{row['parameters_plan_mib']:7.0f}/{row['parameters_rss_mib']:<8.0f} {run['rss_peak_mib']:8.0f} {run['rss_baseline_mib']:8.0f} {run['wall_s']:6.0f}",
              flush=True)
        if device.type == "cpu" and (args.malloc_check == "always" or (args.malloc_check == "auto" and not row["pass"])):
            # training: the same run with glibc's heap as it is (train.cpu_mmap_threshold null); inference (no training loop): the threshold set
            if case.kind == "train":
                run2, label = _spawn(args, case, env, glibc_heap=True), "  cpu_mmap_threshold null"
            else:
                run2, label = _spawn(args, case, {**env, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}), f"  MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}"
            row["other_heap_run"] = r2 = {"run": run2, "label": label.strip(), **compare(case, plan, run2, device)}
            print(f"{label:<30s} {r2['estimate_mib']:12.0f} {r2['measured_mib']:12.0f} {r2['ratio']:6.2f} "
                  f"{'PASS' if r2['pass'] else 'FAIL':4s} {r2['parameters_plan_mib']:7.0f}/{r2['parameters_rss_mib']:<8.0f} {run2['rss_peak_mib']:8.0f} "
                  f"{run2['rss_baseline_mib']:8.0f} {run2['wall_s']:6.0f}", flush=True)
        if device.type == "cpu" and (args.tensor_peak == "always" or (args.tensor_peak == "auto" and not row["pass"])):
            run3 = _spawn(args, case, env, profile=True)
            ratio = row["estimate_mib"] / run3["tensor_peak_mib"] if run3["tensor_peak_mib"] > 0 else float("inf")
            row["tensor_peak_run"] = {"run": run3, "measured_mib": run3["tensor_peak_mib"], "ratio": ratio, "pass": abs(ratio - 1) <= TOLERANCE,
                                      "compared": "plan total - parameters vs the CPU allocator's peak of tensor bytes after the baseline (torch profiler)"}
            print(f"{'  tensor bytes (profiler)':<30s} {row['estimate_mib']:12.0f} {run3['tensor_peak_mib']:12.0f} {ratio:6.2f} "
                  f"{'PASS' if abs(ratio - 1) <= TOLERANCE else 'FAIL':4s} {'':16s} {run3['rss_peak_mib']:8.0f} {run3['rss_baseline_mib']:8.0f} {run3['wall_s']:6.0f}",
                  flush=True)
        results.append(row)
    failed = [r["case"] for r in results if not r["pass"]]
    print(f"\n{len(results) - len(failed)} of {len(results)} cases within ±{TOLERANCE:.0%}" + (f"; outside: {', '.join(failed)}" if failed else ""))
    for r in results:
        if not r["pass"]:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in r["plan_mib"].items() if k != "total")
            print(f"  {r['case']}: plan parts (MiB): {parts}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "tolerance": TOLERANCE, "iterations": args.iterations, "cases": results,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
