"""Exit surfaces: distances against independent float64 ray/quadric solutions, containment, parsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gansim.errors import ConfigError
from gansim.physics.surfaces import CylinderSurface, SphereSurface, parse_exit_surface


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both roots of a t^2 + b t + c = 0 by the textbook formula, float64."""
    disc = np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


EPS32 = float(np.finfo(np.float32).eps)


def _inside_sphere(rng: np.random.Generator, n: int, radius: float, center: np.ndarray) -> np.ndarray:
    return center + _unit(rng, n) * radius * rng.random(n)[:, None] ** (1 / 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sphere_distance_matches_the_quadratic_root_and_lands_on_the_sphere(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(1)
    radius, center = 210.0, np.array([5.0, -7.0, 12.0])
    n = 20_000
    tp = torch.from_numpy(_inside_sphere(rng, n, radius, center)).to(dtype)
    td = torch.from_numpy(_unit(rng, n)).to(dtype)
    p, d = tp.double().numpy(), td.double().numpy()  # the reference sees the same (rounded) inputs
    q = p - center
    b, c = np.einsum("ij,ij->i", q, d), np.einsum("ij,ij->i", q, q) - radius**2
    lo, hi = _roots(np.ones(n), 2 * b, c)
    assert np.all(lo <= 0) and np.all(hi >= 0)  # from inside, one root behind and one ahead
    t = SphereSurface(radius, center).distance_to_exit(tp, td)
    assert t.dtype == dtype
    # forward error: c carries a few ulps of R^2 and dt/dc = -1/(2 sqrt(b^2 - c)), plus ulps of t itself
    eps = float(torch.finfo(dtype).eps)
    tol = 4 * eps * (radius**2 / np.sqrt(b * b - c) + radius)
    err = np.abs(t.double().numpy() - hi)
    assert np.all(err <= tol), f"max error {err.max():.3g} mm, worst error/bound {np.max(err / tol):.3g}"
    exit_point = p + t.double().numpy()[:, None] * d
    assert np.all(np.abs(np.linalg.norm(exit_point - center, axis=1) - radius) <= tol + 4 * eps * radius)


def test_sphere_special_rays() -> None:
    s = SphereSurface(100.0)
    pos = torch.tensor([[100.0, 0, 0], [100.0, 0, 0], [0, 0, 0], [0, 60.0, 0]])
    dirn = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    t = s.distance_to_exit(pos, dirn)
    # on the surface going out: 0; going in: the diameter; from the centre: R; a chord: sqrt(R^2 - y^2)
    torch.testing.assert_close(t, torch.tensor([0.0, 200.0, 100.0, 80.0]))
    assert t.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cylinder_distance_matches_side_and_cap_roots(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(2)
    radius, half, center = 300.0, 200.0, np.array([0.0, 10.0, -20.0])
    n = 20_000
    r = radius * np.sqrt(rng.random(n))
    phi = rng.random(n) * 2 * np.pi
    p = center + np.stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-half, half, n)], axis=1)
    d = _unit(rng, n)
    d[:100] = [0.0, 0.0, 1.0]  # along the axis: only the caps
    d[100:200] = [0.0, 0.0, -1.0]
    d[200:300, 2] = 0.0  # in a transverse plane: only the side
    d[200:300] /= np.linalg.norm(d[200:300], axis=1, keepdims=True)
    tp, td = torch.from_numpy(p).to(dtype), torch.from_numpy(d).to(dtype)
    p, d = tp.double().numpy(), td.double().numpy()  # the reference sees the same (rounded) inputs
    q = p - center
    _, side = _roots(d[:, 0] ** 2 + d[:, 1] ** 2, 2 * (q[:, 0] * d[:, 0] + q[:, 1] * d[:, 1]), q[:, 0] ** 2 + q[:, 1] ** 2 - radius**2)
    side = np.where(np.isfinite(side), side, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(d[:, 2] != 0, (np.sign(d[:, 2]) * half - q[:, 2]) / d[:, 2], np.inf)
    expected = np.minimum(side, cap)
    assert np.all(np.isfinite(expected))
    t = CylinderSurface(radius, half, center).distance_to_exit(tp, td).double().numpy()
    # as for the sphere: the side root's error is a few ulps of R^2 over 2 sqrt(b^2 - a c)
    eps = float(torch.finfo(dtype).eps)
    a_, b_ = d[:, 0] ** 2 + d[:, 1] ** 2, q[:, 0] * d[:, 0] + q[:, 1] * d[:, 1]
    with np.errstate(divide="ignore"):
        tol = 4 * eps * (radius**2 / np.sqrt(b_ * b_ - a_ * (q[:, 0] ** 2 + q[:, 1] ** 2 - radius**2)) + radius + half)
    err = np.abs(t - expected)
    assert np.all(err <= tol), f"max error {err.max():.3g} mm, worst error/bound {np.max(err / tol):.3g}"
    # the exit point is on the side or on a cap, and inside the other bound
    e = p + t[:, None] * d - center
    rho = np.hypot(e[:, 0], e[:, 1])
    on_side = np.abs(rho - radius) <= tol
    on_cap = np.abs(np.abs(e[:, 2]) - half) <= tol
    assert np.all(on_side | on_cap)
    assert np.all(rho <= radius + tol) and np.all(np.abs(e[:, 2]) <= half + tol)
    assert np.all(on_cap[:200]) and np.all(on_side[200:300])


def test_contains() -> None:
    pts = torch.tensor([[0.0, 0, 0], [209.0, 0, 0], [211.0, 0, 0], [0, 0, -210.0]])
    assert SphereSurface(210.0).contains(pts).tolist() == [True, True, False, True]
    assert SphereSurface(210.0, (5.0, 0, 0)).contains(pts).tolist() == [True, True, True, False]
    cyl = CylinderSurface(100.0, 50.0)
    pts = torch.tensor([[99.0, 0, 49.0], [0, 101.0, 0], [0, 0, 51.0], [70.0, 70.0, 0]])
    assert cyl.contains(pts).tolist() == [True, False, False, True]


def test_check_encloses_names_what_is_outside() -> None:
    s = SphereSurface(100.0)
    s.check_encloses(np.array([[0.0, 0, 0], [100.0, 0, 0], [0, 60, 80]]), "the phantom image")  # on the surface is enclosed
    with pytest.raises(ConfigError, match=r"the phantom image .*SphereSurface\(radius=100.*101"):
        s.check_encloses(np.array([[0.0, 0, 0], [0.0, 101.0, 0.0]]), "the phantom image")
    cyl = CylinderSurface(100.0, 50.0)
    cyl.check_encloses(np.array([[100.0, 0, 50.0]]), "box")
    with pytest.raises(ConfigError, match="source box"):
        cyl.check_encloses(np.array([[0.0, 0, 50.5]]), "source box")


def test_parse_exit_surface() -> None:
    s = parse_exit_surface("sphere:210")
    assert isinstance(s, SphereSurface) and s.radius == 210.0 and s.center == (0.0, 0.0, 0.0)
    c = parse_exit_surface(" Cylinder: 300, 400 ")
    assert isinstance(c, CylinderSurface) and c.radius == 300.0 and c.half_length == 200.0
    with pytest.raises(ConfigError, match="did you mean 'sphere'"):
        parse_exit_surface("sphre:210")
    for bad in ("sphere", "sphere:", "sphere:abc", "sphere:-5", "sphere:1,2", "cylinder:300", "cylinder:300,0", "sphere:inf"):
        with pytest.raises(ConfigError):
            parse_exit_surface(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_surfaces_run_on_the_tensors_device() -> None:
    pos = torch.zeros(4, 3, device="cuda")
    dirn = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, -1.0]], device="cuda")
    for s, expected in ((SphereSurface(50.0, (1.0, 0, 0)), [51.0, 50.0 * np.sqrt(1 - 1 / 2500), 50.0 * np.sqrt(1 - 1 / 2500), 50.0 * np.sqrt(1 - 1 / 2500)]), (CylinderSurface(50.0, 20.0), [50.0, 50.0, 20.0, 20.0])):
        t = s.distance_to_exit(pos, dirn)
        assert t.device.type == "cuda" and s.contains(pos).device.type == "cuda"
        np.testing.assert_allclose(t.cpu().numpy(), expected, rtol=1e-6)
