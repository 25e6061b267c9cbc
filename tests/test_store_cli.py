"""The history commands through click, against a SQLite history in a temp folder."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from corral.cli.main import cli
from corral.errors import CorralError
from corral.events.types import JobFinished, RunFinished
from corral.models import RunStatus
from corral.store import StoreWriter, open_store
from test_store_support import scripted_run

NOW = time.time()


def record(
    folder: Path, run_id: str, *, started: float, finish: bool = True, running: str = ""
) -> None:
    log_root = folder / ".corral" / "logs" / run_id
    for job in ("analyze", "tests", "lint"):
        (log_root / job).mkdir(parents=True, exist_ok=True)
        (log_root / job / "stdout.log").write_bytes(f"{job} out\n".encode())
        (log_root / job / "stderr.log").write_bytes(f"{job} err\n".encode())
    (log_root / "analyze" / "attempt-2").mkdir()
    (log_root / "analyze" / "attempt-2" / "stdout.log").write_bytes(b"second try\n")
    store = open_store(None, folder / ".corral" / "corral.db")
    writer = StoreWriter(store)
    for event in scripted_run(run_id, started=started, log_root=str(log_root), finish=finish):
        if not (isinstance(event, JobFinished) and event.job == running):
            writer(event)
    writer.close()
    store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    record(tmp_path, "run-new1", started=NOW - 60)
    record(tmp_path, "run-old2", started=NOW - 40 * 86400)
    return tmp_path


def invoke(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--dir", str(folder)], catch_exceptions=True)
    if isinstance(result.exception, CorralError):
        return result.exception.exit_code, result.exception.lines()[0]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.return_value if isinstance(result.return_value, int) else result.exit_code, (
        result.output
    )


def test_runs_table_and_json_contract(folder: Path) -> None:
    code, out = invoke(folder, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "FLOW",
        "STATUS",
        "STARTED",
        "DURATION",
        "JOBS",
        "TOKENS",
        "COST",
    ]
    assert "run-new1" in lines[1] and "2/4 ok, 1 failed" in lines[1] and "unpriced" in lines[1]
    code, out = invoke(folder, "runs", "--json", "--since", "7d")
    data = json.loads(out)
    assert data["schema_version"] == 1 and [r["id"] for r in data["runs"]] == ["run-new1"]
    assert set(data["runs"][0]) == {
        "id", "flow_name", "flow_path", "status", "started_at", "ended_at", "duration_s",
        "log_root", "resumed_from", "rehearsal", "user", "host", "error", "jobs", "tokens", "cost",
        "chain",
    }  # fmt: skip
    assert data["runs"][0]["chain"]["resumes"] == 0
    assert invoke(folder, "runs", "--status", "succeeded")[1].strip() == "No runs match."
    assert invoke(folder, "runs", "--since", "soon")[0] == 2


def test_runs_without_history(tmp_path: Path) -> None:
    code, message = invoke(tmp_path, "runs")
    assert code == 0  # and it says where it looked
    assert message.startswith(f"No runs recorded in {tmp_path / '.corral' / 'corral.db'} ")
    assert not (tmp_path / ".corral").exists()  # looking does not create a history
    code, message = invoke(tmp_path, "show", "x")
    assert code == 4 and "no run history" in message


def test_show(folder: Path) -> None:
    code, out = invoke(folder, "show", "run-new")
    assert code == 0
    assert "run:      run-new1" in out
    assert "rate_limit" not in out  # analyze's final attempt succeeded
    assert "exit: exit status 2" in out  # lint's error, with its kind
    assert "needs lint, which failed" in out
    data = json.loads(invoke(folder, "show", "run-new1", "--json")[1])
    assert data["schema_version"] == 1
    assert [j["name"] for j in data["jobs"]][:2] == ["analyze", "tests"]
    code, message = invoke(folder, "show", "nope")
    assert code == 4 and "corral runs" in message


def test_logs_reads_the_stored_log_dir(folder: Path) -> None:
    assert invoke(folder, "logs", "run-new1", "analyze")[1] == "second try\n"
    # both streams by default, stderr marked; --stdout and --stderr give one as written
    first = invoke(folder, "logs", "run-new1", "analyze", "--attempt", "1")[1]
    assert first == "analyze out\nstderr| analyze err\n"
    assert invoke(folder, "logs", "run-new1", "analyze", "--attempt", "1", "--stdout")[1] == (
        "analyze out\n"
    )
    assert invoke(folder, "logs", "run-new1", "lint", "--stderr")[1] == "lint err\n"
    everything = invoke(folder, "logs", "run-new1")[1]
    assert "==> tests <==\ntests out\nstderr| tests err\n" in everything
    code, message = invoke(folder, "logs", "run-new1", "nojob")
    assert code == 4 and "analyze, tests, lint, report" in message


def test_logs_follow_stops_when_the_run_ends(tmp_path: Path) -> None:
    record(tmp_path, "run-live", started=NOW, finish=False, running="lint")
    log = tmp_path / ".corral" / "logs" / "run-live" / "lint" / "stdout.log"
    store = open_store(None, tmp_path / ".corral" / "corral.db")

    def later() -> None:
        time.sleep(0.3)
        with log.open("ab") as out:
            out.write(b"late line\n")
        time.sleep(0.3)
        writer = StoreWriter(store, run_id="run-live")
        writer(RunFinished(run_id="run-live", status=RunStatus.FAILED, ended_at=time.time()))
        writer.close()

    thread = threading.Thread(target=later)
    thread.start()
    began = time.monotonic()
    code, out = invoke(tmp_path, "logs", "run-live", "lint", "--follow")
    thread.join()
    store.close()
    assert (code, out) == (0, "lint out\nstderr| lint err\nlate line\n")
    assert time.monotonic() - began < 5
    # without JOB, --follow follows every job (the run is over: each is printed once)
    code, out = invoke(tmp_path, "logs", "run-live", "--follow")
    assert code == 0 and "==> lint <==\nlint out\nlate line\nstderr| lint err\n" in out
    assert "==> analyze <==\nsecond try\n" in out and out.count("==> lint <==") == 1


def test_export(folder: Path, tmp_path: Path) -> None:
    data = json.loads(invoke(folder, "export", "run-new1")[1])
    assert data["run"]["id"] == "run-new1" and data["events"]
    lines = invoke(folder, "export", "run-new1", "--format", "jsonl")[1].splitlines()
    assert json.loads(lines[0])["event"]["kind"] == "run.started"
    target = tmp_path / "out.csv"
    assert invoke(folder, "export", "run-new1", "--format", "csv", "-o", str(target))[0] == 0
    assert target.read_text().startswith("run_id,job,attempt,status")


def test_usage(folder: Path) -> None:
    code, out = invoke(folder, "usage", "--by", "model")
    assert code == 0
    assert "claude-sonnet-4-5" in out and "total" in out and "REPORTED" in out
    data = json.loads(invoke(folder, "usage", "--by", "flow", "--since", "7d", "--json")[1])
    assert data["schema_version"] == 1 and data["by"] == "flow"
    assert [r["key"] for r in data["rows"]] == ["review"]
    # --since is on when attempts ended as recorded: both runs were written just now
    assert data["rows"][0]["cost"]["reported_usd"] == "0.08"  # a sum, no trailing zeros
    rows = invoke(folder, "usage", "--by", "tool", "--csv")[1].splitlines()
    assert rows[0].startswith("tool,attempts,input,output")
    assert invoke(folder, "usage", "--json", "--csv")[0] == 2


def test_gc_deletes_old_runs_and_their_logs(folder: Path) -> None:
    logs = folder / ".corral" / "logs"
    code, out = invoke(folder, "gc", "--older-than", "30d", "--dry-run")
    assert "would delete run run-old2" in out and (logs / "run-old2").exists()
    code, out = invoke(folder, "gc", "--older-than", "30d")
    assert code == 0 and "deleted 1 run\n" in out
    assert not (logs / "run-old2").exists() and (logs / "run-new1").exists()
    assert "run-old2" not in invoke(folder, "runs")[1]
    assert invoke(folder, "gc", "--older-than", "forever")[0] == 2
