"""Qwen Code 0.24.4, OpenCode 1.18.33 and Copilot CLI 1.0.102 parsed from their genuine output.

The recordings in tests/data/parsing/{qwen,opencode,copilot} were made by
scripts/record_cli.py against the simulated provider (PROVENANCE.json in each folder: the
command of each case, its exit code, the version, the date). Every case checks corral's
usage against what the CLI itself reported, read from the same recording by the small
`*_reported` functions here, which share no code with the parsers; the `usage` case also
checks both against the token counts the simulated model sent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from corral.events.types import (
    AgentError,
    AgentResult,
    Event,
    RateLimited,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import ErrorKind, Usage
from corral.parsing import make_parser

DATA = Path(__file__).parent / "data" / "parsing"
FORMATS = {"qwen": "qwen-stream-json", "opencode": "opencode-json", "copilot": "copilot-jsonl"}
MODELS = {"qwen": "qwen3-coder-plus", "opencode": "corral/sim-model", "copilot": "gpt-5.5"}
# what the simulated model reported per call in the `usage` case (scripts/record_cli.py)
CHOSEN = {"input": 123, "output": 45, "cache_read": 6789, "cache_write": 1011, "reasoning": 7}


def provenance(tool: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / tool / "PROVENANCE.json").read_text())
    return document


def recorded(tool: str, case: str, suffix: str) -> list[str]:
    path = DATA / tool / f"{tool}_{case}{suffix}"
    return path.read_text().splitlines() if path.exists() else []


def parse(tool: str, case: str) -> list[Event]:
    """Feed one recording to the parser as the runner does: stdout and stderr lines, the
    adapter's session records, then the exit code (None when killed by a signal)."""
    parser = make_parser(FORMATS[tool], model=provenance(tool)["cases"][case]["model"])
    events = [e for line in recorded(tool, case, ".out") for e in parser.feed(line, "stdout")]
    events += [e for line in recorded(tool, case, ".err") for e in parser.feed(line, "stderr")]
    events += parser.cli_files(None, "session log", recorded(tool, case, ".session"))
    code = provenance(tool)["cases"][case]["exit_code"]
    events += parser.finish(None if code < 0 else code)
    assert parser.unparsed == 0
    return events


def only(events: list[Event], kind: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def final_usage(events: list[Event]) -> dict[str, Usage]:
    finals = [e for e in only(events, UsageUpdated) if e.final]
    assert len(finals) == 1, finals
    by_model: dict[str, Usage] = finals[0].by_model
    return by_model


# -- what each CLI itself reported, read straight from its recording ----------------------


def jsonl(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def qwen_reported(case: str) -> Usage:
    events = jsonl(recorded("qwen", case, ".out"))
    (result,) = [e for e in events if e["type"] == "result"]
    usage = result["usage"]
    blocks = [b for e in events if e["type"] == "assistant" for b in e["message"]["content"]]
    return Usage(
        # Qwen's input_tokens holds the cached tokens; total = input + output
        input_tokens=usage["input_tokens"] - usage["cache_read_input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_tokens=usage["cache_read_input_tokens"],
        reasoning_tokens=usage.get("total_tokens", 0)
        - usage["input_tokens"]
        - usage["output_tokens"]
        if usage.get("total_tokens")
        else 0,
        tool_calls=sum(b["type"] == "tool_use" for b in blocks),
        turns=result["num_turns"],
    )


def opencode_reported(case: str) -> Usage:
    events = jsonl(recorded("opencode", case, ".out"))
    steps = [e["part"]["tokens"] for e in events if e["type"] == "step_finish"]
    calls = {e["part"]["callID"] for e in events if e["type"] == "tool_use"}
    return Usage(
        input_tokens=sum(t["input"] for t in steps),
        # OpenCode reports reasoning apart from output; corral counts it inside
        output_tokens=sum(t["output"] + t["reasoning"] for t in steps),
        cache_read_tokens=sum(t["cache"]["read"] for t in steps),
        cache_write_5m_tokens=sum(t["cache"]["write"] for t in steps),
        reasoning_tokens=sum(t["reasoning"] for t in steps),
        tool_calls=len(calls),
        turns=len(steps),
    )


def copilot_reported(case: str) -> Usage:
    (shutdown,) = [
        e for e in jsonl(recorded("copilot", case, ".session")) if "shutdown" in e["type"]
    ]
    (metrics,) = shutdown["data"]["accountingSnapshot"]["modelMetrics"].values()
    usage = metrics["usage"]
    stdout = jsonl(recorded("copilot", case, ".out"))
    return Usage(
        input_tokens=usage["inputTokens"] - usage["cacheReadTokens"] - usage["cacheWriteTokens"],
        output_tokens=usage["outputTokens"],
        cache_read_tokens=usage["cacheReadTokens"],
        cache_write_5m_tokens=usage["cacheWriteTokens"],
        reasoning_tokens=usage["reasoningTokens"],
        tool_calls=sum(e["type"] == "tool.execution_start" for e in stdout),
        turns=sum(e["type"] == "assistant.turn_start" for e in stdout),
    )


REPORTED = {"qwen": qwen_reported, "opencode": opencode_reported, "copilot": copilot_reported}
TOOLS = tuple(FORMATS)


# -- the cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
def test_recordings_say_where_they_came_from(tool: str) -> None:
    document = provenance(tool)
    assert (
        document["version"] == {"qwen": "0.24.4", "opencode": "1.18.33", "copilot": "1.0.102"}[tool]
    )
    assert set(document["cases"]) == {"text", "usage", "tool", "429", "401", "hang"}
    assert document["recorded_at"].startswith("2026-")


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("case", ["text", "usage", "tool"])
def test_tokens_equal_what_the_cli_reported(tool: str, case: str) -> None:
    events = parse(tool, case)
    assert final_usage(events) == {MODELS[tool]: REPORTED[tool](case)}
    (result,) = only(events, AgentResult)
    assert not result.is_error and result.text
    assert only(events, SessionStarted)[-1].session_id


@pytest.mark.parametrize("tool", TOOLS)
def test_chosen_usage_arrives_whole(tool: str) -> None:
    (usage,) = final_usage(parse(tool, "usage")).values()
    # every CLI here folds cache writes into its prompt count: they read as fresh input
    assert usage.input_tokens == CHOSEN["input"] + CHOSEN["cache_write"]
    assert usage.output_tokens == CHOSEN["output"]
    assert usage.cache_read_tokens == CHOSEN["cache_read"]
    # Qwen's stream-json has no reasoning count (its total is input + output)
    assert usage.reasoning_tokens == (0 if tool == "qwen" else CHOSEN["reasoning"])


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_round_trip(tool: str) -> None:
    events = parse(tool, "tool")
    (call,) = only(events, ToolCall)
    assert call.name == {"qwen": "run_shell_command", "opencode": "bash", "copilot": "bash"}[tool]
    assert only(events, ToolResult) == [ToolResult(call_id=call.call_id)]
    (usage,) = final_usage(events).values()
    assert (usage.tool_calls, usage.turns) == (1, 2)  # the call, then the answer
    assert only(events, AgentResult)[0].text == "Ran it."


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(("case", "kind"), [("429", ErrorKind.RATE_LIMIT), ("401", ErrorKind.AUTH)])
def test_http_errors_have_their_kind(tool: str, case: str, kind: ErrorKind) -> None:
    events = parse(tool, case)
    (error,) = only(events, AgentError)
    assert (error.error_kind, error.status) == (kind, int(case))
    (result,) = only(events, AgentResult)
    assert result.is_error and result.error_kind is kind
    # no model call succeeded: nothing spent (Copilot's session log still says zero)
    assert all(u.total_tokens == 0 for e in only(events, UsageUpdated) for u in e.by_model.values())


def test_retries_each_cli_made_on_429() -> None:
    # the CLIs retry a 429 by themselves, whatever the settings say (the provider sends
    # retry-after: 1); Copilot says so on stdout, the others only by their request count
    assert {t: provenance(t)["cases"]["429"]["requests"] for t in TOOLS} == {
        "qwen": 7,
        "opencode": 6,
        "copilot": 6,
    }
    assert len(only(parse("copilot", "429"), RateLimited)) == 5


@pytest.mark.parametrize("tool", TOOLS)
def test_a_hung_run_killed_by_signal_is_no_success(tool: str) -> None:
    events = parse(tool, "hang")
    assert provenance(tool)["cases"]["hang"]["exit_code"] == -15
    (result,) = only(events, AgentResult)
    assert result.is_error
    assert not [e for e in only(events, UsageUpdated) if e.final and e.total.total_tokens]


def test_opencode_zero_cost_is_not_a_reported_cost() -> None:
    # a custom provider has no price in OpenCode, which then says `cost: 0`
    steps = [e for e in jsonl(recorded("opencode", "usage", ".out")) if e["type"] == "step_finish"]
    assert [s["part"]["cost"] for s in steps] == [0]
    finals = [e for e in only(parse("opencode", "usage"), UsageUpdated) if e.final]
    assert finals[0].cost is None and finals[0].cost_by_model == {}


def test_opencode_priced_steps_are_reported() -> None:
    lines = recorded("opencode", "tool", ".out")
    priced = [line.replace('"cost":0', '"cost":0.0125') for line in lines]
    parser = make_parser("opencode-json", model="corral/sim-model")
    events = [e for line in priced for e in parser.feed(line, "stdout")] + parser.finish(0)
    final = next(e for e in only(events, UsageUpdated) if e.final)
    assert final.cost is not None and final.cost.usd == Decimal("0.0250")
