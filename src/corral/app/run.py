"""Running a plan: the use case `corral run`, `exec`, `rehearse` and `resume` (and a web
server) call, `start_run`.

It wires one run: the bus; the core subscribers (the ledger that prices usage, the
budget guard, the rate-limit gate and the run's journal); the history writer and the
joblog; the subscribers the caller passes (a terminal view, a WebSocket hub...); the
executor from the registry; and the scheduler. It is a coroutine, so a caller that has
an event loop (a server) awaits it there; the CLI runs it with `asyncio.run`. Signals are
the caller's business: it cancels through the `RunControl` it passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from corral.app.check import missing_tools, version_warnings
from corral.app.header import new_run_id, run_header
from corral.app.location import corral_dir, open_history, run_logs
from corral.app.policy import Admitted, admit
from corral.app.secrets import run_redactor
from corral.budget.accounting import Ledger
from corral.budget.guard import BudgetGuard
from corral.budget.pricing import PriceBook
from corral.budget.ratelimit import RateLimitGate
from corral.config.loaded import LoadedFlow
from corral.errors import (
    EXIT_BUDGET_STOPPED,
    EXIT_JOBS_FAILED,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    StoreError,
    UsageError,
)
from corral.events.bus import Bus, Subscriber
from corral.events.redaction import redacting
from corral.events.types import (
    BudgetExceeded,
    Event,
    JobFinished,
    RateLimited,
    RunFinished,
)
from corral.execute import early
from corral.execute.admission import GuardedAdmission, descriptor_concurrency
from corral.execute.executor import AttemptOutcome, Executor, ExecutorContext, JobRequest
from corral.execute.prepare import Rehearse, RequestBuilder, default_environ
from corral.execute.registry import DEFAULT_EXECUTOR, create_executor
from corral.execute.scheduler import Scheduler, Settings, queue_ahead
from corral.journal import JobLog, RunJournal
from corral.models import Cost, ErrorKind, JobStatus, RunStatus, Usage
from corral.plan import JobView, Plan, PlannedJob, RunInfo, RunScope
from corral.private import new_private_dir
from corral.redact import Redactor
from corral.store.protocols import (
    HistoryStore,
    HistoryWriter,
    LoopClosingWriter,
    NumberingWriter,
    SeqListener,
)

if TYPE_CHECKING:
    from corral.app.resume import ResumedRun

DEFAULT_KILL_GRACE = 5.0


def default_concurrency() -> int:
    """How many jobs run at once when neither the flow nor --jobs says: the CPUs, >= 2."""
    return max(os.cpu_count() or 2, 2)


@dataclass(frozen=True)
class RunOptions:
    """How to run a plan: what the command line (or a server request) asked for.

    `jobs`, `fail_fast` and `executor` override the flow's `concurrency`, `fail_fast`
    and `executor`; `store` is a history URL (default: SQLite in `.corral/`) and
    `no_store` keeps none; `base_dir` is where `.corral` lives (default: the flow's
    folder); `args` are recorded with the run; `policies` are Rego policy files or
    folders that must allow the flow, on top of its own `policy:` and CORRAL_POLICY.
    """

    jobs: int | None = None
    fail_fast: bool = False
    start_at: datetime | None = None
    store: str | None = None
    no_store: bool = False
    executor: str | None = None
    args: tuple[str, ...] = ()
    base_dir: Path | None = None
    price_file: str | None = None
    run_id: str | None = None
    policies: tuple[str, ...] = ()
    owner: str | None = None  # who the run belongs to (a server's caller); default: the user
    # when a `run_id` chosen ahead (a server's) was made: the run starts then, so its id
    # and its `started_at` say the same second
    started_at: float | None = None


@dataclass(frozen=True)
class RunReport:
    """How a run ended. `journal` is its final state: the summary table and the `--json`
    document are made from it."""

    run_id: str
    status: RunStatus
    exit_code: int  # 0 when every job succeeded (or may fail), else 1
    started_at: float
    ended_at: float
    log_root: Path
    journal: RunJournal
    store_error: str | None = None

    @property
    def totals(self) -> tuple[Usage, Cost | None]:
        return self.journal.usage, self.journal.cost


class RunControl:
    """Stops a run from outside: the CLI's signal handlers, a server's cancel request.

    `cancel` may come before the run starts (then it starts nothing) or at any time while
    it runs; the first reason is kept, and `hard` kills the running jobs at once.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.hard = False
        self._scheduler: Scheduler | None = None
        self._waiting: asyncio.Event | None = None

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str, *, hard: bool = False) -> None:
        self.reason = self.reason or reason
        self.hard = self.hard or hard
        if self._waiting is not None:
            self._waiting.set()
        if self._scheduler is not None:
            self._scheduler.cancel(reason, hard=hard)

    def _bind(self, scheduler: Scheduler) -> asyncio.Event:
        self._scheduler = scheduler
        self._waiting = asyncio.Event()
        if self.reason is not None:
            self._waiting.set()
            scheduler.cancel(self.reason, hard=self.hard)
        return self._waiting


class RunView(Protocol):
    """How a run is shown while it runs (the terminal UI is one)."""

    def subscriber(self, journal: RunJournal) -> Subscriber:
        """The bus subscriber that shows the run; `journal` is its state. It gets every
        output line as `JobOutput` unless the view has `shows_lines` False."""
        ...

    def __enter__(self) -> object: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def countdown(self, seconds_left: float) -> None:
        """Show that the run starts in `seconds_left` (--start-at)."""
        ...


@dataclass
class _Wiring:
    """What one run is made of, built before it starts (so a failure leaks nothing)."""

    bus: Bus
    journal: RunJournal
    ledger: Ledger
    guard: BudgetGuard
    gate: RateLimitGate
    history: HistoryStore | None = None
    writer: HistoryWriter | None = None
    extra: list[Subscriber] = field(default_factory=list)


async def start_run(
    loaded: LoadedFlow,
    plan: Plan,
    options: RunOptions,
    *,
    view: RunView | None = None,
    subscribers: Sequence[Subscriber] = (),
    executor: Executor | None = None,
    control: RunControl | None = None,
    known: Mapping[str, JobView] | None = None,
    resumed: ResumedRun | None = None,
    rehearse: Rehearse | None = None,
    warn: Callable[[str], None] | None = None,
    admitted: Admitted | None = None,
    listeners: Sequence[SeqListener] = (),
) -> RunReport:
    """Run `plan` to its end and report how it went.

    `known` are finished results of jobs outside the plan (a resumed run's) for
    conditions and templates; by default the needs `--from` left out are looked up in
    the history. `resumed` is the run this one finishes (its spend counts against the
    budgets); `rehearse` points agent jobs at a simulated provider. `executor` defaults
    to the one `options` or the flow names; with the local one, a missing agent CLI is a
    ToolError before anything starts, and `warn` hears of each installed CLI whose
    version is not the one its adapter was verified with.

    Before anything else the policies that apply must allow the flow
    (`corral.app.policy.admit`; its warnings go to `warn`): a denial raises PolicyDenied
    with nothing started and only the refusal recorded. `admitted` is the result of an
    `admit` the caller already made. `listeners` hear each event the history stores with
    its number there, as it is published (a server's live feed), if the history's
    writer numbers events then.
    """
    if admitted is None:
        admit(loaded, plan, options, warn=warn)
    control = control or RunControl()
    spec = loaded.spec
    base_dir = options.base_dir or loaded.path.resolve().parent
    # one instant for the run's id and its `started_at`: they agree to the second
    started_at = options.started_at if options.run_id and options.started_at else time.time()
    run_id = options.run_id or new_run_id(started_at)
    log_root = run_logs(base_dir, run_id)
    kill_grace = spec.kill_grace if spec.kill_grace is not None else DEFAULT_KILL_GRACE
    concurrency = options.jobs or spec.concurrency or default_concurrency()
    if executor is None:
        name = options.executor or spec.executor or DEFAULT_EXECUTOR
        if name == DEFAULT_EXECUTOR:
            # the jobs' pipes and logs are this process's descriptors
            concurrency = descriptor_concurrency(concurrency, warn)
            # the agent CLIs run here: say which are missing before anything starts
            located = missing_tools(plan, default_environ())
            if warn is not None and located:  # a plain command runs no agent CLI to ask
                for warning in version_warnings(located):
                    warn(warning)
        else:
            # the jobs run elsewhere: the supervisor this command started early is not used
            early.discard()
        context = ExecutorContext(run_id, log_root, kill_grace, on_orphan=spec.on_orphan)
        executor = create_executor(name, context)
    if known is None and plan.external_needs and not options.no_store:
        # the needs `--from` left out: their last recorded results, for templates
        from corral.app.history import earlier_results

        known = earlier_results(options.store, base_dir, loaded.path, plan.external_needs)
    _claim_run_folder(base_dir, log_root)
    environ = default_environ()
    redactor = run_redactor(loaded, plan, environ)
    wiring = _wire(plan, options, resumed, redactor)
    try:
        wiring.history = None if options.no_store else open_history(options.store, base_dir)
        wiring.writer = wiring.history.writer() if wiring.history is not None else None
        if isinstance(wiring.writer, NumberingWriter):
            for listener in listeners:
                wiring.writer.listen(listener)
    except BaseException:
        _close_history(wiring)
        raise
    builder = RequestBuilder(
        base_dir=loaded.path.resolve().parent,
        log_root=log_root,
        environ=environ,
        run_info=RunInfo(run_id, loaded.name),
        kill_grace=kill_grace,
        rehearse=rehearse,
        redactor=redactor,
        adoptions=resumed.adopted.jobs if resumed is not None else {},
        continue_sessions=resumed.sessions if resumed is not None else {},
    )
    stagger = spec.stagger or 0.0
    fail_fast = options.fail_fast or spec.fail_fast
    settings = Settings(
        concurrency=concurrency,
        stagger=stagger,
        fail_fast=fail_fast,
        kill_grace=kill_grace,
        # adopted jobs (a resume's) run outside the supervisor's queue: none ahead then
        lookahead=0
        if resumed is not None and resumed.adopted.jobs
        else queue_ahead(plan, concurrency, stagger=stagger, fail_fast=fail_fast),
    )
    scheduler = Scheduler(
        plan,
        settings,
        executor,
        wiring.bus,
        builder,
        admission=GuardedAdmission(wiring.guard, wiring.gate),
        finish_attempt=_outputs_capturer(executor),
        known=known,
        durable=wiring.writer.sync if wiring.writer is not None else None,
        scope=RunScope(env=environ, flow_name=loaded.name, run_id=run_id),
        journal=wiring.journal,
    )
    _subscribe(wiring, scheduler, view, subscribers)
    joblog = JobLog(log_root / "joblog.tsv", list(plan.jobs))
    wiring.bus.subscribe(joblog, output=False)
    waiting = control._bind(scheduler)
    header = run_header(
        loaded,
        run_id,
        log_root,
        options.args,
        resumed.run_id if resumed else None,
        plan.jobs,
        owner=options.owner,
        rehearsal=rehearse is not None,
        started_at=started_at,
    )
    try:
        async with executor:
            wiring.bus.publish(header)
            if wiring.writer is not None:
                # on record before its first job exists, so a crash leaves it resumable
                await wiring.writer.sync()
            with view if view is not None else contextlib.nullcontext():
                if options.start_at is not None:
                    tick = view.countdown if view is not None else _no_tick
                    if not await countdown(options.start_at, tick, waiting):
                        scheduler.cancel("interrupted before the start time")
                states = await scheduler.run()
    except BaseException:
        await _close_history_async(wiring)  # a bug: keep what was written
        raise
    finally:
        joblog.close()
    stopped = set(scheduler.held_back) | {
        n for n, s in states.items() if s.outcome and s.outcome.error_kind is ErrorKind.BUDGET
    }
    failed = any(
        s.status.is_failure and not plan.jobs[n].spec.continue_on_error and n not in stopped
        for n, s in states.items()
    )
    status = run_status(failed, control.cancelled, budget_stopped=bool(stopped))
    wiring.bus.publish(RunFinished(run_id=run_id, status=status, ended_at=time.time()))
    store_error = await _close_history_async(wiring)
    return RunReport(
        run_id=run_id,
        status=status,
        # an event that could not be made durable is never success: the history is what
        # `corral resume` trusts
        exit_code=EXIT_STORE if store_error else RUN_EXIT_CODES[status],
        started_at=header.started_at,
        ended_at=time.time(),
        log_root=log_root,
        journal=wiring.journal,
        store_error=store_error,
    )


def _claim_run_folder(base_dir: Path, log_root: Path) -> None:
    """Make the run's logs folder, 0700, by this call and no other: a run never writes
    into another run's folder (an id given twice, or drawn twice: 80 random bits)."""
    try:
        new_private_dir(log_root, below=corral_dir(base_dir))
    except FileExistsError:
        raise UsageError(
            f"run {log_root.name} already has a folder: {log_root}",
            hint="start it again: a new run gets a new id",
        ) from None


def _wire(
    plan: Plan, options: RunOptions, resumed: ResumedRun | None, redactor: Redactor
) -> _Wiring:
    """The bus and the core subscribers, in the order they see each event."""
    bus = Bus(transform=redacting(redactor))
    prices = PriceBook.from_file(options.price_file) if options.price_file else PriceBook()
    ledger = Ledger(prices, bus.publish)
    budgets = {name: job.budget for name, job in plan.jobs.items() if job.budget is not None}
    guard = BudgetGuard(plan.budget, budgets, bus.publish)
    journal = RunJournal(plan.jobs, budget=plan.budget)
    wiring = _Wiring(bus, journal, ledger, guard, RateLimitGate())
    for name, job in plan.jobs.items():
        ledger.set_tool(name, job.adapter)
        journal.job(name).tool = job.adapter  # known from the plan before the job starts
    # the ledger, the guard and the gate read no output line (one event per line printed)
    for subscriber in (ledger, guard, wiring.gate):
        bus.subscribe(subscriber, output=False)
    # the journal keeps each job's last line (the live table's): not every line
    bus.subscribe(journal, output="last")
    if resumed is not None:
        # earlier runs' spend counts against this run's budgets; it is published before
        # the history writer listens, as it is on record with the runs that spent it
        resumed.carry_into(ledger)
    return wiring


def _subscribe(
    wiring: _Wiring, scheduler: Scheduler, view: RunView | None, extra: Iterable[Subscriber]
) -> None:
    def wake(event: Event) -> None:
        # a budget crossed, a rate limit met or lifted: the scheduler looks again
        if isinstance(event, BudgetExceeded | RateLimited) or (
            isinstance(event, JobFinished) and event.error_kind is not None
        ):
            scheduler.poke()

    wiring.bus.subscribe(wake, output=False, events=(BudgetExceeded, RateLimited, JobFinished))
    if wiring.writer is not None:
        wiring.bus.subscribe(wiring.writer, output=False)  # lines stay in the log files
    if view is not None:
        # a view that says it shows no line (quiet, the live table) takes none
        shows_lines = getattr(view, "shows_lines", True)
        wiring.bus.subscribe(view.subscriber(wiring.journal), output=bool(shows_lines))
    for subscriber in extra:
        wiring.bus.subscribe(subscriber)


def _outputs_capturer(
    executor: Executor,
) -> Callable[[PlannedJob, JobRequest | None, AttemptOutcome], dict[str, str]]:
    def capture(
        job: PlannedJob, request: JobRequest | None, outcome: AttemptOutcome
    ) -> dict[str, str]:
        if not job.spec.outputs or request is None or outcome.status is not JobStatus.SUCCEEDED:
            return {}
        from corral.plan.outputs import capture_outputs

        # the job's stdout and files are where it ran: the executor reads them
        return capture_outputs(
            job.spec.outputs, output=executor.output(request), result=outcome.result
        )

    return capture


async def _close_history_async(wiring: _Wiring) -> str | None:
    """`_close_history` off the event loop: on the writer's own thread as it ends when the
    writer can (no thread pool to start, then to shut down as asyncio.run returns), else
    on one."""
    writer, history = wiring.writer, wiring.history
    if writer is None and history is None:
        return None  # --no-store: nothing to close
    if not isinstance(writer, LoopClosingWriter):
        return await asyncio.to_thread(_close_history, wiring)
    try:
        await writer.close_on_thread(history.close if history is not None else lambda: None)
    except StoreError as failure:
        return failure.message
    return None


def _close_history(wiring: _Wiring) -> str | None:
    """Close the writer, then the history; what could not be written, if anything."""
    error = None
    try:
        if wiring.writer is not None:
            wiring.writer.close()
    except StoreError as failure:
        error = failure.message
    finally:
        if wiring.history is not None:
            wiring.history.close()
    return error


def run_status(failed: bool, cancelled: bool, *, budget_stopped: bool = False) -> RunStatus:
    """How a run ended: cancelled from outside, else failed if a job failed (and may not),
    else stopped if a budget held back or killed work, else succeeded."""
    if cancelled:
        return RunStatus.CANCELLED
    if failed:
        return RunStatus.FAILED
    return RunStatus.STOPPED if budget_stopped else RunStatus.SUCCEEDED


RUN_EXIT_CODES = {
    RunStatus.SUCCEEDED: EXIT_OK,
    RunStatus.FAILED: EXIT_JOBS_FAILED,
    RunStatus.CANCELLED: EXIT_JOBS_FAILED,  # the CLI says 130/143 for a signal
    RunStatus.STOPPED: EXIT_BUDGET_STOPPED,
    RunStatus.REFUSED: EXIT_USAGE,  # a policy denied the flow (PolicyDenied's code)
    RunStatus.RUNNING: EXIT_JOBS_FAILED,  # never the end of a run
}


def _no_tick(seconds_left: float) -> None:
    return None


async def countdown(until: datetime, tick: Callable[[float], None], stop: asyncio.Event) -> bool:
    """Wait until `until`, calling `tick(seconds_left)` every second. False if stopped."""
    while True:
        left = (until - datetime.now(until.tzinfo)).total_seconds()
        if left <= 0:
            return True
        tick(left)
        try:
            await asyncio.wait_for(stop.wait(), min(left, 1.0))
            return False
        except TimeoutError:
            continue
