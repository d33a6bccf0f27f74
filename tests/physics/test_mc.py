"""Monte Carlo runs end to end: output keys, absorbed rows, PET pairs, seeds, activity mode, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gansim.cli.main import app
from gansim.errors import ConfigError, OutputExistsError
from gansim.io.phsp import read_table
from gansim.physics.isotopes import get_isotope
from gansim.physics.mc import EXIT_COLUMNS, iter_mc_chunks, run_mc
from gansim.physics.scenario import build_mc
from gansim.units import MBq, s


def _sphere_setup(**kw: object):
    return build_mc(phantom="water-sphere", spacing=4.0, source="sphere:0,0,0,30", **kw)


def test_exit_phase_space_has_gate_keys_one_row_per_exit_photon_and_absorbed_rows(tmp_path: Path) -> None:
    setup = _sphere_setup()
    out = tmp_path / "exit.root"
    summary = run_mc(setup.transport, setup.source, out, n=3000, seed=1, chunk_size=1000)
    table = read_table(out)
    assert list(table) == list(EXIT_COLUMNS)
    ids = table["EventID"].astype(np.int64)
    assert np.array_equal(np.unique(ids), np.arange(3000))  # every event has a row
    assert np.all(np.diff(ids) >= 0)  # ordered by event
    absorbed = table["KineticEnergy"] == 0
    assert int(absorbed.sum()) == summary.absorbed_events > 0
    assert summary.rows_written == len(ids) == summary.photons_exited + summary.absorbed_events
    for key in ("PrePosition_X", "PreDirection_Z", "GlobalTime", "Weight", "TimeFromBeginOfEvent"):
        assert np.all(table[key][absorbed] == 0)
    assert np.all(table["EventKineticEnergy"][absorbed] > 0)
    r = np.sqrt(table["EventPosition_X"] ** 2 + table["EventPosition_Y"] ** 2 + table["EventPosition_Z"] ** 2)
    assert r.max() <= 30.0 + 1e-3
    # Tc-99m lines only, and exit energies never above the emitted energy
    lines = np.array([e for e, _ in get_isotope("Tc99m").lines], dtype=np.float32)
    assert np.all(np.isin(table["EventKineticEnergy"], lines))
    assert np.all(table["KineticEnergy"] <= table["EventKineticEnergy"] + 1e-7)
    # flight time: at least the straight distance from the decay point to the exit point, over c
    live = ~absorbed
    d = np.sqrt(sum((table[f"PrePosition_{a}"][live] - table[f"EventPosition_{a}"][live]) ** 2 for a in "XYZ"))
    assert np.all(table["TimeFromBeginOfEvent"][live] >= d / 299.792458 * (1 - 1e-5))
    # energy bookkeeping of the run
    assert math.isclose(summary.energy_emitted, summary.energy_exited + summary.energy_deposited, rel_tol=1e-6)
    assert summary.events == 3000 and summary.chunks == 3


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path) -> None:
    setup = _sphere_setup()
    for name, seed in (("a.npz", 5), ("b.npz", 5), ("c.npz", 6)):
        run_mc(setup.transport, setup.source, tmp_path / name, n=1500, seed=seed, chunk_size=500)
    a, b, c = (read_table(tmp_path / x) for x in ("a.npz", "b.npz", "c.npz"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["KineticEnergy"], c["KineticEnergy"])


def test_outputs_are_not_overwritten_and_mcpl_cannot_hold_absorbed_rows(tmp_path: Path) -> None:
    setup = _sphere_setup()
    out = tmp_path / "x.npz"
    run_mc(setup.transport, setup.source, out, n=100, seed=1)
    with pytest.raises(OutputExistsError):
        run_mc(setup.transport, setup.source, out, n=100, seed=1)
    run_mc(setup.transport, setup.source, out, n=100, seed=1, force=True)
    with pytest.raises(ConfigError, match="absorbed"):
        run_mc(setup.transport, setup.source, tmp_path / "x.mcpl", n=100)
    run_mc(setup.transport, setup.source, tmp_path / "x.mcpl", n=100, absorbed_rows=False, writer_options={"drop_unknown": True})
    assert len(read_table(tmp_path / "x.mcpl")["KineticEnergy"]) > 0


def test_pet_pairs_are_collinear_511_kev_photons_when_scatter_is_off() -> None:
    setup = build_mc(phantom="water-sphere", spacing=4.0, source="sphere:0,0,0,30", isotope="F18", compton=False, rayleigh=False, acollinearity_fwhm=0.0)
    for rows, primaries, exits in iter_mc_chunks(setup.transport, setup.source, n=4000, seed=3, chunk_size=4000):
        ids = rows["EventID"]
        live = rows["KineticEnergy"] > 0
        assert np.allclose(rows["KineticEnergy"][live], 0.51099895, rtol=1e-6)
        # events with both photons out: directions opposite, both exit points on one line through the decay point
        uniq, counts = np.unique(ids[live], return_counts=True)
        pairs = np.isin(ids, uniq[counts == 2]) & live
        assert pairs.sum() > 1000
        d = np.stack([rows[f"PreDirection_{a}"][pairs] for a in "XYZ"], 1).reshape(-1, 2, 3)
        assert np.allclose((d[:, 0] * d[:, 1]).sum(1), -1.0, atol=1e-5)
        p = np.stack([rows[f"PrePosition_{a}"][pairs] for a in "XYZ"], 1).reshape(-1, 2, 3)
        e = np.stack([rows[f"EventPosition_{a}"][pairs] for a in "XYZ"], 1).reshape(-1, 2, 3)[:, 0]
        chord = p[:, 1] - p[:, 0]
        cross = np.cross(chord / np.linalg.norm(chord, axis=1, keepdims=True), e - p[:, 0])
        assert np.abs(cross).max() < 1e-2  # mm
        # times of flight kept per photon: t1 - t2 = (|A - E| - |B - E|) / c
        t = rows["TimeFromBeginOfEvent"][pairs].reshape(-1, 2)
        da = np.linalg.norm(p[:, 0] - e, axis=1)
        db = np.linalg.norm(p[:, 1] - e, axis=1)
        assert np.allclose(t[:, 0] - t[:, 1], (da - db) / 299.792458, atol=1e-4)
        # no scatter: whatever does not leave is photo-absorbed, a single or an absorbed event
        assert int(exits.n_compton.sum()) == 0


def test_activity_mode_counts_are_poisson_with_the_decayed_mean() -> None:
    setup = _sphere_setup(isotope="Tc99m")
    iso = get_isotope("Tc99m")
    activity, duration = 1e-3 * MBq, 10 * s
    total = 0
    for rows, primaries, exits in iter_mc_chunks(setup.transport, setup.source, activity=activity, duration=duration, seed=4, chunk_size=5000):
        total += int(primaries.event_energy.shape[0])
    tau = iso.half_life / math.log(2)
    mean = activity * iso.photons_per_decay * tau * (1 - math.exp(-duration / tau))
    assert abs(total - mean) < 5 * math.sqrt(mean)


def test_cli_mc_writes_a_training_file_and_refuses_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "train.root"
    args = ["mc", "--phantom", "water-cylinder", "--spacing", "8", "--isotope", "Tc99m", "--source", "sphere:0,0,0,20", "-n", "2e3", "-o", str(out), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = read_table(out)
    assert len(np.unique(table["EventID"])) == 2000
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "exists" in result.output
    placed = tmp_path / "placed.npz"
    result = runner.invoke(app, [*args[:-4], "-o", str(placed), "--translation", "0,0,10", "--rotation", "x,90", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ev = read_table(placed)
    # the source sphere is given in world mm and stays put; the cylinder (axis z) is turned onto y
    assert np.sqrt(ev["EventPosition_X"] ** 2 + ev["EventPosition_Y"] ** 2 + ev["EventPosition_Z"] ** 2).max() <= 20.0 + 1e-3
    result = runner.invoke(app, ["mc", "-n", "10", "--activity", "1", "--duration", "1", "-o", str(tmp_path / "z.root")])
    assert result.exit_code != 0 and "not both" in result.output
    result = runner.invoke(app, ["mc", "--phantom", "iecc", "-n", "10", "-o", str(tmp_path / "y.root")])
    assert result.exit_code != 0 and "iec" in result.output
    result = runner.invoke(app, ["mc", "--source", "cone:1,2", "-n", "10", "-o", str(tmp_path / "y.root")])
    assert result.exit_code != 0 and "point:X,Y,Z" in result.output


def test_pet_pairs_and_tlor_layouts_round_trip_to_the_photon_rows(tmp_path: Path) -> None:
    from gansim.physics.pet import tlor_to_pairs

    setup = build_mc(phantom="water-sphere", spacing=4.0, source="sphere:0,0,0,30", isotope="Ga68", positron_range=True, exit_surface="sphere:180")
    photons = run_mc(setup.transport, setup.source, tmp_path / "p.root", n=3000, seed=7)
    pairs = run_mc(setup.transport, setup.source, tmp_path / "pairs.root", n=3000, seed=7, layout="pairs")
    run_mc(setup.transport, setup.source, tmp_path / "tlor.root", n=3000, seed=7, layout="tlor")
    assert photons.photons_exited == pairs.photons_exited
    extra = pairs.extra
    assert extra["events"] == 3000 and extra["multiple"] == 0
    assert 2 * extra["pairs"] + extra["singles"] == photons.photons_exited
    assert extra["absorbed"] == photons.absorbed_events
    p = read_table(tmp_path / "pairs.root")
    t = read_table(tmp_path / "tlor.root")
    assert pairs.rows_written == len(p["E1"]) == extra["pairs"] + extra["singles"] + extra["absorbed"]
    both = (p["E1"] > 0) & (p["E2"] > 0)
    back, valid = tlor_to_pairs({k: v[both] for k, v in t.items()}, radius=180.0)
    assert valid.all()
    for key in ("X1", "Y1", "Z1", "X2", "Y2", "Z2"):
        assert np.allclose(back[key], p[key][both], atol=1e-2)
    assert np.allclose(back["t1"], p["t1"][both], atol=1e-4) and np.allclose(back["t2"], p["t2"][both], atol=1e-4)
    with pytest.raises(ConfigError, match="single photons"):
        tc = _sphere_setup()
        run_mc(tc.transport, tc.source, tmp_path / "q.root", n=10, layout="pairs")


def test_pet_energy_is_conserved_per_event_with_positron_range_in_an_activity_map() -> None:
    # decays fill the sphere's activity map, edge voxels included (partial volumes in air)
    setup = build_mc(phantom="water-sphere", spacing=8.0, isotope="F18", source="phantom", positron_range=True)
    for rows, primaries, exits in iter_mc_chunks(setup.transport, setup.source, n=5000, seed=2, chunk_size=5000):
        per_event = torch.zeros(5000, dtype=torch.float64)
        per_event.index_add_(0, primaries.event_of_photon, exits.deposited)
        per_event.index_add_(0, primaries.event_of_photon[exits.primary], exits.energy.double())
        assert torch.allclose(per_event, torch.tensor(2 * 0.51099895, dtype=torch.float64), rtol=1e-5)
        # annihilation points stay within reach of the decay point (max range 2.4 mm / 0.1 g/cm3)
        shift = (primaries.position[0::2] - primaries.event_position).norm(dim=1)
        assert float(shift.max()) <= 24.0 + 1e-3


def test_sources_outside_the_exit_surface_are_refused_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the source 'sphere:0,0,90,30'"):
        build_mc(phantom="water-sphere", spacing=8.0, source="sphere:0,0,90,30", exit_surface="sphere:115")
    (tmp_path / "ct.mhd").write_text("")  # refused before it is read
    with pytest.raises(ConfigError, match="spacing applies to built-in"):
        build_mc(phantom=str(tmp_path / "ct.mhd"), spacing=2.0)
    with pytest.raises(ConfigError, match="image files only"):
        build_mc(phantom="iec", labels={1: "G4_WATER"})


def test_a_ct_far_from_the_origin_gets_an_exit_sphere_around_it(tmp_path: Path) -> None:
    import SimpleITK as sitk

    hu = np.zeros((20, 16, 12), dtype=np.int16)  # (z, y, x) water
    hu[:, :, :2] = -1000
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing([4.0, 4.0, 5.0])
    image.SetOrigin([10.0, -40.0, -1200.0])
    sitk.WriteImage(image, str(tmp_path / "ct.mha"))
    setup = build_mc(phantom=str(tmp_path / "ct.mha"), source="point:30,-10,-1150", isotope="Tc99m")
    assert setup.surface.radius < 100.0
    assert np.allclose(setup.surface.center, (10 + 22, -40 + 30, -1200 + 47.5))
    rows = next(iter_mc_chunks(setup.transport, setup.source, n=200, seed=1))[0]
    live = rows["KineticEnergy"] > 0
    centre = np.array(setup.surface.center)
    r = np.sqrt(sum((rows[f"PrePosition_{a}"][live] - centre[i]) ** 2 for i, a in enumerate("XYZ")))
    assert np.allclose(r, setup.surface.radius, rtol=1e-5)


def test_n_decays_spread_over_a_duration_from_the_command_line(tmp_path: Path) -> None:
    """-n with --duration: exactly n events, their decay times inside [0, duration] and uniform (Tc-99m barely decays in 2 s)."""
    from typer.testing import CliRunner

    from gansim.cli.main import app

    out = tmp_path / "spread.npy"
    result = CliRunner().invoke(app, ["mc", "--phantom", "water-sphere", "--spacing", "10", "--source", "point:0,0,0", "-n", "4000", "--duration", "2", "-o", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    table = read_table(out)
    assert len(np.unique(table["EventID"])) == 4000
    decay = (table["GlobalTime"] - table["TimeFromBeginOfEvent"])[table["KineticEnergy"] > 0] / 1e9  # s
    assert decay.min() >= 0.0 and decay.max() <= 2.0
    # uniform on [0, 2] s: mean 1 with standard error (2 / sqrt(12)) / sqrt(m)
    assert abs(decay.mean() - 1.0) < 5 * (2 / np.sqrt(12)) / np.sqrt(len(decay))
