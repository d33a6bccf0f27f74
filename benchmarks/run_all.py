"""Run every benchmark script in this folder with its default arguments (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
EXIT_PEER_MISSING = 3  # see gaga_common.py: the peer (gaga-phsp venv) is not installed
failed, skipped = [], []
for script in sorted(here.glob("*.py")):
    if script.name in ("run_all.py", "gaga_common.py"):
        continue
    print(f"== {script.name}", flush=True)
    code = subprocess.run([sys.executable, str(script)]).returncode
    if code == EXIT_PEER_MISSING:
        skipped.append(script.name)
    elif code != 0:
        failed.append(script.name)
if skipped:
    print(f"skipped (peer not installed, or a model from `make demo` missing): {', '.join(skipped)}")
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
