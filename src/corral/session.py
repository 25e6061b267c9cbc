"""One run of a flow: wires the bus, the accounting, the guards, the store, the user
interface and the scheduler together, handles signals, and returns the report."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from corral.app import (
    Interrupts,
    RunOptions,
    RunReport,
    countdown,
    default_concurrency,
    exit_code_for,
    new_run_id,
    run_header,
    run_status,
)
from corral.budget.accounting import Ledger
from corral.budget.guard import BudgetGuard
from corral.budget.ratelimit import RateLimitGate
from corral.config.loader import LoadedFlow
from corral.events.bus import Bus
from corral.events.types import BudgetExceeded, Event, JobFinished, RateLimited, RunFinished
from corral.execute import reaper
from corral.execute.executor import AttemptOutcome, Executor, LocalExecutor
from corral.execute.liveness import RunLock
from corral.execute.prepare import Rehearse, RequestBuilder, default_environ
from corral.execute.scheduler import Scheduler, Settings, Spent
from corral.models import Cost, CostSource, JobStatus, RunStatus, Usage
from corral.plan import JobView, Plan, PlannedJob, RunInfo, RunScope, capture_outputs


class UI(Protocol):
    """How the run is shown: a subscriber plus a context for the live display."""

    def subscriber(self) -> Callable[[Event], None]: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...
    def countdown(self, seconds_left: float) -> None: ...


class Admission:
    """Budgets and rate limits as the scheduler sees them."""

    def __init__(self, ledger: Ledger, guard: BudgetGuard, gate: RateLimitGate) -> None:
        self.ledger = ledger
        self.guard = guard
        self.gate = gate

    @property
    def stopped(self) -> str | None:
        return "run budget exceeded" if self.guard.stopped else None

    def admit(self, job: PlannedJob, tool: str) -> str | None:
        return self.guard.admit(job.name, job.spec.budget)

    def wait_hint(self, tool: str) -> float | None:
        until = self.gate.blocked_until(tool)
        if until is None:
            return None
        return max(until - time.monotonic(), 0.0)

    def waiting_reason(self, tool: str) -> str | None:
        return self.gate.reason(tool)

    def take_kills(self) -> list[str]:
        return self.guard.take_kills()

    def accounting(self, job: str, attempt: int) -> Spent:
        account = self.ledger.attempt(job, attempt)
        total = self.ledger.job(job)
        return Spent(
            job_usage=total.usage,
            job_cost_usd=float(total.cost.usd) if total.cost.usd is not None else None,
            by_model=dict(account.by_model),
            # an attempt that called no model spent nothing: no cost, not a "$0" one
            cost=account.cost if account.by_model else None,
            cost_by_model={m: c.usd for m, c in account.cost_by_model.items() if c.usd is not None},
        )


@dataclass
class Prepared:
    """Everything decided before the first job starts."""

    run_id: str
    log_root: Path
    corral_dir: Path


def prepare_run(loaded: LoadedFlow, options: RunOptions, run_id: str | None = None) -> Prepared:
    corral_dir = (options.base_dir or loaded.path.resolve().parent) / ".corral"
    run_id = run_id or new_run_id()
    log_root = corral_dir / "runs" / run_id
    log_root.mkdir(parents=True, exist_ok=True)
    return Prepared(run_id, log_root, corral_dir)


class RunSession:
    def __init__(
        self,
        loaded: LoadedFlow,
        plan: Plan,
        options: RunOptions,
        *,
        executor: Executor | None = None,
        known: Mapping[str, JobView] | None = None,
        resumed_from: str | None = None,
        run_id: str | None = None,
        rehearse: Rehearse | None = None,
        seed: Callable[[Ledger], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.plan = plan
        self.options = options
        self.executor = executor or LocalExecutor()
        self.known = dict(known or {})
        self.resumed_from = resumed_from
        self.prepared = prepare_run(loaded, options, run_id)
        self.rehearse = rehearse
        self.bus = Bus()
        self.ledger = Ledger(_prices(options.price_file), self.bus.publish)
        self.seed = seed
        self._store: Any = None

    async def execute(self, ui: UI) -> RunReport:
        """Run the plan, shown through `ui`; returns when every job is final."""
        spec = self.loaded.spec
        prepared = self.prepared
        bus = self.bus
        ledger = self.ledger
        job_budgets = {n: j.budget for n, j in self.plan.jobs.items() if j.budget is not None}
        guard = BudgetGuard(self.plan.budget, job_budgets, bus.publish)
        gate = RateLimitGate()
        if self.seed is not None:
            self.seed(ledger)  # a resumed run's earlier spend counts against its budgets
        for name, job in self.plan.jobs.items():
            ledger.set_tool(name, job.adapter)
        writer = self._open_store()
        from corral.render.summary import JobLog

        joblog = JobLog(prepared.log_root / "joblog.tsv", list(self.plan.jobs))
        environ = default_environ()
        preparer = RequestBuilder(
            base_dir=self.loaded.path.resolve().parent,
            log_root=prepared.log_root,
            environ=environ,
            run_info=RunInfo(prepared.run_id, self.loaded.name),
            kill_grace=spec.kill_grace if spec.kill_grace is not None else 5.0,
            rehearse=self.rehearse,
        )
        settings = Settings(
            concurrency=self.options.jobs or spec.concurrency or default_concurrency(),
            stagger=spec.stagger or 0.0,
            fail_fast=self.options.fail_fast or spec.fail_fast,
            kill_grace=preparer.kill_grace,
        )
        admission = Admission(ledger, guard, gate)
        scheduler = Scheduler(
            self.plan,
            settings,
            self.executor,
            bus,
            preparer,
            admission=admission,
            finish_attempt=self._outputs_capturer(preparer),
            known=self.known,
            durable=writer.sync if writer is not None else None,
            scope=RunScope(env=environ, flow_name=self.loaded.name, run_id=prepared.run_id),
        )

        def wake(event: Event) -> None:
            if isinstance(event, BudgetExceeded | RateLimited) or (
                isinstance(event, JobFinished) and event.error_kind is not None
            ):
                scheduler.poke()

        for subscriber in (ledger, guard, gate, wake):
            bus.subscribe(subscriber)
        if writer is not None:
            bus.subscribe(writer)
        bus.subscribe(ui.subscriber())
        bus.subscribe(joblog)

        loop = asyncio.get_running_loop()
        stop_waiting = asyncio.Event()

        def on_signal(reason: str, hard: bool) -> None:
            stop_waiting.set()
            scheduler.cancel(reason, hard=hard)

        interrupts = Interrupts(on_signal)
        interrupts.install(loop)
        reaper.become_subreaper()
        lock = RunLock(prepared.log_root)  # `corral resume` must not touch a live run
        header = run_header(
            self.loaded,
            prepared.run_id,
            prepared.log_root,
            self.options.args,
            self.resumed_from,
            list(self.plan.jobs),
        )
        bus.publish(header)
        if writer is not None:
            # the run is on record before its first job exists, so a crash leaves it resumable
            await writer.sync()
        try:
            with ui:
                if self.options.start_at is not None:
                    started = await countdown(self.options.start_at, ui.countdown, stop_waiting)
                    if not started:
                        scheduler.cancel("interrupted before the start time")
                states = await scheduler.run()
        finally:
            interrupts.uninstall(loop)
            await asyncio.to_thread(reaper.sweep, settings.kill_grace)
            joblog.close()
            lock.release()
        failed = any(
            s.status.is_failure and not self.plan.jobs[n].spec.continue_on_error
            for n, s in states.items()
        )
        status = run_status(failed, interrupts.exit_code is not None)
        bus.publish(RunFinished(run_id=prepared.run_id, status=status, ended_at=time.time()))
        store_error = None
        if writer is not None:
            store_error = await asyncio.to_thread(_close_writer, writer)
            self._store.close()
        run = ledger.run()
        return RunReport(
            run_id=prepared.run_id,
            status=status,
            exit_code=exit_code_for(status, interrupts),
            started_at=header.started_at,
            ended_at=time.time(),
            log_root=prepared.log_root,
            totals=(run.usage, run.cost if run.usage.total_tokens or run.cost.usd else None),
            store_error=store_error,
        )

    def accounts(self, job: str) -> tuple[Usage, Cost | None] | None:
        """The job's usage and cost. The cost is None when nothing was reported or spent (a
        failed Codex run, a job that called no model): corral's own estimate of zero tokens
        is no cost, while a CLI that said "$0" itself (Claude on an API error) keeps it."""
        account = self.ledger.job(job)
        spent = account.usage.total_tokens or account.cost.source is CostSource.REPORTED
        if not self.ledger.reported(job) or not spent:
            return account.usage, None
        return account.usage, account.cost

    def _outputs_capturer(
        self, preparer: RequestBuilder
    ) -> Callable[[PlannedJob, int, AttemptOutcome], dict[str, str]]:
        def capture(job: PlannedJob, attempt: int, outcome: AttemptOutcome) -> dict[str, str]:
            if not job.spec.outputs or outcome.status is not JobStatus.SUCCEEDED:
                return {}
            cwd = (preparer.base_dir / job.spec.cwd) if job.spec.cwd else preparer.base_dir
            log = preparer.log_dir(job.name, attempt) / "stdout.log"
            return capture_outputs(
                job.spec.outputs, stdout_tail=search_log(log), result=outcome.result, cwd=cwd
            )

        return capture

    def _open_store(self) -> Any:
        if self.options.no_store:
            return None
        from corral.store import StoreWriter, open_store

        self._store = open_store(self.options.store, self.prepared.corral_dir / "corral.db")
        return StoreWriter(self._store)


def search_log(path: Path) -> Callable[[re.Pattern[str]], re.Match[str] | None]:
    """Search a log for a pattern without holding the file in memory: line by line,
    and on the whole text only when the log is small (multi-line patterns)."""

    def search(pattern: re.Pattern[str]) -> re.Match[str] | None:
        if not path.exists():
            return None
        if path.stat().st_size <= 8 * 1024 * 1024:
            return pattern.search(path.read_text(encoding="utf-8", errors="replace"))
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if match := pattern.search(line.rstrip("\n")):
                    return match
        return None

    return search


def _close_writer(writer: Any) -> str | None:
    from corral.errors import StoreError

    try:
        writer.close()
    except StoreError as error:
        return error.message
    return None


def _prices(path: str | None) -> Any:
    from corral.budget.pricing import PriceBook

    return PriceBook.from_file(path) if path else PriceBook()


__all__ = ["RunSession", "RunStatus"]
