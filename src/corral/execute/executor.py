"""The executor seam: the protocol every executor implements, and the values it trades.

The scheduler decides *what* runs and *when*; an executor runs one attempt of one job
*somewhere* (`corral.execute.local` as child processes of this corral; a distributed
executor on other machines) and reports how it ended. Executors are registered under
the `corral.executors` entry-point group (`local` is registered that way by corral
itself) and chosen with `corral run --executor NAME` or a flow's `executor:` key.

What every executor must do is written on `Executor`; `corral.testing.conformance`
checks it, and any executor can run those checks against itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from corral.events.bus import Subscriber
from corral.models import ErrorKind, JobStatus

if TYPE_CHECKING:
    from corral.plan.outputs import OutputReader

Publish = Subscriber  # what an executor is given to publish with: the run's bus


@dataclass(frozen=True)
class ExecutorContext:
    """The run an executor serves, given when the run creates it from the registry."""

    run_id: str
    log_root: Path  # where the run's logs and lock live (local to the coordinator)
    kill_grace: float = 5.0  # SIGTERM to SIGKILL, for what the executor stops at its end
    on_orphan: str = "adopt"  # when corral dies: jobs keep running (adopt) or stop (kill)


@dataclass(frozen=True)
class Adoption:
    """A job a dead corral started, to follow instead of starting again (`corral resume`).

    `log_root` is the dead run's (where its supervisor's records are); `ended` says the
    job finished while no corral was there, with `exit_code` or `signal`.
    """

    log_root: Path
    key: str
    pid: int
    started_at: float
    log_dir: Path  # where its output is (the dead run's log folder of that attempt)
    ended: bool = False
    exit_code: int | None = None
    signal: int | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class JobRequest:
    """Everything needed to run one attempt of one job."""

    job: str
    attempt: int
    argv: tuple[str, ...]
    cwd: str | None
    env: Mapping[str, str]
    log_dir: Path
    tool: str = "generic"
    model: str | None = None
    parser: str | None = None  # a `corral.parsers` format; None for plain text
    timeout: float | None = None
    idle_timeout: float | None = None
    kill_grace: float = 5.0
    # an agent that printed its result and lingers is stopped; a loaded machine can take
    # seconds to let a Node CLI exit (Qwen Code after a tool call: over 10 s), and the CLI
    # may still be writing the session files corral reads afterwards
    result_grace: float = 30.0
    spec: Mapping[str, object] = field(default_factory=dict)
    adopt: Adoption | None = None  # follow this job a dead corral left (resume) instead
    # > 0: the run hands this attempt over ahead of a free slot; the executor starts it
    # once fewer than `queue` of the run's attempts run (`Executor.queues`), and a stop
    # requested before then withdraws it (`Withdrawn`). Only for executors that queue.
    queue: int = 0


class Withdrawn(Exception):
    """Raised by `run()` for a queued request (`JobRequest.queue`) withdrawn by a stop
    before it started: nothing was published, the job is as if never launched."""


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended: a status, the exit (code or signal) and what it said."""

    status: JobStatus
    exit_code: int | None
    signal: int | None
    duration_s: float
    error: str | None = None
    error_kind: ErrorKind | None = None
    result: str | None = None
    session_id: str | None = None
    unparsed_lines: int = 0
    pid: int | None = None

    @classmethod
    def unstarted(
        cls,
        status: JobStatus,
        error: str | None,
        error_kind: ErrorKind | None,
        duration_s: float = 0.0,
    ) -> AttemptOutcome:
        """An attempt that never had a process: it could not be built, started or was
        stopped before it began."""
        return cls(status, None, None, duration_s, error, error_kind)


class StopHandle:
    """A request to stop a running attempt, with the status it should end in.

    The scheduler requests (Ctrl-C, fail-fast, a budget kill); the executor watches
    `wait()` and stops the attempt, at once when `hard` (see `on_hard`).
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.status = JobStatus.CANCELLED
        self.error_kind: ErrorKind | None = ErrorKind.CANCELLED
        self.hard = False
        self._event = asyncio.Event()
        self._on_hard: list[Callable[[], None]] = []
        self._on_request: list[Callable[[], None]] = []
        self._futures: list[asyncio.Future[None]] = []

    def request(
        self, reason: str, status: JobStatus, error_kind: ErrorKind | None, *, hard: bool = False
    ) -> None:
        if self.reason is None:
            self.reason = reason
            self.status = status
            self.error_kind = error_kind
        if hard and not self.hard:
            self.hard = True
            for kill in self._on_hard:
                kill()
        self._event.set()
        callbacks, self._on_request = self._on_request, []
        for callback in callbacks:
            callback()
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)

    def on_hard(self, kill: Callable[[], None]) -> None:
        """Call `kill` when a hard stop is requested (now, if it already was)."""
        self._on_hard.append(kill)
        if self.hard:
            kill()

    def on_request(self, callback: Callable[[], None]) -> None:
        """Call `callback` once a stop is requested (now, if it was), on the requesting
        side: what an executor does at once, with no task waiting for `wait()`."""
        if self._event.is_set():
            callback()
        else:
            self._on_request.append(callback)

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def requested_future(self) -> asyncio.Future[None]:
        """A future done once a stop is requested (at once if it was): what an executor
        waits on next to its process without a task per attempt around `wait()`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._event.is_set():
            future.set_result(None)
        else:
            self._futures.append(future)
        return future


@runtime_checkable
class Executor(Protocol):
    """Runs attempts somewhere and reports them. What an implementation must do:

    Lifecycle. A run enters the executor once (`async with executor:`) before its first
    attempt and leaves it after its last: whatever the executor needs for the whole run
    happens there (the local executor becomes a child subreaper, holds the run's lock
    so `corral resume` can tell a live run from a dead one, and at the end stops and
    reaps every process the run left behind). `run()` is only called inside.

    Publishing. For each attempt, in this order, through `publish`:
    1. `JobStarted` (pid, argv, log_dir, tool, model, spec) once the attempt's process
       exists and before any of its output; nothing if it could not be started;
    2. every output line as `JobOutput` (while no subscriber of the run's bus takes
       every line, only the lines that decide each job's last line: see
       `corral.events.bus`), and what the job's parser reads from it (`UsageUpdated`,
       `AgentResult`...): use `corral.execute.attempt.AttemptPipeline`, which does both
       (`line`, or `lines` for a run of whole lines), stamps the events with the job and
       attempt and holds lines that arrive before `JobStarted` is out;
    3. when the process has ended, what the CLI's own files say
       (`AttemptPipeline.session_report`, read where the CLI ran) and the parser's last
       events (`AttemptPipeline.finish`).
    The scheduler publishes `JobFinished` itself, with the returned outcome.

    Ownership. The executor owns the attempt's processes: it enforces the request's
    `timeout`, `idle_timeout` (no output for that long) and `result_grace` (an agent
    that printed its result and lingers), stops the attempt when `stop` is requested
    (SIGTERM, `kill_grace`, SIGKILL; at once after a hard request), never leaves a
    process behind, even when `run()` is cancelled, and classifies the end with
    `AttemptPipeline.outcome` so every executor reports failures alike.

    Output. `output(request)` reads a finished attempt's stdout and the files it wrote
    in its working directory, wherever they are, for the job's `outputs:`.
    """

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def run(self, request: JobRequest, publish: Publish, stop: StopHandle) -> AttemptOutcome:
        """Run one attempt to its end and say how it ended."""
        ...

    def output(self, request: JobRequest) -> OutputReader:
        """The finished attempt's stdout and working-directory files."""
        ...


ExecutorFactory = Callable[[ExecutorContext], Executor]
