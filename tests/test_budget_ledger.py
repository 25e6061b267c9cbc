"""Ledger: running totals per attempt, job, model, tool and run; replaced, never double counted."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.budget.accounting import Account, Ledger
from corral.budget.pricing import PriceBook, Rates
from corral.events.types import Event, JobFinished, JobStarted, SpendUpdated, UsageUpdated
from corral.models import Cost, CostSource, JobStatus, Usage

M = 1_000_000
RATES = {
    "cheap": Rates.fill(input=Decimal(1), output=Decimal(2)),
    "dear": Rates.fill(input=Decimal(10), output=Decimal(20)),
}


def _ledger() -> Ledger:
    return Ledger(PriceBook(RATES, genai_prices=False))


def _started(job: str, tool: str = "codex", attempt: int = 1) -> JobStarted:
    return JobStarted(
        job=job, attempt=attempt, pid=1, argv=(), log_dir="", started_at=0.0, tool=tool
    )


def _usage(job: str, attempt: int = 1, **by_model: Usage) -> UsageUpdated:
    return UsageUpdated(job=job, attempt=attempt, by_model=by_model)


def _feed(ledger: Ledger, *events: Event) -> Ledger:
    for event in events:
        ledger(event)
    return ledger


def test_repeated_totals_replace_not_add() -> None:
    ledger = _feed(
        _ledger(),
        _started("a"),
        _usage("a", cheap=Usage(input_tokens=M // 2)),
        _usage("a", cheap=Usage(input_tokens=M // 2)),  # the same total again
        _usage("a", cheap=Usage(input_tokens=M, output_tokens=M)),  # then the final one
    )
    assert ledger.job("a") == ledger.run()
    assert ledger.run().usage == Usage(input_tokens=M, output_tokens=M)
    assert ledger.run().cost == Cost(Decimal(3), CostSource.ESTIMATED)


def test_final_reported_cost_supersedes_the_estimate() -> None:
    ledger = _feed(
        _ledger(),
        _started("a", tool="claude"),
        _usage("a", cheap=Usage(input_tokens=M)),
        UsageUpdated(
            job="a",
            attempt=1,
            by_model={"cheap": Usage(input_tokens=M)},
            final=True,
            cost=Cost(Decimal("0.75"), CostSource.REPORTED),
            cost_by_model={"cheap": Decimal("0.75")},
        ),
    )
    assert ledger.job("a").cost == Cost(Decimal("0.75"), CostSource.REPORTED)
    assert ledger.by_model()["cheap"].cost == Cost(Decimal("0.75"), CostSource.REPORTED)
    assert ledger.by_tool()["claude"].cost == Cost(Decimal("0.75"), CostSource.REPORTED)


def test_reported_cost_without_breakdown_goes_to_the_one_model() -> None:
    ledger = _feed(
        _ledger(),
        UsageUpdated(
            job="a",
            attempt=1,
            by_model={"whatever": Usage(output_tokens=5)},
            cost=Cost(Decimal("0.01"), CostSource.REPORTED),
        ),
    )
    assert ledger.job("a").cost_by_model == {"whatever": Cost(Decimal("0.01"), CostSource.REPORTED)}


def test_two_attempts_add_up() -> None:
    ledger = _feed(
        _ledger(),
        _started("a", attempt=1),
        _usage("a", 1, cheap=Usage(input_tokens=M)),
        _started("a", attempt=2),
        _usage("a", 2, cheap=Usage(input_tokens=M), dear=Usage(output_tokens=M)),
        _usage("b", 1, cheap=Usage(output_tokens=M)),
    )
    assert ledger.attempt("a", 1).cost.usd == Decimal(1)
    assert ledger.attempt("a", 2).cost.usd == Decimal(21)
    job = ledger.job("a")
    assert job.usage == Usage(input_tokens=2 * M, output_tokens=M)
    assert job.by_model == {"cheap": Usage(input_tokens=2 * M), "dear": Usage(output_tokens=M)}
    assert job.cost == Cost(Decimal(22), CostSource.ESTIMATED)
    assert ledger.run().cost.usd == Decimal(24)
    assert ledger.by_model()["cheap"].usage == Usage(input_tokens=2 * M, output_tokens=M)
    assert set(ledger.by_tool()) == {"codex", "unknown"}  # b never announced its tool


def test_unpriced_model_propagates_and_is_never_zero() -> None:
    ledger = _feed(
        _ledger(),
        _usage("a", mystery=Usage(input_tokens=10)),
        _usage("b", cheap=Usage(input_tokens=M)),
    )
    assert ledger.job("a").cost == Cost(None, CostSource.UNPRICED)
    assert ledger.job("b").cost == Cost(Decimal(1), CostSource.ESTIMATED)
    assert ledger.run().cost == Cost(Decimal(1), CostSource.UNPRICED)  # the priced part, flagged
    assert ledger.by_model()["mystery"].cost == Cost(None, CostSource.UNPRICED)
    # once the unpriced model leaves (a's totals replaced), the flag goes with it
    ledger(_usage("a", cheap=Usage(input_tokens=M)))
    assert ledger.run().cost == Cost(Decimal(2), CostSource.ESTIMATED)
    assert "mystery" not in ledger.by_model()


def test_model_that_disappears_from_totals_leaves_the_breakdown() -> None:
    # Claude's live events name the answering model, the final figures the requested one
    ledger = _feed(
        _ledger(),
        _usage("a", cheap=Usage(output_tokens=1)),
        _usage("a", dear=Usage(output_tokens=9)),
    )
    assert ledger.job("a").by_model == {"dear": Usage(output_tokens=9)}
    assert list(ledger.by_model()) == ["dear"]


def _finished(job: str, by_model: dict[str, Usage] | None = None) -> JobFinished:
    return JobFinished(
        job=job,
        attempt=1,
        status=JobStatus.SUCCEEDED,
        exit_code=0,
        signal=None,
        duration_s=1.0,
        by_model=by_model or {},
    )


def test_job_finished_is_not_counted_again() -> None:
    # the figures a JobFinished carries are the ones the ledger published: counting them
    # a second time would be the data loop the fold removed
    ledger = _feed(_ledger(), _usage("a", cheap=Usage(input_tokens=M)))
    ledger(_finished("a"))
    assert ledger.job("a").usage == Usage(input_tokens=M)
    ledger(_finished("a", {"cheap": Usage(input_tokens=2 * M)}))
    assert ledger.job("a").usage == Usage(input_tokens=M)


def test_every_priced_update_is_published_with_the_totals_after_it() -> None:
    published: list[Event] = []
    ledger = Ledger(PriceBook(RATES, genai_prices=False), published.append)
    _feed(ledger, _started("a"), _started("b"))
    ledger(_usage("a", cheap=Usage(input_tokens=M)))
    ledger(_usage("b", dear=Usage(output_tokens=M)))
    ledger(_usage("a", cheap=Usage(input_tokens=3 * M)))  # a running total: replaces
    assert all(isinstance(e, SpendUpdated) for e in published) and len(published) == 3
    last = published[-1]
    assert isinstance(last, SpendUpdated)
    assert (last.job, last.attempt, last.by_model) == ("a", 1, {"cheap": Usage(input_tokens=3 * M)})
    assert last.cost == Cost(Decimal(3), CostSource.ESTIMATED)
    assert last.cost_by_model == {"cheap": Cost(Decimal(3), CostSource.ESTIMATED)}
    assert (last.job_usage, last.job_cost) == (Usage(input_tokens=3 * M), last.cost)
    assert last.run_usage == Usage(input_tokens=3 * M, output_tokens=M)
    assert last.run_cost == Cost(Decimal(23), CostSource.ESTIMATED)


def test_unknown_job_and_empty_run() -> None:
    ledger = _ledger()
    assert ledger.job("nope") == Account()
    assert ledger.attempt("nope", 1) == Account()
    assert ledger.run().cost == Cost.zero()
    assert ledger.by_model() == {} and ledger.by_tool() == {}


_usages = st.builds(
    Usage,
    input_tokens=st.integers(0, 10**7),
    output_tokens=st.integers(0, 10**7),
    cache_read_tokens=st.integers(0, 10**7),
)
_updates = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(1, 3),
        st.dictionaries(st.sampled_from(["cheap", "dear", "mystery"]), _usages, max_size=3),
        st.one_of(st.none(), st.decimals(0, 100, places=6)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(_updates)
def test_running_totals_equal_a_full_recount(
    updates: list[tuple[str, int, dict[str, Usage], Decimal | None]],
) -> None:
    ledger = _ledger()
    ledger(_started("a", tool="claude"))
    last: dict[tuple[str, int], tuple[dict[str, Usage], Decimal | None]] = {}
    for job, attempt, by_model, reported in updates:
        cost = None if reported is None else Cost(reported, CostSource.REPORTED)
        ledger(UsageUpdated(job=job, attempt=attempt, by_model=by_model, cost=cost))
        last[(job, attempt)] = (by_model, reported)

    fresh = _ledger()
    fresh.set_tool("a", "claude")
    for (job, attempt), (by_model, reported) in last.items():
        cost = None if reported is None else Cost(reported, CostSource.REPORTED)
        fresh.record(job, attempt, by_model, cost=cost)
    assert ledger.run() == fresh.run()
    assert ledger.by_job() == fresh.by_job()
    assert ledger.by_model() == fresh.by_model()
    assert ledger.by_tool() == fresh.by_tool()
    # and, counted independently, the run is the sum of each attempt's last figures
    expected_cost, expected_usage = Cost.zero(), Usage()
    for job, attempt in last:
        expected_cost = expected_cost + fresh.attempt(job, attempt).cost
        for usage in last[(job, attempt)][0].values():
            expected_usage = expected_usage + usage
    assert ledger.run().cost == expected_cost
    assert ledger.run().usage == expected_usage
