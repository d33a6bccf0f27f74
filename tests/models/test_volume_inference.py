"""Sliding-window translation of whole volumes (MONAI's Gaussian-blended inferer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gansim.models.volume_inference import translate_volume


@pytest.mark.parametrize("shape", [(17, 23, 9), (8, 8, 8), (31, 20, 26)])
def test_identity_network_gives_the_volume_back(shape: tuple[int, int, int]) -> None:
    volume = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = translate_volume(lambda x: x, volume, (8, 8, 8), overlap=0.5)
    assert out.shape == shape
    np.testing.assert_allclose(out, volume, rtol=0, atol=1e-5)  # a weighted mean of one value, everywhere


def test_a_pointwise_network_is_exact_and_windows_do_not_matter() -> None:
    volume = np.random.default_rng(1).uniform(-1, 1, size=(20, 13, 17)).astype(np.float32)
    out = translate_volume(lambda x: torch.tanh(2 * x + 0.3), volume, (8, 8, 8), overlap=0.25, sw_batch_size=3)
    np.testing.assert_allclose(out, np.tanh(2 * volume + 0.3), rtol=0, atol=1e-5)


def test_a_convolution_matches_the_whole_volume_pass_inside() -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(1, 1, 3, padding=1)
    volume = np.random.default_rng(2).normal(size=(24, 24, 24)).astype(np.float32)
    with torch.no_grad():
        whole = conv(torch.from_numpy(volume)[None, None])[0, 0].numpy()
    out = translate_volume(conv, volume, (12, 12, 12), overlap=0.5)
    # windows cut the 3-voxel receptive field only within one voxel of their borders; the Gaussian
    # weights those voxels least, so the blend stays close to the whole-volume pass away from the volume's border
    inner = (slice(1, -1),) * 3
    assert np.abs(out[inner] - whole[inner]).mean() < 0.05 * np.abs(whole[inner]).mean()


def test_bad_arguments() -> None:
    with pytest.raises(Exception, match="3-D"):
        translate_volume(lambda x: x, np.zeros((4, 4)), (4, 4, 4))
    with pytest.raises(Exception, match="overlap"):
        translate_volume(lambda x: x, np.zeros((4, 4, 4)), (4, 4, 4), overlap=1.0)
