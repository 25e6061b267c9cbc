"""A fake `Executor` that runs no process: it plays attempts on the event loop's clock
(virtual under `VirtualTimeLoop`), for testing what sits above the executor seam.

Two ways to say what an attempt does:
- a script, job name -> one `Step` per attempt (the last step repeats): how it ends and
  how long it takes. The scheduler's tests use this;
- a `Program` in the request's argv (`corral.testing.program`): its output goes through
  the shared attempt pipeline (parsers included), the request's timeout, idle timeout
  and result grace are enforced, a stop is honoured after `kill_grace` (at once when
  hard) and the end is classified as every executor classifies it. The conformance
  checks use this, which is how the fake passes the checks the local executor passes.

It records every attempt with its (virtual) start and end so tests can check order,
overlap and concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.events.types import JobStarted, Stream
from corral.execute.attempt import AttemptPipeline, StopReason
from corral.execute.executor import (
    AttemptOutcome,
    ExecutorContext,
    JobRequest,
    Publish,
    StopHandle,
)
from corral.models import ErrorKind, JobStatus
from corral.plan.outputs import TextOutput
from corral.testing.program import MISSING, Program


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
    """An attempt that succeeds after `duration`."""
    return Step(JobStatus.SUCCEEDED, 0, None, result, duration)


def fail(code: int = 1, kind: ErrorKind | None = ErrorKind.EXIT, duration: float = 1.0) -> Step:
    """An attempt that fails with `code` (of `kind`) after `duration`."""
    return Step(JobStatus.FAILED, code, kind, None, duration)


def timed_out(duration: float = 1.0) -> Step:
    """An attempt that times out after `duration`."""
    return Step(JobStatus.TIMED_OUT, None, ErrorKind.TIMEOUT, None, duration)


def hang() -> Step:
    """An attempt that runs until it is stopped."""
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
    """Plays scripted attempts on the (virtual) clock; see the module docstring."""

    def __init__(
        self,
        script: Mapping[str, Sequence[Step]] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
        default: Step = Step(),
        on_start: Callable[[JobRequest], None] | None = None,
        context: ExecutorContext | None = None,
    ) -> None:
        self.script = dict(script or {})
        self.sleep = sleep
        self.clock = clock or (lambda: asyncio.get_running_loop().time())
        self.default = default
        self.on_start = on_start
        self.context = context
        self.attempts: list[Attempt] = []
        self.running: dict[str, Attempt] = {}
        self.max_running = 0
        self.overlaps: list[str] = []  # a job started while an attempt of it was running
        self.entered = 0  # times the lifecycle was entered...
        self.exited = 0  # ...and left
        self._outputs: dict[tuple[str, int], TextOutput] = {}

    async def __aenter__(self) -> FakeExecutor:
        self.entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited += 1

    def output(self, request: JobRequest) -> TextOutput:
        return self._outputs.get((request.job, request.attempt), TextOutput())

    def step(self, job: str, attempt: int) -> Step:
        steps = self.script.get(job) or [self.default]
        return steps[min(attempt, len(steps)) - 1]

    async def run(self, request: JobRequest, publish: Publish, stop: StopHandle) -> AttemptOutcome:
        program = None if request.job in self.script else Program.from_argv(request.argv)
        now = self.clock()
        record = Attempt(request.job, request.attempt, now, request=request)
        if program is not None and program.missing:
            AttemptPipeline(request, publish, self.clock).started()
            record.outcome = AttemptOutcome.unstarted(
                JobStatus.FAILED, f"command not found: {MISSING}", ErrorKind.SPAWN
            )
            record.ended = now
            self.attempts.append(record)
            return record.outcome
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
                model=request.model,
                spec=dict(request.spec),
            )
        )
        try:
            if program is not None:
                outcome = await self._play(request, program, publish, stop, record)
            else:
                outcome = await self._scripted(request, stop, record)
            record.outcome = outcome
            return outcome
        finally:
            record.ended = self.clock()
            self.running.pop(request.job, None)

    async def _scripted(
        self, request: JobRequest, stop: StopHandle, record: Attempt
    ) -> AttemptOutcome:
        step = self.step(request.job, request.attempt)
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
        elapsed = self.clock() - record.started
        if sleeper is not None and sleeper.done() and not sleeper.cancelled():
            return step.outcome(elapsed)
        record.stopped = True
        return AttemptOutcome(
            stop.status, None, signal.SIGTERM, elapsed, stop.reason, stop.error_kind
        )

    async def _play(
        self,
        request: JobRequest,
        program: Program,
        publish: Publish,
        stop: StopHandle,
        record: Attempt,
    ) -> AttemptOutcome:
        pipeline = AttemptPipeline(request, publish, self.clock)
        pipeline.started()
        streams: tuple[tuple[Stream, tuple[str, ...]], ...] = (
            ("stderr", program.stderr),
            ("stdout", program.stdout),
        )
        for stream, lines in streams:
            offset = 0
            for line in lines:
                raw = line.encode()
                pipeline.line(stream, raw, offset, False)
                offset += len(raw) + 1
        self._outputs[(request.job, request.attempt)] = TextOutput(
            "".join(f"{line}\n" for line in program.stdout),
            {name: text.encode() for name, text in program.files},
        )
        last_output = self.clock()
        code: int | None = program.exit_code
        sig: int | None = None
        stopped: StopReason | None = None
        if program.hang:
            stopped = await self._watch(request, pipeline, stop, record.started, last_output)
            sig = await self._stopped(request, program, stop)
            code = None
            record.stopped = stopped is StopReason.STOP
        pipeline.finish(code)
        return pipeline.outcome(
            exit_code=code,
            signal=sig,
            stopped=stopped,
            stop=stop,
            duration_s=self.clock() - record.started,
            pid=10_000 + len(self.attempts),
        )

    async def _watch(
        self,
        request: JobRequest,
        pipeline: AttemptPipeline,
        stop: StopHandle,
        started: float,
        last_output: float,
    ) -> StopReason:
        """What the local executor's watchdog does, on this loop's clock."""
        while True:
            deadlines: list[tuple[float, StopReason]] = []
            if request.timeout is not None:
                deadlines.append((started + request.timeout, StopReason.TIMEOUT))
            if request.idle_timeout is not None:
                idle_at = pipeline.active_at(last_output) + request.idle_timeout
                deadlines.append((idle_at, StopReason.IDLE))
            if pipeline.result_at is not None:
                deadlines.append((pipeline.result_at + request.result_grace, StopReason.LINGER))
            if stop.requested:
                return StopReason.STOP
            now = self.clock()
            due = [reason for at, reason in deadlines if at <= now]
            if due:
                return due[0]
            wake = min((at for at, _ in deadlines), default=now + 3600.0) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wake)

    async def _stopped(self, request: JobRequest, program: Program, stop: StopHandle) -> int:
        """SIGTERM ends it, unless it ignores SIGTERM: then SIGKILL after the grace (or at
        once, when the stop is hard). The signal it died of."""
        if not program.ignore_term:
            return signal.SIGKILL if stop.hard else signal.SIGTERM
        if not stop.hard:
            hard = asyncio.Event()
            stop.on_hard(hard.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hard.wait(), request.kill_grace)
        return signal.SIGKILL

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
