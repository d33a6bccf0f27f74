"""glibc's mmap threshold (gansim.training.cpu_heap): freed blocks go back to the system, the user's choice is kept, the loop asks for it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gansim.config import parse_config
from gansim.models.cyclegan_config import CycleGANConfig
from gansim.models.phsp_gan import PhaseSpaceGANConfig
from gansim.models.phsp_train import train_phase_space
from gansim.training.cpu_heap import VOLUME_MMAP_THRESHOLD, fix_mmap_threshold, user_chose_threshold

from conftest import tiny_config

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Frees 32 blocks of 2 MiB, each followed by a live block of 256 KiB, so every freed one is a hole inside
# the heap (not at its top, which glibc trims). Prints the KiB of RSS still held after the frees.
RETAINED = textwrap.dedent("""
    import ctypes, sys
    from gansim.training.cpu_heap import fix_mmap_threshold
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    if sys.argv[1] == "fixed":
        note = fix_mmap_threshold(1 << 20)
        assert note is None, note
    def rss_kib():
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    block = libc.malloc(2 << 20); libc.free(block)  # a mapped block freed: glibc's dynamic threshold rises to 2 MiB
    before = rss_kib()
    pairs = []
    for _ in range(32):
        big = libc.malloc(2 << 20)
        ctypes.memset(big, 1, 2 << 20)  # touched: resident
        pairs.append((big, libc.malloc(256 << 10)))  # too large for any free list: it follows big
    for big, _ in pairs:
        libc.free(big)
    print(rss_kib() - before)
""")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _retained_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", RETAINED, mode], env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_a_fixed_threshold_hands_freed_blocks_back_where_the_default_keeps_them() -> None:
    # 32 × 2 MiB = 65,536 KiB freed. glibc's default (threshold raised to 2 MiB) serves them from its
    # heap and keeps the holes resident; with 1 MiB fixed they are mappings, unmapped at free.
    kept = _retained_kib("default")
    returned = _retained_kib("fixed")
    assert kept > 0.75 * 65_536, kept
    assert returned < 0.1 * 65_536, returned


def test_the_users_environment_is_left_alone() -> None:
    assert user_chose_threshold({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert user_chose_threshold({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"})
    assert not user_chose_threshold({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"})


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_fix_reports_why_it_changed_nothing() -> None:
    code = ("from gansim.training.cpu_heap import fix_mmap_threshold as f\n"
            "print(repr(f(1 << 20)))\nprint(repr(f(1 << 20)))\nprint(repr(f(2 << 20)))")
    env = _clean_env()
    lines = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert lines[:2] == ["None", "None"]  # applied, and asking again for the same is no change
    assert "already fixed at 1048576" in lines[2]
    lines = subprocess.run([sys.executable, "-c", code], env={**env, "MALLOC_MMAP_THRESHOLD_": "65536"}, capture_output=True, text=True,
                           timeout=60).stdout.splitlines()
    assert all("environment sets" in line for line in lines), lines


@pytest.mark.parametrize("nbytes", [0, -1, 32 * 1024 * 1024 + 1])
def test_thresholds_outside_glibcs_range_are_refused(nbytes: int) -> None:
    with pytest.raises(ValueError, match="mmap threshold"):
        fix_mmap_threshold(nbytes)


def test_volume_training_asks_for_the_threshold_and_others_do_not() -> None:
    assert CycleGANConfig().train.cpu_mmap_threshold == VOLUME_MMAP_THRESHOLD
    assert parse_config(CycleGANConfig, {"train": {"batch_size": 2}}).train.cpu_mmap_threshold == VOLUME_MMAP_THRESHOLD
    assert PhaseSpaceGANConfig().train.cpu_mmap_threshold is None


@pytest.mark.parametrize("threshold", [None, 1 << 20])
def test_the_loop_fixes_the_threshold_on_the_cpu_only_when_configured(gaussian_npy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      threshold: int | None) -> None:
    calls: list[int] = []
    monkeypatch.setattr("gansim.training.loop.fix_mmap_threshold", lambda n: calls.append(n))
    cfg = parse_config(PhaseSpaceGANConfig, tiny_config(train={"total_rows": 512, "cpu_mmap_threshold": threshold}))
    train_phase_space(gaussian_npy, cfg, tmp_path / "run", force=True, log=lambda *_: None)
    assert calls == ([] if threshold is None else [threshold])
