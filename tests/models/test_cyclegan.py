"""The CycleGAN's objective, image pool and patch source in the one loop (tiny 3-D volumes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gansim.errors import DataError
from gansim.config import OptimizerSettings, TrainingSettings
from gansim.models.cyclegan import CycleGANObjective, CycleGenerators, CycleLossWeights, ImagePool, PatchCritics, VolumePatches
from gansim.training.loop import TrainingLoop


def _tiny_generator() -> nn.Module:
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.InstanceNorm3d(4, affine=True), nn.ReLU(), nn.Conv3d(4, 1, 3, padding=1), nn.Tanh())


def _tiny_critic() -> nn.Module:
    return nn.Sequential(nn.Conv3d(1, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv3d(4, 1, 3, padding=1))


def _volumes(n: int, seed: int, shape=(12, 10, 14)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(n):
        t1 = np.full(shape, -1.0, np.float32)
        t1[2:-2, 2:-2, 3:-3] = rng.uniform(0.2, 0.8)
        a.append(t1 + rng.normal(0, 0.02, shape).astype(np.float32))
        b.append(-t1 * 0.5 + rng.normal(0, 0.02, shape).astype(np.float32))  # a contrast inversion, co-registered
    return a, b


def test_image_pool_keeps_then_swaps_half() -> None:
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).reshape(4, 1)
    assert torch.equal(pool.query(first, gen), first) and len(pool.images) == 4
    new = torch.arange(2000.0) + 100
    returned = torch.cat([pool.query(new[i : i + 1].reshape(1, 1), gen) for i in range(2000)]).flatten()
    old = (returned != new).float().mean().item()  # about half are stored (older) images
    assert abs(old - 0.5) < 5 * (0.25 / 2000) ** 0.5
    state = pool.state_dict()
    other = ImagePool(1)
    other.load_state_dict(state, torch.device("cpu"))
    assert other.size == 4 and all(torch.equal(x, y) for x, y in zip(other.images, pool.images))


def test_paired_patches_share_their_place_and_unpaired_do_not() -> None:
    a, b = _volumes(3, 0)
    paired = VolumePatches(a, b, True, (8, 8, 8), 6, seed=1, device=torch.device("cpu"))
    x, y = paired.next_batch()
    assert x.shape == y.shape == (6, 1, 8, 8, 8)
    torch.testing.assert_close(y, -0.5 * x, atol=0.2, rtol=0)  # the same voxels of the co-registered pair
    small = VolumePatches([np.zeros((4, 20, 20), np.float32) - 1], [np.zeros((4, 20, 20), np.float32) - 1], True, (8, 8, 8), 2, seed=0, device=torch.device("cpu"))
    assert small.next_batch()[0].shape == (2, 1, 8, 8, 8)  # padded up to the patch
    with pytest.raises(Exception, match="same grid|share their grid"):
        VolumePatches([np.zeros((8, 8, 8))], [np.zeros((8, 8, 9))], True, (4, 4, 4), 1, 0, torch.device("cpu"))
    resumed = VolumePatches(a, b, True, (8, 8, 8), 6, seed=1, device=torch.device("cpu"))
    resumed.load_state_dict(paired.state_dict())
    torch.testing.assert_close(resumed.next_batch()[0], paired.next_batch()[0], rtol=0, atol=0)


def test_foreground_weighting() -> None:
    volume = np.full((40, 40, 40), -1.0, np.float32)
    volume[30:36, 30:36, 30:36] = 1.0  # a small bright cube in a large background
    patches = VolumePatches([volume], [volume], True, (8, 8, 8), 200, seed=0, device=torch.device("cpu"), foreground_fraction=0.9)
    a, _ = patches.next_batch()
    hit = (a.amax(dim=(1, 2, 3, 4)) > 0).float().mean().item()
    # at least the foreground-centred 90 % (minus 5 sigma) contain the cube; uniform patches rarely do
    assert hit > 0.9 - 5 * (0.09 / 200) ** 0.5


def test_foreground_weighting_follows_the_head_masks() -> None:
    """With the head masks given, the patches centre on them even where the scaled air lies above -0.95."""
    rng = np.random.default_rng(2)
    volume = rng.uniform(-1.0, -0.5, (40, 40, 40)).astype(np.float32)  # noisy air, mostly above the level fallback
    cube = np.zeros(volume.shape, bool)
    cube[30:36, 30:36, 30:36] = True
    volume[cube] = 1.0
    patches = VolumePatches([volume], [volume], True, (8, 8, 8), 200, seed=0, device=torch.device("cpu"), foreground_fraction=0.9,
                            masks_a=[cube], masks_b=[cube])
    a, _ = patches.next_batch()
    hit = (a.amax(dim=(1, 2, 3, 4)) > 0).float().mean().item()
    assert hit > 0.9 - 5 * (0.09 / 200) ** 0.5  # as with a clean background: the mask, not the level, decides
    with pytest.raises(DataError, match=r"foreground mask \(4, 4, 4\)"):
        VolumePatches([volume], [volume], True, (8, 8, 8), 2, seed=0, device=torch.device("cpu"), masks_a=[np.ones((4, 4, 4), bool)], masks_b=[cube])


def _loop(run_dir: Path, total_rows: int, *, paired: float = 0.0, scheduler: str = "none", amp: str = "off"):
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generators = CycleGenerators(_tiny_generator(), _tiny_generator())
    critics = PatchCritics(_tiny_critic(), _tiny_critic())
    a, b = _volumes(3, 0)
    patches = VolumePatches(a, b, True, (8, 8, 8), 2, seed=3, device=torch.device("cpu"))
    objective = CycleGANObjective(generators, critics, CycleLossWeights(paired=paired), torch.device("cpu"), seed=5, pool_size=3)
    train = TrainingSettings(total_rows=total_rows, batch_size=2, tick_rows=8, checkpoint_rows=10_000, progress=False, ema_halflife_rows=20, seed=0, amp=amp)
    optim = {name: OptimizerSettings(lr=2e-4, betas=(0.5, 0.999), scheduler=scheduler, decay_start=0.5) for name in ("G", "D")}
    return TrainingLoop(objective, patches, train, optim, run_dir, torch.device("cpu")), objective


@pytest.mark.parametrize("amp", ["off", "fp16"])
def test_resume_equals_uninterrupted_with_the_pool(tmp_path: Path, amp: str) -> None:
    """Weights, optimisers, the image pools and (fp16 autocast, here on the CPU) the gradient scalers resume exactly."""
    full, full_obj = _loop(tmp_path / "full", 40, amp=amp)
    full.run()
    first, _ = _loop(tmp_path / "split", 14, amp=amp)
    first.run()
    second, second_obj = _loop(tmp_path / "split", 40, amp=amp)
    second.run(resume=True)
    for name in ("G", "D"):
        for (key, x), y in zip(full_obj.networks[name].state_dict().items(), second_obj.networks[name].state_dict().values()):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=f"{name}.{key}")
    assert len(second_obj.pool_a.images) == 3
    for name, scaler in second.scalers.items():
        assert scaler.state_dict() == full.scalers[name].state_dict()


def test_losses_and_gradients(tmp_path: Path) -> None:
    loop, objective = _loop(tmp_path / "r", 4, paired=1.0)
    batch = loop.data.next_batch()
    loss, extra = objective.loss("G", batch, objective.networks)
    assert set(extra) == {"G/adversarial", "G/cycle", "G/identity", "G/paired_l1"}
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in objective.networks["G"].parameters())
    d_loss, d_extra = objective.loss("D", batch, objective.networks)
    d_loss.backward()
    assert all(p.grad is not None for p in objective.networks["D"].parameters()) and set(d_extra) == {"D/A", "D/B"}
    # the identity and cycle terms vanish for perfect translators: check the formula on a hand case
    weights = CycleLossWeights(loss="hinge")
    assert weights.cycle == 10.0 and weights.identity == 0.5


def test_checkpointed_generators_give_the_same_gradients() -> None:
    torch.manual_seed(1)
    g1, g2 = _tiny_generator(), _tiny_generator()
    plain, ckpt = CycleGenerators(g1, g2), CycleGenerators(g1, g2, checkpointing=True)
    a, b = torch.randn(1, 1, 8, 8, 8), torch.randn(1, 1, 8, 8, 8)
    grads = []
    for gens in (plain, ckpt):
        gens.zero_grad()
        out = gens(a, b)
        sum(v.sum() for v in out.values()).backward()
        grads.append([p.grad.clone() for p in gens.parameters()])
    for x, y in zip(*grads):
        torch.testing.assert_close(x, y)
