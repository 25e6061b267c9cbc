"""The store's queries over a scripted run history, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corral.budget.attribution import UNATTRIBUTED, model_shares
from corral.errors import NotFoundError, UsageError
from corral.events.types import JobFinished, JobOutput, JobStarted
from corral.models import Cost, CostSource, JobStatus, RunStatus
from corral.store import SqlHistory, StoreWriter, Tokens, schema
from test_store_support import DRIVER_BACKENDS, T0, make_store, scripted_run, sonnet

DAY = 86400.0


@pytest.fixture(params=DRIVER_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHistory]:
    yield from make_store(request.param, tmp_path)


def write(store: SqlHistory, events: list, start: float = T0) -> None:
    ticks = iter(range(10_000))
    writer = StoreWriter(store, clock=lambda: start + next(ticks))
    for event in events:
        writer(event)
    writer.close()


@pytest.fixture
def history(store: SqlHistory) -> SqlHistory:
    """An old nightly run (10 days before) and the scripted review run."""
    write(store, scripted_run("old-bbbb2222", flow="nightly", started=T0 - 10 * DAY), T0 - 10 * DAY)
    write(store, scripted_run("run-aaaa1111"), T0)
    return store


EXPECTED_TOKENS = Tokens(
    input=800, output=160, cache_read=8000, cache_write=440, reasoning=24, tool_calls=16
)


def test_list_runs_newest_first_with_totals(history: SqlHistory) -> None:
    runs = history.list_runs()
    assert [r.id for r in runs] == ["run-aaaa1111", "old-bbbb2222"]
    run = runs[0]
    assert run.status is RunStatus.FAILED
    assert run.duration_s == 30.0
    assert (run.jobs_total, run.jobs_succeeded, run.jobs_failed, run.jobs_skipped) == (4, 2, 1, 1)
    assert run.tokens == EXPECTED_TOKENS
    # two reported attempts and a partly unpriced one: the worst source wins
    assert run.cost == Cost(Decimal("0.0525"), CostSource.UNPRICED)
    assert (run.user, run.host, run.log_root) == ("dev", "box", "/logs/run-aaaa1111")


def test_list_runs_filters(history: SqlHistory) -> None:
    assert [r.id for r in history.list_runs(flow="nightly")] == ["old-bbbb2222"]
    assert [r.id for r in history.list_runs(flow="flows/review.yaml")] == ["run-aaaa1111"]
    assert [r.id for r in history.list_runs(since=T0 - DAY)] == ["run-aaaa1111"]
    assert history.list_runs(status=RunStatus.SUCCEEDED) == []
    assert len(history.list_runs(status="failed", limit=1)) == 1


def test_get_run_by_prefix_with_every_attempt(history: SqlHistory) -> None:
    record = history.get_run("run-a")
    assert record.run.id == "run-aaaa1111"
    assert record.args == ("--concurrency", "2")
    assert record.flow_content == "version: 1\n"
    assert [j.name for j in record.jobs] == ["analyze", "tests", "lint", "report"]
    analyze = record.jobs[0]
    assert analyze.status is JobStatus.SUCCEEDED
    assert [a.status for a in analyze.attempts] == [JobStatus.FAILED, JobStatus.SUCCEEDED]
    first, final = analyze.attempts
    assert first.model == "claude-sonnet-4-5"  # from the agent's session event
    assert first.session_id == "s-1"
    assert first.error_kind is not None and first.error == "rate limited"
    assert final is analyze.final
    assert final.log_dir == "/logs/run-aaaa1111/analyze/attempt-2"
    assert final.result == "three findings"
    assert final.outputs == {"summary": "ok"}
    assert final.spec == {"prompt": "do analyze", "timeout": 60}
    assert final.argv == ("claude", "-p", "analyze")
    assert final.duration_s == 5.0
    assert final.tokens == Tokens.from_usage(sonnet(3))
    assert {m.model: m.cost_usd for m in final.models} == {
        "claude-haiku-4-5": Decimal("0.005000"),
        "claude-sonnet-4-5": Decimal("0.025000"),
    }
    assert analyze.cost == Cost(Decimal("0.040000"), CostSource.REPORTED)
    report = record.job("report")
    assert report is not None and report.status is JobStatus.SKIPPED
    assert report.reason == "needs lint, which failed" and report.final is None
    lint = record.job("lint")
    assert lint is not None and lint.final is not None and lint.final.cost is None


def test_unknown_and_ambiguous_run_ids(history: SqlHistory) -> None:
    with pytest.raises(NotFoundError) as caught:
        history.get_run("zzz")
    assert "corral runs" in caught.value.lines()[0]
    write(history, scripted_run("run-aaaa9999"), T0 + 100)
    with pytest.raises(UsageError, match="ambiguous"):
        history.get_run("run-aaaa")
    # LIKE wildcards in a prefix are literal
    with pytest.raises(NotFoundError):
        history.get_run("run_")


def test_events_round_trip_without_output_lines(history: SqlHistory) -> None:
    expected = [e for e in scripted_run("run-aaaa1111") if not isinstance(e, JobOutput)]
    stored = list(history.events("run-aaaa1111"))
    assert [s.event for s in stored] == expected
    assert [s.seq for s in stored] == list(range(1, len(expected) + 1))


def test_usage_by_model_splits_cost_by_source(history: SqlHistory) -> None:
    rows = {r.key: r for r in history.usage("model")}
    assert set(rows) == {"claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-codex", "mystery-model"}
    sonnet_row = rows["claude-sonnet-4-5"]
    assert sonnet_row.attempts == 4  # two attempts in each of the two runs
    assert sonnet_row.tokens == Tokens.from_usage(sonnet(3)) + Tokens.from_usage(sonnet(3))
    assert sonnet_row.reported_usd == Decimal("0.070000")
    assert rows["gpt-5-codex"].estimated_usd == Decimal("0.0250")
    assert rows["mystery-model"].unpriced == 2
    assert rows["mystery-model"].known_usd == 0
    total = Tokens()
    for row in rows.values():
        total = total + row.tokens
    assert total == EXPECTED_TOKENS + EXPECTED_TOKENS


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("tool", {"claude", "codex"}),
        ("job", {"analyze", "tests"}),
        ("flow", {"review", "nightly"}),
        ("day", {"2027-01-05", "2027-01-15"}),
    ],
)
def test_usage_groupings(history: SqlHistory, by: str, keys: set[str]) -> None:
    rows = history.usage(by)  # type: ignore[arg-type]  # parametrised literal
    assert {r.key for r in rows} == keys
    total = Tokens()
    for row in rows:
        total = total + row.tokens
    assert total == EXPECTED_TOKENS + EXPECTED_TOKENS
    assert sum(r.known_usd for r in rows) == Decimal("0.1050")


def test_usage_since_and_bad_key(history: SqlHistory) -> None:
    recent = history.usage("flow", since=T0 - DAY)
    assert [r.key for r in recent] == ["review"]
    with pytest.raises(UsageError):
        history.usage("colour")  # type: ignore[arg-type]  # the error path


def test_running_jobs_for_resume(store: SqlHistory) -> None:
    events = scripted_run("run-cccc3333", finish=False)
    # cut the run short: analyze's second attempt and the jobs after it never finish
    cut = next(i for i, e in enumerate(events) if isinstance(e, JobFinished) and e.attempt == 2)
    started = [e for e in events[cut:] if isinstance(e, JobStarted)]
    write(store, events[:cut] + started)
    running = store.running_jobs("run-cccc")
    assert [(r.job, r.attempt) for r in running] == [("analyze", 2), ("lint", 1), ("tests", 1)]
    assert all(r.pgid == r.pid and r.pid > 0 for r in running)
    assert running[0].log_dir.endswith("analyze/attempt-2")


def test_delete_runs_older_than(history: SqlHistory) -> None:
    dry = history.delete_runs_older_than(5 * DAY, now=T0 + 60, dry_run=True)
    assert [r.id for r in dry] == ["old-bbbb2222"]
    gone = history.delete_runs_older_than(5 * DAY, now=T0 + 60)
    assert [r.id for r in gone] == ["old-bbbb2222"]
    assert [r.id for r in history.list_runs()] == ["run-aaaa1111"]
    with history.engine.connect() as conn:
        for table in (schema.events, schema.job_models, schema.attempts, schema.jobs):
            left = conn.execute(
                select(func.count()).where(table.c.run_id == "old-bbbb2222")
            ).scalar()
            assert left == 0, table.name
    assert {r.key for r in history.usage("flow")} == {"review"}


def test_export_formats(history: SqlHistory) -> None:
    document = json.loads("".join(history.export("run-aaaa1111", "json")))
    assert document["schema_version"] == 1
    assert document["run"]["id"] == "run-aaaa1111"
    assert len(document["jobs"]) == 4
    assert document["events"][0]["event"]["kind"] == "run.started"
    lines = "".join(history.export("run-aaaa1111", "jsonl")).splitlines()
    assert len(lines) == len(document["events"])
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, len(lines) + 1))
    rows = list(csv.DictReader(io.StringIO("".join(history.export("run-aaaa1111", "csv")))))
    assert [(r["job"], r["attempt"]) for r in rows] == [
        ("analyze", "1"),
        ("analyze", "2"),
        ("tests", "1"),
        ("lint", "1"),
    ]
    assert rows[1]["cost_usd"] == "0.030000" and rows[1]["cost_source"] == "reported"
    with pytest.raises(UsageError):
        list(history.export("run-aaaa1111", "xml"))


def _finished(by_model: dict, cost: Cost | None, by_cost: dict | None = None) -> JobFinished:
    return JobFinished(
        status=JobStatus.SUCCEEDED,
        exit_code=0,
        signal=None,
        duration_s=1.0,
        by_model=by_model,
        cost=cost,
        cost_by_model=by_cost or {},
    )


def model_rows(event: JobFinished) -> list[dict[str, object]]:
    shares = model_shares(event.by_model, event.cost, event.cost_by_model)
    return [{"model": s.model, "cost_usd": s.usd, "cost_source": str(s.source)} for s in shares]


def test_model_rows_always_add_up_to_the_attempt_cost() -> None:
    one = list(model_rows(_finished({"m": sonnet()}, Cost(Decimal("0.5"), CostSource.REPORTED))))
    assert [(r["model"], r["cost_usd"], r["cost_source"]) for r in one] == [
        ("m", Decimal("0.5"), "reported")
    ]
    two = list(
        model_rows(
            _finished({"a": sonnet(), "b": sonnet()}, Cost(Decimal("1"), CostSource.REPORTED))
        )
    )
    assert [(r["model"], r["cost_usd"]) for r in two] == [
        ("a", None),
        ("b", None),
        (UNATTRIBUTED, Decimal("1")),
    ]
    none = list(model_rows(_finished({"a": sonnet()}, None)))
    assert [(r["cost_usd"], r["cost_source"]) for r in none] == [(None, "unpriced")]
    partly = list(
        model_rows(
            _finished(
                {"a": sonnet(), "b": sonnet()},
                Cost(Decimal("0.2"), CostSource.UNPRICED),
                {"a": Decimal("0.2")},
            )
        )
    )
    assert [(r["model"], r["cost_usd"], r["cost_source"]) for r in partly] == [
        ("a", Decimal("0.2"), "estimated"),
        ("b", None, "unpriced"),
    ]


def test_cancelled_jobs_are_counted_as_cancelled_not_failed(store: SqlHistory) -> None:
    # a run stopped by Ctrl-C: its unfinished jobs are cancelled; none of them failed
    events = scripted_run("run-cccc3333", finish=False)
    events.append(
        JobFinished(
            job="report",
            attempt=1,
            status=JobStatus.CANCELLED,
            exit_code=None,
            signal=15,
            duration_s=1.0,
            error="cancelled",
            tool="generic",
        )
    )
    write(store, events)
    run = store.list_runs()[0]
    assert (run.jobs_failed, run.jobs_cancelled) == (1, 1)
    jobs = run.to_dict()["jobs"]
    assert (jobs["failed"], jobs["cancelled"]) == (1, 1)
