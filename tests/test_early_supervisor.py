"""`corral exec` and `corral run` start the run's supervisor before their own start-up
(`corral.execute.early`), and the run takes it with a `begin`; every other case (and an
early supervisor that died) runs as before, and nothing of an unused one is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import corral

from corral.execute import early
from corral.execute.supervised import SupervisorClient, read_records, supervisor_alive
from helpers import wait_until

# a job that prints the command line of its parent: the run's supervisor, or corral
PARENT = "tr '\\0' ' ' < /proc/$PPID/cmdline"
# a job that prints the command lines of its parent's children (corral's, unsupervised)
SIBLINGS = (
    "for c in $(cat /proc/$PPID/task/*/children); do tr '\\0' ' ' < /proc/$c/cmdline; echo; done"
)
JOB = """\
import os, sys, time
with open("started", "a") as f:
    f.write(f"{os.getpid()}\\n")
while not os.path.exists("go"):
    time.sleep(0.02)
with open("effect", "a") as f:
    f.write("x\\n")
print('{"result": "done"}', flush=True)
"""


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _marked(mark: str) -> list[int]:
    """The processes whose environment holds `mark` (as CORRAL_TEST_MARK)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if f"CORRAL_TEST_MARK={mark}".encode() in environ.split(b"\0"):
            found.append(int(entry))
    return found


def test_plain_exec_and_run_begin_the_supervisor_started_early(tmp_path: Path) -> None:
    done = corral("exec", "--output", "prefixed", "--", "sh", "-c", PARENT, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "corral.execute.supervisor --early" in done.stdout
    run = json.dumps(["sh", "-c", PARENT])
    (tmp_path / "flow.yaml").write_text(f"version: 1\njobs:\n  p: {{run: {run}}}\n")
    done = corral("run", "flow.yaml", "--output", "prefixed", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "corral.execute.supervisor --early" in done.stdout
    # the run it began logged where a supervisor started late logs, and recorded the job
    for logs in (tmp_path / ".corral" / "runs").iterdir():
        assert (logs / "supervisor.log").read_text() == ""
        records, _ = read_records(logs)
        assert [r.exit.code for r in records.values() if r.exit is not None] == [0]


@pytest.mark.parametrize(
    ("args", "environ", "wanted"),
    [
        (["exec", "--", "true"], {}, True),
        (["run", "flow.yaml", "-q"], {}, True),
        (["run", "flow.yaml", "--executor", "local"], {}, True),
        (["exec", "--", "cmd", "--help", "--server", "x"], {}, True),  # the command's own
        (["exec", "--", "true"], {"CORRAL_SUPERVISE": "0"}, False),
        (["run", "flow.yaml"], {"CORRAL_SERVER": "http://127.0.0.1:1"}, False),
        (["run", "flow.yaml", "--server", "http://127.0.0.1:1"], {}, False),
        (["run", "flow.yaml", "--executor", "ray"], {}, False),
        (["run", "flow.yaml", "--executor=ray"], {}, False),
        (["exec", "--help"], {}, False),
        (["run", "-h"], {}, False),
        (["run", "flow.yaml", "--start-at", "2am"], {}, False),
        (["resume", "RUN"], {}, False),
        (["validate", "flow.yaml"], {}, False),
        ([], {}, False),
    ],
)
def test_the_early_start_is_skipped_where_no_local_supervised_run_follows(
    args: list[str], environ: dict[str, str], wanted: bool
) -> None:
    assert early.wanted(args, environ) is wanted


def test_with_supervision_off_no_supervisor_is_started(tmp_path: Path) -> None:
    done = corral(
        "exec",
        "--output",
        "prefixed",
        "--",
        "sh",
        "-c",
        SIBLINGS,
        cwd=tmp_path,
        env={"CORRAL_SUPERVISE": "0"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sh -c" in done.stdout  # the job saw itself among corral's children
    assert "corral.execute.supervisor" not in done.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("run", "flow.yaml"), 2),  # a flow error
        (("run", "flow.yaml", "--only", "nosuch"), 2),  # a usage error after the parse
        (("exec", "--model", "m", "--", "true"), 2),  # refused inside the command
        (("run", "missing.yaml"), 2),
    ],
)
def test_a_command_that_runs_no_job_leaves_no_process_and_no_file(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    (tmp_path / "flow.yaml").write_text("version: 1\njobs:\n  a: {run: true, needs: [b]}\n")
    mark = uuid.uuid4().hex
    done = corral(*args, cwd=tmp_path, env={"CORRAL_TEST_MARK": mark})
    assert done.returncode == code, done.stdout + done.stderr
    assert _marked(mark) == []  # gone when corral is: killed and reaped before it exits
    assert not list(tmp_path.rglob("supervisor.*"))


def test_kill_9_after_the_begin_leaves_the_job_supervised_and_resume_adopts_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "flow.yaml").write_text(
        f"version: 1\nkill_grace: 1s\njobs:\n  a: {{run: [{sys.executable}, job.py]}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "flow.yaml", "--output", "prefixed"],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until((tmp_path / "started").exists, "the job to start")
    finally:
        proc.kill()
        proc.wait()
    (logs,) = (tmp_path / ".corral" / "runs").iterdir()
    pid = supervisor_alive(logs)
    assert pid is not None  # the job outlived corral, under its supervisor: the early one
    assert "--early" in _cmdline(pid)
    (tmp_path / "go").touch()
    wait_until(lambda: supervisor_alive(logs) is None, "the supervisor to exit")
    records, _ = read_records(logs)
    assert records["a#1"].exit is not None and records["a#1"].exit.code == 0
    resumed = corral("resume", logs.name, "--output", "prefixed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "adopting 1 job(s)" in resumed.stdout + resumed.stderr
    assert (tmp_path / "effect").read_text() == "x\n"  # done once, never again
    assert len((tmp_path / "started").read_text().splitlines()) == 1


async def _run_one_job(client: SupervisorClient, tmp_path: Path) -> dict[str, object]:
    await client.start()
    try:
        pid = await client.spawn(
            "a#1",
            ["sh", "-c", "echo hi"],
            {"PATH": os.environ["PATH"]},
            None,
            tmp_path / "logs" / "a" / "stdout.log",
            tmp_path / "logs" / "a" / "stderr.log",
        )
        assert pid > 0
        return await client.exited("a#1")
    finally:
        await client.sweep(0.1)
        await client.close()


@pytest.fixture
def started_early(monkeypatch: pytest.MonkeyPatch) -> Iterator[early.Early]:
    monkeypatch.delenv("CORRAL_SUPERVISE", raising=False)
    monkeypatch.delenv("CORRAL_SERVER", raising=False)
    early.start(["exec", "--", "true"])
    found = early._STARTED[-1]
    yield found
    early.discard()


async def test_the_run_takes_the_early_supervisor_and_runs_its_jobs(
    tmp_path: Path, started_early: early.Early
) -> None:
    client = SupervisorClient(tmp_path / "logs", "adopt", 1.0)
    message = await _run_one_job(client, tmp_path)
    assert client.pid == started_early.process.pid
    assert message["code"] == 0
    assert (tmp_path / "logs" / "a" / "stdout.log").read_text() == "hi\n"
    assert started_early.process.returncode == 0  # it went once corral let go


async def test_an_early_supervisor_that_died_before_begin_is_replaced(
    tmp_path: Path, started_early: early.Early
) -> None:
    started_early.process.send_signal(signal.SIGKILL)
    started_early.process.wait()
    client = SupervisorClient(tmp_path / "logs", "adopt", 1.0)
    message = await _run_one_job(client, tmp_path)
    assert client.pid != started_early.process.pid  # one started as before
    assert message["code"] == 0
    assert (tmp_path / "logs" / "a" / "stdout.log").read_text() == "hi\n"


def test_an_early_supervisor_whose_corral_goes_away_exits(started_early: early.Early) -> None:
    early._STARTED.clear()  # as if corral ended without a run: its end closes
    started_early.sock.close()
    assert started_early.process.wait(timeout=60) == 0  # by itself, not killed
