"""The server's REST API against a real `corral serve` (uvicorn on 127.0.0.1, a free port):
auth, runs, jobs, attempts, logs, usage, tools, submit/validate/cancel/resume, errors."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serverkit import (
    LiveServer,
    sleeping_flow,
    start_server,
    submit,
    wait_run,
)

pytest.importorskip("fastapi")

FLOW = """version: 1
jobs:
  first:
    run: sh -c "echo one; echo two; echo err >&2"
  second:
    needs: [first]
    run: echo second
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("served"))
    yield live
    assert live.stop() == 0


@pytest.fixture(scope="module")
def finished(server: LiveServer) -> str:
    run_id = submit(server, FLOW)
    document = wait_run(server, run_id)
    assert document["run"]["status"] == "succeeded"
    return run_id


def test_every_api_call_needs_the_token_and_a_refusal_leaks_nothing(server: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(server.url + "/api/v1/runs", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert list(body) == ["error"] and set(body["error"]) == {"code", "message"}
        assert body["error"]["code"] == "unauthorized"
        assert server.token not in response.text and str(server.directory) not in response.text
    response = httpx.post(server.url + "/api/v1/runs", json={"flow": FLOW})
    assert response.status_code == 401
    # no token needed for the probes
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"store", "executor", "adoption", "events", "accepting"}
    assert all(checks.values())


def test_runs_show_jobs_attempts_carry_owner_and_iso_times(
    server: LiveServer, finished: str
) -> None:
    with server.client() as http:
        runs = http.get("/runs").json()
        row = next(r for r in runs["runs"] if r["id"] == finished)
        assert row["owner"] and row["jobs_total"] == 2 and row["jobs_done"] == 2
        assert row["started_at"].endswith("Z")
        document = http.get(f"/runs/{finished[:12]}").json()  # a unique prefix works
        assert document["run"]["id"] == finished and document["owner"] == row["owner"]
        nodes = {n["id"]: n for n in document["graph"]["nodes"]}
        assert nodes["second"]["needs"] == ["first"] and nodes["second"]["waiting_for"] == []
        jobs = http.get(f"/runs/{finished}/jobs").json()["jobs"]
        assert [j["name"] for j in jobs] == ["first", "second"]
        assert all(j["status"] == "succeeded" and j["attempt"] == 1 for j in jobs)
        attempts = http.get(f"/runs/{finished}/jobs/first/attempts").json()["attempts"]
        assert len(attempts) == 1 and attempts[0]["exit_code"] == 0
        assert http.get("/runs", params={"status": "failed"}).json()["runs"] == []


def test_logs_give_line_ranges_and_follow(server: LiveServer, finished: str) -> None:
    with server.client() as http:
        page = http.get(f"/runs/{finished}/jobs/first/logs", params={"stream": "stdout"}).json()
        assert [line["text"] for line in page["lines"]] == ["one", "two"]
        assert page["complete"] is True and page["next_offset"] == 2
        tail = http.get(
            f"/runs/{finished}/jobs/first/logs", params={"offset": 1, "stream": "stdout"}
        ).json()
        assert tail["lines"] == [{"n": 2, "stream": "stdout", "text": "two"}]
        both = http.get(f"/runs/{finished}/jobs/first/logs", params={"stream": "both"}).json()
        assert [(x["stream"], x["text"]) for x in both["lines"]][-1] == ("stderr", "err")
        with http.stream(
            "GET", f"/runs/{finished}/jobs/first/logs", params={"follow": "true"}
        ) as response:
            followed = [json.loads(x)["text"] for x in response.iter_lines() if x]
        assert followed == ["one", "two", "err"]  # both streams by default
        missing = http.get(f"/runs/{finished}/jobs/nope/logs")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_follow_streams_lines_while_the_job_runs(server: LiveServer) -> None:
    flow = (
        "version: 1\njobs:\n  slow:\n"
        '    run: sh -c "for i in 1 2 3; do echo line $i; sleep 0.3; done"\n'
    )
    run_id = submit(server, flow)
    with server.client() as http:
        deadline = time.monotonic() + 20
        while http.get(f"/runs/{run_id}/jobs").json()["jobs"][0]["status"] == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with http.stream(
            "GET", f"/runs/{run_id}/jobs/slow/logs", params={"follow": "true", "offset": 1}
        ) as response:
            followed = [json.loads(x) for x in response.iter_lines() if x]
    assert [(x["n"], x["text"]) for x in followed] == [(2, "line 2"), (3, "line 3")]
    wait_run(server, run_id)


def test_usage_and_tools(server: LiveServer, finished: str) -> None:
    with server.client() as http:
        usage = http.get("/usage", params={"by": "flow"}).json()
        assert usage["by"] == "flow" and isinstance(usage["rows"], list)
        assert http.get("/usage.csv").headers["content-type"].startswith("text/csv")
        bad = http.get("/usage", params={"by": "colour"})
        assert bad.status_code == 400 and "model" in bad.json()["error"]["message"]
        tools = http.get("/tools").json()["tools"]
        generic = next(t for t in tools if t["name"] == "generic")
        assert generic["installed"] is True
        assert {"name", "installed", "version", "verified"} <= set(generic)


def test_a_malformed_flow_gets_the_cli_messages_and_the_server_keeps_serving(
    server: LiveServer, tmp_path: Path
) -> None:
    from tests.helpers import corral

    broken = (
        "version: 1\njobs:\n  a:\n    run: echo\n    needs: [ghost]\n  b: {timeout: 5x, run: x}\n"
    )
    (tmp_path / "flow.yaml").write_text(broken)
    cli = corral("validate", "flow.yaml", cwd=tmp_path)
    with server.client() as http:
        for path in ("/runs", "/validate"):
            response = http.post(path, json={"flow": broken, "filename": "flow.yaml"})
            assert response.status_code == 422
            error = response.json()["error"]
            assert error["code"] == "invalid_flow"
            said = [e["message"] for e in error["errors"]]
            assert said and all(line in cli.stderr for line in said)
            assert all(e["line"] for e in error["errors"])
        for body in ("not json", b"\xff\xfe"):
            response = http.post(
                "/runs", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
        response = http.post("/runs", json={"filename": "flow.yaml"})
        assert response.status_code == 400 and "flow" in response.json()["error"]["message"]
        yaml_garbage = http.post("/validate", json={"flow": "jobs: [: :"})
        assert yaml_garbage.status_code == 422
        assert http.post("/validate", json={"flow": FLOW}).json() == {"ok": True, "jobs": 2}
        assert http.get("/runs").status_code == 200


def test_unknown_ids_are_404_with_one_error_shape(server: LiveServer, finished: str) -> None:
    with server.client() as http:
        for path in (
            "/runs/nosuchrun",
            "/runs/nosuchrun/jobs",
            f"/runs/{finished}/jobs/ghost/attempts",
            f"/runs/{finished}/jobs/first/logs?attempt=9",
        ):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
        assert http.post("/runs/nosuchrun/cancel").status_code == 404
        assert http.post("/runs/nosuchrun/resume").status_code == 404
        assert http.get("/nothing-here").status_code == 404


def test_huge_bodies_are_413(server: LiveServer) -> None:
    huge = "x" * (1024 * 1024 + 10)
    with server.client() as http:
        response = http.post("/runs", json={"flow": huge})
        assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"flow": "'
            for _ in range(300):
                yield b"y" * 4096
            yield b'"}'

        streamed = http.post(
            "/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert http.get("/runs").status_code == 200


def test_cancel_and_resume(server: LiveServer) -> None:
    run_id = submit(server, sleeping_flow(3, 30, concurrency=1))
    with server.client() as http:
        deadline = time.monotonic() + 20
        while not any(
            j["status"] == "running" for j in http.get(f"/runs/{run_id}/jobs").json()["jobs"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response = http.post(f"/runs/{run_id}/cancel")
        assert response.status_code == 202
        assert wait_run(server, run_id)["run"]["status"] == "cancelled"
        again = http.post(f"/runs/{run_id}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        # a resume takes `corral run`'s options too; a bad one is refused before it starts
        bad = http.post(f"/runs/{run_id}/resume", json={"jobs": 1, "executor": "nowhere"})
        assert bad.status_code == 400 and "nowhere" in bad.json()["error"]["message"]
    quick = FLOW
    done = submit(server, quick)
    wait_run(server, done)
    with server.client() as http:
        nothing = http.post(f"/runs/{done}/resume")
        assert (
            nothing.status_code == 409 and "already succeeded" in nothing.json()["error"]["message"]
        )


def test_browser_session_cookie_and_csrf(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url + "/api/v1") as browser:
        assert browser.post("/session", json={"token": "wrong"}).status_code == 401
        response = browser.post("/session", json={"token": server.token})
        assert response.status_code == 204
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/runs").status_code == 200
        refused = browser.post("/validate", json={"flow": FLOW})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        allowed = browser.post("/validate", json={"flow": FLOW}, headers={"X-Corral-CSRF": "1"})
        assert allowed.status_code == 200
        assert browser.delete("/session", headers={"X-Corral-CSRF": "1"}).status_code == 204


def test_openapi_is_published_under_the_version(server: LiveServer) -> None:
    spec = httpx.get(server.url + "/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/runs" in spec["paths"] and "/api/v1/runs/{run}/cancel" in spec["paths"]


def test_metrics(server: LiveServer, finished: str) -> None:
    text = httpx.get(server.url + "/metrics").text
    assert 'corral_runs{status="succeeded"}' in text
    # jobs by every status, live ones too
    assert 'corral_jobs{status="running"}' in text and 'corral_jobs{status="waiting"}' in text
    assert 'corral_jobs{status="succeeded"}' in text
    assert "corral_events_dropped_total 0" in text and "corral_live_clients" in text
    # the server's own runs reach the hub straight from their workers, not by polling
    fed = next(line for line in text.splitlines() if line.startswith("corral_events_fed_total"))
    assert int(fed.split()[1]) > 0


def test_first_start_makes_a_token_printed_once_and_stored_as_a_0600_digest(
    tmp_path: Path,
) -> None:
    first = start_server(tmp_path, token=None)
    try:
        text = "".join(first.log)
        token = text.split("kept in")[1].split("\n\n")[1].strip()
        stored = tmp_path / ".corral" / "server-token.json"
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
        assert token not in stored.read_text()
        ok = httpx.get(first.url + "/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        assert first.stop() == 0
    second = start_server(tmp_path, token=None)
    try:
        assert token not in "".join(second.log)
        ok = httpx.get(second.url + "/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        second.stop()


def test_a_public_host_without_tls_gets_a_loud_warning(tmp_path: Path) -> None:
    from tests.helpers import corral

    result = corral("serve", "--port", "0", "--tls-cert", "nope", cwd=tmp_path)
    assert result.returncode == 2  # a bad option stops it before it listens
    # a documentation address (RFC 5737) no machine has: warned, then it cannot bind
    args = ("serve", "--host", "192.0.2.1", "--port", "0", "--token", "t" * 20)
    result = corral(*args, cwd=tmp_path)
    assert "WITHOUT TLS" in result.stderr and result.returncode != 0
    from corral.server.settings import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


BUDGETED = """version: 1
budget: {usd: 5, tokens: 100000, on_exceed: warn}
jobs:
  agent: {tool: claude, prompt: "say hello", budget: {usd: 1}}
  shell: {run: ['printf', 'one\\n\\033]0;title\\007two \\033[31mred\\n']}
  idle: {run: ['true'], budget: {tokens: 10, on_exceed: kill}}
"""


def test_budgets_and_last_lines_are_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a `claude` that replays a recorded Claude Code stream (tests/data/agents/PROVENANCE.md)
    recorded = Path(__file__).parent / "data" / "agents" / "claude_text.out"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text(f"#!/bin/sh\ncat '{recorded}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    served = tmp_path / "served"
    served.mkdir()
    live = start_server(served)
    try:
        run_id = submit(live, BUDGETED)
        document = wait_run(live, run_id)
        with live.client() as http:
            jobs = {j["name"]: j for j in http.get(f"/runs/{run_id}/jobs").json()["jobs"]}
    finally:
        assert live.stop() == 0
    assert document["run"]["status"] == "succeeded", document
    spent_usd = document["jobs"][0]["attempts"][0]["cost"]["usd"]
    assert document["budgets"] == {
        "run": [
            {"unit": "usd", "limit": "5", "spent": spent_usd, "action": "warn"},
            # budget tokens: fresh input 12 + cache writes 18432 + output 11
            {"unit": "tokens", "limit": 100000, "spent": 18455, "action": "warn"},
        ],
        "jobs": {
            "agent": [{"unit": "usd", "limit": "1", "spent": spent_usd, "action": "stop"}],
            "idle": [{"unit": "tokens", "limit": 10, "spent": 0, "action": "kill"}],
        },
    }
    assert spent_usd.startswith("0.0924")
    # the agent's narrative; a command's last printed line, its escape sequences defused
    assert jobs["agent"]["last_line"] == "Hello from the mock Anthropic API!"
    assert jobs["shell"]["last_line"] == "\\x1b]0;title\\x07two \\x1b[31mred"
    assert jobs["idle"]["last_line"] == ""


def test_a_run_document_plans_its_flow_once_however_often_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dashboard polls GET /runs/{id}: the recorded flow is planned once, not per read."""
    import corral.plan
    from corral.server import documents

    planned: list[str] = []
    real = corral.plan.build_plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        planned.append("x")
        return real(*args, **kwargs)

    monkeypatch.setattr(corral.plan, "build_plan", counting)
    documents._plan.cache_clear()
    first = documents._plan(BUDGETED, "flow.yaml")
    again = [documents._plan(BUDGETED, "flow.yaml") for _ in range(5)]
    assert first is not None and all(plan is first for plan in again)
    assert len(planned) == 1
    other = documents._plan(BUDGETED.replace("usd: 5", "usd: 6"), "flow.yaml")
    assert other is not None and other is not first and len(planned) == 2
    assert documents._plan("jobs: [", "flow.yaml") is None  # a text that no longer plans
    documents._plan.cache_clear()
