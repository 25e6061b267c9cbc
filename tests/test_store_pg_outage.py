"""A PostgreSQL server that goes away mid-run: the run goes on, the events arrive later.

The test owns a private cluster (scripts/pg.sh), stops it with `-m immediate` (as a
crash would) while the writer is busy, restarts it on the same port, and checks that
every event was written; then stops it for good and checks that close() says what was
lost. The cluster is stopped in teardown, before the leftover-process check.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import StoreError
from corral.events.types import AssistantText, JobOutput, RunFinished
from corral.models import RunStatus
from corral.store import StoreWriter, open_store
from test_store_support import scripted_run

PG_SH = Path(__file__).parent.parent / "scripts" / "pg.sh"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _pg(*args: str) -> str:
    done = subprocess.run(
        ["bash", str(PG_SH), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg.sh {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _have_server() -> bool:
    return bool(shutil.which("pg_config") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


@pytest.fixture
def cluster() -> Iterator[tuple[str, str]]:
    if not _have_server():
        pytest.skip("no PostgreSQL server binaries: `scripts/pg.sh start` installs them")
    folder = tempfile.mkdtemp(prefix="corral-pg-outage-")
    try:
        line = _pg("start", folder).strip().splitlines()[-1]
        yield folder, line.split("=", 1)[1]
    finally:
        _pg("stop", folder)


def test_writer_survives_the_server_going_away(cluster: tuple[str, str]) -> None:
    folder, url = cluster
    store = open_store(url, Path("unused"))
    writer = StoreWriter(store, window_s=0.01, max_backoff_s=0.2)
    events = scripted_run(finish=False)
    half = len(events) // 2
    for event in events[:half]:
        writer(event)
    assert writer.flush_now()

    _pg("halt", folder)
    for event in events[half:]:
        writer(event)
    for n in range(500):
        writer(AssistantText(job="analyze", attempt=2, text=f"during the outage {n}"))
    writer(RunFinished(run_id="run-aaaa1111", status=RunStatus.FAILED, ended_at=time.time()))
    began = time.monotonic()
    assert asyncio.run(writer.sync()) is False  # not durable, and the run is not held up
    assert time.monotonic() - began < 5

    _pg("start", folder)
    assert writer.flush_now(timeout=20)
    writer.close()
    stored = sum(not isinstance(e, JobOutput) for e in events) + 501
    assert len(list(store.events("run-aaaa1111"))) == stored
    record = store.get_run("run-aaaa1111")
    assert record.run.status is RunStatus.FAILED and record.run.jobs_total == 4

    # and when it never comes back, close() says what was lost
    late = StoreWriter(store, run_id="run-aaaa1111", window_s=0.01, max_backoff_s=0.2)
    _pg("halt", folder)
    late(AssistantText(job="analyze", attempt=2, text="lost"))
    with pytest.raises(StoreError, match="1 events were never written") as caught:
        late.close(timeout=1.0)
    assert "(not checked)" in caught.value.lines()[0]
    store.close()


def test_a_run_whose_server_never_returns_spills_and_resume_writes_it(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    import json
    import os
    import sys

    from helpers import corral

    folder, url = cluster
    (tmp_path / "flow.yaml").write_text(
        "version: 1\njobs:\n"
        "  a: {run: [sh, -c, 'echo started; sleep 1; echo a done']}\n"
        "  b: {run: [echo, b done], needs: [a]}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "--json", "--store", url],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / ".corral" / "runs").glob("*/a/stdout.log")):
            assert time.monotonic() < deadline, "job a never started"
            time.sleep(0.02)
        _pg("halt", folder)  # gone for the rest of the run
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 3, err  # never success
    run_id = json.loads(out)["run_id"]
    spill = tmp_path / ".corral" / "runs" / run_id / "history-spill.jsonl"
    assert f"wait in {spill}" in err and f"corral resume {run_id}" in err
    _pg("start", folder)
    resumed = corral("resume", run_id, "--store", url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"kept in {spill}" in resumed.stderr and "nothing to resume" in resumed.stderr
    shown = json.loads(corral("show", run_id, "--json", "--store", url, cwd=tmp_path).stdout)
    assert shown["run"]["status"] == "succeeded"
    assert {j["name"]: j["status"] for j in shown["jobs"]} == {"a": "succeeded", "b": "succeeded"}
    assert not spill.exists()


def test_corral_killed_with_a_spill_on_disk_then_resume_writes_it_once(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    import json
    import os
    import sys

    from helpers import corral

    folder, url = cluster
    (tmp_path / "flow.yaml").write_text(
        "version: 1\njobs:\n"
        "  a: {run: [echo, a done]}\n"
        "  b: {run: [sh, -c, 'echo b started; sleep 8; echo b done'], needs: [a]}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "-q", "--store", url],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = tmp_path / ".corral" / "runs"
    try:
        deadline = time.monotonic() + 60
        while not list(runs.glob("*/b/stdout.log")):
            assert time.monotonic() < deadline, "job b never started"
            time.sleep(0.02)
        _pg("halt", folder)
        # down for 5 s: the writer moves its backlog to disk; then corral dies
        while not list(runs.glob("*/history-spill.jsonl")):
            assert time.monotonic() < deadline + 30, "nothing was spilled"
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    (spill,) = runs.glob("*/history-spill.jsonl")
    run_id = spill.parent.name
    _pg("start", folder)
    resumed = corral("resume", run_id, "--store", url, cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"kept in {spill}" in resumed.stderr
    assert not spill.exists()
    store = open_store(url, Path("unused"))
    try:
        seqs = [event.seq for event in store.events(run_id)]
        assert seqs == list(range(1, len(seqs) + 1))  # each event once, none missing
        kinds = [event.event.kind for event in store.events(run_id)]
        assert kinds.count("job.started") == 2 and kinds.count("run.started") == 1
    finally:
        store.close()
    shown = json.loads(corral("show", run_id, "--json", "--store", url, cwd=tmp_path).stdout)
    # the killed run tells the truth: a succeeded; b adopted by the resume, or (on a slow
    # machine) already over and recorded in the spill
    statuses = {j["name"]: j["status"] for j in shown["jobs"]}
    assert statuses["a"] == "succeeded" and statuses["b"] in ("cancelled", "succeeded")
    newest = json.loads(corral("runs", "--json", "--store", url, cwd=tmp_path).stdout)["runs"][0]
    assert newest["chain"]["origin"] == run_id and newest["jobs"]["succeeded"] == 2
