"""The one reaper: every way corral stops processes, and what it reads of them in /proc.

- TERM, a grace period, KILL is written once (`escalate`), and driven by a blocking
  (`stop`) or an asyncio (`stop_async`) sleep;
- corral becomes a child subreaper, so grandchildren that escape their job's process
  group (a daemon that calls setsid) are re-parented to corral rather than to init, and
  `sweep()` stops and reaps them when the run ends;
- `reap_marked()` stops what a dead run left running, found by the CORRAL_RUN_ID mark
  every job's processes inherit (`corral resume`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import NamedTuple

_PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.02  # how often a stopping process is looked at during its grace period

# pids of the jobs' leaders: their ChildProcess reaps them, never this module. A leader is
# added right after its (synchronous) spawn, before the event loop runs anything else
LEADERS: set[int] = set()


# -- signals and /proc -----------------------------------------------------------------------


def signal_group(pgid: int | None, sig: int) -> bool:
    """Send `sig` to a process group; False when there is none (or it is not ours)."""
    if pgid is None:
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_process(pid: int, sig: int) -> bool:
    """Send `sig` to one process; False when it is gone (or not ours)."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# the records below are named tuples, not dataclasses: this module is imported by the
# run's supervisor, which starts before every job and need not import `dataclasses`
# (and with it `inspect`): ~11 ms of CPU per run
class ProcState(NamedTuple):
    """What /proc/<pid>/stat says of a process that matters here."""

    state: str  # R, S, Z (a zombie: dead, not yet reaped) ...
    pgid: int

    @property
    def alive(self) -> bool:
        return self.state != "Z"


def proc_state(pid: int) -> ProcState | None:
    """The process's state and group, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b") ", 1)[1].split()
        return ProcState(fields[0].decode(), int(fields[2]))
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    found = proc_state(pid)
    return found is not None and found.alive


# -- TERM, grace, KILL -----------------------------------------------------------------------


def escalate(
    send: Callable[[int], bool],
    alive: Callable[[], bool],
    grace: float,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[float]:
    """SIGTERM, then SIGKILL if still `alive` after `grace`; yields the pauses to sleep.

    `send(sig)` signals the target and says whether there was one to signal. The caller
    sleeps each yielded pause (blocking or not): the one loop behind `stop` and
    `stop_async`.
    """
    if not send(signal.SIGTERM):
        return
    deadline = clock() + grace
    while clock() < deadline:
        if not alive():
            return
        yield POLL_S
    send(signal.SIGKILL)


def stop(send: Callable[[int], bool], alive: Callable[[], bool], grace: float) -> None:
    """`escalate`, sleeping in this thread."""
    for pause in escalate(send, alive, grace):
        time.sleep(pause)


async def stop_async(send: Callable[[int], bool], alive: Callable[[], bool], grace: float) -> None:
    """`escalate`, sleeping on the event loop."""
    import asyncio  # here: the supervisor imports this module and never needs asyncio

    for pause in escalate(send, alive, grace):
        await asyncio.sleep(pause)


# -- the subreaper ---------------------------------------------------------------------------


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


def sweep(grace: float, run_id: str | None = None) -> list[int]:
    """Stop every descendant that is not a running job's leader: TERM, grace, KILL, reap.

    Called when a run ends, when only orphans can be left. With `run_id`, a process
    marked as another run's (its CORRAL_RUN_ID) is left alone: several runs may share
    this process (a server), and one ending must not stop another's jobs.
    """
    found, send, alive = _orphans(run_id)
    stop(send, alive, grace)
    reap_orphans()
    return found


async def sweep_async(grace: float, run_id: str | None = None) -> list[int]:
    """`sweep`, sleeping on the event loop through the grace period: the rest (a few
    /proc reads, signals, waitpid with WNOHANG) never blocks, so no thread is needed."""
    found, send, alive = _orphans(run_id)
    await stop_async(send, alive, grace)
    reap_orphans()
    return found


def _orphans(
    run_id: str | None,
) -> tuple[list[int], Callable[[int], bool], Callable[[], bool]]:
    """What `sweep` stops, and how to signal them and tell whether any is left."""
    found = [
        pid
        for pid in _children()
        if pid not in LEADERS and (run_id is None or run_of(pid) in (None, run_id))
    ]

    def send(sig: int) -> bool:
        # only those still alive: a pid reaped meanwhile may belong to someone else now
        return any([signal_process(pid, sig) for pid in found if is_alive(pid)])

    def alive() -> bool:
        reap_orphans()
        return any(is_alive(pid) for pid in found)

    return found, send, alive


def run_of(pid: int) -> str | None:
    """The CORRAL_RUN_ID in a process's environment (None: unmarked or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            variables = handle.read().split(b"\0")
    except OSError:
        return None
    mark = next((v for v in variables if v.startswith(b"CORRAL_RUN_ID=")), None)
    return None if mark is None else mark[14:].decode(errors="replace")


# -- what a dead run left running ------------------------------------------------------------


class Marked(NamedTuple):
    """A live process that carries a run's CORRAL_RUN_ID."""

    pid: int
    pgid: int
    job: str  # its CORRAL_JOB, or "?"


class RecordedGroup(NamedTuple):
    """A job's process group as the history recorded it (its leader's pid is the pgid)."""

    job: str
    pgid: int


def marked_processes(run_ids: Collection[str]) -> dict[int, Marked]:
    """Live processes whose environment names one of `run_ids`, by pid."""
    marks = {f"CORRAL_RUN_ID={run_id}".encode() for run_id in run_ids}
    found: dict[int, Marked] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        state = proc_state(pid)
        if state is None or not state.alive or not marks.intersection(variables):
            continue
        job = next(
            (v[11:].decode(errors="replace") for v in variables if v.startswith(b"CORRAL_JOB=")),
            "?",
        )
        found[pid] = Marked(pid, state.pgid, job)
    return found


def reap_marked(
    run_ids: Collection[str], recorded: Sequence[RecordedGroup], grace: float = 5.0
) -> list[str]:
    """Stop what dead runs left running; return a description of what was stopped.

    A process belongs to a run when its environment carries the run's CORRAL_RUN_ID
    (every job gets it, and its children inherit it), which also finds grandchildren
    that left their job's process group and jobs spawned just before the kill, too late
    to be recorded. A recorded process group is signalled whole only when one of its
    members carries the mark, so a process-group id reused since is never touched.
    """
    marked = marked_processes(run_ids)
    live_groups = {m.pgid for m in marked.values()}
    groups = {g.pgid: g for g in recorded if g.pgid in live_groups}
    loose = [m for m in marked.values() if m.pgid not in groups]
    stopped = [f"job '{g.job}' (process group {g.pgid})" for g in groups.values()]
    stopped += [f"process {m.pid} of job '{m.job}'" for m in loose]

    def send(sig: int) -> bool:
        sent = [signal_group(pgid, sig) for pgid in groups]
        sent += [signal_process(m.pid, sig) for m in loose]
        return any(sent)

    stop(send, lambda: bool(marked_processes(run_ids)), grace)
    return stopped
