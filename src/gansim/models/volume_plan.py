"""Which input shapes a CycleGAN configuration accepts, and how much memory it needs: computed, not guessed.

The Keras 3-D CycleGAN left both as a TODO ("guess and check" the input shape, out-of-memory on
anything below 32 GB). Here both come from the networks themselves:

- **Valid shapes.** :func:`shape_rule` builds the generator (with one channel per layer: widths
  do not change spatial sizes) and pushes empty batches ``(0, C, *shape)`` through its layers
  (``forward_unchecked``: without the input guard, which would only echo the rule back), which makes
  every layer check and compute its output shape without arithmetic. Along each axis the sizes
  ``1, 2, …`` are tried until four pass with output shape == input shape; they must be the
  consecutive multiples of their greatest common divisor, so the rule "a multiple of ``m``, at
  least ``n_min``" is a measured fact. The critic's smallest input is found the same way.
  :func:`pad_to_multiple` / :func:`unpad` pad any volume to a valid shape and cut the result back.
- **Memory.** :func:`memory_plan` adds up parameters, gradients, optimiser state, the generators'
  EMA copy, the batch, the image pools and the activations one training step keeps for the
  backward pass. Those are measured: a dry run of the real objective
  (:class:`gansim.models.cyclegan.CycleGANObjective`, both phases, forward only, batch 1) with
  :func:`torch.autograd.graph.saved_tensors_hooks` recording every distinct storage saved for
  backward. Activations of fully convolutional networks grow with the voxel count; rather than
  scaling one small dry run by the voxel ratio (which misjudges the padding layers at small
  shapes: 17 % too high from 16³ to 32³ for a width-8 ResNet), two small dry runs give each saved tensor's size along each
  axis as an affine function of the input's size, which is exact for convolutions, transposed
  convolutions and padding on valid shapes, and the sizes at the requested shape are summed.
  Inference memory is the peak of live tensors (module inputs and outputs) during one generator
  forward without gradients, tracked by module hooks and weak references, and extrapolated the same
  way, plus the layers' work buffers (what a convolution takes from the allocator beyond its input
  and output: oneDNN's reordered copies on the CPU, im2col columns, cuDNN workspaces): the
  allocator's peak in a profiled dry run minus the live tensors' peak, measured at the shape itself
  (kernels change with the sizes, so small dry runs do not tell) up to
  :data:`LAYER_BUFFER_DRY_RUN_VOXELS`, above that scaled from a dry run of that size.
- **Translation.** :func:`translation_memory` plans what ``gansim translate`` really does
  (:meth:`gansim.models.cyclegan_model.CycleGANModel.translate`: fit the intensity scaling, scale,
  Gaussian-blended sliding windows through MONAI's inferer, scale back): besides the parameters
  and one window batch's activations it counts every volume-sized buffer those steps allocate
  (the input, the scaling's float64 and float32 copies, the inferer's input copy, its padded copy,
  output map and count map), read off the code, phase by phase; the peak is the largest phase.
  The scaling's NumPy terms are checked against tracemalloc and MONAI's against PyTorch's
  allocator in the tests; on the CPU the whole is within 25 % of a fresh process's peak RSS growth
  (the rest: the library code a first forward maps in, and glibc's heap).

All sizes are in bytes; shapes are spatial ``(X, Y, Z)`` (or ``(X, Y)`` for 2-D networks).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gansim.errors import ConfigError, DataError
from gansim.models.cyclegan_nets import VolumeNetSettings, build_cyclegan_networks, build_discriminator, build_generator
from gansim.training.cpu_heap import VOLUME_MMAP_THRESHOLD

if TYPE_CHECKING:
    from gansim.models.cyclegan_config import CycleGANConfig

__all__ = ["ShapeRule", "ShapeOption", "shape_rule", "required_multiple", "pad_to_multiple", "unpad", "valid_shapes_near",
           "ActivationProfile", "measure_training_activations", "measure_inference_activations", "estimate_training_activations",
           "estimate_inference_activations", "measure_layer_buffers", "estimate_layer_buffers", "translation_memory", "memory_plan", "config_memory_plan",
           "format_plan", "OPTIMIZER_STATES", "TRANSLATION_TERMS", "TRANSLATION_PHASES", "LAYER_BUFFER_DRY_RUN_VOXELS"]

#: tensors of state an optimiser keeps per parameter (Adam: first and second moments)
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "rmsprop": 1, "sgd": 0}

Pads = tuple[tuple[int, int], ...]


# ---------------------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class ShapeRule:
    """Sizes a configuration accepts, per spatial axis.

    Attributes:
        multiple: each axis of a generator's input must be a multiple of this.
        minimum: and at least this (reflection padding needs a few voxels at the lowest resolution).
        critic_minimum: the smallest size for which the critic gives at least one logit (a training
            patch must also reach it).
    """

    multiple: tuple[int, ...]
    minimum: tuple[int, ...]
    critic_minimum: tuple[int, ...]

    def valid(self, shape: Sequence[int], *, training: bool = False) -> bool:
        """Whether the generators map ``shape`` to itself (and, with ``training``, the critic accepts it)."""
        floor = self.training_minimum if training else self.minimum
        return len(shape) == len(self.multiple) and all(n >= lo and n % m == 0 for n, m, lo in zip(shape, self.multiple, floor))

    @property
    def training_minimum(self) -> tuple[int, ...]:
        """The smallest valid size per axis that both the generators and the critic accept."""
        return tuple(_round_up(max(g, d), m) for g, d, m in zip(self.minimum, self.critic_minimum, self.multiple))


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _layers(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net``'s layers without its input guard: ``forward_unchecked`` where the network has one (the generators), else ``net``."""
    return getattr(net, "forward_unchecked", net)


def _runs(net: nn.Module, channels: int, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Output spatial shape of ``net``'s layers for an input of ``shape``, or None when a layer refuses it.

    The input is an empty batch ``(0, channels, *shape)``: every layer checks and computes its
    output shape, but no arithmetic is done. The layers run without the generators' input guard
    (:func:`_layers`): what is found is what the convolutions, paddings, norms and concatenations
    do, not what the guard says. A :class:`~gansim.errors.DataError` (a guard) is not a layer's
    refusal and is raised.
    """
    try:
        out = _layers(net)(torch.empty(0, channels, *shape))
    except DataError:
        raise
    except (RuntimeError, ValueError, IndexError):
        return None
    return tuple(out.shape[2:])


def _shape_only_norms(net: nn.Module) -> nn.Module:
    """Make ``net``'s norm layers shape-only for probing with an empty batch, keeping their checks.

    A norm layer keeps the shape; in training it refuses a single value per channel (instance
    norm: one spatial voxel; batch norm: one voxel in a batch of one), as ``F.instance_norm`` and
    ``F.batch_norm`` do.
    """

    def instance(x: torch.Tensor) -> torch.Tensor:
        if math.prod(x.shape[2:]) <= 1:
            raise ValueError(f"instance norm of a single voxel per channel: {tuple(x.shape)}")
        return x

    def batch(x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[0], 1) * math.prod(x.shape[2:]) <= 1:
            raise ValueError(f"batch norm of a single value per channel: {tuple(x.shape)}")
        return x

    for m in net.modules():
        if isinstance(m, nn.modules.instancenorm._InstanceNorm):
            m.forward = instance  # type: ignore[method-assign]
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = batch  # type: ignore[method-assign]
    return net


def _probe(ok: Callable[[int], bool], need: int = 4, cap: int = 4096) -> list[int]:
    """The first ``need`` sizes ``n = 1, 2, ...`` (at most ``cap``) for which ``ok(n)`` holds."""
    valid: list[int] = []
    n = 1
    while n <= cap and len(valid) < need:
        if ok(n):
            valid.append(n)
        n += 1
    return valid


def _rule_from_sizes(valid: list[int], axis: int, what: str) -> tuple[int, int]:
    """(multiple, minimum) from the first valid sizes of one axis, checked to be every multiple from the minimum on."""
    if len(valid) < 2:
        raise ConfigError(f"{what}: found no range of input sizes along axis {axis} that the network maps to themselves (valid: {valid})")
    multiple = functools.reduce(math.gcd, valid)
    if valid != list(range(valid[0], valid[-1] + 1, multiple)):
        raise ConfigError(f"{what}: the sizes it accepts along axis {axis} are not the multiples of {multiple} from {valid[0]} on ({valid}); "
                          "the planner cannot describe this network")
    return multiple, valid[0]


@functools.lru_cache(maxsize=64)
def _shape_rule_cached(settings_json: str) -> ShapeRule:
    settings = VolumeNetSettings.model_validate_json(settings_json)
    dims, channels = settings.spatial_dims, settings.channels
    # channel widths do not change spatial sizes: one channel per layer keeps the probe networks small
    thin = settings.model_copy(update={"width": 1, "d_width": 1})
    with torch.device("cpu"):
        generator = _shape_only_norms(build_generator(thin))
        critic = _shape_only_norms(build_discriminator(thin))
    what = f"generator {settings.generator!r}"

    def gen_ok(shape: tuple[int, ...]) -> bool:
        return _runs(generator, channels, shape) == shape

    def critic_ok(shape: tuple[int, ...]) -> bool:
        out = _runs(critic, channels, shape)
        return out is not None and min(out) >= 1

    # sizes every axis accepts at once; then each axis alone, the others held at the smallest of those
    iso = _probe(lambda n: gen_ok((n,) * dims))
    if len(iso) < 2:
        raise ConfigError(f"{what}: no range of cubic input sizes passes through it unchanged (found {iso})")
    multiple, minimum = [], []
    for axis in range(dims):
        sizes = _probe(lambda n, a=axis: gen_ok(tuple(n if i == a else iso[0] for i in range(dims))))
        m, lo = _rule_from_sizes(sizes, axis, what)
        multiple.append(m)
        minimum.append(lo)
    # the critic: the smallest size along each axis that still gives a logit (critics accept any size above it)
    c_iso = _probe(lambda n: critic_ok((n,) * dims), need=1)
    if not c_iso:
        raise ConfigError(f"critic (d_layers={settings.d_layers}): no input size up to 4096 voxels a side gives a logit")
    critic_min = [_probe(lambda n, a=axis: critic_ok(tuple(n if i == a else c_iso[0] for i in range(dims))), need=1)[0] for axis in range(dims)]
    return ShapeRule(tuple(multiple), tuple(minimum), tuple(critic_min))


def shape_rule(settings: VolumeNetSettings) -> ShapeRule:
    """The sizes ``settings``' networks accept, found by shape-only forward passes (see the module docstring)."""
    return _shape_rule_cached(settings.model_dump_json())


def required_multiple(settings: VolumeNetSettings) -> tuple[int, ...]:
    """Each axis of a generator's input must be a multiple of this (``2**n_down`` for the built-in generators)."""
    return shape_rule(settings).multiple


def _as_tuple(value: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
    out = (int(value),) * n if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(out) != n or min(out) < 1:
        raise ConfigError(f"{what} {value!r}: expected {n} positive sizes")
    return out


def pad_to_multiple(x: torch.Tensor | np.ndarray, multiple: int | Sequence[int], mode: Literal["constant", "reflect", "replicate"] = "constant",
                    value: float = 0.0, minimum: int | Sequence[int] | None = None) -> tuple[torch.Tensor | np.ndarray, Pads]:
    """Pad the spatial axes of ``x`` so each is a multiple of ``multiple`` (and at least ``minimum``).

    Args:
        x: a tensor or array. With a sequence ``multiple`` its last ``len(multiple)`` axes are padded;
            with an int, every axis after the first two (a channels-first batch ``(B, C, *spatial)``).
        multiple: per padded axis (e.g. :func:`required_multiple`).
        mode: ``'constant'`` (with ``value``, e.g. the background), ``'reflect'`` or ``'replicate'``.
        minimum: optional smallest size per axis (e.g. :attr:`ShapeRule.minimum`).

    Returns:
        ``(padded, pads)`` with ``pads[i] = (before, after)`` voxels added to padded axis ``i``; the
        padding is split evenly (the extra voxel after), so the content stays centred.
    """
    if mode not in ("constant", "reflect", "replicate"):
        raise ConfigError(f"mode={mode!r}: expected 'constant', 'reflect' or 'replicate'")
    ndim = x.ndim
    n_axes = ndim - 2 if isinstance(multiple, (int, np.integer)) else len(multiple)
    if n_axes < 1 or n_axes > ndim:
        raise DataError(f"cannot pad {n_axes} spatial axes of an array of shape {tuple(x.shape)}")
    spatial = tuple(int(n) for n in x.shape[ndim - n_axes:])
    mult = _as_tuple(multiple, n_axes, "multiple")
    floor = _as_tuple(minimum, n_axes, "minimum") if minimum is not None else (1,) * n_axes
    pads: Pads = tuple(((t - n) // 2, (t - n) - (t - n) // 2) for n, m, lo in zip(spatial, mult, floor) for t in [_round_up(max(n, lo), m)])
    if not any(b or a for b, a in pads):
        return x, pads
    if mode == "reflect":
        bad = [(n, p) for n, p in zip(spatial, pads) if max(p) >= n]
        if bad:
            raise DataError(f"cannot reflect-pad an axis of {bad[0][0]} voxels by {max(bad[0][1])}; use mode='constant' or 'replicate'")
    if isinstance(x, np.ndarray):
        width = [(0, 0)] * (ndim - n_axes) + list(pads)
        np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
        kwargs = {"constant_values": value} if mode == "constant" else {}
        return np.pad(x, width, mode=np_mode, **kwargs), pads
    flat = [v for b, a in reversed(pads) for v in (b, a)]  # F.pad wants the last axis first
    if mode == "constant":
        return F.pad(x, flat, mode="constant", value=value), pads
    # reflect/replicate pad (N, C, *spatial) with at most 3 spatial axes: view x that way
    lead = x.shape[: ndim - n_axes]
    y = x.reshape(1, -1, *spatial) if n_axes <= 3 else None
    if y is None:
        raise DataError(f"{mode} padding supports at most 3 spatial axes, got {n_axes}")
    y = F.pad(y, flat, mode=mode)
    return y.reshape(*lead, *y.shape[2:]), pads


def unpad(y: torch.Tensor | np.ndarray, pads: Pads) -> torch.Tensor | np.ndarray:
    """Cut ``pads`` (as :func:`pad_to_multiple` returned them) off the last ``len(pads)`` axes of ``y``."""
    n_axes = len(pads)
    if n_axes > y.ndim:
        raise DataError(f"pads for {n_axes} axes do not fit an array of shape {tuple(y.shape)}")
    index: list[slice] = [slice(None)] * (y.ndim - n_axes)
    for n, (before, after) in zip(y.shape[y.ndim - n_axes:], pads):
        if before < 0 or after < 0 or before + after >= n:
            raise DataError(f"pads {pads} do not fit shape {tuple(y.shape)}")
        index.append(slice(before, n - after))
    return y[tuple(index)]


@dataclass(frozen=True)
class ShapeOption:
    """A valid shape near a requested one.

    Attributes:
        shape: the valid shape.
        pads: per axis ``(before, after)`` voxels to add (negative: to crop) to go from the
            requested shape to this one, centred as :func:`pad_to_multiple` does.
        kind: ``'exact'`` (already valid), ``'pad'`` (every axis at or above) or ``'crop'`` (every axis at or below).
    """

    shape: tuple[int, ...]
    pads: Pads
    kind: str

    @property
    def voxels(self) -> int:
        return math.prod(self.shape)


def valid_shapes_near(shape: Sequence[int], settings: VolumeNetSettings, k: int = 3, *, training: bool = False) -> list[ShapeOption]:
    """The ``k`` nearest valid shapes at or above ``shape`` (nearest first), then up to ``k`` below it.

    The ``j``-th option above takes, on every axis, the ``j``-th valid size at or above the
    requested one; below likewise (while every axis still has one at or above the minimum).
    With ``training``, sizes must also suit the critic (a training patch).
    """
    rule = shape_rule(settings)
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    floor = rule.training_minimum if training else rule.minimum

    def option(target: tuple[int, ...]) -> ShapeOption:
        pads = tuple(((t - n) // 2, (t - n) - (t - n) // 2) if t >= n else (-((n - t) // 2), -((n - t) - (n - t) // 2)) for n, t in zip(shape, target))
        kind = "exact" if target == shape else ("pad" if all(t >= n for n, t in zip(shape, target)) else "crop")
        return ShapeOption(target, pads, kind)

    first_up = [_round_up(max(n, lo), m) for n, m, lo in zip(shape, rule.multiple, floor)]
    options = [option(tuple(u + j * m for u, m in zip(first_up, rule.multiple))) for j in range(k)]
    first_down = [(n - 1) // m * m for n, m in zip(shape, rule.multiple)]  # strictly below
    for j in range(k):
        target = tuple(d - j * m for d, m in zip(first_down, rule.multiple))
        if any(t < lo for t, lo in zip(target, floor)):
            break
        options.append(option(target))
    return options


# ---------------------------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class ActivationProfile:
    """The distinct tensors one dry run at input ``shape`` (batch 1) kept, in the order first seen.

    Attributes:
        shape: the dry run's input spatial shape.
        tensors: ``(bytes per element, shape)`` of each distinct storage (a view that does not cover
            its storage is recorded as the flat storage).
        events: for peaks of live memory, the indices of the tensors alive together after each new
            one appeared; empty for tensors saved for backward (all alive at once at the end of the forward).
    """

    shape: tuple[int, ...]
    tensors: tuple[tuple[int, tuple[int, ...]], ...]
    events: tuple[tuple[int, ...], ...] = ()

    def nbytes(self, sizes: Sequence[float] | None = None) -> int:
        """Total bytes (saved tensors) or peak bytes (live tensors), from per-tensor ``sizes`` in bytes (default: as measured)."""
        sizes = [item * math.prod(shape) for item, shape in self.tensors] if sizes is None else sizes
        if self.events:
            return math.ceil(max(sum(sizes[i] for i in event) for event in self.events))
        return math.ceil(sum(sizes))

    def same_structure(self, other: ActivationProfile) -> bool:
        return (len(self.tensors) == len(other.tensors) and self.events == other.events
                and all(a[0] == b[0] and len(a[1]) == len(b[1]) for a, b in zip(self.tensors, other.tensors)))


def _describe(t: torch.Tensor, nbytes: int) -> tuple[int, tuple[int, ...]]:
    item = t.element_size()
    return (item, tuple(int(n) for n in t.shape)) if t.numel() * item == nbytes else (item, (nbytes // item,))


class _SavedRecorder:
    """``saved_tensors_hooks`` pair that records each distinct storage saved for backward (``exclude``: storages counted elsewhere)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude, self.index = exclude, {}
        self.tensors: list[tuple[int, tuple[int, ...]]] = []

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes and ptr not in self.exclude and ptr not in self.index:
            self.index[ptr] = len(self.tensors)
            self.tensors.append(_describe(t, nbytes))
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def profile(self, shape: tuple[int, ...]) -> ActivationProfile:
        return ActivationProfile(shape, tuple(self.tensors))


class _LiveRecorder:
    """Distinct storages among module inputs and outputs, and which are alive together (module hooks + weak references)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.live: dict[int, int] = {}  # storage pointer -> tensor index
        self.tensors: list[tuple[int, tuple[int, ...]]] = []
        self.events: list[tuple[int, ...]] = []

    def _free(self, ptr: int, index: int) -> None:
        if self.live.get(ptr) == index:
            del self.live[ptr]

    def track(self, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes and ptr not in self.exclude and ptr not in self.live:
                index = len(self.tensors)
                self.tensors.append(_describe(value, nbytes))
                self.live[ptr] = index
                # the storage object lives as long as any view of it
                weakref.finalize(storage, self._free, ptr, index)
                self.events.append(tuple(sorted(self.live.values())))
        elif isinstance(value, (tuple, list)):
            for v in value:
                self.track(v)

    def profile(self, shape: tuple[int, ...]) -> ActivationProfile:
        return ActivationProfile(shape, tuple(self.tensors), tuple(self.events))


def _param_ptrs(*modules: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for m in modules for t in list(m.parameters()) + list(m.buffers())}


def _autocast(amp: bool, device: str) -> torch.autocast:
    # bfloat16, as the training loop's autocast; on the CPU it keeps the same layers in 2 bytes as on CUDA (convolutions)
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp)


def _dry_run_device(device: str | torch.device) -> str:
    dev = torch.device(device)
    if dev.type == "meta":
        raise ConfigError("device 'meta': dry runs need a device that holds data ('cpu', 'cuda', ...)")
    return str(dev)


@functools.lru_cache(maxsize=64)
def _training_profiles(settings_json: str, shape: tuple[int, ...], amp: bool, identity: bool, checkpointing: bool, device: str) -> dict[str, ActivationProfile]:
    """Dry run of both phases of the CycleGAN objective (forward only, batch 1); see :func:`measure_training_activations`."""
    from gansim.models.cyclegan import CycleGANObjective, CycleGenerators, CycleLossWeights, PatchCritics

    settings = VolumeNetSettings.model_validate_json(settings_json)
    with torch.device(device):
        nets = build_cyclegan_networks(settings, seed=0)
    generators = CycleGenerators(nets["G_AB"], nets["G_BA"], checkpointing=checkpointing)
    critics = PatchCritics(nets["D_A"], nets["D_B"])
    objective = CycleGANObjective(generators, critics, CycleLossWeights(identity=0.5 if identity else 0.0), torch.device(device), seed=0, pool_size=0)
    gen = torch.Generator().manual_seed(0)
    a = (torch.rand(1, settings.channels, *shape, generator=gen) * 2 - 1).to(device)
    b = (torch.rand(1, settings.channels, *shape, generator=gen) * 2 - 1).to(device)
    exclude = _param_ptrs(generators, critics) | {a.untyped_storage().data_ptr(), b.untyped_storage().data_ptr()}
    out: dict[str, ActivationProfile] = {}
    for phase, trained in (("G", generators), ("D", critics)):
        # as the training loop does: only the phase's network takes gradients
        generators.requires_grad_(trained is generators)
        critics.requires_grad_(trained is critics)
        recorder = _SavedRecorder(exclude)
        with torch.autograd.graph.saved_tensors_hooks(recorder.pack, recorder.unpack), _autocast(amp, device):
            loss, _ = objective.loss(phase, (a, b), objective.networks)
        del loss
        out[phase] = recorder.profile(shape)
    if checkpointing:
        # a checkpointed pass keeps only its input; the backward pass rebuilds one pass's activations at a time
        generators.requires_grad_(True)
        recorder = _SavedRecorder(_param_ptrs(generators))
        with torch.autograd.graph.saved_tensors_hooks(recorder.pack, recorder.unpack), _autocast(amp, device):
            y = nets["G_AB"](a.clone().requires_grad_(True))
        del y
        out["recompute"] = recorder.profile(shape)
    return out


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop log lines) for the block; Python errors still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _allocator_peak(run: Callable[[], None], device: str) -> int:
    """Peak bytes the device's allocator held above its level at the start while ``run()`` ran.

    CUDA: the allocator's own peak counter. CPU: the profiler's allocation events (every tensor
    and every buffer a kernel takes from PyTorch's CPU allocator, temporaries inside a layer
    included), summed in time order.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
        run()
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev) - start)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and str(e.device_type()).rsplit(".", 1)[-1].lower() == dev.type)
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


def _inference_run(settings_json: str, shape: tuple[int, ...], amp: bool, device: str, allocator: bool,
                   batch: int = 1) -> tuple[ActivationProfile, int | None]:
    """Dry run of one generator forward without gradients: its live tensors and, with ``allocator``, the
    allocator's peak during it (the input counted)."""
    settings = VolumeNetSettings.model_validate_json(settings_json)
    with torch.device(device):
        net = build_cyclegan_networks(settings, seed=0)["G_AB"].eval()
    recorder = _LiveRecorder(_param_ptrs(net))
    handles = [m.register_forward_pre_hook(lambda _m, args: recorder.track(args)) for m in net.modules()]
    handles += [m.register_forward_hook(lambda _m, _args, output: recorder.track(output)) for m in net.modules()]
    x = (torch.rand(batch, settings.channels, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)

    def forward() -> None:
        with torch.no_grad(), _autocast(amp, device):
            recorder.track(x)
            net(x)

    peak = None
    try:
        if allocator:
            peak = _allocator_peak(forward, device) + x.numel() * x.element_size()  # x was allocated before the count began
        else:
            forward()
    finally:
        for h in handles:
            h.remove()
    return recorder.profile(shape), peak


@functools.lru_cache(maxsize=64)
def _inference_profile(settings_json: str, shape: tuple[int, ...], amp: bool, device: str) -> ActivationProfile:
    """Dry run of one generator forward without gradients (batch 1); see :func:`measure_inference_activations`."""
    return _inference_run(settings_json, shape, amp, device, allocator=False)[0]


@functools.lru_cache(maxsize=16)
def _layer_buffers(settings_json: str, shape: tuple[int, ...], amp: bool, device: str, batch: int) -> int:
    """The allocator's peak during one generator forward of ``batch`` at ``shape`` minus the peak of its live tensors (>= 0)."""
    profile, peak = _inference_run(settings_json, shape, amp, device, allocator=True, batch=batch)
    return max(0, int(peak or 0) - profile.nbytes())


#: the largest dry run (voxels) that measures the layers' work buffers at the shape itself; above it they are
#: measured at a smaller shape of the same proportions and scaled with the voxel count
LAYER_BUFFER_DRY_RUN_VOXELS = 64**3


def measure_training_activations(settings: VolumeNetSettings, shape: Sequence[int], *, amp: bool = False, identity: bool = True,
                                 checkpointing: bool = False, device: str | torch.device = "cpu") -> dict[str, int]:
    """Bytes saved for backward by one CycleGAN training step at ``shape`` with batch 1, by a dry run on ``device``.

    Runs the objective's generator phase (``G_AB``, ``G_BA`` for fakes, reconstructions and, with
    ``identity``, identity images; both critics, frozen, on the fakes) and its critic phase (both
    critics on real and fake images) forward only, with random weights and inputs, and sums the
    bytes of every distinct storage saved for backward (views of one storage once; parameters and
    the input batch, counted elsewhere, not at all). With ``amp``, under bfloat16 autocast, as the
    training loop (the 16-bit weight copies convolutions save are then counted too). On the CPU a
    bfloat16 dry run is several times slower than a float32 one; a GPU ``device`` is fast and exact.

    Returns:
        ``{'G': bytes, 'D': bytes, 'peak': max of the two}`` (and ``'recompute'`` with
        ``checkpointing``: the activations of the one generator pass rebuilt at a time, included in ``'G'``).
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    if not rule.valid(shape, training=True):
        raise ConfigError(f"shape {shape}: not a valid training shape (multiples of {rule.multiple}, at least {rule.training_minimum})")
    found = {k: p.nbytes() for k, p in _training_profiles(settings.model_dump_json(), shape, amp, identity, checkpointing, _dry_run_device(device)).items()}
    if "recompute" in found:
        found["G"] += found["recompute"]
    found["peak"] = max(found["G"], found["D"])
    return found


def measure_inference_activations(settings: VolumeNetSettings, shape: Sequence[int], *, amp: bool = False, device: str | torch.device = "cpu") -> int:
    """Peak bytes of live tensors in one generator forward at ``shape``, batch 1, without gradients, by a dry run on ``device``.

    Live tensors are the input, the output and every module's inputs and outputs (each storage
    once, from when a hook first sees it until the tensor is freed); temporaries inside a single
    layer (e.g. a convolution's work buffers) are not seen.
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    if not rule.valid(shape):
        raise ConfigError(f"shape {shape}: not a valid generator input (multiples of {rule.multiple}, at least {rule.minimum})")
    return _inference_profile(settings.model_dump_json(), shape, amp, _dry_run_device(device)).nbytes()


def _extrapolated_sizes(p1: ActivationProfile, p2: ActivationProfile, target: tuple[int, ...]) -> list[float]:
    """Each tensor's bytes at ``target`` from its shapes in two dry runs.

    A tensor's trailing axes are its spatial axes (channels first); along each, a convolution,
    transposed convolution or padding makes the size an affine function of the input's size
    (``n / 2**level + offset`` for valid shapes), so two runs fix it. Leading axes (batch,
    channels) must agree; a tensor that does not fit this pattern is scaled with the voxel count.
    """
    dims = len(target)
    voxel_ratio = math.prod(target) / math.prod(p2.shape)
    sizes = []
    for (item, s1), (_, s2) in zip(p1.tensors, p2.tensors):
        if s1 == s2:
            sizes.append(float(item * math.prod(s1)))
        elif len(s1) > dims and s1[:-dims] == s2[:-dims] and all(r1 != r2 for r1, r2 in zip(p1.shape, p2.shape)):
            n = float(math.prod(s1[:-dims]))
            for a, (u, v) in enumerate(zip(s1[-dims:], s2[-dims:])):
                slope = (v - u) / (p2.shape[a] - p1.shape[a])
                n *= max(0.0, u + slope * (target[a] - p1.shape[a]))
            sizes.append(item * n)
        else:
            sizes.append(item * math.prod(s2) * voxel_ratio)
    return sizes


def _references(rule: ShapeRule, side: int, training: bool, critic_step: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two small valid shapes for the dry runs: the first with every axis at least ``side``, the second one step larger.

    The step is the generator's multiple (and, for training, also a multiple of the critic's
    ``2**d_layers``, so that the critic's layer sizes follow the same affine rule in both).
    """
    floor = rule.training_minimum if training else rule.minimum
    steps = [math.lcm(m, critic_step) if training else m for m in rule.multiple]
    r1 = tuple(_round_up(max(side, lo), st) for lo, st in zip(floor, steps))
    return r1, tuple(r + st for r, st in zip(r1, steps))


def _estimate(run: Callable[[tuple[int, ...]], dict[str, ActivationProfile]], target: tuple[int, ...], r1: tuple[int, ...],
              r2: tuple[int, ...]) -> tuple[dict[str, int], str, tuple[tuple[int, ...], ...]]:
    """Bytes of each of ``run``'s profiles at ``target``: measured there when it is no larger than ``r2``, else extrapolated from ``r1`` and ``r2``.

    Returns ``(bytes per profile, how they were found, the dry runs' shapes)``.
    """
    if math.prod(target) <= math.prod(r2):
        return {k: p.nbytes() for k, p in run(target).items()}, "measured", (target,)
    firsts, seconds = run(r1), run(r2)
    out, method = {}, "extrapolated per tensor and axis"
    for key, p2 in seconds.items():
        p1 = firsts[key]
        if p1.same_structure(p2):
            out[key] = p2.nbytes(_extrapolated_sizes(p1, p2, target))
        else:  # the dry runs kept different tensors: scale the larger one with the voxel count
            ratio = math.prod(target) / math.prod(p2.shape)
            out[key] = p2.nbytes([item * math.prod(s) * ratio for item, s in p2.tensors])
            method = "scaled with the voxel count"
    return out, method, (r1, r2)


def estimate_training_activations(settings: VolumeNetSettings, shape: Sequence[int], *, amp: bool = False, identity: bool = True,
                                  checkpointing: bool = False, reference_side: int = 16, device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`measure_training_activations` at ``shape`` without a dry run there: from two small dry runs when ``shape`` is larger.

    The dry runs are at the smallest valid training shape with every axis at least
    ``reference_side`` and at the next one; each saved tensor's size is extrapolated per axis
    (see :func:`_extrapolated_sizes`). Returns the bytes as :func:`measure_training_activations`
    does, plus ``method`` and ``references`` (the dry runs' shapes).
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    if not rule.valid(shape, training=True):
        raise ConfigError(f"shape {shape}: not a valid training shape (multiples of {rule.multiple}, at least {rule.training_minimum})")
    r1, r2 = _references(rule, reference_side, True, 2**settings.d_layers)
    key = settings.model_dump_json()
    dev = _dry_run_device(device)
    found, method, refs = _estimate(lambda s: _training_profiles(key, s, amp, identity, checkpointing, dev), shape, r1, r2)
    out: dict[str, Any] = dict(found)
    if "recompute" in out:
        out["G"] += out["recompute"]
    out["peak"] = max(out["G"], out["D"])
    out["method"], out["references"] = method, refs
    return out


def estimate_inference_activations(settings: VolumeNetSettings, shape: Sequence[int], *, amp: bool = False, reference_side: int = 16,
                                   device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`measure_inference_activations` at ``shape``, from two small dry runs when ``shape`` is larger.

    Returns ``{'peak': bytes, 'method': ..., 'references': the dry runs' shapes}``.
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    if not rule.valid(shape):
        raise ConfigError(f"shape {shape}: not a valid generator input (multiples of {rule.multiple}, at least {rule.minimum})")
    r1, r2 = _references(rule, reference_side, False, 1)
    key = settings.model_dump_json()
    dev = _dry_run_device(device)
    found, method, refs = _estimate(lambda s: {"peak": _inference_profile(key, s, amp, dev)}, shape, r1, r2)
    return {"peak": found["peak"], "method": method, "references": refs}


def measure_layer_buffers(settings: VolumeNetSettings, shape: Sequence[int], *, batch: int = 1, amp: bool = False,
                          device: str | torch.device = "cpu") -> int:
    """Bytes the layers of one generator forward of ``batch`` at ``shape`` (no gradients) take beyond its live tensors, by a dry run.

    The peak the allocator reaches during the forward (every tensor and every work buffer a kernel
    takes from PyTorch's allocator: oneDNN's reordered copies of a convolution's input, output and
    weights on the CPU, im2col columns, cuDNN workspaces) minus the peak of the module inputs and
    outputs that :func:`measure_inference_activations` sees. Which kernel a convolution uses, and so
    its buffers, depends on the sizes, so this is measured at the shape and not extrapolated from
    small ones; and at the batch, as kernels reuse some buffers from sample to sample.
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    if not rule.valid(shape):
        raise ConfigError(f"shape {shape}: not a valid generator input (multiples of {rule.multiple}, at least {rule.minimum})")
    if batch < 1:
        raise ConfigError(f"batch {batch}: expected >= 1")
    return _layer_buffers(settings.model_dump_json(), shape, amp, _dry_run_device(device), int(batch))


def estimate_layer_buffers(settings: VolumeNetSettings, shape: Sequence[int], *, batch: int = 1, amp: bool = False,
                           device: str | torch.device = "cpu", max_voxels: int = LAYER_BUFFER_DRY_RUN_VOXELS) -> dict[str, Any]:
    """:func:`measure_layer_buffers` at ``shape`` when the batch has at most ``max_voxels`` voxels, else at a valid shape of
    about that size and the same proportions, scaled with the voxel count.

    Returns ``{'bytes', 'probe': the dry run's shape, 'method'}``.
    """
    shape = _as_tuple(shape, settings.spatial_dims, "shape")
    rule = shape_rule(settings)
    probe = shape
    if batch * math.prod(shape) > max_voxels:
        f = (max_voxels / (batch * math.prod(shape))) ** (1 / len(shape))
        probe = tuple(max(lo, int(n * f) // m * m) for n, m, lo in zip(shape, rule.multiple, rule.minimum))
    found = measure_layer_buffers(settings, probe, batch=batch, amp=amp, device=device)
    if probe == shape:
        return {"bytes": found, "probe": probe, "method": "measured"}
    return {"bytes": math.ceil(found * math.prod(shape) / math.prod(probe)), "probe": probe, "method": "scaled with the voxel count"}


def _counts(settings: VolumeNetSettings) -> tuple[dict[str, int], int]:
    """Parameter counts of the four networks and the element count of one generator's buffers."""
    with torch.device("meta"):
        nets = build_cyclegan_networks(settings)
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    buffers = sum(b.numel() for b in nets["G_AB"].buffers())
    return counts, buffers


# ---------------------------------------------------------------------------------------------- translation
#: The terms of :func:`translation_memory`: what each buffer is, where the code allocates it, and its bytes per voxel.
#: "voxel" is a voxel of the volume as given; "padded voxel" one of the volume MONAI works on (each axis at least
#: the window's); "window voxel" one of a window.
TRANSLATION_TERMS: dict[str, str] = {
    "parameters": "both generators' float32 weights (CycleGANModel holds both directions)",
    "input_volume": "the float32 volume handed to CycleGANModel.translate, alive throughout: 4 B/voxel",
    "fit_float64_copy": "VolumeScaling.fit: float64 copy of the volume (_foreground_values): 8 B/voxel",
    "fit_clipped_copy": "foreground_mask: that copy clipped at its 99.9th percentile for Otsu's histogram, float64: 8 B/voxel",
    "fit_masks": "foreground_mask: the head mask, and binary_fill_holes' inverted mask, seed, output and int8 mask: 5 x 1 B/voxel",
    "forward_float64": "VolumeScaling.forward: the float64 product x * scale + offset (NumPy reuses the temporary in place): 8 B/voxel",
    "scaled_volume": "its float32 result, the scaled volume, kept until translate returns: 4 B/voxel",
    "inferer_input_copy": "translate_volume: the float32 copy handed to MONAI's sliding_window_inference: 4 B/voxel",
    "padded_input": "MONAI: a padded copy where the volume is smaller than the window along an axis: 4 B/padded voxel (else 0)",
    "output_map": "MONAI: the float32 output map (returned; a view of it is scaled back): 4 B/padded voxel",
    "count_map": "MONAI: the float32 count (summed importance weight) map: 4 B/padded voxel",
    "importance_map": "MONAI: the Gaussian importance weight of a window, float32: 4 B/window voxel",
    "window_activations": "one generator forward on a batch of windows without gradients: peak of its live tensors (dry runs)",
    "window_layer_buffers": "the work buffers its layers take beyond those tensors (oneDNN's reordered copies, im2col columns; a profiled dry run)",
    "previous_window_output": "MONAI: the previous window batch's weighted output, referenced until the next one is computed: 4 B/window voxel",
    "inverse_float64": "VolumeScaling.inverse: the float64 product: 8 B/voxel",
    "inverse_result": "its float32 result (then translate's astype copy, while the float64 product is already freed): 4 B/voxel",
}

#: The phases of CycleGANModel.translate, in order, and the terms alive together at each one's peak besides the
#: parameters and the input volume (alive throughout). The translation's peak is the largest phase.
TRANSLATION_PHASES: dict[str, tuple[str, ...]] = {
    "scaling fit": ("fit_float64_copy", "fit_clipped_copy", "fit_masks"),
    "scaling forward": ("forward_float64", "scaled_volume"),
    "sliding windows": ("scaled_volume", "inferer_input_copy", "padded_input", "output_map", "count_map", "importance_map", "window_activations",
                        "window_layer_buffers", "previous_window_output"),
    "scaling inverse": ("scaled_volume", "output_map", "inverse_float64", "inverse_result"),
}


def translation_memory(settings: VolumeNetSettings, shape: Sequence[int], window: Sequence[int] | None = None, *, sw_batch_size: int = 1,
                       reference_side: int = 16, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Memory of translating one volume of ``shape`` as :meth:`~gansim.models.cyclegan_model.CycleGANModel.translate` does, in bytes.

    The steps and what each allocates (read off the code; see :data:`TRANSLATION_TERMS`): the
    intensity scaling is fitted (:meth:`gansim.io.volumes.VolumeScaling.fit`: float64 copies and
    masks), the volume is scaled (a float64 product, a float32 result), translated by
    :func:`gansim.models.volume_inference.translate_volume` (a float32 copy for MONAI, which pads it
    where the volume is smaller than the window and allocates a float32 output map and count map
    of the padded size; then one window batch at a time through the generator) and scaled back
    (a float64 product, a float32 result). Parameters and the input volume are alive throughout;
    the other buffers of a step are freed before the next, so the peak is the parameters plus
    the input plus the largest phase (:data:`TRANSLATION_PHASES`). With a single window MONAI
    allocates its output and count maps after the window's forward pass, so then the phase holds
    the larger of the activations and those maps (with the window's output).

    Args:
        settings: the networks (a single-channel volume: ``settings.channels`` must be 1).
        shape: the volume's spatial shape ``(X, Y, Z)``, as given (any shape).
        window: the sliding window (a valid generator input); None: the whole volume padded to the
            nearest valid shape, as one window.
        sw_batch_size: windows per forward pass (a volume that fits one window makes a batch of one).
        reference_side, device: as for :func:`estimate_inference_activations` (the window's dry runs,
            in float32: ``translate`` runs without autocast).

    Returns:
        ``{'parts': {term: bytes, ..., 'total': bytes}, 'phases': {phase: bytes}, 'peak_phase': name,
        'window', 'padded_shape' (MONAI's), 'several_windows', 'method' and 'references' (the window's live-tensor dry runs),
        'buffers_method' and 'buffers_probe' (its layer buffers' dry run)}``.
        ``parts['total'] = parameters + input_volume + max(phases)``.

    Raises:
        ConfigError: a bad shape or window, ``sw_batch_size`` < 1, or more than one channel.
    """
    dims = settings.spatial_dims
    if dims != 3 or settings.channels != 1:
        raise ConfigError(f"translation plans single-channel 3-D volumes (spatial_dims 3, channels 1); got spatial_dims {dims}, channels {settings.channels}")
    shape = _as_tuple(shape, dims, "shape")
    if sw_batch_size < 1:
        raise ConfigError(f"sw_batch_size {sw_batch_size}: expected >= 1")
    rule = shape_rule(settings)
    win = valid_shapes_near(shape, settings, k=1)[0].shape if window is None else _as_tuple(window, dims, "window")
    if not rule.valid(win):
        near = ", ".join(str(o.shape) for o in valid_shapes_near(win, settings, k=2))
        raise ConfigError(f"window {win}: not a valid generator input (each axis a multiple of {rule.multiple} and at least {rule.minimum}); "
                          f"nearest valid: {near}")
    counts, _ = _counts(settings)
    found = estimate_inference_activations(settings, win, amp=False, reference_side=reference_side, device=device)
    # MONAI pads an axis shorter than the window up to the window (and only then); it slides over the rest
    padded = tuple(max(n, w) for n, w in zip(shape, win))
    voxels, padded_voxels, window_voxels = math.prod(shape), math.prod(padded), math.prod(win)
    several = padded != win
    per_forward = sw_batch_size if several else 1  # a single window makes a batch of one
    buffers = estimate_layer_buffers(settings, win, batch=per_forward, device=device)
    parts = {
        "parameters": 4 * (counts["G_AB"] + counts["G_BA"]),
        "input_volume": 4 * voxels,
        "fit_float64_copy": 8 * voxels,
        "fit_clipped_copy": 8 * voxels,
        "fit_masks": 5 * voxels,
        "forward_float64": 8 * voxels,
        "scaled_volume": 4 * voxels,
        "inferer_input_copy": 4 * voxels,
        "padded_input": 4 * padded_voxels if padded != shape else 0,
        "output_map": 4 * padded_voxels,
        "count_map": 4 * padded_voxels,
        "importance_map": 4 * window_voxels,
        "window_activations": found["peak"] * per_forward,
        "window_layer_buffers": buffers["bytes"],
        "previous_window_output": 4 * window_voxels * per_forward if several else 0,
        "inverse_float64": 8 * voxels,
        "inverse_result": 4 * voxels,
    }
    phases = {name: sum(parts[t] for t in terms) for name, terms in TRANSLATION_PHASES.items()}
    if not several:
        # one window: the output and count maps appear after its forward pass, beside the window's output only
        forward = parts["window_activations"] + parts["window_layer_buffers"]
        maps = parts["output_map"] + parts["count_map"] + 4 * window_voxels
        phases["sliding windows"] += max(forward, maps) - forward - parts["output_map"] - parts["count_map"]
    peak_phase = max(phases, key=lambda k: phases[k])
    parts["total"] = parts["parameters"] + parts["input_volume"] + phases[peak_phase]
    return {"parts": parts, "phases": phases, "peak_phase": peak_phase, "window": win, "padded_shape": padded, "several_windows": several,
            "method": found["method"], "references": found["references"], "buffers_method": buffers["method"], "buffers_probe": buffers["probe"]}


def memory_plan(settings: VolumeNetSettings, shape: Sequence[int], batch: int = 1, *, training: bool = True, amp: bool = False,
                optimizer: str = "adam", patch: Sequence[int] | None = None, momentum: bool = False, ema: bool = True,
                pool_size: int = 50, identity: bool = True, checkpointing: bool = False, reference_side: int = 16,
                device: str | torch.device = "cpu", window: Sequence[int] | None = None,
                cpu_mmap_threshold: int | None = VOLUME_MMAP_THRESHOLD) -> dict[str, Any]:
    """Memory of training a CycleGAN on volumes of ``shape`` and of translating one, in bytes.

    Args:
        settings: the networks.
        shape: the volumes' spatial shape; padded to the nearest valid shape for one forward pass on the whole
            volume (and for training when no ``patch`` is given); translated as given.
        batch: patches (volumes) per step; also the windows per forward in inference and translation.
        training: include the training step (else only inference; ``total`` is then the translation's).
        amp: bfloat16 autocast (16-bit activations where autocast uses them; 32-bit master weights).
            The dry runs then compute in bfloat16, which is slow on CPUs without native support
            (the default networks: about 4.5 min on one core of an AMD EPYC, against 12 s without
            ``amp``); ``device='cuda'`` makes them fast.
        optimizer: ``'adam'``/``'adamw'`` (2 states per parameter), ``'rmsprop'`` (1), ``'sgd'`` (0);
            ``momentum`` adds one for RMSprop and SGD.
        patch: training patch shape (must be valid for the generators and the critic).
        window: the sliding window of translation (a valid generator input); default ``patch`` (as
            ``inference.window: null`` means), else the whole volume padded to a valid shape as one window.
        ema: the training loop keeps an EMA copy of both generators.
        pool_size: images kept per domain by the image pool.
        identity: the identity terms are on (two more generator passes).
        checkpointing: generator passes are recomputed in the backward pass (see ``CycleGenerators``).
        reference_side: activations are measured by dry runs at the smallest valid shape with every
            axis at least this and the next one (or at the shape itself when it is no larger) and
            extrapolated to the shape.
        device: where the dry runs run (the CPU by default; a GPU is faster, exact for its own
            kernels, and much faster with ``amp``).
        cpu_mmap_threshold: the training's ``train.cpu_mmap_threshold`` (see
            :mod:`gansim.training.cpu_heap`); None: training on the CPU leaves glibc's heap as it is,
            which keeps freed blocks beyond what the plan counts (an assumption says so).

    Returns:
        a dict: ``parameters`` (counts per network); ``training`` (None without ``training``);
        ``inference`` (one generator forward on the whole padded volume) and ``inference_window``
        (one forward on a batch of windows; None without a window); ``translation`` (translating the
        volume as ``gansim translate`` does, :func:`translation_memory`: its terms, each in
        :data:`TRANSLATION_TERMS`; None for multi-channel or 2-D networks) with
        ``translation_phases`` and ``translation_peak_phase``; each maps its parts to bytes with a
        ``total``; the shapes used and their padding; ``total`` (training's, or without
        ``training`` the translation's, else inference's); ``assumptions`` (a list of sentences).
    """
    dims = settings.spatial_dims
    shape = _as_tuple(shape, dims, "shape")
    if batch < 1:
        raise ConfigError(f"batch {batch}: expected >= 1")
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZER_STATES)}")
    if pool_size < 0:
        raise ConfigError(f"pool_size {pool_size}: expected >= 0")
    rule = shape_rule(settings)
    train_patch = None
    if patch is not None:
        train_patch = _as_tuple(patch, dims, "patch")
        if not rule.valid(train_patch, training=True):
            near = ", ".join(str(o.shape) for o in valid_shapes_near(train_patch, settings, k=2, training=True))
            raise ConfigError(f"patch {train_patch}: not a valid training patch (each axis a multiple of {rule.multiple} and at least "
                              f"{rule.training_minimum}); nearest valid: {near}")
    window = train_patch if window is None else _as_tuple(window, dims, "window")
    if window is not None and not rule.valid(window):
        near = ", ".join(str(o.shape) for o in valid_shapes_near(window, settings, k=2))
        raise ConfigError(f"window {window}: not a valid generator input (each axis a multiple of {rule.multiple} and at least "
                          f"{rule.minimum}); nearest valid: {near}")
    counts, g_buffers = _counts(settings)
    g_params, all_params = counts["G_AB"] + counts["G_BA"], sum(counts.values())
    voxel_bytes = 4 * settings.channels  # one float32 image voxel
    infer = valid_shapes_near(shape, settings, k=1)[0]
    plan: dict[str, Any] = {
        "settings": settings.model_dump(), "shape": shape, "batch": batch, "amp": amp, "optimizer": optimizer,
        "multiple": rule.multiple, "minimum": rule.minimum, "training_minimum": rule.training_minimum,
        "infer_shape": infer.shape, "infer_pads": infer.pads, "patch": train_patch, "window": window, "parameters": counts, "device": str(device),
    }

    def inference(at: tuple[int, ...]) -> dict[str, Any]:
        found = estimate_inference_activations(settings, at, amp=amp, reference_side=reference_side, device=device)
        buffers = estimate_layer_buffers(settings, at, batch=batch, amp=amp, device=device)
        parts = {"parameters": 4 * counts["G_AB"], "activations": found["peak"] * batch, "layer_buffers": buffers["bytes"]}
        if amp:
            parts["autocast_weights"] = 2 * counts["G_AB"]
        parts["total"] = sum(parts.values())
        plan.setdefault("methods", {})[f"inference {at}"] = (found["method"], found["references"])
        plan["methods"][f"inference {at}, layer buffers"] = (buffers["method"], (buffers["probe"],))
        return parts

    plan["inference"] = inference(infer.shape)
    plan["inference_window"] = inference(window) if window is not None else None
    plan["translation"] = plan["translation_phases"] = plan["translation_peak_phase"] = None
    if dims == 3 and settings.channels == 1:
        tr = translation_memory(settings, shape, window, sw_batch_size=batch, reference_side=reference_side, device=device)
        plan["translation"], plan["translation_phases"], plan["translation_peak_phase"] = tr["parts"], tr["phases"], tr["peak_phase"]
        plan["translation_window"], plan["translation_padded_shape"] = tr["window"], tr["padded_shape"]
        plan["methods"][f"translation windows {tr['window']}"] = (tr["method"], tr["references"])
        plan["methods"][f"translation windows {tr['window']}, layer buffers"] = (tr["buffers_method"], (tr["buffers_probe"],))
    plan["training"] = None
    if training:
        if train_patch is not None:
            train_shape, train_pads = train_patch, tuple((0, 0) for _ in range(dims))
        else:
            option = valid_shapes_near(shape, settings, k=1, training=True)[0]
            train_shape, train_pads = option.shape, option.pads
        acts = estimate_training_activations(settings, train_shape, amp=amp, identity=identity, checkpointing=checkpointing,
                                             reference_side=reference_side, device=device)
        workspace = estimate_inference_activations(settings, train_shape, amp=amp, reference_side=reference_side, device=device)["peak"]
        buffers = estimate_layer_buffers(settings, train_shape, batch=batch, amp=amp, device=device)
        voxels = math.prod(train_shape)
        states = OPTIMIZER_STATES[optimizer] + (1 if momentum and optimizer in ("rmsprop", "sgd") else 0)
        parts = {
            "parameters": 4 * all_params,
            "gradients": 4 * all_params,
            "optimizer_state": 4 * states * all_params,
            "ema": 4 * (g_params + 2 * g_buffers) if ema else 0,
            "inputs": 2 * batch * voxels * voxel_bytes,  # the real A and B patches
            "fakes_and_pool": (2 * batch + 2 * pool_size) * voxels * voxel_bytes,  # the fakes kept for the critic's step; the two pools
            "activations": acts["peak"] * batch,
            "workspace": workspace * batch,
            "layer_buffers": buffers["bytes"],
        }
        parts["total"] = sum(parts.values())
        plan["training"] = parts
        plan["train_shape"], plan["train_pads"] = train_shape, train_pads
        plan["activations_by_phase"] = {k: acts[k] * batch for k in ("G", "D", "recompute") if k in acts}
        plan["methods"][f"training {train_shape}"] = (acts["method"], acts["references"])
        plan["methods"][f"training {train_shape}, layer buffers"] = (buffers["method"], (buffers["probe"],))
    plan["total"] = plan["training"]["total"] if training else (plan["translation"] or plan["inference"])["total"]
    plan["assumptions"] = _assumptions(amp, identity, checkpointing, training, plan["translation"] is not None, cpu_mmap_threshold)
    return plan


def config_memory_plan(cfg: CycleGANConfig, shape: Sequence[int] | None = None, batch: int | None = None, *, amp: bool | None = None,
                       device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`memory_plan` of a CycleGAN run's whole config: its networks, patch, window, batch, optimiser, pool, identity, EMA, checkpointing, heap.

    Args:
        cfg: the run's config.
        shape: the volumes' shape (default: the training patch, ``data.patch``).
        batch: default ``train.batch_size``.
        amp: default: the config's mixed precision (``train.amp`` not off).
        device: where the dry runs run.
    """
    g_opt = cfg.optim.get("G")  # the plan takes one optimiser for all four networks
    return memory_plan(cfg.model, cfg.data.patch if shape is None else shape, cfg.train.batch_size if batch is None else batch, training=True,
                       amp=cfg.train.amp != "off" if amp is None else amp, optimizer=g_opt.name if g_opt else "adam",
                       momentum=bool(g_opt and g_opt.momentum), patch=cfg.data.patch, window=cfg.inference.window,
                       identity=cfg.loss.lambda_identity > 0, checkpointing=cfg.loss.gradient_checkpointing, pool_size=cfg.loss.pool_size,
                       ema=cfg.train.ema_halflife_rows is not None, device=device, cpu_mmap_threshold=cfg.train.cpu_mmap_threshold)


def _assumptions(amp: bool, identity: bool, checkpointing: bool, training: bool, translation: bool = False,
                 cpu_mmap_threshold: int | None = VOLUME_MMAP_THRESHOLD) -> list[str]:
    out = [
        "activations are measured by forward-only dry runs with batch 1 and multiplied by the batch (instance norm "
        "works per sample); for a shape larger than the dry runs', each tensor's size along each axis is extrapolated as an "
        "affine function of the input's size (exact for convolutions, transposed convolutions and padding on valid shapes; "
        "otherwise close to proportional to the voxel count)",
        "parameters, gradients, optimiser state and the EMA are float32; the gradients of all four networks stay allocated between steps",
        "inference: one generator forward without gradients; activations: the peak of live tensors (the input, the output and every "
        "layer's inputs and outputs); layer buffers: what the layers take from the allocator beyond them (oneDNN's reordered copies, "
        "im2col columns, cuDNN workspaces), the allocator's peak in a profiled dry run at the shape and batch minus the live tensors' peak there "
        f"(shapes above {LAYER_BUFFER_DRY_RUN_VOXELS} voxels: measured at a smaller shape of the same proportions and scaled with the "
        "voxel count, approximate: kernels change with the sizes)",
        "not counted: the CUDA context and kernels (about 0.3-1 GiB), the library code a first forward pass maps in (CPU), allocator "
        "fragmentation (leave 10-20 % headroom), DistributedDataParallel's gradient buckets (one more copy of the gradients)",
    ]
    if translation:
        out.append("translation: CycleGANModel.translate as the code allocates it, counted phase by phase (scaling fit, scaling "
                   "forward, sliding windows, scaling inverse); its peak is the parameters and the input volume plus the largest "
                   "phase; windows run in float32 (translate uses no autocast); the window activations include the window's input, "
                   "which is a view of MONAI's input when one window goes per forward; on a GPU the parameters, the window "
                   "activations and the importance map are device memory and every volume-sized buffer host memory (MONAI "
                   "accumulates on the CPU); reading and writing the files (gansim translate) are not counted")
    if training:
        out.append("training activations: the larger of the generator step (both generators for fakes, reconstructions"
                   f"{' and identities' if identity else ''}; both critics, frozen, on the fakes) and the critic step (both critics on real "
                   "and pooled fake images); workspace: the activation gradients alive during backward, taken as the peak of one "
                   "generator forward's live tensors; layer buffers: those of one generator forward at the patch and batch (the "
                   "backward's kernels are taken to need no more); the image pools and the fakes kept for the critic's step are on the device")
        if cpu_mmap_threshold:
            out.append(f"CPU training (Linux, glibc): train.cpu_mmap_threshold {cpu_mmap_threshold} B hands freed blocks of that size and "
                       "larger back to the system (gansim.training.cpu_heap), so the process's peak follows the live tensors counted here")
        else:
            out.append("CPU training with train.cpu_mmap_threshold null: glibc's heap keeps freed blocks for reuse, and the process's peak "
                       "exceeds this plan, by 0.15-0.7 GiB at the default networks on 24³-64³ patches (benchmarks/README.md)")
        if checkpointing:
            out.append("checkpointing: generator activations are not kept; the backward pass rebuilds one generator pass at a time")
    if amp:
        out.append("amp: measured under bfloat16 autocast, as the training loop runs (on the CPU it keeps the same layers in 2 bytes "
                   "as on CUDA); in training the 16-bit weight copies are among the saved tensors; in inference they add half the "
                   "generator's parameter bytes")
    return out


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _count(n: int) -> str:
    return f"{n / 1e6:.3f} M" if n >= 1e5 else f"{n:,}"


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(str(n) for n in shape)


def format_plan(plan: dict[str, Any]) -> str:
    """A plain-text report of a :func:`memory_plan` result (for ``gansim plan CONFIG --shape X Y Z``)."""
    s = plan["settings"]
    gen = (f"ResNet generator (width {s['width']}, {s['n_down']} stride-2 levels, {s['n_blocks']} residual blocks)" if s["generator"] == "resnet"
           else f"U-Net generator (width {s['width']}, depth {s['n_down']})")
    lines = [f"CycleGAN, {s['spatial_dims']}-D: {gen}; PatchGAN critic (width {s['d_width']}, {s['d_layers']} stride-2 layers); norm {s['norm']}",
             f"valid generator input: each axis a multiple of {plan['multiple']}, at least {plan['minimum']}; "
             f"training patches at least {plan['training_minimum']}",
             "parameters: " + ", ".join(f"{k} {_count(v)}" for k, v in plan["parameters"].items()) + f" (total {_count(sum(plan['parameters'].values()))})"]

    def table(title: str, parts: dict[str, int]) -> None:
        lines.append(title)
        for key, value in parts.items():
            if key != "total":
                lines.append(f"  {key.replace('_', ' '):<18}{_size(value):>14}")
        lines.append(f"  {'total':<18}{_size(parts['total']):>14}")

    precision = "autocast" if plan["amp"] else "float32"
    if plan.get("training"):
        pads = "" if not any(b or a for b, a in plan["train_pads"]) else f" (volume {_shape(plan['shape'])} padded by {plan['train_pads']})"
        table(f"training step: batch {plan['batch']} of {_shape(plan['train_shape'])}{pads}, {plan['optimizer']}, {precision}", plan["training"])
    pads = "" if not any(b or a for b, a in plan["infer_pads"]) else f" (padded by {plan['infer_pads']})"
    table(f"inference, whole volume: {_shape(plan['infer_shape'])}{pads}, one generator, batch {plan['batch']}, {precision}", plan["inference"])
    if plan.get("inference_window"):
        table(f"inference, sliding windows of {_shape(plan['window'])}, {plan['batch']} per forward, {precision}", plan["inference_window"])
    if plan.get("translation"):
        _translation_lines(plan, lines)
    lines.append("how activations were found:")
    lines += [f"  {what}: {method}" + ("" if method == "measured" else f" from dry run{'s' if len(refs) > 1 else ''} at {' and '.join(_shape(r) for r in refs)}")
              for what, (method, refs) in plan["methods"].items()]
    lines.append("assumptions:")
    lines += [f"  - {a}" for a in plan["assumptions"]]
    return "\n".join(lines)


def _translation_lines(plan: dict[str, Any], lines: list[str]) -> None:
    """The translation's terms, phase by phase, each with what it is (:data:`TRANSLATION_TERMS`)."""
    parts, phases, peak = plan["translation"], plan["translation_phases"], plan["translation_peak_phase"]
    padded = plan["translation_padded_shape"]
    monai = "" if tuple(padded) == tuple(plan["shape"]) else f"; MONAI pads it to {_shape(padded)}"
    lines.append(f"translation of one {_shape(plan['shape'])} volume (CycleGANModel.translate, gansim translate): sliding windows of "
                 f"{_shape(plan['translation_window'])}, {plan['batch']} per forward, float32{monai}")

    def line(key: str, indent: int) -> None:
        lines.append(f"{' ' * indent}{key.replace('_', ' '):<{26 - indent}}{_size(parts[key]):>12}   {TRANSLATION_TERMS[key]}")

    line("parameters", 2)
    line("input_volume", 2)
    for name, terms in TRANSLATION_PHASES.items():
        mark = "   <- the peak" if name == peak else ""
        lines.append(f"  {'phase ' + repr(name):<24}{_size(phases[name]):>12}{mark}")
        for key in terms:
            line(key, 4)
        if phases[name] != sum(parts[k] for k in terms):
            lines.append("    (one window: MONAI allocates the output and count maps after its forward pass, so the phase holds the larger "
                         "of the window activations and those maps with the window's output)")
    lines.append(f"  {'total':<24}{_size(parts['total']):>12}   parameters + input volume + the largest phase ({peak!r})")
