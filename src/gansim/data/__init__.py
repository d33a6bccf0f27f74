"""Data for the GANs: invertible column transforms and built-in synthetic data sets.

* :mod:`gansim.data.transforms`: :class:`TablePipeline` turns a phase-space table
  (physical units) into the normalised float32 matrix a GAN trains on and back,
  on NumPy arrays or torch tensors; its steps are stored in a model file as JSON.
* :mod:`gansim.data.linac`: an analytic 6 MV-like linac photon phase space.
* :mod:`gansim.data.builtin`: named built-in data sets (``"linac"``).
"""

from __future__ import annotations

from gansim.data.builtin import BUILTIN_DATASETS, BuiltinDataset, make_builtin
from gansim.data.linac import LINAC_COLUMNS, generate_linac_phsp
from gansim.data.transforms import (
    TRANSFORM_KINDS,
    ClipTransform,
    ColumnTransform,
    LogTransform,
    TablePipeline,
    UnitVectorTransform,
    ZScoreTransform,
    direction_triplets,
    is_energy_column,
    transform_from_dict,
)

__all__ = [
    "ColumnTransform",
    "LogTransform",
    "ClipTransform",
    "UnitVectorTransform",
    "ZScoreTransform",
    "TablePipeline",
    "TRANSFORM_KINDS",
    "transform_from_dict",
    "is_energy_column",
    "direction_triplets",
    "generate_linac_phsp",
    "LINAC_COLUMNS",
    "BUILTIN_DATASETS",
    "BuiltinDataset",
    "make_builtin",
]
