"""gansim: generative adversarial networks that stand in for simulation steps.

The public entry points are small: :func:`gansim.load_model` opens a model
directory (safetensors weights + JSON manifest) and returns an object whose
``sample(n, cond=None, generator=None)`` gives rows in physical units.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
