"""No process outlives corral: it becomes a child subreaper, so grandchildren that escape
their job's process group (a daemon that calls setsid) are re-parented to corral rather
than to init, and `sweep()` stops and reaps them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36

# pids of the jobs' leaders: their ChildProcess reaps them, never this module. A leader is
# added right after its (synchronous) spawn, before the event loop runs anything else
LEADERS: set[int] = set()


def become_subreaper() -> bool:
    """Ask the kernel to re-parent orphaned descendants to this process (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except OSError:
        return False


def _children() -> list[int]:
    """Direct children of this process, from /proc (cheap; no psutil import on the hot path)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        return []


def reap_orphans() -> None:
    """Collect the exit status of re-parented grandchildren that have died."""
    for pid in _children():
        if pid in LEADERS:
            continue
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def sweep(grace: float) -> list[int]:
    """Stop every descendant that is not a running job's leader: TERM, grace, KILL, reap.

    Called when the run ends, when only orphans can be left.
    """
    found = [pid for pid in _children() if pid not in LEADERS]
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(found)
    while alive and time.monotonic() < deadline:
        reap_orphans()
        alive = [pid for pid in alive if _exists(pid)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    reap_orphans()
    return found


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
