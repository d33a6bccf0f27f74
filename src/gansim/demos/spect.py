"""The main demo: a conditional GAN source stands in for Tc-99m photon transport in a SPECT simulation.

``gansim demo`` (``make demo``), end to end on 2 CPU cores in under 15 minutes:

1. **Training data**: the analog Monte Carlo (``gansim mc``) of Tc-99m in the built-in NEMA
   IEC phantom (spheres 4:1), one row per photon leaving a sphere around it, one zero row per
   event in which nothing leaves (GATE's absorbed-event rows), with the emission point and
   direction of every event.
2. **Training**: a conditional GAN learns the exit photon (energy, position, direction,
   time) given the emission point and direction (the ``EventPosition``/``EventDirection``
   conditions of GATE's SPECT GAN sources).
3. **Simulation**: three 1 s runs whose activity distribution changes from run to run (the
   training distribution, hotter spheres, spheres only), once with the analog source (twice,
   with two seeds: the second run measures the Monte Carlo's own statistical noise) and once
   with the GAN source conditioned on the same images through the dynamic parametrisation.
   Actors: exit phase space, statistics, Tc-99m energy windows, an anterior projection through
   an ideal parallel-hole collimator.
4. **Report** (``report/report.html``): run by run, exit particles (per-key Wasserstein,
   classifier AUC) and projections (sum difference, SAD), GAN vs Monte Carlo next to Monte
   Carlo vs Monte Carlo, and the speed of both sources in exit particles per second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gansim.demos.linac import DEMO_CONFIG
from gansim.errors import ConfigError
from gansim.units import MBq, deg, keV, s

__all__ = ["run_spect_demo", "SPECT_DEMO_CONFIG", "demo_activity_images", "build_demo_simulation"]

EXIT_KEYS = ["KineticEnergy", "PrePosition_X", "PrePosition_Y", "PrePosition_Z", "PreDirection_X", "PreDirection_Y", "PreDirection_Z", "TimeFromBeginOfEvent"]
COND_KEYS = ["EventPosition_X", "EventPosition_Y", "EventPosition_Z", "EventDirection_X", "EventDirection_Y", "EventDirection_Z"]

#: The conditional GAN: the linac demo's networks and optimisers (sized to learn for a few
#: minutes on 2 CPU cores), with the exit keys generated given the emission keys.
SPECT_DEMO_CONFIG: dict[str, Any] = {**json.loads(json.dumps(DEMO_CONFIG)), "data": {"keys": EXIT_KEYS, "cond_keys": COND_KEYS}}
TRAINING_EVENTS = 1_000_000
ROWS_PER_MINUTE = 800_000  # training throughput of SPECT_DEMO_CONFIG on 2 quiet CPU cores (~16k rows/s measured), rounded down
RUN_SECONDS = 1.0
RUN_ACTIVITY = 2.0 * MBq  # ~1.8 million photon emissions per run
ENERGY_THRESHOLD = 20 * keV  # exit photons below are not compared (the GAN's absorbed events sit near 0)
PROJECTION = {"center": (0.0, -350.0, 0.0), "normal": (0.0, 1.0, 0.0), "u_axis": (1.0, 0.0, 0.0), "size": (40, 32), "spacing": (12.0, 12.0), "acceptance_angle": 10 * deg}
# a wide acceptance and large pixels: enough counts per pixel in a 1 s run for the projection metrics to see more than noise


def demo_activity_images(spacing: float = 4.0) -> tuple[list[np.ndarray], list[str], Any]:
    """The three runs' activity images on the IEC grid, their descriptions, and the grid's geometry.

    Run 0 is the training distribution (spheres 4:1); run 1 has hotter spheres (10:1); run 2
    only the spheres. All lie inside the training distribution's support.
    """
    from gansim.physics.phantoms import iec_phantom

    phantom, four = iec_phantom(spacing, 4.0)
    _, ten = iec_phantom(spacing, 10.0)
    _, one = iec_phantom(spacing, 1.0)
    _, none = iec_phantom(spacing, 0.0)
    spheres = np.clip(one - none, 0.0, None)
    return [four, ten, spheres], ["spheres 4:1 (training)", "spheres 10:1", "spheres only"], phantom.geometry


def build_demo_simulation(
    kind: str, output_dir: Path, model_dir: Path | None, images: list[np.ndarray], geometry: Any, *, seed: int, activity: float = RUN_ACTIVITY
) -> tuple[Any, dict[str, Any]]:
    """The 3-run simulation with the analog (``kind="analog"``) or the GAN source; returns it and its actors."""
    from gansim.sim import (
        AnalogSource,
        EnergyWindowsActor,
        GANSource,
        PhantomVolume,
        PhaseSpaceActor,
        ProjectionActor,
        Simulation,
        StatisticsActor,
        TC99M_WINDOWS,
        VoxelizedConditionGenerator,
    )

    sim = Simulation(output_dir=output_dir, seed=seed, device="cpu", force=True)
    sim.run_timing_intervals = [(k * RUN_SECONDS * s, (k + 1) * RUN_SECONDS * s) for k in range(len(images))]
    sim.add_volume(PhantomVolume("iec", "iec"))
    if kind == "analog":
        source = AnalogSource("source", isotope="Tc99m", activity_image=(images[0], geometry), activity=activity)
        source.add_dynamic_parametrisation(activity_image=[(image, geometry) for image in images])
    else:
        condition = VoxelizedConditionGenerator((images[0], geometry), compute_directions=True)
        source = GANSource(
            "source", model_dir, isotope="Tc99m", activity=activity, condition=condition, time_key="TimeFromBeginOfEvent",
            energy_min_threshold=ENERGY_THRESHOLD, skip_policy="ZeroEnergy", device="cpu",
        )
        source.add_dynamic_parametrisation(condition_image=[(image, geometry) for image in images])
    sim.add_source(source)
    actors = {
        "phsp": sim.add_actor(PhaseSpaceActor("phsp", "exit.npy", keys=EXIT_KEYS + ["EventID", "RunID"])),
        "stats": sim.add_actor(StatisticsActor("stats", output="stats.json")),
        "windows": sim.add_actor(EnergyWindowsActor("windows", TC99M_WINDOWS, output="windows.json")),
        "projection": sim.add_actor(ProjectionActor("projection", windows=TC99M_WINDOWS, output="projection.mha", **PROJECTION)),
    }
    return sim, actors


def run_spect_demo(
    output: Path, *, minutes: float = 5.0, force: bool = False, log: Callable[[str], None] = print, out: Any = None, statistics: float = 1.0
) -> dict[str, Any]:
    """Run the SPECT demo into ``output``; return its headline numbers (also in ``report/summary.json``).

    ``statistics`` scales the Monte Carlo training events and the runs' activity (the tests run
    the whole chain with a small fraction).
    """
    if not (0 < statistics <= 10):
        raise ConfigError(f"statistics {statistics!r}: expected a fraction in (0, 10] of the demo's Monte Carlo statistics")
    from gansim.config import parse_config
    from gansim.models.phsp_gan import PhaseSpaceGANConfig
    from gansim.models.phsp_train import train_phase_space
    from gansim.physics.mc import run_mc
    from gansim.physics.scenario import build_mc

    from gansim.demos import prepare_demo_dir

    output = prepare_demo_dir(output, force)
    t0 = time.perf_counter()

    train_path = output / "mc_training.npy"
    training_events = max(1000, int(TRAINING_EVENTS * statistics))
    log(f"[1/5] analog Monte Carlo training data: Tc-99m in the IEC phantom, {training_events:,d} photon emissions -> {train_path}")
    setup = build_mc(phantom="iec", isotope="Tc99m", source="phantom", device="cpu")
    summary = run_mc(setup.transport, setup.source, train_path, n=training_events, seed=11, absorbed_rows=True, force=True)
    log(f"      {summary.photons_exited:,d} exit photons, {summary.absorbed_events:,d} absorbed events, {summary.events_per_second:,.0f} events/s")

    raw = json.loads(json.dumps(SPECT_DEMO_CONFIG))
    raw["train"]["total_rows"] = max(10_000, int(minutes * ROWS_PER_MINUTE))
    cfg = parse_config(PhaseSpaceGANConfig, raw, source="demo config")
    run_dir = output / "training"
    log(f"[2/5] training a conditional GAN ({len(EXIT_KEYS)} exit keys given {len(COND_KEYS)} emission keys) for {cfg.train.total_rows:,d} rows into {run_dir}")
    model_dir = train_phase_space(train_path, cfg, run_dir, force=True, log=log)

    images, labels, geometry = demo_activity_images()
    results: dict[str, Any] = {}
    steps = (
        ("analog", 1, "[3/5]", "the analog Monte Carlo source"),
        ("analog_noise", 2, "[3/5]", "the analog source again with another seed (the Monte Carlo's own noise)"),
        ("gan", 1, "[4/5]", "the GAN source"),
    )
    for kind, seed, step, what in steps:
        log(f"{step} 3-run dynamic simulation ({', '.join(labels)}) with {what}")
        sim, actors = build_demo_simulation("gan" if kind == "gan" else "analog", output / f"sim_{kind}", model_dir, images, geometry, seed=seed, activity=RUN_ACTIVITY * statistics)
        timing = sim.run()["timing"]["source"]
        results[kind] = {"actors": actors, "timing": timing, "dir": output / f"sim_{kind}"}
        log(f"      {timing['particles']:,d} exit particles in {timing['seconds']:.1f} s ({timing['particles'] / max(timing['seconds'], 1e-9):,.0f} per second)")

    log("[5/5] comparing GAN and Monte Carlo run by run")
    from gansim.demos.spect_report import write_spect_report

    report_dir = output / "report"
    headline = write_spect_report(results, labels, report_dir, threshold=ENERGY_THRESHOLD, training=run_dir, title="gansim SPECT demo: GAN source vs analog Monte Carlo")
    headline["wall_time_s"] = time.perf_counter() - t0
    (report_dir / "summary.json").write_text(json.dumps(headline, indent=2, default=float))
    if out is not None:
        out.print(f"GAN vs Monte Carlo speed: {headline['speed_ratio']:.2f}x in exit particles per second ({headline['gan_particles_per_s']:,.0f} vs {headline['mc_particles_per_s']:,.0f})", highlight=False, markup=False)
        for run in headline["runs"]:
            out.print(
                f"run {run['run']} ({run['label']}): classifier AUC {run['gan']['auc']:.3f} (MC vs MC {run['noise']['auc']:.3f}); "
                f"photopeak projection SAD {run['gan']['sad']:.1f} % (MC vs MC {run['noise']['sad']:.1f} %), sum difference {100 * run['gan']['sum_difference']:+.1f} %",
                highlight=False, markup=False,
            )
        out.print(f"demo finished in {headline['wall_time_s'] / 60:.1f} min. Report: {(report_dir / 'report.html').resolve()}", highlight=False, markup=False)
    return headline
