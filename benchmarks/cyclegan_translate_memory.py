"""3-D CycleGAN: time and peak memory of `gansim translate` on a whole 182×218×182 (and 256³) volume, as a user runs it.

A model at gansim's default CycleGAN config (``CycleGANConfig()``: ResNet generators of width 32,
2 stride-2 levels, 6 residual blocks; sliding windows of the 64³ training patch, overlap 0.5,
Gaussian blending, one window per forward) is written with ``save_cyclegan`` from random weights
(speed and memory do not depend on training). Each input is a synthetic head (an ellipsoid with
smooth contrast and noise in a noisy background) saved as a float32 .nii.gz with an **oblique
affine** (rotated 12° about z and 8° about x, 1 mm voxels), as a scanner writes it.

* Each translation is ``gansim translate MODEL IN.nii.gz -o OUT.nii.gz --device D [--overlap F]``
  in a fresh child process: read, canonical frame, scaling, sliding windows, inverse scaling,
  written back with the input's header. Its time is the child's wall time (start-up included);
  its peak memory is the child's own peak RSS (VmHWM of /proc/self/status, read as it exits; not
  ``ru_maxrss``, which Linux carries over from the parent across fork and exec), or with
  ``--device cuda`` also the RSS (the GPU's own memory is not seen from here).
* Start-up: a child that imports the command line, torch and MONAI and loads the model, and does
  nothing else; its peak RSS is the floor of every translation.
* A window's forward time is measured in this process first, so each run's time can be predicted
  from its window count (MONAI's scan: windows at steps of ``(1 − overlap)·64`` voxels, the last
  one flush with the far border); a run predicted to take longer than ``--max-minutes`` is not
  run, and its prediction is reported instead. Memory does not depend on the window count: the
  inferer keeps the whole output and its weight map whatever the overlap (``--overlaps 0.5 0``
  shows it).
* The 8 GB of the issue is taken as 8·10⁹ bytes (7,629 MiB), the stricter reading (8 GiB is
  8,192 MiB); both are printed.
* Beside each, :func:`gansim.models.volume_plan.memory_plan`'s figures: its plan of the
  translation itself (every volume-sized buffer of ``CycleGANModel.translate`` and one window
  batch through the generator), compared with the growth of the peak RSS over the start-up's
  (which holds the libraries and the model's parameters, so the plan's parameters are left out);
  and its inference figures: one window through one generator, and the whole (padded) volume
  through it in one forward, which sliding windows avoid.

    python benchmarks/cyclegan_translate_memory.py [--threads 2] [--device cpu] [--shape 182 218 182 --shape 256 256 256]
                                                  [--overlaps 0.5 0] [--max-minutes 15] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cyclegan_speed import MIB, child_env, describe_machine  # noqa: E402
from pacgan_speed import CLI_PEAK_RUNNER, run_child, sync, vmhwm_mib  # noqa: E402

DEFAULT_SHAPES = [(182, 218, 182), (256, 256, 256)]
QUICK_SHAPES = [(70, 76, 66)]
#: the issue's "within 8 GB of memory", in bytes
LIMIT_BYTES = 8 * 10**9

#: what every translation pays before its first window: the command line's imports, MONAI, the model
STARTUP_RUNNER = """
import sys
import gansim.cli.main
import gansim.cli.volumes
import gansim.io.volumes
import monai.inferers
from gansim.models import load_model
load_model(sys.argv[1], device=sys.argv[2])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("VMHWM_KB " + line.split()[1], flush=True)
"""


def oblique_affine(shape: tuple[int, int, int], spacing: float = 1.0, z_deg: float = 12.0, x_deg: float = 8.0) -> np.ndarray:
    """A (4, 4) voxel -> world (mm) affine: ``spacing`` mm voxels rotated ``z_deg`` about z and ``x_deg`` about x, centred on the origin."""
    cz, sz = math.cos(math.radians(z_deg)), math.sin(math.radians(z_deg))
    cx, sx = math.cos(math.radians(x_deg)), math.sin(math.radians(x_deg))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx * spacing
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    return affine


def synthetic_head(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A float32 volume: an ellipsoidal head (≈ 100 ± smooth contrast) filling ~70 % of each axis, in noisy air (≈ 5)."""
    rng = np.random.default_rng(seed)
    i, j, k = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    x, y, z = i[:, None, None], j[None, :, None], k[None, None, :]
    r2 = (x / 0.7) ** 2 + (y / 0.75) ** 2 + (z / 0.7) ** 2
    head = r2 < 1
    contrast = 100 + 30 * np.sin(5 * x) * np.cos(4 * y) + 20 * np.cos(6 * z) - 40 * (r2 < 0.15)  # a darker core ("ventricles")
    volume = np.where(head, contrast, 0).astype(np.float32)
    volume += np.abs(rng.normal(0, 5, shape)).astype(np.float32)
    return volume


def write_input(path: Path, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Write the synthetic head as a float32 NIfTI-1 with the oblique affine as sform and qform (code 1, scanner); returns the affine."""
    import nibabel as nib

    affine = oblique_affine(shape)
    img = nib.Nifti1Image(synthetic_head(shape, seed), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return affine


def window_count(shape: tuple[int, ...], window: tuple[int, ...], overlap: float) -> int:
    """Windows MONAI's sliding-window inferer runs over ``shape`` (its scan interval and its dense patch slices)."""
    from monai.data.utils import dense_patch_slices

    size = tuple(max(n, w) for n, w in zip(shape, window))  # the inferer pads an axis shorter than the window
    interval = tuple(w if w == n else max(int(w * (1 - overlap)), 1) for n, w in zip(size, window))
    return len(dense_patch_slices(size, window, interval))


def make_model(model_dir: Path, cfg: Any, scaling_volume: np.ndarray) -> tuple[Path, tuple[int, int, int]]:
    """Write a random-weight model at ``cfg`` (both generators) with a scaling fitted to ``scaling_volume``; returns it and its window."""
    from gansim.io.volumes import VolumeScaling
    from gansim.models.cyclegan_model import save_cyclegan
    from gansim.models.cyclegan_nets import build_cyclegan_networks

    nets = build_cyclegan_networks(cfg.model, seed=0)
    scaling = VolumeScaling.fit(scaling_volume, percentiles=cfg.data.percentiles, source="synthetic head").to_dict()
    window = tuple(cfg.inference.window or cfg.data.patch)
    path = save_cyclegan(model_dir, nets["G_AB"], nets["G_BA"], cfg.model, paired=True, percentiles=cfg.data.percentiles,
                         domain_scaling={"A": scaling, "B": scaling}, inference=cfg.inference, window=window)
    return Path(path), window  # type: ignore[return-value]


def time_window(model_dir: Path, window: tuple[int, ...], device: torch.device, sw_batch: int, repeats: int) -> float:
    """Median seconds of one forward of ``sw_batch`` windows through the loaded model's A→B generator (after one warm-up)."""
    from gansim.models import load_model

    model = load_model(model_dir, device=device)
    net = model.generators["g_ab"]
    x = torch.rand(sw_batch, 1, *window, device=device) * 2 - 1
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            sync(device)
            t0 = time.perf_counter()
            net(x)
            sync(device)
            if i:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def check_output(out: Path, source: Path) -> dict[str, Any]:
    """Whether the output lies on the input's grid with its header: shape, affine, sform/qform codes; and its values are finite."""
    import nibabel as nib

    a, b = nib.load(str(source)), nib.load(str(out))
    data = np.asarray(b.dataobj)
    return {"shape_kept": a.shape == b.shape, "affine_kept": bool(np.allclose(a.affine, b.affine, atol=1e-5)),
            "sform_qform_codes_kept": (int(a.header["sform_code"]), int(a.header["qform_code"])) == (int(b.header["sform_code"]), int(b.header["qform_code"])),
            "finite": bool(np.isfinite(data).all()), "dtype": str(data.dtype)}


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "—" if value is None else format(value, fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--shape", type=int, nargs=3, action="append", default=None, metavar=("X", "Y", "Z"),
                        help="volume shape (repeat for several; default 182 218 182 and 256 256 256)")
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.5, 0.0], help="sliding-window overlaps to run (the model's default is 0.5)")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="do not run a translation predicted to take longer; report the prediction")
    parser.add_argument("--window-repeats", type=int, default=2, help="timed forwards of one window (after one warm-up)")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: shape {QUICK_SHAPES[0]}, overlap 0.5, one window timing")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    args = parser.parse_args()
    shapes = [tuple(s) for s in args.shape] if args.shape else (QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    if args.quick:
        args.overlaps, args.window_repeats = [0.5], 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    env = child_env(args.threads)

    from gansim.config import parse_config
    from gansim.models.cyclegan_config import CycleGANConfig
    from gansim.models.volume_plan import memory_plan

    info = describe_machine(device)
    cfg = parse_config(CycleGANConfig, {"train": {"device": args.device}}, source="translate benchmark")
    m = cfg.model
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir, window = make_model(tmp / "model", cfg, synthetic_head((64, 72, 64), seed=99))
        sw_batch = cfg.inference.sw_batch_size
        print(f"model: ResNet generator (width {m.width}, {m.n_down} stride-2 levels, {m.n_blocks} residual blocks), random weights; "
              f"windows {'×'.join(map(str, window))}, overlap {cfg.inference.overlap} (model default), {sw_batch} per forward, Gaussian blending", flush=True)
        t_window = time_window(model_dir, window, device, sw_batch, args.window_repeats)
        print(f"one forward of {sw_batch} window(s) of {'×'.join(map(str, window))}: {t_window:.2f} s", flush=True)
        out, wall, _ = run_child([sys.executable, "-c", STARTUP_RUNNER, str(model_dir), args.device], env)
        startup = {"peak_rss_mib": vmhwm_mib(out), "wall_s": wall}
        print(f"start-up (imports of the command line, torch and MONAI; model loaded): peak RSS {startup['peak_rss_mib']:.0f} MiB, {wall:.1f} s", flush=True)

        print(f"\n{'volume':>13s} {'overlap':>7s} {'windows':>7s} {'seconds':>8s} {'s/window':>8s} {'peak RSS MiB':>12s} {'≤ 8 GB':>6s} {'≤ 8 GiB':>7s} "
              f"{'growth':>6s} {'plan':>6s} {'ratio':>5s} {'plan: window':>12s} {'plan: whole':>11s} {'volume MiB':>10s}  header kept", flush=True)
        for shape in shapes:
            source = tmp / ("in_" + "x".join(map(str, shape)) + ".nii.gz")
            write_input(source, shape)
            plan = memory_plan(m, shape, sw_batch, training=False, patch=window, device=args.device)
            plan_window, plan_whole = plan["inference_window"]["total"] / MIB, plan["inference"]["total"] / MIB
            translation = plan.get("translation")  # the plan of `gansim translate` itself (parameters of both generators included)
            plan_growth = None if translation is None else (translation["total"] - translation["parameters"]) / MIB
            volume_mib = math.prod(shape) * 4 / MIB
            for overlap in args.overlaps:
                n_windows = window_count(shape, window, overlap)
                predicted = n_windows / sw_batch * t_window
                row: dict[str, Any] = {"shape": list(shape), "overlap": overlap, "windows": n_windows, "predicted_s": predicted,
                                       "plan_window_mib": plan_window, "plan_whole_volume_mib": plan_whole, "volume_float32_mib": volume_mib,
                                       "plan_translation_mib": None if translation is None else {k: v / MIB for k, v in translation.items()},
                                       "plan_translation_peak_phase": plan.get("translation_peak_phase")}
                name = "×".join(map(str, shape))
                if predicted > 60 * args.max_minutes:
                    row["skipped"] = f"predicted {predicted / 60:.1f} min > --max-minutes {args.max_minutes:g}"
                    print(f"{name:>13s} {overlap:7.2f} {n_windows:7d} {'~' + format(predicted, '.0f'):>8s} {t_window:8.2f} {'not run':>12s} "
                          f"{'':>6s} {'':>7s} {'':>6s} {_num(plan_growth):>6s} {'':>5s} {plan_window:12.0f} {plan_whole:11.0f} {volume_mib:10.0f}  "
                          "(predicted from the window time: "
                          f"{predicted / 60:.1f} min > {args.max_minutes:g})", flush=True)
                    results.append(row)
                    continue
                target = tmp / ("out_" + "x".join(map(str, shape)) + f"_{overlap:g}.nii.gz")
                cmd = [sys.executable, "-c", CLI_PEAK_RUNNER, "translate", str(model_dir), str(source), "-o", str(target), "--device", args.device,
                       "--overlap", str(overlap)]
                out, wall, _ = run_child(cmd, env)
                peak = vmhwm_mib(out)
                header = check_output(target, source)
                target.unlink()
                growth = peak - startup["peak_rss_mib"]
                ratio = None if plan_growth is None else plan_growth / growth
                row.update({"seconds": wall, "seconds_per_window": wall / n_windows, "peak_rss_mib": peak,
                            "within_8GB": peak * MIB <= LIMIT_BYTES, "within_8GiB": peak <= 8 * 1024, "output": header,
                            "growth_over_startup_mib": growth, "plan_growth_mib": plan_growth, "plan_ratio": ratio,
                            "plan_within_25pc": None if ratio is None else abs(ratio - 1) <= 0.25})
                results.append(row)
                kept = all(header[k] for k in ("shape_kept", "affine_kept", "sform_qform_codes_kept", "finite"))
                print(f"{name:>13s} {overlap:7.2f} {n_windows:7d} {wall:8.1f} {wall / n_windows:8.2f} {peak:12.0f} {'yes' if row['within_8GB'] else 'NO':>6s} "
                      f"{'yes' if row['within_8GiB'] else 'NO':>7s} {growth:6.0f} {_num(plan_growth):>6s} {_num(ratio, '.2f'):>5s} "
                      f"{plan_window:12.0f} {plan_whole:11.0f} {volume_mib:10.0f}  "
                      f"{'yes' if kept else 'NO ' + json.dumps(header)}", flush=True)
            source.unlink()
    print(f"(seconds: wall time of `gansim translate` in a fresh process, start-up and .nii.gz reading and writing included; peak RSS: its own VmHWM; "
          f"8 GB = {LIMIT_BYTES / MIB:,.0f} MiB, 8 GiB = 8,192 MiB; growth: peak RSS minus the start-up's (model loaded); plan: memory_plan's "
          "translation total minus the parameters (in the start-up), ratio plan/growth (±25 % asked); plan: window / whole: its inference totals, "
          "one window and the whole padded volume in one forward; volume: one float32 copy of the volume)")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "window": list(window), "window_forward_s": t_window, "startup": startup, "runs": results,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
