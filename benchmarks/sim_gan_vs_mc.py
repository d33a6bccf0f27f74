"""Exit particles per second: a conditional GAN source against the analog Monte Carlo it replaces.

The set-up of ``gansim demo``: Tc-99m in the built-in IEC phantom, three 1 s runs whose
activity image changes, once with ``AnalogSource`` (photon transport to the exit sphere)
and once with ``GANSource`` (the demo's conditional GAN, conditions drawn from the same
images). Only the sources are timed (``Simulation.run``'s per-source seconds); no actor but
a statistics actor is attached. Prints both rates and their ratio.

Needs a model trained by the demo (``gansim demo`` writes ``demo-output/training/model``).

    python benchmarks/sim_gan_vs_mc.py [--model demo-output/training/model] [--activity 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from gansim.demos.spect import demo_activity_images
from gansim.sim import AnalogSource, GANSource, PhantomVolume, Simulation, StatisticsActor, VoxelizedConditionGenerator
from gansim.units import MBq, keV, s


def rate(kind: str, model: Path, activity: float, device: str, out: Path) -> tuple[float, int, float]:
    images, _, geometry = demo_activity_images()
    sim = Simulation(output_dir=out, seed=1, device=device, force=True)
    sim.run_timing_intervals = [(k * s, (k + 1) * s) for k in range(len(images))]
    sim.add_volume(PhantomVolume("iec", "iec"))
    if kind == "mc":
        source = AnalogSource("source", isotope="Tc99m", activity_image=(images[0], geometry), activity=activity)
        source.add_dynamic_parametrisation(activity_image=[(im, geometry) for im in images])
    else:
        condition = VoxelizedConditionGenerator((images[0], geometry), compute_directions=True, device=device)
        source = GANSource("source", model, isotope="Tc99m", activity=activity, condition=condition, time_key="TimeFromBeginOfEvent",
                           energy_min_threshold=20 * keV, skip_policy="ZeroEnergy", device=device)
        source.add_dynamic_parametrisation(condition_image=[(im, geometry) for im in images])
    sim.add_source(source)
    sim.add_actor(StatisticsActor("stats"))
    timing = sim.run()["timing"]["source"]
    return timing["particles"] / timing["seconds"], timing["particles"], timing["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("demo-output/training/model"))
    parser.add_argument("--activity", type=float, default=2.0, help="MBq per run (the demo's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if not (args.model / "manifest.json").is_file():
        # like a missing peer: `make bench` reports it as skipped (run `make demo` first to train the model)
        print(f"{args.model}: no model; run `gansim demo` (make demo) first, or pass --model", file=sys.stderr)
        sys.exit(3)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        mc = rate("mc", args.model, args.activity * MBq, args.device, Path(tmp) / "mc")
        gan = rate("gan", args.model, args.activity * MBq, args.device, Path(tmp) / "gan")
    print(f"{'source':<22s} {'exit particles':>15s} {'seconds':>9s} {'particles/s':>13s}")
    for name, (r, n, t) in (("analog Monte Carlo", mc), ("GAN", gan)):
        print(f"{name:<22s} {n:15,d} {t:9.2f} {r:13,.0f}")
    print(f"GAN / Monte Carlo: {gan[0] / mc[0]:.2f}x ({args.threads} threads, device {args.device})")


if __name__ == "__main__":
    main()
