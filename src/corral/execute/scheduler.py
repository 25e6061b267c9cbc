"""The scheduler: runs a plan's jobs through an executor, at most N at once, in dependency
order, with conditions, retries, fail-fast, budgets and rate-limit pauses.

Only state transitions live here; how a job is turned into a process is `prepare`'s
job, what a condition means is `corral.plan`'s, what a budget allows is the guard's.
The clock and the sleep are injected so tests replay histories without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from corral.events.bus import Bus
from corral.events.types import JobFinished, JobRetrying, JobSkipped, JobWaiting
from corral.execute.executor import AttemptOutcome, Executor, JobRequest, StopHandle
from corral.models import Cost, ErrorKind, JobStatus, Usage
from corral.plan import JobView, Plan, PlannedJob, ReadyQueue, RunScope, decide, matrix_options

Sleep = Callable[[float], Awaitable[None]]
Prepare = Callable[[PlannedJob, Mapping[str, JobView], int], JobRequest]
FinishAttempt = Callable[[PlannedJob, int, AttemptOutcome], dict[str, str]]


@dataclass(frozen=True)
class Spent:
    """What a finished attempt spent, as the ledger counted it."""

    job_usage: Usage = field(default_factory=Usage)  # the job's total over its attempts
    job_cost_usd: float | None = None  # the same in dollars, for conditions (`cost_usd < 1`)
    by_model: dict[str, Usage] = field(default_factory=dict)  # this attempt, per model
    cost: Cost | None = None  # this attempt; None when it called no model
    cost_by_model: dict[str, Decimal] = field(default_factory=dict)


class Admission(Protocol):
    """What may start now: budgets and rate limits (see corral.budget)."""

    @property
    def stopped(self) -> str | None: ...
    def admit(self, job: PlannedJob, tool: str) -> str | None: ...
    def wait_hint(self, tool: str) -> float | None: ...
    def waiting_reason(self, tool: str) -> str | None: ...
    def take_kills(self) -> list[str]: ...
    def accounting(self, job: str, attempt: int) -> Spent: ...


class OpenAdmission:
    """Admits everything; used when no budget or rate-limit gate is configured."""

    stopped: str | None = None

    def admit(self, job: PlannedJob, tool: str) -> str | None:
        return None

    def wait_hint(self, tool: str) -> float | None:
        return None

    def waiting_reason(self, tool: str) -> str | None:
        return None

    def take_kills(self) -> list[str]:
        return []

    def accounting(self, job: str, attempt: int) -> Spent:
        return Spent()


@dataclass
class JobState:
    """What the scheduler knows of one job."""

    status: JobStatus = JobStatus.WAITING
    attempts: int = 0
    outcome: AttemptOutcome | None = None
    reason: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    started_at: float | None = None
    history: list[AttemptOutcome] = field(default_factory=list)
    # what the decision found upstream, for the conditions of the jobs below
    upstream_ok: bool = True
    upstream_failed: bool = False


@dataclass(frozen=True)
class Settings:
    concurrency: int
    stagger: float = 0.0
    fail_fast: bool = False
    kill_grace: float = 5.0


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        settings: Settings,
        executor: Executor,
        bus: Bus,
        prepare: Prepare,
        *,
        admission: Admission | None = None,
        finish_attempt: FinishAttempt | None = None,
        known: Mapping[str, JobView] | None = None,
        durable: Callable[[], Awaitable[object]] | None = None,
        scope: RunScope | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.executor = executor
        self.bus = bus
        self.prepare = prepare
        self.admission = admission or OpenAdmission()
        self.finish_attempt = finish_attempt
        self.durable = durable  # awaited after a job's final status is published
        self.scope = scope or RunScope()  # `env` and `flow` for conditions
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.states: dict[str, JobState] = {name: JobState() for name in plan.jobs}
        # results of jobs outside this plan (a resumed run's finished jobs, --from's needs)
        self.known: dict[str, JobView] = dict(known or {})
        self.cancelled: str | None = None
        self.hard_cancelled = False
        self._missing = {
            name: sum(1 for n in job.needs if n in plan.jobs) for name, job in plan.jobs.items()
        }
        self._ready = ReadyQueue()
        self._running: dict[str, StopHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._last_launch = -1e18
        self._crash: BaseException | None = None
        # matrix jobs: how many expansions run now, and those cancelled by fail_fast
        self._group_running: dict[str, int] = {}
        self._group_failed: dict[str, str] = {}

    # -- public ----------------------------------------------------------------------------

    async def run(self) -> dict[str, JobState]:
        # decided from a snapshot: deciding a root can settle other jobs on the spot (a skip),
        # and a job whose needs all settled that way must not be considered a second time
        roots = [name for name, count in self._missing.items() if count == 0]
        for name in roots:
            self._consider(name)
        for name, count in self._missing.items():
            if count > 0:
                self._publish_needs(name)
        while True:
            if self._crash is not None:
                self.cancel("internal error", hard=True)
                await asyncio.gather(*self._tasks, return_exceptions=True)
                raise self._crash
            self._apply_kills()
            delay = await self._launch_ready()
            if not self._running and not self._ready and not self._tasks:
                break
            self._wake.clear()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        self._close_undecided()
        return self.states

    def cancel(self, reason: str, *, hard: bool = False) -> None:
        """Stop the run: running jobs are stopped (hard: SIGKILL now). Jobs not started yet
        are cancelled, except those whose condition asks to run on cancellation (unless
        hard: a second Ctrl-C starts nothing more)."""
        self.cancelled = self.cancelled or reason
        self.hard_cancelled = self.hard_cancelled or hard
        for handle in self._running.values():
            handle.request(reason, JobStatus.CANCELLED, ErrorKind.CANCELLED, hard=hard)
        for name in self._ready.drain():
            self._consider(name)  # decided again, now that the run is cancelled
        self._wake.set()

    def poke(self) -> None:
        """Something outside changed (a budget was crossed, a rate limit lifted): look again."""
        self._wake.set()

    def views(self) -> Mapping[str, JobView]:
        """Every job's outcome as conditions and templates see it, built on access."""
        return _Views(self)

    # -- deciding --------------------------------------------------------------------------

    def _view(self, name: str, state: JobState) -> JobView:
        outcome = state.outcome
        job = self.plan.jobs[name]
        return JobView(
            status=state.status,
            result=outcome.result if outcome else None,
            exit_code=outcome.exit_code if outcome else None,
            session_id=outcome.session_id if outcome else None,
            usage=state.usage,
            cost_usd=state.cost_usd,
            outputs=state.outputs,
            continue_on_error=job.spec.continue_on_error,
            upstream_ok=state.upstream_ok,
            upstream_failed=state.upstream_failed,
        )

    def _consider(self, name: str) -> None:
        """All needs of `name` are final: run it (queue it) or skip it."""
        job = self.plan.jobs[name]
        if self.hard_cancelled:
            self._skip(name, f"not started: {self.cancelled}", JobStatus.CANCELLED)
            return
        if job.group in self._group_failed:
            self._skip(name, f"not started: {self._group_failed[job.group]}", JobStatus.CANCELLED)
            return
        # a cancelled run still runs what asks to (`if: always()`, `cancelled()`): cleanup
        decision = decide(job, self.views(), self.cancelled is not None, self.scope)
        state = self.states[name]
        state.upstream_ok, state.upstream_failed = decision.upstream_ok, decision.upstream_failed
        if decision.error:
            # a condition that cannot be evaluated is a mistake to notice, not a quiet skip
            self._fail_unstarted(name, decision.reason)
            return
        if not decision.run:
            if self.cancelled:
                self._skip(name, f"not started: {self.cancelled}", JobStatus.CANCELLED)
            else:
                self._skip(name, decision.reason)
            return
        self.states[name].status = JobStatus.READY
        self._ready.push(job)

    def _skip(self, name: str, reason: str, status: JobStatus = JobStatus.SKIPPED) -> None:
        state = self.states[name]
        state.status = status
        state.reason = reason
        self.bus.publish(JobSkipped(job=name, reason=reason))
        if status is JobStatus.CANCELLED:
            self.bus.publish(
                JobFinished(
                    job=name,
                    status=status,
                    exit_code=None,
                    signal=None,
                    duration_s=0.0,
                    error=reason,
                    error_kind=ErrorKind.CANCELLED,
                    tool=self.plan.jobs[name].adapter,
                )
            )
        self._settled(name)

    def _fail_unstarted(self, name: str, reason: str) -> None:
        state = self.states[name]
        state.status = JobStatus.FAILED
        state.reason = reason
        self.bus.publish(
            JobFinished(
                job=name,
                status=JobStatus.FAILED,
                exit_code=None,
                signal=None,
                duration_s=0.0,
                error=reason,
                tool=self.plan.jobs[name].adapter,
            )
        )
        self._after_failure(self.plan.jobs[name], JobStatus.FAILED)
        self._settled(name)

    def _after_failure(self, job: PlannedJob, status: JobStatus) -> None:
        failed = status in (JobStatus.FAILED, JobStatus.TIMED_OUT)
        if failed and job.matrix is not None and not job.spec.continue_on_error:
            self._matrix_fail_fast(job, status)
        stops_run = self.settings.fail_fast and not job.spec.continue_on_error
        if (
            stops_run
            and status.is_failure
            and status is not JobStatus.CANCELLED
            and not self.cancelled
        ):
            self.cancel(f"fail-fast: '{job.name}' {status.value}")

    def _matrix_fail_fast(self, job: PlannedJob, status: JobStatus) -> None:
        """A failed expansion cancels its matrix's others (GitHub's fail-fast, the default)."""
        if job.group in self._group_failed or not matrix_options(job.spec.matrix).fail_fast:
            return
        reason = f"fail-fast: '{job.name}' {status.value}"
        self._group_failed[job.group] = reason
        for name, handle in self._running.items():
            if name != job.name and self.plan.jobs[name].group == job.group:
                handle.request(reason, JobStatus.CANCELLED, ErrorKind.CANCELLED)

    def _settled(self, name: str) -> None:
        for dependent in self.plan.dependents(name):
            if dependent not in self._missing:
                continue
            self._missing[dependent] -= 1
            if self._missing[dependent] == 0:
                self._consider(dependent)
            else:
                self._publish_needs(dependent)
        self._wake.set()

    def _publish_needs(self, name: str) -> None:
        """Say which needs a waiting job still waits for (shown in the live view)."""
        pending = [n for n in self.plan.jobs[name].needs if not self.states[n].status.is_final]
        if not pending:
            return  # the last need is final but not settled yet: the job is decided next
        shown = ", ".join(pending[:4]) + (
            f" and {len(pending) - 4} more" if len(pending) > 4 else ""
        )
        self._publish_waiting(name, f"waiting for {shown}", JobStatus.WAITING)

    def _close_undecided(self) -> None:
        for name, state in self.states.items():
            if not state.status.is_final:
                self._skip(
                    name, f"not started: {self.cancelled or 'run ended'}", JobStatus.CANCELLED
                )

    # -- launching -------------------------------------------------------------------------

    async def _launch_ready(self) -> float | None:
        """Start what may start; return how long until something may change by itself."""
        wait: float | None = None
        deferred: list[PlannedJob] = []
        while self._ready and len(self._running) < self.settings.concurrency:
            name = self._ready.pop()
            job = self.plan.jobs[name]
            tool = job.adapter
            if stopped := self.admission.stopped:
                self._skip(name, f"not started: {stopped}")
                continue
            if refusal := self.admission.admit(job, tool):
                self._skip(name, f"not started: {refusal}")
                continue
            if job.group in self._group_failed:
                self._skip(
                    name, f"not started: {self._group_failed[job.group]}", JobStatus.CANCELLED
                )
                continue
            if (limit := self._group_limit(job)) is not None:
                self._publish_waiting(
                    name, f"waiting: {job.group} runs at most {limit} at once (max_parallel)"
                )
                deferred.append(job)
                continue
            if (hint := self.admission.wait_hint(tool)) is not None and hint > 0:
                why = self.admission.waiting_reason(tool) or f"rate limited ({tool})"
                self._publish_waiting(name, f"{why}; starts in {hint:.0f}s")
                deferred.append(job)
                wait = hint if wait is None else min(wait, hint)
                continue
            gap = self._last_launch + self.settings.stagger - self.clock()
            if gap > 0:
                deferred.append(job)
                wait = gap if wait is None else min(wait, gap)
                break
            self._start(name)
        for job in deferred:
            self._ready.push(job)
        return wait

    def _group_limit(self, job: PlannedJob) -> int | None:
        """The matrix's `max_parallel` when it is reached (so `job` must wait), else None."""
        if job.matrix is None:
            return None
        limit = matrix_options(job.spec.matrix).max_parallel
        if limit is None or self._group_running.get(job.group, 0) < limit:
            return None
        return limit

    def _publish_waiting(self, name: str, reason: str, status: JobStatus = JobStatus.READY) -> None:
        state = self.states[name]
        if state.reason != reason:
            state.reason = reason
            self.bus.publish(JobWaiting(job=name, reason=reason, status=status))

    def _start(self, name: str) -> None:
        self._last_launch = self.clock()
        handle = StopHandle()
        self._running[name] = handle
        group = self.plan.jobs[name].group
        self._group_running[group] = self._group_running.get(group, 0) + 1
        self.states[name].status = JobStatus.RUNNING
        task = asyncio.create_task(self._run_job(name, handle), name=f"job:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            # a bug in corral itself: stop the run and raise it from run(), with its traceback
            self._crash = self._crash or task.exception()

    async def _run_job(self, name: str, handle: StopHandle) -> None:
        job = self.plan.jobs[name]
        state = self.states[name]
        policy = job.retry
        try:
            if job.spec.delay:
                await self._interruptible_sleep(job.spec.delay, handle)
            attempt = 0
            while True:
                attempt += 1
                state.attempts = attempt
                outcome = await self._attempt(job, attempt, handle)
                state.history.append(outcome)
                if outcome.status is JobStatus.SUCCEEDED or handle.requested or self.cancelled:
                    break
                if not policy.should_retry(attempt, outcome.error_kind, outcome.exit_code):
                    break
                tool = job.adapter
                # a retry is a new launch: the budget may have run out meanwhile
                if self.admission.stopped or self.admission.admit(job, tool):
                    break
                delay = policy.delay(attempt, self.rng)
                # after a rate limit, wait at least until the tool may be used again
                delay = max(delay, self.admission.wait_hint(tool) or 0.0)
                state.status = JobStatus.RETRYING
                self.bus.publish(
                    JobRetrying(
                        job=name, attempt=attempt, delay_s=delay, reason=outcome.error or "failed"
                    )
                )
                await self._interruptible_sleep(delay, handle)
                # stopped while waiting: the next attempt ends at once with the stop's status
                # (in `_attempt`), so the job does not stay RETRYING
                state.status = JobStatus.RUNNING
        finally:
            self._running.pop(name, None)
            self._group_running[job.group] -= 1
        # fail-fast judges the job, not an attempt that is about to be retried
        self._after_failure(job, state.status)
        if self.durable is not None:
            # the history holds the final status before dependents or the summary see it
            await self.durable()
        self._settled(name)

    async def _interruptible_sleep(self, seconds: float, handle: StopHandle) -> None:
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        stopper = asyncio.ensure_future(handle.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    async def _attempt(self, job: PlannedJob, attempt: int, handle: StopHandle) -> AttemptOutcome:
        name = job.name
        state = self.states[name]
        try:
            request = self.prepare(job, self.views(), attempt)
        except Exception as error:  # a template or tool problem found at launch time
            from corral.errors import CorralError

            if not isinstance(error, CorralError):
                raise
            outcome = AttemptOutcome(
                JobStatus.FAILED, None, None, 0.0, error.lines()[0], ErrorKind.SPAWN
            )
        else:
            if handle.requested:
                outcome = AttemptOutcome(
                    handle.status, None, None, 0.0, handle.reason, handle.error_kind
                )
            else:
                state.started_at = time.time()
                outcome = await self.executor.run(request, self.bus.publish, handle)
        outputs = self.finish_attempt(job, attempt, outcome) if self.finish_attempt else {}
        spent = self.admission.accounting(name, attempt)
        state.outcome = outcome
        state.outputs = outputs
        state.usage = spent.job_usage
        state.cost_usd = spent.job_cost_usd
        final = outcome.status
        state.status = final
        self.bus.publish(
            JobFinished(
                job=name,
                attempt=attempt,
                status=final,
                exit_code=outcome.exit_code,
                signal=outcome.signal,
                duration_s=outcome.duration_s,
                error=outcome.error,
                error_kind=outcome.error_kind,
                result=outcome.result,
                tool=job.adapter,
                session_id=outcome.session_id,
                outputs=outputs,
                unparsed_lines=outcome.unparsed_lines,
                by_model=spent.by_model,
                cost=spent.cost,
                cost_by_model=spent.cost_by_model,
            )
        )
        return outcome

    def _apply_kills(self) -> None:
        for name in self.admission.take_kills():
            handle = self._running.get(name)
            if handle is not None:
                handle.request("budget exceeded", JobStatus.FAILED, ErrorKind.BUDGET)


class _Views(Mapping[str, JobView]):
    """A read-only mapping of job outcomes that builds each view when asked, so that
    deciding one job costs what its needs cost, not what the whole plan costs."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def __getitem__(self, name: str) -> JobView:
        scheduler = self._scheduler
        state = scheduler.states.get(name)
        if state is None:
            return scheduler.known[name]
        return scheduler._view(name, state)

    def __iter__(self) -> Iterator[str]:
        yield from self._scheduler.states
        yield from (n for n in self._scheduler.known if n not in self._scheduler.states)

    def __len__(self) -> int:
        return len(self._scheduler.states) + sum(
            1 for n in self._scheduler.known if n not in self._scheduler.states
        )

    def __contains__(self, name: object) -> bool:
        return name in self._scheduler.states or name in self._scheduler.known
