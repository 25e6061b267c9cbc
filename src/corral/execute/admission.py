"""What the scheduler asks before it launches an attempt: may it start, and if not now,
when? Budgets and rate limits answer it (`GuardedAdmission`); `OpenAdmission` admits all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from corral.budget.guard import BudgetGuard
from corral.budget.ratelimit import RateLimitGate
from corral.plan import PlannedJob


class Admission(Protocol):
    """The scheduler's questions before a launch (see `corral.budget`)."""

    @property
    def stopped(self) -> str | None:
        """Why nothing may start any more (the run budget is spent), or None."""
        ...

    def admit(self, job: PlannedJob) -> str | None:
        """Why this job may not start, or None."""
        ...

    def wait_hint(self, tool: str) -> float | None:
        """Seconds until the tool may be used again (a rate limit), or None."""
        ...

    def waiting_reason(self, tool: str) -> str | None:
        """What to show while a job waits for its tool."""
        ...

    def take_kills(self) -> list[str]:
        """Running jobs to stop now (a `kill` budget), each once."""
        ...


class OpenAdmission:
    """Admits everything; used when no budget or rate-limit gate is configured."""

    stopped: str | None = None

    def admit(self, job: PlannedJob) -> str | None:
        return None

    def wait_hint(self, tool: str) -> float | None:
        return None

    def waiting_reason(self, tool: str) -> str | None:
        return None

    def take_kills(self) -> list[str]:
        return []


class GuardedAdmission:
    """Budgets (the guard) and rate limits (the gate), as the scheduler asks them."""

    def __init__(
        self,
        guard: BudgetGuard,
        gate: RateLimitGate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.gate = gate
        self.clock = clock

    @property
    def stopped(self) -> str | None:
        return "run budget exceeded" if self.guard.stopped else None

    def admit(self, job: PlannedJob) -> str | None:
        return self.guard.admit(job.name, job.budget)

    def wait_hint(self, tool: str) -> float | None:
        until = self.gate.blocked_until(tool)
        if until is None:
            return None
        return max(until - self.clock(), 0.0)

    def waiting_reason(self, tool: str) -> str | None:
        return self.gate.reason(tool)

    def take_kills(self) -> list[str]:
        return self.guard.take_kills()


# what one running local job holds open: the read ends of its stdout and stderr pipes,
# its pidfd and its two log files, and one for the spawn's own brief pipes
FDS_PER_JOB = 6
# the history (SQLite and its WAL, or PostgreSQL), the lock, the terminal, Python's own
FD_RESERVE = 64


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the kernel lets any process do
    so); the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit: as far as the kernel's per-process maximum goes
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        for value in (target, 1 << 20, 65536):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(value, target), hard))
            except (ValueError, OSError):
                continue
            return min(value, target)
    return soft


def descriptor_concurrency(wanted: int, warn: Callable[[str], None] | None = None) -> int:
    """The most jobs that may run at once here without running out of file descriptors
    (never below 1): `wanted`, or fewer with a warning that says why."""
    import os
    import resource

    limit = raise_fd_limit()
    if limit == resource.RLIM_INFINITY:
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 16
    room = max((limit - in_use - FD_RESERVE) // FDS_PER_JOB, 1)
    if wanted <= room:
        return wanted
    if warn is not None:
        warn(
            f"at most {room} jobs run at once, not {wanted}: the open-file limit is "
            f"{limit} and each job holds {FDS_PER_JOB} (raise the hard limit: ulimit -Hn)"
        )
    return room
