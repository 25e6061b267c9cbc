"""Every recorded output of the real CLIs (tests/data/parsing, copied from the shared
fixtures) through its parser: totals per model, status, error kind, session, tool calls.

The expected token totals are recomputed here from the raw JSON, independently of the
parsers, so the accuracy bar is checked against the CLI's own figures.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
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
    UsageUpdated,
)
from corral.models import CostSource, ErrorKind, Usage
from corral.parsing import make_parser
from corral.parsing.base import without_float_noise

HERE = Path(__file__).parent / "data" / "parsing"


def replay(fmt: str, path: Path, exit_code: int | None) -> tuple[list[Event], int]:
    """Feed a capture's stdout, then its stderr, then finish; return events and unparsed."""
    parser = make_parser(fmt)
    events: list[Event] = []
    if path.exists():
        for line in path.read_text().splitlines():
            events += parser.feed(line, "stdout")
    stderr = path.with_name(path.name.rsplit(".", 1)[0] + ".stderr.txt")
    if stderr.exists():
        for line in stderr.read_text().splitlines():
            events += parser.feed(line, "stderr")
    events += parser.finish(exit_code)
    return events, parser.unparsed


def exit_codes() -> dict[str, int]:
    with (HERE / "exit_codes.tsv").open() as f:
        return {row["capture"]: int(row["exit_code"]) for row in csv.DictReader(f, delimiter="\t")}


def final_usage(events: list[Event]) -> UsageUpdated | None:
    usages = [e for e in events if isinstance(e, UsageUpdated)]
    return usages[-1] if usages else None


def results(events: list[Event]) -> list[AgentResult]:
    return [e for e in events if isinstance(e, AgentResult)]


@dataclass(frozen=True)
class Case:
    file: str
    fmt: str
    error: ErrorKind | None = None
    status: int | None = None
    session: str | None = None
    tools: tuple[str, ...] = ()
    text: str | None = None
    rate_limited: int = 0
    denials: tuple[str, ...] = ()
    exit_code: int | None = field(default=None)


HELLO_CLAUDE = "Hello from the mock Anthropic API!"
CASES = [
    # Claude Code
    Case(
        "claude/claude_json.txt",
        "claude-json",
        session="12210ef7-5b4e-4499-84f2-7a39e6bc1924",
        text=HELLO_CLAUDE,
    ),
    Case("claude/claude_sonnet_json.txt", "claude-json", text=HELLO_CLAUDE),
    Case("claude/claude_unknown_model.json", "claude-json", text=HELLO_CLAUDE),
    Case(
        "claude/claude_tool_json.txt",
        "claude-json",
        text="The command printed: hello-from-mock-tool",
    ),
    Case(
        "claude/claude_stream.jsonl",
        "claude-stream-json",
        session="4a0a7812-8caa-47fc-a212-fc0879d89dba",
        text=HELLO_CLAUDE,
    ),
    Case("claude/claude_stream_partial.jsonl", "claude-stream-json", text=HELLO_CLAUDE),
    Case(
        "claude/claude_tool_stream.jsonl",
        "claude-stream-json",
        tools=("Bash",),
        session="b2d82340-6df7-4b55-bf90-ae23da997515",
    ),
    Case(
        "claude/claude_flaky429_stream.jsonl",
        "claude-stream-json",
        rate_limited=1,
        text=HELLO_CLAUDE,
    ),
    Case("claude/claude_permission_denied.json", "claude-json", denials=("Bash",)),
    Case("claude/claude_max_turns.json", "claude-json", ErrorKind.MAX_TURNS),
    Case("claude/claude_max_budget.json", "claude-json", ErrorKind.MAX_BUDGET),
    Case("claude/claude_error_400.txt", "claude-json", ErrorKind.API, 400),
    Case("claude/claude_error_401.txt", "claude-json", ErrorKind.AUTH, 401),
    Case("claude/claude_error_429.txt", "claude-json", ErrorKind.RATE_LIMIT, 429),
    Case(
        "claude/claude_error_429_default_retries.txt",
        "claude-json",
        ErrorKind.RATE_LIMIT,
        429,
        exit_code=1,
    ),
    Case("claude/claude_error_500.txt", "claude-json", ErrorKind.API, 500),
    Case(
        "claude/claude_error_500_default_retries.txt",
        "claude-json",
        ErrorKind.API,
        500,
        exit_code=1,
    ),
    Case("claude/claude_error_529.txt", "claude-json", ErrorKind.API, 529),
    Case(
        "claude/claude_error_529_default_retries.txt",
        "claude-json",
        ErrorKind.API,
        529,
        exit_code=1,
    ),
    Case(
        "claude/claude_error_401_stream.jsonl",
        "claude-stream-json",
        ErrorKind.AUTH,
        401,
        session="6169d4f2-4ba9-4363-8fde-c0c2267154eb",
    ),
    Case("claude/claude_text.txt", "generic", text=HELLO_CLAUDE),
    Case("claude/claude_error_429_text.txt", "generic", ErrorKind.RATE_LIMIT, 429),
    # Codex
    Case(
        "codex/codex_exec.jsonl",
        "codex-jsonl",
        session="01a1fd77-e044-7942-8ddb-9abe7c927aaf",
        text="Hello from the mock OpenAI Responses API!",
    ),
    Case("codex/codex_exec_gpt55.jsonl", "codex-jsonl"),
    Case(
        "codex/codex_exec_unknown_model.jsonl",
        "codex-jsonl",
        text="Hello from the mock OpenAI Responses API!",
    ),
    Case("codex/codex_exec_tool.jsonl", "codex-jsonl", tools=("command_execution",)),
    Case("codex/codex_error_400.jsonl", "codex-jsonl", ErrorKind.API, None),
    Case(
        "codex/codex_error_401.jsonl",
        "codex-jsonl",
        ErrorKind.AUTH,
        401,
        session="01a1fd77-ebe4-70d1-a26b-fc6401f76609",
    ),
    Case("codex/codex_error_429.jsonl", "codex-jsonl", ErrorKind.RATE_LIMIT, 429),
    Case(
        "codex/codex_error_429_default_retries.jsonl",
        "codex-jsonl",
        ErrorKind.RATE_LIMIT,
        429,
        rate_limited=5,
    ),
    Case("codex/codex_error_500.jsonl", "codex-jsonl", ErrorKind.API),
    Case("codex/codex_error_500_default_retries.jsonl", "codex-jsonl", ErrorKind.API),
    Case("codex/codex_error_failed_stream.jsonl", "codex-jsonl", ErrorKind.API),
    # Codex's own stream_idle_timeout_ms fired (recorded by issue 18): idle, as the watchdog
    Case("codex/codex_idle_timeout.jsonl", "codex-jsonl", ErrorKind.IDLE, exit_code=1),
    # no model named: Codex used its default (its rollout file says gpt-6.1-sol)
    Case(
        "codex/codex_default_model.jsonl",
        "codex-jsonl",
        session="01a23b10-a7c8-7a60-8ec8-dadb2d82b400",
        text="Hello from the corral simulated provider!",
        exit_code=0,
    ),
    Case("codex/codex_text.txt", "generic", text="hello-from-mock-tool"),
    # Gemini CLI
    Case(
        "gemini/gemini_json.json",
        "gemini-json",
        session="e1b4fced-96fd-4ee9-9956-ec8d8ae239c8",
        text="Hello from the mock Gemini API!",
    ),
    Case("gemini/gemini_pro_json.json", "gemini-json"),
    Case("gemini/gemini_tool_json.json", "gemini-json"),
    Case(
        "gemini/gemini_stream.jsonl",
        "gemini-stream-json",
        session="d42dc4bc-5dbc-4bdf-9f0a-0792d0003e19",
        text="Hello from the mock Gemini API!",
    ),
    Case("gemini/gemini_tool_stream.jsonl", "gemini-stream-json", tools=("run_shell_command",)),
    Case("gemini/gemini_tool_noyolo_stream.jsonl", "gemini-stream-json", tools=("list_directory",)),
    Case(
        "gemini/gemini_error_400.json",
        "gemini-json",
        ErrorKind.API,
        400,
        session="7e5194f1-050e-4f52-bd3a-ec07ac21d08b",
    ),
    Case("gemini/gemini_error_401.json", "gemini-json", ErrorKind.AUTH, 401),
    Case("gemini/gemini_error_429.json", "gemini-json", ErrorKind.RATE_LIMIT, 429),
    Case("gemini/gemini_error_500.json", "gemini-json", ErrorKind.API, 500),
    Case("gemini/gemini_error_503.json", "gemini-json", ErrorKind.API, 503),
    Case(
        "gemini/gemini_error_429_default_retries.json",
        "gemini-json",
        ErrorKind.RATE_LIMIT,
        429,
        rate_limited=9,
        exit_code=173,
    ),
    Case(
        "gemini/gemini_error_500_default_retries.json",
        "gemini-json",
        ErrorKind.API,
        500,
        exit_code=244,
    ),
    Case(
        "gemini/gemini_error_503_default_retries.json",
        "gemini-json",
        ErrorKind.API,
        503,
        exit_code=247,
    ),
    Case(
        "gemini/gemini_gateway_auth_error.json",
        "gemini-json",
        ErrorKind.AUTH,
        session="34bc60a0-28e4-44b3-a139-47fe338a59d9",
    ),
    Case("gemini/gemini_untrusted_dir.txt", "gemini-json", ErrorKind.PERMISSION),
    Case("gemini/gemini_error_500_stream.jsonl", "gemini-stream-json", ErrorKind.API, 500),
    Case("gemini/gemini_error_500_text.txt", "generic", ErrorKind.EXIT),
    Case("gemini/gemini_text.txt", "generic", text="Hello from the mock Gemini API!"),
]


def test_every_capture_has_a_case() -> None:
    covered = {case.file for case in CASES}
    captures = {
        f"{p.parent.name}/{p.name}"
        for d in ("claude", "codex", "gemini")
        for p in (HERE / d).iterdir()
        if not p.name.endswith(".stderr.txt")
        and p.name != "codex_last_message.txt"
        and not p.name.startswith("PROVENANCE")
    }
    stderr_only = {
        f"{p.parent.name}/{p.name.removesuffix('.stderr.txt')}.json"
        for p in HERE.glob("gemini/*default_retries.stderr.txt")
    }
    assert captures | stderr_only == covered


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_capture_outcome(case: Case) -> None:
    name = Path(case.file).name
    exit_code = case.exit_code if case.exit_code is not None else exit_codes()[name]
    events, unparsed = replay(case.fmt, HERE / case.file, exit_code)

    assert unparsed == 0
    (result,) = results(events)
    assert result.is_error is (case.error is not None)
    assert result.error_kind == case.error
    errors = [e for e in events if isinstance(e, AgentError)]
    if case.error is None:
        assert errors == []
    else:
        (error,) = errors
        assert (error.error_kind, error.status) == (case.error, case.status)
        assert events.index(error) < events.index(result)  # the error comes first
    if case.session is not None:
        assert result.session_id == case.session or any(
            isinstance(e, SessionStarted) and e.session_id == case.session for e in events
        )
    assert tuple(e.name for e in events if isinstance(e, ToolCall)) == case.tools
    if case.text is not None:
        assert result.text == case.text
    assert sum(isinstance(e, RateLimited) for e in events) == case.rate_limited
    assert result.permission_denials == case.denials


# -- accuracy: the parsers' totals against the CLIs' own figures ----------------------------


def claude_result(path: Path) -> dict[str, Any]:
    for line in path.read_text().splitlines():
        obj = json.loads(line, parse_float=Decimal)
        if obj.get("type") == "result":
            return dict(obj)
    raise AssertionError(f"no result in {path}")


CLAUDE = sorted(
    p
    for p in (HERE / "claude").iterdir()
    if p.suffix in (".txt", ".json", ".jsonl")
    and "text" not in p.name
    and not p.name.endswith(".stderr.txt")
)


@pytest.mark.parametrize("path", CLAUDE, ids=lambda p: p.name)
def test_claude_cost_and_tokens_are_the_cli_figures(path: Path) -> None:
    fmt = "claude-stream-json" if path.suffix == ".jsonl" else "claude-json"
    events, _ = replay(fmt, path, 0)
    final = final_usage(events)
    expected = claude_result(path)

    assert final is not None and final.final and final.cost is not None
    assert final.cost.source is CostSource.REPORTED
    # the CLI's digits, less the binary-float noise of its own sums (0.09242800000000001)
    assert final.cost.usd == without_float_noise(Decimal(expected["total_cost_usd"]))
    assert str(final.cost.usd) == str(without_float_noise(Decimal(expected["total_cost_usd"])))
    assert abs(final.cost.usd - expected["total_cost_usd"]) < Decimal("1e-15")
    for model, entry in expected["modelUsage"].items():
        assert final.cost_by_model[model] == without_float_noise(Decimal(entry["costUSD"]))
    # `usage` is the main loop's count and `modelUsage` what the CLI priced; they agree
    # except on error_max_budget_usd, where `usage` is all zero although the cost is
    # not: corral keeps, field by field, the larger of the two
    usage = expected["usage"]
    priced = [
        sum(m[key] for m in expected["modelUsage"].values())
        for key in (
            "inputTokens",
            "outputTokens",
            "cacheReadInputTokens",
            "cacheCreationInputTokens",
        )
    ]
    total = final.total
    assert total.input_tokens == max(usage["input_tokens"], priced[0])
    assert total.output_tokens == max(usage["output_tokens"], priced[1])
    assert total.cache_read_tokens == max(usage["cache_read_input_tokens"], priced[2])
    assert total.cache_write_tokens == max(usage["cache_creation_input_tokens"], priced[3])
    if "max_budget" not in path.name:
        assert (total.input_tokens, total.output_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
        )
    assert total.turns == expected["num_turns"] or not final.by_model


CODEX = sorted((HERE / "codex").glob("*.jsonl"))


@pytest.mark.parametrize("path", CODEX, ids=lambda p: p.name)
def test_codex_tokens_are_the_turn_usage(path: Path) -> None:
    events, _ = replay("codex-jsonl", path, 0)
    turns = [
        json.loads(x)["usage"] for x in path.read_text().splitlines() if '"turn.completed"' in x
    ]
    final = final_usage(events)
    if not turns:
        assert final is None
        return
    assert final is not None and final.final and final.cost is None
    total = final.total
    cached = sum(t["cached_input_tokens"] for t in turns)
    written = sum(t["cache_write_input_tokens"] for t in turns)
    assert total.input_tokens == sum(t["input_tokens"] for t in turns) - cached - written
    assert total.cache_read_tokens == cached
    assert total.cache_write_5m_tokens == written
    assert total.output_tokens == sum(t["output_tokens"] for t in turns)
    assert total.reasoning_tokens == sum(t["reasoning_output_tokens"] for t in turns)
    assert total.turns == len(turns)


def test_codex_budget_tokens_match_what_codex_prints_as_tokens_used() -> None:
    # the same tool scenario in text mode printed "tokens used 1,574"
    events, _ = replay("codex-jsonl", HERE / "codex" / "codex_exec_tool.jsonl", 0)
    final = final_usage(events)
    assert final is not None and final.total.budget_tokens == 1574
    text_events, _ = replay("generic", HERE / "codex" / "codex_text.txt", 0)
    text_final = final_usage(text_events)
    assert text_final is not None and text_final.by_model == {"gpt-5.5": Usage(input_tokens=1574)}


def test_codex_model_comes_from_the_banner_or_the_job() -> None:
    parser = make_parser("codex-jsonl", model="gpt-5.5")
    lines = (HERE / "codex" / "codex_exec.jsonl").read_text().splitlines()
    events = [e for line in lines for e in parser.feed(line, "stdout")] + parser.finish(0)
    final = final_usage(events)
    assert final is not None and set(final.by_model) == {"gpt-5.5"}


GEMINI_JSON = sorted(p for p in (HERE / "gemini").glob("*.json") if p.stat().st_size)
GEMINI_STREAM = sorted((HERE / "gemini").glob("*.jsonl"))


@pytest.mark.parametrize("path", GEMINI_JSON, ids=lambda p: p.name)
def test_gemini_json_tokens_are_the_stats(path: Path) -> None:
    events, _ = replay("gemini-json", path, 0)
    final = final_usage(events)
    models = json.loads(path.read_text())["stats"]["models"]
    assert final is not None and final.final and set(final.by_model) == set(models)
    for name, entry in models.items():
        tokens, got = entry["tokens"], final.by_model[name]
        assert (
            got.input_tokens
            == tokens["input"] + tokens["tool"]
            == tokens["prompt"] - tokens["cached"]
        )
        assert got.cache_read_tokens == tokens["cached"]
        assert got.output_tokens == tokens["candidates"] + tokens["thoughts"]
        assert got.reasoning_tokens == tokens["thoughts"]
        assert got.total_tokens == tokens["total"]


@pytest.mark.parametrize("path", GEMINI_STREAM, ids=lambda p: p.name)
def test_gemini_stream_tokens_are_the_stats(path: Path) -> None:
    events, _ = replay("gemini-stream-json", path, 0)
    final = final_usage(events)
    stats = json.loads(path.read_text().splitlines()[-1])["stats"]
    assert final is not None and final.final
    for name, entry in stats["models"].items():
        got = final.by_model[name]
        assert got.input_tokens == entry["input"] == entry["input_tokens"] - entry["cached"]
        assert got.cache_read_tokens == entry["cached"]
        assert got.total_tokens == entry["total_tokens"]
        assert got.output_tokens >= entry["output_tokens"]
    assert final.total.total_tokens == stats["total_tokens"]
    assert final.total.tool_calls == stats["tool_calls"]


def test_gemini_router_tokens_stay_under_their_own_model() -> None:
    events, _ = replay("gemini-json", HERE / "gemini" / "gemini_json.json", 0)
    final = final_usage(events)
    assert final is not None
    assert final.by_model["gemini-3.5-flash-lite"] == Usage(input_tokens=850, output_tokens=20)
    session = next(e for e in events if isinstance(e, SessionStarted))
    assert session.model == "gemini-3.8-flash"  # the main role, not the router


def test_claude_live_usage_counts_each_message_once() -> None:
    parser = make_parser("claude-stream-json")
    lines = (HERE / "claude" / "claude_tool_stream.jsonl").read_text().splitlines()
    live: list[UsageUpdated] = []
    for line in lines[:-1]:  # everything before the result
        live += [e for e in parser.feed(line, "stdout") if isinstance(e, UsageUpdated)]
    # two API messages (text + tool_use share one id, then the answer): 12 + 9 input
    assert live[-1].total.input_tokens == 21
    assert live[-1].total.cache_write_tokens == 18432 + 210
    assert live[-1].total.tool_calls == 1
    assert not any(u.final for u in live)
