"""Tests of gansim.losses against hand computations (plain python / numpy formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gansim.errors import ConfigError
from gansim.losses import (
    ADVERSARIAL_LOSSES,
    NORMS,
    PENALTIES,
    clamp_weights_,
    discriminator_loss,
    drift_penalty,
    generator_loss,
    gradient_penalty,
)

REAL = [0.5, -1.0, 2.0, 0.0]
FAKE = [-0.5, 1.5, -2.0, 0.25]


def _t(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------- adversarial losses


def _expected_d(kind: str, r: list[float], f: list[float]) -> float:
    if kind == "wasserstein":
        return -_mean(r) + _mean(f)
    if kind == "hinge":
        return _mean(max(0.0, 1 - x) for x in r) + _mean(max(0.0, 1 + x) for x in f)
    if kind == "non_saturating":
        return _mean(_softplus(-x) for x in r) + _mean(_softplus(x) for x in f)
    assert kind == "lsgan"
    return 0.5 * _mean((x - 1) ** 2 for x in r) + 0.5 * _mean(x**2 for x in f)


def _expected_g(kind: str, f: list[float]) -> float:
    if kind in ("wasserstein", "hinge"):
        return -_mean(f)
    if kind == "non_saturating":
        return _mean(_softplus(-x) for x in f)
    assert kind == "lsgan"
    return 0.5 * _mean((x - 1) ** 2 for x in f)


def test_constants():
    assert ADVERSARIAL_LOSSES == ("wasserstein", "hinge", "non_saturating", "lsgan")
    assert PENALTIES == ("none", "two_sided", "one_sided", "zero_centred", "square_hinge", "r1")
    assert NORMS == ("L1", "L2", "Linf")


def test_hand_numbers():
    # written-out values for the fixed tensors above
    r, f = _t(REAL), _t(FAKE)
    assert discriminator_loss("wasserstein", r, f).item() == pytest.approx(-0.375 + (-0.1875))
    # hinge: relu(1-r) = [0.5, 2, 0, 1] -> 0.875 ; relu(1+f) = [0.5, 2.5, 0, 1.25] -> 1.0625
    assert discriminator_loss("hinge", r, f).item() == pytest.approx(0.875 + 1.0625)
    # lsgan: (r-1)^2 = [0.25, 4, 1, 1] -> 1.5625 ; f^2 = [0.25, 2.25, 4, 0.0625] -> 1.640625
    assert discriminator_loss("lsgan", r, f).item() == pytest.approx(0.5 * 1.5625 + 0.5 * 1.640625)
    assert generator_loss("hinge", f).item() == pytest.approx(0.1875)
    # log(2) for zero logits
    z = torch.zeros(3)
    assert discriminator_loss("non_saturating", z, z).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert generator_loss("non_saturating", z).item() == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("kind", ADVERSARIAL_LOSSES)
@pytest.mark.parametrize("shape", [(4,), (4, 1), (2, 2)])
def test_discriminator_and_generator_loss(kind, shape):
    r, f = _t(REAL).reshape(shape), _t(FAKE).reshape(shape)
    d = discriminator_loss(kind, r, f)
    g = generator_loss(kind, f)
    assert d.dim() == 0 and g.dim() == 0
    assert d.item() == pytest.approx(_expected_d(kind, REAL, FAKE), rel=1e-12, abs=1e-12)
    assert g.item() == pytest.approx(_expected_g(kind, FAKE), rel=1e-12, abs=1e-12)


def test_non_saturating_is_bce_on_logits():
    r, f = _t(REAL), _t(FAKE)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bce = _mean(-math.log(sig(x)) for x in REAL) + _mean(-math.log(1 - sig(x)) for x in FAKE)
    assert discriminator_loss("non_saturating", r, f).item() == pytest.approx(bce, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_saturating_finite_for_huge_logits(dtype):
    big = torch.tensor([1e4, -1e4], dtype=dtype, requires_grad=True)
    other = torch.tensor([-1e4, 1e4], dtype=dtype, requires_grad=True)
    d = discriminator_loss("non_saturating", big, other)
    g = generator_loss("non_saturating", other)
    assert torch.isfinite(d) and torch.isfinite(g)
    # softplus(-1e4) = 0, softplus(1e4) = 1e4 -> d = (1e4 + 0)/2 + (0 + 1e4)/2 = 1e4 ; g = (1e4 + 0)/2
    assert d.item() == pytest.approx(1e4, rel=1e-6)
    assert g.item() == pytest.approx(5e3, rel=1e-6)
    (d + g).backward()
    assert torch.isfinite(big.grad).all() and torch.isfinite(other.grad).all()


def test_losses_are_differentiable():
    r = _t(REAL).requires_grad_(True)
    f = _t(FAKE).requires_grad_(True)
    discriminator_loss("wasserstein", r, f).backward()
    np.testing.assert_allclose(r.grad.numpy(), [-0.25] * 4)
    np.testing.assert_allclose(f.grad.numpy(), [0.25] * 4)


def test_drift_penalty():
    r = _t(REAL)
    assert drift_penalty(r).item() == pytest.approx(_mean(x * x for x in REAL))  # = 5.25/4
    assert drift_penalty(r).item() == pytest.approx(1.3125)
    assert drift_penalty(r.reshape(2, 2)).dim() == 0


# --------------------------------------------------------------------------- gradient penalties


class LinearCritic(nn.Module):
    """f(x) = w . flatten(x) + b: gradient w everywhere."""

    def __init__(self, w: list[float], shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.w + self.b


class QuadraticCritic(nn.Module):
    """f(x) = 0.5 * a * ||x||^2: gradient a * x (a = 1 by default)."""

    def __init__(self, a: float = 1.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * x.reshape(x.shape[0], -1).pow(2).sum(dim=1, keepdim=True)


def _vec_norm(v: np.ndarray, norm: str) -> float:
    if norm == "L1":
        return float(np.abs(v).sum())
    if norm == "Linf":
        return float(np.abs(v).max())
    return float(np.sqrt((v**2).sum()))


def _expected_penalty(kind: str, norm: str, grads: np.ndarray) -> float:
    """grads: (n, k) per-sample gradients."""
    if kind == "none":
        return 0.0
    if kind == "two_sided":
        return float(np.mean([(_vec_norm(g, norm) - 1) ** 2 for g in grads]))
    if kind == "one_sided":
        return float(np.mean([max(0.0, _vec_norm(g, norm) - 1) for g in grads]))
    if kind == "square_hinge":
        return float(np.mean([max(0.0, _vec_norm(g, "L2") - 1) ** 2 for g in grads]))
    assert kind in ("zero_centred", "r1")
    return float(np.mean([(g**2).sum() for g in grads]))


SHAPES = [(3, 4), (3, 2, 2, 2), (3, 2, 1, 2, 2)]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    real = torch.from_numpy(rng.normal(size=shape))
    fake = torch.from_numpy(rng.normal(size=shape))
    return real, fake


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", PENALTIES)
@pytest.mark.parametrize("w_scale", [0.2, 1.0])
def test_linear_critic_closed_form(shape, norm, kind, w_scale):
    k = int(np.prod(shape[1:]))
    w = (w_scale * np.linspace(-1.0, 1.5, k)).tolist()
    critic = LinearCritic(w, shape)
    real, fake = _data(shape)
    gp = gradient_penalty(critic, real, fake, kind=kind, norm=norm, generator=torch.Generator().manual_seed(1))
    assert gp.dim() == 0
    grads = np.tile(np.array(w), (shape[0], 1))
    assert gp.item() == pytest.approx(_expected_penalty(kind, norm, grads), rel=1e-9, abs=1e-9)


def test_linear_critic_written_numbers():
    # w = (3, -4): L1 = 7, L2 = 5, Linf = 4
    critic = LinearCritic([3.0, -4.0], (2, 2))
    real, fake = _data((2, 2))
    gp = lambda kind, norm="L2": gradient_penalty(critic, real, fake, kind=kind, norm=norm).item()  # noqa: E731
    assert gp("two_sided", "L1") == pytest.approx(36.0)
    assert gp("two_sided", "L2") == pytest.approx(16.0)
    assert gp("two_sided", "Linf") == pytest.approx(9.0)
    assert gp("one_sided", "L1") == pytest.approx(6.0)
    assert gp("one_sided", "L2") == pytest.approx(4.0)
    assert gp("one_sided", "Linf") == pytest.approx(3.0)
    assert gp("zero_centred") == pytest.approx(25.0)
    assert gp("square_hinge") == pytest.approx(16.0)
    assert gp("r1") == pytest.approx(25.0)
    assert gp("none") == 0.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", ["two_sided", "one_sided", "zero_centred", "square_hinge"])
def test_quadratic_critic_at_interpolates(shape, norm, kind):
    """Gradient of 0.5||x||^2 is x, so the penalty depends on eps; redraw eps with the same seed."""
    critic = QuadraticCritic()
    real, fake = _data(shape, seed=3)
    real = real * 0.5  # so that norms fall on both sides of 1
    gp = gradient_penalty(critic, real, fake, kind=kind, norm=norm, generator=torch.Generator().manual_seed(123))
    eps_shape = (shape[0],) + (1,) * (len(shape) - 1)
    eps = torch.rand(eps_shape, generator=torch.Generator().manual_seed(123), dtype=torch.float64).numpy()
    x_hat = eps * real.numpy() + (1 - eps) * fake.numpy()
    expected = _expected_penalty(kind, norm, x_hat.reshape(shape[0], -1))
    assert gp.item() == pytest.approx(expected, rel=1e-9)


def test_quadratic_eps_is_per_row():
    """With real = 1 and fake = 0 the interpolate is eps itself, constant along each row."""
    shape = (5, 2, 3)
    real, fake = torch.ones(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64)
    gp = gradient_penalty(QuadraticCritic(), real, fake, kind="zero_centred", generator=torch.Generator().manual_seed(7))
    eps = torch.rand((5, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64).numpy().ravel()
    assert gp.item() == pytest.approx(float(np.mean(6 * eps**2)), rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_r1_on_reals(shape):
    critic = QuadraticCritic(a=2.0)  # gradient 2x
    real, fake = _data(shape, seed=5)
    gp = gradient_penalty(critic, real, fake, kind="r1")
    g = 2.0 * real.numpy().reshape(shape[0], -1)
    assert gp.item() == pytest.approx(float(np.mean((g**2).sum(axis=1))), rel=1e-12)
    # r1 ignores fake entirely, even its shape
    gp2 = gradient_penalty(critic, real, torch.zeros(1), kind="r1")
    assert gp2.item() == pytest.approx(gp.item(), rel=1e-12)


def test_same_seed_same_penalty_different_seed_differs():
    critic = QuadraticCritic()
    real, fake = _data((8, 3), seed=2)
    a = gradient_penalty(critic, real, fake, kind="two_sided", generator=torch.Generator().manual_seed(0))
    b = gradient_penalty(critic, real, fake, kind="two_sided", generator=torch.Generator().manual_seed(0))
    c = gradient_penalty(critic, real, fake, kind="two_sided", generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item()
    assert a.item() != c.item()


def test_none_penalty():
    critic = LinearCritic([1.0, 2.0], (2, 2))
    real = torch.ones(2, 2, dtype=torch.float64)
    gp = gradient_penalty(critic, real, real, kind="none")
    assert gp.dim() == 0 and gp.item() == 0.0
    assert not gp.requires_grad
    assert gp.device == real.device and gp.dtype == real.dtype


def test_penalty_gradient_matches_closed_form():
    # two_sided L2 with linear critic: P = (||w|| - 1)^2, dP/dw = 2 (||w|| - 1) w / ||w||; dP/db = 0
    w = [3.0, -4.0]
    critic = LinearCritic(w, (2, 2))
    real, fake = _data((2, 2))
    gradient_penalty(critic, real, fake, kind="two_sided").backward()
    expected = [2 * (5 - 1) * wi / 5 for wi in w]
    np.testing.assert_allclose(critic.w.grad.numpy(), expected, rtol=1e-9)
    assert critic.b.grad is None or float(critic.b.grad) == 0.0


@pytest.mark.parametrize("kind", ["two_sided", "one_sided", "zero_centred", "square_hinge", "r1"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_reach_critic_not_generator(kind, shape):
    torch.manual_seed(0)
    k = int(np.prod(shape[1:]))
    critic = nn.Sequential(nn.Flatten(), nn.Linear(k, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        critic[3].weight.mul_(20.0)  # gradient norms above 1, so the hinge penalties are active
    producer = nn.Linear(2, k)
    fake = producer(torch.randn(shape[0], 2)).reshape(shape)  # non-leaf, requires grad
    real = torch.randn(shape)  # does not require grad
    gp = gradient_penalty(critic, real, fake, kind=kind, norm="L2", generator=torch.Generator().manual_seed(0))
    assert gp.requires_grad
    gp.backward()
    for name in ("1.weight", "1.bias", "3.weight"):
        grad = dict(critic.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name
    assert float(dict(critic.named_parameters())["3.weight"].grad.abs().sum()) > 0
    for p in producer.parameters():
        assert p.grad is None


def test_real_requiring_grad_is_not_touched():
    critic = QuadraticCritic()
    real = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    for kind in ("r1", "two_sided"):
        gradient_penalty(critic, real, fake, kind=kind).backward()
    assert real.grad is None and fake.grad is None
    assert critic.a.grad is not None


def test_l2_finite_gradient_at_zero():
    critic = LinearCritic([0.0, 0.0], (3, 2))
    real, fake = _data((3, 2))
    gp = gradient_penalty(critic, real, fake, kind="two_sided", norm="L2")
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    gp.backward()
    assert torch.isfinite(critic.w.grad).all()


def test_works_under_no_grad():
    critic = QuadraticCritic()
    real, fake = _data((4, 2))
    with torch.no_grad():
        gp = gradient_penalty(critic, real, fake, kind="r1")
    assert gp.item() == pytest.approx(float(np.mean((real.numpy() ** 2).sum(axis=1))))


def test_shape_mismatch():
    critic = QuadraticCritic()
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, torch.zeros(3, 2), torch.zeros(3, 4), kind="two_sided")


# --------------------------------------------------------------------------- weight clipping


def test_clamp_weights():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Linear(16, 1))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(10.0)
    before = [p.detach().clone() for p in m.parameters()]
    clamp_weights_(m, -0.01, 0.02)
    for p, b in zip(m.parameters(), before):
        assert float(p.detach().min()) >= -0.01 and float(p.detach().max()) <= 0.02
        expected = np.clip(b.numpy(), -0.01, 0.02)
        np.testing.assert_array_equal(p.detach().numpy(), expected)
        assert p.requires_grad  # still a trainable parameter
    # in place: same parameter objects, optimizer keeps working
    assert all(p is q for p, q in zip(m.parameters(), list(m.parameters())))


def test_clamp_weights_bad_bounds():
    with pytest.raises(ConfigError):
        clamp_weights_(nn.Linear(2, 2), 0.1, -0.1)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, bad, suggestion, allowed",
    [
        (lambda: discriminator_loss("hinje", torch.zeros(2), torch.zeros(2)), "hinje", "hinge", ADVERSARIAL_LOSSES),
        (lambda: generator_loss("wgan", torch.zeros(2)), "wgan", None, ADVERSARIAL_LOSSES),
        (lambda: generator_loss("non-saturating", torch.zeros(2)), "non-saturating", "non_saturating", ADVERSARIAL_LOSSES),
        (lambda: gradient_penalty(QuadraticCritic(), torch.zeros(2, 2), torch.zeros(2, 2), kind="two-sided"), "two-sided", "two_sided", PENALTIES),
        (lambda: gradient_penalty(QuadraticCritic(), torch.zeros(2, 2), torch.zeros(2, 2), kind="zero_centered"), "zero_centered", "zero_centred", PENALTIES),
        (lambda: gradient_penalty(QuadraticCritic(), torch.zeros(2, 2), torch.zeros(2, 2), kind="two_sided", norm="l2"), "l2", "L2", NORMS),
        (lambda: gradient_penalty(QuadraticCritic(), torch.zeros(2, 2), torch.zeros(2, 2), kind="none", norm="L3"), "L3", None, NORMS),
    ],
)
def test_config_errors(call, bad, suggestion, allowed):
    with pytest.raises(ConfigError) as info:
        call()
    msg = str(info.value)
    assert repr(bad) in msg
    for name in allowed:
        assert repr(name) in msg
    if suggestion is not None:
        assert f"did you mean {suggestion!r}" in msg


def test_config_error_non_string_kind():
    with pytest.raises(ConfigError, match="allowed"):
        generator_loss(None, torch.zeros(2))  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gradient_penalty_is_float32_under_autocast(dtype: torch.dtype) -> None:
    """Under mixed precision the penalty (and its second derivatives) is computed in float32: the same value as without autocast."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    real, fake = torch.randn(32, 6), torch.randn(32, 6)
    with torch.autocast("cpu", dtype=dtype):
        mixed = gradient_penalty(critic, real.to(dtype), fake.to(dtype), kind="two_sided", generator=torch.Generator().manual_seed(3))
    assert mixed.dtype == torch.float32
    # the inputs were rounded to 16 bits, nothing else: the penalty of the rounded inputs without autocast
    rounded = gradient_penalty(critic, real.to(dtype).float(), fake.to(dtype).float(), kind="two_sided", generator=torch.Generator().manual_seed(3))
    assert torch.equal(mixed, rounded)
