"""Voxel phantoms: the lookup against brute force, rasterised partial volumes, the IEC phantom, image files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy.spatial import cKDTree

from gansim.errors import ConfigError, DataError
from gansim.physics.geometry import ImageGeometry, rotation_matrix
from gansim.physics.materials import default_hu_table, get_material
from gansim.physics.phantoms import (
    IEC_SPHERE_DIAMETERS,
    BoxShape,
    CylinderShape,
    DShapePrism,
    Region,
    SphereShape,
    VoxelPhantom,
    builtin_phantom,
    iec_phantom,
    iec_sphere_centres,
    phantom_from_ct,
    phantom_from_labels,
    rasterise,
    water_box,
    water_cylinder,
    water_sphere,
)

WATER, BONE, AIR, VACUUM = (get_material(n) for n in ("G4_WATER", "G4_BONE_CORTICAL_ICRP", "G4_AIR", "G4_Galactic"))
PMMA, LUNG = get_material("G4_PLEXIGLASS"), get_material("G4_LUNG_ICRP")


def _oblique_geometry(shape: tuple[int, int, int] = (7, 5, 9)) -> ImageGeometry:
    return ImageGeometry(
        shape,
        np.array([2.0, 3.0, 1.5]),
        origin=np.array([-5.0, 2.0, 1.0]),
        direction=rotation_matrix((1.0, 2.0, 3.0), 0.7),
        translation=np.array([10.0, -20.0, 5.0]),
        rotation=rotation_matrix("x", 0.4),
    )


def _brute_force(ph: VoxelPhantom, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point, float64: material, density, and whether a float32 computation may round differently."""
    g = ph.geometry
    mat, den = ph.material_index.numpy().astype(np.int64), ph.density.numpy()
    n_mat = len(ph.materials)
    out_m = np.full(len(points), n_mat)
    out_d = np.full(len(points), ph.world_material.density, dtype=np.float64)
    ambiguous = np.zeros(len(points), dtype=bool)
    for n, p in enumerate(points):
        idx = g.world_to_index(p[None, :])[0] + 0.5
        # within 1e-4 voxel of a voxel face, float32 rounding may put the point on either side
        ambiguous[n] = bool(np.any(np.abs(idx - np.round(idx)) < 1e-4))
        ijk = np.floor(idx).astype(int)
        if np.all(ijk >= 0) and np.all(ijk < g.shape):
            m = mat[tuple(ijk)]
            if m != n_mat:
                out_m[n], out_d[n] = m, den[tuple(ijk)]
    return out_m, out_d, ambiguous


@pytest.mark.parametrize("geometry", [_oblique_geometry(), ImageGeometry((6, 4, 5), np.array([2.5, 1.0, 4.0]), origin=np.array([3.0, -4.0, 7.5]))], ids=["oblique", "axis-aligned"])
def test_lookup_matches_brute_force(geometry: ImageGeometry) -> None:
    rng = np.random.default_rng(0)
    materials = [WATER, BONE, AIR]
    mi = rng.integers(0, len(materials) + 1, size=geometry.shape).astype(np.int16)  # value 3 = world
    den = rng.uniform(0.1, 2.0, size=geometry.shape).astype(np.float32)
    ph = VoxelPhantom(geometry, torch.from_numpy(mi), torch.from_numpy(den), materials, world_material=VACUUM)
    # points over the image and a margin around it (continuous index in [-2, n + 1])
    idx = rng.uniform(-2.0, 1.0, size=(4000, 3)) + rng.uniform(0, 1, size=(4000, 3)) * np.asarray(geometry.shape)
    points = geometry.index_to_world(idx).astype(np.float32).astype(np.float64)
    m, d = ph.lookup(torch.from_numpy(points.astype(np.float32)))
    assert m.dtype == torch.int64 and d.dtype == torch.float32
    em, ed, amb = _brute_force(ph, points)
    ok = (m.numpy() == em) & (d.numpy() == ed.astype(np.float32))
    assert np.all(ok | amb), f"{int((~ok & ~amb).sum())} points disagree with the brute force"
    assert amb.mean() < 0.01
    outside = em == len(materials)
    assert 500 < outside.sum() < 3500  # both cases were exercised
    assert np.all(d.numpy()[outside & ~amb] == 0.0)  # the world (vacuum) and world-marked voxels
    # changing the world material afterwards is seen by the next lookup
    ph.world_material = AIR
    _, d2 = ph.lookup(torch.from_numpy(points.astype(np.float32)))
    assert np.all(d2.numpy()[outside & ~amb] == np.float32(AIR.density))


@pytest.mark.parametrize(
    "shape",
    [(40, 40, 40), (2400, 2400, 1)],
    ids=["many-densities", "over-2^24-padded-voxels"],
)
def test_lookup_paths_for_many_density_values_and_large_grids(shape: tuple[int, int, int]) -> None:
    """64000 distinct densities (no (material, density) palette) and a grid whose flattened padded
    index exceeds float32's exact integers: both must still match the direct index computation."""
    rng = np.random.default_rng(8)
    geometry = ImageGeometry(shape, np.array([1.0, 0.5, 2.0]), origin=np.array([-3.0, 4.0, 1.0]))
    n = int(np.prod(shape))
    mi = rng.integers(0, 2, size=n).astype(np.int16)
    den = (rng.random(n) + 0.5).astype(np.float32) if n < 10**6 else np.where(mi == 0, 1.0, 1.85).astype(np.float32)
    ph = VoxelPhantom(geometry, torch.from_numpy(mi.reshape(shape)), torch.from_numpy(den.reshape(shape)), [WATER, BONE])
    # voxel centres (exact) spread over the grid, the far end included, and points just outside
    ijk = np.concatenate([rng.integers(0, shape, size=(20000, 3)), np.array(shape)[None] - 1])
    pts = geometry.index_to_world(ijk.astype(np.float64))
    m, d = ph.lookup(torch.from_numpy(pts.astype(np.float32)))
    flat = np.ravel_multi_index(tuple(ijk.T), shape)
    np.testing.assert_array_equal(m.numpy(), mi[flat])
    np.testing.assert_array_equal(d.numpy(), den[flat])
    # the paths meant here were taken (implementation detail, asserted so the test keeps its purpose)
    assert (ph._lut.grid is None) if n < 10**6 else (ph._lut.strides.dtype == torch.float64)
    out = geometry.index_to_world(np.array([[-1.0, 0, 0], [shape[0], 0, 0], [0, 0, shape[2]]]))
    m, d = ph.lookup(torch.from_numpy(out.astype(np.float32)))
    assert m.tolist() == [2, 2, 2] and np.all(d.numpy() == np.float32(AIR.density))


def test_phantom_materials_max_density_and_validation() -> None:
    g = ImageGeometry.centred((2, 2, 2), 1.0)
    mi = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [1, 1]]], dtype=torch.int16)
    den = torch.tensor([[[1.0, 1.5], [1.9, 7.0]], [[0.9, 1.1], [1.7, 1.8]]])
    ph = VoxelPhantom(g, mi, den, [WATER, BONE])
    assert [m.name for m in ph.all_materials] == ["G4_WATER", "G4_BONE_CORTICAL_ICRP", "G4_AIR"]
    # voxels marked as world take the world's density, whatever the density image holds
    assert ph.max_density() == pytest.approx([1.1, 1.9, AIR.density])
    assert ph.to("cpu") is ph
    with pytest.raises(DataError, match="shape"):
        VoxelPhantom(g, mi[:1], den, [WATER, BONE])
    with pytest.raises(DataError, match=r"\[0, 2\]"):
        VoxelPhantom(g, mi + 1, den, [WATER, BONE])
    with pytest.raises(DataError, match="density"):
        VoxelPhantom(g, mi, -den, [WATER, BONE])
    with pytest.raises(DataError, match="integer"):
        VoxelPhantom(g, den, den, [WATER, BONE])
    with pytest.raises(ConfigError, match="world_material"):
        ph.world_material = "G4_AIR"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_lookup_on_cuda_matches_cpu() -> None:
    ph, _ = water_sphere(30.0, 2.0)
    pts = torch.rand(10_000, 3, generator=torch.Generator().manual_seed(1)) * 80 - 40
    m, d = ph.lookup(pts)
    gpu = ph.to("cuda")
    mg, dg = gpu.lookup(pts.cuda())
    assert mg.device.type == "cuda"
    assert torch.equal(mg.cpu(), m) and torch.equal(dg.cpu(), d)


def _ball(r: float) -> float:
    return 4.0 / 3.0 * math.pi * max(r, 0.0) ** 3


def _naive_activity(regions: list[Region], geometry: ImageGeometry, n_sub: int) -> np.ndarray:
    """Every sub-point of every voxel against every region, painted in order: the definition."""
    g = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    sub = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij"), -1).reshape(-1, 1, 3) + sub[None]
    pts = geometry.index_to_world(idx.reshape(-1, 3))
    act = np.zeros(len(pts))
    for reg in regions:
        act[reg.shape.sdf(pts[:, 0], pts[:, 1], pts[:, 2]) <= 0] = reg.activity
    return act.reshape(*geometry.shape, -1).mean(axis=-1)


def test_rasterise_equals_brute_force_supersampling() -> None:
    """Supersampling only the voxels a surface may cross changes nothing: same result as every voxel."""
    geometry = _oblique_geometry((14, 12, 16))
    c = geometry.index_to_world(np.array([[6.5, 5.5, 7.5]]))[0]
    regions = [
        Region(BoxShape(tuple(c), (16.0, 22.0, 14.0)), PMMA),  # zero activity, painted over
        Region(SphereShape(tuple(c), 9.0), WATER, activity=1.0),
        Region(CylinderShape(tuple(c + [3.0, 0, 0]), 3.0, 12.0, "y"), LUNG, density=0.3),
        Region(SphereShape(tuple(c - [4.0, 2.0, 0]), 2.5), WATER, activity=5.0),
    ]
    ph, act = rasterise(regions, geometry, supersampling=3)
    np.testing.assert_allclose(act, _naive_activity(regions, geometry, 3), rtol=0, atol=1e-6)
    assert [m.name for m in ph.materials] == ["G4_PLEXIGLASS", "G4_WATER", "G4_LUNG_ICRP"]
    # material and density at voxel centres
    centre = geometry.index_to_world(np.stack(np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij"), -1).reshape(-1, 3))
    d_cyl = regions[2].shape.sdf(centre[:, 0], centre[:, 1], centre[:, 2]).reshape(geometry.shape)
    d_small = regions[3].shape.sdf(centre[:, 0], centre[:, 1], centre[:, 2]).reshape(geometry.shape)
    lung = (d_cyl <= 0) & (d_small > 0)
    assert lung.any() and np.all(ph.material_index.numpy()[lung] == 2) and np.allclose(ph.density.numpy()[lung], 0.3)


def test_partial_volumes_are_unbiased_sphere_volumes() -> None:
    """The supersampled volume of a ball is a lattice count: bounded by the balls r -+ half a sub-cell
    diagonal, and unbiased over random placements of the grid (mean within 5 standard errors)."""
    rng = np.random.default_rng(4)
    r, n_sub = 6.3, 4
    spacing = np.array([3.0, 2.5, 2.0])
    delta = 0.5 * np.linalg.norm(spacing) / n_sub
    volumes = []
    for _ in range(24):
        shift = rng.uniform(-0.5, 0.5, 3) * spacing
        geometry = ImageGeometry((7, 8, 10), spacing, origin=-0.5 * (np.array([7, 8, 10]) - 1) * spacing + shift)
        _, act = rasterise([Region(SphereShape((0.0, 0.0, 0.0), r), WATER, activity=1.0)], geometry, supersampling=n_sub)
        v = float(act.astype(np.float64).sum()) * geometry.voxel_volume
        assert _ball(r - delta) <= v <= _ball(r + delta)
        volumes.append(v)
    volumes_a = np.array(volumes)
    sem = volumes_a.std(ddof=1) / math.sqrt(len(volumes_a))
    assert abs(volumes_a.mean() - _ball(r)) < 5 * sem, f"mean {volumes_a.mean():.2f} vs {_ball(r):.2f} +- {sem:.2f} mm^3"
    assert sem > 0  # the placements did change the count


def test_d_shape_cross_section() -> None:
    d = DShapePrism((0.0, 0.0, 0.0), 147.0, 70.0, 77.0, 180.0)
    c45 = 1 / math.sqrt(2)
    pts = np.array([[0, 152.0], [0, -82.0], [152.0, 0.0], [70.0, -82.0], [70 + 80 * c45, -80 * c45], [120.0, 0.0], [0.0, 100.0]])
    # where the nearest boundary piece is unambiguous, the signed distance is exact
    np.testing.assert_allclose(d.sdf2d(pts[:, 0], pts[:, 1]), [5.0, 5.0, 5.0, 5.0, 3.0, -27.0, -47.0], atol=1e-9)
    # everywhere: the sign is exact and |sdf| never exceeds the distance to the boundary (dense polyline)
    t = np.linspace(0, np.pi, 20001)
    arc = np.stack([147 * np.cos(t), 147 * np.sin(t)], 1)
    u = np.linspace(-np.pi / 2, 0, 10001)
    corner = np.stack([70 + 77 * np.cos(u), 77 * np.sin(u)], 1)
    flat = np.stack([np.linspace(-70, 70, 10001), np.full(10001, -77.0)], 1)
    boundary = np.concatenate([arc, corner, corner * [-1, 1], flat])
    rng = np.random.default_rng(7)
    q = np.stack([rng.uniform(-160, 160, 20000), rng.uniform(-90, 160, 20000)], 1)
    dist = cKDTree(boundary).query(q)[0]  # the polyline's points are < 0.03 mm apart: within 0.02 mm
    sdf = d.sdf2d(q[:, 0], q[:, 1])
    inside = ((q[:, 1] >= 0) & (np.hypot(q[:, 0], q[:, 1]) <= 147)) | ((q[:, 1] <= 0) & (q[:, 1] >= -77) & ((np.abs(q[:, 0]) <= 70) | (np.hypot(np.abs(q[:, 0]) - 70, q[:, 1]) <= 77)))
    assert np.array_equal(sdf <= 0, inside)
    assert np.all(np.abs(sdf) <= dist + 0.02)
    # area by Monte Carlo: binomial, 5 sigma
    rng = np.random.default_rng(5)
    n = 400_000
    x, y = rng.uniform(-150, 150, n), rng.uniform(-80, 150, n)
    box = 300.0 * 230.0
    p = d.area() / box
    k = int((d.sdf2d(x, y) <= 0).sum())
    assert abs(k / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    lo, hi = d.bounds()
    np.testing.assert_allclose(lo, [-147, -77, -90])
    np.testing.assert_allclose(hi, [147, 147, 90])


def test_iec_phantom_spheres_lung_and_activity() -> None:
    spacing, n_sub = 4.0, 4
    ph1, a1 = iec_phantom(spacing, 1.0)
    ph5, a5 = iec_phantom(spacing, 5.0)
    assert torch.equal(ph1.material_index, ph5.material_index)
    assert [m.name for m in ph1.all_materials] == ["G4_PLEXIGLASS", "G4_WATER", "G4_LUNG_ICRP", "G4_AIR"]
    assert ph1.max_density() == pytest.approx([PMMA.density, 1.0, 0.3, AIR.density])
    g = ph1.geometry
    # sphere volumes: the activity difference between ratios 5 and 1 is 4 x the spheres' supersampled volume
    diff = (a5.astype(np.float64) - a1) / 4.0
    delta = 0.5 * np.linalg.norm(g.spacing) / n_sub
    centres = iec_sphere_centres()
    assert sorted(centres) == sorted(IEC_SPHERE_DIAMETERS)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in g.shape], indexing="ij"), -1).reshape(-1, 3)
    world = g.index_to_world(ijk).reshape(*g.shape, 3)
    total = 0.0
    for dia, c in centres.items():
        near = np.linalg.norm(world - c, axis=-1) < 0.5 * dia + 1.0 + spacing
        v = float(diff[near].sum()) * g.voxel_volume
        assert _ball(0.5 * dia - delta) <= v <= _ball(0.5 * dia + delta), f"{dia} mm sphere: {v:.0f} vs {_ball(0.5 * dia):.0f} mm^3"
        total += v
        # the voxel at the centre: water, with the sphere's activity when the sphere contains the whole voxel
        i = tuple(np.round(g.world_to_index(c[None])[0]).astype(int))
        assert int(ph5.material_index[i]) == 1
        if 0.5 * dia > np.linalg.norm(g.spacing):
            assert a5[i] == pytest.approx(5.0)
    assert total == pytest.approx(float(diff.sum()) * g.voxel_volume, rel=1e-9)  # nothing outside the spheres
    # geometry of the sphere ring: 57.2 mm about the lung axis (0, 35), 60 degrees apart, in the plane z = 20 mm
    pts = np.array([centres[d] for d in sorted(IEC_SPHERE_DIAMETERS, reverse=True)])
    np.testing.assert_allclose(np.hypot(pts[:, 0], pts[:, 1] - 35.0), 57.2)
    np.testing.assert_allclose(pts[:, 2], 20.0)
    ang = np.degrees(np.arctan2(pts[:, 1] - 35.0, pts[:, 0]))
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(ang))), np.radians(60.0))
    # the lung insert on the axis: lung at 0.3 g/cm3, no activity; background water has activity 1
    m, d = ph1.lookup(torch.tensor([[0.0, 35.0, -50.0], [0.0, 100.0, -50.0], [0.0, 35.0, 200.0]]))
    assert m.tolist() == [2, 1, 3] and d[0] == pytest.approx(0.3) and d[1] == pytest.approx(1.0)
    i_lung, i_bg = (tuple(v) for v in np.round(g.world_to_index(np.array([[0.0, 35.0, -50.0], [0.0, 100.0, -50.0]]))).astype(int))
    assert a1[i_lung] == 0.0 and a1[i_bg] == 1.0
    # the shell: voxel faces lie at y = -81, -77, -73 (the grid spans y in [-81, 151]); centres at -79 (in
    # the wall, y in [-80, -77]) and -75 (interior water); below -81 is outside the image
    ys = np.arange(-89.95, -70.0, 0.1)
    m, _ = ph1.lookup(torch.tensor(np.stack([np.zeros_like(ys), ys, np.zeros_like(ys)], 1), dtype=torch.float32))
    np.testing.assert_allclose(g.corners()[:, 1].min(), -81.0)
    np.testing.assert_array_equal(m.numpy(), np.select([ys < -81, ys < -77], [3, 0], 1))


def test_water_builders() -> None:
    ph, act = water_box((40.0, 20.0, 30.0), 5.0, center=(1.0, 2.0, 3.0))
    assert ph.geometry.shape == (8, 4, 6) and bool((ph.material_index == 0).all())
    assert float(act.sum()) * ph.geometry.voxel_volume == pytest.approx(40 * 20 * 30)
    np.testing.assert_allclose(ph.geometry.corners().min(0), [-19.0, -8.0, -12.0])
    ph, act = water_cylinder(20.0, 50.0, 2.0, axis="x")
    assert ph.geometry.shape == (25, 20, 20)
    assert [m.name for m in ph.all_materials] == ["G4_WATER", "G4_AIR"]
    m, d = ph.lookup(torch.tensor([[24.0, 0, 0], [0, 19.0, 0], [0, 15.0, 15.0]]))
    assert m.tolist() == [0, 0, 1] and d[2] == pytest.approx(AIR.density)
    ph, _ = water_sphere(10.0, (2.0, 2.0, 4.0), world_material="G4_Galactic")
    assert ph.geometry.shape == (10, 10, 5) and ph.max_density()[-1] == 0.0
    with pytest.raises(ConfigError, match="spacing"):
        water_sphere(10.0, 0.0)
    with pytest.raises(ConfigError, match="radius"):
        water_sphere(-1.0, 1.0)


def test_builtin_phantoms() -> None:
    ph, act = builtin_phantom("water-cylinder", spacing=10.0)
    assert act is not None and act.shape == ph.geometry.shape
    assert float(act.sum()) * 1000.0 == pytest.approx(math.pi * 100.0**2 * 200.0, rel=0.01)
    ph, act = builtin_phantom("IEC", spacing=8.0)
    assert ph.geometry.spacing.tolist() == [8.0, 8.0, 8.0]
    with pytest.raises(ConfigError, match="did you mean 'iec'"):
        builtin_phantom("iecc")


# -- image files --------------------------------------------------------------------------
def _write(array_ijk: np.ndarray, path: str, spacing=(1.5, 2.0, 2.5), origin=(-10.0, 5.0, 3.0), direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(tuple((rotation_matrix((0.3, -1.0, 0.5), 0.6) if direction is None else direction).ravel()))
    sitk.WriteImage(image, path)
    return image


@pytest.mark.parametrize("suffix", [".mhd", ".nii.gz"])
def test_phantom_from_ct_round_trip(tmp_path, suffix: str) -> None:
    rng = np.random.default_rng(6)
    hu = rng.uniform(-1000, 1500, size=(6, 5, 4)).astype(np.float32)
    hu[4, 1, 2] = 1400.0  # one marked voxel to check the [i, j, k] order and the direction
    hu[0, 0, 0] = -1000.0
    path = str(tmp_path / f"ct{suffix}")
    image = _write(hu, path)
    ph = phantom_from_ct(path, translation=(1.0, 2.0, 3.0))
    table = default_hu_table()
    mi, den, materials = table.convert(hu)
    assert [m.name for m in ph.materials] == [m.name for m in materials]
    np.testing.assert_array_equal(ph.material_index.numpy(), mi)
    np.testing.assert_allclose(ph.density.numpy(), den, rtol=1e-6)
    g = ph.geometry
    np.testing.assert_allclose(g.spacing, image.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(g.origin, image.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(g.direction.ravel(), image.GetDirection(), atol=1e-6)
    # the marked voxel is where ITK puts it (plus the translation)
    p = np.array(image.TransformIndexToPhysicalPoint((4, 1, 2))) + [1.0, 2.0, 3.0]
    m, d = ph.lookup(torch.tensor(p[None], dtype=torch.float32))
    assert int(m[0]) == int(mi[4, 1, 2]) and float(d[0]) == pytest.approx(float(den[4, 1, 2]))


def test_image_file_errors(tmp_path) -> None:
    with pytest.raises(DataError, match=r"missing\.mhd.*not found"):
        phantom_from_ct(tmp_path / "missing.mhd")
    flat = tmp_path / "flat.mhd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5), np.float32)), str(flat))
    with pytest.raises(DataError, match=r"flat\.mhd.*2-D.*expected a 3-D"):
        phantom_from_ct(flat)
    four = tmp_path / "four.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False), str(four))
    with pytest.raises(DataError, match=r"four\.nii.*4-D"):
        phantom_from_ct(four)
    nan = np.zeros((3, 3, 3), np.float32)
    nan[1, 2, 0] = np.nan
    _write(nan, str(tmp_path / "nan.mhd"))
    with pytest.raises(DataError, match=r"nan\.mhd.*1 NaN.*\(1, 2, 0\)"):
        phantom_from_ct(tmp_path / "nan.mhd")
    (tmp_path / "junk.mhd").write_text("not an image\n")
    with pytest.raises(DataError, match=r"junk\.mhd"):
        phantom_from_ct(tmp_path / "junk.mhd")


def test_phantom_from_labels(tmp_path) -> None:
    lab = np.zeros((5, 4, 3), np.int16)
    lab[1:4, 1:3, :] = 1
    lab[2, 2, 1] = 7
    path = str(tmp_path / "labels.nrrd")
    _write(lab, path, direction=np.eye(3))
    ph = phantom_from_labels(path, {0: "G4_AIR", 1: "water", 7: BONE}, densities={7: 1.7}, world_material="G4_Galactic")
    assert [m.name for m in ph.all_materials] == ["G4_AIR", "G4_WATER", "G4_BONE_CORTICAL_ICRP", "G4_Galactic"]
    np.testing.assert_array_equal(ph.material_index.numpy(), np.select([lab == 1, lab == 7], [1, 2], 0))
    assert float(ph.density[2, 2, 1]) == pytest.approx(1.7) and float(ph.density[1, 1, 0]) == pytest.approx(1.0)
    with pytest.raises(DataError, match=r"labels\.nrrd.*label values 7 have no material.*\[0, 1\]"):
        phantom_from_labels(path, {0: "G4_AIR", 1: "G4_WATER"})
    with pytest.raises(ConfigError, match="density given for label 3"):
        phantom_from_labels(path, {0: "G4_AIR", 1: "G4_WATER", 7: BONE}, densities={3: 1.0})
    with pytest.raises(ConfigError, match="G4_WATER"):
        phantom_from_labels(path, {0: "G4_AIR", 1: "G4_WATR", 7: BONE})
    frac = lab.astype(np.float32)
    frac[0, 0, 0] = 0.5
    _write(frac, str(tmp_path / "frac.mhd"), direction=np.eye(3))
    with pytest.raises(DataError, match="non-integer"):
        phantom_from_labels(tmp_path / "frac.mhd", {0: "G4_AIR", 1: "G4_WATER", 7: BONE})
