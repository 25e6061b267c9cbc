"""The store writer: batching, sync, retries, a bounded buffer, two processes at once."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corral.errors import StoreError
from corral.events.types import AssistantText, JobOutput, RunStarted, UsageUpdated
from corral.models import JobStatus, RunStatus
from corral.store import SqlHistory, StoreWriter, open_store, schema
from corral.store.engine import create_store_engine
from test_store_support import (
    BACKENDS,
    DRIVER_BACKENDS,
    T0,
    backend_url,
    make_store,
    scripted_run,
)

DATA = Path(__file__).parent / "data" / "store"


@pytest.fixture(params=DRIVER_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHistory]:
    yield from make_store(request.param, tmp_path)


def count_events(store: SqlHistory, run_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(schema.events.c.run_id == run_id)).scalar_one()
        )


def start(run_id: str = "r1") -> RunStarted:
    return RunStarted(run_id=run_id, flow_name="f", flow_path="f.yaml", jobs=("a",), started_at=T0)


def text(n: int) -> AssistantText:
    return AssistantText(job="a", attempt=1, text=f"t{n}")


def test_job_output_is_not_stored_and_close_writes_the_rest(store: SqlHistory) -> None:
    writer = StoreWriter(store)
    events = scripted_run()
    for event in events:
        writer(event)
    writer.close()
    writer.close()  # idempotent
    stored = sum(not isinstance(e, JobOutput) for e in events)
    assert count_events(store, "run-aaaa1111") == stored == writer.written
    with pytest.raises(RuntimeError):
        writer(text(1))


def test_sync_makes_a_final_status_durable_before_it_returns(store: SqlHistory) -> None:
    writer = StoreWriter(store, window_s=10.0)  # only sync can make this fast
    events = scripted_run(finish=False)

    async def scheduler() -> float:
        for event in events:
            writer(event)
        began = time.perf_counter()
        assert await writer.sync()
        return time.perf_counter() - began

    elapsed = asyncio.run(scheduler())
    assert elapsed < 1.0
    # read through a separate engine: committed, not just visible to the writer
    other = SqlHistory(create_store_engine(store.engine.url.render_as_string(hide_password=False)))
    record = other.get_run("run-aaaa1111")
    assert record.job("lint").status is JobStatus.FAILED  # type: ignore[union-attr]  # exists
    other.close()
    writer.close()


def test_events_flush_within_a_window_without_sync(store: SqlHistory) -> None:
    writer = StoreWriter(store, window_s=0.05)
    writer(start())
    writer(text(1))
    deadline = time.monotonic() + 2.0
    while count_events(store, "r1") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_events(store, "r1") == 2
    writer.close()


def test_a_second_writer_continues_the_sequence_of_a_run(store: SqlHistory) -> None:
    first = StoreWriter(store)
    first(start())
    first(text(1))
    first.close()
    second = StoreWriter(store, run_id="r1")  # a resumed run keeps its id
    second(text(2))
    second.close()
    with store.engine.connect() as conn:
        seqs = conn.execute(select(schema.events.c.seq).order_by(schema.events.c.seq)).scalars()
        assert list(seqs) == [1, 2, 3]


def test_events_before_run_started_are_attributed_to_it(store: SqlHistory) -> None:
    writer = StoreWriter(store)
    writer(text(0))
    writer(start("r9"))
    writer.close()
    kinds = [e.event.kind for e in store.events("r9")]
    assert sorted(kinds) == ["agent.text", "run.started"]


def test_flush_now_blocks_until_written(store: SqlHistory) -> None:
    writer = StoreWriter(store, window_s=10.0)
    writer(start())
    assert writer.flush_now()
    assert count_events(store, "r1") == 1
    assert writer.flush_now()  # nothing outstanding: immediate
    writer.close()


# -- a database that is locked or gone (SQLite: another process holds the lock) ---------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "corral.db"
    open_store(None, path).close()
    return path


def locked(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.fixture(params=["auto", "sqlalchemy"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def impatient(path: Path, driver: str = "auto") -> SqlHistory:
    return SqlHistory(url=f"sqlite:///{path}", busy_timeout_ms=20, driver=driver)  # type: ignore[arg-type]  # a parametrised literal


def test_a_locked_database_is_retried_until_it_comes_back(sqlite_path: Path, driver: str) -> None:
    holder = locked(sqlite_path)
    store = impatient(sqlite_path, driver)
    writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.1)
    for event in scripted_run():
        writer(event)
    # while the lock is held sync reports "not durable" quickly instead of stalling the run
    deadline = time.monotonic() + 5
    while writer.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    began = time.perf_counter()
    assert asyncio.run(writer.sync()) is False
    assert time.perf_counter() - began < 0.5
    holder.rollback()
    holder.close()
    assert writer.flush_now(timeout=5.0)
    writer.close()
    assert store.get_run("run-aaaa1111").run.status is RunStatus.FAILED
    store.close()


def test_a_full_buffer_drops_agent_events_but_keeps_lifecycle(
    sqlite_path: Path, driver: str
) -> None:
    holder = locked(sqlite_path)
    store = impatient(sqlite_path, driver)
    writer = StoreWriter(store, window_s=0.01, max_buffered=10, max_backoff_s=0.05)
    writer(start())
    for n in range(200):
        writer(text(n))
    writer(UsageUpdated(job="a", attempt=1, by_model={}))
    for event in scripted_run()[1:]:
        writer(event)
    deadline = time.monotonic() + 5
    while writer.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    holder.rollback()
    holder.close()
    with pytest.raises(StoreError, match="dropped from the full buffer"):
        writer.close()
    assert writer.dropped > 190
    record = store.get_run("r1")  # the scripted run's events went to the last RunStarted
    lint = record.job("lint")
    assert lint is not None and lint.status is JobStatus.FAILED
    assert record.job("report") is not None
    store.close()


def test_close_reports_what_was_lost_when_the_database_never_returns(
    sqlite_path: Path, driver: str
) -> None:
    holder = locked(sqlite_path)
    store = impatient(sqlite_path, driver)
    writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.05)
    for event in scripted_run():
        writer(event)
    with pytest.raises(StoreError) as caught:
        writer.close(timeout=0.5)
    message = caught.value.lines()[0]
    assert "of run run-aaaa1111" in message
    assert "never written, 4 of them job results" in message
    assert "locked" in message and "(not checked)" in message
    holder.rollback()
    holder.close()
    store.close()


# -- closing from the event loop: the writer's own thread closes the history ---------------


def test_close_on_thread_writes_the_rest_then_closes_the_history_on_the_writers_thread(
    store: SqlHistory,
) -> None:
    writer = StoreWriter(store)
    events = scripted_run()
    for event in events:
        writer(event)
    closed_on: list[str] = []

    async def close() -> None:
        await writer.close_on_thread(lambda: closed_on.append(threading.current_thread().name))
        await writer.close_on_thread(lambda: closed_on.append("again"))  # closed: runs `then`

    asyncio.run(close())
    assert closed_on == ["corral-store-writer", "again"]
    stored = sum(not isinstance(e, JobOutput) for e in events)
    assert count_events(store, "run-aaaa1111") == stored
    store.close()


def test_close_on_thread_reports_what_was_lost_and_still_closes_the_history_once(
    sqlite_path: Path,
) -> None:
    holder = locked(sqlite_path)
    store = impatient(sqlite_path)
    writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.05)
    for event in scripted_run():
        writer(event)
    closed: list[bool] = []
    with pytest.raises(StoreError) as caught:
        asyncio.run(writer.close_on_thread(lambda: closed.append(True), idle_limit=0.5))
    message = caught.value.lines()[0]
    assert "never written, 4 of them job results" in message
    assert closed == [True]
    holder.rollback()
    holder.close()
    store.close()


def test_close_on_thread_raises_what_closing_the_history_raised(store: SqlHistory) -> None:
    writer = StoreWriter(store)
    writer(start())

    def refuse() -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        asyncio.run(writer.close_on_thread(refuse))
    assert count_events(store, "r1") == 1
    store.close()


def test_a_rejected_batch_is_reported_not_retried(tmp_path: Path) -> None:
    # an empty file with no tables: "no such table" is a mistake, not an outage
    store = SqlHistory(create_store_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    writer = StoreWriter(store)
    writer(start())
    assert writer.flush_now() is False
    with pytest.raises(StoreError, match="1 events were rejected"):
        writer.close()
    store.close()


# -- two corral processes writing one SQLite file ------------------------------------------


def test_two_processes_write_one_sqlite_file_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / '.corral' / 'corral.db'}"  # neither finds it: both migrate
    procs = [
        subprocess.Popen(
            [sys.executable, str(DATA / "write_run.py"), url, run_id, "20", "300"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id in ("twin-1", "twin-2")
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    store = open_store(url, tmp_path / "unused.db")
    for run_id in ("twin-1", "twin-2"):
        run = store.get_run(run_id).run
        assert (run.status, run.jobs_succeeded) == (RunStatus.SUCCEEDED, 20)
        assert count_events(store, run_id) == 2 + 20 * 302
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_on_one_fresh_database(backend: str, tmp_path: Path) -> None:
    for url in backend_url(backend, tmp_path):
        procs = [
            subprocess.Popen(
                [sys.executable, str(DATA / "write_run.py"), url, f"pair-{n}", "3", "10"],
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        errors = [proc.communicate(timeout=60)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], errors
        store = open_store(url, tmp_path / "unused.db")
        assert sorted(r.id for r in store.list_runs()) == ["pair-0", "pair-1"]
        store.close()


def test_fast_payload_is_exactly_event_to_dict() -> None:
    import orjson

    from corral.events.codec import event_to_dict
    from corral.models import Cost, CostSource
    from corral.store.apply import _payload
    from corral.store.rows import dumps
    from test_events import SAMPLES

    events = [
        *scripted_run(),
        *SAMPLES,  # one of every kind
        UsageUpdated(job="a", attempt=1, by_model={}, cost=Cost(None, CostSource.UNPRICED)),
        JobStartedWithOddSpec,
    ]
    for event in events:
        assert orjson.loads(_payload(event)) == orjson.loads(dumps(event_to_dict(event))), event


JobStartedWithOddSpec = __import__("corral.events.types", fromlist=["JobStarted"]).JobStarted(
    job="a", attempt=1, pid=1, argv=(), log_dir="", started_at=0.0, spec={"path": Path("/x"), 1: 2}
)
