"""The real Claude Code, Codex and Gemini CLIs against the simulated provider, end to end.

Each test runs the three CLIs at once (one thread each), every CLI in its own session, a
private HOME and with stdin closed, then checks what each printed and what it sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corral.config.schema import JobSpec
from corral.provider import Scenario, ScenarioUsage, SimulatedProvider
from corral.tools import get_tool, rehearsal_for

pytestmark = pytest.mark.realcli

ROOT = Path(__file__).parent.parent
TOOLS = ("claude", "codex", "gemini")
MARKER = "corral-rehearsal-marker"
USAGE = ScenarioUsage(input=123, output=45, cache_read=6789, cache_write=1011, reasoning=7)
RUN_TIMEOUT = 90.0
# Codex's classic function tools (exec_command) come only with this model; Gemini's pinned
# model skips the router call, so its token counts are the scenario's alone
CODEX_MODEL = ["-m", "gpt-5.5"]
GEMINI_MODEL = ["-m", "gemini-2.5-pro"]


@pytest.fixture(scope="module")
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as running:
        yield running


@dataclass(frozen=True)
class Outcome:
    """How one CLI run ended."""

    tool: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def stderr_json(self) -> Any:
        """Gemini prints its error object last on stderr, after warnings and a stack trace."""
        return json.loads(self.stderr[self.stderr.rindex("\n{") :])

    def __str__(self) -> str:
        tail = f"--stdout\n{self.stdout[-2000:]}\n--stderr\n{self.stderr[-2000:]}"
        return f"{self.tool} rc={self.returncode}\n{tail}"


class Runner:
    """Starts one CLI against one scenario, in its own session and private HOME."""

    def __init__(self, bin_dir: Path, provider: SimulatedProvider, tmp: Path) -> None:
        self.bin_dir = bin_dir
        self.provider = provider
        self.tmp = tmp

    def start(
        self, tool: str, scenario_id: str, args: list[str]
    ) -> tuple[subprocess.Popen[bytes], Path]:
        home = self.tmp / f"home-{tool}"
        workspace = self.tmp / f"ws-{tool}"
        workspace.mkdir(parents=True, exist_ok=True)
        url = self.provider.scenario_url(scenario_id)
        rehearsal = rehearsal_for(get_tool(tool), JobSpec(), base_url=url, home=home)
        prompt = "rehearse please"
        argv = {
            "claude": [tool, "-p", prompt, *rehearsal.extra_args, *args],
            # the adapter's own flag: a rehearsal adds only the provider's settings
            "codex": [tool, "exec", "--skip-git-repo-check", *rehearsal.extra_args, *args, prompt],
            "gemini": [tool, "-p", prompt, *rehearsal.extra_args, *args],
        }[tool]
        argv[0] = str(self.bin_dir / tool)
        out = self.tmp / f"{tool}.out"
        err = self.tmp / f"{tool}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                argv,
                cwd=workspace,
                env={**os.environ, **rehearsal.env},
                stdin=subprocess.DEVNULL,  # Codex appends a non-TTY stdin to the prompt
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # Gemini re-executes itself: signal the group
            )
        return process, self.tmp

    def run(self, tool: str, scenario_id: str, args: list[str]) -> Outcome:
        started = time.monotonic()
        process, _ = self.start(tool, scenario_id, args)
        try:
            process.wait(RUN_TIMEOUT)
        finally:
            kill_group(process)
        return Outcome(
            tool,
            process.returncode,
            (self.tmp / f"{tool}.out").read_text(),
            (self.tmp / f"{tool}.err").read_text(),
            time.monotonic() - started,
        )

    def run_all(self, scenario: Scenario, args: dict[str, list[str]]) -> dict[str, Outcome]:
        """Run the three CLIs at once, each under its own scenario id `<test>-<tool>`."""
        prefix = self.tmp.name
        for tool in TOOLS:
            self.provider.add_scenario(f"{prefix}-{tool}", scenario)
        with ThreadPoolExecutor(max_workers=len(TOOLS)) as pool:
            futures = {
                tool: pool.submit(self.run, tool, f"{prefix}-{tool}", args[tool]) for tool in TOOLS
            }
            return {tool: future.result() for tool, future in futures.items()}

    def requests(self, tool: str) -> list[Any]:
        return self.provider.requests(f"{self.tmp.name}-{tool}")


def kill_group(process: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace`, and reap."""
    with contextlib.suppress(ProcessLookupError):  # the whole group may be gone already
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    # stragglers in the group (Gemini's relaunched child) or a CLI ignoring SIGTERM
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(grace)


@pytest.fixture
def runner(cli_bin: Path, provider: SimulatedProvider, tmp_path: Path) -> Runner:
    return Runner(cli_bin, provider, tmp_path)


def test_plain_text(runner: Runner) -> None:
    text = f"Plain answer {MARKER}."
    outcomes = runner.run_all(
        Scenario.answer(text),
        {
            "claude": ["--output-format", "json"],
            "codex": ["--json"],
            "gemini": ["--output-format", "json"],  # model `auto`: a router call first
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    assert claude.returncode == 0, claude
    assert claude.json()["result"] == text
    assert codex.returncode == 0, codex
    messages = [e["item"]["text"] for e in codex.lines() if e["type"] == "item.completed"]
    assert messages == [text]
    assert gemini.returncode == 0, gemini
    assert gemini.json()["response"] == text
    assert "ZodError" not in gemini.stderr

    (claude_request,) = runner.requests("claude")
    assert claude_request.path == "/v1/messages?beta=true"
    assert claude_request.headers["x-api-key"] == "dummy"
    (codex_request,) = runner.requests("codex")
    assert codex_request.path == "/v1/responses"
    assert codex_request.headers["authorization"] == "Bearer dummy"
    router, main = runner.requests("gemini")
    assert router.path.endswith(":generateContent")
    assert main.path.endswith(":streamGenerateContent?alt=sse")
    assert main.headers["x-goog-api-key"] == "dummy"


def test_tool_call_round_trip(runner: Runner) -> None:
    command = f"echo {MARKER}"
    outcomes = runner.run_all(
        Scenario.tool(command),
        {
            "claude": ["--output-format", "stream-json", "--verbose"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "stream-json", "--yolo", *GEMINI_MODEL],
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    for outcome in outcomes.values():
        assert outcome.returncode == 0, outcome
        assert len(runner.requests(outcome.tool)) == 2, outcome  # the call, then the answer

    results = [e["tool_use_result"] for e in claude.lines() if "tool_use_result" in e]
    assert MARKER in results[0]["stdout"]
    final = claude.lines()[-1]
    assert final["num_turns"] == 2
    assert MARKER in final["result"]

    executions = [e["item"] for e in codex.lines() if e["type"] == "item.completed"]
    assert executions[0]["type"] == "command_execution"
    assert MARKER in executions[0]["command"]
    assert executions[0]["aggregated_output"].strip() == MARKER
    assert MARKER in executions[-1]["text"]

    events = gemini.lines()
    (tool_use,) = [e for e in events if e["type"] == "tool_use"]
    assert tool_use["tool_name"] == "run_shell_command"
    assert tool_use["parameters"]["command"] == command
    (tool_result,) = [e for e in events if e["type"] == "tool_result"]
    assert tool_result["status"] == "success"
    assert MARKER in tool_result["output"]
    assert events[-1]["status"] == "success"

    # what went back to the model holds the command's output, in each API's shape
    assert MARKER in json.dumps(runner.requests("claude")[1].body["messages"][-2:])
    assert MARKER in json.dumps(runner.requests("codex")[1].body["input"][-1])
    assert MARKER in json.dumps(runner.requests("gemini")[1].body["contents"][-1])


def test_chosen_usage_is_what_each_cli_reports(runner: Runner) -> None:
    outcomes = runner.run_all(
        Scenario.answer("Counted.", usage=USAGE),
        {
            "claude": ["--output-format", "json"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "json", *GEMINI_MODEL],
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    assert claude.returncode == 0, claude
    result = claude.json()
    usage = result["usage"]
    assert (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["cache_read_input_tokens"],
        usage["cache_creation_input_tokens"],
        usage["output_tokens_details"]["thinking_tokens"],
    ) == (123, 45, 6789, 1011, 7)
    (per_model,) = result["modelUsage"].values()
    assert (
        per_model["inputTokens"],
        per_model["outputTokens"],
        per_model["cacheReadInputTokens"],
        per_model["cacheCreationInputTokens"],
    ) == (123, 45, 6789, 1011)

    assert codex.returncode == 0, codex
    (completed,) = [e for e in codex.lines() if e["type"] == "turn.completed"]
    assert completed["usage"] == {
        "input_tokens": USAGE.prompt_total,  # OpenAI counts cached tokens inside the input
        "cached_input_tokens": 6789,
        "cache_write_input_tokens": 1011,
        "output_tokens": 45,
        "reasoning_output_tokens": 7,
    }

    assert gemini.returncode == 0, gemini
    tokens = gemini.json()["stats"]["models"]["gemini-2.5-pro"]["tokens"]
    assert tokens == {
        "input": 123 + 1011,  # prompt minus cached: Gemini has no cache-write count
        "prompt": USAGE.prompt_total,
        "candidates": 45 - 7,
        "total": USAGE.prompt_total + 45,
        "cached": 6789,
        "thoughts": 7,
        "tool": 0,
    }


def test_rate_limited_429(runner: Runner) -> None:
    outcomes = runner.run_all(
        Scenario.error(429),
        {
            "claude": ["--output-format", "json"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "json", *GEMINI_MODEL],
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    result = claude.json()
    assert (claude.returncode, result["is_error"], result["api_error_status"]) == (1, True, 429), (
        claude
    )
    assert codex.returncode == 1, codex
    (failed,) = [e for e in codex.lines() if e["type"] == "turn.failed"]
    assert "429 Too Many Requests" in failed["error"]["message"]
    assert gemini.returncode == 429 % 256, gemini
    assert gemini.stderr_json()["error"]["code"] == 429
    for tool in TOOLS:  # retries are off: one request each
        assert len(runner.requests(tool)) == 1, outcomes[tool]


def test_bad_key_401(runner: Runner) -> None:
    outcomes = runner.run_all(
        Scenario.error(401),
        {
            "claude": ["--output-format", "json"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "json", *GEMINI_MODEL],
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    result = claude.json()
    assert (claude.returncode, result["api_error_status"], result["api_error_type"]) == (
        1,
        401,
        "authentication_error",
    ), claude
    assert codex.returncode == 1, codex
    assert "401 Unauthorized" in codex.lines()[-1]["error"]["message"]
    assert gemini.returncode == 401 % 256, gemini
    assert gemini.stderr_json()["error"]["code"] == 401
    # TMPDIR inside the private home catches what would otherwise litter /tmp
    assert list((runner.tmp / "home-gemini" / "tmp").glob("gemini-client-error-*.json"))
    assert list((runner.tmp / "home-claude" / "tmp").glob("claude-*"))


def test_hanging_stream_is_killed_with_its_process_group(runner: Runner) -> None:
    scenario_ids = {tool: f"{runner.tmp.name}-{tool}" for tool in TOOLS}
    for scenario_id in scenario_ids.values():
        runner.provider.add_scenario(scenario_id, Scenario.hang())
    args = {
        "claude": ["--output-format", "stream-json", "--verbose"],
        "codex": ["--json", *CODEX_MODEL],
        "gemini": ["--output-format", "stream-json", *GEMINI_MODEL],
    }
    processes = {tool: runner.start(tool, scenario_ids[tool], args[tool])[0] for tool in TOOLS}
    try:
        deadline = time.monotonic() + 60
        while not all(runner.requests(tool) for tool in TOOLS) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # well past the first streamed events
        for tool, process in processes.items():
            assert runner.requests(tool), f"{tool} never called the provider"
            assert process.poll() is None, (
                f"{tool} exited ({process.returncode}) on a hanging stream"
            )
    finally:
        for process in processes.values():
            kill_group(process)
    for process in processes.values():
        assert process.returncode is not None


def test_mid_stream_failure(runner: Runner) -> None:
    outcomes = runner.run_all(
        Scenario.failed("simulated: the model fell over"),
        {
            "claude": ["--output-format", "json"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "stream-json", *GEMINI_MODEL],
        },
    )
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)
    assert codex.returncode == 1, codex
    (failed,) = [e for e in codex.lines() if e["type"] == "turn.failed"]
    assert "stream disconnected before completion" in failed["error"]["message"]
    assert "the model fell over" in failed["error"]["message"]

    # Claude retries a broken stream once without streaming (retries off or not)
    assert [r.body.get("stream") for r in runner.requests("claude")] == [True, False]
    assert (claude.returncode, claude.json()["is_error"]) == (1, True), claude

    # Gemini reads the stream as cut short, reports an error, and still exits 0
    assert gemini.returncode == 0, gemini
    assert gemini.lines()[-1]["status"] == "error"
    assert any(e["type"] == "error" for e in gemini.lines())


def test_huge_tool_result_and_long_answer(runner: Runner) -> None:
    size, lines = 300_000, 200_000
    outcomes = runner.run_all(
        Scenario.big(size=size, lines=lines),
        {
            "claude": ["--output-format", "stream-json", "--verbose"],
            "codex": ["--json", *CODEX_MODEL],
            "gemini": ["--output-format", "stream-json", "--yolo", *GEMINI_MODEL],
        },
    )
    for outcome in outcomes.values():
        assert outcome.returncode == 0, outcome
        assert len(runner.requests(outcome.tool)) == 2, outcome
    claude, codex, gemini = (outcomes[tool] for tool in TOOLS)

    (claude_result,) = [e["tool_use_result"] for e in claude.lines() if "tool_use_result" in e]
    assert claude_result["stdout"].startswith("1\n2\n3\n")
    assert len(claude.lines()[-1]["result"]) == size

    command = next(e["item"] for e in codex.lines() if e["type"] == "item.completed")
    # Codex keeps the head and the tail and omits the middle, still ~1 MB on one line
    output = command["aggregated_output"]
    assert len(output) > 1_000_000
    assert output.startswith("1\n2\n3\n")
    assert output.endswith("\n199999\n200000\n")
    assert len(codex.lines()[-2]["item"]["text"]) == size

    (tool_result,) = [e for e in gemini.lines() if e["type"] == "tool_result"]
    assert tool_result["output"].startswith("1\n2\n3\n")
    answer = "".join(e["content"] for e in gemini.lines() if e.get("role") == "assistant")
    assert len(answer) == size
