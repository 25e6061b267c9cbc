"""Is a run still alive? Each run holds an exclusive lock on `<log_root>/corral.lock`
for as long as its corral process lives; the kernel releases it however the process
ends (kill -9 included), so `corral resume` can tell a dead run from a running one.

A look at a lock takes a shared lock for an instant: two looks never see each other as
the holder (each would have named the dead run's stale pid: two `corral resume`s started
together both refused), and a process taking the lock for real tries again for a moment
when it meets a look (`RunLock`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

LOCK_NAME = "corral.lock"
# how long taking a lock tries again when it is held: a look holds it for microseconds,
# a process running the run for as long as it lives
TAKE_S = 0.1


class RunLock:
    """Held by the corral process that runs a run, from its start to its end."""

    def __init__(self, log_root: Path, name: str = LOCK_NAME) -> None:
        self.path = log_root / name
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + TAKE_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:  # held, not looked at
                    os.close(self._fd)
                    raise
                time.sleep(0.002)
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
    holds it; pid -1 and host "" when the holder has not written them (yet): the file
    may still name the dead process that held it before."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None  # never started here, or its logs are gone: nothing holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        words = os.pread(fd, 300, 0).decode(errors="replace").split()
        with contextlib.suppress(ValueError, IndexError):
            pid, host = int(words[0]), " ".join(words[1:2])
            if pid > 0 and (host not in ("", socket.gethostname()) or _alive(pid)):
                return pid, host
        return -1, ""
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def named_owner(path: Path, wait_s: float = 1.0) -> tuple[int, str] | None:
    """`lock_owner(path)`, waiting up to `wait_s` for a holder that has just taken the
    lock to write its name (pid -1 and host "" if it has not by then)."""
    deadline = time.monotonic() + wait_s
    owner = lock_owner(path)
    while owner is not None and owner[0] <= 0 and time.monotonic() < deadline:
        time.sleep(0.01)
        owner = lock_owner(path)
    return owner


def describe_holder(path: Path, wait_s: float = 1.0) -> str:
    """Who holds the lock file `path`, for an error message: `corral process PID on
    HOST`."""
    owner = named_owner(path, wait_s)
    if owner is None or owner[0] <= 0:
        return "another corral"
    pid, host = owner
    return f"corral process {pid}" + (f" on {host}" if host else "")
