"""The history use cases: where the history is, a live tail by sequence number, following a
log on an injected clock, and gc's rule about log folders."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral.app import history
from corral.app.location import default_history, open_history
from corral.errors import NotFoundError, StoreError
from corral.events.types import JobFinished, RunFinished
from corral.models import RunStatus
from corral.store import HistoryReader, HistoryStore, HistoryWriter, open_store
from test_store_support import scripted_run


def test_the_default_history_is_spelt_once(tmp_path: Path) -> None:
    assert default_history(tmp_path) == tmp_path / ".corral" / "corral.db"
    assert open_history(None, tmp_path, must_exist=True) is None  # nothing made
    assert not (tmp_path / ".corral").exists()
    made = open_history(None, tmp_path)
    assert isinstance(made, HistoryStore) and isinstance(made, HistoryReader)
    assert isinstance(made.writer(), HistoryWriter)
    made.close()
    assert default_history(tmp_path).exists()
    url = f"sqlite:///{tmp_path / 'other.db'}"
    by_url = open_history(url, tmp_path / "elsewhere", must_exist=True)
    assert by_url is not None and "other.db" in by_url.display_url
    by_url.close()


def test_an_unknown_scheme_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_history("mongodb://x/y", tmp_path)
    assert caught.value.lines()[0].startswith("unsupported store 'mongodb' in mongodb://x/y")
    assert "postgresql, sqlite" in caught.value.lines()[0]
    with pytest.raises(StoreError, match="names no scheme"):
        open_history("just-a-path.db", tmp_path)


def test_events_after_a_seq_tail_a_run_while_it_is_written(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "h.db")
    writer = store.writer()
    events = [e for e in scripted_run("run-tail") if not isinstance(e, RunFinished)]
    half = len(events) // 2
    for event in events[:half]:
        writer(event)
    assert writer.flush_now(5.0)
    first = list(store.events("run-tail"))
    assert [s.seq for s in first] == list(range(1, len(first) + 1))
    last_seen = first[-1].seq
    for event in events[half:]:  # the run goes on while the reader waits
        writer(event)
    writer(RunFinished(run_id="run-tail", status=RunStatus.SUCCEEDED, ended_at=time.time()))
    assert writer.flush_now(5.0)
    rest = list(store.events("run-tail", after_seq=last_seen))
    assert rest[0].seq == last_seen + 1
    assert [s.event for s in first + rest] == [
        *(e for e in events if e.kind != "job.output"),
        rest[-1].event,
    ]
    assert isinstance(rest[-1].event, RunFinished)
    assert list(store.events("run-tail", after_seq=rest[-1].seq)) == []
    assert all(b.ts >= a.ts for a, b in zip(first + rest, (first + rest)[1:], strict=False))
    writer.close()
    # the writer let go of what it wrote with; the store is still the caller's
    assert store.get_run("run-tail").run.status is RunStatus.SUCCEEDED
    store.close()


def test_follow_copies_a_growing_log_until_the_job_ends(tmp_path: Path) -> None:
    store = open_store(None, default_history(tmp_path))
    writer = store.writer()
    log = tmp_path / "lint.log"
    log.write_bytes(b"first\n")
    for event in scripted_run("run-live", finish=False):
        if not (isinstance(event, JobFinished) and event.job == "lint"):
            writer(event)
    assert writer.flush_now(5.0)
    got: list[bytes] = []
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        # what happens while corral waits: the log grows, then the run ends
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 2:
            with log.open("ab") as out:
                out.write(b"second\n")
        if len(sleeps) == 8:
            writer(RunFinished(run_id="run-live", status=RunStatus.FAILED, ended_at=time.time()))
            assert writer.flush_now(5.0)
            with log.open("ab") as out:
                out.write(b"last words\n")  # landed with the end: still copied

    target = history.JobLogFile("lint", log)
    history.follow_log(
        None, tmp_path, "run-live", target, got.append, clock=lambda: now[0], sleep=sleep
    )
    assert b"".join(got) == b"first\nsecond\nlast words\n"
    assert set(sleeps) == {history.POLL_S}
    writer.close()
    store.close()


def test_gc_removes_only_log_folders_that_name_their_run(tmp_path: Path) -> None:
    store = open_store(None, default_history(tmp_path))
    writer = store.writer()
    own = tmp_path / ".corral" / "runs" / "run-old1"
    shared = tmp_path / "shared-logs"
    for run_id, root in (("run-old1", own), ("run-old2", shared)):
        root.mkdir(parents=True)
        (root / "x.log").write_text("x")
        for event in scripted_run(run_id, started=1000.0, log_root=str(root)):
            writer(event)
    writer.close()
    store.close()
    dry = history.gc(None, tmp_path, 86400, dry_run=True)
    assert [(c.run.id, c.logs_removed) for c in dry] == [("run-old1", False), ("run-old2", False)]
    assert own.exists()
    done = {c.run.id: c for c in history.gc(None, tmp_path, 86400)}
    assert done["run-old1"].logs_removed and not own.exists()
    assert done["run-old2"].kept_because == "its path does not name the run" and shared.exists()
    assert history.list_runs(None, tmp_path) == []
    with pytest.raises(NotFoundError):
        history.show_run(None, tmp_path / "empty", "run-old1")
