"""Training statistics: ``stats.jsonl`` (one JSON object per tick), and TensorBoard when installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["StatsWriter", "read_stats"]


class StatsWriter:
    """Appends one line per tick to ``run_dir/stats.jsonl``; mirrors scalars to TensorBoard if it imports.

    On resume the file is truncated to the full ticks at or before the
    checkpoint (a partial record written when a run stopped between ticks, or a
    line cut by a crash, is dropped), so the losses of a resumed run are the
    file an uninterrupted run writes.
    """

    def __init__(self, run_dir: Path, *, resume_rows: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "stats.jsonl"
        if resume_rows is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if (record := _parse(line)) is not None and record.get("rows_seen", 0) <= resume_rows]
            tmp = self.path.with_name(".stats.jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(self.path)
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a")
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional `tensorboard` package

                # purge_step drops TensorBoard events past the resume point, as the jsonl file does
                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_rows)
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


def _parse(line: str) -> dict[str, Any] | None:
    """One record, or None for a blank line or a line cut short by a crash."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def read_stats(run_dir: Path) -> list[dict[str, Any]]:
    """All tick records of a run, in order (a truncated last line is skipped)."""
    path = Path(run_dir) / "stats.jsonl"
    if not path.exists():
        return []
    return [r for line in path.read_text().splitlines() if (r := _parse(line)) is not None]
