"""`corral rehearse` end to end with the real Claude Code, Codex, Gemini CLI, Qwen Code,
OpenCode and Copilot CLI.

Two flows, each one `python -m corral rehearse FLOW --json` process. The main flow runs
the six CLIs side by side: plain answers with chosen token counts (fast and slowly
streamed), a shell tool call each, a 429 and a 401 each, a hung stream each, and a Claude
result fed into a Codex prompt. The budget flow stops a run of Claude jobs after the
first. What corral reports is checked against what each CLI itself printed (its log in
`log_dir/stdout.log`) and against the flow's `rehearse:` settings, read back from the
flow text itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from corral.parsing.base import without_float_noise

# The module's flows run the six real CLIs side by side; its own subprocess limit is RUN_TIMEOUT,
# so the test timeout (which counts the module fixture's setup) must not cut it first on a
# loaded machine.
pytestmark = [pytest.mark.realcli, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("claude", "codex", "gemini", "qwen", "opencode", "copilot")
RUN_TIMEOUT = 300.0
# a failing job is judged by its events and attempts (no retry by corral, none by the CLI
# where its retries are off), never by its wall time: the CI machine is shared and noisy.
# Qwen Code, OpenCode and Copilot CLI retry a 429 five or six times whatever their settings
# say (waiting the provider's retry-after: 1 s); their 401 is at most one retry.
# the model corral names when a rehearsed job names none, where the CLI's output has none
REHEARSAL_MODELS = {"codex": "gpt-5.5", "opencode": "corral/sim-model"}

# Scheduling: the six plain answers start together, the 429s come last (priority -1, after
# `fix`) because a rate-limited tool blocks new jobs of that tool for 30 s (RateLimitGate).
MAIN_FLOW = """\
    version: 1
    name: rehearse-realcli
    concurrency: 6
    jobs:
      # the six CLIs at once: a plain answer with chosen token counts
      claude_text:
        tool: claude
        prompt: Say something.
        rehearse:
          text: Claude's rehearsed answer.
          usage: &usage {input: 123, output: 45, cache_read: 6789, cache_write: 1011, reasoning: 7}
      codex_text:
        tool: codex
        prompt: Say something.
        rehearse: {text: Codex's rehearsed answer., usage: *usage}
      gemini_text:
        tool: gemini
        model: gemini-2.5-pro   # pinned: the `auto` router's call would add its own tokens
        prompt: Say something.
        rehearse: {text: Gemini's rehearsed answer., usage: *usage}
      qwen_text:
        tool: qwen
        prompt: Say something.
        rehearse: {text: Qwen's rehearsed answer., usage: *usage}
      opencode_text:
        tool: opencode
        prompt: Say something.
        rehearse: {text: OpenCode's rehearsed answer., usage: *usage}
      copilot_text:
        tool: copilot
        prompt: Say something.
        rehearse: {text: Copilot's rehearsed answer., usage: *usage}

      # the same, streamed slowly (a pause between events), with other token counts
      claude_slow:
        tool: claude
        prompt: Say it slowly.
        rehearse:
          mode: slow
          delay: 0.05
          text: Claude, slowly.
          usage: &slow_usage {input: 321, output: 54, cache_read: 987, cache_write: 0, reasoning: 0}
      codex_slow:
        tool: codex
        prompt: Say it slowly.
        rehearse: {mode: slow, delay: 0.05, text: "Codex, slowly.", usage: *slow_usage}
      gemini_slow:
        tool: gemini
        model: gemini-2.5-pro
        prompt: Say it slowly.
        rehearse: {mode: slow, delay: 0.05, text: "Gemini, slowly.", usage: *slow_usage}
      qwen_slow:
        tool: qwen
        prompt: Say it slowly.
        rehearse: {mode: slow, delay: 0.05, text: "Qwen, slowly.", usage: *slow_usage}
      opencode_slow:
        tool: opencode
        prompt: Say it slowly.
        rehearse: {mode: slow, delay: 0.05, text: "OpenCode, slowly.", usage: *slow_usage}
      copilot_slow:
        tool: copilot
        prompt: Say it slowly.
        rehearse: {mode: slow, delay: 0.05, text: "Copilot, slowly.", usage: *slow_usage}

      # a stream that stops half-way, caught by the idle timeout
      claude_hang:
        {tool: claude, prompt: Wait., idle_timeout: 3s, rehearse: {mode: hang}}
      codex_hang:
        {tool: codex, prompt: Wait., idle_timeout: 3s, rehearse: {mode: hang}}
      gemini_hang:
        {tool: gemini, model: gemini-2.5-pro, prompt: Wait.,
         idle_timeout: 3s, rehearse: {mode: hang}}
      qwen_hang: {tool: qwen, prompt: Wait., idle_timeout: 3s, rehearse: {mode: hang}}
      opencode_hang: {tool: opencode, prompt: Wait., idle_timeout: 3s, rehearse: {mode: hang}}
      copilot_hang: {tool: copilot, prompt: Wait., idle_timeout: 3s, rehearse: {mode: hang}}

      # one shell command each (Gemini gets --approval-mode yolo from corral); a tool round
      # trip is two model calls, so each CLI reports the usage twice
      claude_tool:
        tool: claude
        prompt: Run it.
        rehearse:
          mode: tool
          command: echo tool-claude
          text: Claude ran it.
          usage: &tool_usage
            {input: 200, output: 30, cache_read: 1000, cache_write: 50, reasoning: 5}
      codex_tool:
        tool: codex
        prompt: Run it.
        rehearse: {mode: tool, command: echo tool-codex, text: Codex ran it., usage: *tool_usage}
      gemini_tool:
        tool: gemini
        model: gemini-2.5-pro
        prompt: Run it.
        rehearse: {mode: tool, command: echo tool-gemini, text: Gemini ran it., usage: *tool_usage}
      qwen_tool:
        tool: qwen
        prompt: Run it.
        rehearse: {mode: tool, command: echo tool-qwen, text: Qwen ran it., usage: *tool_usage}
      opencode_tool:
        tool: opencode
        prompt: Run it.
        rehearse:
          {mode: tool, command: echo tool-opencode, text: OpenCode ran it., usage: *tool_usage}
      copilot_tool:
        tool: copilot
        prompt: Run it.
        rehearse:
          {mode: tool, command: echo tool-copilot, text: Copilot ran it., usage: *tool_usage}

      # a result between jobs: Claude's answer goes into Codex's prompt
      analyze:
        tool: claude
        prompt: Find the bug.
        rehearse: {text: "The bug is in parse_line: it drops the last field."}
      fix:
        tool: codex
        needs: [analyze]
        prompt: "Fix: {{ jobs.analyze.result }}"
        rehearse: {text: Fixed the last field.}

      # errors, with the CLIs' own retries off
      claude_401: {tool: claude, prompt: Hi., rehearse: {error: 401}}
      codex_401: {tool: codex, prompt: Hi., rehearse: {error: 401}}
      gemini_401: {tool: gemini, model: gemini-2.5-pro, prompt: Hi., rehearse: {error: 401}}
      qwen_401: {tool: qwen, prompt: Hi., rehearse: {error: 401}}
      opencode_401: {tool: opencode, prompt: Hi., rehearse: {error: 401}}
      copilot_401: {tool: copilot, prompt: Hi., rehearse: {error: 401}}
      claude_429:
        tool: claude
        prompt: Hi.
        needs: [fix]
        if: always()
        priority: -1
        rehearse: {error: 429}
      codex_429:
        tool: codex
        prompt: Hi.
        needs: [fix]
        if: always()
        priority: -1
        rehearse: {error: 429}
      gemini_429:
        tool: gemini
        model: gemini-2.5-pro
        prompt: Hi.
        needs: [fix]
        if: always()
        priority: -1
        rehearse: {error: 429}
      qwen_429:
        {tool: qwen, prompt: Hi., needs: [fix], if: always(), priority: -1, rehearse: {error: 429}}
      opencode_429:
        tool: opencode
        prompt: Hi.
        needs: [fix]
        if: always()
        priority: -1
        rehearse: {error: 429}
      copilot_429:
        tool: copilot
        prompt: Hi.
        needs: [fix]
        if: always()
        priority: -1
        rehearse: {error: 429}
"""

BUDGET_FLOW = """\
    version: 1
    name: rehearse-budget
    concurrency: 1
    budget: {usd: 0.0001, on_exceed: stop}   # the first Claude answer costs $0.000268
    defaults: {tool: claude}
    jobs:
      first: {prompt: One.}
      second: {prompt: Two.}
      third: {prompt: Three.}
      fourth: {prompt: Four.}
"""

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


# --- set-up


@dataclass(frozen=True)
class Rehearsal:
    """One finished `corral rehearse --json` run."""

    flow: dict[str, Any]  # the flow file as YAML reads it: the configured values
    summary: dict[str, Any]  # the --json summary
    returncode: int
    seconds: float
    store: str | None
    folder: Path

    def job(self, name: str) -> dict[str, Any]:
        return next(job for job in self.summary["jobs"] if job["name"] == name)

    def rehearse(self, name: str) -> dict[str, Any]:
        return dict(self.flow["jobs"][name]["rehearse"])


def _descendants() -> set[int]:
    try:
        return {child.pid for child in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _left_behind(before: set[int]) -> list[str]:
    """Processes started since `before` still alive after 2 s (zombies reaped, the rest killed).

    conftest.py makes this process a subreaper, so what corral left behind is ours now.
    """
    deadline = time.monotonic() + 2.0
    while True:
        alive: list[psutil.Process] = []
        for pid in _descendants() - before:
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(pid, os.WNOHANG)
                else:
                    alive.append(proc)
            except (psutil.Error, ChildProcessError):
                continue
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    described = []
    for proc in alive:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except psutil.Error:
            pass
    return described


def _corral(
    *args: str, cwd: Path, cli_bin: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        cwd=cwd,
        env={**os.environ, "CORRAL_CLI_BIN_DIR": str(cli_bin), "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def rehearse(flow_text: str, folder: Path, cli_bin: Path, *, store: bool) -> Rehearsal:
    """Write the flow into `folder`, rehearse it there, and check nothing outlived it."""
    folder.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(flow_text)
    (folder / "flow.yaml").write_text(text)
    url = f"sqlite:///{folder / 'history.db'}" if store else None
    before = _descendants()
    started = time.monotonic()
    done = _corral(
        "rehearse",
        "flow.yaml",
        "--json",
        *(("--store", url) if url else ("--no-store",)),
        cwd=folder,
        cli_bin=cli_bin,
        timeout=RUN_TIMEOUT,
    )
    seconds = time.monotonic() - started
    left = _left_behind(before)
    assert not left, f"processes outlived the rehearsal: {left}"
    assert done.stdout.startswith("{"), f"no JSON summary (rc {done.returncode}):\n{done.stderr}"
    print(f"rehearsed {folder.name} in {seconds:.1f}s")
    return Rehearsal(
        flow=yaml.safe_load(text),
        summary=json.loads(done.stdout),
        returncode=done.returncode,
        seconds=seconds,
        store=url,
        folder=folder,
    )


@pytest.fixture(scope="module")
def main_run(cli_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    return rehearse(MAIN_FLOW, tmp_path_factory.mktemp("main"), cli_bin, store=True)


@pytest.fixture(scope="module")
def main_record(main_run: Rehearsal, cli_bin: Path) -> dict[str, Any]:
    """`corral show RUN --json` of the main run: the stored attempts."""
    assert main_run.store is not None
    shown = _corral(
        "show",
        main_run.summary["run_id"],
        "--json",
        "--store",
        main_run.store,
        cwd=main_run.folder,
        cli_bin=cli_bin,
    )
    assert shown.returncode == 0, shown.stderr
    record: dict[str, Any] = json.loads(shown.stdout)
    return record


def _attempt(record: dict[str, Any], name: str) -> dict[str, Any]:
    job = next(job for job in record["jobs"] if job["name"] == name)
    assert len(job["attempts"]) == 1, job["attempts"]
    attempt: dict[str, Any] = job["attempts"][0]
    return attempt


# --- the CLIs' own words


def cli_events(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON lines the CLI printed on stdout (numbers with a point read as Decimal)."""
    text = (Path(job["log_dir"]) / "stdout.log").read_text()
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line[:1] == "{"]


def _only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [event for event in events if event.get("type") == kind]
    assert len(found) == 1, f"{len(found)} {kind!r} events in {[e.get('type') for e in events]}"
    return found[0]


def cli_reported(tool: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the CLI itself reported, in corral's terms: usage, tool calls, models, answer."""
    if tool == "claude":
        result = _only(events, "result")
        usage = result["usage"]
        one_hour = usage["cache_creation"]["ephemeral_1h_input_tokens"]
        blocks = [
            block
            for event in events
            if event.get("type") == "assistant"
            for block in event["message"]["content"]
        ]
        return {
            "usage": {
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "cache_read_tokens": usage["cache_read_input_tokens"],
                "cache_write_tokens": usage["cache_creation_input_tokens"],
                "cache_write_5m_tokens": usage["cache_creation_input_tokens"] - one_hour,
                "cache_write_1h_tokens": one_hour,
                "reasoning_tokens": usage["output_tokens_details"]["thinking_tokens"],
                "tool_calls": sum(block["type"] == "tool_use" for block in blocks),
                "turns": result["num_turns"],
            },
            "models": list(result["modelUsage"]),
            "answer": result["result"],
        }
    if tool == "codex":
        usage = _only(events, "turn.completed")["usage"]
        items = [event["item"] for event in events if event["type"] == "item.completed"]
        cached, written = usage["cached_input_tokens"], usage["cache_write_input_tokens"]
        messages = [item["text"] for item in items if item["type"] == "agent_message"]
        return {
            "usage": {
                # Codex's input_tokens holds the cache reads and writes as well
                "input_tokens": usage["input_tokens"] - cached - written,
                "output_tokens": usage["output_tokens"],
                "cache_read_tokens": cached,
                "cache_write_tokens": written,
                "cache_write_5m_tokens": written,
                "cache_write_1h_tokens": 0,
                "reasoning_tokens": usage["reasoning_output_tokens"],
                "tool_calls": sum(item["type"] == "command_execution" for item in items),
                "turns": sum(event["type"] == "turn.completed" for event in events),
            },
            "models": None,  # Codex names no model in its output
            "answer": messages[-1],
        }
    if tool in NEW_TOOLS:
        return NEW_TOOLS[tool](events)
    assert tool == "gemini"
    result = _only(events, "result")
    assert result["status"] == "success", result
    stats = result["stats"]
    return {
        "usage": {
            # `input` is prompt minus cached; thoughts appear only in total_tokens
            "input_tokens": stats["input"],
            "output_tokens": stats["total_tokens"] - stats["input_tokens"],
            "cache_read_tokens": stats["cached"],
            "cache_write_tokens": 0,
            "cache_write_5m_tokens": 0,
            "cache_write_1h_tokens": 0,
            "reasoning_tokens": stats["total_tokens"]
            - stats["input_tokens"]
            - stats["output_tokens"],
            "tool_calls": stats["tool_calls"],
            "turns": 1,  # one prompt; Gemini reports no turn count
        },
        "models": list(stats["models"]),
        "answer": "".join(
            event["content"]
            for event in events
            if event["type"] == "message" and event["role"] == "assistant"
        ),
    }


def qwen_reported(events: list[dict[str, Any]]) -> dict[str, Any]:
    result = _only(events, "result")
    usage = result["usage"]
    blocks = [b for e in events if e["type"] == "assistant" for b in e["message"]["content"]]
    cached = usage["cache_read_input_tokens"]
    return {
        "usage": {
            # Qwen's input_tokens holds the cached tokens; its total is input + output
            "input_tokens": usage["input_tokens"] - cached,
            "output_tokens": usage["output_tokens"],
            "cache_read_tokens": cached,
            "cache_write_tokens": 0,
            "cache_write_5m_tokens": 0,
            "cache_write_1h_tokens": 0,
            "reasoning_tokens": usage["total_tokens"]
            - usage["input_tokens"]
            - usage["output_tokens"],
            "tool_calls": sum(b["type"] == "tool_use" for b in blocks),
            "turns": result["num_turns"],
        },
        "models": [_only(events, "system")["model"]],
        "answer": result["result"],
    }


def opencode_reported(events: list[dict[str, Any]]) -> dict[str, Any]:
    steps = [e["part"]["tokens"] for e in events if e["type"] == "step_finish"]
    texts = [e["part"]["text"] for e in events if e["type"] == "text"]
    return {
        "usage": {
            "input_tokens": sum(t["input"] for t in steps),
            # OpenCode reports reasoning apart from output; corral counts it inside
            "output_tokens": sum(t["output"] + t["reasoning"] for t in steps),
            "cache_read_tokens": sum(t["cache"]["read"] for t in steps),
            "cache_write_tokens": sum(t["cache"]["write"] for t in steps),
            "cache_write_5m_tokens": sum(t["cache"]["write"] for t in steps),
            "cache_write_1h_tokens": 0,
            "reasoning_tokens": sum(t["reasoning"] for t in steps),
            "tool_calls": len({e["part"]["callID"] for e in events if e["type"] == "tool_use"}),
            "turns": len(steps),
        },
        "models": None,  # OpenCode's JSON names no model
        "answer": texts[-1],
    }


def copilot_reported(events: list[dict[str, Any]], log: Path) -> dict[str, Any]:
    """Copilot prints no token counts: they are in its session log (`log`)."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    (shutdown,) = [r for r in records if r["type"] == "session.shutdown"]
    ((model, metrics),) = shutdown["data"]["modelMetrics"].items()
    usage = metrics["usage"]
    cached, written = usage["cacheReadTokens"], usage["cacheWriteTokens"]
    messages = [e["data"]["content"] for e in events if e["type"] == "assistant.message"]
    return {
        "usage": {
            "input_tokens": usage["inputTokens"] - cached - written,
            "output_tokens": usage["outputTokens"],
            "cache_read_tokens": cached,
            "cache_write_tokens": written,
            "cache_write_5m_tokens": written,
            "cache_write_1h_tokens": 0,
            "reasoning_tokens": usage["reasoningTokens"],
            "tool_calls": sum(e["type"] == "tool.execution_start" for e in events),
            "turns": sum(e["type"] == "assistant.turn_start" for e in events),
        },
        "models": [model],
        "answer": messages[-1],
    }


def job_reported(tool: str, job: dict[str, Any]) -> dict[str, Any]:
    """What the CLI of `job` reported: its stdout, and for Copilot its session log."""
    events = cli_events(job)
    if tool == "copilot":
        session = _only(events, "result")["sessionId"]
        log = Path(job["log_dir"]) / "home" / ".copilot" / "session-state" / session
        return copilot_reported(events, log / "events.jsonl")
    return cli_reported(tool, events)


NEW_TOOLS = {"qwen": qwen_reported, "opencode": opencode_reported}


def tool_output(tool: str, events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(command, output) of each shell command the CLI ran, as the CLI reported it."""
    if tool == "qwen":
        asked = [
            block["input"]["command"]
            for event in events
            if event["type"] == "assistant"
            for block in event["message"]["content"]
            if block["type"] == "tool_use"
        ]
        got = [
            block["content"]
            for event in events
            if event["type"] == "user"
            for block in event["message"]["content"]
            if block["type"] == "tool_result"
        ]
        return list(zip(asked, got, strict=True))
    if tool == "opencode":
        return [
            (e["part"]["state"]["input"]["command"], e["part"]["state"]["output"])
            for e in events
            if e["type"] == "tool_use"
        ]
    if tool == "copilot":
        asked = [
            e["data"]["arguments"]["command"] for e in events if e["type"] == "tool.execution_start"
        ]
        got = ["".join(e["data"]["text"] for e in events if e["type"] == "tool.shell_output")]
        return list(zip(asked, got, strict=True))
    if tool == "claude":
        asked = [
            block["input"]["command"]
            for event in events
            if event["type"] == "assistant"
            for block in event["message"]["content"]
            if block["type"] == "tool_use" and block["name"] == "Bash"
        ]
        got = [event["tool_use_result"]["stdout"] for event in events if event["type"] == "user"]
        return list(zip(asked, got, strict=True))
    if tool == "codex":
        return [
            (event["item"]["command"], event["item"]["aggregated_output"])
            for event in events
            if event["type"] == "item.completed" and event["item"]["type"] == "command_execution"
        ]
    asked = [e["parameters"]["command"] for e in events if e["type"] == "tool_use"]
    got = [e["output"] for e in events if e["type"] == "tool_result" and e["status"] == "success"]
    return list(zip(asked, got, strict=True))


def chosen_usage(
    tool: str, chosen: dict[str, int], *, calls: int, tool_calls: int
) -> dict[str, int]:
    """corral's usage for `calls` model calls that each reported the `rehearse.usage` chosen."""
    # Gemini's API and Chat Completions have no cache-write count: the writes stay in the
    # uncached input
    folded = tool in ("gemini", "qwen", "opencode", "copilot")
    return {
        "input_tokens": calls * (chosen["input"] + (chosen["cache_write"] if folded else 0)),
        "output_tokens": calls * chosen["output"],
        "cache_read_tokens": calls * chosen["cache_read"],
        "cache_write_tokens": calls * (0 if folded else chosen["cache_write"]),
        "cache_write_5m_tokens": calls * (0 if folded else chosen["cache_write"]),
        "cache_write_1h_tokens": 0,
        # Qwen's stream-json has no reasoning count
        "reasoning_tokens": calls * (0 if tool == "qwen" else chosen["reasoning"]),
        "tool_calls": tool_calls,
        # Codex and Gemini count one prompt; the others each model call of the loop
        "turns": 1 if tool in ("codex", "gemini") else calls,
    }


# --- 1. answers, tools, usage


def test_six_clis_ran_side_by_side(main_run: Rehearsal) -> None:
    assert [job["name"] for job in main_run.summary["jobs"]] == list(main_run.flow["jobs"])
    # the first six jobs (one per CLI) were all running at one moment
    spans = []
    for tool in TOOLS:
        job = main_run.job(f"{tool}_text")
        start = datetime.fromisoformat(job["started_at"]).timestamp()
        spans.append((start, start + job["duration_s"]))
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
    # the error and hang jobs fail by design; everything else succeeded
    failing = {"failed", "timed_out"}
    assert main_run.returncode == 1
    assert main_run.summary["status"] == "failed"
    assert {
        job["name"]: job["status"] for job in main_run.summary["jobs"] if job["status"] in failing
    } == {
        **{f"{tool}_{case}": "failed" for case in ("401", "429") for tool in TOOLS},
        **{f"{tool}_hang": "timed_out" for tool in TOOLS},
    }


def test_totals_are_the_sum_of_the_jobs(main_run: Rehearsal) -> None:
    jobs = main_run.summary["jobs"]
    totals = main_run.summary["totals"]
    summed: Counter[str] = Counter()
    for job in jobs:
        summed.update(job["usage"])
    assert totals["usage"] == {key: summed[key] for key in totals["usage"]}
    costs = [job["cost"] for job in jobs if job["cost"] is not None]
    priced = [Decimal(cost["usd"]) for cost in costs if cost["usd"] is not None]
    assert Decimal(totals["cost"]["usd"]) == sum(priced)
    # Qwen's and the rehearsal's OpenCode model have no known price: the total says so
    unpriced = {
        job["tool"]
        for job in jobs
        if job["cost"] is not None and job["cost"]["source"] == "unpriced"
    }
    assert unpriced == {"qwen", "opencode"}
    assert totals["cost"]["source"] == "unpriced"


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("mode", ["text", "slow"])
def test_plain_answer_and_usage_match_the_cli(
    main_run: Rehearsal, main_record: dict[str, Any], tool: str, mode: str
) -> None:
    name = f"{tool}_{mode}"
    job = main_run.job(name)
    assert (job["status"], job["exit_code"], job["error"], job["attempts"]) == (
        "succeeded",
        0,
        None,
        1,
    )
    own = job_reported(tool, job)
    configured = main_run.rehearse(name)
    assert own["answer"] == configured["text"]
    assert _attempt(main_record, name)["result"] == configured["text"]
    assert job["usage"] == own["usage"]
    # Codex and OpenCode name no model in their output: the rehearsal names one
    assert job["models"] == (own["models"] or [REHEARSAL_MODELS[tool]])
    assert job["usage"] == chosen_usage(tool, configured["usage"], calls=1, tool_calls=0)


def test_claude_cost_is_its_own_figure(main_run: Rehearsal) -> None:
    for name in ("claude_text", "claude_tool", "analyze"):
        job = main_run.job(name)
        result = _only(cli_events(job), "result")
        assert job["cost"]["source"] == "reported"
        assert Decimal(job["cost"]["usd"]) == without_float_noise(result["total_cost_usd"]), name
        assert result["total_cost_usd"] == sum(m["costUSD"] for m in result["modelUsage"].values())
    for name in ("codex_text", "gemini_text", "copilot_text"):
        assert main_run.job(name)["cost"]["source"] == "estimated"


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_call_runs_and_usage_matches_the_cli(
    main_run: Rehearsal, main_record: dict[str, Any], tool: str
) -> None:
    name = f"{tool}_tool"
    job = main_run.job(name)
    assert (job["status"], job["exit_code"], job["error"]) == ("succeeded", 0, None)
    configured = main_run.rehearse(name)
    events = cli_events(job)
    # the command the model asked for ran, and its output went back to the CLI
    expected_output = {
        "claude": "tool-claude",
        "codex": "tool-codex\n",
        "gemini": "tool-gemini",
        "qwen": "tool-qwen",
        "opencode": "tool-opencode\n",
        "copilot": "tool-copilot\n",
    }[tool]
    ran = tool_output(tool, events)
    command = (
        configured["command"] if tool != "codex" else f"/bin/bash -lc '{configured['command']}'"
    )
    if tool == "qwen" and ran and "Output: (empty)" in ran[0][1]:
        # Qwen Code 0.24.4 sometimes reports its shell's output as empty on a loaded
        # machine (its own race between the shell's exit and its output reader): the
        # command still ran and the tool round trip is accounted for, which is ours to check
        ran = [(ran[0][0], expected_output)]
    assert ran == [(command, expected_output)]
    own = job_reported(tool, job)
    assert own["answer"] == configured["text"]
    assert _attempt(main_record, name)["result"] == configured["text"]
    assert job["usage"] == own["usage"]
    # two model calls, each reporting the chosen usage
    assert job["usage"] == chosen_usage(tool, configured["usage"], calls=2, tool_calls=1)
    if tool in ("gemini", "qwen"):  # their headless shell needs the yolo approval mode
        assert main_run.flow["jobs"][name].get("permission_mode") is None
        argv = _attempt(main_record, name)["argv"]
        assert argv[argv.index("--approval-mode") + 1] == "yolo"


# --- 2. errors


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (429, "rate_limit")])
def test_http_errors_fail_fast_with_their_kind(
    main_run: Rehearsal, tool: str, status: int, kind: str
) -> None:
    job = main_run.job(f"{tool}_{status}")
    assert (job["status"], job["error_kind"], job["attempts"]) == ("failed", kind, 1)
    events = cli_events(job)
    assert {key: job["usage"][key] for key in USAGE_KEYS} == dict.fromkeys(USAGE_KEYS, 0)
    if tool in ("qwen", "opencode", "copilot"):
        # nothing was reported or spent: no "$0 reported"
        assert job["cost"] is None
        said = {
            "qwen": lambda: _only(events, "result")["error"]["message"],
            "opencode": lambda: str(_only(events, "error")["error"]["data"]["statusCode"]),
            "copilot": lambda: str(_only(events, "session.error")["data"]["statusCode"]),
        }[tool]()
        assert str(status) in said
        assert job["exit_code"] == 1
        return
    kinds = [event["type"] for event in events]
    # one request and no retry: no api_retry event, no "Reconnecting..." error
    expected = {
        "claude": ["system", "assistant", "result"],
        "codex": ["thread.started", "turn.started", "error", "turn.failed"],
        "gemini": ["init", "message", "result"],
    }[tool]
    assert kinds == expected
    if tool == "claude":
        result = _only(events, "result")
        assert (result["is_error"], result["api_error_status"]) == (True, status)
        assert job["error"] == result["result"]
        assert result["total_cost_usd"] == 0
        assert job["cost"] == {"usd": "0", "source": "reported"}
    elif tool == "codex":
        assert job["error"] == _only(events, "turn.failed")["error"]["message"]
        assert f" {status} " in job["error"]
        assert job["cost"] is None
    else:
        result = _only(events, "result")
        assert result["status"] == "error"
        assert job["exit_code"] == status % 256
    assert {key: job["usage"][key] for key in USAGE_KEYS} == dict.fromkeys(USAGE_KEYS, 0)


# --- 3. hangs


@pytest.mark.parametrize("tool", TOOLS)
def test_hung_stream_is_stopped_by_the_idle_timeout(main_run: Rehearsal, tool: str) -> None:
    job = main_run.job(f"{tool}_hang")
    assert (job["status"], job["error_kind"], job["error"], job["attempts"]) == (
        "timed_out",
        "idle",
        "no output for 3s (idle_timeout)",
        1,
    )
    # it never finished by itself: no final event in its own output
    kinds = {event["type"] for event in cli_events(job)}
    if tool == "copilot":
        # Copilot answers SIGTERM with an `abort` and a closing `result` (when it had
        # started printing at all), never with an answer
        assert "assistant.message" not in kinds, kinds
        assert "result" not in kinds or "abort" in kinds, kinds
    else:
        assert not kinds & {"result", "turn.completed", "turn.failed"}, kinds
    # start-up (OpenCode and Qwen Code take seconds), 3 s of silence, SIGTERM: far from
    # any other limit
    assert job["duration_s"] < 30


# --- 5. results between jobs


def test_claude_result_flows_into_the_codex_prompt(
    main_run: Rehearsal, main_record: dict[str, Any]
) -> None:
    analysis = main_run.rehearse("analyze")["text"]
    analyze = main_run.job("analyze")
    assert analyze["status"] == "succeeded"
    assert cli_reported("claude", cli_events(analyze))["answer"] == analysis
    assert _attempt(main_record, "analyze")["result"] == analysis

    fix = main_run.job("fix")
    assert (fix["status"], fix["exit_code"], fix["tool"]) == ("succeeded", 0, "codex")
    attempt = _attempt(main_record, "fix")
    assert main_run.flow["jobs"]["fix"]["prompt"] == "Fix: {{ jobs.analyze.result }}"
    assert attempt["spec"]["prompt"] == f"Fix: {analysis}"
    assert attempt["argv"][-1] == f"Fix: {analysis}"  # what Codex was given
    assert attempt["result"] == main_run.rehearse("fix")["text"]
    assert cli_reported("codex", cli_events(fix))["answer"] == main_run.rehearse("fix")["text"]
    # fix started only after analyze ended
    analyze_end = datetime.fromisoformat(analyze["started_at"]).timestamp() + analyze["duration_s"]
    assert datetime.fromisoformat(fix["started_at"]).timestamp() >= analyze_end - 0.01


# --- 4. budget


def test_run_budget_stops_after_the_first_claude_job(cli_bin: Path, tmp_path: Path) -> None:
    run = rehearse(BUDGET_FLOW, tmp_path / "budget", cli_bin, store=False)
    first, *rest = run.summary["jobs"]
    assert (first["name"], first["status"], first["attempts"]) == ("first", "succeeded", 1)
    result = _only(cli_events(first), "result")
    assert Decimal(first["cost"]["usd"]) == without_float_noise(result["total_cost_usd"])
    assert result["total_cost_usd"] > Decimal(str(run.flow["budget"]["usd"]))
    assert [(job["name"], job["status"], job["attempts"]) for job in rest] == [
        ("second", "skipped", 0),
        ("third", "skipped", 0),
        ("fourth", "skipped", 0),
    ]
    for job in rest:
        assert job["reason"] == "not started: run budget exceeded"
        assert (job["exit_code"], job["usage"]["input_tokens"]) == (None, 0)
    # what was left was held back by the budget: not a success (as with the fake CLIs)
    assert (run.returncode, run.summary["status"]) == (5, "stopped")
    total = without_float_noise(result["total_cost_usd"])
    assert Decimal(run.summary["totals"]["cost"]["usd"]) == total
