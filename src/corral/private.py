"""Nothing world-readable: the folders corral makes are 0700 and its files 0600, whatever
the umask (a job's logs and the history hold what agents printed and what they cost).

The modes are given at creation (the umask can only take bits away from them) and set
again on folders corral made earlier, with a looser umask or an older corral.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, below: Path | None = None) -> Path:
    """Make `path` (and its missing parents, up to `below` when given) 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    # ours to tighten: what we just made, and with `below` every folder up to it
    tighten = [path, *path.parents] if below is not None else missing
    for folder in tighten:
        if below is not None and not folder.is_relative_to(below):
            break
        _chmod(folder, DIR_MODE)
    return path


def new_private_dir(path: Path, *, below: Path) -> Path:
    """Make `path` 0700; FileExistsError if it exists (a run's folder is never shared)."""
    private_dir(path.parent, below=below)
    path.mkdir(mode=DIR_MODE)
    _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if it is missing, else make it 0600."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    _chmod(path, FILE_MODE)
    return path


def replace_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` as a 0600 file, whole or not at all: a fresh file beside it
    renamed over it, so a reader never sees half a file nor a moment of a looser mode."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
    return path


def _chmod(path: Path, mode: int) -> None:
    # someone else's folder (a shared parent) keeps its mode: only ours are tightened
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
