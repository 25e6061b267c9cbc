"""Is a run still alive? Each run holds an exclusive lock on `<log_root>/corral.lock`
for as long as its corral process lives; the kernel releases it however the process
ends (kill -9 included), so `corral resume` can tell a dead run from a running one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
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
        # the host too: a run folder on a shared file system may be locked from elsewhere
        os.write(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the lock
            self._fd = -1


def holder(log_root: Path, name: str = LOCK_NAME) -> int | None:
    """The pid of the live process running the run at `log_root`, or None if it is dead."""
    return lock_holder(log_root / name)


def lock_holder(path: Path) -> int | None:
    """The pid of the live process holding the lock file `path` (-1 if unreadable), or None."""
    owner = lock_owner(path)
    return None if owner is None else owner[0]


def lock_owner(path: Path) -> tuple[int, str] | None:
    """(pid, host) of the live process holding the lock file `path`, or None if nobody
    holds it; pid -1 and host "" when the holder has not written them (yet)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None  # never started here, or its logs are gone: nothing holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        words = os.pread(fd, 300, 0).decode(errors="replace").split()
        with contextlib.suppress(ValueError, IndexError):
            return int(words[0]) or -1, " ".join(words[1:2])
        return -1, ""
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(path: Path, wait_s: float = 1.0) -> str:
    """Who holds the lock file `path`, for an error message: `corral process PID on
    HOST`. A holder that has just taken the lock writes its name a moment later: wait up
    to `wait_s` for it."""
    deadline = time.monotonic() + wait_s
    owner = lock_owner(path)
    while owner is not None and owner[0] <= 0 and time.monotonic() < deadline:
        time.sleep(0.01)
        owner = lock_owner(path)
    if owner is None or owner[0] <= 0:
        return "another corral"
    pid, host = owner
    return f"corral process {pid}" + (f" on {host}" if host else "")
