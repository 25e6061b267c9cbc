"""Codex `codex exec --json` (JSONL thread, turn and item events) into typed events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from corral.events.types import (
    AgentResult,
    AssistantText,
    ConnectionFailing,
    Event,
    RateLimited,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import ErrorKind, Usage
from corral.parsing.base import (
    UNKNOWN_MODEL,
    BaseParser,
    as_dict,
    as_int,
    as_str,
    failure,
    find_status,
    kind_of_message,
    tool_detail,
)

_BANNER_MODEL = re.compile(r"^model:\s*(\S+)\s*$")
# "Reconnecting... 2/5 (...)" and, once it gives up on a count, "Reconnecting... waiting
# for network (...)" every few seconds, for ever
_RECONNECTING = re.compile(r"^Reconnecting\.\.\.")
# Codex's own stream watchdog (`stream_idle_timeout_ms`): an idle stream, not an API error
_IDLE_TIMEOUT = re.compile(r"idle timeout", re.IGNORECASE)
_TOOL_ITEMS = frozenset({"command_execution", "mcp_tool_call", "web_search", "file_change"})


def turn_usage(usage: dict[str, Any]) -> Usage:
    """One `turn.completed.usage` in corral's convention.

    OpenAI's `input_tokens` counts every prompt token; cached reads and cache writes are
    breakdowns of it (`input_tokens_details`), so both are subtracted to get fresh input.
    `output_tokens` already includes `reasoning_output_tokens` (the Responses API's
    total_tokens is input + output), so reasoning stays a subset of output.
    """
    cached = as_int(usage.get("cached_input_tokens"))
    written = as_int(usage.get("cache_write_input_tokens"))
    return Usage(
        input_tokens=max(as_int(usage.get("input_tokens")) - cached - written, 0),
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        reasoning_tokens=as_int(usage.get("reasoning_output_tokens")),
        turns=1,
    )


class CodexParser(BaseParser):
    """`codex exec --json`. Codex prints no model name in this mode; the stderr banner of
    text mode (`model: gpt-5.5`) is read when present, else the model given to
    `make_parser`, else usage is keyed `unknown`."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.model: str | None = model
        self.session_id: str | None = None
        self.last_text: str | None = None
        self.total = Usage()
        self.tool_calls = 0
        self.turns_done = 0
        self.last_error: str | None = None
        self.result_sent = False
        self._started: set[str] = set()

    @property
    def key(self) -> str:
        return self.model or UNKNOWN_MODEL

    def usage(self, *, final: bool = False) -> UsageUpdated:
        usage = Usage(**{**self.total.to_dict(), "tool_calls": self.tool_calls})
        return UsageUpdated(by_model={self.key: usage}, final=final)

    def on_stderr(self, line: str) -> list[Event]:
        found = _BANNER_MODEL.match(line)
        if found:
            self.model = found.group(1)
        return []

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        kind = obj.get("type")
        if kind == "thread.started":
            self.session_id = as_str(obj.get("thread_id")) or self.session_id
            return [SessionStarted(session_id=self.session_id, model=self.model)]
        if kind in ("item.started", "item.updated", "item.completed"):
            return self.on_item(as_dict(obj.get("item")), completed=kind == "item.completed")
        if kind == "turn.completed":
            return self.on_turn_completed(as_dict(obj.get("usage")))
        if kind == "error":
            return self.on_error(as_str(obj.get("message")) or "")
        if kind == "turn.failed":
            message = (
                as_str(as_dict(obj.get("error")).get("message")) or self.last_error or "turn failed"
            )
            return self.fail(message)
        return []

    def on_item(self, item: dict[str, Any], *, completed: bool) -> list[Event]:
        item_type = item.get("type")
        item_id = as_str(item.get("id"))
        if item_type == "agent_message":
            text = as_str(item.get("text"))
            if completed and text:
                self.last_text = text
                return [AssistantText(text=text)]
            return []
        if item_type not in _TOOL_ITEMS:
            # `error` items are warnings (e.g. unknown model metadata); reasoning is not shown
            return []
        events: list[Event] = []
        if item_id is None or item_id not in self._started:
            if item_id is not None:
                self._started.add(item_id)
            self.tool_calls += 1
            detail = tool_detail(item) or tool_detail(item.get("arguments"))
            events.append(ToolCall(name=_tool_name(item), call_id=item_id, detail=detail))
        if completed:
            status = item.get("status")
            exit_code = item.get("exit_code")
            failed = status in ("failed", "declined") or (
                isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code != 0
            )
            events.append(
                ToolResult(
                    call_id=item_id,
                    is_error=failed or bool(item.get("error")),
                    permission_denied=status == "declined",
                )
            )
        return events

    def on_turn_completed(self, usage: dict[str, Any]) -> list[Event]:
        self.total = self.total + turn_usage(usage)
        self.turns_done += 1
        # `codex exec` runs one turn: its end is the agent's answer (lets a lingering
        # process be stopped); a later turn simply updates the same totals
        events: list[Event] = [self.usage()]
        if not self.result_sent:
            self.result_sent = True
            events.append(self.result())
        return events

    def result(self) -> AgentResult:
        return AgentResult(
            text=self.last_text, num_turns=self.turns_done, session_id=self.session_id
        )

    def on_error(self, message: str) -> list[Event]:
        retry = _RECONNECTING.match(message)
        if retry is None:
            self.last_error = message  # reported by the turn.failed that follows
            return []
        status = find_status(message)
        if status == 429:
            return [RateLimited(status=status, message=message, retrying=True)]
        if status is None:  # no answer at all: it cannot reach the API
            return [ConnectionFailing(message=message)]
        return []

    def fail(self, message: str) -> list[Event]:
        if self.result_sent:
            return []
        self.result_sent = True
        kind, status = kind_of_message(message)
        if status is None and _IDLE_TIMEOUT.search(message):
            kind = ErrorKind.IDLE
        return failure(
            kind,
            message,
            status,
            text=message,
            num_turns=self.turns_done,
            session_id=self.session_id,
        )

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        """The model Codex used when the flow named none (its session file or config):
        the final usage is keyed, and so priced, by it."""
        if not model or model == self.model:
            return []
        self.model = model
        return [SessionStarted(session_id=self.session_id, model=model, model_source=source)]

    def on_finish(self, exit_code: int | None) -> list[Event]:
        events: list[Event] = []
        if self.turns_done:
            events.append(self.usage(final=True))
        if self.result_sent:
            return events
        if exit_code not in (0, None) and self.last_error:
            return events + self.fail(self.last_error)
        return events + self.exit_failure(
            exit_code, text=self.last_text, num_turns=self.turns_done, session_id=self.session_id
        )


def _tool_name(item: dict[str, Any]) -> str:
    if item.get("type") == "mcp_tool_call":
        server, tool = as_str(item.get("server")), as_str(item.get("tool"))
        if tool:
            return f"{server}.{tool}" if server else tool
    return str(item.get("type"))
