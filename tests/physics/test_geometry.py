"""ImageGeometry against SimpleITK's own index -> physical point transform."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from gansim.errors import ConfigError
from gansim.physics.geometry import ImageGeometry, rotation_matrix


def _oblique_image() -> sitk.Image:
    image = sitk.Image([7, 5, 4], sitk.sitkFloat32)
    image.SetSpacing([1.5, 2.0, 3.5])
    image.SetOrigin([-12.0, 30.0, 7.5])
    direction = rotation_matrix([1.0, 2.0, -0.5], 0.7)
    image.SetDirection(direction.reshape(-1).tolist())
    return image


def test_index_to_world_matches_simpleitk_for_an_oblique_anisotropic_image() -> None:
    image = _oblique_image()
    geometry = ImageGeometry.from_sitk(image)
    rng = np.random.default_rng(0)
    index = rng.uniform(-0.5, 6.5, size=(50, 3)) * np.array([1.0, 4.0 / 6.0, 3.0 / 6.0])
    expected = np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in i)) for i in index])
    assert np.allclose(geometry.index_to_world(index), expected, atol=1e-9)
    assert np.allclose(geometry.world_to_index(expected), index, atol=1e-9)


def test_placement_moves_the_image_frame_rigidly() -> None:
    image = _oblique_image()
    rot = rotation_matrix("z", np.pi / 6)
    shift = np.array([100.0, -20.0, 5.0])
    placed = ImageGeometry.from_sitk(image, translation=shift, rotation=rot)
    index = np.array([[0.0, 0.0, 0.0], [6.0, 4.0, 3.0], [2.5, 1.0, 0.25]])
    header = np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(i)) for i in index])
    assert np.allclose(placed.index_to_world(index), header @ rot.T + shift, atol=1e-9)
    # distances between voxels are kept, and the corners are the outer voxel edges
    corners = placed.corners()
    assert corners.shape == (8, 3)
    span = np.linalg.norm(corners[7] - corners[0])
    assert np.isclose(span, np.linalg.norm(np.array([7, 5, 4]) * np.array([1.5, 2.0, 3.5])))


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ConfigError, match="spacing"):
        ImageGeometry((2, 2, 2), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="orthonormal"):
        ImageGeometry((2, 2, 2), np.ones(3), direction=np.ones((3, 3)))
    with pytest.raises(ConfigError, match="shape"):
        ImageGeometry((2, 2), np.ones(3))
    with pytest.raises(ConfigError, match="axis"):
        rotation_matrix("w", 1.0)
