"""Policy before execution: `run`, `rehearse`, `exec` and `resume` check the policies
first; a denied flow runs nothing and leaves only the refusal in the history; the hook
(`corral.app.policy.admit`, which `start_run` calls first) is what the server gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corral.app.check import check_flow
from corral.app.policy import admit
from corral.app.run import RunOptions, start_run
from corral.errors import PolicyDenied
from corral.events.types import RunRefused, RunStarted
from corral.models import RunStatus
from corral.store import schema as tables
from corral.store.sql import open_store
from helpers import corral, write_flow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "policies"

# `unsafe` would leave a file behind if it ran; the example policies deny its shell: true
DENIED = """
version: 1
name: guarded
defaults: {timeout: 1m}
jobs:
  safe:
    run: [touch, safe-ran]
  unsafe:
    run: touch unsafe-ran
    shell: true
"""
ALLOWED = """
version: 1
name: fine
defaults: {timeout: 1m}
jobs:
  safe:
    run: [touch, safe-ran]
"""


def history(folder: Path) -> dict[str, object]:
    """Everything the history at folder/.corral holds, counted by table."""
    store = open_store(None, folder / ".corral" / "corral.db")
    try:
        with store.engine.connect() as conn:
            counts = {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar()
                for table in (tables.runs, tables.jobs, tables.attempts, tables.job_models)
            }
        runs = store.list_runs()
        events = [stored.event for stored in store.events(runs[0].id)] if runs else []
    finally:
        store.close()
    return {"counts": counts, "runs": runs, "events": events}


def assert_only_a_refusal(folder: Path, run_id: str) -> RunRefused:
    found = history(folder)
    assert found["counts"] == {"runs": 1, "jobs": 0, "attempts": 0, "job_models": 0}
    (run,) = found["runs"]  # type: ignore[misc]
    assert (run.id, run.status) == (run_id, RunStatus.REFUSED)
    started, refused = found["events"]  # type: ignore[misc]
    assert isinstance(started, RunStarted) and started.jobs == () and started.log_root == ""
    assert isinstance(refused, RunRefused)
    assert not (folder / ".corral" / "runs").exists()  # no log folder: nothing ran
    assert not (folder / "safe-ran").exists() and not (folder / "unsafe-ran").exists()
    return refused


def refusal_id(stderr: str) -> str:
    marker = "refusal recorded as run "
    assert marker in stderr, stderr
    return stderr.split(marker, 1)[1].split(")", maxsplit=1)[0]


def test_run_refused_by_policy_runs_nothing_and_records_the_refusal(tmp_path: Path) -> None:
    write_flow(tmp_path, DENIED)
    result = corral("run", "flow.yaml", "--policy", str(EXAMPLES), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "corral: error: flow.yaml:8:3: job 'unsafe': `shell: true` is not allowed: give `run` "
        f"as a list of arguments instead (denied by corral.shell.deny_shell, "
        f"{EXAMPLES / 'shell.rego'}:7)"
    )
    assert lines[1].startswith("corral: error: flow.yaml: 1 denial from 4 policy files; "
                               "nothing was run (refusal recorded as run ")  # fmt: skip
    run_id = refusal_id(result.stderr)
    refused = assert_only_a_refusal(tmp_path, run_id)
    assert refused.status is RunStatus.REFUSED
    assert [(d["rule"], d["job"], d["location"]) for d in refused.denials] == [
        ("corral.shell.deny_shell", "unsafe", "flow.yaml:8:3")
    ]
    assert refused.error is not None and refused.error.startswith("denied by policy: flow.yaml")

    # the history commands show it, and resume will not run it
    listed = corral("runs", "--status", "refused", cwd=tmp_path)
    assert run_id in listed.stdout and "refused" in listed.stdout
    shown = corral("show", run_id, cwd=tmp_path)
    assert shown.returncode == 0 and "refused: denied by policy" in shown.stdout
    resumed = corral("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 2
    assert "was refused by policy: nothing ran, so nothing resumes" in resumed.stderr
    assert_only_a_refusal(tmp_path, run_id)


def test_rehearse_honours_the_flows_own_policy(tmp_path: Path) -> None:
    (tmp_path / "policies").symlink_to(EXAMPLES)
    write_flow(tmp_path, "policy: policies/\n" + DENIED)
    result = corral("rehearse", "flow.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "deny_shell" in result.stderr
    assert_only_a_refusal(tmp_path, refusal_id(result.stderr))
    # an allowed flow rehearses as usual (commands need no agent CLI)
    write_flow(tmp_path, "policy: policies/\n" + ALLOWED, "fine.yaml")
    allowed = corral("rehearse", "fine.yaml", "--no-store", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "safe-ran").exists()


def test_environment_policy_applies_to_exec_and_json_says_refused(tmp_path: Path) -> None:
    env = {"CORRAL_POLICY": str(EXAMPLES)}
    result = corral("exec", "--json", "--", "sh", "-c", "touch ran", cwd=tmp_path, env=env)
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["status"] == "refused" and document["allowed"] is False
    assert document["run_id"] == refusal_id(result.stderr)
    assert [d["rule"] for d in document["denials"]] == ["corral.timeout.deny_missing_timeout"]
    assert not (tmp_path / "ran").exists()


def test_no_store_means_no_trace_at_all(tmp_path: Path) -> None:
    write_flow(tmp_path, DENIED)
    result = corral("run", "flow.yaml", "--no-store", "--policy", str(EXAMPLES), cwd=tmp_path)
    assert result.returncode == 2
    assert "nothing was run" in result.stderr and "recorded" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.yaml"]


def test_a_broken_policy_stops_the_run_too(tmp_path: Path) -> None:
    write_flow(tmp_path, ALLOWED)
    (tmp_path / "bad.rego").write_text("package x\nimport rego.v1\ndeny contains if {\n")
    result = corral("run", "flow.yaml", "--policy", "bad.rego", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("corral: error: bad.rego:")
    assert not (tmp_path / "safe-ran").exists() and not (tmp_path / ".corral").exists()


def test_allowed_run_shows_warnings_and_runs(tmp_path: Path) -> None:
    write_flow(tmp_path, ALLOWED.replace("timeout: 1m", "timeout: 2h"))
    result = corral("run", "flow.yaml", "--policy", str(EXAMPLES), "--no-store", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "corral: warning: flow.yaml:6:3: job 'safe': timeout of 7200" in result.stderr
    assert (tmp_path / "safe-ran").exists()


@pytest.mark.parametrize("mode", ["run", "rehearse"])
def test_the_hook_the_server_calls(tmp_path: Path, mode: str) -> None:
    """What a server does with a submitted flow, for a run and for a rehearsal: admit it
    with its configured policies and history before starting anything."""
    body = DENIED.replace("name: guarded", f"name: submitted-{mode}")
    loaded, plan = check_flow(write_flow(tmp_path, body))
    options = RunOptions(policies=(str(EXAMPLES),), args=("serve", mode))
    warnings: list[str] = []
    with pytest.raises(PolicyDenied) as caught:
        admit(loaded, plan, options, environ={}, warn=warnings.append)
    denied = caught.value
    assert denied.run_id is not None and warnings == []
    assert denied.document["status"] == "refused" and denied.document["run_id"] == denied.run_id
    assert_only_a_refusal(tmp_path, denied.run_id)
    allowed = check_flow(write_flow(tmp_path, ALLOWED, "fine.yaml"))
    admitted = admit(*allowed, options, environ={})
    assert admitted.verdict is not None and admitted.verdict.allowed
    assert admit(*allowed, RunOptions(), environ={}).verdict is None  # no policy applies


async def test_start_run_admits_first(tmp_path: Path) -> None:
    """`start_run` (what the CLI and a server call) checks the policies itself: a denied
    flow raises before the executor, the log folder or the history writer exist."""
    loaded, plan = check_flow(write_flow(tmp_path, DENIED))
    options = RunOptions(policies=(str(EXAMPLES),))
    with pytest.raises(PolicyDenied) as caught:
        await start_run(loaded, plan, options)
    assert caught.value.run_id is not None
    assert_only_a_refusal(tmp_path, caught.value.run_id)


def test_an_unwritable_history_does_not_turn_a_refusal_into_a_run(tmp_path: Path) -> None:
    loaded, plan = check_flow(write_flow(tmp_path, DENIED))
    (tmp_path / "a-file").write_text("")  # a history under a file cannot be created
    options = RunOptions(policies=(str(EXAMPLES),), store=f"sqlite:///{tmp_path}/a-file/h.db")
    warnings: list[str] = []
    with pytest.raises(PolicyDenied) as caught:
        admit(loaded, plan, options, environ={}, warn=warnings.append)
    assert caught.value.run_id is None
    (warning,) = warnings
    assert warning.startswith("refusal not recorded: ") and "a-file/h.db" in warning


def test_resume_is_checked_against_the_policies_too(tmp_path: Path) -> None:
    write_flow(tmp_path, ALLOWED.replace("[touch, safe-ran]", "[sh, -c, 'touch tried; false']"))
    first = corral("run", "flow.yaml", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    run_id = corral("runs", "--json", cwd=tmp_path)
    failed = json.loads(run_id.stdout)["runs"][0]["id"]
    (tmp_path / "tried").unlink()
    (tmp_path / "closed.rego").write_text(
        'package closed\nimport rego.v1\ndeny contains "closed for maintenance" if true\n'
    )
    resumed = corral("resume", failed, "--policy", "closed.rego", cwd=tmp_path)
    assert resumed.returncode == 2
    assert "closed for maintenance (denied by closed.deny" in resumed.stderr
    assert "refusal recorded as run " in resumed.stderr
    assert not (tmp_path / "tried").exists()  # the failed job did not run again
