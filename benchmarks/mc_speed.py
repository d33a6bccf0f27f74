"""How many Tc-99m primaries per second does the photon Monte Carlo transport through a 128^3 phantom?

The phantom is 128^3 voxels of 2.5 mm (32 cm field of view): a water cylinder
(radius 140 mm, length 300 mm along z) with a cortical-bone spine (cylinder of radius
15 mm centred 60 mm behind the axis), air around it, exit sphere of radius 290 mm.
The activity is uniform in the water. Photoelectric, Compton (Klein-Nishina) and
Rayleigh are on (Compton with the incoherent scattering function, as ``gansim mc``
does by default; ``--no-isf`` for free electrons), absorbed-event rows are made. Timed: emission + transport + building
the output rows (``iter_mc_chunks``), then separately the same run written to a
``.npy`` file.

The peer, GATE 10 / Geant4 analog transport, cannot be installed here (no network for
its Geant4 data), so the ratio printed is against the issue's goal (5e5 primaries/s on
2 CPU cores) and against the analog GATE figure published in gaga-phsp's
tests/readme_tests.md (64,706 primaries/s on 8 threads, Tc-99m SPECT, with a detector).

    python benchmarks/mc_speed.py [--n 1e6] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gansim.physics.cross_sections import CrossSectionTables
from gansim.physics.emission import EmissionSource
from gansim.physics.geometry import ImageGeometry
from gansim.physics.isotopes import get_isotope
from gansim.physics.materials import get_material
from gansim.physics.mc import MCSummary, iter_mc_chunks, run_mc
from gansim.physics.phantoms import VoxelPhantom
from gansim.physics.sources import ActivityImageSource
from gansim.physics.surfaces import SphereSurface
from gansim.physics.transport import PhotonTransport
from gansim.training.device import resolve_device

GOAL = 5e5
GATE_ANALOG_8_THREADS = 64_706


def phantom_128() -> tuple[VoxelPhantom, np.ndarray]:
    n, spacing = 128, 2.5
    geometry = ImageGeometry.centred((n, n, n), spacing)
    c = (np.arange(n) - (n - 1) / 2) * spacing
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    body = (x**2 + y**2 <= 140.0**2) & (np.abs(z) <= 150.0)
    spine = (x**2 + (y + 60.0) ** 2 <= 15.0**2) & body
    material = np.full((n, n, n), 2, dtype=np.int16)  # air
    material[body] = 0
    material[spine] = 1
    water, bone, air = get_material("G4_WATER"), get_material("G4_BONE_CORTICAL_ICRP"), get_material("G4_AIR")
    density = np.choose(material, [water.density, bone.density, air.density]).astype(np.float32)
    phantom = VoxelPhantom(geometry, torch.from_numpy(material), torch.from_numpy(density), [water, bone, air], world_material=air)
    activity = (material == 0).astype(np.float32)
    return phantom, activity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="primaries (events)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk-size", type=int, default=1 << 18)
    parser.add_argument("--no-isf", action="store_true", help="free-electron Klein-Nishina instead of the scattering function (gansim mc's default)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    n = int(args.n)

    t = time.perf_counter()
    phantom, activity = phantom_128()
    tables = CrossSectionTables(phantom.all_materials, device=device, incoherent_scattering_function=not args.no_isf)
    transport = PhotonTransport(phantom, SphereSurface(290.0), tables)
    source = EmissionSource(ActivityImageSource(activity, phantom.geometry, device=device), isotope=get_isotope("Tc99m"))
    setup_s = time.perf_counter() - t
    # warm-up (allocations, lazy initialisation) on a small run
    for _ in iter_mc_chunks(transport, source, n=20_000, seed=99, chunk_size=args.chunk_size):
        pass

    summary = MCSummary()
    t = time.perf_counter()
    for _ in iter_mc_chunks(transport, source, n=n, seed=1, chunk_size=args.chunk_size, summary=summary):
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    rate = n / wall

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        written = run_mc(transport, source, Path(tmp) / "exit.npz", n=n, seed=1, chunk_size=args.chunk_size)
        wall_file = time.perf_counter() - t

    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; set-up {setup_s:.1f} s")
    print(f"phantom 128^3 x 2.5 mm water + bone spine, Tc-99m uniform in water, {n:,d} primaries, "
          f"chunks of {args.chunk_size:,d}, Compton {'free-electron KN' if args.no_isf else 'KN x S (scattering function)'}")
    print(f"exit photons {summary.photons_exited / n:.3f} per primary, absorbed events {summary.absorbed_events / n:.3f}, "
          f"steps (real + fictitious) {summary.steps / n:.2f} per primary")
    print(f"transport + rows: {wall:.2f} s, {rate:,.0f} primaries/s")
    print(f"same, written to .npz: {wall_file:.2f} s, {n / wall_file:,.0f} primaries/s ({written.rows_written:,d} rows)")
    print(f"ratio to the goal of {GOAL:,.0f}/s: {rate / GOAL:.2f}")
    print(f"ratio to GATE analog, 8 threads ({GATE_ANALOG_8_THREADS:,d}/s, published): {rate / GATE_ANALOG_8_THREADS:.2f}")


if __name__ == "__main__":
    main()
