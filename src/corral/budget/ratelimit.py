"""The rate-limit gate: after a CLI is rate limited, no new job of that tool starts until reset."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from corral.events.types import Event, JobFinished, JobStarted, RateLimited
from corral.models import ErrorKind, JobStatus

BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 600.0


@dataclass(slots=True)
class _Limit:
    until: float  # monotonic seconds
    level: int  # rate-limit episodes since the tool's last success


class RateLimitGate:
    """A bus subscriber that holds back new jobs of a rate-limited tool.

    The block lasts until the reset the CLI announced (`reset_at`, wall-clock epoch
    seconds, or `retry_after_s`), else for an exponential backoff: 30 s, doubling with
    each new episode, at most 10 minutes; a job of the tool that succeeds resets the
    doubling. Reports that arrive while the tool is already blocked (a CLI retrying by
    itself reports every retry) extend the block but do not double it.

    The scheduler asks `blocked_until(tool)` before a launch, shows `reason(tool)` as the
    job's waiting reason, and sleeps until `wake_at()` at the latest.
    """

    BUS_EVENTS: ClassVar[tuple[type[Event], ...]] = (JobStarted, RateLimited, JobFinished)

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall  # only to read `reset_at` and to print the resume time
        self._tools: dict[str, str] = {}
        self._limits: dict[str, _Limit] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self._tools[event.job] = event.tool
        elif isinstance(event, RateLimited):
            tool = self._tools.get(event.job)
            if tool is not None:
                self.limit(tool, retry_after_s=event.retry_after_s, reset_at=event.reset_at)
        elif isinstance(event, JobFinished):
            tool = self._tools.get(event.job, event.tool)
            if event.error_kind is ErrorKind.RATE_LIMIT:
                self.limit(tool)
            elif event.status is JobStatus.SUCCEEDED:
                self.succeeded(tool)

    def limit(
        self, tool: str, *, retry_after_s: float | None = None, reset_at: float | None = None
    ) -> float:
        """Block `tool`; returns the monotonic time the block ends."""
        now = self._clock()
        state = self._limits.get(tool)
        blocked = state is not None and state.until > now
        level = state.level if state is not None else 0
        if not blocked:
            level += 1  # a new episode
        if reset_at is not None:
            delay = reset_at - self._wall()
        elif retry_after_s is not None:
            delay = retry_after_s
        else:
            delay = min(BASE_BACKOFF_S * 2 ** (level - 1), MAX_BACKOFF_S)
        until = now + max(delay, 0.0)
        if state is not None and blocked:
            until = max(until, state.until)
        self._limits[tool] = _Limit(until, level)
        return until

    def succeeded(self, tool: str) -> None:
        """A job of `tool` succeeded: the next episode starts again at 30 s.

        The current block stays: a job that started before the limit may still finish.
        """
        state = self._limits.get(tool)
        if state is not None:
            state.level = 0

    def blocked_until(self, tool: str) -> float | None:
        """When `tool` may launch again (monotonic seconds), or None when it may now."""
        state = self._limits.get(tool)
        if state is None or state.until <= self._clock():
            return None
        return state.until

    def reason(self, tool: str) -> str | None:
        """`rate limited until 14:02:10 (claude)` while blocked, else None."""
        until = self.blocked_until(tool)
        if until is None:
            return None
        resume = self._wall() + (until - self._clock())
        return f"rate limited until {time.strftime('%H:%M:%S', time.localtime(resume))} ({tool})"

    def wake_at(self) -> float | None:
        """The earliest time a blocked tool is free again, for the scheduler's sleep."""
        now = self._clock()
        ends = [s.until for s in self._limits.values() if s.until > now]
        return min(ends) if ends else None
