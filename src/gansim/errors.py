"""Exceptions with messages a physicist can act on (which file, which key, what was expected)."""

from __future__ import annotations

__all__ = ["GansimError", "DataError", "ConfigError", "ModelFileError", "TrainingDivergedError", "OutputExistsError"]


class GansimError(Exception):
    """Base class of every error gansim raises on purpose."""


class DataError(GansimError, ValueError):
    """Input data is missing, malformed, truncated or holds invalid values (NaN, wrong shape...)."""


class ConfigError(GansimError, ValueError):
    """A configuration key or value is unknown or out of its allowed set."""


class ModelFileError(GansimError, ValueError):
    """A model file or checkpoint is missing, corrupt, unsafe or of an unknown version."""


class TrainingDivergedError(GansimError, RuntimeError):
    """A loss or gradient became NaN/Inf; the last good checkpoint is kept."""


class OutputExistsError(GansimError, FileExistsError):
    """An output already exists and ``force`` was not given."""
