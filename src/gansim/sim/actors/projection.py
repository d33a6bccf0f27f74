"""The projection actor: an ideal parallel-hole collimator in front of a planar detector.

Particles leave the sources' exit surface and travel in straight lines (nothing beyond the
exit surface attenuates them). The collimator lets through the photons whose direction
lies within ``acceptance_angle`` of its holes; each is detected where its line crosses
the detector plane, if that point is on the detector. Per run, the actor sums the weights
of the detected photons in an image per energy window::

    spect = sim.add_actor(ProjectionActor(
        "spect", center=(0, 0, -300), normal=(0, 0, 1), size=(128, 128), spacing=(4.42, 4.42),
        windows=TC99M_WINDOWS, output="projection.mha"))

Frame: ``n`` = ``normal`` (unit) points from the detector plane towards the object (where
the detector faces); ``u`` = ``u_axis`` made orthogonal to ``n`` and normalised; ``v = n x u``,
so that ``(u, v, n)`` is right-handed. Pixel ``(iv, iu)`` (row along ``v``, column along
``u``) covers ``[(iu - nu/2) du, (iu + 1 - nu/2) du) x [(iv - nv/2) dv, (iv + 1 - nv/2) dv)``
around ``center``.

:func:`compare_projections` compares two images with GATE's SPECT test metrics.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, DataError
from gansim.io.atomic import atomic_path, check_writable
from gansim.sim.actors.base import Actor, RunContext
from gansim.sim.actors.phsp import check_source_option, check_sources, per_run_path, split_suffix
from gansim.sim.actors.windows import ALL_ENERGIES, EnergyWindow, parse_energy_windows, window_weights
from gansim.sim.particles import ParticleBatch
from gansim.units import deg

__all__ = ["ProjectionActor", "compare_projections", "DEFAULT_ACCEPTANCE_ANGLE", "IMAGE_SUFFIXES"]

#: Default collimator acceptance (half-angle of the cone of accepted directions), rad.
#: A low-energy high-resolution (LEHR) collimator has holes about 1.1-1.5 mm wide and
#: 24-35 mm long: no straight line through a hole is steeper than atan(d/L) ~ 2.5-2.6 deg,
#: and the transmission falls to zero towards that angle. A sharp cone of 2 deg accepts a
#: fraction (1 - cos a)/2 ~ 3.0e-4 of isotropic photons, the order of LEHR geometric
#: efficiencies (~2e-4 counts per emitted photon), so it gives realistic count levels.
DEFAULT_ACCEPTANCE_ANGLE = 2.0 * deg

#: Image formats the actor writes in one file (so they can be published atomically).
#: ``.mhd`` is refused: its voxels live in a companion ``.raw`` that the header names, so a
#: temporary header cannot be renamed without breaking that link; ``.mha`` is the same
#: MetaImage format in one file.
IMAGE_SUFFIXES: tuple[str, ...] = (".mha", ".nii", ".nii.gz", ".nrrd")


# --------------------------------------------------------------------------- argument checks


def _vector3(actor: str, key: str, value: Any) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        v = None
    if v is None or v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ConfigError(f"actor {actor!r}: {key}={value!r}: expected 3 finite numbers (x, y, z)")
    return v


def _unit(actor: str, key: str, value: Any) -> np.ndarray:
    v = _vector3(actor, key, value)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ConfigError(f"actor {actor!r}: {key}={value!r}: expected a non-zero vector")
    return v / norm


def _pair(actor: str, key: str, value: Any, *, integer: bool) -> tuple[Any, Any]:
    kind = Integral if integer else Real
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"actor {actor!r}: {key}={value!r}: expected two {'whole numbers' if integer else 'numbers'} (along u, along v)")
    out = []
    for x in value:
        ok = isinstance(x, kind) and not isinstance(x, bool) and math.isfinite(float(x)) and x > 0
        if not ok:
            what = "whole numbers >= 1 (pixels)" if integer else "finite numbers > 0 (mm)"
            raise ConfigError(f"actor {actor!r}: {key}={value!r}: expected two {what}")
        out.append(int(x) if integer else float(x))
    return out[0], out[1]


def _image_suffix(actor: str, output: str | Path) -> str:
    if not isinstance(output, (str, Path)) or not str(output):
        raise ConfigError(f"actor {actor!r}: output={output!r}: expected an image file name such as 'projection.mha'")
    suffix = split_suffix(output)[1].lower()
    if suffix == ".mhd":
        raise ConfigError(
            f"actor {actor!r}: output={str(output)!r}: .mhd keeps its voxels in a separate .raw file and cannot be written "
            "atomically; use .mha (the same MetaImage format in a single file)"
        )
    if suffix not in IMAGE_SUFFIXES:
        raise ConfigError(f"actor {actor!r}: output={str(output)!r}: expected an image file ending in {', '.join(IMAGE_SUFFIXES)}")
    return suffix


# --------------------------------------------------------------------------- the actor


class ProjectionActor(Actor):
    """Projections of the particles on a detector behind an ideal parallel-hole collimator.

    Args:
        name: the actor's name.
        center: (3,) mm, centre of the detector rectangle (a point of the detector plane).
        normal: (3,) direction from the detector plane towards the object (normalised here).
        u_axis: (3,) direction of the image columns' axis (made orthogonal to ``normal``).
        size: ``(nu, nv)`` pixels along u and v.
        spacing: ``(du, dv)`` mm.
        acceptance_angle: rad, ``0 < a < pi/2``: largest angle between a photon's direction
            and the holes (along ``-normal``) that the collimator lets through.
        windows: energy windows, as for :class:`~gansim.sim.actors.windows.EnergyWindowsActor`
            (default one window ``"all"``).
        output: optional image file; :meth:`finalize` writes one per run,
            ``<stem>_run<k><suffix>`` (``.mha``, ``.nii``, ``.nii.gz``, ``.nrrd``; ``.mhd``
            is refused, see :data:`IMAGE_SUFFIXES`).
        sources: names of the sources to project (default all).

    A photon at ``p`` moving along ``d`` is detected when ``-d.n >= cos(acceptance_angle)``,
    its line reaches the plane ahead of it, ``s = ((center - p).n) / (d.n) > 0``, and the
    crossing point ``p + s d`` lies on the detector rectangle.

    results: ``{"images": [(n_windows, nv, nu) float64 summed weights, per run],
    "windows": [labels], "detected": [summed weight of the photons that reach the detector
    (whatever their energy), per run], "geometry": {...}, "files": [written paths]}``.
    """

    def __init__(
        self,
        name: str,
        *,
        center: Sequence[float],
        normal: Sequence[float],
        u_axis: Sequence[float] = (1.0, 0.0, 0.0),
        size: Sequence[int] = (128, 128),
        spacing: Sequence[float] = (4.42, 4.42),
        acceptance_angle: float = DEFAULT_ACCEPTANCE_ANGLE,
        windows: Sequence[Sequence[Any]] | Mapping[str, Sequence[Any]] | None = None,
        output: str | Path | None = None,
        sources: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name)
        self.center = _vector3(name, "center", center)
        self.normal = _unit(name, "normal", normal)
        u = _vector3(name, "u_axis", u_axis)
        u = u - float(u @ self.normal) * self.normal  # Gram-Schmidt
        # a u_axis (nearly) along the normal leaves no usable in-plane direction
        if float(np.linalg.norm(u)) <= 1e-9 * max(1.0, float(np.linalg.norm(u_axis))):
            raise ConfigError(f"actor {name!r}: u_axis={u_axis!r} is parallel to normal={normal!r}; expected a direction in the detector plane")
        self.u = u / np.linalg.norm(u)
        self.v = np.cross(self.normal, self.u)
        self.size = _pair(name, "size", size, integer=True)
        self.spacing = _pair(name, "spacing", spacing, integer=False)
        if isinstance(acceptance_angle, bool) or not isinstance(acceptance_angle, Real) or not 0.0 < float(acceptance_angle) < math.pi / 2:
            raise ConfigError(f"actor {name!r}: acceptance_angle={acceptance_angle!r}: expected an angle in rad with 0 < a < pi/2 (e.g. 2 * deg)")
        self.acceptance_angle = float(acceptance_angle)
        try:
            self.windows: list[EnergyWindow] = parse_energy_windows(windows) if windows is not None else list(ALL_ENERGIES)
        except ConfigError as err:
            raise ConfigError(f"actor {name!r}: windows: {err}") from None
        self.output = Path(output) if output is not None else None
        self.suffix = _image_suffix(name, output) if output is not None else ""
        self.sources = check_source_option(name, sources)
        self._recorded: set[str] = set()
        self._path: Path | None = None
        self._force = False
        self._image: torch.Tensor | None = None
        self._detected = 0.0
        self._published: list[Path] = []
        self.results = self._empty_results()

    # -- geometry ---------------------------------------------------------------------------
    def origin(self) -> np.ndarray:
        """(3,) mm: world position of the centre of pixel (iv, iu) = (0, 0)."""
        (nu, nv), (du, dv) = self.size, self.spacing
        return self.center + (0.5 - nu / 2) * du * self.u + (0.5 - nv / 2) * dv * self.v

    def direction_matrix(self) -> np.ndarray:
        """(3, 3): columns u, v, n (the image axes in the world frame)."""
        return np.stack([self.u, self.v, self.normal], axis=1)

    def geometry(self) -> dict[str, Any]:
        return {
            "center": self.center.tolist(),
            "normal": self.normal.tolist(),
            "u": self.u.tolist(),
            "v": self.v.tolist(),
            "size": list(self.size),
            "spacing": list(self.spacing),
            "acceptance_angle_rad": self.acceptance_angle,
            "origin": self.origin().tolist(),
            "direction": self.direction_matrix().tolist(),
        }

    def _empty_results(self) -> dict[str, Any]:
        return {"images": [], "windows": [w[0] for w in self.windows], "detected": [], "geometry": self.geometry(), "files": []}

    def hits(self, position: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which particles the detector sees, and where.

        Args:
            position: (m, 3) mm.
            direction: (m, 3) unit vectors.

        Returns:
            ``detected`` (m,) bool and ``pixel`` (m,) int64 flat index ``iv * nu + iu``
            (meaningful where detected), on the inputs' device (CPU for MPS, which has no float64).
        """
        device = position.device if position.device.type != "mps" else torch.device("cpu")
        p = position.to(device=device, dtype=torch.float64)
        d = direction.to(device=device, dtype=torch.float64)

        def const(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float64, device=device)

        c, n, u, v = const(self.center), const(self.normal), const(self.u), const(self.v)
        dn = d @ n
        # cos(angle to the holes, along -n); a < pi/2 so accepted photons have dn < 0 (no division by 0)
        accepted = -dn >= math.cos(self.acceptance_angle)
        s = ((c - p) @ n) / torch.where(accepted, dn, torch.full_like(dn, -1.0))
        accepted &= s > 0  # the plane is ahead, not behind
        rel = p + s.unsqueeze(1) * d - c
        (nu, nv), (du, dv) = self.size, self.spacing
        fu = (rel @ u) / du + nu / 2
        fv = (rel @ v) / dv + nv / 2
        detected = accepted & (fu >= 0) & (fu < nu) & (fv >= 0) & (fv < nv)
        iu = torch.where(detected, fu, torch.zeros_like(fu)).floor().long().clamp_(0, nu - 1)
        iv = torch.where(detected, fv, torch.zeros_like(fv)).floor().long().clamp_(0, nv - 1)
        return detected, iv * nu + iu

    # -- hooks ------------------------------------------------------------------------------
    def initialize(self, context: RunContext) -> None:
        self._recorded = set(check_sources(self.name, self.sources, context))
        self._force = bool(context.force)
        self._published = []
        self.results = self._empty_results()
        if self.output is not None:
            self._path = context.resolve(self.output)
            for run_id in range(len(context.intervals)):
                check_writable(per_run_path(self._path, run_id), self._force)

    def begin_run(self, run_id: int, interval: tuple[float, float]) -> None:
        self._image = None  # allocated on the first batch's device
        self._detected = 0.0

    def process(self, batch: ParticleBatch) -> None:
        if batch.source not in self._recorded or len(batch) == 0:
            return
        missing = [k for k in ("KineticEnergy", "Weight", *(f"Pre{w}_{a}" for w in ("Position", "Direction") for a in "XYZ")) if k not in batch.columns]
        if missing:
            raise DataError(f"actor {self.name!r}: a batch of source {batch.source!r} has no column {', '.join(repr(m) for m in missing)}")
        detected, pixel = self.hits(batch.position(), batch.direction())
        device = detected.device
        energy = batch.columns["KineticEnergy"].to(device)
        weight = batch.columns["Weight"].to(device)
        (nu, nv), n_windows = self.size, len(self.windows)
        if self._image is None:
            self._image = torch.zeros(n_windows * nv * nu, dtype=torch.float64, device=device)
        self._detected += float(weight[detected].to(torch.float64).sum())
        per_window = window_weights(energy[detected], weight[detected], self.windows)  # (n_windows, k)
        offsets = torch.arange(n_windows, device=device).unsqueeze(1) * (nv * nu)
        index = (offsets + pixel[detected].unsqueeze(0)).reshape(-1)
        self._image.index_add_(0, index.to(self._image.device), per_window.reshape(-1).to(self._image.device))

    def end_run(self, run_id: int) -> None:
        (nu, nv), n_windows = self.size, len(self.windows)
        if self._image is None:
            stack = np.zeros((n_windows, nv, nu), dtype=np.float64)
        else:
            stack = self._image.reshape(n_windows, nv, nu).cpu().numpy()
        self.results["images"].append(stack)
        self.results["detected"].append(self._detected)
        self._image = None

    def finalize(self) -> None:
        """Write one image per run; all appear together or (on an error) none."""
        if self._path is None:
            return
        import SimpleITK as sitk

        paths = [per_run_path(self._path, k) for k in range(len(self.results["images"]))]
        with contextlib.ExitStack() as stack:
            # every image goes to a temporary file first; they are renamed onto their targets
            # only when all were written (ExitStack unwinds the atomic_path blocks in turn)
            for path, image in zip(paths, self.results["images"]):
                tmp = stack.enter_context(atomic_path(path, force=self._force, suffix=self.suffix))
                sitk.WriteImage(self._sitk_image(image), str(tmp))
        self._published = paths
        self.results["files"] = [str(p) for p in paths]

    def _sitk_image(self, stack: np.ndarray) -> Any:
        """A 3-D SimpleITK image (nu, nv, n_windows) with the detector's spacing, origin and direction."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(stack)  # array (z, y, x) = (window, v, u)
        image.SetSpacing((self.spacing[0], self.spacing[1], 1.0))
        image.SetOrigin(tuple(float(x) for x in self.origin()))
        image.SetDirection(tuple(float(x) for x in self.direction_matrix().reshape(-1)))  # row-major, columns u, v, n
        return image

    def abort(self) -> None:
        """Remove the images this simulation published (temporary files are already gone)."""
        for path in self._published:
            path.unlink(missing_ok=True)
        self._published = []
        self._image = None


# --------------------------------------------------------------------------- comparison


def compare_projections(a: Any, b: Any) -> dict[str, float]:
    """GATE's SPECT test metrics between an image ``a`` and a reference ``b`` (same shape).

    Returns:
        ``sum_difference`` = (sum a - sum b) / sum b: relative difference of the counts.
        ``sad`` = 100 * sum |a / sum a - b / sum b|: sum of absolute differences, in percent,
        between the images each normalised to unit sum (0 for equal shapes, 200 for disjoint
        ones). GATE divides both by their number of events and then by sum b; normalising each
        to unit sum compares the shapes only, whatever the number of events, the count
        level being compared by ``sum_difference``.
        ``sum_a``, ``sum_b``: the sums.

    Raises:
        DataError: shapes differ, non-finite values, or a sum that is zero.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise DataError(f"compare_projections: the images have shapes {x.shape} and {y.shape}; expected equal shapes")
    for label, arr in (("a", x), ("b", y)):
        if not np.all(np.isfinite(arr)):
            raise DataError(f"compare_projections: image {label} holds NaN or infinite values")
    sum_a, sum_b = float(x.sum()), float(y.sum())
    if sum_a == 0.0 or sum_b == 0.0:
        raise DataError(f"compare_projections: image {'a' if sum_a == 0.0 else 'b'} sums to zero; cannot normalise it")
    return {
        "sum_difference": (sum_a - sum_b) / sum_b,
        "sad": float(np.abs(x / sum_a - y / sum_b).sum()) * 100.0,
        "sum_a": sum_a,
        "sum_b": sum_b,
    }
