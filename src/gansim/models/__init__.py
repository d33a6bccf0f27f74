"""GAN families: networks, objectives and loadable models, found by name in a registry.

``load_model(path)`` reads a model directory and returns the family's loaded
model (for phase space: :class:`~gansim.models.phsp_gan.PhaseSpaceModel`).
"""

from __future__ import annotations

from gansim.models.registry import FAMILIES, get_family, load_model, register_family

__all__ = ["FAMILIES", "get_family", "load_model", "register_family"]
