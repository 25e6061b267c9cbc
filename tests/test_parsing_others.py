"""Qwen Code, OpenCode and Cursor Agent parsers, and the plain-text `generic` parser.

There is no recording of the first three here: tests/data/parsing/others holds small
streams written after each CLI's documented shapes (sources in that folder's README and
in the docstring of corral.parsing.others).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from corral.events.types import (
    AgentError,
    AgentResult,
    AssistantText,
    Event,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import CostSource, ErrorKind, Usage
from corral.parsing import FORMATS, UNKNOWN_MODEL, UnknownFormatError, make_parser


def feed_all(
    fmt: str,
    stdout: list[str],
    stderr: tuple[str, ...] = (),
    exit_code: int | None = 0,
    model: str | None = None,
) -> tuple[list[Event], int]:
    parser = make_parser(fmt, model=model)
    events = [e for line in stdout for e in parser.feed(line, "stdout")]
    events += [e for line in stderr for e in parser.feed(line, "stderr")]
    return events + parser.finish(exit_code), parser.unparsed


def lines(data_dir: Path, name: str) -> list[str]:
    return (data_dir / "parsing" / "others" / name).read_text().splitlines()


def only(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def last_usage(events: list[Event]) -> UsageUpdated:
    usage = only(events, UsageUpdated)[-1]
    assert isinstance(usage, UsageUpdated)
    return usage


def the_result(events: list[Event]) -> AgentResult:
    (result,) = only(events, AgentResult)
    assert isinstance(result, AgentResult)
    return result


# -- registry --------------------------------------------------------------------------------


def test_formats_and_unknown_format() -> None:
    # the `corral.parsers` entry points corral registers, sorted
    assert FORMATS == (
        "claude-json",
        "claude-stream-json",
        "codex-jsonl",
        "copilot-jsonl",
        "cursor-stream-json",
        "gemini-json",
        "gemini-stream-json",
        "generic",
        "opencode-json",
        "qwen-stream-json",
    )
    for fmt in FORMATS:
        assert make_parser(fmt).unparsed == 0
    with pytest.raises(ValueError, match="unknown output format 'nope'") as caught:
        make_parser("nope")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, UnknownFormatError)


def test_finish_twice_reports_once() -> None:
    parser = make_parser("claude-stream-json")
    assert len(parser.finish(1)) == 2
    assert parser.finish(1) == []


# -- Qwen Code -------------------------------------------------------------------------------


def test_qwen_stream_follows_claude_events_with_gemini_counts(data_dir: Path) -> None:
    events, unparsed = feed_all("qwen-stream-json", lines(data_dir, "qwen_stream.jsonl"))
    assert unparsed == 0
    assert only(events, SessionStarted) == [
        SessionStarted(session_id="qwen-session-1", model="qwen3-coder-plus")
    ]
    assert [e.name for e in only(events, ToolCall)] == ["run_shell_command"]  # type: ignore[attr-defined]  # filtered to ToolCall
    assert only(events, ToolResult) == [ToolResult(call_id="call_qwen_1")]
    final = last_usage(events)
    # usage: input 2500 includes 2200 cached; total 2560 - 2500 - 28 = 32 thought tokens
    assert final.final and final.cost is None
    assert final.by_model == {
        "qwen3-coder-plus": Usage(
            input_tokens=300,
            output_tokens=60,
            cache_read_tokens=2200,
            reasoning_tokens=32,
            tool_calls=1,
            turns=2,
        )
    }
    assert final.total.total_tokens == 2560
    assert the_result(events).text == "The command printed: hello-from-mock-tool"


def test_qwen_live_usage_excludes_cached_input(data_dir: Path) -> None:
    events, _ = feed_all("qwen-stream-json", lines(data_dir, "qwen_stream.jsonl")[:2])
    live = last_usage(events)
    assert not live.final
    assert live.total.input_tokens == 200 and live.total.cache_read_tokens == 1000


def test_qwen_error_result(data_dir: Path) -> None:
    events, _ = feed_all("qwen-stream-json", lines(data_dir, "qwen_error_429.jsonl"), exit_code=1)
    (error,) = only(events, AgentError)
    assert isinstance(error, AgentError)
    assert (error.error_kind, error.status) == (ErrorKind.RATE_LIMIT, 429)
    result = the_result(events)
    assert result.is_error and result.error_kind is ErrorKind.RATE_LIMIT


# -- OpenCode --------------------------------------------------------------------------------


def test_opencode_sums_steps_and_their_costs(data_dir: Path) -> None:
    events, unparsed = feed_all(
        "opencode-json", lines(data_dir, "opencode.jsonl"), model="anthropic/claude-sonnet-4-5"
    )
    assert unparsed == 0
    assert only(events, SessionStarted) == [
        SessionStarted(
            session_id="ses_494719016ffe85dkDMj0FPRbHK", model="anthropic/claude-sonnet-4-5"
        )
    ]
    assert only(events, ToolCall) == [ToolCall(name="bash", call_id="r9bQWsNLvOrJGIOz")]
    assert only(events, ToolResult) == [ToolResult(call_id="r9bQWsNLvOrJGIOz")]
    assert only(events, AssistantText) == [AssistantText(text="```\nhello\n```")]
    final = last_usage(events)
    assert final.final
    assert final.by_model == {
        "anthropic/claude-sonnet-4-5": Usage(
            input_tokens=21772 + 671,
            output_tokens=110 + 8 + 4,  # reasoning is reported apart; corral counts it in output
            cache_read_tokens=21415,
            reasoning_tokens=4,
            tool_calls=1,
            turns=2,
        )
    }
    assert final.cost is not None and final.cost.source is CostSource.REPORTED
    assert final.cost.usd == Decimal("0.0679")
    result = the_result(events)
    assert result.text == "```\nhello\n```" and not result.is_error and result.num_turns == 2


def test_opencode_error_event(data_dir: Path) -> None:
    events, _ = feed_all("opencode-json", lines(data_dir, "opencode_error_429.jsonl"), exit_code=1)
    (error,) = only(events, AgentError)
    assert isinstance(error, AgentError)
    assert (error.error_kind, error.status, error.message) == (
        ErrorKind.RATE_LIMIT,
        429,
        "Rate limit exceeded",
    )
    assert the_result(events).is_error
    assert only(events, UsageUpdated) == []  # no step finished: nothing spent to report


# -- Cursor Agent ----------------------------------------------------------------------------


def test_cursor_documented_stream(data_dir: Path) -> None:
    """Documented example only (the CLI cannot be installed here): shapes from Cursor's
    output-format reference, values of our own."""
    stream = lines(data_dir, "cursor_documented.jsonl")
    events, unparsed = feed_all("cursor-stream-json", stream)
    assert unparsed == 0
    session = "5f1c9a3e-2b7d-4e0a-9c44-0d6a8e2f7b10"
    assert only(events, SessionStarted) == [
        SessionStarted(session_id=session, model="Claude 4 Sonnet")
    ]
    assert only(events, ToolCall) == [
        ToolCall(name="read", call_id="call-read-1"),
        ToolCall(name="write", call_id="call-write-2"),
    ]
    assert only(events, ToolResult) == [
        ToolResult(call_id="call-read-1"),
        ToolResult(call_id="call-write-2"),
    ]
    assert [e.text for e in only(events, AssistantText)] == [  # type: ignore[attr-defined]  # filtered
        "I will read the README first.",
        "Wrote summary.txt.",
    ]
    # the documented result has no token counts: corral reports none rather than guess
    assert [e for e in only(events, UsageUpdated) if e.final] == []  # type: ignore[attr-defined]  # filtered
    result = the_result(events)
    assert not result.is_error and result.session_id == session
    assert result.text == "I will read the README first.Wrote summary.txt."


def test_cursor_documented_failure_is_on_stderr_without_a_result(data_dir: Path) -> None:
    """Documented behaviour: on failure the stream stops early, the message is on stderr."""
    stream = lines(data_dir, "cursor_documented.jsonl")[:5]
    events, _ = feed_all(
        "cursor-stream-json", stream, stderr=("Error: request failed with status 401",), exit_code=1
    )
    (error,) = only(events, AgentError)
    assert isinstance(error, AgentError)
    assert (error.error_kind, error.status) == (ErrorKind.AUTH, 401)
    assert the_result(events).is_error


# -- generic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            ["done", "Input tokens: 1,200", "Output tokens: 34"],
            Usage(input_tokens=1200, output_tokens=34),
        ),
        (
            ["usage: input_tokens=12 output_tokens=5 cached_tokens=7"],
            Usage(input_tokens=12, output_tokens=5, cache_read_tokens=7),
        ),
        (["Total tokens: 9_999"], Usage(input_tokens=9999)),
        (["tokens used", "1,574"], Usage(input_tokens=1574)),
        (["tokens used: 42"], Usage(input_tokens=42)),
    ],
)
def test_generic_reads_printed_token_counts(output: list[str], expected: Usage) -> None:
    events, unparsed = feed_all("generic", output)
    assert unparsed == 0
    final = last_usage(events)
    assert final.final and final.by_model == {UNKNOWN_MODEL: expected}


def test_generic_without_counts_emits_no_usage() -> None:
    events, _ = feed_all("generic", ["5 failed, 400 passed", ""], exit_code=1)
    assert only(events, UsageUpdated) == []
    (error,) = only(events, AgentError)
    assert isinstance(error, AgentError)
    assert error.error_kind is ErrorKind.EXIT and error.status is None  # "400" is not a status here
    result = the_result(events)
    assert result.text == "5 failed, 400 passed" and result.is_error


def test_generic_killed_job_leaves_the_kind_to_the_runner() -> None:
    events, _ = feed_all("generic", ["working"], exit_code=None)
    assert only(events, AgentError) == []
    assert the_result(events) == AgentResult(text="working", is_error=True)
