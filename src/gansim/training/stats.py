"""Training statistics: ``stats.jsonl`` (one JSON object per tick), and TensorBoard when installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["StatsWriter", "read_stats"]


class StatsWriter:
    """Appends one line per tick to ``run_dir/stats.jsonl``; mirrors scalars to TensorBoard if it imports.

    On resume the file is truncated to the ticks at or before the checkpoint, so
    the curve of a resumed run is the same file an uninterrupted run would write.
    """

    def __init__(self, run_dir: Path, *, resume_rows: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "stats.jsonl"
        if resume_rows is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line).get("rows_seen", 0) <= resume_rows]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a")
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional `tensorboard` package

                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except Exception:  # tensorboard missing or broken: stats.jsonl is enough
                self._tb = None

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            step = int(record.get("rows_seen", 0))
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "rows_seen":
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_stats(run_dir: Path) -> list[dict[str, Any]]:
    """All tick records of a run, in order."""
    path = Path(run_dir) / "stats.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
