"""The store writer's on-disk backlog: a history that is down (here: SQLite locked by
another process) makes the writer spill its events to the run's folder; they are written
back, in order and once, when the history returns or when `corral resume` finds the
file a killed corral left."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from corral.errors import StoreError
from corral.events.types import AssistantText, Event, JobOutput
from corral.store import SqlHistory, StoreWriter, open_store, schema
from corral.store.engine import create_store_engine
from corral.store.spill import SPILL_NAME
from helpers import corral
from test_store_support import T0, scripted_run

TESTS = Path(__file__).parent


def _locked(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def _impatient(path: Path) -> SqlHistory:
    return SqlHistory(create_store_engine(f"sqlite:///{path}", busy_timeout_ms=20))


def _events() -> list[Event]:
    events = scripted_run()
    chatter: list[Event] = [AssistantText(job="tests", attempt=1, text=f"t{n}") for n in range(60)]
    return [*events[:3], *chatter, *events[3:]]


def _ticks() -> Any:
    ticks = iter(range(100_000))
    return lambda: T0 + next(ticks)


def _stored(store: SqlHistory, run_id: str) -> list[tuple[int, float, str, str]]:
    e = schema.events
    stmt = select(e.c.seq, e.c.ts, e.c.kind, e.c.payload).where(e.c.run_id == run_id)
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt.order_by(e.c.seq))]  # type: ignore[misc]


def _reference(tmp_path: Path, events: list[Event]) -> SqlHistory:
    """The same events written to a healthy history: what the rows must be."""
    store = open_store(None, tmp_path / "reference.db")
    writer = StoreWriter(store, clock=_ticks())
    for event in events:
        writer(event)
    writer.close()
    return store


@pytest.fixture
def down(tmp_path: Path) -> tuple[Path, Path]:
    """A history file and a run folder (0700) for the spill."""
    path = tmp_path / "corral.db"
    open_store(None, path).close()
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return path, folder


def test_a_store_that_is_down_spills_and_gets_every_event_once_when_back(
    tmp_path: Path, down: tuple[Path, Path]
) -> None:
    path, folder = down
    events = _events()
    holder = _locked(path)
    store = _impatient(path)
    writer = StoreWriter(
        store, clock=_ticks(), window_s=0.01, max_buffered=10, max_backoff_s=0.05, spill_dir=folder
    )
    for event in events:
        writer(event)
    spill = folder / SPILL_NAME
    deadline = time.monotonic() + 10
    while writer.spilled < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.spilled >= 50  # past the memory bound of 10: on disk, not dropped
    assert spill.exists() and stat.S_IMODE(spill.stat().st_mode) == 0o600
    assert writer.dropped == 0
    holder.rollback()
    holder.close()
    assert writer.flush_now(timeout=10.0)
    writer.close()  # no loss to report
    assert not spill.exists()
    reference = _reference(tmp_path, events)
    run_id = "run-aaaa1111"
    assert _stored(store, run_id) == _stored(reference, run_id)  # same numbers, same order
    assert store.get_run(run_id).to_dict() == reference.get_run(run_id).to_dict()
    store.close()
    reference.close()


def test_a_store_that_never_returns_is_exit_3_and_names_the_spill(down: tuple[Path, Path]) -> None:
    path, folder = down
    holder = _locked(path)
    store = _impatient(path)
    writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.05, spill_dir=folder)
    for event in scripted_run():
        writer(event)
    try:
        with pytest.raises(StoreError) as caught:
            writer.close(timeout=0.5)
    finally:
        holder.rollback()
        holder.close()
    assert caught.value.exit_code == 3
    message = caught.value.lines()[0]
    stored = sum(not isinstance(e, JobOutput) for e in scripted_run())
    assert f"{stored} events wait in {folder / SPILL_NAME}" in message
    assert "`corral resume run-aaaa1111` writes them" in message
    assert len((folder / SPILL_NAME).read_text().splitlines()) == stored
    store.close()


FLOW = "version: 1\njobs:\n  a: {run: [echo, hi]}\n"

KILLED_WRITER = """\
import os, signal, sys, time
from pathlib import Path
from corral.events.types import JobFinished, JobStarted, RunFinished, RunStarted
from corral.models import JobStatus, RunStatus
from corral.store import StoreWriter
from corral.store.engine import create_store_engine
from corral.store.sql import SqlHistory

db, folder, flow, run_id = sys.argv[1:5]
store = SqlHistory(create_store_engine(f"sqlite:///{db}", busy_timeout_ms=20))
writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.05, spill_after_s=0.0)
now = time.time()
events = [
    RunStarted(run_id=run_id, flow_name="flow", flow_path=flow, jobs=("a",), started_at=now,
               flow_content=open(flow).read(), log_root=folder),
    JobStarted(job="a", attempt=1, pid=1, argv=("echo", "hi"), log_dir=folder + "/a",
               started_at=now, tool="generic"),
    JobFinished(job="a", attempt=1, status=JobStatus.SUCCEEDED, exit_code=0, signal=None,
                duration_s=0.1, tool="generic"),
    RunFinished(run_id=run_id, status=RunStatus.SUCCEEDED, ended_at=now + 1),
]
for event in events:
    writer(event)
while writer.spilled < len(events):
    time.sleep(0.01)
print("spilled", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no write back: the file stays
"""


def test_a_spill_left_by_a_killed_corral_is_written_by_resume_exactly_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    db = tmp_path / ".corral" / "corral.db"
    db.parent.mkdir(mode=0o700)
    open_store(None, db).close()
    run_id = "20260101-000000-spilledrun000000"
    folder = db.parent / "runs" / run_id
    folder.mkdir(parents=True, mode=0o700)
    flow = str(tmp_path / "flow.yaml")
    holder = _locked(db)
    try:
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, str(db), str(folder), flow, run_id],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        holder.rollback()
        holder.close()
    assert "spilled" in killed.stdout and killed.returncode == -9, killed.stderr
    spill = folder / SPILL_NAME
    copy = spill.read_bytes()
    assert len(copy.splitlines()) == 4
    # the history has never heard of the run: resume finds it by its folder
    resumed = corral("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"wrote 4 event(s) kept in {spill}" in resumed.stderr + resumed.stdout
    assert "nothing to resume" in resumed.stderr + resumed.stdout
    assert not spill.exists()
    shown = json.loads(corral("show", run_id, "--json", cwd=tmp_path).stdout)
    assert shown["run"]["status"] == "succeeded" and shown["jobs"][0]["status"] == "succeeded"
    # killed between the commit and the file's removal: the file comes back whole, and
    # with a line torn by a kill mid-append; nothing is applied twice
    spill.write_bytes(copy + b'{"run": "' + run_id.encode() + b'", "se')
    again = corral("resume", run_id, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"wrote 0 event(s) kept in {spill}" in again.stderr + again.stdout
    store = open_store(None, db)
    assert [row[0] for row in _stored(store, run_id)] == [1, 2, 3, 4]
    assert store.get_run(run_id).to_dict() == shown_record(shown)
    store.close()
    shutil.rmtree(folder, ignore_errors=True)


def shown_record(shown: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shown.items() if k not in ("schema_version", "kept", "chain")}
