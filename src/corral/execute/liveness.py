"""Is a run still alive? Each run holds an exclusive lock on `<log_root>/corral.lock`
for as long as its corral process lives; the kernel releases it however the process
ends (kill -9 included), so `corral resume` can tell a dead run from a running one."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "corral.lock"


class RunLock:
    """Held by the corral process that runs a run, from its start to its end."""

    def __init__(self, log_root: Path, name: str = LOCK_NAME) -> None:
        self.path = log_root / name
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the lock
            self._fd = -1


def holder(log_root: Path, name: str = LOCK_NAME) -> int | None:
    """The pid of the live process running the run at `log_root`, or None if it is dead."""
    return lock_holder(log_root / name)


def lock_holder(path: Path) -> int | None:
    """The pid of the live process holding the lock file `path` (-1 if unreadable), or None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None  # never started here, or its logs are gone: nothing holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with contextlib.suppress(OSError, ValueError):
            return int(os.pread(fd, 32, 0).decode().strip() or 0) or -1
        return -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
