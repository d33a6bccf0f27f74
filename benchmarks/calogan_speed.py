"""Milliseconds per shower: the faithful CaloGAN and the modern shower GAN at batch 1, 128 and 1024, beside the paper and GFlash.

The paper's CPU table (Paganini et al., PRD 97 014021, recalled in ../shared/reference/calogan.md §d):
13.1 / 2.19 / 2.03 ms per shower at batch 1 / 128 / 1024; Geant4 about 1.8 s per shower. The
network here has the paper's sizes (29.7 M generator weights) with random weights: speed does not
depend on training. The modern shower GAN is timed with its default sizes on the CaloGAN layout and
on CaloChallenge dataset 2 (6,480 voxels). GFlash is gansim's built-in parameterised shower generator (e+, 1-100 GeV).

    python benchmarks/calogan_speed.py [--threads 2] [--device cpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gansim.data.calo import make_calo_showers
from gansim.models.calogan import CaloGANSettings
from gansim.models.calogan_model import CaloGANModel
from gansim.models.calogan_nets import CaloGANGenerator
from gansim.io.calo_geometry import CALOCHALLENGE_DS2, CALOGAN
from gansim.models.showergan import ShowerGANSettings
from gansim.models.showergan_model import ShowerGANModel, build_generator

PAPER_MS = {1: 13.1, 128: 2.19, 1024: 2.03}


def time_generator(model, batch: int, repeats: int) -> float:
    """Best wall time per shower (ms) of ``repeats`` calls making ``batch`` showers (inputs drawn outside the timing)."""
    noise_dim = getattr(model.generator, "noise_dim", model.settings.latent_dim)  # the modern model draws one column per cell too
    z = torch.randn(batch, noise_dim, device=model.device)
    e = torch.rand(batch, device=model.device) * 99 + 1
    with torch.inference_mode():
        model.generator(z, e)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generator(z, e)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return 1000 * best / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = CaloGANModel(CaloGANGenerator(), CaloGANSettings(), {}, device)
    modern = {name: ShowerGANModel(build_generator(ShowerGANSettings(), geometry, (1.0, 100.0), 1e-3), ShowerGANSettings(), geometry, {}, device)
              for name, geometry in (("calogan", CALOGAN), ("ds2", CALOCHALLENGE_DS2))}
    print(f"{'batch':>6s} {'faithful ms/shower':>19s} {'paper ms/shower':>16s} {'paper / faithful':>17s} {'modern ms (CaloGAN)':>20s} {'paper / modern':>15s} {'modern ms (DS2)':>16s}")
    for batch in (1, 128, 1024):
        ms = time_generator(model, batch, args.repeats)
        ms_modern = time_generator(modern["calogan"], batch, args.repeats)
        ms_ds2 = time_generator(modern["ds2"], batch, args.repeats)
        print(f"{batch:6d} {ms:19.3f} {PAPER_MS[batch]:16.2f} {PAPER_MS[batch] / ms:17.2f} {ms_modern:20.4f} {PAPER_MS[batch] / ms_modern:15.1f} {ms_ds2:16.4f}")
    # where the faithful model's time goes: its three dense projections (latent 1024 -> 28,728) on their own
    h = torch.randn(1024, model.settings.latent_dim, device=device)
    with torch.inference_mode():
        best = float("inf")
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            for stream in model.generator.streams:
                stream.dense(h)
            best = min(best, time.perf_counter() - t0)
    print(f"faithful, its dense projections alone at batch 1024: {1000 * best / 1024:.3f} ms/shower")
    t0 = time.perf_counter()
    make_calo_showers(2048, "eplus", seed=1, workers=args.threads)
    gflash = 1000 * (time.perf_counter() - t0) / 2048
    print(f"GFlash (built-in, e+ 1-100 GeV, {args.threads} workers): {gflash:.3f} ms/shower; Geant4 (paper): ~1800 ms/shower")
    print(f"threads {args.threads}, device {device}, torch {torch.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
