"""`corral resume` stops what a killed run left running, found by its CORRAL_RUN_ID mark."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from corral.execute.reaper import RecordedGroup, reap_marked


def _sleeper(run_id: str, job: str, *, new_session: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "CORRAL_RUN_ID": run_id, "CORRAL_JOB": job},
        start_new_session=new_session,
    )


def test_marked_processes_are_stopped_unmarked_left_alone() -> None:
    grouped = _sleeper("run-a", "build", new_session=True)
    escaped = _sleeper("run-a", "build", new_session=True)  # a daemon outside any record
    other = _sleeper("run-b", "lint", new_session=True)
    try:
        time.sleep(0.3)
        recorded = [RecordedGroup("build", grouped.pid)]
        stopped = reap_marked({"run-a"}, recorded, grace=2.0)
        assert f"job 'build' (process group {grouped.pid})" in stopped
        assert f"process {escaped.pid} of job 'build'" in stopped
        assert grouped.wait(5) != 0 and escaped.wait(5) != 0
        assert other.poll() is None  # another run's process is not touched
    finally:
        for proc in (grouped, escaped, other):
            proc.kill()
            proc.wait()


def test_a_recorded_group_without_the_mark_is_not_signalled() -> None:
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        time.sleep(0.2)
        # the dead run's group id was reused by an unrelated process
        recorded = [RecordedGroup("build", stranger.pid)]
        assert reap_marked({"run-a"}, recorded, grace=0.5) == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
