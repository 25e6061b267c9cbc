"""The scheduler: runs a plan's jobs through an executor, at most N at once, in dependency
order, with conditions, retries, fail-fast, budgets and rate-limit pauses.

Only state transitions live here; how a job is turned into a request is `prepare`'s
job, where it runs the executor's, what a condition means is `corral.plan`'s, what a
budget allows the admission's, and what a job spent the run's journal's. The clock and
the sleep are injected so tests replay histories without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.events.bus import Bus
from corral.events.types import JobRetrying, JobSkipped, JobWaiting
from corral.execute.admission import Admission, OpenAdmission
from corral.execute.executor import AttemptOutcome, Executor, JobRequest, StopHandle, Withdrawn
from corral.execute.matrix import MatrixGroups
from corral.execute.views import JobState, JobViews, finished_event
from corral.journal.state import RunJournal
from corral.models import ErrorKind, JobStatus
from corral.plan import JobView, Plan, PlannedJob, ReadyQueue, RunScope, decide

if TYPE_CHECKING:
    import random

Sleep = Callable[[float], Awaitable[None]]
BuildRequest = Callable[[PlannedJob, Mapping[str, JobView], int], JobRequest]
FinishAttempt = Callable[[PlannedJob, JobRequest | None, AttemptOutcome], dict[str, str]]


@dataclass(frozen=True)
class Settings:
    """How the scheduler runs a plan: at most `concurrency` attempts at once, `stagger`
    seconds between two launches, everything cancelled at the first failure with
    `fail_fast`."""

    concurrency: int
    stagger: float = 0.0
    fail_fast: bool = False
    kill_grace: float = 5.0
    # attempts handed to an executor that queues (`LocalExecutor.queues`) ahead of a free
    # slot, so the next one starts the moment a job ends: `queue_ahead` says when the
    # outcome cannot change what starts next (0: never)
    lookahead: int = 0


def queue_ahead(plan: Plan, concurrency: int, *, stagger: float, fail_fast: bool) -> int:
    """How many attempts may wait in the executor's queue beyond `concurrency`: as many
    again when what starts next depends on no running job's outcome and on nothing the
    scheduler checks at launch (no fail-fast, stagger, retry, delay, matrix or budget,
    and plain commands only, which hit no rate limit and spend nothing); else 0. A
    queued job that a stop withdraws is put back as if it had never been launched."""
    if stagger or fail_fast or plan.budget is not None:
        return 0
    for job in plan.jobs.values():
        spec = job.spec
        if (
            job.tool is not None
            or job.retry.retries
            or spec.delay
            or job.matrix is not None
            or job.budget is not None
        ):
            return 0
    return concurrency


class Scheduler:
    """Runs a plan's jobs through an executor (see the module docstring).

    `run()` returns each job's final state once every job is final; `cancel()` and
    `poke()` may be called meanwhile from the same event loop. `journal` is the run's
    fold (a fresh one subscribed to `bus` when not given): finished jobs' usage and cost
    for conditions and templates, and each attempt's figures for its `JobFinished`.
    """

    def __init__(
        self,
        plan: Plan,
        settings: Settings,
        executor: Executor,
        bus: Bus,
        prepare: BuildRequest,
        *,
        admission: Admission | None = None,
        finish_attempt: FinishAttempt | None = None,
        known: Mapping[str, JobView] | None = None,
        durable: Callable[[], Awaitable[object]] | None = None,
        scope: RunScope | None = None,
        journal: RunJournal | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.executor = executor
        self.bus = bus
        self.prepare = prepare
        if journal is None:
            journal = RunJournal(plan.jobs)
            bus.subscribe(journal)
        self.journal = journal
        self.admission = admission or OpenAdmission()
        self.finish_attempt = finish_attempt
        self.durable = durable  # awaited after the final status of a job others need
        self.scope = scope or RunScope()  # `env` and `flow` for conditions
        self.sleep = sleep
        self.clock = clock
        self.wall = wall  # stamps JobFinished.ended_at
        self._rng = rng
        self.states: dict[str, JobState] = {name: JobState() for name in plan.jobs}
        # results of jobs outside this plan (a resumed run's finished jobs, --from's needs)
        self.known: dict[str, JobView] = dict(known or {})
        self.cancelled: str | None = None
        self.hard_cancelled = False
        # jobs a budget kept from starting, and why: the run is `stopped`, not a success
        self.held_back: dict[str, str] = {}
        self._missing = {
            name: sum(1 for n in job.needs if n in plan.jobs) for name, job in plan.jobs.items()
        }
        self._ready = ReadyQueue()
        self._running: dict[str, StopHandle] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._live = 0  # job tasks not yet done
        self._wake = asyncio.Event()
        self._last_launch = -1e18
        self._matrices = MatrixGroups()  # max_parallel and fail_fast per matrix
        self._ahead = 0  # settings.lookahead while the executor queues (see `run`)

    # -- public ----------------------------------------------------------------------------

    async def run(self) -> dict[str, JobState]:
        """Run every job to a final state. A bug in corral itself (an exception in a job's
        task) stops every running attempt and is raised from here, with its traceback."""
        # decided from a snapshot: deciding a root can settle other jobs on the spot (a skip),
        # and a job whose needs all settled that way must not be considered a second time
        if self.settings.lookahead and getattr(self.executor, "queues", False):
            self._ahead = self.settings.lookahead
        roots = [name for name, count in self._missing.items() if count == 0]
        for name in roots:
            self._consider(name)
        for name, count in self._missing.items():
            if count > 0:
                self._publish_needs(name)
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                await self._loop()
        except BaseExceptionGroup as crash:
            errors = crash.exceptions
            raise (errors[0] if len(errors) == 1 else crash) from None
        finally:
            self._task_group = None
        self._close_undecided()
        return self.states

    async def _loop(self) -> None:
        while True:
            self._apply_kills()
            delay = await self._launch_ready()
            if not self._running and not self._ready and not self._live:
                return
            self._wake.clear()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

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

    @property
    def rng(self) -> random.Random:
        """The retries' jitter: made by the first retry (most runs never retry)."""
        if self._rng is None:
            import random

            self._rng = random.Random()
        return self._rng

    def poke(self) -> None:
        """Something outside changed (a budget was crossed, a rate limit lifted): look again."""
        self._wake.set()

    def views(self) -> Mapping[str, JobView]:
        """Every job's outcome as conditions and templates see it, built on access."""
        return JobViews(self.plan, self.states, self.known, self.journal)

    # -- deciding --------------------------------------------------------------------------

    def _consider(self, name: str) -> None:
        """All needs of `name` are final: run it (queue it) or skip it."""
        job = self.plan.jobs[name]
        if self.hard_cancelled:
            self._skip(name, f"not started: {self.cancelled}", JobStatus.CANCELLED)
            return
        if stopped := self._matrices.cancelled(job):
            self._skip(name, f"not started: {stopped}", JobStatus.CANCELLED)
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
            outcome = AttemptOutcome.unstarted(status, reason, ErrorKind.CANCELLED)
            self._publish_finished(self.plan.jobs[name], 0, outcome, {})
        self._settled(name)

    def _fail_unstarted(self, name: str, reason: str) -> None:
        state = self.states[name]
        state.status = JobStatus.FAILED
        state.reason = reason
        outcome = AttemptOutcome.unstarted(JobStatus.FAILED, reason, None)
        self._publish_finished(self.plan.jobs[name], 0, outcome, {})
        self._after_failure(self.plan.jobs[name], JobStatus.FAILED)
        self._settled(name)

    def _publish_finished(
        self, job: PlannedJob, attempt: int, outcome: AttemptOutcome, outputs: dict[str, str]
    ) -> None:
        """`JobFinished` for an attempt (0: a job settled without one)."""
        spent = self.journal.attempt(job.name, attempt)
        self.bus.publish(finished_event(job, attempt, outcome, outputs, spent, self.wall()))

    def _after_failure(self, job: PlannedJob, status: JobStatus) -> None:
        if reason := self._matrices.failed(job, status):
            # a failed expansion cancels its matrix's others (GitHub's fail-fast)
            for name, handle in self._running.items():
                if name != job.name and self.plan.jobs[name].group == job.group:
                    handle.request(reason, JobStatus.CANCELLED, ErrorKind.CANCELLED)
        stops_run = self.settings.fail_fast and not job.spec.continue_on_error
        if (
            stops_run
            and status.is_failure
            and status is not JobStatus.CANCELLED
            and not self.cancelled
        ):
            self.cancel(f"fail-fast: '{job.name}' {status.value}")

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
        while self._ready and len(self._running) < self.settings.concurrency + self._ahead:
            name = self._ready.pop()
            job = self.plan.jobs[name]
            tool = job.adapter
            if stopped := self.admission.stopped:
                self.held_back[name] = stopped
                self._skip(name, f"not started: {stopped}")
                continue
            if refusal := self.admission.admit(job):
                self.held_back[name] = refusal
                self._skip(name, f"not started: {refusal}")
                continue
            if stopped := self._matrices.cancelled(job):
                self._skip(name, f"not started: {stopped}", JobStatus.CANCELLED)
                continue
            if (limit := self._matrices.limit(job)) is not None:
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

    def _publish_waiting(self, name: str, reason: str, status: JobStatus = JobStatus.READY) -> None:
        state = self.states[name]
        if state.reason != reason:
            state.reason = reason
            self.bus.publish(JobWaiting(job=name, reason=reason, status=status))

    def _start(self, name: str) -> None:
        assert self._task_group is not None  # launched only from inside run()
        self._last_launch = self.clock()
        handle = StopHandle()
        self._running[name] = handle
        self._matrices.started(self.plan.jobs[name])
        self.states[name].status = JobStatus.RUNNING
        self._live += 1
        self._task_group.create_task(self._run_job(name, handle), name=f"job:{name}")

    async def _run_job(self, name: str, handle: StopHandle) -> None:
        try:
            await self._job(name, handle)
        finally:
            # the task's last step (no done callback per job): the loop may end once
            # no job is live
            self._live -= 1
            self._wake.set()

    async def _job(self, name: str, handle: StopHandle) -> None:
        job = self.plan.jobs[name]
        state = self.states[name]
        policy = job.retry
        withdrawn = False
        try:
            if job.spec.delay:
                await self._interruptible_sleep(job.spec.delay, handle)
            attempt = 0
            while True:
                attempt += 1
                state.attempts = attempt
                try:
                    outcome = await self._attempt(job, attempt, handle)
                except Withdrawn:
                    # stopped while queued for a slot: as if it had never been launched
                    state.attempts = 0
                    state.started_at = None
                    withdrawn = True
                    break
                state.history.append(outcome)
                if outcome.status is JobStatus.SUCCEEDED or handle.requested or self.cancelled:
                    break
                if not policy.should_retry(attempt, outcome.error_kind, outcome.exit_code):
                    break
                tool = job.adapter
                # a retry is a new launch: the budget may have run out meanwhile
                if self.admission.stopped or self.admission.admit(job):
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
            self._matrices.ended(job)
            # its slot is free: the loop may start the next job while this one's final
            # status is made durable (its dependents still wait for that, below)
            self._wake.set()
        if withdrawn:
            self._consider(name)  # decided again, as a job still in the ready queue is
            return
        # fail-fast judges the job, not an attempt that is about to be retried
        self._after_failure(job, state.status)
        if self.durable is not None and self.plan.dependents(name):
            # the history holds the final status before a dependent is decided on it. A
            # job nothing needs waits for no write of its own: the writer's next batch
            # (at most its window later) or its close before the summary stores it, and a
            # resume that finds it unrecorded adopts it from the supervisor's records
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
        request: JobRequest | None = None
        try:
            request = self.prepare(job, self.views(), attempt)
        except Exception as error:  # a template, tool or file problem found at launch time
            from corral.errors import CorralError

            if not isinstance(error, CorralError | OSError):
                raise  # a bug in corral: stop the run and show it
            outcome = AttemptOutcome.unstarted(JobStatus.FAILED, *_unprepared(error))
        else:
            if handle.requested:
                outcome = AttemptOutcome.unstarted(handle.status, handle.reason, handle.error_kind)
            else:
                state.started_at = self.wall()
                if self._ahead:
                    request = dataclasses.replace(request, queue=self.settings.concurrency)
                try:
                    outcome = await self.executor.run(request, self.bus.publish, handle)
                except OSError as error:  # its files or its process could not be made
                    message = f"cannot start: {error.strerror or error}"
                    outcome = AttemptOutcome.unstarted(JobStatus.FAILED, message, ErrorKind.SPAWN)
        outputs = self.finish_attempt(job, request, outcome) if self.finish_attempt else {}
        state.outcome = outcome
        state.outputs = outputs
        state.status = outcome.status
        self._publish_finished(job, attempt, outcome, outputs)
        return outcome

    def _apply_kills(self) -> None:
        for name in self.admission.take_kills():
            handle = self._running.get(name)
            if handle is not None:
                handle.request("budget exceeded", JobStatus.FAILED, ErrorKind.BUDGET)


def _unprepared(error: Exception) -> tuple[str, ErrorKind]:
    """Why a job's attempt could not be built: the message and its error kind."""
    from corral.errors import CorralError, InputError, TemplateError

    if isinstance(error, TemplateError):
        return error.lines()[0], ErrorKind.TEMPLATE
    if isinstance(error, InputError):
        return error.lines()[0], ErrorKind.INPUT
    if isinstance(error, CorralError):
        return error.lines()[0], ErrorKind.SPAWN
    return f"cannot prepare the job: {error}", ErrorKind.SPAWN
