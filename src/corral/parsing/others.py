"""Qwen Code, Cursor Agent and OpenCode: two Claude-shaped streams and OpenCode's own parts.

Shapes come from the CLIs' documentation and source (no recorded runs here):
- Qwen Code (`qwen -p X --output-format stream-json`) follows Claude's stream-json
  (QwenLM/qwen-code packages/cli/src/nonInteractive/types.ts): `system` with subtype
  `session_start` (or `init`), `assistant`/`user` messages with content blocks, and
  `result{is_error, num_turns, usage, modelUsage?, stats?, error?}`. Its usage is built
  from Gemini-style counts (nonInteractiveHelpers.computeUsageFromMetrics):
  `input_tokens` is the whole prompt including `cache_read_input_tokens`, output is
  `candidates`, and `total_tokens` also holds the thoughts. No cost.
- Cursor Agent (`cursor-agent -p --output-format stream-json`, cursor.com/docs/cli/
  reference/output-format) mirrors Claude's `system/init`, `assistant`, `user`, `result`,
  and adds `tool_call{subtype: started|completed, call_id, tool_call{<kind>ToolCall{args,
  result}}}`. Its documented output has no token counts and no cost, so corral records
  none. On a failure the stream just stops and the message is on stderr. Unverified: the
  CLI cannot be installed here (see tests/data/parsing/others/README.md).
- OpenCode (`opencode run --format json`, packages/opencode/src/cli/cmd/run.ts):
  `{type, timestamp, sessionID, part|error}` with types `step_start`, `text`,
  `tool_use` (part.tool, part.callID, part.state.status), `step_finish`
  (part.tokens{input, output, reasoning, cache{read, write}}, part.cost) and `error`
  (error{name, data{message, statusCode}}). Input excludes cache; reasoning is
  reported apart from output; each step's cost is OpenCode's own pricing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from corral.events.types import (
    AgentResult,
    AssistantText,
    Event,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import Cost, CostSource, Usage
from corral.parsing.base import (
    UNKNOWN_MODEL,
    BaseParser,
    as_dict,
    as_int,
    as_str,
    failure,
    find_status,
    kind_of_message,
    money,
    opt_int,
    status_kind,
)
from corral.parsing.claude import ClaudeStreamParser
from corral.parsing.gemini import stats_by_model


def qwen_usage(usage: dict[str, Any]) -> Usage:
    """Qwen's Claude-named usage with Gemini meaning (see the module docstring)."""
    prompt = as_int(usage.get("input_tokens"))
    cached = as_int(usage.get("cache_read_input_tokens"))
    output = as_int(usage.get("output_tokens"))
    total = as_int(usage.get("total_tokens"))
    thoughts = max(total - prompt - output, 0) if total else 0
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=output + thoughts,
        cache_read_tokens=cached,
        cache_write_5m_tokens=as_int(usage.get("cache_creation_input_tokens")),
        reasoning_tokens=thoughts,
    )


class QwenStreamParser(ClaudeStreamParser):
    """Qwen Code stream-json: Claude's events, Gemini's token accounting."""

    init_subtypes = ("init", "session_start")

    def message_usage(self, usage: dict[str, Any]) -> Usage:
        return qwen_usage(usage)

    def final_usage(self, obj: dict[str, Any]) -> UsageUpdated | None:
        # per-model `stats` (json format) when present, else the run's `usage` under the
        # session's model; Qwen reports no cost, so corral prices it
        by_model, main = stats_by_model(as_dict(obj.get("stats")))
        if not by_model:
            usage = obj.get("usage")
            if not isinstance(usage, dict):
                return None
            by_model = {self.model or self.model_hint or UNKNOWN_MODEL: qwen_usage(usage)}
        main = main or self.primary_model(by_model)
        turns = opt_int(obj.get("num_turns"))
        extra = {"tool_calls": self.tool_calls, "turns": turns if turns is not None else self.turns}
        by_model[main] = Usage(**{**by_model[main].to_dict(), **extra})
        return UsageUpdated(by_model=by_model, final=True)


class CursorStreamParser(ClaudeStreamParser):
    """Cursor Agent stream-json: Claude's envelope plus `tool_call` started/completed."""

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        if obj.get("type") == "tool_call":
            return self.on_tool_call(obj)
        return super().on_object(obj, line)

    def on_tool_call(self, obj: dict[str, Any]) -> list[Event]:
        call_id = as_str(obj.get("call_id"))
        kind, body = next(iter(as_dict(obj.get("tool_call")).items()), ("tool", {}))
        if obj.get("subtype") == "started":
            self.tool_calls += 1
            return [ToolCall(name=_cursor_tool_name(kind, as_dict(body)), call_id=call_id)]
        if obj.get("subtype") != "completed":
            return []
        result = as_dict(as_dict(body).get("result"))
        outcome = next(iter(result), "success")
        success = as_dict(result.get("success"))
        exit_code = success.get("exitCode")
        failed = outcome != "success" or (isinstance(exit_code, int) and exit_code != 0)
        denied = outcome in ("rejected", "permissionDenied", "denied")
        return [ToolResult(call_id=call_id, is_error=failed, permission_denied=denied)]

    def final_usage(self, obj: dict[str, Any]) -> UsageUpdated | None:
        return None  # the documented result carries no token counts


def _cursor_tool_name(kind: str, body: dict[str, Any]) -> str:
    if kind == "function":  # MCP and other tools: {"function": {"name": ..., "arguments": ...}}
        return as_str(body.get("name")) or kind
    return kind.removesuffix("ToolCall") or kind


def opencode_usage(tokens: dict[str, Any]) -> Usage:
    """One step's tokens; reasoning is added to output (corral counts it as part of output)."""
    cache = as_dict(tokens.get("cache"))
    reasoning = as_int(tokens.get("reasoning"))
    return Usage(
        input_tokens=as_int(tokens.get("input")),
        output_tokens=as_int(tokens.get("output")) + reasoning,
        cache_read_tokens=as_int(cache.get("read")),
        cache_write_5m_tokens=as_int(cache.get("write")),
        reasoning_tokens=reasoning,
        turns=1,
    )


class OpenCodeParser(BaseParser):
    """`opencode run --format json`. No event names the model: usage is keyed by the
    model given to `make_parser`, else `unknown`; the summed step costs are reported."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.session_id: str | None = None
        self.last_text: str | None = None
        self.total = Usage()
        self.cost: Decimal | None = None
        self.tool_calls = 0
        self.steps = 0
        self.result_sent = False
        self._calls: set[str] = set()

    def usage(self, *, final: bool = False) -> UsageUpdated:
        usage = Usage(**{**self.total.to_dict(), "tool_calls": self.tool_calls})
        key = self.model_hint or UNKNOWN_MODEL
        # OpenCode says `cost: 0` for a model it has no price for (any custom provider) as
        # for a free one: a zero is not a reported cost, corral prices the tokens itself
        cost = Cost(self.cost, CostSource.REPORTED) if self.cost else None
        by_cost = {key: self.cost} if self.cost else {}
        return UsageUpdated(by_model={key: usage}, final=final, cost=cost, cost_by_model=by_cost)

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        """The model OpenCode used when the flow named none (from its session database)."""
        if not model or model == self.model_hint:
            return []
        self.model_hint = model
        return [SessionStarted(session_id=self.session_id, model=model, model_source=source)]

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        events: list[Event] = []
        session = as_str(obj.get("sessionID"))
        if session and self.session_id is None:
            self.session_id = session
            events.append(SessionStarted(session_id=session, model=self.model_hint))
        part = as_dict(obj.get("part"))
        kind = obj.get("type")
        if kind == "text":
            text = as_str(part.get("text"))
            if text:
                self.last_text = text
                events.append(AssistantText(text=text))
        elif kind == "tool_use":
            events += self.on_tool(part)
        elif kind == "step_finish":
            events += self.on_step(part)
        elif kind == "error":
            events += self.on_error(as_dict(obj.get("error")))
        return events

    def on_tool(self, part: dict[str, Any]) -> list[Event]:
        state = as_dict(part.get("state"))
        status = state.get("status")
        call_id = as_str(part.get("callID"))
        events: list[Event] = []
        if call_id is None or call_id not in self._calls:  # a tool may be reported per state
            self._calls.add(call_id or "")
            self.tool_calls += 1
            events.append(ToolCall(name=as_str(part.get("tool")) or "tool", call_id=call_id))
        if status in ("completed", "error"):
            exit_code = as_dict(state.get("metadata")).get("exit")
            failed = status == "error" or (isinstance(exit_code, int) and exit_code != 0)
            error = (as_str(state.get("error")) or "").lower()
            denied = "permission" in error or "rejected" in error
            events.append(ToolResult(call_id=call_id, is_error=failed, permission_denied=denied))
        return events

    def on_step(self, part: dict[str, Any]) -> list[Event]:
        self.steps += 1
        self.total = self.total + opencode_usage(as_dict(part.get("tokens")))
        usd = money(part.get("cost"))
        if usd is not None:
            self.cost = (self.cost or Decimal(0)) + usd
        events: list[Event] = [self.usage()]
        if part.get("reason") == "stop" and not self.result_sent:
            self.result_sent = True
            events.append(
                AgentResult(text=self.last_text, num_turns=self.steps, session_id=self.session_id)
            )
        return events

    def on_error(self, error: dict[str, Any]) -> list[Event]:
        if self.result_sent:
            return []
        self.result_sent = True
        data = as_dict(error.get("data"))
        message = (
            as_str(data.get("message"))
            or as_str(error.get("message"))
            or as_str(error.get("name"))
            or "error"
        )
        status = opt_int(data.get("statusCode"))
        kind, found = (
            (status_kind(status), status) if status is not None else kind_of_message(message)
        )
        return failure(
            kind, message, found, text=message, num_turns=self.steps, session_id=self.session_id
        )

    def on_finish(self, exit_code: int | None) -> list[Event]:
        events: list[Event] = [self.usage(final=True)] if self.steps else []
        if self.result_sent:
            return events
        return events + self.exit_failure(
            exit_code, text=self.last_text, num_turns=self.steps or None, session_id=self.session_id
        )


__all__ = ["CursorStreamParser", "OpenCodeParser", "QwenStreamParser", "find_status"]
