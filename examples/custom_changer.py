"""A custom changer: the patient turns on a rotating couch, run by run.

Dynamic parameters are usually applied by the object's own changers
(``auto_changer=True``). With ``auto_changer=False`` the values are only stored, and a
changer of your own decides what to do with them at the start of every run. Here the
parametrisation stores one couch angle per run (``rotation`` is a dynamic parameter of a
volume) plus a non-dynamic ``pivot`` (kept in ``extra_params``); the custom changer turns
the volume about that pivot point rather than about the world origin.

    python examples/custom_changer.py
"""

from __future__ import annotations

import numpy as np

from gansim.physics.geometry import rotation_matrix
from gansim.sim import AnalogSource, Changer, PhantomVolume, Simulation, StatisticsActor
from gansim.sim.actors.base import Actor
from gansim.units import deg, s


class CouchChanger(Changer):
    """Turns the volume about the vertical axis through ``pivot`` by the run's angle."""

    def __init__(self, name: str, volume: PhantomVolume, angles: list[float], pivot: np.ndarray) -> None:
        super().__init__(name, volume)
        self.angles = angles
        self.pivot = np.asarray(pivot, dtype=float)

    def apply_change(self, run_id: int) -> None:
        r = rotation_matrix("y", self.angles[run_id])
        # p_world = R (p - pivot) + pivot  =  R p + (pivot - R pivot)
        self.attached_to.apply_dynamic("rotation", r)
        self.attached_to.apply_dynamic("translation", self.pivot - r @ self.pivot)


class MeanEmissionPoint(Actor):
    """Prints where the decays were, run by run (to see the couch turn)."""

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        self.sums, self.count = np.zeros(3), 0

    def process(self, batch) -> None:  # type: ignore[no-untyped-def]
        p = np.stack([batch.columns[f"EventPosition_{a}"].numpy() for a in "XYZ"], axis=1)
        self.sums += p.sum(axis=0)
        self.count += len(p)

    def end_run(self, run_id: int) -> None:
        print(f"run {run_id}: mean emission point of exit photons {np.round(self.sums / max(self.count, 1), 1)} mm")


def main() -> None:
    sim = Simulation(output_dir="custom-changer-example", seed=2, force=True)
    sim.run_timing_intervals = [(k * s, (k + 1) * s) for k in range(4)]
    patient = sim.add_volume(PhantomVolume("patient", "iec", spacing=6.0))
    angles = [0 * deg, 90 * deg, 180 * deg, 270 * deg]
    name = patient.add_dynamic_parametrisation(auto_changer=False, rotation=angles, pivot=[0.0, 0.0, 50.0])
    stored = patient.dynamic_params[name]
    sim.add_changer(CouchChanger("couch", patient, stored.values["rotation"], stored.extra_params["pivot"]))
    sim.add_source(AnalogSource("tc99m", isotope="Tc99m", activity_image="phantom", n=50_000))
    sim.add_actor(MeanEmissionPoint("where"))
    sim.add_actor(StatisticsActor("stats"))
    sim.run()


if __name__ == "__main__":
    main()
