"""SPECT with a conditional GAN source whose activity image changes from run to run.

The GAN stands in for the photon transport through the patient: given where a Tc-99m decay
happens and in which direction its photon starts, it generates the photon that leaves the
patient (or nothing). Here it is used as a source in a 3-run simulation whose activity image
changes at every run -- something GATE's GANSource cannot do -- and an ideal parallel-hole
collimator records an anterior projection per run.

Needs a conditional GAN trained on exit photons of the built-in IEC phantom, for example the
one ``gansim demo`` trains (its model directory is ``demo-output/training/model``):

    python examples/spect_gan_source.py demo-output/training/model -o spect-example
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gansim.physics.phantoms import iec_phantom
from gansim.sim import (
    TC99M_WINDOWS,
    GANSource,
    PhantomVolume,
    PhaseSpaceActor,
    ProjectionActor,
    Simulation,
    StatisticsActor,
    VoxelizedConditionGenerator,
)
from gansim.units import MBq, deg, keV, mm, s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="conditional GAN model directory (EventPosition/EventDirection conditions)")
    parser.add_argument("-o", "--output", type=Path, default=Path("spect-example"))
    args = parser.parse_args()

    sim = Simulation(output_dir=args.output, seed=1, force=True)
    sim.run_timing_intervals = [(0, 1 * s), (1 * s, 2 * s), (2 * s, 3 * s)]
    # the phantom the GAN was trained on; its exit sphere (the default) is the training one
    sim.add_volume(PhantomVolume("patient", "iec"))

    # three activity distributions on the phantom's grid (local frame of the volume)
    images = []
    for ratio in (4.0, 8.0, 16.0):
        phantom, activity = iec_phantom(4.0, sphere_activity_ratio=ratio)
        images.append((activity, phantom.geometry))

    # conditions: emission point from the image + isotropic emission direction
    condition = VoxelizedConditionGenerator(images[0], compute_directions=True)
    source = sim.add_source(
        GANSource(
            "gan",
            args.model,
            isotope="Tc99m",  # half-life and 0.89 photons per decay
            activity=0.5 * MBq,
            condition=condition,
            position_keys=["PrePosition_X", "PrePosition_Y", "PrePosition_Z"],
            direction_keys=["PreDirection_X", "PreDirection_Y", "PreDirection_Z"],
            energy_key="KineticEnergy",
            time_key="TimeFromBeginOfEvent",
            energy_min_threshold=20 * keV,
            skip_policy="ZeroEnergy",  # absorbed events stay events, with no particle
            backward_distance=0 * mm,
            device="auto",
        )
    )
    # one condition image per run, applied at each run start by a hidden actor
    source.add_dynamic_parametrisation(condition_image=images)

    sim.add_actor(PhaseSpaceActor("exit", "exit.root"))  # one file, a RunID column
    stats = sim.add_actor(StatisticsActor("stats", output="stats.json"))
    projection = sim.add_actor(
        ProjectionActor(
            "anterior", center=(0, -350, 0), normal=(0, 1, 0), u_axis=(1, 0, 0), size=(64, 48), spacing=(6, 6),
            acceptance_angle=10 * deg, windows=TC99M_WINDOWS, output="anterior.mha",
        )
    )
    result = sim.run()
    for run in stats.results["runs"]:
        total = run["total"]
        print(f"run {run['run_id']}: {total['decays']:,d} decays, {total['zero_energy']:,d} zero-energy events, {total['particles']:,d} exit photons")
    peak = projection.results["windows"].index("photopeak")
    for run, image in enumerate(projection.results["images"]):
        print(f"run {run}: {image[peak].sum():,.0f} counts in the photopeak window")
    timing = result["timing"]["gan"]
    print(f"GAN source: {timing['particles'] / timing['seconds']:,.0f} exit photons per second; outputs in {args.output}")


if __name__ == "__main__":
    main()
