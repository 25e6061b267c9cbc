"""`corral logs` (issue 13, item 10): both streams by default (stderr marked), an agent's
log as the narrative seen live (`--format text`) or its parsed events (`--format json`)
besides the raw stream; `--follow` without a job follows every job; the server's logs
route and `corral logs --server` do the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import corral

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"
ENV = {
    "FAKE_AGENT_DIR": str(DATA),
    "CORRAL_CLAUDE_BIN": str(FAKE_AGENT),
    "CORRAL_GEMINI_BIN": str(FAKE_AGENT),
}
FLOW = """\
jobs:
  review: {tool: claude, prompt: "review", env: {FAKE_AGENT_SCRIPT: claude_tool}}
  ask: {tool: gemini, prompt: "hi", env: {FAKE_AGENT_SCRIPT: gemini_500}}
  build: {run: "sh -c 'echo building; echo no flag >&2; exit 1'"}
"""
# what `--output prefixed` showed of `review` while it ran, and of `ask`'s failure
REVIEW_TEXT = """\
I'll run a command.
⚙ Bash: echo hello-from-mock-tool
The command printed: hello-from-mock-tool
"""
ASK_ERROR = (
    'error (api): [API Error: {"error":{"code":500,"message":"mock: An internal error has '
    'occurred.","status":"INTERNAL"}}]'
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A run of FLOW: (folder, run id, what `--output prefixed` printed)."""
    folder = tmp_path_factory.mktemp("logs")
    (folder / "flow.yaml").write_text(FLOW)
    ran = corral("run", "flow.yaml", "--output", "prefixed", "-j", "1", cwd=folder, env=ENV)
    assert ran.returncode == 1, ran.stderr
    run_id = json.loads(corral("runs", "--json", cwd=folder).stdout)["runs"][0]["id"]
    return folder, run_id, ran.stdout


def _logs(folder: Path, *args: str) -> str:
    done = corral("logs", *args, cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _said(live: str, job: str) -> list[str]:
    """What the prefixed view printed for `job`, less corral's own start and end lines."""
    found = [line.split(" | ", 1) for line in live.splitlines() if " | " in line]
    return [said for name, said in found if name.strip() == job and said[0] not in "▶✓✗"]


def test_text_is_the_narrative_seen_live(finished: tuple[Path, str, str]) -> None:
    folder, run_id, live = finished
    assert _logs(folder, run_id, "review", "--format", "text") == REVIEW_TEXT
    # line for line what the prefixed view printed for the job
    assert REVIEW_TEXT.splitlines() == _said(live, "review")
    assert _logs(folder, run_id, "ask", "--format", "text") == ASK_ERROR + "\n"
    assert _said(live, "ask") == [ASK_ERROR]
    # a plain command's narrative is its lines, both streams, stderr marked
    assert _logs(folder, run_id, "build", "--format", "text") == "building\nstderr| no flag\n"
    every = _logs(folder, run_id, "--format", "text")
    assert every == (
        f"==> review <==\n{REVIEW_TEXT}==> ask <==\n{ASK_ERROR}\n"
        "==> build <==\nbuilding\nstderr| no flag\n"
    )


def test_raw_stays_the_default_and_shows_both_streams(finished: tuple[Path, str, str]) -> None:
    folder, run_id, _ = finished
    log_root = Path(
        json.loads(corral("show", run_id, "--json", cwd=folder).stdout)["run"]["log_root"]
    )
    raw = (log_root / "review" / "stdout.log").read_text()
    assert raw.startswith('{"type":"system"')
    assert _logs(folder, run_id, "review") == raw
    assert _logs(folder, run_id, "review", "--format", "raw") == raw
    assert _logs(folder, run_id, "build") == "building\nstderr| no flag\n"
    assert _logs(folder, run_id, "build", "--stderr") == "no flag\n"


def test_json_is_the_parsed_events(finished: tuple[Path, str, str]) -> None:
    folder, run_id, _ = finished
    events = [
        json.loads(x) for x in _logs(folder, run_id, "review", "--format", "json").splitlines()
    ]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "agent.session" and "agent.tool_call" in kinds and "agent.result" in kinds
    assert all(e["job"] == "review" and e["attempt"] == 1 for e in events)
    plain = [json.loads(x) for x in _logs(folder, run_id, "build", "--format", "json").splitlines()]
    assert [(e["kind"], e["stream"], e["text"], e["offset"]) for e in plain] == [
        ("job.output", "stdout", "building", 0),
        ("job.output", "stderr", "no flag", 0),
    ]


FOLLOWED = """\
jobs:
  one: {run: "sh -c 'echo one-start; while [ ! -f go ]; do sleep 0.05; done; echo one-end'"}
  two: {run: "sh -c 'echo two-start >&2; while [ ! -f go ]; do sleep 0.05; done; echo two-end'"}
"""


@pytest.mark.parametrize("fmt", ["raw", "text"])
def test_follow_without_a_job_follows_every_job(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "flow.yaml").write_text(FOLLOWED)
    env = {**os.environ, "NO_COLOR": "1"}
    run = subprocess.Popen([sys.executable, "-m", "corral", "run", "flow.yaml", "-q"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
    follow = None
    try:
        deadline = time.monotonic() + 30
        logs = tmp_path / ".corral" / "runs"
        while not list(logs.glob("*/two/stderr.log")) or not list(logs.glob("*/one/stdout.log")):
            assert time.monotonic() < deadline, "the run never started its jobs"
            time.sleep(0.05)
        run_id = next(logs.iterdir()).name
        follow = subprocess.Popen(
            [sys.executable, "-m", "corral", "logs", run_id, "--follow", "--format", fmt],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.0)  # the follow is under way while both jobs still run
        assert follow.poll() is None
        (tmp_path / "go").touch()
        out, err = follow.communicate(timeout=30)
        assert follow.returncode == 0, err
        assert run.wait(30) == 0
    finally:
        for proc in (run, follow):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    sections: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("==> "):
            current = line[4:-4]
            continue
        sections.setdefault(current, []).append(line)
    assert sections == {"one": ["one-start", "one-end"], "two": ["stderr| two-start", "two-end"]}


# -- the server's logs route and `corral logs --server` --------------------------------


@pytest.fixture(scope="module")
def server(finished: tuple[Path, str, str]) -> Iterator[object]:
    pytest.importorskip("fastapi")
    from serverkit import start_server

    live = start_server(finished[0])
    yield live
    assert live.stop() == 0


def test_the_server_serves_both_streams_and_the_narrative(
    server: object, finished: tuple[Path, str, str]
) -> None:
    from serverkit import LiveServer

    assert isinstance(server, LiveServer)
    folder, run_id, _ = finished
    path = f"/runs/{run_id}/jobs/build/logs"
    with server.client() as http:
        page = http.get(path).json()
        assert [(x["stream"], x["text"]) for x in page["lines"]] == [
            ("stdout", "building"), ("stderr", "no flag"),
        ]  # fmt: skip
        text = http.get(f"/runs/{run_id}/jobs/review/logs", params={"format": "text"}).json()
        assert [x["text"] for x in text["lines"]] == REVIEW_TEXT.splitlines()
        assert text["complete"] is True
        # a page counts the log's lines: the narrative of a later page is the same text
        first = http.get(f"/runs/{run_id}/jobs/review/logs",
                         params={"format": "text", "limit": 3}).json()  # fmt: skip
        later = {"format": "text", "offset": first["next_offset"]}
        rest = http.get(f"/runs/{run_id}/jobs/review/logs", params=later).json()
        assert [x["text"] for x in first["lines"] + rest["lines"]] == REVIEW_TEXT.splitlines()
        ask = http.get(f"/runs/{run_id}/jobs/ask/logs", params={"format": "text"}).json()
        assert [x["text"] for x in ask["lines"]] == [ASK_ERROR]
        with http.stream("GET", path, params={"follow": "true"}) as response:
            followed = [json.loads(x) for x in response.iter_lines() if x]
        assert [(x["stream"], x["n"], x["text"]) for x in followed] == [
            ("stdout", 1, "building"), ("stderr", 1, "no flag"),
        ]  # fmt: skip
        with http.stream("GET", f"/runs/{run_id}/jobs/review/logs",
                         params={"follow": "true", "format": "text"}) as response:  # fmt: skip
            followed = [json.loads(x)["text"] for x in response.iter_lines() if x]
        assert followed == REVIEW_TEXT.splitlines()
    env = {"CORRAL_TOKEN": server.token}
    remote = corral("logs", run_id, "build", "--server", server.url, cwd=folder, env=env)
    assert remote.stdout == "building\nstderr| no flag\n", remote.stderr
    remote = corral("logs", run_id, "review", "--server", server.url, "--format", "text",
                    cwd=folder, env=env)  # fmt: skip
    assert remote.stdout == REVIEW_TEXT, remote.stderr
    remote = corral("logs", run_id, "build", "--server", server.url, "--stderr",
                    cwd=folder, env=env)  # fmt: skip
    assert remote.stdout == "no flag\n"
    # --follow without a job: every job, each under its header
    remote = corral("logs", run_id, "--server", server.url, "--follow", "--format", "text",
                    cwd=folder, env=env)  # fmt: skip
    assert remote.stdout == _logs(folder, run_id, "--format", "text"), remote.stderr
