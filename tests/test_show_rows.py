"""`corral show` formats a SQL history's rows straight (`RunRows.job_lines`/`job_dicts`,
`corral.render.json_stream`): the same bytes as formatting the `RunRecord` objects, which
every other reader and history uses, on a varied run (retries, errors, signals, models,
each cost source, skipped and never-started jobs, hostile text, a resume chain)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from corral.app.chain import chain_dict, chain_of, logical_row, resumed_by
from corral.app.history import kept_from_earlier
from corral.cli.main import cli
from corral.events.types import Event, JobFinished, JobStarted, RunFinished, RunStarted
from corral.models import Cost, CostSource, ErrorKind, JobStatus, RunStatus
from corral.render.history import print_chain, print_record
from corral.render.json_stream import indented_json
from corral.store import SqlHistory, StoreWriter, open_store
from corral.store.sql import SqlHistory as SqlStore
from corral.times import iso_time
from test_store_support import DRIVER_BACKENDS, T0, make_store, scripted_run, sonnet


def _odd_run(run_id: str) -> list[Event]:
    """Killed by a signal, an estimated cost, hostile text, a job that never started."""
    log = f"/logs/{run_id}"
    return [
        RunStarted(
            run_id=run_id,
            flow_name="odd [red]x",
            flow_path="flows/odd.yaml",
            jobs=("killed", "estimated", "never"),
            started_at=T0 + 0.9999996,  # rounds up into the next second
            flow_hash="sha256:def",
            flow_content="jobs: {}\n",
            args=(),
            user="dev",
            host="box",
            log_root=log,
        ),
        JobStarted(
            job="killed", attempt=1, pid=7, argv=("sh",), log_dir=f"{log}/killed",
            started_at=T0 + 1.0000005, tool="generic", model=None, spec={"run": ["sh"]},
        ),
        JobStarted(
            job="estimated", attempt=1, pid=8, argv=("codex", "-p", "ü"), log_dir=f"{log}/e",
            started_at=T0 + 2.25, tool="codex", model="gpt-5-codex", spec={"prompt": "ü"},
        ),
        JobFinished(
            job="killed", attempt=1, status=JobStatus.CANCELLED, exit_code=None, signal=9,
            duration_s=1234.56789, error="killed\n\x1b[31mred\ttab", error_kind=None,
        ),
        JobFinished(
            job="estimated", attempt=1, status=JobStatus.TIMED_OUT, exit_code=124,
            signal=None, duration_s=61.0, error="timed out", error_kind=ErrorKind.TIMEOUT,
            tool="codex", by_model={"gpt-5-codex": sonnet(1200)},
            cost=Cost(Decimal("1.50"), CostSource.ESTIMATED),
            cost_by_model={"gpt-5-codex": Decimal("1.50")},
            outputs={"k": "v\n"}, unparsed_lines=3, ended_at=T0 + 63.25,
        ),
        RunFinished(run_id=run_id, status=RunStatus.CANCELLED, ended_at=T0 + 70, error="stop"),
    ]  # fmt: skip


def _resume(run_id: str, earlier: str) -> list[Event]:
    """A resume of `earlier` that ran `lint` again: the other jobs are kept from it."""
    events = [
        e
        for e in scripted_run(run_id, started=T0 + 100)
        if isinstance(e, RunStarted | RunFinished) or getattr(e, "job", "") == "lint"
    ]
    start = events[0]
    assert isinstance(start, RunStarted)
    events[0] = dataclasses.replace(start, jobs=("lint",), resumed_from=earlier)
    return events


RUNS = {
    "run-a": scripted_run("run-a"),
    "run-b": _resume("run-b", "run-a"),
    "run-odd": _odd_run("run-odd"),
    "run-live": scripted_run("run-live", started=T0 + 200, finish=False),
}


def _write(store: SqlHistory) -> None:
    ticks = iter(range(10_000))
    writer = StoreWriter(store, clock=lambda: T0 + 0.123456 * next(ticks))
    for events in RUNS.values():
        for event in events:
            writer(event)
    writer.close()


@pytest.fixture(params=DRIVER_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHistory]:
    for found in make_store(request.param, tmp_path):
        _write(found)
        yield found


@pytest.mark.parametrize("run_id", list(RUNS))
def test_the_rows_give_what_the_records_give(store: SqlHistory, run_id: str) -> None:
    rows = store.read_run(run_id)
    record = store.get_run(run_id)
    assert rows.record() == record
    assert rows.record(jobs=False) == dataclasses.replace(record, jobs=())
    assert list(rows.job_lines()) == [job.line() for job in record.jobs]
    dicts = [job.to_dict() for job in record.jobs]
    assert orjson.dumps(list(rows.job_dicts())) == orjson.dumps(dicts)


def _old_json(store: SqlHistory, run_id: str, *, chain: bool) -> bytes:
    """`show --json` as it was written before the rows: the whole document from objects."""
    record = store.get_run(run_id)
    runs = chain_of(store, record) if chain else (record,)
    kept = kept_from_earlier(store, record, runs[1:]) if chain else ()
    document = {
        "schema_version": 1,
        **record.to_dict(),
        "kept": [{**job.to_dict(), "kept_from": run} for run, job in kept],
    }
    if chain:
        later = resumed_by(store, record.run)
        document["chain"] = chain_dict([r.run for r in runs], logical_row(runs), resumed_by=later)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _old_text(store: SqlHistory, run_id: str, *, chain: bool) -> str:
    """`show` as it was printed before the rows: every line from the records."""
    record = store.get_run(run_id)
    runs = chain_of(store, record) if chain else (record,)
    kept = kept_from_earlier(store, record, runs[1:]) if chain else ()
    buffer = io.StringIO()
    out = Console(
        file=buffer, highlight=False, soft_wrap=False, markup=False, emoji=False, width=400
    )
    print_record(out, record, kept=kept)
    if chain:
        print_chain(out, [r.run for r in runs], logical_row(runs), resumed_by(store, record.run))
    return buffer.getvalue()


@pytest.mark.parametrize("run_id", list(RUNS))
@pytest.mark.parametrize("chain", [True, False])
def test_show_prints_the_same_bytes_as_from_the_records(
    tmp_path: Path, run_id: str, chain: bool
) -> None:
    for store in make_store("sqlite", tmp_path):
        _write(store)
        args = ["show", run_id, "--dir", str(tmp_path), *([] if chain else ["--no-chain"])]
        runner = CliRunner()
        text = runner.invoke(cli, args, catch_exceptions=False)
        as_json = runner.invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert text.exit_code == as_json.exit_code == 0
        assert text.output == _old_text(store, run_id, chain=chain)
        assert as_json.stdout_bytes == _old_json(store, run_id, chain=chain)


def test_a_history_without_rows_shows_from_its_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another history plugin has no `read_run`: `show` formats its records, the same."""
    for store in make_store("sqlite", tmp_path):
        _write(store)
        monkeypatch.delattr(SqlStore, "read_run")
        args = ["show", "run-b", "--dir", str(tmp_path)]
        as_json = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert as_json.stdout_bytes == _old_json(store, "run-b", chain=True)
        text = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert text.output == _old_text(store, "run-b", chain=True)


@pytest.mark.parametrize("items", [0, 1, 2, 499, 500, 501, 1203])
def test_a_document_in_pieces_is_orjson_s_document(items: int) -> None:
    rows = [
        {"n": i, "text": 'a\nb \\n "q"', "empty": {}, "none": [], "deep": [[{"x": [1.5]}]]}
        for i in range(items)
    ]
    for document in ({"a": 1, "jobs": None, "z": {"k": [1, 2]}}, {"a": [{}]}, {"jobs": 0}):
        want = orjson.dumps(
            {**document, "jobs": rows}, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
        pieces = list(indented_json(document, "jobs", rows))
        assert b"".join(pieces) == want
        assert len(pieces) == (-(-items // 500) + 1 if items else 1)  # a batch at a time


def test_the_open_store_helper_reads_rows(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "corral.db")
    try:
        _write(store)
        assert [name for name, *_ in store.read_run("run-od").jobs] == [
            "killed",
            "estimated",
            "never",
        ]
    finally:
        store.close()


def _reference_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@given(
    st.one_of(
        st.floats(min_value=0, max_value=4e9),
        # halves of a microsecond and the last one of a second, where rounding decides
        st.builds(
            lambda s, us, d: s + us / 1e6 + d,
            st.integers(0, 4 * 10**9),
            st.integers(0, 10**6),
            st.sampled_from([0.0, 5e-7, -5e-7, 4.999e-7, 5.001e-7]),
        ).filter(lambda ts: ts >= 0),
    )
)
def test_iso_time_writes_what_datetime_writes(ts: float) -> None:
    assert iso_time(ts) == _reference_iso(ts)


def test_iso_time_outside_the_fast_path() -> None:
    assert iso_time(None) is None
    for ts in (-1.5, 0, 1_800_000_000, 253402300700.25):
        assert iso_time(ts) == _reference_iso(ts)


@pytest.mark.parametrize("run_id", ["run-a", "run-odd"])
def test_show_of_a_run_alone_builds_no_record_per_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_id: str
) -> None:
    """What keeps a 50,000-job `show` fast: no AttemptRow or JobRecord is made for it."""
    for store in make_store("sqlite", tmp_path):
        _write(store)
        text, as_json = _old_text(store, run_id, chain=True), _old_json(store, run_id, chain=True)

        def refuse(*args: object) -> None:
            raise AssertionError("an object was built per attempt")

        monkeypatch.setattr("corral.store.queries._attempt_row", refuse)
        monkeypatch.setattr("corral.store.records.JobRecord.to_dict", refuse)
        args = ["show", run_id, "--dir", str(tmp_path)]
        assert CliRunner().invoke(cli, args, catch_exceptions=False).output == text
        found = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        assert found.stdout_bytes == as_json
