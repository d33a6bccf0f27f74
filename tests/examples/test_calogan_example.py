"""The calorimeter example script runs end to end (``--quick``) and refuses to overwrite an earlier run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "calogan_eplus.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


def test_quick_example_runs_and_keeps_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "example"
    first = _run("-o", str(out), "--quick", "--family", "showergan")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "report" / "report.html").is_file() and (out / "generated.h5").is_file()
    assert "report:" in first.stdout
    stamp = (out / "generated.h5").stat().st_mtime_ns
    again = _run("-o", str(out), "--quick", "--family", "showergan")
    assert again.returncode == 2 and "--force" in again.stderr
    assert (out / "generated.h5").stat().st_mtime_ns == stamp  # nothing touched
