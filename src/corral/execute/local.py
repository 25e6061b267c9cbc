"""The local executor: each attempt is a process on this machine, under the run's supervisor.

Registered as `local` under the `corral.executors` entry points. Its lifecycle owns what
only makes sense on this machine: it holds the run's lock (`corral resume` tells a live
run from a dead one by it), starts the run's supervisor (`corral.execute.supervisor`:
the jobs' parent, which writes their output to their logs and records their exits even
if corral dies) and, at the run's end, has it stop and reap every process the jobs left
behind. A request with `adopt` set follows a job a dead corral left instead of starting
one (`corral resume`). Without a run context (or with CORRAL_SUPERVISE=0, a benchmark's
baseline) the jobs are corral's own children, as before the supervisor existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral.events.types import JobStarted
from corral.execute import reaper
from corral.execute.attempt import AttemptPipeline, StopReason, keep_bytes
from corral.execute.executor import (
    Adoption,
    AttemptOutcome,
    ExecutorContext,
    JobRequest,
    Publish,
    StopHandle,
)
from corral.execute.liveness import RunLock
from corral.execute.process import ChildProcess, Exit, SpawnError
from corral.execute.supervised import (
    AdoptedChild,
    JobRecord,
    SupervisedChild,
    SupervisorClient,
    attempt_key,
)
from corral.execute.waiting import first_done
from corral.models import ErrorKind, JobStatus
from corral.tools.base import SessionReport

WHOLE_LOG_BYTES = 8 * 1024 * 1024  # a log this small is searched whole (multi-line patterns)


class LogOutput:
    """An attempt's output on this machine: its stdout log and its working directory."""

    def __init__(self, stdout_log: Path, cwd: Path) -> None:
        self.stdout_log = stdout_log
        self.cwd = cwd

    def search(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """Line by line, and on the whole text only when the log is small, so a large log
        is never held in memory."""
        path = self.stdout_log
        if not path.exists():
            return None
        if path.stat().st_size <= WHOLE_LOG_BYTES:
            return pattern.search(path.read_text(encoding="utf-8", errors="replace"))
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if match := pattern.search(line.rstrip("\n")):
                    return match
        return None

    def read_file(self, name: str, limit: int) -> bytes | None:
        try:
            with (self.cwd / name).open("rb") as handle:
                return handle.read(limit)
        except OSError:
            return None


class LocalExecutor:
    """Runs attempts as child processes of this corral process (see the module docstring)."""

    def __init__(self, context: ExecutorContext | None = None) -> None:
        self.context = context
        self._lock: RunLock | None = None
        self._client: SupervisorClient | None = None
        self._hard = False  # a hard stop came: what the jobs left goes without a grace

    async def __aenter__(self) -> LocalExecutor:
        reaper.become_subreaper()
        context = self.context
        if context is not None:
            context.log_root.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(context.log_root)  # `corral resume` must not touch it
            if os.environ.get("CORRAL_SUPERVISE", "1") != "0":
                client = SupervisorClient(context.log_root, context.on_orphan, context.kill_grace)
                try:
                    await client.start()
                except BaseException:
                    self._lock.release()
                    raise
                self._client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        grace = self.context.kill_grace if self.context is not None else 5.0
        run_id = self.context.run_id if self.context is not None else None
        if self._hard:
            grace = 0.0
        try:
            if self._client is not None:
                client, self._client = self._client, None
                await client.sweep(grace)
                await client.close()
            await reaper.sweep_async(grace, run_id)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    @property
    def queues(self) -> bool:
        """Whether a request may be handed over ahead of a free slot (`JobRequest.queue`):
        the run's supervisor holds it and starts it when a job's exit frees one."""
        return self._client is not None

    def output(self, request: JobRequest) -> LogOutput:
        cwd = Path(request.cwd) if request.cwd else Path.cwd()
        return LogOutput(request.log_dir / "stdout.log", cwd)

    async def run(self, request: JobRequest, publish: Publish, stop: StopHandle) -> AttemptOutcome:
        started = time.monotonic()
        if self._client is None or request.adopt is not None:
            # the run's supervisor creates the folder of each job it starts
            request.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pipeline = AttemptPipeline(request, publish)
        started_at = time.time()
        child: ChildProcess | SupervisedChild | AdoptedChild
        if request.adopt is not None:
            child = _adopted(request.adopt, request, pipeline)
            pid = request.adopt.pid
            started_at = request.adopt.started_at
            # its timeout runs from when it really started
            started -= max(0.0, time.time() - started_at)
        else:
            # the supervisor starts the job when there is one, else this process does
            make: Callable[..., ChildProcess | SupervisedChild] = ChildProcess
            if self._client is not None:
                key = attempt_key(request.job, request.attempt)
                make = functools.partial(SupervisedChild, self._client, key, slots=request.queue)
            child = make(
                request.argv,
                cwd=request.cwd,
                env=request.env,
                log_dir=request.log_dir,
                on_line=pipeline.line,
                keep_line_bytes=keep_bytes(request),
                compact_json=request.parser is not None,
            )
            try:
                if request.queue and isinstance(child, SupervisedChild):
                    # handed over ahead of a free slot: its clocks start when it does
                    pid = await child.start_or_withdraw(stop)
                    started, started_at = time.monotonic(), time.time()
                else:
                    pid = await child.start()
            except SpawnError as error:
                pipeline.started()
                return AttemptOutcome.unstarted(
                    JobStatus.FAILED, str(error), ErrorKind.SPAWN, time.monotonic() - started
                )
        publish(
            JobStarted(
                job=request.job,
                attempt=request.attempt,
                pid=pid,
                argv=request.argv,
                log_dir=str(request.log_dir),
                started_at=started_at,
                tool=request.tool,
                model=request.model,
                spec=dict(request.spec),
            )
        )
        pipeline.started()
        stop.on_hard(child.kill_now)
        stop.on_hard(self._hard_stop)
        waiter = asyncio.ensure_future(child.wait())
        try:
            stopped = await self._watch(request, child, pipeline, stop, waiter, started)
            exit_ = await asyncio.shield(waiter)
        except asyncio.CancelledError:
            # cancellation never leaves a process behind: stop, then reap, shielded
            await asyncio.shield(child.stop("cancelled", request.kill_grace))
            await asyncio.shield(waiter)
            raise
        # the CLI's own files (its session log, its config) may say what stdout did not
        pipeline.finish(exit_.code, await _session_report(pipeline))
        outcome = pipeline.outcome(
            exit_code=exit_.code,
            signal=exit_.signal,
            stopped=stopped,
            stop=stop,
            duration_s=time.monotonic() - started,
            pid=pid,
        )
        if getattr(child, "disk_full", False) and outcome.status is JobStatus.SUCCEEDED:
            # its output may be cut short: a result read from it is not to be trusted
            return dataclasses.replace(
                outcome,
                status=JobStatus.FAILED,
                error=f"no space left on device for its logs in {request.log_dir}: "
                "its output may be incomplete (free some space, then `corral resume`)",
                error_kind=ErrorKind.EXIT,
            )
        return outcome

    def _hard_stop(self) -> None:
        self._hard = True

    async def _watch(
        self,
        request: JobRequest,
        child: ChildProcess | SupervisedChild | AdoptedChild,
        pipeline: AttemptPipeline,
        stop: StopHandle,
        waiter: asyncio.Future[Exit],
        started: float,
    ) -> StopReason | None:
        """Wait for the child while enforcing timeout, idle timeout, lingering and stop
        requests; the reason it was stopped, if it was."""
        stop_wait = stop.requested_future()
        # an agent that printed its result starts the linger clock: look again then (only
        # a parser reports a result: a plain command needs no such waiter)
        result_wait: asyncio.Future[Any] | None = None
        if pipeline.parser is not None:
            result_wait = asyncio.ensure_future(pipeline.result_seen.wait())
        try:
            while not waiter.done():
                now = time.monotonic()
                deadlines: list[float] = []
                if request.timeout is not None:
                    deadlines.append(started + request.timeout)
                if request.idle_timeout is not None:
                    deadlines.append(pipeline.active_at(child.last_output) + request.idle_timeout)
                if pipeline.result_at is not None:
                    deadlines.append(pipeline.result_at + request.result_grace)
                # nothing that can time out (a plain command's usual case): every other
                # reason to look again is a future below, so no timer is made for it
                wake = max(0.0, min(deadlines) - now) if deadlines else None
                pending: list[asyncio.Future[Any]] = [waiter, stop_wait]
                if result_wait is not None and not result_wait.done():
                    pending.append(result_wait)
                await first_done(pending, wake)
                if waiter.done():
                    return None
                reason = _why_stop(request, child, pipeline, stop, started)
                if reason is not None:
                    if reason is StopReason.STOP and self._client is not None:
                        # what the jobs left behind gets its SIGTERM now, not after the grace
                        self._client.term_orphans()
                    grace = 0.0 if stop.hard else request.kill_grace
                    await child.stop(reason, grace)
                    # after SIGKILL the group is gone; the waiter finishes promptly
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(waiter), grace + 5.0)
                    return reason
            return None
        finally:
            stop_wait.cancel()
            if result_wait is not None:
                result_wait.cancel()


async def _session_report(pipeline: AttemptPipeline) -> SessionReport | None:
    """What the CLI's own files say, read in a thread (blocking); a plain command has no
    parser and no such files, so it costs no thread hop."""
    if pipeline.parser is None:
        return None
    return await asyncio.to_thread(pipeline.session_report)


def _adopted(adopt: Adoption, request: JobRequest, pipeline: AttemptPipeline) -> AdoptedChild:
    exit_ = Exit(adopt.exit_code, adopt.signal) if adopt.ended else None
    record = JobRecord(adopt.key, adopt.pid, adopt.started_at, exit_, adopt.ended_at)
    return AdoptedChild(
        record,
        adopt.log_root,
        request.log_dir,
        pipeline.line,
        keep_bytes(request),
        compact_json=request.parser is not None,
    )


def _why_stop(
    request: JobRequest,
    child: ChildProcess | SupervisedChild | AdoptedChild,
    pipeline: AttemptPipeline,
    stop: StopHandle,
    started: float,
) -> StopReason | None:
    now = time.monotonic()
    if stop.requested:
        return StopReason.STOP
    if request.timeout is not None and now - started >= request.timeout:
        return StopReason.TIMEOUT
    idle = request.idle_timeout
    if idle is not None and now - pipeline.active_at(child.last_output) >= idle:
        return StopReason.IDLE
    if pipeline.result_at is not None and now - pipeline.result_at >= request.result_grace:
        return StopReason.LINGER
    return None
