"""Actors whose results go to an optional JSON file: checked at the start, written atomically at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gansim.errors import ConfigError
from gansim.io.atomic import atomic_path, check_writable
from gansim.sim.actors.base import Actor, RunContext

__all__ = ["JsonResultsActor", "write_json", "check_json_output"]


def write_json(path: Path, data: Any, force: bool) -> None:
    """Write ``data`` as indented JSON, atomically (a failure leaves no partial file)."""
    text = json.dumps(data, indent=2, allow_nan=False)
    with atomic_path(path, force=force, suffix=".json") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def check_json_output(actor: str, output: str | Path | None) -> Path | None:
    """Validate an optional ``.json`` output name at construction."""
    if output is None:
        return None
    if not isinstance(output, (str, Path)) or not str(output) or not str(output).lower().endswith(".json"):
        raise ConfigError(f"actor {actor!r}: output={output!r}: expected a file name ending in .json (or None)")
    return Path(output)


class JsonResultsActor(Actor):
    """An actor that writes ``self.results`` to ``output`` (a ``.json`` file, or None) when the simulation ends.

    An existing file is refused at ``initialize`` unless the simulation has ``force``; a
    failed simulation removes the file if this actor had already written it.
    """

    def __init__(self, name: str, output: str | Path | None = None) -> None:
        super().__init__(name)
        self.output = check_json_output(name, output)
        self._path: Path | None = None
        self._force = False
        self._published = False

    def _prepare_output(self, context: RunContext) -> None:
        self._force = bool(context.force)
        if self.output is not None:
            self._path = check_writable(context.resolve(self.output), self._force)

    def finalize(self) -> None:
        if self._path is not None:
            write_json(self._path, self.results, self._force)
            self._published = True

    def abort(self) -> None:
        """Remove the JSON file if this simulation wrote it (a later actor failed to finalize)."""
        if self._published and self._path is not None:
            self._path.unlink(missing_ok=True)
        self._published = False
