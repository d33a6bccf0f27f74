"""Atomic output: write to a temporary file beside the target, rename on success.

A crash or an exception leaves the target untouched and removes the temporary
file, so a half-written phase space never looks like a finished one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gansim.errors import OutputExistsError

__all__ = ["check_writable", "atomic_path", "temporary_sibling", "commit_file"]


def check_writable(path: str | os.PathLike[str], force: bool) -> Path:
    """Return ``path`` as a Path; raise :class:`OutputExistsError` if it exists and not ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def temporary_sibling(path: Path, suffix: str = "") -> Path:
    """A fresh, unused file name in the target's directory (same file system, so rename is atomic).

    ``suffix`` lets a format keep the extension its library insists on (e.g. ``.mcpl``).
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def commit_file(tmp: Path, path: Path) -> None:
    """Move a finished temporary file onto its target atomically (``os.replace``).

    ``mkstemp`` creates files readable by their owner only; the published file
    gets the usual permissions (0666 less the umask), as ``open()`` would give.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds.

    Example::

        with atomic_path("out.npy", force=False) as tmp:
            np.save(tmp, array)   # careful: np.save appends .npy to names without it
    """
    target = check_writable(path, force)
    tmp = temporary_sibling(target, suffix)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit_file(tmp, target)
