"""The C library's heap on the CPU: hand freed tensor memory back to the system (glibc's mmap threshold).

Why: PyTorch's CPU tensors come from ``malloc``. glibc serves a request of at least its *mmap
threshold* with a mapping of its own, unmapped (returned) at ``free``; smaller ones come from its
heap, which keeps freed blocks for reuse and returns only the free space at its top. The threshold
starts at 128 KiB, and whenever a mapped block is freed glibc raises it to that block's size (up
to 32 MiB on 64-bit). After the first training step, every activation of a small 3-D patch (0.2-8
MiB) therefore lives in the heap, and the freed blocks, in holes between live ones, pile up: on
the CycleGAN's default networks at a 32³ patch the process peaked 0.7 GiB above the tensors it
holds at any moment, and the excess grows over the first iterations (benchmarks/README.md, "3-D
CycleGAN", cyclegan_memory_plan.py). A fixed threshold turns the raising off: blocks of at least
that size are mapped and returned at ``free``, the peak memory is the peak of live tensors (what
``gansim plan`` counts), for the price of the page faults of fresh mappings (on 2 cores of an AMD
EPYC: 17-22 % slower at 24³-32³ patches, 5-6 % at 48³-64³; ``train.cpu_mmap_threshold: null``
where speed matters more).

Only glibc (Linux) has this; elsewhere, and where the user chose the threshold themselves
(``MALLOC_MMAP_THRESHOLD_`` or ``glibc.malloc.mmap_threshold`` in ``GLIBC_TUNABLES``), nothing is
changed. The setting holds for the whole process and cannot be undone (glibc keeps its threshold
fixed from then on), so the training loop applies it only on the CPU and only when asked
(``train.cpu_mmap_threshold``).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["GLIBC_DEFAULT_MMAP_THRESHOLD", "VOLUME_MMAP_THRESHOLD", "fix_mmap_threshold", "user_chose_threshold"]

#: the threshold 3-D training uses (CycleGAN's ``train.cpu_mmap_threshold``): at a 32³ patch it kept the peak RSS at 796 MiB
#: over the start-up against 1.2-1.35 GiB; 4 MiB gave 854 MiB at 32³ but nothing at 24³ (activations under 4 MiB), 8 MiB nothing
#: at 32³ (7 iterations on 2 cores, benchmarks/README.md)
VOLUME_MMAP_THRESHOLD = 1024 * 1024
#: glibc's initial mmap threshold in bytes (before its dynamic raising)
GLIBC_DEFAULT_MMAP_THRESHOLD = 128 * 1024
#: mallopt's parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD)
_M_MMAP_THRESHOLD = -3
#: glibc refuses thresholds above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit)
_MAX_THRESHOLD = 32 * 1024 * 1024

_applied: int | None = None


def user_chose_threshold(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment already sets glibc's mmap threshold (which a program should then leave alone)."""
    env = os.environ if environ is None else environ
    return "MALLOC_MMAP_THRESHOLD_" in env or "glibc.malloc.mmap_threshold" in env.get("GLIBC_TUNABLES", "")


def fix_mmap_threshold(nbytes: int) -> str | None:
    """Fix glibc's mmap threshold at ``nbytes`` for this process (see the module docstring).

    Args:
        nbytes: allocations of at least this many bytes get their own mapping (1 to 32 MiB;
            glibc's own start is 128 KiB).

    Returns:
        None when the threshold is now ``nbytes``; else why nothing was changed (not glibc, the
        user's environment sets it, or another threshold was already fixed in this process).

    Raises:
        ValueError: ``nbytes`` outside 1 B .. 32 MiB.
    """
    global _applied
    if not 0 < nbytes <= _MAX_THRESHOLD:
        raise ValueError(f"mmap threshold {nbytes} bytes: expected 1 .. {_MAX_THRESHOLD} (glibc's limit on 64-bit)")
    if _applied == nbytes:
        return None
    if _applied is not None:
        return f"the mmap threshold was already fixed at {_applied} bytes in this process"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "the C library is not glibc"
    if user_chose_threshold():
        return "the environment sets glibc's mmap threshold (MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES)"
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallopt") or libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(nbytes)) != 1:
        return "glibc's mallopt refused the threshold"
    _applied = nbytes
    return None
