"""A fake Executor and a virtual-time event loop, to drive the real Scheduler without
spawning processes or waiting.

`VirtualTimeLoop` is an asyncio event loop whose clock is a number: when nothing is
ready to run it jumps straight to the next timer instead of blocking, so `asyncio.sleep`,
`asyncio.wait_for` timeouts and the scheduler's injected `sleep` all take no real time.
When nothing is ready and no timer is set, nothing can ever happen again: it raises
`Deadlock` instead of blocking forever (so "the run always terminates" is checked, not
hoped for).

`FakeExecutor` follows a script (job name -> one `Step` per attempt; the last step repeats
for later attempts), publishes `JobStarted`, "runs" by awaiting its (virtual) sleep,
honours the `StopHandle` and returns `AttemptOutcome` values. It records every attempt
with its virtual start and end so tests can check order, overlap and concurrency.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from corral.events.types import JobStarted
from corral.execute.executor import AttemptOutcome, JobRequest, Publish, StopHandle
from corral.models import ErrorKind, JobStatus

T = TypeVar("T")
SIGTERM = 15


class Deadlock(RuntimeError):
    """Nothing is ready, no timer is set: the awaited work can never finish."""


class _VirtualSelector:
    """Wraps a real selector: polls it (never blocks) and moves the loop's clock instead."""

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        loop.iterations += 1
        if loop.iterations > loop.max_iterations:
            raise Deadlock(f"more than {loop.max_iterations} loop iterations: a livelock?")
        events = self._real.select(0)
        if events:
            return events
        if timeout is None:
            raise Deadlock(f"nothing to run and no timer set at t={loop.time():g}")
        if timeout > 0:
            loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: `time()` starts at 0 and only timers move it."""

    def __init__(self, max_iterations: int = 200_000) -> None:
        self._now = 0.0
        self.iterations = 0
        self.max_iterations = max_iterations
        super().__init__(_VirtualSelector(self, selectors.DefaultSelector()))  # type: ignore[arg-type]

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def run_virtual(
    main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]], *, max_iterations: int = 200_000
) -> T:
    """Run `main(loop)` to completion on a fresh virtual-time loop, then close the loop."""
    loop = VirtualTimeLoop(max_iterations)
    try:
        return loop.run_until_complete(main(loop))
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.max_iterations = loop.iterations + 10_000
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except Deadlock:
            pass  # a task that ignores cancellation: already reported by the run itself
        finally:
            loop.close()


class RecordingSleep:
    """An injected `sleep`: remembers every request (virtual time, seconds), then sleeps on
    the loop's clock, which is virtual under `VirtualTimeLoop`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.calls: list[tuple[float, float]] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append((self.clock(), seconds))
        await asyncio.sleep(seconds)

    @property
    def delays(self) -> list[float]:
        return [seconds for _, seconds in self.calls]


@dataclass(frozen=True)
class Step:
    """How one attempt ends. `duration` is in virtual seconds (`math.inf`: until stopped)."""

    status: JobStatus = JobStatus.SUCCEEDED
    exit_code: int | None = 0
    error_kind: ErrorKind | None = None
    result: str | None = None
    duration: float = 1.0
    error: str | None = None

    def outcome(self, elapsed: float) -> AttemptOutcome:
        error = self.error
        if error is None and self.status is not JobStatus.SUCCEEDED:
            error = f"{self.error_kind or 'failed'} (exit code {self.exit_code})"
        return AttemptOutcome(
            self.status,
            self.exit_code,
            None,
            elapsed,
            error,
            self.error_kind,
            result=self.result,
        )


def ok(duration: float = 1.0, result: str | None = None) -> Step:
    return Step(JobStatus.SUCCEEDED, 0, None, result, duration)


def fail(code: int = 1, kind: ErrorKind | None = ErrorKind.EXIT, duration: float = 1.0) -> Step:
    return Step(JobStatus.FAILED, code, kind, None, duration)


def timed_out(duration: float = 1.0) -> Step:
    return Step(JobStatus.TIMED_OUT, None, ErrorKind.TIMEOUT, None, duration)


def hang() -> Step:
    return Step(duration=math.inf)


@dataclass
class Attempt:
    """One attempt as the executor saw it."""

    job: str
    attempt: int
    started: float
    ended: float | None = None
    outcome: AttemptOutcome | None = None
    stopped: bool = False  # ended by a StopHandle request
    request: JobRequest | None = field(default=None, repr=False)


class FakeExecutor:
    """Runs scripted attempts on the (virtual) clock; see the module docstring."""

    def __init__(
        self,
        script: Mapping[str, Sequence[Step]] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
        default: Step = Step(),
        on_start: Callable[[JobRequest], None] | None = None,
    ) -> None:
        self.script = dict(script or {})
        self.sleep = sleep
        self.clock = clock or (lambda: asyncio.get_running_loop().time())
        self.default = default
        self.on_start = on_start
        self.attempts: list[Attempt] = []
        self.running: dict[str, Attempt] = {}
        self.max_running = 0
        self.overlaps: list[str] = []  # a job started while an attempt of it was running

    def step(self, job: str, attempt: int) -> Step:
        steps = self.script.get(job) or [self.default]
        return steps[min(attempt, len(steps)) - 1]

    async def run(self, request: JobRequest, publish: Publish, stop: StopHandle) -> AttemptOutcome:
        step = self.step(request.job, request.attempt)
        now = self.clock()
        record = Attempt(request.job, request.attempt, now, request=request)
        if request.job in self.running:
            self.overlaps.append(request.job)
        self.attempts.append(record)
        self.running[request.job] = record
        self.max_running = max(self.max_running, len(self.running))
        if self.on_start is not None:
            self.on_start(request)
        publish(
            JobStarted(
                job=request.job,
                attempt=request.attempt,
                pid=10_000 + len(self.attempts),
                argv=request.argv,
                log_dir=str(request.log_dir),
                started_at=now,
                tool=request.tool,
            )
        )
        try:
            stopper = asyncio.ensure_future(stop.wait())
            waiters: set[asyncio.Future[Any]] = {stopper}
            sleeper = None
            if math.isfinite(step.duration):
                sleeper = asyncio.ensure_future(self.sleep(step.duration))
                waiters.add(sleeper)
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            elapsed = self.clock() - now
            if sleeper is not None and sleeper.done() and not sleeper.cancelled():
                outcome = step.outcome(elapsed)
            else:
                record.stopped = True
                outcome = AttemptOutcome(
                    stop.status, None, SIGTERM, elapsed, stop.reason, stop.error_kind
                )
            record.outcome = outcome
            return outcome
        finally:
            record.ended = self.clock()
            self.running.pop(request.job, None)

    # -- what happened ----------------------------------------------------------------------

    def started(self) -> list[str]:
        """Jobs in the order their first attempt started."""
        return [a.job for a in self.attempts if a.attempt == 1]

    def of(self, job: str) -> list[Attempt]:
        return [a for a in self.attempts if a.job == job]

    def first_start(self, job: str) -> float | None:
        found = self.of(job)
        return found[0].started if found else None

    def last_end(self, job: str) -> float | None:
        ends = [a.ended for a in self.of(job) if a.ended is not None]
        return max(ends) if ends else None
