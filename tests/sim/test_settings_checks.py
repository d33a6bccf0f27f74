"""Settings changed after construction, per-run values checked before any run, sources fixed in the world, seeds per source name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gansim.errors import ConfigError
from gansim.physics.geometry import rotation_matrix
from gansim.sim import AnalogSource, BoxVolume, Changer, GANSource, PhantomVolume
from gansim.units import deg

from test_gan_source import Collect, TableModel, run, simulation, single_table


def test_a_mistyped_skip_policy_set_as_an_attribute_is_refused_at_the_start() -> None:
    sim = simulation()
    source = sim.add_source(GANSource("g", TableModel(single_table()), n=4))
    source.skip_policy = "SkipEvent"  # GATE users set attributes; a typo must not silently mean ZeroEnergy
    with pytest.raises(ConfigError, match="did you mean 'SkipEvents'"):
        run(sim)


def test_position_keys_set_as_an_attribute_take_effect() -> None:
    sim = simulation()
    source = sim.add_source(GANSource("g", TableModel(single_table([0.1])), n=4))
    source.position_keys = ["PrePosition_X", "PrePosition_Y", 271.1]
    collect = run(sim)
    np.testing.assert_allclose(collect.column("PrePosition_Z"), 271.1, rtol=1e-6)


def test_a_source_attached_to_the_world_ignores_the_volume_pose() -> None:
    sim = simulation()
    sim.add_volume(BoxVolume("patient", 100.0, translation=(0, 0, 500), rotation=rotation_matrix("x", 90 * deg)))
    sim.add_source(GANSource("linac", TableModel(single_table([0.1])), n=3, attached_to="world"))
    collect = run(sim)
    np.testing.assert_allclose(collect.column("PreDirection_Z"), 1.0)
    np.testing.assert_allclose(collect.column("PrePosition_Z"), [20.0, 20.0, 20.0])


def test_a_missing_per_run_image_is_found_before_the_first_run(tmp_path: Path) -> None:
    sim = simulation([(0, 1), (1, 2)])
    volume = sim.add_volume(PhantomVolume("p", "iec", spacing=10.0))
    volume.add_dynamic_parametrisation(image=["iec", tmp_path / "missing.mha"])
    sim.add_source(AnalogSource("a", shape="point:0,0,0", n=5))
    collect = Collect()
    sim.add_actor(collect)
    with pytest.raises(ConfigError, match=r"image\[1\].*neither a built-in phantom"):
        sim.run()
    assert collect.batches == []  # nothing was simulated


def test_values_of_a_custom_changer_are_its_own_business() -> None:
    """auto_changer=False: angles stored under 'rotation' are not checked as matrices; the custom changer uses them."""

    class Turn(Changer):
        def __init__(self, volume: BoxVolume, angles: list[float]) -> None:
            super().__init__("turn", volume)
            self.angles = angles

        def apply_change(self, run_id: int) -> None:
            self.attached_to.apply_dynamic("rotation", rotation_matrix("z", self.angles[run_id]))

    sim = simulation([(0, 1), (1, 2)])
    volume = sim.add_volume(BoxVolume("box", 50.0, voxel_size=10.0))
    name = volume.add_dynamic_parametrisation(auto_changer=False, rotation=[0.0, 90 * deg])
    sim.add_changer(Turn(volume, volume.dynamic_params[name].values["rotation"]))
    sim.add_source(GANSource("g", TableModel(single_table([0.1])), n=2))
    collect = run(sim)
    d = np.stack([collect.column(f"PreDirection_{a}", run_id=1) for a in "XYZ"], axis=1)
    p0 = np.stack([collect.column(f"PrePosition_{a}", run_id=0) for a in "XYZ"], axis=1)
    p1 = np.stack([collect.column(f"PrePosition_{a}", run_id=1) for a in "XYZ"], axis=1)
    np.testing.assert_allclose(d, [[0, 0, 1]] * 2, atol=1e-6)
    np.testing.assert_allclose(p1, p0 @ rotation_matrix("z", 90 * deg).T, atol=1e-4)


def test_adding_a_source_does_not_change_another_sources_particles() -> None:
    def times(with_other: bool) -> np.ndarray:
        sim = simulation(seed=5)
        if with_other:
            sim.add_source(GANSource("other", TableModel(single_table([0.1])), n=7))
        sim.add_source(GANSource("mine", TableModel(single_table([0.1])), n=9))
        return run(sim).column("GlobalTime", source="mine")

    np.testing.assert_array_equal(times(False), times(True))
