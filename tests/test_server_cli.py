"""The CLI as a client of a real `corral serve`: login, run --server (follow, Ctrl-C
detaches, --cancel-on-interrupt), runs/show/logs/usage/resume --server."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from tests.helpers import corral
from tests.serverkit import LiveServer, sleeping_flow, start_server, wait_run

pytest.importorskip("fastapi")

FLOW = """version: 1
jobs:
  hello:
    run: sh -c "echo hello from the server"
  after:
    needs: [hello]
    run: sh -c "echo after; exit 3"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("served"))
    yield live
    live.stop()


@pytest.fixture
def client_env(tmp_path: Path, server: LiveServer) -> dict[str, str]:
    """A client home with the token stored by `corral login`."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "CORRAL_TOKEN": ""}
    login = corral("login", server.url, "--token", server.token, cwd=tmp_path, env=env)
    assert login.returncode == 0, login.stderr
    stored = tmp_path / "config" / "corral" / "credentials.json"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    return env


def test_login_refuses_a_wrong_token(server: LiveServer, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "CORRAL_TOKEN": ""}
    result = corral("login", server.url, "--token", "wrong", cwd=tmp_path, env=env)
    assert result.returncode != 0 and "refused the token" in result.stderr
    assert not (tmp_path / "config" / "corral" / "credentials.json").exists()
    no_token = corral("runs", "--server", server.url, cwd=tmp_path, env=env)
    assert no_token.returncode == 2 and "corral login" in no_token.stderr


def test_run_on_the_server_then_read_it_back(
    server: LiveServer, tmp_path: Path, client_env: dict[str, str]
) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    result = corral(
        "run", "flow.yaml", "--server", server.url, "--json", cwd=tmp_path, env=client_env
    )
    assert result.returncode == 1, result.stderr  # `after` exits 3: the run failed
    summary = json.loads(result.stdout)
    run_id = summary["run_id"]
    statuses = {j["name"]: j["status"] for j in summary["jobs"]}
    assert statuses == {"hello": "succeeded", "after": "failed"}
    assert not (tmp_path / ".corral").exists()  # nothing ran here
    runs = corral("runs", "--server", server.url, "--json", cwd=tmp_path, env=client_env)
    assert run_id in [r["id"] for r in json.loads(runs.stdout)["runs"]]
    show = corral("show", run_id, "--server", server.url, "--json", cwd=tmp_path, env=client_env)
    local = corral("show", run_id, "--json", cwd=server.directory)
    assert _untimed(json.loads(show.stdout)) == _untimed(json.loads(local.stdout))
    table = corral("show", run_id, "--server", server.url, cwd=tmp_path, env=client_env)
    assert table.returncode == 0 and "hello" in table.stdout
    logs = corral("logs", run_id, "hello", "--server", server.url, cwd=tmp_path, env=client_env)
    assert logs.stdout == "hello from the server\n"
    usage = corral(
        "usage", "--by", "flow", "--server", server.url, "--json", cwd=tmp_path, env=client_env
    )
    assert json.loads(usage.stdout)["by"] == "flow"
    resumed = corral("resume", run_id, "--server", server.url, cwd=tmp_path, env=client_env)
    assert resumed.returncode == 1 and "resuming" in resumed.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\njobs:\n  a: {needs: [ghost], run: x}\n")
    refused = corral("run", "bad.yaml", "--server", server.url, cwd=tmp_path, env=client_env)
    local_refusal = corral("run", "bad.yaml", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr == local_refusal.stderr


def _untimed(value: object) -> object:
    """A document without its times (the API sends them as ISO text, to the microsecond)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not k.endswith(("_at", "duration_s"))}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _start_following(
    server: LiveServer, tmp_path: Path, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "slow.yaml").write_text(sleeping_flow(2, 30, concurrency=2))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "run",
            "slow.yaml",
            "--server",
            server.url,
            "--output",
            "prefixed",
            *extra,
        ],
        cwd=tmp_path,
        env={**os.environ, **env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with server.client() as http:
        deadline = time.monotonic() + 30
        while True:
            running = [r for r in http.get("/runs").json()["runs"] if r["status"] == "running"]
            jobs = http.get(f"/runs/{running[0]['id']}/jobs").json()["jobs"] if running else []
            if any(j["status"] == "running" for j in jobs):
                return proc, running[0]["id"]
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_ctrl_c_detaches_and_the_run_goes_on(
    server: LiveServer, tmp_path: Path, client_env: dict[str, str]
) -> None:
    proc, run_id = _start_following(server, tmp_path, client_env)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "detached" in err
    with server.client() as http:
        assert http.get(f"/runs/{run_id}").json()["run"]["status"] == "running"
        assert http.post(f"/runs/{run_id}/cancel").status_code == 202
    assert wait_run(server, run_id)["run"]["status"] == "cancelled"


def test_cancel_on_interrupt_cancels_the_run(
    server: LiveServer, tmp_path: Path, client_env: dict[str, str]
) -> None:
    proc, run_id = _start_following(server, tmp_path, client_env, "--cancel-on-interrupt")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert wait_run(server, run_id)["run"]["status"] == "cancelled"


def test_without_the_extra_the_commands_name_the_install(tmp_path: Path) -> None:
    code = (
        "import sys, importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'fastapi' else real(n, *a)\n"
        "from corral.cli.main import main\n"
        "sys.argv = ['corral', 'serve']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "pip install 'corral[server]'" in result.stderr


SELECTABLE = """version: 1
jobs:
  build: {run: "echo built"}
  test: {needs: [build], run: "echo tested"}
  lint: {run: "echo linted"}
  deploy: {needs: [test], run: "echo deployed"}
"""


def test_only_from_and_the_run_options_are_planned_on_the_server_as_the_cli_plans_them(
    server: LiveServer, tmp_path: Path, client_env: dict[str, str]
) -> None:
    (tmp_path / "flow.yaml").write_text(SELECTABLE)

    def jobs_of(*options: str) -> dict[str, str]:
        result = corral(
            "run", "flow.yaml", "--server", server.url, "--json", *options,
            cwd=tmp_path, env=client_env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return {j["name"]: j["status"] for j in json.loads(result.stdout)["jobs"]}

    # the same selection as a local run: --only takes what a job needs, --from what follows
    assert set(jobs_of("--only", "test")) == {"build", "test"}
    assert set(jobs_of("--from", "test", "-j", "1", "--fail-fast")) == {"test", "deploy"}
    both = jobs_of("--only", "deploy", "--from", "test")
    assert set(both) == {"test", "deploy"} and set(both.values()) == {"succeeded"}
    # a bad selection: the CLI's own message and exit code, before anything is sent
    bad = corral(
        "run", "flow.yaml", "--server", server.url, "--only", "ghost", cwd=tmp_path, env=client_env
    )
    assert bad.returncode == 2 and "ghost" in bad.stderr
    # what names this machine's files is refused, saying why
    (tmp_path / "p.rego").write_text("package corral\n")
    for option in (["--store", "sqlite:///x.db"], ["--no-store"], ["--policy", "p.rego"]):
        refused = corral(
            "run", "flow.yaml", "--server", server.url, *option, cwd=tmp_path, env=client_env
        )
        assert refused.returncode == 2, refused.stderr
        assert f"{option[0]} does not go with --server" in refused.stderr


def test_the_submit_api_takes_the_selection_and_the_options(server: LiveServer) -> None:
    with server.client() as http:
        accepted = http.post(
            "/runs",
            json={"flow": SELECTABLE, "only": ["deploy"], "from": ["test"], "jobs": 1},
        )
        assert accepted.status_code == 201, accepted.text
        run_id = accepted.json()["run_id"]
        unknown = http.post("/runs", json={"flow": SELECTABLE, "only": ["ghost"]})
        assert unknown.status_code == 400 and "ghost" in unknown.json()["error"]["message"]
        executor = http.post("/runs", json={"flow": SELECTABLE, "executor": "nowhere"})
        assert executor.status_code == 400 and "nowhere" in executor.json()["error"]["message"]
        late = time.time() + 1.5
        delayed = http.post("/runs", json={"flow": SELECTABLE, "only": ["lint"], "start_at": late})
        assert delayed.status_code == 201
        delayed_id = delayed.json()["run_id"]
    document = wait_run(server, run_id)
    assert [j["name"] for j in document["jobs"]] == ["test", "deploy"]
    assert document["run"]["status"] == "succeeded"
    waited = wait_run(server, delayed_id)
    lint = waited["jobs"][0]
    assert lint["name"] == "lint" and lint["status"] == "succeeded"
    started = lint["attempts"][0]["started_at"]
    assert datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() >= late - 0.01


def test_runs_on_an_empty_server_names_the_server(tmp_path: Path) -> None:
    (tmp_path / "served").mkdir()
    empty = start_server(tmp_path / "served")
    try:
        env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "CORRAL_TOKEN": empty.token}
        result = corral("runs", "--server", empty.url, cwd=tmp_path, env=env)
        matching = corral("runs", "--server", empty.url, "--flow", "x", cwd=tmp_path, env=env)
    finally:
        empty.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"No runs recorded on the server at {empty.url}.\n"
    assert matching.stdout == "No runs match.\n"
