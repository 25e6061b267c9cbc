"""Jobs outlive a killed corral under the run's supervisor, and `corral resume` adopts them.

Each job here waits, silently, for a `go` file before it writes its side effect, so a
test decides whether the job ends before, during or after the resume.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.helpers import corral

from corral.execute.liveness import RunLock
from corral.execute.supervised import read_records, supervisor_alive, wait_exit
from helpers import wait_until

JOB = """\
import os, sys, time
name = sys.argv[1]
with open(f"started-{name}", "a") as f:
    f.write(f"{os.getpid()}\\n")
print(f"{name} thinking", flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
with open(f"effect-{name}", "a") as f:
    f.write("x\\n")
print(f'{{"result": "{name} done"}}', flush=True)
"""


def _flow(tmp_path: Path, extra: str = "") -> None:
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "flow.yaml").write_text(
        f"version: 1\nkill_grace: 1s\n{extra}jobs:\n"
        f"  a: {{run: [{sys.executable}, job.py, a]}}\n"
        f"  b: {{run: [{sys.executable}, job.py, b], needs: [a]}}\n"
    )


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral", *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_mid_job(tmp_path: Path) -> tuple[str, Path]:
    """Start the flow, kill -9 corral while job `a` runs; the run's id and log folder."""
    proc = _start(tmp_path, "run", "flow.yaml", "--output", "prefixed")
    wait_until((tmp_path / "started-a").exists, "job a to start")
    proc.kill()
    proc.communicate()
    runs = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"]
    run_id = runs[0]["id"]
    return run_id, tmp_path / ".corral" / "runs" / run_id


def _show(tmp_path: Path, run_id: str) -> dict[str, str]:
    shown = json.loads(corral("show", run_id, "--json", cwd=tmp_path).stdout)
    return {job["name"]: job["status"] for job in shown["jobs"]}


def _effects(tmp_path: Path, name: str) -> int:
    path = tmp_path / f"effect-{name}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_job_that_finished_while_corral_was_dead_is_adopted_not_rerun(tmp_path: Path) -> None:
    _flow(tmp_path)
    run_id, logs = _kill_mid_job(tmp_path)
    assert supervisor_alive(logs) is not None  # the job outlived corral, under its supervisor
    (tmp_path / "go").touch()
    wait_until(lambda: supervisor_alive(logs) is None, "the supervisor to exit")
    records, _ = read_records(logs)
    assert records["a#1"].exit is not None and records["a#1"].exit.code == 0
    # its output kept going to its log with no corral reading it
    assert "a done" in (logs / "a" / "stdout.log").read_text()

    resumed = corral("resume", run_id, "--output", "prefixed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "adopting 1 job(s)" in resumed.stdout + resumed.stderr
    assert _effects(tmp_path, "a") == 1 and _effects(tmp_path, "b") == 1
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1  # never started again
    # the killed run tells the truth: no row stays running or waiting
    assert set(_show(tmp_path, run_id).values()) == {"cancelled"}
    newest = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"][0]["id"]
    assert _show(tmp_path, newest) == {"a": "succeeded", "b": "succeeded"}


def test_a_job_still_running_is_reattached_and_followed_to_its_end(tmp_path: Path) -> None:
    _flow(tmp_path)
    run_id, logs = _kill_mid_job(tmp_path)
    resume = _start(tmp_path, "resume", run_id, "--output", "prefixed")
    try:
        wait_until((logs / RESUME_LOCK_NAME).exists, "the resume to take its lock")
        time.sleep(0.5)
        (tmp_path / "go").touch()
        out, _ = resume.communicate(timeout=60)
    finally:
        resume.kill()
        resume.wait()
    assert resume.returncode == 0, out
    assert "a | a done" in out or '"result": "a done"' in out  # followed from its log
    assert _effects(tmp_path, "a") == 1
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1
    assert supervisor_alive(logs) is None  # the resume waited for it to go


def test_on_orphan_kill_stops_the_jobs_with_corral_and_resume_runs_them(tmp_path: Path) -> None:
    _flow(tmp_path, extra="on_orphan: kill\n")
    run_id, logs = _kill_mid_job(tmp_path)
    wait_until(lambda: supervisor_alive(logs) is None, "the supervisor to stop the job and exit")
    records, _ = read_records(logs)
    assert records["a#1"].orphan_killed and records["a#1"].exit is not None
    assert _effects(tmp_path, "a") == 0
    (tmp_path / "go").touch()
    resumed = corral("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _effects(tmp_path, "a") == 1
    assert len((tmp_path / "started-a").read_text().splitlines()) == 2  # it ran again


RESUME_LOCK_NAME = "resume.lock"


def test_a_second_resume_of_the_same_run_refuses_and_names_the_holder(tmp_path: Path) -> None:
    _flow(tmp_path)
    run_id, logs = _kill_mid_job(tmp_path)
    lock = RunLock(logs, RESUME_LOCK_NAME)  # as a first `corral resume` holds it
    try:
        second = corral("resume", run_id, cwd=tmp_path)
    finally:
        lock.release()
    assert second.returncode == 2
    assert f"already being resumed by corral process {os.getpid()} on " in second.stderr
    assert _effects(tmp_path, "a") == 0  # nothing ran
    (tmp_path / "go").touch()
    assert corral("resume", run_id, cwd=tmp_path).returncode == 0
    assert _effects(tmp_path, "a") == 1


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGHUP, 129), (signal.SIGQUIT, 131), (signal.SIGTERM, 143)]
)
def test_hangup_and_quit_stop_the_run_like_sigterm(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    _flow(tmp_path)
    proc = _start(tmp_path, "run", "flow.yaml", "--output", "prefixed")
    wait_until((tmp_path / "started-a").exists, "job a to start")
    pid = int((tmp_path / "started-a").read_text().split()[0])
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out
    assert not _alive(pid)
    runs = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"]
    assert runs[0]["status"] == "cancelled"
    assert set(_show(tmp_path, runs[0]["id"]).values()) <= {"cancelled", "skipped"}


DAEMON_JOB = """\
import os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open("daemon.pid", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(300)
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(300)
"""


@pytest.mark.parametrize("twice", [False, True])
def test_a_setsid_daemon_ignoring_sigterm_is_gone_when_corral_exits(
    tmp_path: Path, twice: bool
) -> None:
    (tmp_path / "daemon.py").write_text(DAEMON_JOB)
    (tmp_path / "flow.yaml").write_text(
        f"version: 1\nkill_grace: 1s\njobs:\n  d: {{run: [{sys.executable}, daemon.py]}}\n"
    )
    proc = _start(tmp_path, "run", "flow.yaml", "--output", "prefixed")
    wait_until(
        lambda: (tmp_path / "daemon.pid").exists() and bool((tmp_path / "daemon.pid").read_text()),
        "the daemon",
    )
    daemon = int((tmp_path / "daemon.pid").read_text())
    proc.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert not _alive(daemon)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_logs_follow_keeps_following_an_orphaned_job_and_ends_with_its_supervisor(
    tmp_path: Path,
) -> None:
    _flow(tmp_path)
    run_id, logs = _kill_mid_job(tmp_path)
    follow = _start(tmp_path, "logs", run_id, "a", "--follow")
    try:
        time.sleep(0.5)
        (tmp_path / "go").touch()  # the job ends; then its supervisor
        out, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
        follow.wait()
    assert follow.returncode == 0
    assert "a thinking" in out and "a done" in out  # printed after corral died
    assert supervisor_alive(logs) is None


FAKE_CLAUDE = """\
#!{python}
import json, os, sys, time
if "--version" in sys.argv:
    print("2.0.0 (Claude Code)")
    sys.exit(0)
with open("claude-argv", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
print(json.dumps({{"type": "system", "subtype": "init", "session_id": "sess-42",
                  "model": "claude-sonnet-4-5"}}), flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
print(json.dumps({{"type": "result", "subtype": "success", "is_error": False,
                  "result": "continued", "session_id": "sess-42", "num_turns": 1,
                  "total_cost_usd": 0.01, "usage": {{"input_tokens": 1, "output_tokens": 1}}}}),
      flush=True)
"""


def test_a_restarted_claude_job_continues_its_session(tmp_path: Path) -> None:
    claude = tmp_path / "claude"
    claude.write_text(FAKE_CLAUDE.format(python=sys.executable))
    claude.chmod(0o755)
    (tmp_path / "flow.yaml").write_text(
        "version: 1\non_orphan: kill\nkill_grace: 1s\n"
        "jobs:\n  agent: {tool: claude, prompt: review the code}\n"
    )
    env = {**os.environ, "NO_COLOR": "1", "CORRAL_CLAUDE_BIN": str(claude)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "-q"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until((tmp_path / "claude-argv").exists, "the agent to start")
    time.sleep(1.0)  # its session id reaches the history
    proc.kill()
    proc.wait()
    run_id = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"][0]["id"]
    logs = tmp_path / ".corral" / "runs" / run_id
    wait_until(lambda: supervisor_alive(logs) is None, "on_orphan: kill to stop the agent")
    (tmp_path / "go").touch()
    resumed = corral("resume", run_id, cwd=tmp_path, env={"CORRAL_CLAUDE_BIN": str(claude)})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    first, second = (
        json.loads(line) for line in (tmp_path / "claude-argv").read_text().splitlines()
    )
    assert "--resume" not in first
    assert second[second.index("--resume") + 1] == "sess-42"


@pytest.mark.parametrize("round_", range(3))
def test_two_real_resumes_started_together_one_proceeds_the_other_names_it(
    tmp_path: Path, round_: int
) -> None:
    import socket

    _flow(tmp_path)
    run_id, _ = _kill_mid_job(tmp_path)
    # both at the same moment; job `a` waits for `go`, so the winner holds the lock
    # until the loser has answered
    racers = [_start(tmp_path, "resume", run_id, "--output", "prefixed") for _ in range(2)]
    try:
        wait_until(lambda: any(r.poll() is not None for r in racers), "one resume to refuse")
        loser = next(r for r in racers if r.poll() is not None)
        winner = next(r for r in racers if r is not loser)
        refused, _ = loser.communicate(timeout=30)
        (tmp_path / "go").touch()
        out, _ = winner.communicate(timeout=60)
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    assert loser.returncode == 2, refused
    holder = f"already being resumed by corral process {winner.pid} on {socket.gethostname()}"
    assert holder in refused
    assert winner.returncode == 0, out
    # no job ran twice: `a` was adopted (started once), `b` ran once, each effect once
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1
    assert len((tmp_path / "started-b").read_text().splitlines()) == 1
    assert _effects(tmp_path, "a") == 1 and _effects(tmp_path, "b") == 1


GATED_JOB = """\
import os, sys, time
name = sys.argv[1]
with open(f"started-{name}", "a") as f:
    f.write(f"{os.getpid()}\\n")
print(f"{name} thinking", flush=True)
while not os.path.exists(f"go-{name}"):
    time.sleep(0.02)
with open(f"effect-{name}", "a") as f:
    f.write("x\\n")
print(f'{{"result": "{name} done"}}', flush=True)
"""


def test_resuming_a_run_already_resumed_resumes_its_newest_run_and_no_job_runs_twice(
    tmp_path: Path,
) -> None:
    """R killed in job a; `corral resume R` (R2) adopts a, starts b and is killed too; b
    ends while no corral runs. `corral resume R` again must carry on R2's line (adopt b),
    not start a second line from R that would run b again."""
    (tmp_path / "job.py").write_text(GATED_JOB)
    (tmp_path / "flow.yaml").write_text(
        f"version: 1\nkill_grace: 1s\njobs:\n"
        f"  a: {{run: [{sys.executable}, job.py, a]}}\n"
        f"  b: {{run: [{sys.executable}, job.py, b], needs: [a]}}\n"
    )
    first, _ = _kill_mid_job(tmp_path)
    resume = _start(tmp_path, "resume", first, "--output", "prefixed")
    try:
        (tmp_path / "go-a").touch()
        wait_until((tmp_path / "started-b").exists, "the resume to start job b")
    finally:
        resume.kill()
        resume.communicate()
    runs = json.loads(corral("runs", "--json", "--no-chain", cwd=tmp_path).stdout)["runs"]
    second = runs[0]["id"]
    assert runs[0]["resumed_from"] == first
    second_logs = tmp_path / ".corral" / "runs" / second
    (tmp_path / "go-b").touch()
    wait_until(lambda: supervisor_alive(second_logs) is None, "b to end under the supervisor")

    again = corral("resume", first, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    # each job started once and did its side effect once
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1
    assert len((tmp_path / "started-b").read_text().splitlines()) == 1
    assert _effects(tmp_path, "a") == 1 and _effects(tmp_path, "b") == 1
    assert f"{first} was resumed by {second}; resuming {second}" in again.stderr
    assert "adopting 1 job(s) left by the dead run: b" in again.stderr
    # one logical run: R -> R2 -> R3, not two lines both holding R's spend
    (line,) = json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"]
    assert line["chain"]["origin"] == first and line["chain"]["resumes"] == 2
    assert [run["id"] for run in line["chain"]["runs"]][:2] == [first, second]
    third = line["id"]
    assert _show(tmp_path, third) == {"b": "succeeded"}

    once_more = corral("resume", first, cwd=tmp_path)
    assert once_more.returncode == 0, once_more.stderr
    assert (
        f"{first} was resumed by {second}, the newest run of its chain is {third}; resuming {third}"
    ) in once_more.stderr
    assert "nothing to resume" in once_more.stderr
    assert len(json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"]) == 1


SQLITE_LOCK = """\
import sqlite3, sys
holder = sqlite3.connect(sys.argv[1], isolation_level=None)
holder.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
holder.rollback()
"""


def test_a_resume_that_cannot_close_the_dead_run_exits_3_and_starts_nothing(
    tmp_path: Path,
) -> None:
    """The history takes no writes (another process holds the SQLite lock) when the
    resume must record that the dead run ended: exit 3, one line naming what was not
    written, nothing started; once the lock is gone the next resume adopts the job."""
    _flow(tmp_path)
    run_id, logs = _kill_mid_job(tmp_path)
    try:
        _refused_while_locked(tmp_path, run_id)
    finally:
        (tmp_path / "go").touch()  # a failed check leaves no job behind
        wait_until(lambda: supervisor_alive(logs) is None, "the run's supervisor to exit")
    resumed = corral("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "adopting 1 job(s) left by the dead run: a" in resumed.stderr
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1
    assert _effects(tmp_path, "a") == 1 and _effects(tmp_path, "b") == 1
    assert set(_show(tmp_path, run_id).values()) == {"cancelled"}


def _refused_while_locked(tmp_path: Path, run_id: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", SQLITE_LOCK, str(tmp_path / ".corral" / "corral.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        refused = corral("resume", run_id, cwd=tmp_path, timeout=120)
    finally:
        holder.communicate("release\n", timeout=30)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert f"that dead run {run_id} ended: its end and its 2 unfinished job row(s)" in line
    assert "were not written (database is locked); nothing was started" in line
    assert f"`corral resume {run_id}` again once the history takes writes" in line
    assert json.loads(corral("runs", "--json", cwd=tmp_path).stdout)["runs"][0]["id"] == run_id
    assert len((tmp_path / "started-a").read_text().splitlines()) == 1


# -- waiting for the supervisor's exit: its pidfd on the event loop, no thread ------------


def _popen(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_wait_exit_returns_the_exit_code_without_a_thread() -> None:
    process = _popen("import sys; sys.exit(3)")
    before = set(threading.enumerate())
    assert asyncio.run(wait_exit(process)) == 3
    assert process.returncode == 3  # reaped
    assert set(threading.enumerate()) <= before  # no worker was started for the wait


def test_wait_exit_reports_a_signal_as_its_negative_number() -> None:
    process = _popen("import time; time.sleep(60)")

    async def kill_then_wait() -> int:
        asyncio.get_running_loop().call_later(0.05, process.send_signal, signal.SIGTERM)
        return await wait_exit(process)

    assert asyncio.run(kill_then_wait()) == -signal.SIGTERM


def test_wait_exit_of_a_child_that_ended_before_it_was_asked() -> None:
    process = _popen("pass")
    # a zombie now, not reaped: its pidfd is readable from the start
    wait_until(lambda: _state(process.pid) == "Z", "the child to exit")
    assert process.returncode is None
    assert asyncio.run(wait_exit(process)) == 0
    assert asyncio.run(wait_exit(process)) == 0  # reaped already: answered at once


def test_wait_exit_without_pidfds_waits_on_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", unsupported)
    process = _popen("import sys; sys.exit(5)")
    assert asyncio.run(wait_exit(process)) == 5


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]
