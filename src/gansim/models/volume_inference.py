"""Whole-volume translation by Gaussian-blended sliding windows (MONAI's inferer), in bounded memory.

A volume of any shape is translated window by window: each window (the training patch size, a
shape the network accepts) goes through the generator, and overlapping outputs are blended with
a Gaussian weight that falls off towards the window's edges, where a fully convolutional network
sees the least context. The volume is padded with its background value so windows fit, and the
padding is cut off after. Memory is bounded by the windows in flight (``sw_batch_size``) and the
output volume, not by the volume's size through the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from gansim.errors import ConfigError, DataError

__all__ = ["translate_volume"]


@torch.inference_mode()
def translate_volume(network: Callable[[torch.Tensor], torch.Tensor], volume: np.ndarray, window: Sequence[int], *, overlap: float = 0.5,
                     sw_batch_size: int = 1, device: torch.device | str = "cpu", background: float | None = None, source: str = "volume") -> np.ndarray:
    """Translate a volume ``(X, Y, Z)`` already scaled to the network's range; returns ``(X, Y, Z)`` float32 (on the CPU).

    Args:
        network: maps ``(B, 1, *window)`` to ``(B, 1, *window)``.
        volume: the input in the network's intensity scale.
        window: the sliding window's shape (each axis a size the network accepts).
        overlap: fraction of a window shared with its neighbour along each axis (0 ≤ overlap < 1).
        sw_batch_size: windows per forward pass.
        device: where the network runs; the blended output is accumulated on the CPU.
        background: the value used to pad the borders (default: the volume's minimum).
    """
    from monai.inferers import sliding_window_inference

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise DataError(f"{source}: expected a 3-D volume, got shape {volume.shape}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap {overlap}: expected 0 <= overlap < 1")
    window = tuple(int(w) for w in window)
    if len(window) != 3 or min(window) < 1:
        raise ConfigError(f"window {window}: expected three positive sizes")
    fill = float(volume.min()) if background is None else float(background)
    x = torch.from_numpy(volume.copy())[None, None]

    def predictor(windows: torch.Tensor) -> torch.Tensor:
        result = network(windows)
        # the inferer weights its predictions in place: an output sharing the input's memory must be copied first
        return result.clone() if result.data_ptr() == windows.data_ptr() else result

    out = sliding_window_inference(x, window, sw_batch_size, predictor, overlap=overlap, mode="gaussian", padding_mode="constant",
                                   cval=fill, sw_device=torch.device(device), device=torch.device("cpu"))
    return out[0, 0].float().numpy()
