"""The run directory every family's ``gansim train`` writes: made, cleared with ``--force``, reopened with ``--resume``.

A run directory holds only what training writes (:data:`RUN_ARTEFACTS`); ``--force`` removes
those and nothing else, so a directory holding the data or notes is never emptied. A resumed run
keeps the config sections its checkpoints depend on (the networks, the data and its split, a
family's schedule): :func:`open_run_dir` refuses a change to them before any weight is loaded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gansim.errors import ConfigError, OutputExistsError
from gansim.training.distributed import DistributedContext

__all__ = ["RUN_ARTEFACTS", "check_resumed_config", "open_run_dir", "prepare_run_dir"]

#: What `gansim train` writes into a run directory; --force removes these and nothing else.
RUN_ARTEFACTS = frozenset({"config.json", "data.json", "stats.jsonl", "checkpoints", "model", "tensorboard", "report", "validation.jsonl", "generated", "views", "encoder"})

#: Config sections a resumed run keeps unless the family names others.
FROZEN_ON_RESUME = ("family", "data", "model")


def prepare_run_dir(run_dir: Path, data: Path, *, resume: bool, force: bool) -> None:
    """A new run refuses a non-empty directory unless ``force``; a resume needs the old one.

    ``force`` only removes what an earlier run wrote (:data:`RUN_ARTEFACTS`): a
    directory holding anything else (the data itself, notes...) is refused.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(f"{run_dir}: exists and is not a directory; give a run directory with -o")
    if resume:
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"{run_dir}: --resume needs a run directory with config.json from an earlier `gansim train`")
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_ARTEFACTS and not p.name.startswith("."))
        if foreign:
            raise OutputExistsError(
                f"{run_dir}: holds files that an earlier `gansim train` did not write ({', '.join(foreign[:5])}"
                f"{' ...' if len(foreign) > 5 else ''}); choose an empty or new run directory"
            )
        if not force:
            raise OutputExistsError(f"{run_dir}: run directory is not empty; pass --force to start over or --resume to continue it")
        for child in run_dir.iterdir():
            if child.name in RUN_ARTEFACTS or child.name.startswith(".ckpt") or child.name.startswith(".model"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def check_resumed_config(old: Mapping[str, Any], new: Mapping[str, Any], source: Path, sections: Sequence[str] = FROZEN_ON_RESUME) -> None:
    """Refuse a resumed run whose ``sections`` differ from the earlier run's config (naming each changed key)."""
    changed = [f"{section}.{key}" if key else section for section in sections for key in _changed_keys(old.get(section), new.get(section))]
    if changed:
        raise ConfigError(f"{source}: on --resume these settings cannot change: {', '.join(changed)}; start a new run to change them (training settings and optimisers may change)")


def _changed_keys(old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return [] if old == new else [""]


def open_run_dir(run_dir: Path, data: Path, config: Mapping[str, Any], dist: DistributedContext, *, resume: bool, force: bool,
                 frozen: Sequence[str] = FROZEN_ON_RESUME) -> None:
    """Prepare ``run_dir`` on the main process (every process waits for it); on resume, check the ``frozen`` config sections.

    Args:
        config: this run's whole config as plain data (``cfg.model_dump(mode="json")``).
        frozen: the sections that cannot change on resume (the family's checkpoints depend on them).
    """
    if dist.is_main:
        prepare_run_dir(run_dir, data, resume=resume, force=force)
    dist.barrier()
    if resume and (run_dir / "config.json").is_file():
        check_resumed_config(json.loads((run_dir / "config.json").read_text()), config, run_dir / "config.json", frozen)
