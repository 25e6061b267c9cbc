"""The budget guard: watches the ledger while jobs run and stops the spending at the limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from corral.budget.accounting import Account, Ledger
from corral.config.schema import BudgetSpec
from corral.events.types import (
    BudgetExceeded,
    Event,
    JobFinished,
    JobSkipped,
    JobStarted,
    UsageUpdated,
)

RUN = "run"
JOB = "job"


@dataclass(frozen=True, slots=True)
class Breach:
    """A budget that was reached, and what the guard did about it."""

    scope: str  # "run" or "job"
    job: str  # the job whose usage crossed the limit
    limit: str
    spent: str
    action: str  # "warn" | "stop" | "kill"


def _crossed(budget: BudgetSpec, account: Account) -> tuple[str, str, str] | None:
    """(unit, limit, spent) when the account has used the budget up, else None."""
    # `spent > 0` so that a zero budget is crossed by the first token, not by the
    # empty usage event some CLIs send before any model call
    if budget.usd is not None:
        usd = account.cost.known_usd  # an unpriced model cannot be charged: see docs/budgets.md
        if usd > 0 and usd >= budget.usd:
            return "usd", str(budget.usd), _plain(usd)
    if budget.tokens is not None:
        tokens = account.usage.budget_tokens  # cache reads excluded on purpose
        if tokens > 0 and tokens >= budget.tokens:
            return "tokens", str(budget.tokens), str(tokens)
    return None


class BudgetGuard:
    """Enforces the run budget and the per-job budgets; subscribe it right after the ledger.

    On every usage figure it checks the job's budget and the run's. A crossed budget is
    published once per scope as `BudgetExceeded` and acted on by its `on_exceed`:

    - warn: reported only;
    - stop: for the run, `stopped` turns True and `admit` refuses every job; for a job,
      `admit` refuses its further attempts (the running attempt finishes);
    - kill: as stop, and the breaching running jobs are queued for `take_kills`: the job
      itself for a job budget, every running job for the run budget.
    """

    def __init__(
        self,
        ledger: Ledger,
        run_budget: BudgetSpec | None,
        job_budgets: Mapping[str, BudgetSpec],
        publish: Callable[[Event], None],
    ) -> None:
        self._ledger = ledger
        self._run_budget = run_budget
        self._job_budgets = dict(job_budgets)
        self._publish = publish
        self._running: set[str] = set()
        self._reserved: dict[str, BudgetSpec] = {}  # admitted jobs with a budget, until they finish
        self._run_refusal: str | None = None
        self._job_refusals: dict[str, str] = {}
        self._fired: set[tuple[str, str]] = set()  # (scope, job or "") already published
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
        if isinstance(event, JobStarted):
            self._running.add(event.job)
        elif isinstance(event, UsageUpdated):
            self._check(event.job, event.attempt)
        elif isinstance(event, JobFinished):
            # leave the running set first: a run-level kill must not name a finished job
            self._running.discard(event.job)
            self._reserved.pop(event.job, None)
            self._check(event.job, event.attempt)
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

    def _check(self, job: str, attempt: int) -> None:
        budget = self._job_budgets.get(job)
        if budget is not None and (JOB, job) not in self._fired:
            crossed = _crossed(budget, self._ledger.job(job))
            if crossed is not None:
                self._act(JOB, job, attempt, budget, crossed)
        if self._run_budget is not None and (RUN, "") not in self._fired:
            crossed = _crossed(self._run_budget, self._ledger.run())
            if crossed is not None:
                self._act(RUN, job, attempt, self._run_budget, crossed)

    def _act(
        self, scope: str, job: str, attempt: int, budget: BudgetSpec, crossed: tuple[str, str, str]
    ) -> None:
        unit, limit, spent = crossed
        action = budget.on_exceed
        self._fired.add((scope, job if scope == JOB else ""))
        self.breaches.append(Breach(scope, job, f"{unit} {limit}", f"{unit} {spent}", action))
        if action != "warn":
            refusal = f"{scope} budget reached: spent {unit} {spent} of {unit} {limit}"
            if scope == RUN:
                self._run_refusal = refusal
            else:
                self._job_refusals[job] = refusal
        if action == "kill":
            self._kills.extend(sorted(self._running) if scope == RUN else [job])
        # the event carries the job for a job budget; a run budget belongs to no job
        self._publish(
            BudgetExceeded(
                job=job if scope == JOB else "",
                attempt=attempt if scope == JOB else 0,
                scope=scope,
                limit=f"{unit} {limit}",
                spent=f"{unit} {spent}",
                action=action,
            )
        )

    # -- before a launch -----------------------------------------------------------------

    def admit(self, job: str, budget: BudgetSpec | None = None) -> str | None:
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
        if run is not None and run.on_exceed != "warn":
            refusal = self._fits(job, budget, run)
            if refusal is not None:
                return refusal
        self._reserved[job] = budget
        return None

    def _fits(self, job: str, budget: BudgetSpec, run: BudgetSpec) -> str | None:
        others = {name: spec for name, spec in self._reserved.items() if name != job}
        if budget.usd is not None and run.usd is not None:
            held = sum(
                (
                    max(Decimal(0), spec.usd - self._ledger.job(name).cost.known_usd)
                    for name, spec in others.items()
                    if spec.usd is not None
                ),
                Decimal(0),
            )
            left = run.usd - self._ledger.run().cost.known_usd - held
            # a retry counts what its earlier attempts spent against its own budget
            own = budget.usd - self._ledger.job(job).cost.known_usd
            if own > left:
                return _no_room(
                    job, "usd", need=own, left=max(left, Decimal(0)), limit=run.usd, held=held
                )
        if budget.tokens is not None and run.tokens is not None:
            held_tokens = sum(
                max(0, spec.tokens - self._ledger.job(name).usage.budget_tokens)
                for name, spec in others.items()
                if spec.tokens is not None
            )
            left_tokens = run.tokens - self._ledger.run().usage.budget_tokens - held_tokens
            own_tokens = budget.tokens - self._ledger.job(job).usage.budget_tokens
            if own_tokens > left_tokens:
                return _no_room(
                    job,
                    "tokens",
                    need=own_tokens,
                    left=max(left_tokens, 0),
                    limit=run.tokens,
                    held=held_tokens,
                )
        return None

    def max_spend(self, jobs: Mapping[str, BudgetSpec | None]) -> Decimal | None:
        """`max_spend` with this guard's run budget."""
        return max_spend(self._run_budget, jobs)


def _plain(amount: Decimal | int) -> str:
    """6.000000 as 6, 0.092428 as is; never in exponent form."""
    if isinstance(amount, int):
        return str(amount)
    return format(amount.normalize(), "f")


def _no_room(
    job: str,
    unit: str,
    *,
    need: Decimal | int,
    left: Decimal | int,
    limit: Decimal | int,
    held: Decimal | int,
) -> str:
    text = (
        f"job {job} may spend up to {unit} {_plain(need)}, "
        f"but only {unit} {_plain(left)} of the run budget ({unit} {limit}) is left"
    )
    if held:
        text += f" after {unit} {_plain(held)} held for running jobs"
    return text


def max_spend(
    run_budget: BudgetSpec | None, job_budgets: Mapping[str, BudgetSpec | None]
) -> Decimal | None:
    """The most the flow can spend in USD, for `corral plan`; None when nothing bounds it.

    `job_budgets` names every job of the flow (None: no budget). The bound is the run
    budget, or the sum of the job budgets when every job has one, whichever is lower;
    `warn` budgets bound nothing. Limits act on usage reports, so a job can overshoot by
    its last model call.
    """
    caps: list[Decimal] = []
    if run_budget is not None and run_budget.usd is not None and run_budget.on_exceed != "warn":
        caps.append(run_budget.usd)
    specs = list(job_budgets.values())
    if specs and all(s is not None and s.usd is not None and s.on_exceed != "warn" for s in specs):
        caps.append(sum((s.usd for s in specs if s is not None and s.usd is not None), Decimal(0)))
    return min(caps) if caps else None


def max_tokens(
    run_budget: BudgetSpec | None, job_budgets: Mapping[str, BudgetSpec | None]
) -> int | None:
    """As `max_spend`, in budget tokens (fresh input + cache writes + output)."""
    caps: list[int] = []
    if run_budget is not None and run_budget.tokens is not None and run_budget.on_exceed != "warn":
        caps.append(run_budget.tokens)
    specs = list(job_budgets.values())
    if specs and all(
        s is not None and s.tokens is not None and s.on_exceed != "warn" for s in specs
    ):
        caps.append(sum(s.tokens for s in specs if s is not None and s.tokens is not None))
    return min(caps) if caps else None
