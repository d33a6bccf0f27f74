"""A trained 3-D CycleGAN as a model file, and translating whole volumes with it.

The model directory holds both generators' weights (safetensors; the EMA of the training run's
generators when one was kept) and a JSON manifest: family ``cyclegan``, the network settings,
whether the model was trained on paired data, the intensity scaling (per volume, foreground
percentiles), each domain's typical scaling, and the sliding-window settings. Loading reads only
those two files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.errors import ConfigError, ModelFileError
from gansim.models.cyclegan_config import InferenceSettings
from gansim.models.cyclegan_nets import VolumeNetSettings, build_generator
from gansim.models.model_file import architecture_settings, load_network_tensors, network_tensors, save_model_dir
from gansim.models.registry import register_family

__all__ = ["CycleGANModel", "save_cyclegan", "DIRECTIONS"]

#: translation directions and the generator each uses
DIRECTIONS = {"A2B": "g_ab", "B2A": "g_ba"}


def save_cyclegan(path: str | Path, g_ab: torch.nn.Module, g_ba: torch.nn.Module, settings: VolumeNetSettings, *, paired: bool, percentiles: tuple[float, float],
                  domain_scaling: dict[str, Any], inference: InferenceSettings, window: tuple[int, int, int], extra: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write both generators and the manifest as a model directory."""
    manifest: dict[str, Any] = {
        "family": "cyclegan",
        "architecture": {"generator": f"gansim 3-D CycleGAN ({settings.generator} generator, PatchGAN critics)", **settings.model_dump(mode="json")},
        "paired": bool(paired),
        "domains": {"A": "e.g. T1w (trainA)", "B": "e.g. T2w (trainB)"},
        "intensity": {"mode": "percentile per volume", "percentiles": list(percentiles), "domains": domain_scaling},
        "inference": {**inference.model_dump(mode="json"), "window": list(window)},
    }
    manifest.update(extra or {})
    return save_model_dir(path, manifest, {**network_tensors("g_ab", g_ab), **network_tensors("g_ba", g_ba)}, force=force)


@register_family("cyclegan")
class CycleGANModel:
    """A trained translator: ``translate(volume, 'A2B' | 'B2A')``."""

    def __init__(self, generators: dict[str, torch.nn.Module], settings: VolumeNetSettings, manifest: dict[str, Any], device: torch.device) -> None:
        self.generators = {k: g.to(device).eval().requires_grad_(False) for k, g in generators.items()}
        self.settings, self.manifest, self.device = settings, manifest, device
        try:
            self.inference = InferenceSettings.model_validate({k: v for k, v in manifest["inference"].items() if k != "window"})
            self.window = tuple(int(w) for w in manifest["inference"]["window"])
            self.percentiles = tuple(float(p) for p in manifest["intensity"]["percentiles"])
            self.domain_scaling = dict(manifest["intensity"]["domains"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"manifest lacks or has a bad inference/intensity entry ({err})") from err

    @classmethod
    def from_model_dir(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device, source: str = "model") -> CycleGANModel:
        settings = architecture_settings(manifest, VolumeNetSettings, source, "CycleGAN")
        generators = {}
        for name in DIRECTIONS.values():
            net = build_generator(settings)
            load_network_tensors(net, tensors, name, source)
            generators[name] = net
        try:
            return cls(generators, settings, manifest, device)
        except ModelFileError as err:
            raise ModelFileError(f"{source}: {err}") from err

    def translate(self, data: np.ndarray, direction: str = "A2B", *, window: tuple[int, int, int] | None = None, overlap: float | None = None,
                  sw_batch_size: int | None = None, output_scaling: Any = None, source: str = "volume") -> np.ndarray:
        """Translate a volume ``(X, Y, Z)`` (canonical frame, physical intensities); returns it in the output's intensities.

        The input is scaled by its own percentiles (:class:`~gansim.io.volumes.VolumeScaling`); the output takes the input's range
        back (``inference.output_scale='input'``) or the target domain's typical one ('domain'), or ``output_scaling``
        when given (a :class:`~gansim.io.volumes.VolumeScaling`; e.g. a paired target's own, to score in its units).
        """
        from gansim.io.volumes import VolumeScaling
        from gansim.models.volume_inference import translate_volume

        if direction not in DIRECTIONS:
            raise ConfigError(f"direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
        scaling = VolumeScaling.fit(data, percentiles=self.percentiles, source=source)
        scaled = scaling.forward(np.asarray(data, dtype=np.float32))
        out = translate_volume(self.generators[DIRECTIONS[direction]], scaled, window or self.window,
                               overlap=self.inference.overlap if overlap is None else overlap,
                               sw_batch_size=sw_batch_size or self.inference.sw_batch_size, device=self.device, source=source)
        if output_scaling is not None:
            scaling = output_scaling
        elif self.inference.output_scale == "domain":
            target = "B" if direction == "A2B" else "A"
            scaling = VolumeScaling.from_dict(self.domain_scaling[target], source=f"{source}: manifest intensity.domains.{target}")
        return scaling.inverse(out).astype(np.float32)
