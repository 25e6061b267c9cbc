"""Store faults are never success: a damaged SQLite file, a full disk, a NUL byte on
PostgreSQL (one bad event must not drop another job's result)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import corral

from corral.events.types import JobFinished, JobStarted
from corral.models import JobStatus
from corral.store import StoreWriter
from test_store_support import BACKENDS, make_store, scripted_run


def _one_run(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text("version: 1\njobs:\n  a: {run: [echo, hi]}\n")
    done = corral("run", "flow.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_a_damaged_sqlite_file_gives_exit_3_and_one_line_from_every_command(
    tmp_path: Path,
) -> None:
    for _ in range(3):
        _one_run(tmp_path)
    db = tmp_path / ".corral" / "corral.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    size = db.stat().st_size
    with db.open("r+b") as handle:  # garbage over every page but the header page
        handle.seek(4096)
        handle.write(os.urandom(size - 4096))
    run_id = "20261203-000000-0000"
    for args in (
        ("runs",),
        ("show", run_id),
        ("usage",),
        ("export", run_id),
        ("run", "flow.yaml", "-q"),
    ):
        done = corral(*args, cwd=tmp_path)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("corral: error:"), (args, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nul_byte_in_one_event_never_drops_another_jobs_result(
    backend: str, tmp_path: Path
) -> None:
    for store in make_store(backend, tmp_path):
        writer = StoreWriter(store, window_s=0.5)
        events = scripted_run(finish=False)
        for event in events:
            writer(event)
        assert writer.flush_now()
        latest = {e.job: e for e in events if isinstance(e, JobStarted)}  # last attempts
        started = list(latest.values())
        # one batch: a result with a NUL byte, and another job's ordinary result
        for event, result in ((started[0], "bad\x00byte"), (started[-1], "fine")):
            writer(
                JobFinished(
                    job=event.job,
                    attempt=event.attempt,
                    status=JobStatus.SUCCEEDED,
                    exit_code=0,
                    signal=None,
                    duration_s=1.0,
                    result=result,
                )
            )
        writer.close()
        record = store.get_run("run-aaaa1111")
        results = {job.name: job.final.result if job.final else None for job in record.jobs}
        assert results[started[-1].job] == "fine"
        assert results[started[0].job] in ("bad\x00byte", "bad\u2400byte")


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full disk) needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(folder)], check=False).returncode == 0:
                break
            time.sleep(0.1)


def test_a_full_disk_fails_the_job_and_the_run_says_so(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "1m") as small:
        # the job ignores its own write errors (exit 0): corral must not call it a success
        (small / "flow.yaml").write_text(
            "version: 1\njobs:\n  big: {run: 'head -c 3000000 /dev/zero; exit 0', shell: true}\n"
        )
        store = f"sqlite:///{tmp_path / 'history.db'}"
        done = corral("run", "flow.yaml", "-q", "--store", store, cwd=small)
        assert done.returncode != 0, done.stdout + done.stderr
        assert "no space left on device" in (done.stdout + done.stderr).lower()
        assert "Traceback" not in done.stderr


def test_a_full_history_disk_is_exit_3_with_what_was_lost(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "db", "400k") as db:
        (db / "filler").write_bytes(b"\0" * 380_000)  # leaves too little for the history
        (tmp_path / "flow.yaml").write_text(
            "version: 1\njobs:\n" + "".join(f"  j{i}: {{run: [echo, 'n{i}']}}\n" for i in range(30))
        )
        url = f"sqlite:///{db / f'{uuid.uuid4().hex}.db'}"
        done = corral("run", "flow.yaml", "-q", "--store", url, cwd=tmp_path, timeout=120)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "corral: error:" in done.stderr and "Traceback" not in done.stderr
