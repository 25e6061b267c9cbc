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
from collections import Counter
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


LOCK_HOLDER = """\
import sqlite3, sys
holder = sqlite3.connect(sys.argv[1], isolation_level=None)
sys.stdin.readline()
holder.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
holder.rollback()
holder.close()
"""

WAITING_JOB = "echo a started; while [ ! -f go ]; do sleep 0.02; done; echo a done"


@pytest.mark.parametrize("locked_from", ["before the run", "once the run is on record"])
def test_a_history_locked_until_a_real_run_ended_is_spilled_at_close_and_resumed_once(
    tmp_path: Path, locked_from: str
) -> None:
    """Another process holds the SQLite history's write lock until after the run ended
    (from before it starts, or from once its start is stored: the writer is then in the
    middle of an attempt when the run ends): the run exits 3 naming its spill and
    `corral resume RUN`, nothing "never written", and the resume, once the lock is gone,
    writes every event exactly once."""
    (tmp_path / "flow.yaml").write_text(
        f"version: 1\njobs:\n  a: {{run: [sh, -c, '{WAITING_JOB}']}}\n"
        "  b: {run: [echo, b done], needs: [a]}\n"
    )
    db = tmp_path / ".corral" / "corral.db"
    db.parent.mkdir(mode=0o700)
    open_store(None, db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None

    def lock() -> None:
        holder.stdin.write("lock\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        assert holder.stdout.readline().strip() == "locked"  # type: ignore[union-attr]

    if locked_from == "before the run":
        lock()
        (tmp_path / "go").touch()
    run = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "--json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if locked_from != "before the run":
            runs = db.parent / "runs"
            deadline = time.monotonic() + 60
            while not list(runs.glob("*/a/stdout.log")) or not _run_ids(db):
                assert time.monotonic() < deadline, "the run never started"
                time.sleep(0.02)
            lock()
            (tmp_path / "go").touch()
        began = time.monotonic()
        out, err = run.communicate(timeout=120)
        took = time.monotonic() - began
    finally:
        run.kill()
        run.wait()
        holder.communicate("release\nrelease\n", timeout=30)
    assert run.returncode == 3, err
    run_id = json.loads(out)["run_id"]
    spill = db.parent / "runs" / run_id / SPILL_NAME
    assert f"wait in {spill}" in err and f"`corral resume {run_id}`" in err
    assert "never written" not in err and "dropped" not in err
    assert took < 25  # bounded: short attempts, not 30 s busy waits (~12 s expected)
    resumed = corral("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"kept in {spill}" in resumed.stderr and "nothing to resume" in resumed.stderr
    assert not spill.exists()
    store = open_store(None, db)
    stored = _stored(store, run_id)
    assert [row[0] for row in stored] == list(range(1, len(stored) + 1))  # no gap, no dup
    kinds = Counter(row[2] for row in stored)
    assert kinds["run.started"] == kinds["run.finished"] == 1
    assert kinds["job.started"] == kinds["job.finished"] == 2
    record = store.get_run(run_id)
    assert str(record.run.status) == "succeeded"
    statuses = {job.name: str(job.status) for job in record.jobs}
    assert statuses == {"a": "succeeded", "b": "succeeded"}
    store.close()


def _run_ids(db: Path) -> list[str]:
    reader = sqlite3.connect(db)
    try:
        return [row[0] for row in reader.execute("SELECT id FROM runs")]
    finally:
        reader.close()
