"""The executor seam: run one attempt of one job and report how it ended.

`LocalExecutor` runs the attempt as a child process on this machine; a distributed
executor implements the same protocol. Everything a job says goes on the bus as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from corral.events.types import (
    AgentError,
    AgentResult,
    Event,
    JobOutput,
    JobStarted,
    SessionStarted,
    Stream,
    stamp,
)
from corral.execute.process import ChildProcess, Exit, SpawnError
from corral.models import ErrorKind, JobStatus
from corral.tools.base import SessionReport

Publish = Callable[[Event], None]

DISPLAY_LINE_BYTES = 64 * 1024  # what a JobOutput event carries for display
PLAIN_KEEP_BYTES = 256 * 1024  # held in memory per line of a plain command (result, outputs)
AGENT_KEEP_BYTES = 512 * 1024 * 1024  # agent lines are parsed whole: tool results can be huge


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
    parser: str | None = None  # parser format name, None for a plain command
    timeout: float | None = None
    idle_timeout: float | None = None
    kill_grace: float = 5.0
    result_grace: float = 10.0  # an agent that printed its result and lingers is stopped
    spec: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptOutcome:
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


class StopHandle:
    """A request to stop a running attempt, with the status it should end in."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.status = JobStatus.CANCELLED
        self.error_kind: ErrorKind | None = ErrorKind.CANCELLED
        self.hard = False
        self._event = asyncio.Event()
        self._on_hard: list[Callable[[], None]] = []

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

    def on_hard(self, kill: Callable[[], None]) -> None:
        """Call `kill` when a hard stop is requested (now, if it already was)."""
        self._on_hard.append(kill)
        if self.hard:
            kill()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


class Executor(Protocol):
    async def run(
        self, request: JobRequest, publish: Publish, stop: StopHandle
    ) -> AttemptOutcome: ...


class _Attempt:
    """Per-attempt state: feeds lines to the parser and remembers what the job said."""

    def __init__(self, request: JobRequest, publish: Publish) -> None:
        self.request = request
        self.publish = publish
        self.parser = None
        if request.parser:
            from corral.parsing import make_parser

            self.parser = make_parser(request.parser, model=request.model)
        self.last_stdout: str | None = None
        # lines can arrive while the spawn is still being awaited: hold them until the
        # JobStarted event is out, so every subscriber sees start before output
        self.pending: list[tuple[Stream, bytes, int, bool]] | None = []
        self.result: AgentResult | None = None
        self.result_at: float | None = None
        self.error: AgentError | None = None
        self.session_id: str | None = None

    def on_line(self, stream: Stream, raw: bytes, offset: int, cut: bool) -> None:
        if self.pending is not None:
            self.pending.append((stream, raw, offset, cut))
            return
        text = raw.decode("utf-8", errors="replace")
        request = self.request
        shown = text if len(raw) <= DISPLAY_LINE_BYTES else text[:DISPLAY_LINE_BYTES]
        self.publish(
            JobOutput(
                job=request.job,
                attempt=request.attempt,
                stream=stream,
                text=shown,
                offset=offset,
                truncated=cut or len(raw) > DISPLAY_LINE_BYTES,
            )
        )
        if stream == "stdout" and text.strip():
            self.last_stdout = shown
        if self.parser is not None:
            self._forward(self.parser.feed(text, stream))

    def started(self) -> None:
        pending, self.pending = self.pending or [], None
        for line in pending:
            self.on_line(*line)

    def _forward(self, events: list[Event]) -> None:
        request = self.request
        for raw in events:
            event = stamp(raw, request.job, request.attempt)

            if isinstance(event, AgentResult):
                self.result = event
                self.result_at = time.monotonic()
                self.session_id = event.session_id or self.session_id
            elif isinstance(event, AgentError):
                self.error = event
            elif isinstance(event, SessionStarted):
                self.session_id = event.session_id or self.session_id
            self.publish(event)

    def session_report(self) -> SessionReport | None:
        """What the CLI's own files say (see `Tool.session_report`), read on the machine
        that ran the CLI once the process has ended. Blocking: run it in a thread."""
        if self.parser is None:
            return None
        from corral.tools import get_tool

        request = self.request
        tool = get_tool(request.tool)
        return tool.session_report(request.env, self.session_id, model=request.model)

    def cli_files(self, report: SessionReport | None) -> None:
        if self.parser is not None and report is not None:
            self._forward(self.parser.cli_files(report.model, report.source, report.lines))

    def finish(self, exit_code: int | None) -> None:
        if self.parser is not None:
            self._forward(self.parser.finish(exit_code))

    @property
    def unparsed(self) -> int:
        return int(getattr(self.parser, "unparsed", 0)) if self.parser is not None else 0


class LocalExecutor:
    """Runs attempts as child processes of this corral process."""

    async def run(self, request: JobRequest, publish: Publish, stop: StopHandle) -> AttemptOutcome:
        started = time.monotonic()
        request.log_dir.mkdir(parents=True, exist_ok=True)
        attempt = _Attempt(request, publish)
        keep = AGENT_KEEP_BYTES if request.parser else PLAIN_KEEP_BYTES
        child = ChildProcess(
            request.argv,
            cwd=request.cwd,
            env=request.env,
            log_dir=request.log_dir,
            on_line=attempt.on_line,
            keep_line_bytes=keep,
        )
        try:
            pid = await child.start()
        except SpawnError as error:
            attempt.started()
            return AttemptOutcome(
                JobStatus.FAILED,
                None,
                None,
                time.monotonic() - started,
                str(error),
                ErrorKind.SPAWN,
            )
        publish(
            JobStarted(
                job=request.job,
                attempt=request.attempt,
                pid=pid,
                argv=request.argv,
                log_dir=str(request.log_dir),
                started_at=time.time(),
                tool=request.tool,
                model=request.model,
                spec=dict(request.spec),
            )
        )
        attempt.started()
        stop.on_hard(child.kill_now)
        waiter = asyncio.ensure_future(child.wait())
        try:
            await self._watch(request, child, attempt, stop, waiter, started)
            exit_ = await asyncio.shield(waiter)
        except asyncio.CancelledError:
            # cancellation never leaves a process behind: stop, then reap, shielded
            await asyncio.shield(child.stop("cancelled", request.kill_grace))
            await asyncio.shield(waiter)
            raise
        attempt.cli_files(await asyncio.to_thread(attempt.session_report))
        attempt.finish(exit_.code)
        return self._outcome(request, attempt, child, stop, exit_.code, exit_.signal, started, pid)

    async def _watch(
        self,
        request: JobRequest,
        child: ChildProcess,
        attempt: _Attempt,
        stop: StopHandle,
        waiter: asyncio.Future[Exit],
        started: float,
    ) -> None:
        """Wait for the child while enforcing timeout, idle timeout, lingering and stop requests."""
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not waiter.done():
                now = time.monotonic()
                deadlines = [now + 3600.0]
                if request.timeout is not None:
                    deadlines.append(started + request.timeout)
                if request.idle_timeout is not None:
                    deadlines.append(child.last_output + request.idle_timeout)
                if attempt.result_at is not None:
                    deadlines.append(attempt.result_at + request.result_grace)
                wake = max(0.0, min(deadlines) - now)
                pending: set[asyncio.Future[Any]] = {waiter, stop_wait}
                await asyncio.wait(pending, timeout=wake, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    return
                reason = self._why_stop(request, child, attempt, stop, started)
                if reason is not None:
                    grace = 0.0 if stop.hard else request.kill_grace
                    await child.stop(reason, grace)
                    # after SIGKILL the group is gone; the waiter finishes promptly
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(waiter), grace + 5.0)
                    return
        finally:
            stop_wait.cancel()

    @staticmethod
    def _why_stop(
        request: JobRequest,
        child: ChildProcess,
        attempt: _Attempt,
        stop: StopHandle,
        started: float,
    ) -> str | None:
        now = time.monotonic()
        if stop.requested:
            return "stop"
        if request.timeout is not None and now - started >= request.timeout:
            return "timeout"
        if request.idle_timeout is not None and now - child.last_output >= request.idle_timeout:
            return "idle"
        if attempt.result_at is not None and now - attempt.result_at >= request.result_grace:
            return "linger"
        return None

    @staticmethod
    def _outcome(
        request: JobRequest,
        attempt: _Attempt,
        child: ChildProcess,
        stop: StopHandle,
        code: int | None,
        sig: int | None,
        started: float,
        pid: int,
    ) -> AttemptOutcome:
        duration = time.monotonic() - started
        result = attempt.result
        text = result.text if result is not None else attempt.last_stdout
        base = AttemptOutcome(
            JobStatus.SUCCEEDED,
            code,
            sig,
            duration,
            result=text,
            session_id=attempt.session_id,
            unparsed_lines=attempt.unparsed,
            pid=pid,
        )
        reason = child.stop_reason
        if reason == "stop":
            return replace(base, status=stop.status, error=stop.reason, error_kind=stop.error_kind)
        if reason == "timeout":
            return replace(
                base,
                status=JobStatus.TIMED_OUT,
                error=f"timed out after {request.timeout:g}s",
                error_kind=ErrorKind.TIMEOUT,
            )
        if reason == "idle":
            return replace(
                base,
                status=JobStatus.TIMED_OUT,
                error=f"no output for {request.idle_timeout:g}s (idle_timeout)",
                error_kind=ErrorKind.IDLE,
            )
        if result is not None and result.is_error:
            kind = result.error_kind or (
                attempt.error.error_kind if attempt.error else ErrorKind.API
            )
            error = _first_line(result.text) or (
                _first_line(attempt.error.message) if attempt.error else None
            )
            return replace(
                base,
                status=JobStatus.FAILED,
                error=error or f"{kind} (exit code {code})",
                error_kind=kind,
            )
        if reason == "linger" and result is not None:
            # the agent finished its work and then did not exit: keep the result
            return replace(base, error=None)
        if attempt.error is not None and (code != 0 or result is None):
            return replace(
                base,
                status=JobStatus.FAILED,
                error=_first_line(attempt.error.message),
                error_kind=attempt.error.error_kind,
            )
        if sig is not None:
            return replace(
                base,
                status=JobStatus.FAILED,
                error=f"killed by signal {sig}",
                error_kind=ErrorKind.EXIT,
            )
        if code != 0:
            return replace(
                base, status=JobStatus.FAILED, error=f"exit code {code}", error_kind=ErrorKind.EXIT
            )
        return base


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300] or None
