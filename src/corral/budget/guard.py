"""The budget guard: watches the spend while jobs run and stops the spending at the limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from corral.events.types import (
    BudgetExceeded,
    Event,
    JobFinished,
    JobSkipped,
    JobStarted,
    SpendUpdated,
)
from corral.models import (
    BudgetAction,
    BudgetScope,
    BudgetUnit,
    Cost,
    Usage,
    amount_text,
)
from corral.plan.limits import Limits, limit_of


@dataclass(frozen=True, slots=True)
class Breach:
    """A budget that was reached, and what the guard did about it."""

    scope: BudgetScope
    job: str  # the job whose spend crossed the limit
    unit: BudgetUnit
    limit: Decimal | int
    spent: Decimal | int
    action: BudgetAction


def _spent(unit: BudgetUnit, usage: Usage, cost: Cost) -> Decimal | int:
    # an unpriced model cannot be charged (docs/budgets.md); cache reads are left out
    return cost.known_usd if unit is BudgetUnit.USD else usage.budget_tokens


def _crossed(budget: Limits, usage: Usage, cost: Cost) -> tuple[BudgetUnit, Decimal | int] | None:
    """(unit, spent) when this spend has used the budget up, else None."""
    for unit in BudgetUnit:
        limit = limit_of(budget, unit)
        spent = _spent(unit, usage, cost)
        # `spent > 0` so that a zero budget is crossed by the first token, not by the
        # empty usage event some CLIs send before any model call
        if limit is not None and spent > 0 and spent >= limit:
            return unit, spent
    return None


class BudgetGuard:
    """Enforces the run budget and the per-job budgets; subscribe it to the run's bus.

    It reads the spend from the ledger's `SpendUpdated` events (the job's and the run's
    totals after each priced update). A crossed budget is published once per scope as
    `BudgetExceeded` and acted on by its `on_exceed`:

    - warn: reported only;
    - stop: for the run, `stopped` turns True and `admit` refuses every job; for a job,
      `admit` refuses its further attempts (the running attempt finishes);
    - kill: as stop, and the breaching running jobs are queued for `take_kills`: the job
      itself for a job budget, every running job for the run budget.
    """

    # what it reads
    BUS_EVENTS: ClassVar[tuple[type[Event], ...]] = (
        SpendUpdated,
        JobStarted,
        JobFinished,
        JobSkipped,
    )

    def __init__(
        self,
        run_budget: Limits | None,
        job_budgets: Mapping[str, Limits],
        publish: Callable[[Event], None],
    ) -> None:
        self._run_budget = run_budget
        self._job_budgets = dict(job_budgets)
        self._publish = publish
        self._jobs: dict[str, tuple[Usage, Cost]] = {}  # each job's spend so far
        self._run: tuple[Usage, Cost] = (Usage(), Cost.zero())
        self._running: set[str] = set()
        self._reserved: dict[str, Limits] = {}  # admitted jobs with a budget, until they end
        self._run_refusal: str | None = None
        self._job_refusals: dict[str, str] = {}
        self._fired: set[tuple[BudgetScope, str]] = set()  # (scope, job or "") published
        self._kills: list[str] = []
        self.breaches: list[Breach] = []

    @property
    def stopped(self) -> bool:
        """True once the run budget was reached with on_exceed stop or kill."""
        return self._run_refusal is not None

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def __call__(self, event: Event) -> None:
        if isinstance(event, SpendUpdated):
            self._jobs[event.job] = (event.job_usage, event.job_cost)
            self._run = (event.run_usage, event.run_cost)
            self._check(event.job, event.attempt)
        elif isinstance(event, JobStarted):
            self._running.add(event.job)
        elif isinstance(event, JobFinished):
            # a run-level kill must not name a finished job
            self._running.discard(event.job)
            self._reserved.pop(event.job, None)
        elif isinstance(event, JobSkipped):
            self._reserved.pop(event.job, None)

    def take_kills(self) -> list[str]:
        """The running jobs to kill because of a `kill` budget, each once; clears the queue.

        The scheduler calls this after it hands a job's events to the bus.
        """
        kills = [job for job in dict.fromkeys(self._kills) if job in self._running]
        self._kills.clear()
        return kills

    # -- while jobs run ------------------------------------------------------------------

    def _job_spend(self, job: str) -> tuple[Usage, Cost]:
        return self._jobs.get(job, (Usage(), Cost.zero()))

    def _check(self, job: str, attempt: int) -> None:
        budget = self._job_budgets.get(job)
        if budget is not None and (BudgetScope.JOB, job) not in self._fired:
            crossed = _crossed(budget, *self._job_spend(job))
            if crossed is not None:
                self._act(BudgetScope.JOB, job, attempt, budget, crossed)
        if self._run_budget is not None and (BudgetScope.RUN, "") not in self._fired:
            crossed = _crossed(self._run_budget, *self._run)
            if crossed is not None:
                self._act(BudgetScope.RUN, job, attempt, self._run_budget, crossed)

    def _act(
        self,
        scope: BudgetScope,
        job: str,
        attempt: int,
        budget: Limits,
        crossed: tuple[BudgetUnit, Decimal | int],
    ) -> None:
        unit, spent = crossed
        limit = limit_of(budget, unit)
        assert limit is not None  # crossed only where a limit is set
        action = BudgetAction(budget.on_exceed)
        self._fired.add((scope, job if scope is BudgetScope.JOB else ""))
        self.breaches.append(Breach(scope, job, unit, limit, spent, action))
        if action is not BudgetAction.WARN:
            refusal = (
                f"{scope} budget reached: spent {amount_text(unit, spent)} "
                f"of {amount_text(unit, limit)}"
            )
            if scope is BudgetScope.RUN:
                self._run_refusal = refusal
            else:
                self._job_refusals[job] = refusal
        if action is BudgetAction.KILL:
            self._kills.extend(sorted(self._running) if scope is BudgetScope.RUN else [job])
        # the event carries the job for a job budget; a run budget belongs to no job
        self._publish(
            BudgetExceeded(
                job=job if scope is BudgetScope.JOB else "",
                attempt=attempt if scope is BudgetScope.JOB else 0,
                scope=scope,
                unit=unit,
                limit=limit,
                spent=spent,
                action=action,
            )
        )

    # -- before a launch -----------------------------------------------------------------

    def admit(self, job: str, budget: Limits | None = None) -> str | None:
        """Why `job` must not start now, or None; call it before every attempt.

        `budget` defaults to the job's budget given at construction. A job with a declared
        budget is admitted only if that budget fits in what is left of the run budget once
        the budgets of the jobs already running are held back for them.
        """
        if self._run_refusal is not None:
            return self._run_refusal
        if job in self._job_refusals:
            return self._job_refusals[job]
        budget = budget if budget is not None else self._job_budgets.get(job)
        if budget is None:
            return None
        run = self._run_budget
        if run is not None and run.on_exceed != BudgetAction.WARN:
            for unit in BudgetUnit:
                refusal = self._fits(job, budget, run, unit)
                if refusal is not None:
                    return refusal
        self._reserved[job] = budget
        return None

    def _fits(self, job: str, budget: Limits, run: Limits, unit: BudgetUnit) -> str | None:
        own_limit, run_limit = limit_of(budget, unit), limit_of(run, unit)
        if own_limit is None or run_limit is None:
            return None
        zero: Decimal | int = Decimal(0) if unit is BudgetUnit.USD else 0
        held = zero
        for name, spec in self._reserved.items():
            limit = limit_of(spec, unit)
            if name != job and limit is not None:
                held += max(zero, limit - _spent(unit, *self._job_spend(name)))
        left = run_limit - _spent(unit, *self._run) - held
        # a retry counts what its earlier attempts spent against its own budget
        own = own_limit - _spent(unit, *self._job_spend(job))
        if own <= left:
            return None
        text = (
            f"job {job} may spend up to {amount_text(unit, own)}, but only "
            f"{amount_text(unit, max(left, zero))} of the run budget "
            f"({amount_text(unit, run_limit)}) is left"
        )
        if held:
            text += f" after {amount_text(unit, held)} held for running jobs"
        return text
