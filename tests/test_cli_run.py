"""`corral run`, `exec`, `validate` and `schema` through the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import FAKE_CLI, corral, write_flow


def test_all_succeed_exit_0_and_json_summary(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        version: 1
        jobs:
          a: {run: FAKE echo alpha}
          b: {run: [sh, -c, "echo beta"]}
        """,
    )
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["schema_version"] == 1
    assert summary["status"] == "succeeded"
    assert [j["name"] for j in summary["jobs"]] == ["a", "b"]
    assert {j["status"] for j in summary["jobs"]} == {"succeeded"}
    log_dir = Path(summary["jobs"][0]["log_dir"])
    assert (log_dir / "stdout.log").read_text() == "alpha\n"
    assert "a" in result.stderr  # the progress went to stderr, stdout held only JSON


def test_one_failure_exit_1_others_carry_on(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          bad: {run: FAKE exit 3}
          missing: {run: no-such-binary-xyz --flag}
          good: {run: FAKE echo fine}
        """,
    )
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 1
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["bad"]["status"] == "failed" and jobs["bad"]["exit_code"] == 3
    assert jobs["missing"]["status"] == "failed"
    assert "command not found: no-such-binary-xyz" in jobs["missing"]["error"]
    assert jobs["good"]["status"] == "succeeded"


def test_flow_errors_all_at_once_with_locations_exit_2(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        version: 1
        concurency: 2
        jobs:
          lint:
            run: ruff check .
            timout: 5m
          test:
            run: pytest
            timeout: soon
        """,
    )
    result = corral("run", str(flow), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert (
        f"{flow}:3:1: concurency: unknown key 'concurency'; did you mean 'concurrency'?" in lines[0]
    )
    assert (
        f"{flow}:7:5: jobs.lint.timout: unknown key 'timout'; did you mean 'timeout'?" in lines[1]
    )
    assert f"{flow}:10:14: jobs.test.timeout: invalid duration 'soon'" in lines[2]


def test_missing_flow_file_is_one_line(tmp_path: Path) -> None:
    result = corral("run", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "corral: error: nope.yaml: no such file (check the path)"


def test_json_and_toml_flows(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text(json.dumps({"jobs": {"a": {"run": ["true"]}}}))
    (tmp_path / "f.toml").write_text(
        '[jobs.a]\nrun = ["true"]\n[jobs.b]\nrun = "true"\ntimeout = "nah"\n'
    )
    assert corral("run", "f.json", "--no-store", cwd=tmp_path).returncode == 0
    bad = corral("validate", "f.toml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "f.toml:5:1: jobs.b.timeout: invalid duration 'nah'" in bad.stderr


def test_concurrency_cap_and_joblog(tmp_path: Path) -> None:
    spans_file = tmp_path / "spans"
    jobs = "\n".join(f"  j{i}: {{run: FAKE span {spans_file} 0.3}}" for i in range(6))
    flow = write_flow(tmp_path, f"concurrency: 2\njobs:\n{jobs}\n")
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    joblog = Path(summary["log_root"]) / "joblog.tsv"
    rows = [line.split("\t") for line in joblog.read_text().splitlines()]
    assert rows[0] == [
        "Seq",
        "Host",
        "Starttime",
        "JobRuntime",
        "Exitval",
        "Signal",
        "Command",
        "Job",
    ]
    assert sorted(r[7] for r in rows[1:]) == [f"j{i}" for i in range(6)]
    assert all(r[4] == "0" and float(r[3]) >= 0.3 for r in rows[1:])
    spans = [tuple(map(float, line.split())) for line in spans_file.read_text().splitlines()]
    assert len(spans) == 6
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 2


def test_jobs_option_overrides_concurrency(tmp_path: Path) -> None:
    jobs = "\n".join(f"  j{i}: {{run: FAKE slow 2 0.2}}" for i in range(4))
    flow = write_flow(tmp_path, f"concurrency: 4\njobs:\n{jobs}\n")
    started = time.monotonic()
    result = corral("run", str(flow), "-j", "1", "--no-store", "--quiet", cwd=tmp_path)
    assert result.returncode == 0
    assert time.monotonic() - started > 4 * 0.4 * 0.9


def test_env_merge_and_expansion_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    flow = write_flow(
        tmp_path,
        """
        defaults:
          env: {GREETING: hello}
        jobs:
          a:
            cwd: sub
            env: {TARGET: "${HOME_FOR_TEST}/x", EMPTY: "${NOPE:-fallback}"}
            run: FAKE env GREETING TARGET EMPTY PWD
        """,
    )
    result = corral(
        "run", str(flow), "--json", "--no-store", cwd=tmp_path, env={"HOME_FOR_TEST": "/h"}
    )
    assert result.returncode == 0, result.stderr
    log = Path(json.loads(result.stdout)["jobs"][0]["log_dir"]) / "stdout.log"
    assert log.read_text().splitlines() == [
        "GREETING=hello",
        "TARGET=/h/x",
        "EMPTY=fallback",
        f"PWD={tmp_path / 'sub'}",
    ]


def test_shell_true_and_string_splitting(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          split: {run: "printf '%s|' 'a b' c"}
          shell: {run: "echo one && echo two", shell: true}
        """,
    )
    result = corral("run", str(flow), "--output", "prefixed", "--no-store", cwd=tmp_path)
    assert result.returncode == 0
    assert "split | a b|c|" in result.stdout
    assert "shell | one" in result.stdout and "shell | two" in result.stdout


def test_output_modes(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        "jobs:\n  a: {run: FAKE echo hello}\n  longer-name: {run: FAKE echo 0123456789abcdef}\n",
    )
    prefixed = corral("run", str(flow), "--no-store", "--max-line-length", "12", cwd=tmp_path)
    assert "a           | hello" in prefixed.stdout
    assert "longer-name | 0123456789a…" in prefixed.stdout
    quiet = corral("run", str(flow), "--no-store", "-q", cwd=tmp_path)
    assert "hello" not in quiet.stdout and "succeeded" in quiet.stdout
    grouped = corral("run", str(flow), "--no-store", "--output", "grouped", cwd=tmp_path)
    lines = grouped.stdout.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("a           | ✓ succeeded"))
    assert lines[done - 1] == "a           | hello"  # the block comes out whole, before its status


def test_timeout_and_idle_in_summary(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        defaults: {kill_grace: 1}
        jobs:
          slow: {run: FAKE hang started, timeout: 0.5}
          idle: {run: FAKE hang started, idle_timeout: 0.5}
        """,
    )
    result = corral("run", str(flow), "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 1
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["slow"]["status"] == "timed_out" and jobs["slow"]["error_kind"] == "timeout"
    assert jobs["idle"]["status"] == "timed_out" and jobs["idle"]["error_kind"] == "idle"


def test_exec_single_command(tmp_path: Path) -> None:
    result = corral(
        "exec", "--no-store", "--json", "--", sys.executable, "-c", "print('hi')", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)["jobs"][0]
    assert job["status"] == "succeeded"
    failing = corral("exec", "--no-store", "-q", "--", "sh", "-c", "exit 4", cwd=tmp_path)
    assert failing.returncode == 1


def test_validate_and_schema(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: 'true'}\n")
    ok = corral("validate", str(flow), cwd=tmp_path)
    assert ok.returncode == 0 and "ok (1 jobs" in ok.stdout
    schema = json.loads(corral("schema", cwd=tmp_path).stdout)
    assert schema["title"] == "corral flow" and "jobs" in schema["properties"]
    assert "timeout" in schema["$defs"]["JobSpec"]["properties"]


def test_start_at_rejects_nonsense(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: 'true'}\n")
    result = corral("run", str(flow), "--start-at", "whenever", cwd=tmp_path)
    assert result.returncode == 2
    assert "--start-at: invalid start time 'whenever'" in result.stderr


def test_start_at_delay_counts_down(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: FAKE echo go}\n")
    started = time.monotonic()
    result = corral("run", str(flow), "--start-at", "1s", "--no-store", cwd=tmp_path)
    assert result.returncode == 0
    assert time.monotonic() - started >= 1.0
    assert "starting in" in result.stdout


def _spawn_run(flow: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral", "run", str(flow), "--no-store", "--json"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _wait_for(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_every_process(tmp_path: Path, sig: int, code: int) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          tree: {run: FAKE grandchildren 3}
          hang: {run: FAKE hang started}
          later: {run: FAKE echo never, needs: [tree]}
        """,
    )
    proc = _spawn_run(flow, tmp_path)
    runs = tmp_path / ".corral" / "runs"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(runs.glob("*/tree/stdout.log")):
        time.sleep(0.05)
    _wait_for(next(runs.glob("*/tree/stdout.log")), "spawned 3")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    jobs = {j["name"]: j for j in json.loads(out)["jobs"]}
    assert jobs["tree"]["status"] == "cancelled"
    assert jobs["later"]["status"] == "cancelled"
    # no process of the run survives: the autouse fixture checks our descendants too


def test_second_interrupt_kills_at_once(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "kill_grace: 30\njobs:\n  stubborn: {run: FAKE ignore-term}\n")
    proc = _spawn_run(flow, tmp_path)
    runs = tmp_path / ".corral" / "runs"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(runs.glob("*/stubborn/stdout.log")):
        time.sleep(0.05)
    _wait_for(next(runs.glob("*/stubborn/stdout.log")), "ready")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert time.monotonic() - started < 10  # far below the 30 s grace


def test_fail_fast_cancels_the_rest(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          boom: {run: FAKE exit 1}
          long: {run: FAKE hang started}
        """,
    )
    result = corral("run", str(flow), "--fail-fast", "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 1
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["boom"]["status"] == "failed"
    assert jobs["long"]["status"] == "cancelled"
    assert "fail-fast" in jobs["long"]["error"]


def test_help_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "corral", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "run",
        "exec",
        "validate",
        "schema",
        "plan",
        "tools",
        "runs",
        "usage",
        "resume",
    ):
        assert f"  {command} " in result.stdout
    assert FAKE_CLI  # keeps the helper import honest


def test_cleanup_job_runs_after_fail_fast(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        jobs:
          boom: {run: FAKE exit 1}
          long: {run: FAKE hang started}
          after: {run: FAKE echo never, needs: [long]}
          cleanup: {run: FAKE echo cleaning, needs: [long], if: always()}
        """,
    )
    result = corral("run", str(flow), "--fail-fast", "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 1
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["long"]["status"] == "cancelled"
    assert jobs["after"]["status"] == "cancelled"
    assert jobs["cleanup"]["status"] == "succeeded"


def test_more_bad_input_is_one_located_line(tmp_path: Path) -> None:
    (tmp_path / "tool.yaml").write_text("jobs:\n  a: {tool: claud, prompt: x}\n")
    (tmp_path / "none.yaml").write_text("jobs: {}\n")
    (tmp_path / "broken.yaml").write_text("jobs:\n  a: [1,2\n")
    result = corral("validate", "tool.yaml", "none.yaml", "broken.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tool.yaml:2:13: jobs.a.tool: unknown tool 'claud' (did you mean 'claude'?)",
        "none.yaml:1:7: jobs: no jobs: add at least one job under `jobs:` "
        "(a name, then `run:` or `prompt:`)",
        "broken.yaml:3:1: invalid YAML: did not find expected ',' or ']'",
    ]
    since = corral("runs", "--since", "yesterday", cwd=tmp_path)
    assert since.returncode == 2 and "--since: invalid duration 'yesterday'" in since.stderr
