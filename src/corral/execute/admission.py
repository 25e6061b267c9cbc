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
