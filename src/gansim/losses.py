r"""Adversarial losses on logits and discriminator regularisers, shared by every GAN family.

All losses take raw critic/discriminator outputs ("logits", any shape, usually ``(n,)`` or
``(n, 1)``) and return a 0-dim tensor.  ``mean`` is over every element.

Adversarial losses (``D`` = discriminator loss, ``G`` = generator loss, ``r`` = real logits,
``f`` = fake logits):

==================  ==========================================  ===================
kind                D                                           G
==================  ==========================================  ===================
``wasserstein``     -mean(r) + mean(f)                          -mean(f)
``hinge``           mean(relu(1 - r)) + mean(relu(1 + f))       -mean(f)
``non_saturating``  mean(softplus(-r)) + mean(softplus(f))      mean(softplus(-f))
``lsgan``           0.5 mean((r - 1)^2) + 0.5 mean(f^2)         0.5 mean((f - 1)^2)
==================  ==========================================  ===================

* wasserstein: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN".
* hinge: Lim & Ye 2017 "Geometric GAN"; Miyato et al. 2018 (SN-GAN).
* non_saturating: Goodfellow et al. 2014; it is binary cross-entropy on logits,
  ``softplus(-r) = -log sigmoid(r)`` and ``softplus(f) = -log(1 - sigmoid(f))``, which stays
  finite for any finite logit.
* lsgan: Mao et al. 2017, "Least Squares Generative Adversarial Networks" (a=0, b=c=1).

Gradient penalties (:func:`gradient_penalty`), with ``g = d critic(x).sum() / dx`` flattened per
sample and ``||.||`` the chosen norm (L1: sum|g|, L2: sqrt(sum g^2 + 1e-12), Linf: max|g|):

* ``two_sided``:    mean((||g|| - 1)^2) on random interpolates (Gulrajani et al. 2017, WGAN-GP).
* ``one_sided``:    mean(relu(||g|| - 1)) on interpolates (gaga-phsp ``GP_*_Hinge``).
* ``zero_centred``: mean(||g||_2^2) on interpolates (gaga-phsp ``GP_0GP``; Thanh-Tung et al. 2019).
* ``square_hinge``: mean(relu(||g||_2 - 1)^2) on interpolates (Petzka et al. 2018, WGAN-LP;
  gaga-phsp ``GP_SquareHinge``).
* ``r1``:           mean(||g||_2^2) on the real samples (Mescheder et al. 2018); the caller
  multiplies by ``gamma / 2``.
* ``none``:         a constant zero.

``norm`` only changes ``two_sided`` and ``one_sided``; the other penalties are defined with the
Euclidean norm.  Interpolates are ``eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per
row.

Other regularisers: :func:`clamp_weights_` (WGAN weight clipping, Arjovsky et al. 2017) and
:func:`drift_penalty` (``mean(r^2)``, the epsilon-drift term of Karras et al. 2018, progressive
GAN).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansim.errors import ConfigError

__all__ = [
    "ADVERSARIAL_LOSSES",
    "PENALTIES",
    "NORMS",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "clamp_weights_",
    "drift_penalty",
]

ADVERSARIAL_LOSSES: tuple[str, ...] = ("wasserstein", "hinge", "non_saturating", "lsgan")
PENALTIES: tuple[str, ...] = ("none", "two_sided", "one_sided", "zero_centred", "square_hinge", "r1")
NORMS: tuple[str, ...] = ("L1", "L2", "Linf")

#: Added under the square root of the L2 norm so that its gradient stays finite at g = 0.
_L2_TINY = 1e-12


def _check_choice(value: object, allowed: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError with a suggestion."""
    if isinstance(value, str) and value in allowed:
        return value
    listed = ", ".join(repr(a) for a in allowed)
    msg = f"unknown {what} {value!r}; allowed: {listed}"
    if isinstance(value, str):
        lowered = {a.lower(): a for a in allowed}
        close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.5)
        if close:
            msg += f" (did you mean {lowered[close[0]]!r}?)"
    raise ConfigError(msg)


def discriminator_loss(kind: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator (critic) loss to minimise.

    Args:
        kind: one of :data:`ADVERSARIAL_LOSSES`.
        real_logits: critic outputs on real samples, any shape (typically ``(n,)`` or ``(n, 1)``).
        fake_logits: critic outputs on generated samples, any shape.

    Returns:
        0-dim tensor.
    """
    kind = _check_choice(kind, ADVERSARIAL_LOSSES, "adversarial loss")
    if kind == "wasserstein":
        return fake_logits.mean() - real_logits.mean()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "non_saturating":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    # lsgan
    return 0.5 * (real_logits - 1.0).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def generator_loss(kind: str, fake_logits: Tensor) -> Tensor:
    """Generator loss to minimise.

    Args:
        kind: one of :data:`ADVERSARIAL_LOSSES`.
        fake_logits: critic outputs on generated samples, any shape.

    Returns:
        0-dim tensor.
    """
    kind = _check_choice(kind, ADVERSARIAL_LOSSES, "adversarial loss")
    if kind in ("wasserstein", "hinge"):
        return -fake_logits.mean()
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    # lsgan
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


def _norm(g: Tensor, norm: str) -> Tensor:
    """Per-row norm of ``g`` of shape ``(n, k)`` -> ``(n,)``."""
    if norm == "L1":
        return g.abs().sum(dim=1)
    if norm == "Linf":
        return g.abs().amax(dim=1)
    return torch.sqrt(g.pow(2).sum(dim=1) + _L2_TINY)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    kind: str,
    norm: str = "L2",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Gradient penalty on the critic (see the module docstring for the formulas).

    Args:
        critic: maps a batch ``(n, ...)`` to logits (any shape; they are summed).
        real: real samples, ``(n, d)``, ``(n, c, h, w)``, ``(n, c, d, h, w)``...
        fake: generated samples, same shape as ``real`` (ignored by ``r1`` and ``none``).
            Detached inside, so no gradient reaches the generator.
        kind: one of :data:`PENALTIES`.
        norm: one of :data:`NORMS`; used by ``two_sided`` and ``one_sided`` only.
        generator: random generator for the interpolation weights ``eps`` of shape
            ``(n, 1, ..., 1)``; must live on ``real.device``.

    Returns:
        0-dim tensor (float32 at least), differentiable w.r.t. the critic's parameters (``create_graph=True``);
        for ``none`` a constant zero that does not require grad. Under mixed precision the
        penalty is computed in float32 with autocast off: its second derivatives would lose
        too much in 16 bits (and an fp16 gradient norm overflows easily).
    """
    kind = _check_choice(kind, PENALTIES, "gradient penalty")
    norm = _check_choice(norm, NORMS, "gradient-penalty norm")
    real, fake = _at_least_float32(real), _at_least_float32(fake)
    if kind == "none":
        return torch.zeros((), device=real.device, dtype=real.dtype)
    with torch.autocast(device_type=real.device.type, enabled=False):
        return _penalty(critic, real, fake, kind, norm, generator)


def _at_least_float32(t: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32 and float64 stay as they are."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def _penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, kind: str, norm: str, generator: torch.Generator | None) -> Tensor:
    """:func:`gradient_penalty` on float32 inputs, autocast off."""
    real_d = real.detach()
    if kind == "r1":
        x = real_d.clone()
    else:
        if fake.shape != real.shape:
            raise ValueError(
                f"gradient_penalty: real and fake must have the same shape, got "
                f"{tuple(real.shape)} and {tuple(fake.shape)}"
            )
        fake_d = fake.detach().to(device=real.device, dtype=real.dtype)
        eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
        x = eps * real_d + (1.0 - eps) * fake_d
    x.requires_grad_(True)

    with torch.enable_grad():
        out = critic(x)
        (grad,) = torch.autograd.grad(outputs=out.sum(), inputs=x, create_graph=True)
        g = grad.reshape(grad.shape[0], -1)

        if kind == "two_sided":
            return (_norm(g, norm) - 1.0).pow(2).mean()
        if kind == "one_sided":
            return F.relu(_norm(g, norm) - 1.0).mean()
        if kind == "square_hinge":
            return F.relu(_norm(g, "L2") - 1.0).pow(2).mean()
        # zero_centred (interpolates) and r1 (reals): squared Euclidean norm
        return g.pow(2).sum(dim=1).mean()


@torch.no_grad()
def clamp_weights_(module: nn.Module, lower: float, upper: float) -> None:
    """Clamp every parameter of ``module`` into ``[lower, upper]`` in place (WGAN weight clipping)."""
    if not lower <= upper:
        raise ConfigError(f"clamp_weights_: lower bound {lower} is above upper bound {upper}")
    for p in module.parameters():
        p.clamp_(lower, upper)


def drift_penalty(real_logits: Tensor) -> Tensor:
    """Epsilon-drift penalty ``mean(real_logits^2)`` (progressive GAN); any shape -> 0-dim."""
    return real_logits.pow(2).mean()
