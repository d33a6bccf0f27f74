"""Medical images read through SimpleITK, as arrays in gansim's [i, j, k] index order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import DataError

__all__ = ["read_scalar_image"]


def read_scalar_image(path: str | Path, what: str) -> tuple[Any, np.ndarray]:
    """Read a 3-D scalar image with SimpleITK; return it and its array indexed [i, j, k].

    Args:
        path: any format SimpleITK reads (.mhd/.mha, .nii/.nii.gz, .nrrd...).
        what: what the image is ("CT image", "activity image"), for error messages.

    Returns:
        the ``SimpleITK.Image`` (its header gives the geometry) and its voxels as a NumPy
        array indexed [i, j, k] (ITK index order, not GetArrayFromImage's (z, y, x)).

    Raises:
        DataError: missing or unreadable file, not 3-D, or not one value per voxel.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: {what} file not found (expected a 3-D image SimpleITK reads: .mhd, .nii, .nii.gz, .nrrd)")
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unknown error"
        raise DataError(f"{p}: cannot read the {what} ({first}); expected a 3-D image SimpleITK reads (.mhd, .nii, .nii.gz, .nrrd)") from None
    if image.GetDimension() != 3:
        raise DataError(f"{p}: the {what} is {image.GetDimension()}-D (size {list(image.GetSize())}); expected a 3-D image")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(f"{p}: the {what} has {image.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar image")
    # GetArrayFromImage is indexed (z, y, x): transpose to gansim's [i, j, k]
    array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    return image, array
