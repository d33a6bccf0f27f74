"""Generation speed, gansim vs gaga-phsp 0.7.6, on the same network and the same threads.

The same 3×400 MLP (z_dim 6, 6 outputs) is run by both tools: a gaga-phsp model
made by ``gaga_train`` and imported into gansim with ``import_gaga``
(benchmarks/gaga_common.py). Particles/s at batch sizes 10^4 and 10^5:

- gaga: in a child process of the gaga venv, opengate's call
  ``gaga.generate_samples_non_cond(params, G, n, batch_size, normalize=False, to_numpy=True)``
  timed inside that process (after ``gaga.load`` and a warm-up call);
- gansim: ``model.iter_samples(n, seed=1, batch_size=B)`` consuming the NumPy
  output, timed in-process after ``load_model`` and a warm-up.

Both with ``torch.set_num_threads(THREADS)``. The FLOP ceiling is measured in the
same run (best 4096² float32 matmul on the same threads) and each rate is also
given as a fraction of it (FLOPs of the MLP counted exactly: 2·in·out + out per Linear).

    python benchmarks/generation_vs_gaga.py [--n 3e5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import gaga_common as gc

GAGA_CODE = """
import contextlib, io, json, sys, time
import torch
import gaga_phsp as gaga
pth, n, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
batches = [int(b) for b in sys.argv[5].split(",")]
torch.set_num_threads(threads)
params, G, D, optim = gaga.load(pth, "cpu")
out = {}
with contextlib.redirect_stdout(io.StringIO()):  # gaga prints "Batch m/n" per batch
    for b in batches:
        gaga.generate_samples_non_cond(params, G, b, b, normalize=False, to_numpy=True)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x = gaga.generate_samples_non_cond(params, G, n, b, normalize=False, to_numpy=True)
            best = min(best, time.perf_counter() - t0)
        assert x.shape == (n, 6), x.shape
        out[str(b)] = n / best
print(json.dumps(out))
"""


def gansim_rates(
    model_dir, n: int, batches: list[int], repeats: int
) -> dict[int, float]:
    from gansim.models.registry import load_model

    model = load_model(model_dir, device="cpu")
    rates = {}
    for b in batches:
        for part in model.iter_samples(b, seed=1, batch_size=b):  # warm-up
            pass
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            rows = 0
            for part in model.iter_samples(n, seed=1, batch_size=b):
                rows += len(part[model.keys[0]])
            best = min(best, time.perf_counter() - t0)
        assert rows == n
        rates[b] = n / best
    return rates


def gansim_breakdown(model_dir, b: int, repeats: int) -> dict[str, float]:
    """Seconds per ``b`` rows in gansim's parts: latent draw, generator forward (as iter_samples runs it), the rest."""
    import torch

    from gansim.models.registry import load_model

    model = load_model(model_dir, device="cpu")
    out = {}
    with torch.inference_mode():
        z = model._latent(b, None, 1, 0).clone()
        for name, fn in {
            "latent (seeded blocks)": lambda: (
                setattr(model, "_block_cache", None),
                model._latent(b, None, 1, 0),
            ),
            "forward (4096-row sub-batches)": lambda: model._forward(z, None),
            "forward (one pass)": lambda: model.generator(z),
            "whole iter_samples": lambda: list(
                model.iter_samples(b, seed=1, batch_size=b)
            ),
        }.items():
            fn()
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            out[name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=float, default=3e5, help="particles per timed call")
    parser.add_argument("--batches", default="10000,100000")
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed calls per batch size (best kept)"
    )
    parser.add_argument("--threads", type=int, default=gc.THREADS)
    args = parser.parse_args()
    n, batches = int(args.n), [int(b) for b in args.batches.split(",")]

    import torch

    torch.set_num_threads(args.threads)
    _, pth, model_dir = gc.gaga_model()
    print(f"machine   {gc.machine()}, {args.threads} torch threads")
    flops = gc.mlp_flops_per_row(gc.GENERATOR_DIMS)
    ceiling = gc.sgemm_ceiling(args.threads)
    limit = ceiling / flops
    print(
        f"network   {'-'.join(map(str, gc.GENERATOR_DIMS))} MLP: {flops / 1e6:.3f} MFLOP/particle"
    )
    print(
        f"ceiling   4096² sgemm {ceiling / 1e9:.1f} GFLOP/s -> at most {limit:,.0f} particles/s"
    )

    g = gc.run_gaga(
        GAGA_CODE,
        str(pth),
        str(n),
        str(args.threads),
        str(args.repeats),
        ",".join(map(str, batches)),
    )
    gaga_rates = {int(k): v for k, v in g.items()}
    ours = gansim_rates(model_dir, n, batches, args.repeats)

    print(f"\nn = {n:,d} particles per call, best of {args.repeats}")
    print(
        f"{'batch':>8} | {'gaga /s':>10} | {'gansim /s':>10} | gansim/gaga | gaga % ceil | gansim % ceil"
    )
    for b in batches:
        print(
            f"{b:>8,d} | {gaga_rates[b]:>10,.0f} | {ours[b]:>10,.0f} | {ours[b] / gaga_rates[b]:>11.2f} | {100 * gaga_rates[b] / limit:>10.0f}% | {100 * ours[b] / limit:>12.0f}%"
        )

    b = max(batches)
    parts = gansim_breakdown(model_dir, b, args.repeats)
    print(f"\ngansim time per {b:,d} rows, by part:")
    for name, sec in parts.items():
        print(f"  {name:32s} {sec * 1e3:8.1f} ms  ({b / sec:,.0f} rows/s)")


if __name__ == "__main__":
    main()
