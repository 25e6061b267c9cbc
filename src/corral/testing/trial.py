"""The harness of the executor conformance checks: one `Trial` per check (its run, its
requests, what was published), how an attempt is run and timed, and the registry of
checks."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from corral.events.types import Event, JobOutput
from corral.execute import reaper
from corral.execute.executor import (
    AttemptOutcome,
    Executor,
    ExecutorContext,
    JobRequest,
    StopHandle,
)
from corral.testing.program import Program

ExecutorFactory = Callable[[ExecutorContext], Executor]
ATTEMPT_LIMIT_S = 60.0  # no check's attempt should take longer (on the loop's clock)


class ConformanceError(AssertionError):
    """An executor does not do what the protocol asks; the message says what."""


def expect(condition: bool, message: str) -> None:
    """Raise ConformanceError(message) unless `condition` holds."""
    if not condition:
        raise ConformanceError(message)


@dataclass
class Trial:
    """One check's run: its executor, context and what was published."""

    make: ExecutorFactory
    workdir: Path
    kill_grace: float = 5.0
    run_id: str = field(default_factory=lambda: f"conformance-{uuid.uuid4().hex[:12]}")
    events: list[Event] = field(default_factory=list)

    def context(self) -> ExecutorContext:
        log_root = self.workdir / "runs" / self.run_id
        log_root.mkdir(parents=True, exist_ok=True)
        return ExecutorContext(self.run_id, log_root, self.kill_grace)

    def request(
        self,
        program: Program,
        job: str = "job",
        *,
        tool: str = "generic",
        parser: str | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        result_grace: float = 30.0,
    ) -> JobRequest:
        cwd = self.workdir / "cwd"
        cwd.mkdir(exist_ok=True)
        return JobRequest(
            job=job,
            attempt=1,
            argv=program.argv(),
            cwd=str(cwd),
            # every process of the attempt carries the mark: what is left behind is found
            env={**os.environ, "CORRAL_RUN_ID": self.run_id, "CORRAL_JOB": job},
            log_dir=self.workdir / "runs" / self.run_id / job,
            tool=tool,
            parser=parser,
            timeout=timeout,
            idle_timeout=idle_timeout,
            kill_grace=self.kill_grace,
            result_grace=result_grace,
        )

    def kinds(self, job: str = "job") -> list[type[Event]]:
        return [type(e) for e in self.events if e.job == job]

    def left_behind(self) -> list[int]:
        """Processes still carrying this check's run mark."""
        return sorted(reaper.marked_processes([self.run_id]))


async def run_attempt(
    executor: Executor,
    trial: Trial,
    request: JobRequest,
    stop: StopHandle | None = None,
    on_output: Callable[[StopHandle], None] | None = None,
) -> tuple[AttemptOutcome, float]:
    """Run one attempt; `on_output` is called (soon) after its first output line, when
    the program is surely running (and ignoring SIGTERM, if it does)."""
    handle = stop or StopHandle()
    loop = asyncio.get_running_loop()
    seen: list[JobOutput] = []

    def publish(event: Event) -> None:
        trial.events.append(event)
        if on_output is not None and isinstance(event, JobOutput) and not seen:
            seen.append(event)
            loop.call_soon(on_output, handle)

    began = loop.time()
    try:
        outcome = await asyncio.wait_for(executor.run(request, publish, handle), ATTEMPT_LIMIT_S)
    except TimeoutError:
        raise ConformanceError(
            f"attempt {request.job} did not end within {ATTEMPT_LIMIT_S:g}s"
        ) from None
    return outcome, loop.time() - began


Check = Callable[[ExecutorFactory, Path], Awaitable[None]]


@dataclass(frozen=True)
class NamedCheck:
    """A check with the name tests show for it."""

    name: str
    run: Check

    def __call__(self, make: ExecutorFactory, workdir: Path) -> Awaitable[None]:
        return self.run(make, workdir)


CHECKS: list[NamedCheck] = []


def check(function: Check) -> Check:
    """Register a check under its function's name."""
    CHECKS.append(NamedCheck(function.__name__.removeprefix("check_"), function))
    return function
