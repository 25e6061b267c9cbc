"""BudgetGuard: crossing fires once, warn/stop/kill, pre-launch refusal, plan-time bounds.

The guard reads the spend from the ledger's `SpendUpdated` events, as in a run: the
harness wires a ledger that prices usage and publishes them on the same bus.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from corral.budget import max_spend, max_tokens
from corral.budget.accounting import Ledger
from corral.budget.guard import BudgetGuard
from corral.budget.pricing import PriceBook, Rates
from corral.config.schema import BudgetSpec
from corral.events.bus import Bus
from corral.events.types import (
    BudgetExceeded,
    Event,
    JobFinished,
    JobStarted,
    SpendUpdated,
    UsageUpdated,
)
from corral.models import (
    BudgetAction,
    BudgetScope,
    BudgetUnit,
    Cost,
    CostSource,
    JobStatus,
    Usage,
)

M = 1_000_000
RATES = {"m": Rates.fill(input=Decimal(1), output=Decimal(2))}  # $1 per M input, $2 per M output


class Harness:
    def __init__(self, run: BudgetSpec | None, jobs: dict[str, BudgetSpec] | None = None) -> None:
        self.bus = Bus()
        self.ledger = Ledger(PriceBook(RATES, genai_prices=False), self.bus.publish)
        self.guard = BudgetGuard(run, jobs or {}, self.bus.publish)
        self.exceeded: list[BudgetExceeded] = []
        self.order: list[str] = []
        self.bus.subscribe(self.ledger)
        self.bus.subscribe(self.guard)
        self.bus.subscribe(self._collect)

    def _collect(self, event: Event) -> None:
        self.order.append(event.kind)
        if isinstance(event, BudgetExceeded):
            self.exceeded.append(event)

    def start(self, *jobs: str) -> None:
        for job in jobs:
            self.bus.publish(
                JobStarted(job=job, attempt=1, pid=1, argv=(), log_dir="", started_at=0, tool="t")
            )

    def spend(self, job: str, usage: Usage, attempt: int = 1) -> None:
        self.bus.publish(UsageUpdated(job=job, attempt=attempt, by_model={"m": usage}))

    def finish(self, job: str, attempt: int = 1) -> None:
        self.bus.publish(
            JobFinished(
                job=job,
                attempt=attempt,
                status=JobStatus.SUCCEEDED,
                exit_code=0,
                signal=None,
                duration_s=1,
            )
        )


def usd(amount: str) -> BudgetSpec:
    return BudgetSpec(usd=Decimal(amount))


def test_run_budget_fires_once_and_warn_only_reports() -> None:
    h = Harness(BudgetSpec(usd=Decimal("5.00"), on_exceed="warn"))
    h.start("a")
    for millions in (2, 5, 6, 9):
        h.spend("a", Usage(input_tokens=millions * M))
    assert [(e.scope, e.unit, e.limit, e.spent, e.action, e.job) for e in h.exceeded] == [
        (BudgetScope.RUN, BudgetUnit.USD, Decimal("5.00"), Decimal(5), BudgetAction.WARN, "")
    ]
    # every subscriber sees the usage, then its price, then the crossing: in that order
    assert h.order[:6] == [
        "job.started",
        "agent.usage",
        "spend.updated",
        "agent.usage",
        "spend.updated",
        "budget.exceeded",
    ]
    assert not h.guard.stopped
    assert h.guard.admit("b", usd("100")) is None
    assert h.guard.take_kills() == []


def test_run_budget_stop_refuses_new_jobs_with_a_reason() -> None:
    h = Harness(BudgetSpec(usd=Decimal(5)))
    h.start("a", "b")
    h.spend("a", Usage(input_tokens=3 * M))
    assert not h.guard.stopped
    h.spend("b", Usage(output_tokens=M + M // 2))
    assert h.guard.stopped
    assert h.guard.admit("c") == "run budget reached: spent $6.00 of $5.00"
    assert h.guard.take_kills() == []  # stop lets the running jobs finish
    assert len(h.exceeded) == 1


def test_run_budget_kill_kills_every_running_job_once() -> None:
    h = Harness(BudgetSpec(tokens=100, on_exceed="kill"))
    h.start("a", "b", "c")
    h.finish("c")
    h.spend("b", Usage(input_tokens=60))
    h.spend("a", Usage(output_tokens=60))
    assert h.guard.take_kills() == ["a", "b"]
    assert h.guard.take_kills() == []
    h.spend("a", Usage(output_tokens=600))
    assert h.guard.take_kills() == [] and len(h.exceeded) == 1
    assert h.exceeded[0].unit is BudgetUnit.TOKENS
    assert (h.exceeded[0].limit, h.exceeded[0].spent) == (100, 120)


def test_job_budget_kill_names_that_job_and_blocks_its_retry() -> None:
    h = Harness(None, {"a": BudgetSpec(usd=Decimal(1), on_exceed="kill")})
    h.start("a", "b")
    h.spend("b", Usage(input_tokens=5 * M))  # b has no budget
    h.spend("a", Usage(input_tokens=M))
    assert h.guard.take_kills() == ["a"]
    event = h.exceeded[0]
    assert (event.scope, event.job, event.attempt, event.action) == (
        BudgetScope.JOB,
        "a",
        1,
        BudgetAction.KILL,
    )
    h.finish("a")
    assert h.guard.admit("a") == "job budget reached: spent $1.00 of $1.00"
    assert h.guard.admit("b") is None and not h.guard.stopped


def test_job_budget_stop_does_not_kill() -> None:
    h = Harness(None, {"a": BudgetSpec(tokens=10)})
    h.start("a")
    h.spend("a", Usage(input_tokens=11))
    assert h.guard.take_kills() == []
    assert h.guard.admit("a") is not None


def test_job_budget_counts_every_attempt() -> None:
    h = Harness(None, {"a": BudgetSpec(tokens=100)})
    h.start("a")
    h.spend("a", Usage(output_tokens=60), attempt=1)
    h.finish("a")
    h.spend("a", Usage(output_tokens=50), attempt=2)
    assert [e.attempt for e in h.exceeded] == [2]


def test_cache_reads_do_not_exhaust_a_token_budget() -> None:
    # the reference tool counted cache reads: two one-word prompts spent 50k
    h = Harness(BudgetSpec(tokens=50_000), {"a": BudgetSpec(tokens=50_000)})
    h.start("a")
    h.spend(
        "a",
        Usage(input_tokens=3, cache_read_tokens=40_000, cache_write_5m_tokens=20, output_tokens=5),
    )
    h.spend(
        "a",
        Usage(input_tokens=6, cache_read_tokens=90_000, cache_write_5m_tokens=40, output_tokens=10),
    )
    assert h.exceeded == [] and not h.guard.stopped


def test_unpriced_usage_cannot_be_charged_in_usd_but_counts_in_tokens() -> None:
    h = Harness(BudgetSpec(usd=Decimal("0.01"), tokens=1000, on_exceed="stop"))
    h.start("a")
    h.bus.publish(UsageUpdated(job="a", attempt=1, by_model={"mystery": Usage(input_tokens=999)}))
    assert h.ledger.run().cost == Cost(None, CostSource.UNPRICED)
    assert not h.guard.stopped
    h.bus.publish(UsageUpdated(job="a", attempt=1, by_model={"mystery": Usage(input_tokens=1000)}))
    assert (h.exceeded[0].unit, h.exceeded[0].limit) == (BudgetUnit.TOKENS, 1000)


def test_zero_budget_is_crossed_by_the_first_token_not_by_an_empty_report() -> None:
    h = Harness(BudgetSpec(tokens=0))
    h.start("a")
    h.spend("a", Usage())
    assert not h.guard.stopped
    h.spend("a", Usage(output_tokens=1))
    assert h.guard.stopped


def test_admit_holds_back_the_budgets_of_running_jobs() -> None:
    h = Harness(BudgetSpec(usd=Decimal(5)))
    assert h.guard.admit("a", usd("3")) is None
    h.start("a")
    assert h.guard.admit("b", usd("3")) == (
        "job b may spend up to $3.00, but only $2.00 of the run budget ($5.00) is left"
        " after $3.00 held for running jobs"
    )
    assert h.guard.admit("c", usd("2")) is None
    h.start("c")
    h.spend("a", Usage(input_tokens=M))
    h.finish("a")  # a spent 1 of its 3: the other 2 are free again
    assert h.guard.admit("b", usd("2")) is None


def test_admit_refuses_a_job_that_no_longer_fits_in_tokens() -> None:
    h = Harness(BudgetSpec(tokens=1000), {"big": BudgetSpec(tokens=800)})
    h.start("a")
    h.spend("a", Usage(input_tokens=300))
    assert (
        h.guard.admit("big") == "job big may spend up to 800 tokens, but only 700 tokens"
        " of the run budget (1,000 tokens) is left"
    )
    assert h.guard.admit("small", BudgetSpec(tokens=700)) is None


def test_a_retry_counts_what_its_earlier_attempts_spent() -> None:
    h = Harness(BudgetSpec(usd=Decimal(5)), {"a": usd("4")})
    assert h.guard.admit("a") is None
    h.start("a")
    h.spend("a", Usage(input_tokens=3 * M))
    h.finish("a")
    # 2 left in the run, and a may still spend 1 of its own 4
    assert h.guard.admit("a") is None


def test_warn_run_budget_refuses_nothing() -> None:
    h = Harness(BudgetSpec(usd=Decimal(1), on_exceed="warn"))
    assert h.guard.admit("a", usd("50")) is None


SPEC = BudgetSpec
CASES = [
    (None, {"a": None}, None, None),
    (SPEC(usd=Decimal(5)), {"a": None}, Decimal(5), None),
    (SPEC(usd=Decimal(5), on_exceed="warn"), {"a": None}, None, None),
    (
        SPEC(usd=Decimal(5)),
        {"a": SPEC(usd=Decimal(1)), "b": SPEC(usd=Decimal(2))},
        Decimal(3),
        None,
    ),
    (None, {"a": SPEC(usd=Decimal(1)), "b": None}, None, None),
    (None, {"a": SPEC(usd=Decimal(1)), "b": SPEC(usd=Decimal(2), on_exceed="warn")}, None, None),
    (SPEC(usd=Decimal(2)), {"a": SPEC(usd=Decimal(4))}, Decimal(2), None),
    (SPEC(tokens=900), {"a": SPEC(tokens=500), "b": SPEC(tokens=300)}, None, 800),
    (None, {}, None, None),
]


@pytest.mark.parametrize(("run", "jobs", "dollars", "tokens"), CASES)
def test_max_spend(
    run: BudgetSpec | None,
    jobs: dict[str, BudgetSpec | None],
    dollars: Decimal | None,
    tokens: int | None,
) -> None:
    assert max_spend(run, jobs) == dollars
    assert max_tokens(run, jobs) == tokens
    # the core's budget values read the same as the flow file's
    limits = {name: None if spec is None else spec.limits() for name, spec in jobs.items()}
    assert max_spend(None if run is None else run.limits(), limits) == dollars


def test_the_guard_needs_no_ledger_only_spend_events() -> None:
    exceeded: list[Event] = []
    guard = BudgetGuard(BudgetSpec(usd=Decimal(1)).limits(), {}, exceeded.append)
    spend = Cost(Decimal("1.5"), CostSource.REPORTED)
    guard(
        SpendUpdated(job="a", attempt=1, by_model={}, cost=spend, run_usage=Usage(), run_cost=spend)
    )
    assert guard.stopped and guard.admit("b") == "run budget reached: spent $1.50 of $1.00"
    assert [type(e) for e in exceeded] == [BudgetExceeded]
