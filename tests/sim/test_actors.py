"""Simulation actors driven by hand-made particle batches: phase-space files, statistics,
energy windows and the parallel-hole projection (checked against analytic geometry)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError, DataError, OutputExistsError
from gansim.io.phsp import read_table
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.actors.phsp import PhaseSpaceActor, per_run_path, split_suffix
from gansim.sim.actors.projection import ProjectionActor, compare_projections
from gansim.sim.actors.statistics import StatisticsActor
from gansim.sim.actors.windows import TC99M_WINDOWS, EnergyWindowsActor, parse_energy_windows
from gansim.sim.particles import EVENT_COLUMNS, PARTICLE_COLUMNS, EventCounts, ParticleBatch
from gansim.units import deg, keV

INTERVALS = [(0.0, 1e9), (1e9, 2e9)]

_DTYPES = {"GlobalTime": torch.float64, "TimeFromBeginOfEvent": torch.float64, "EventID": torch.int64, "PhotonIndex": torch.int64}


# --------------------------------------------------------------------------- helpers


def make_batch(
    source: str = "a",
    run_id: int = 0,
    n: int = 5,
    *,
    seed: int = 0,
    events: bool = False,
    counts: EventCounts | None = None,
    **values: Any,
) -> ParticleBatch:
    """A batch of ``n`` particles with PARTICLE_COLUMNS dtypes; ``values`` override columns."""
    g = torch.Generator().manual_seed(seed)
    cols: dict[str, torch.Tensor] = {}
    for key in PARTICLE_COLUMNS + (EVENT_COLUMNS if events else ()):
        dtype = _DTYPES.get(key, torch.float32)
        if key in values:
            cols[key] = torch.as_tensor(values[key], dtype=dtype)
        elif dtype == torch.int64:
            cols[key] = torch.randint(0, 2**40, (n,), generator=g) if key == "EventID" else torch.zeros(n, dtype=dtype)
        elif dtype == torch.float64:
            cols[key] = torch.rand(n, generator=g, dtype=torch.float64) * 1e9 + 0.123456789
        else:
            cols[key] = torch.rand(n, generator=g) + 0.01
    if "Weight" not in values:
        cols["Weight"] = torch.ones(n)
    m = int(cols["KineticEnergy"].shape[0])
    counts = counts if counts is not None else EventCounts(decays=m, events=m, particles=m)
    return ParticleBatch(source=source, run_id=run_id, columns=cols, counts=counts)


def context(tmp_path: Path, *, sources: tuple[str, ...] = ("a", "b"), force: bool = False, events: tuple[str, ...] = ()) -> RunContext:
    cols = {s: PARTICLE_COLUMNS + (EVENT_COLUMNS if s in events else ()) for s in sources}
    return RunContext(output_dir=tmp_path, force=force, intervals=list(INTERVALS), source_names=list(sources), columns=cols)


def drive(actor: Actor, ctx: RunContext, batches: list[list[ParticleBatch]]) -> Actor:
    """Run ``actor`` through a whole simulation: ``batches[k]`` are run k's batches."""
    actor.initialize(ctx)
    for run_id, run_batches in enumerate(batches):
        actor.begin_run(run_id, ctx.intervals[run_id])
        for batch in run_batches:
            actor.process(batch)
        actor.end_run(run_id)
    actor.finalize()
    return actor


def concat(batches: list[ParticleBatch], key: str) -> np.ndarray:
    return np.concatenate([b.columns[key].numpy() for b in batches])


# --------------------------------------------------------------------------- phase space


@pytest.mark.parametrize("suffix", [".npy", ".root", ".npz"])
def test_phsp_round_trip_keeps_values_dtypes_and_run_id(tmp_path: Path, suffix: str) -> None:
    runs = [[make_batch("a", 0, 4, seed=1), make_batch("b", 0, 3, seed=2)], [make_batch("a", 1, 6, seed=3)]]
    actor = drive(PhaseSpaceActor("phsp", f"exit{suffix}"), context(tmp_path), runs)
    table = read_table(tmp_path / f"exit{suffix}")
    assert list(table) == [*PARTICLE_COLUMNS, "RunID"]
    flat = [b for run in runs for b in run]
    for key in PARTICLE_COLUMNS:
        np.testing.assert_array_equal(table[key], concat(flat, key), err_msg=key)
    assert table["GlobalTime"].dtype == np.float64 and table["EventID"].dtype == np.int64
    assert table["RunID"].dtype == np.int32
    assert table["RunID"].tolist() == [0] * 7 + [1] * 6
    assert actor.results == {"rows": 13, "rows_per_run": [7, 6], "files": [str(tmp_path / f"exit{suffix}")]}


def test_phsp_per_run_files_and_chosen_keys(tmp_path: Path) -> None:
    runs = [[make_batch("a", 0, 4, seed=1, events=True)], [make_batch("a", 1, 2, seed=2, events=True)]]
    keys = ["KineticEnergy", "EventPosition_X", "RunID", "EventID"]
    actor = drive(PhaseSpaceActor("phsp", "out/exit.root", keys=keys, per_run=True), context(tmp_path, sources=("a",), events=("a",)), runs)
    files = [tmp_path / "out" / "exit_run0.root", tmp_path / "out" / "exit_run1.root"]
    assert actor.results["files"] == [str(f) for f in files]
    assert not (tmp_path / "out" / "exit.root").exists()
    for run_id, (path, run) in enumerate(zip(files, runs)):
        table = read_table(path)
        assert list(table) == keys
        np.testing.assert_array_equal(table["EventPosition_X"], run[0].columns["EventPosition_X"].numpy())
        np.testing.assert_array_equal(table["EventID"], run[0].columns["EventID"].numpy())
        assert set(table["RunID"].tolist()) == {run_id}
    assert actor.results["rows_per_run"] == [4, 2]


def test_per_run_names_keep_double_suffixes() -> None:
    assert per_run_path("d/exit.mcpl.gz", 3) == Path("d/exit_run3.mcpl.gz")
    assert per_run_path("exit.root", 0) == Path("exit_run0.root")
    assert per_run_path("p.nii.gz", 1) == Path("p_run1.nii.gz")
    assert split_suffix("a.IAEAphsp") == ("a", ".IAEAphsp")


def test_phsp_mcpl_gets_particle_and_drops_what_it_cannot_store(tmp_path: Path) -> None:
    batch = make_batch("a", 0, 5, seed=4)
    drive(PhaseSpaceActor("phsp", "exit.mcpl.gz", per_run=True), context(tmp_path), [[batch], []])
    table = read_table(tmp_path / "exit_run0.mcpl.gz")
    assert np.allclose(table["KineticEnergy"], batch.columns["KineticEnergy"].numpy(), rtol=1e-6)
    assert set(table["PDGCode"].tolist()) == {22}
    assert "EventID" not in table and (tmp_path / "exit_run1.mcpl.gz").exists()


def test_phsp_mcpl_with_explicit_keys_it_cannot_store_fails_at_initialize(tmp_path: Path) -> None:
    actor = PhaseSpaceActor("phsp", "exit.mcpl", keys=["KineticEnergy", *(f"Pre{w}_{a}" for w in ("Position", "Direction") for a in "XYZ"), "EventID"])
    with pytest.raises(ConfigError, match="EventID"):
        actor.initialize(context(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_phsp_unknown_key_names_key_source_and_available(tmp_path: Path) -> None:
    actor = PhaseSpaceActor("phsp", "exit.npy", keys=["KineticEnergy", "EventPosition_X"])
    with pytest.raises(ConfigError) as err:
        actor.initialize(context(tmp_path, events=("b",)))  # source 'a' has no EventPosition_*
    message = str(err.value)
    assert "'phsp'" in message and "'EventPosition_X'" in message and "'a'" in message and "PrePosition_X" in message
    # recording only the source that has the key is fine
    PhaseSpaceActor("phsp", "exit.npy", keys=["EventPosition_X"], sources=["b"]).initialize(context(tmp_path, events=("b",)))


def test_phsp_unknown_source_and_bad_output_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'c'.*'a', 'b'"):
        PhaseSpaceActor("phsp", "exit.npy", sources=["c"]).initialize(context(tmp_path))
    with pytest.raises(ConfigError, match="phase-space format"):
        PhaseSpaceActor("phsp", "exit.txt")
    with pytest.raises(ConfigError, match="more than once"):
        PhaseSpaceActor("phsp", "exit.npy", keys=["KineticEnergy", "KineticEnergy"])


def test_phsp_records_only_chosen_sources(tmp_path: Path) -> None:
    runs = [[make_batch("a", 0, 4, seed=1), make_batch("b", 0, 3, seed=2)], []]
    drive(PhaseSpaceActor("phsp", "exit.npz", sources=["b"]), context(tmp_path), runs)
    table = read_table(tmp_path / "exit.npz")
    np.testing.assert_array_equal(table["EventID"], runs[0][1].columns["EventID"].numpy())


def test_phsp_refuses_existing_output_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "exit.root").write_text("old")
    with pytest.raises(OutputExistsError):
        PhaseSpaceActor("phsp", "exit.root").initialize(context(tmp_path))
    (tmp_path / "exit_run1.npy").write_text("old")
    with pytest.raises(OutputExistsError, match="exit_run1.npy"):
        PhaseSpaceActor("phsp", "exit.npy", per_run=True).initialize(context(tmp_path))
    drive(PhaseSpaceActor("phsp", "exit.root"), context(tmp_path, force=True), [[make_batch()], []])
    assert len(read_table(tmp_path / "exit.root")["KineticEnergy"]) == 5


@pytest.mark.parametrize("per_run", [False, True])
def test_phsp_abort_leaves_no_file(tmp_path: Path, per_run: bool) -> None:
    actor = PhaseSpaceActor("phsp", "exit.npy", per_run=per_run)
    ctx = context(tmp_path)
    actor.initialize(ctx)
    actor.begin_run(0, ctx.intervals[0])
    actor.process(make_batch("a", 0, 5))
    actor.end_run(0)  # per run: run 0's file is published...
    actor.begin_run(1, ctx.intervals[1])
    actor.process(make_batch("a", 1, 5))
    actor.abort()  # ...and removed with the rest when the simulation fails
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- statistics


def test_statistics_sums_counts_per_run_and_source_exactly(tmp_path: Path) -> None:
    c = [EventCounts(10, 9, 1, 2, 1, 7), EventCounts(5, 5, 0, 1, 0, 4), EventCounts(20, 18, 2, 3, 2, 15), EventCounts(3, 3, 0, 3, 0, 0)]
    runs = [
        [make_batch("a", 0, 7, counts=c[0], Weight=torch.full((7,), 0.5)), make_batch("b", 0, 4, counts=c[1])],
        [make_batch("a", 1, 15, counts=c[2]), make_batch("a", 1, 0, counts=c[3])],
    ]
    actor = drive(StatisticsActor("stats", output="stats.json"), context(tmp_path), runs)
    r = actor.results
    assert [run["run_id"] for run in r["runs"]] == [0, 1]
    assert r["runs"][1]["interval_ns"] == [1e9, 2e9] and r["runs"][0]["seconds"] >= 0
    a0 = r["runs"][0]["sources"]["a"]
    assert {k: a0[k] for k in c[0].to_dict()} == c[0].to_dict()
    assert a0["weight"] == pytest.approx(3.5)
    assert a0["energy_MeV"] == pytest.approx(0.5 * float(runs[0][0].columns["KineticEnergy"].double().sum()))
    assert r["runs"][1]["sources"]["b"]["decays"] == 0  # a source without batches in a run is still listed
    total = EventCounts()
    for x in c:
        total += x
    assert {k: r["total"][k] for k in total.to_dict()} == total.to_dict()
    assert r["sources"]["a"]["decays"] == 33 and r["sources"]["a"]["particles"] == 22
    assert r["runs"][1]["total"]["zero_energy"] == 6
    assert r["total"]["weight"] == pytest.approx(3.5 + 4 + 15)
    written = json.loads((tmp_path / "stats.json").read_text())
    assert written["total"] == r["total"] and written["sources"] == r["sources"]
    text = actor.summary()
    assert "(all)" in text and len(text.splitlines()) >= 6


def test_statistics_output_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=".json"):
        StatisticsActor("stats", output="stats.txt")
    (tmp_path / "stats.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        StatisticsActor("stats", output="stats.json").initialize(context(tmp_path))


# --------------------------------------------------------------------------- energy windows


def test_windows_boundaries_weights_and_overlaps(tmp_path: Path) -> None:
    # energies exactly representable in float32, so bounds are hit exactly
    windows = [("low", 0.125, 0.25), ("high", 0.25, 0.5), ("wide", 0.0, 0.375)]
    energies = [0.125, 0.1875, 0.25, 0.375, 0.5, 0.0625]
    weights = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    runs = [[make_batch("a", 0, 6, KineticEnergy=energies, Weight=weights)], [make_batch("b", 1, 1, KineticEnergy=[0.3], Weight=[0.5])]]
    actor = drive(EnergyWindowsActor("win", windows, output="w.json"), context(tmp_path), runs)
    r = actor.results
    assert r["windows"] == ["low", "high", "wide"]
    # low: 0.125 (in, e_min inclusive) + 0.1875; 0.25 is out (e_max exclusive)
    assert r["counts"]["low"] == [3.0, 0.0]
    assert r["counts"]["high"] == [4.0 + 8.0, 0.5]  # 0.5 itself is out
    assert r["counts"]["wide"] == [1.0 + 2.0 + 4.0 + 32.0, 0.5]  # overlaps the others; 0.375 is out
    assert r["per_source"]["a"]["high"] == [12.0, 0.0] and r["per_source"]["b"]["high"] == [0.0, 0.5]
    assert json.loads((tmp_path / "w.json").read_text())["counts"] == r["counts"]


def test_windows_dict_form_and_sources_filter(tmp_path: Path) -> None:
    runs = [[make_batch("a", 0, 2, KineticEnergy=[0.14, 0.14]), make_batch("b", 0, 1, KineticEnergy=[0.14])], []]
    actor = drive(EnergyWindowsActor("win", {"peak": (0.13, 0.15)}, sources=["b"]), context(tmp_path), runs)
    assert actor.results["counts"] == {"peak": [1.0, 0.0]}
    assert list(actor.results["per_source"]) == ["b"]


def test_tc99m_windows() -> None:
    bounds = {label: (lo / keV, hi / keV) for label, lo, hi in parse_energy_windows(TC99M_WINDOWS)}
    assert bounds["photopeak"] == pytest.approx((126.45, 154.55))
    assert bounds["scatter"][1] == pytest.approx(126.45) and bounds["scatter"][0] < 126.45


def test_open_upper_bound_is_written_as_null(tmp_path: Path) -> None:
    runs = [[make_batch("a", 0, 2, KineticEnergy=[0.05, 1e3])], []]
    actor = drive(EnergyWindowsActor("win", [("above", 0.1, math.inf)], output="w.json"), context(tmp_path), runs)
    assert actor.results["counts"]["above"] == [1.0, 0.0]
    assert json.loads((tmp_path / "w.json").read_text())["bounds_MeV"] == {"above": [0.1, None]}


@pytest.mark.parametrize(
    ("windows", "match"),
    [
        ([("w", 0.2, 0.1)], "'w'.*e_max"),
        ([("w", 0.1, 0.1)], "'w'.*e_max"),
        ([("w", -0.1, 0.1)], "'w'.*e_min"),
        ([("w", math.nan, 0.1)], "'w'.*e_min"),
        ([("w", math.inf, math.inf)], "'w'.*e_min"),
        ([("w", 0.1, math.nan)], "'w'.*e_max"),
        ([("w", 0.1, "x")], "'w'.*not a number"),
        ([("w", 0.1, 0.2), ("w", 0.3, 0.4)], "'w'.*unique"),
        ([("", 0.1, 0.2)], "label"),
        ([("w", 0.1)], "label, e_min, e_max"),
        ([], "empty"),
        ({"w": 0.1}, "'w'"),
    ],
)
def test_bad_windows_are_config_errors(windows: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        EnergyWindowsActor("win", windows)


# --------------------------------------------------------------------------- projection


def project(actor: ProjectionActor, tmp_path: Path, positions: list, directions: list, energies: list | None = None) -> ProjectionActor:
    n = len(positions)
    p, d = np.asarray(positions, dtype=np.float32), np.asarray(directions, dtype=np.float64)
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    values = {f"PrePosition_{a}": p[:, i] for i, a in enumerate("XYZ")} | {f"PreDirection_{a}": d[:, i] for i, a in enumerate("XYZ")}
    values["KineticEnergy"] = energies if energies is not None else [0.14] * n
    batch = make_batch("a", 0, n, **values)
    return drive(actor, RunContext(tmp_path, False, [INTERVALS[0]], ["a"]), [[batch]])


def z_detector(**kw: Any) -> ProjectionActor:
    """Detector plane z = 0 facing +z, 10 x 8 pixels of 2 x 3 mm (u = x, v = y)."""
    return ProjectionActor("proj", center=(0, 0, 0), normal=(0, 0, 1), size=(10, 8), spacing=(2.0, 3.0), **kw)


def test_photon_along_minus_n_hits_the_pixel_under_it(tmp_path: Path) -> None:
    actor = project(z_detector(), tmp_path, [(3.0, -4.5, 100.0)], [(0, 0, -1)])
    image = actor.results["images"][0]
    assert image.shape == (1, 8, 10) and image.dtype == np.float64
    # u = 3 mm -> column 3/2 + 10/2 = 6.5 -> 6; v = -4.5 mm -> row -4.5/3 + 8/2 = 2.5 -> 2
    assert image[0, 2, 6] == 1.0 and image.sum() == 1.0
    assert actor.results["detected"] == [1.0]


def test_acceptance_angle_cuts_tilted_photons(tmp_path: Path) -> None:
    a = 2 * deg
    tilt = [(math.sin(t), 0.0, -math.cos(t)) for t in (a - 0.01 * deg, a + 0.01 * deg)]
    actor = z_detector(acceptance_angle=a)
    detected, _ = actor.hits(torch.tensor([[0.0, 0.0, 50.0]] * 2), torch.tensor(tilt))
    assert detected.tolist() == [True, False]
    assert project(z_detector(acceptance_angle=a), tmp_path, [(0, 0, 50.0)] * 2, tilt).results["detected"] == [1.0]


def test_photons_moving_away_or_behind_the_plane_are_rejected(tmp_path: Path) -> None:
    actor = z_detector()
    detected, _ = actor.hits(torch.tensor([[0.0, 0.0, 50.0], [0.0, 0.0, -50.0], [0.0, 0.0, 50.0]]), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    assert detected.tolist() == [False, False, False]


def test_outside_the_rectangle_is_rejected_and_axes_are_oriented() -> None:
    actor = z_detector()  # u in [-10, 10) mm, v in [-12, 12) mm
    p = torch.tensor([[-10.0, 0.0, 5.0], [9.99, 0.0, 5.0], [10.0, 0.0, 5.0], [0.0, 12.01, 5.0], [0.0, -11.99, 5.0], [1.0, 0.0, 5.0], [0.0, 1.0, 5.0]])
    detected, pixel = actor.hits(p, torch.tensor([[0.0, 0.0, -1.0]] * len(p)))
    assert detected.tolist() == [True, True, False, False, True, True, True]
    iv, iu = pixel // 10, pixel % 10
    assert (iu[0].item(), iu[1].item(), iv[4].item()) == (0, 9, 0)
    # +u -> larger column, +v -> larger row (from the centre: column 5, row 4)
    assert (iu[5].item(), iv[5].item()) == (5, 4) and (iu[6].item(), iv[6].item()) == (5, 4)
    detected, pixel = actor.hits(torch.tensor([[2.5, 0.0, 5.0], [0.0, 3.5, 5.0]]), torch.tensor([[0.0, 0.0, -1.0]] * 2))
    assert (pixel[0] % 10).item() == 6 and (pixel[1] // 10).item() == 5


def test_rotated_detector_with_normal_along_x(tmp_path: Path) -> None:
    actor = ProjectionActor("proj", center=(-20, 0, 0), normal=(1, 0, 0), u_axis=(0, 1, 0), size=(10, 8), spacing=(2.0, 3.0))
    assert np.allclose(actor.v, [0, 0, 1])  # v = n x u = x x y
    actor = project(actor, tmp_path, [(30.0, 3.0, -4.5)], [(-1, 0, 0)])
    assert actor.results["images"][0][0, 2, 6] == 1.0  # u = y = 3 -> column 6; v = z = -4.5 -> row 2
    assert not ProjectionActor("p", center=(0, 0, 0), normal=(1, 0, 0), u_axis=(0, 1, 0)).hits(torch.tensor([[5.0, 0, 0]]), torch.tensor([[0.0, 0, -1]]))[0].item()


def test_u_axis_is_made_orthogonal_and_bad_geometry_refused() -> None:
    actor = ProjectionActor("p", center=(0, 0, 0), normal=(0, 0, 2), u_axis=(1, 0, 1))
    assert np.allclose(actor.u, [1, 0, 0]) and np.allclose(actor.normal, [0, 0, 1])
    with pytest.raises(ConfigError, match="parallel"):
        ProjectionActor("p", center=(0, 0, 0), normal=(0, 0, 1), u_axis=(0, 0, -3))
    for kw, match in [
        ({"acceptance_angle": 0.0}, "acceptance_angle"),
        ({"acceptance_angle": math.pi / 2}, "acceptance_angle"),
        ({"size": (0, 4)}, "size"),
        ({"spacing": (1.0, -1.0)}, "spacing"),
        ({"normal": (0, 0, 0)}, "normal"),
        ({"output": "p.mhd"}, ".mha"),
        ({"output": "p.png"}, ".nrrd"),
    ]:
        with pytest.raises(ConfigError, match=match):
            ProjectionActor("p", **({"center": (0, 0, 0), "normal": (0, 0, 1)} | kw))


@pytest.mark.parametrize("angle", [2 * deg, 10 * deg])
def test_isotropic_point_source_detected_fraction_is_the_cone_solid_angle(tmp_path: Path, angle: float) -> None:
    n, distance = 1_000_000, 100.0
    g = torch.Generator().manual_seed(12345)
    d = torch.randn(n, 3, generator=g, dtype=torch.float64)
    d /= d.norm(dim=1, keepdim=True)
    actor = ProjectionActor("proj", center=(0, 0, 0), normal=(0, 0, 1), size=(64, 64), spacing=(1.0, 1.0), acceptance_angle=angle)
    positions = torch.zeros(n, 3)
    positions[:, 2] = distance
    detected, pixel = actor.hits(positions, d.float())
    p0 = (1 - math.cos(angle)) / 2
    sigma = math.sqrt(n * p0 * (1 - p0))
    assert abs(int(detected.sum()) - n * p0) < 5 * sigma
    # every hit lies within the cone's footprint, radius D tan(a), plus a pixel
    iv, iu = pixel[detected] // 64, pixel[detected] % 64
    r = torch.hypot(iu.double() + 0.5 - 32, iv.double() + 0.5 - 32)
    assert float(r.max()) <= distance * math.tan(angle) + math.sqrt(2)


def test_windows_split_the_projection(tmp_path: Path) -> None:
    actor = z_detector(windows=[("low", 0.1, 0.13), ("peak", 0.13, 0.15)])
    actor = project(actor, tmp_path, [(0, 0, 10.0)] * 3, [(0, 0, -1)] * 3, energies=[0.12, 0.14, 0.2])
    image = actor.results["images"][0]
    assert image.shape == (2, 8, 10) and image[0].sum() == 1.0 and image[1].sum() == 1.0
    assert actor.results["detected"] == [3.0]  # detected whatever the energy


def test_projection_image_file_reads_back(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    actor = ProjectionActor(
        "proj", center=(1, 2, 3), normal=(1, 0, 0), u_axis=(0, 1, 0), size=(10, 8), spacing=(2.0, 3.0),
        windows=[("low", 0.1, 0.13), ("peak", 0.13, 0.15)], output="proj.mha",
    )
    actor = project(actor, tmp_path, [(50.0, 5.0, 4.0), (50.0, 2.0, 2.0)], [(-1, 0, 0)] * 2, energies=[0.12, 0.14])
    path = tmp_path / "proj_run0.mha"
    assert actor.results["files"] == [str(path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj_run0.mha"]  # no temporary file left
    image = sitk.ReadImage(str(path))
    assert image.GetSize() == (10, 8, 2)
    assert np.allclose(image.GetSpacing(), (2.0, 3.0, 1.0))
    # pixel (0, 0) centre: centre + (0.5 - 5) * 2 u + (0.5 - 4) * 3 v, u = y, v = x cross y = z
    assert np.allclose(image.GetOrigin(), (1.0, 2.0 - 9.0, 3.0 - 10.5))
    assert np.allclose(np.array(image.GetDirection()).reshape(3, 3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    stack = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(stack, actor.results["images"][0])
    # the photon at (y, z) = (5, 4) is at u = 3, v = 1 -> column 6, row 4, window 'low';
    # the one at (2, 2) at u = 0, v = -1 -> column 5, row 3, window 'peak'
    assert stack[0, 4, 6] == 1.0 and stack[1, 3, 5] == 1.0 and stack.sum() == 2.0
    with pytest.raises(OutputExistsError):
        ProjectionActor("proj", center=(0, 0, 0), normal=(0, 0, 1), output="proj.mha").initialize(RunContext(tmp_path, False, [INTERVALS[0]], ["a"]))


def test_projection_nifti_output(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    actor = project(z_detector(output="p.nii.gz"), tmp_path, [(0.0, 0.0, 10.0)], [(0, 0, -1)])
    stack = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "p_run0.nii.gz")))
    np.testing.assert_array_equal(stack, actor.results["images"][0])


# --------------------------------------------------------------------------- comparison


def test_compare_projections() -> None:
    b = np.array([[1.0, 1.0], [2.0, 0.0]])
    assert compare_projections(b, b)["sum_difference"] == 0.0 and compare_projections(b, b)["sad"] == 0.0
    same_shape = compare_projections(2 * b, b)
    assert same_shape["sum_difference"] == pytest.approx(1.0) and same_shape["sad"] == pytest.approx(0.0)
    m = compare_projections([3.0, 1.0], [1.0, 1.0])  # (4 - 2)/2; |0.75 - 0.5| + |0.25 - 0.5| = 0.5
    assert m["sum_difference"] == pytest.approx(1.0) and m["sad"] == pytest.approx(50.0)
    assert compare_projections([1.0, 0.0], [0.0, 1.0])["sad"] == pytest.approx(200.0)
    with pytest.raises(DataError, match="shape"):
        compare_projections(np.ones(3), np.ones(4))
    with pytest.raises(DataError, match="zero"):
        compare_projections(np.ones(3), np.zeros(3))
