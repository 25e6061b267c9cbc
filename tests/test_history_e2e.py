"""A run lands in the history: `corral runs`, `show`, `logs`, `usage` and `resume` read it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from helpers import corral, write_flow

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"


def test_run_is_recorded_and_queryable(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        name: recorded
        jobs:
          plain: {run: FAKE echo hello}
          review: {tool: claude, prompt: "go", env: {FAKE_AGENT_SCRIPT: claude_tool}}
          broken: {run: FAKE exit 2}
        """,
    )
    env = {"FAKE_AGENT_DIR": str(DATA), "CORRAL_CLAUDE_BIN": str(FAKE_AGENT)}
    run = corral("run", str(flow), "--json", cwd=tmp_path, env=env)
    assert run.returncode == 1
    run_id = json.loads(run.stdout)["run_id"]

    runs = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)
    listed = runs[0] if isinstance(runs, list) else runs["runs"][0]
    assert listed["id"] == run_id and listed["status"] == "failed"

    shown = corral("show", run_id, "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    jobs = {j["name"]: j for j in record["jobs"]}
    assert jobs["plain"]["status"] == "succeeded"
    assert jobs["broken"]["status"] == "failed"
    assert Decimal(jobs["review"]["cost"]["usd"]) == Decimal("0.0985404")

    logs = corral("logs", run_id, "plain", cwd=tmp_path)
    assert logs.stdout == "hello\n"

    usage = corral("usage", "--by", "model", "--json", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert "claude-opus-5-5" in usage.stdout

    missing = corral("show", "nope", cwd=tmp_path)
    assert missing.returncode == 4
    assert "Traceback" not in missing.stderr


def test_resume_runs_only_what_did_not_succeed(tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    ledger = tmp_path / "ran"
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          first: {{run: "sh -c 'echo first >> {ledger}; echo first-result'"}}
          second:
            needs: [first]
            run: "sh -c 'echo second >> {ledger}; test -f {marker}'"
          third:
            needs: [second]
            run: "echo got {{{{ jobs.first.result }}}}"
        """,
    )
    first = corral("run", str(flow), "--json", cwd=tmp_path)
    assert first.returncode == 1
    run_id = json.loads(first.stdout)["run_id"]
    marker.touch()
    resumed = corral("resume", run_id, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert [j["name"] for j in summary["jobs"]] == ["second", "third"]
    assert ledger.read_text().splitlines() == ["first", "second", "second"]
    third_log = Path(summary["jobs"][1]["log_dir"]) / "stdout.log"
    assert third_log.read_text() == "got first-result\n"
    assert "keeping 1 succeeded job" in resumed.stderr


def test_from_takes_left_out_results_from_the_history(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          build: {run: FAKE echo v1.2.3, outputs: {version: {regex: 'v(\\S+)'}}}
          deploy: {needs: [build], run: "FAKE echo deploying {{ jobs.build.outputs.version }}"}
        """,
    )
    assert corral("run", str(flow), "-q", cwd=tmp_path).returncode == 0
    again = corral("run", str(flow), "--from", "deploy", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    jobs = json.loads(again.stdout)["jobs"]
    assert [j["name"] for j in jobs] == ["deploy"]
    assert (Path(jobs[0]["log_dir"]) / "stdout.log").read_text() == "deploying 1.2.3\n"


def _start_hanging_run(
    tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    # the job hangs until a file `fixed` exists, so a resume after the fix can finish
    flow = write_flow(
        tmp_path,
        """
        jobs:
          slow: {run: "sh -c 'if [ -f fixed ]; then echo ok; else exec FAKE hang started; fi'"}
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", str(flow), "-q"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 20
    logs: list[Path] = []
    while time.monotonic() < deadline:
        logs = list((tmp_path / ".corral" / "runs").glob("*/slow/stdout.log"))
        if logs and "started" in logs[0].read_text():
            break
        time.sleep(0.05)
    assert logs, "the run never started its job"
    return proc, logs[0].parent.parent.name


def test_resume_refuses_a_run_that_is_still_alive(tmp_path: Path) -> None:
    proc, run_id = _start_hanging_run(tmp_path)
    try:
        result = corral("resume", run_id, cwd=tmp_path)
        assert result.returncode == 2
        assert f"run {run_id} is still running (corral process {proc.pid})" in result.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def test_resume_after_kill_stops_leftovers_and_closes_the_dead_run(tmp_path: Path) -> None:
    # a run without a supervisor (as before it existed): what it left is nobody's, and the
    # resume stops it by its CORRAL_RUN_ID mark (a supervised run's jobs are adopted:
    # tests/test_supervision.py)
    bare = {"CORRAL_SUPERVISE": "0"}
    proc, run_id = _start_hanging_run(tmp_path, bare)
    proc.kill()  # the job is orphaned, still hanging
    proc.wait(10)
    (tmp_path / "fixed").touch()
    resumed = corral("resume", run_id, "--json", cwd=tmp_path, timeout=60, env=bare)
    assert resumed.returncode == 0, resumed.stderr
    assert "stopped" in resumed.stderr and "left running by run" in resumed.stderr
    assert json.loads(resumed.stdout)["jobs"][0]["status"] == "succeeded"
    runs = json.loads(corral("runs", "--json", "--no-chain", cwd=tmp_path).stdout)
    rows = runs if isinstance(runs, list) else runs["runs"]
    old = next(r for r in rows if r["id"] == run_id)
    assert old["status"] == "cancelled"


@pytest.mark.parametrize("folder", ["a[b]", "q?x#y", "p%41c d"])
def test_a_history_in_a_folder_whose_name_is_url_syntax_is_saved_there(
    tmp_path: Path, folder: str
) -> None:
    # the history URL names the file percent-encoded; each reader must decode it the way
    # SQLAlchemy does, or the run is refused ("unable to open database file") or lands in
    # another folder (`?` starting a query, `#` a fragment, `%41` read as `A`)
    work = tmp_path / folder
    work.mkdir()
    flow = write_flow(work, "jobs:\n  t: {run: 'true'}\n")
    run = corral("run", str(flow), "--json", cwd=work)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    assert (work / ".corral" / "corral.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]
    listed = json.loads(corral("runs", "--json", cwd=work).stdout)
    rows = listed if isinstance(listed, list) else listed["runs"]
    assert [r["id"] for r in rows] == [run_id]
    assert corral("show", run_id, cwd=work).returncode == 0
