"""Starting a program: finding it on a job's PATH, and saying why it could not start.

Standard library only: the run's supervisor imports it, and its start-up is on the
critical path of a run's first job.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping


class SpawnError(Exception):
    """The command could not be started; the message says why and how to fix it."""


def spawn_message(argv0: str, error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return f"command not found: {argv0} (check the spelling and PATH, or give a full path)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not executable: {argv0} (chmod +x it, or run it through its interpreter)"
    if error.errno == errno.ENOEXEC:
        return f"not a program: {argv0} (add a #! line or run it through its interpreter)"
    return f"cannot start {argv0}: {error.strerror or error}"


_FOUND: dict[tuple[str, str], str] = {}  # (name, PATH) -> file: a PATH walk is ~16 stats


def resolve(argv0: str, env: Mapping[str, str]) -> str:
    """The file to execute: a name is looked up on the job's own PATH, like a shell does."""
    if os.sep in argv0:
        return argv0
    key = (argv0, env.get("PATH", os.defpath))
    found = _FOUND.get(key)
    if found is None or not os.access(found, os.X_OK):
        # loaded by the first job started: with a supervisor, corral's own process starts
        # none and never needs shutil (nor the bz2, lzma and fnmatch it brings)
        import shutil

        found = shutil.which(argv0, path=key[1])
        if found is None:
            raise SpawnError(spawn_message(argv0, OSError(errno.ENOENT, "not found")))
        _FOUND[key] = found
    return found
