"""A finished run's jobs are counted by status once, with its end (`run_job_counts`,
migration 0005): `corral runs` reads them instead of counting every job, and they are
exact or absent, never stale, on SQLite (both drivers) and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from corral.events.types import JobFinished
from corral.models import JobStatus
from corral.store import SqlHistory, StoreWriter, schema
from test_store_support import (
    BACKENDS,
    DRIVER_BACKENDS,
    T0,
    backend_url,
    make_store,
    scripted_run,
    unmigrated,
)


@pytest.fixture(params=DRIVER_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlHistory]:
    yield from make_store(request.param, tmp_path)


def write(store: SqlHistory, events: list, start: float = T0, run_id: str | None = None) -> None:
    ticks = iter(range(10_000))
    writer = StoreWriter(store, clock=lambda: start + next(ticks), run_id=run_id)
    for event in events:
        writer(event)
    writer.close()


def kept(store: SqlHistory) -> dict[str, dict[str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.run_job_counts)).all()
    return {run_id: json.loads(counts) for run_id, counts in rows}


def counted(store: SqlHistory, run_id: str) -> dict[str, int]:
    sql = text("SELECT status, count(*) FROM jobs WHERE run_id = :r GROUP BY status")
    with store.engine.connect() as conn:
        return {status: int(n) for status, n in conn.execute(sql, {"r": run_id})}


def listed(store: SqlHistory) -> dict[str, tuple[int, int, int, int]]:
    return {
        r.id: (r.jobs_total, r.jobs_succeeded, r.jobs_failed, r.jobs_skipped)
        for r in store.list_runs()
    }


def test_a_finished_run_keeps_its_counts_a_running_one_does_not(store: SqlHistory) -> None:
    write(store, scripted_run("run-done"))
    write(store, scripted_run("run-live", finish=False), T0 + 100)
    assert kept(store) == {"run-done": counted(store, "run-done")}
    assert kept(store)["run-done"] == {"failed": 1, "skipped": 1, "succeeded": 2}
    # the listing gives the same figures either way
    assert listed(store) == {"run-done": (4, 2, 1, 1), "run-live": (4, 2, 1, 1)}


def test_a_later_write_of_a_job_drops_the_kept_counts(store: SqlHistory) -> None:
    write(store, scripted_run("run-done"))
    assert "run-done" in kept(store)
    # a job's row rewritten after the run's end (say, events written back late)
    late = JobFinished(job="report", attempt=1, status=JobStatus.FAILED, exit_code=1,
                       signal=None, duration_s=1.0)  # fmt: skip
    write(store, [late], T0 + 200, run_id="run-done")
    assert "run-done" not in kept(store)  # never a stale figure
    assert listed(store)["run-done"] == (4, 2, 2, 0)  # counted from the jobs again


def test_gc_deletes_a_runs_counts(store: SqlHistory) -> None:
    write(store, scripted_run("run-done"))
    assert [r.id for r in store.delete_runs_older_than(0, now=T0 + 10**6)] == ["run-done"]
    assert kept(store) == {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_counts_the_finished_runs_already_recorded(backend: str, tmp_path: Path) -> None:
    for url in backend_url(backend, tmp_path):
        store = unmigrated(url)
        store.migrate("0004")
        run = "INSERT INTO runs (id, flow_name, flow_path, started_at, status) VALUES (:id, 'f', 'f.yaml', 1.0, :status)"  # noqa: E501
        job = "INSERT INTO jobs (run_id, name, status) VALUES (:run_id, :name, :status)"
        with store.engine.begin() as conn:
            conn.execute(text(run), [{"id": "done", "status": "failed"},
                                     {"id": "live", "status": "running"},
                                     {"id": "empty", "status": "succeeded"}])  # fmt: skip
            jobs = [("done", "a", "succeeded"), ("done", "b", "failed"), ("done", "c", "failed"),
                    ("live", "a", "running")]  # fmt: skip
            conn.execute(
                text(job), [dict(zip(("run_id", "name", "status"), j, strict=True)) for j in jobs]
            )
        store.migrate()
        # a run marked running may be in progress in an older corral: it is not kept
        assert kept(store) == {"done": {"failed": 2, "succeeded": 1}, "empty": {}}
        assert listed(store) == {"done": (3, 1, 2, 0), "live": (1, 0, 0, 0), "empty": (0, 0, 0, 0)}
        store.close()
