"""Gemini CLI `--output-format stream-json` and `json`, including its errors on stderr."""

from __future__ import annotations

import re
from typing import Any

from corral.events.types import (
    AgentResult,
    AssistantText,
    Event,
    RateLimited,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import ErrorKind, Usage
from corral.parsing.base import (
    MALFORMED,
    UNKNOWN_MODEL,
    BaseParser,
    JsonBlock,
    as_dict,
    as_int,
    as_str,
    failure,
    find_status,
    kind_of_message,
    opt_int,
    status_from_exit,
    status_kind,
    tool_detail,
)

# Gemini CLI's own exit codes (FatalAuthenticationError, FatalTurnLimitedError, untrusted
# folder). An untrusted workspace is a refusal to act that no retry fixes: `permission`.
_EXIT_KINDS = {41: ErrorKind.AUTH, 53: ErrorKind.MAX_TURNS, 55: ErrorKind.PERMISSION}
_RETRY_LINE = re.compile(r"^Attempt (\d+) failed with status (\d{3})\. Retrying")


def tokens_usage(tokens: dict[str, Any]) -> Usage:
    """`stats.models.<m>.tokens` of the json format.

    `prompt` includes `cached` (`input` = prompt - cached); `thoughts` are billed as
    output but not counted in `candidates`, so output = candidates + thoughts and
    reasoning = thoughts; `tool` (tool-use prompt tokens) is input. The sum equals `total`.
    """
    cached = as_int(tokens.get("cached"))
    if "input" in tokens:
        fresh = as_int(tokens.get("input"))
    else:
        fresh = max(as_int(tokens.get("prompt")) - cached, 0)
    thoughts = as_int(tokens.get("thoughts"))
    return Usage(
        input_tokens=fresh + as_int(tokens.get("tool")),
        output_tokens=as_int(tokens.get("candidates")) + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def stream_usage(stats: dict[str, Any]) -> Usage:
    """`result.stats.models.<m>` of stream-json: input_tokens is the prompt (with cached).

    Thoughts appear only in `total_tokens`: whatever the total holds beyond prompt and
    output is counted as reasoning, and as output, as in `tokens_usage`.
    """
    prompt = as_int(stats.get("input_tokens"))
    cached = as_int(stats.get("cached"))
    fresh = as_int(stats.get("input")) if "input" in stats else max(prompt - cached, 0)
    output = as_int(stats.get("output_tokens"))
    extra = max(as_int(stats.get("total_tokens")) - prompt - output, 0)
    return Usage(
        input_tokens=fresh,
        output_tokens=output + extra,
        cache_read_tokens=cached,
        reasoning_tokens=extra,
    )


def stats_by_model(stats: dict[str, Any]) -> tuple[dict[str, Usage], str | None]:
    """Usage per model from either stats shape, and the main model when the stats say it."""
    by_model: dict[str, Usage] = {}
    main: str | None = None
    for name, entry in as_dict(stats.get("models")).items():
        if not isinstance(entry, dict):
            continue
        tokens = entry.get("tokens")
        by_model[name] = tokens_usage(tokens) if isinstance(tokens, dict) else stream_usage(entry)
        if "main" in as_dict(entry.get("roles")):
            main = name
    return by_model, main


def with_activity(
    by_model: dict[str, Usage], main: str, tool_calls: int, turns: int
) -> dict[str, Usage]:
    base = by_model.get(main, Usage())
    by_model[main] = Usage(**{**base.to_dict(), "tool_calls": tool_calls, "turns": turns})
    return by_model


class _GeminiBase(BaseParser):
    """What both Gemini formats share: init/model, the stderr error object, exit codes."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.session_id: str | None = None
        self.model: str | None = None
        self.text: list[str] = []
        self.result_seen = False
        self.stderr_json = JsonBlock()

    def on_stderr(self, line: str) -> list[Event]:
        self.stderr_json.add(line)
        retry = _RETRY_LINE.match(line)
        if retry and retry.group(2) == "429":
            return [RateLimited(status=429, message=line[:200], retrying=True)]
        return []

    def main_model(self, by_model: dict[str, Usage], main: str | None) -> str:
        if main:
            return main
        for name in (self.model, self.model_hint):
            if name and name in by_model:
                return name
        if by_model:  # `auto` routes through a small model first: the main one did the work
            return max(by_model, key=lambda m: by_model[m].total_tokens)
        return self.model_hint or UNKNOWN_MODEL

    def error_events(self, error: dict[str, Any], exit_code: int | None) -> list[Event]:
        message = as_str(error.get("message")) or as_str(error.get("type")) or "error"
        code = opt_int(error.get("code"))
        status = code if code is not None and code >= 400 else find_status(message)
        if status is None:
            status = status_from_exit(exit_code)
        if code in _EXIT_KINDS:
            kind = _EXIT_KINDS[code]
        elif status is not None:
            kind = status_kind(status)
        else:
            kind = _EXIT_KINDS.get(exit_code or 0) or kind_of_message(message)[0]
        return failure(kind, message, status, text=message, session_id=self.session_id)

    def on_finish(self, exit_code: int | None) -> list[Event]:
        events = self.flush_text()
        if self.result_seen:
            return events
        found = self.stderr_json.last
        if found is not None and isinstance(found.get("error"), dict):
            self.session_id = as_str(found.get("session_id")) or self.session_id
            return events + self.error_events(found["error"], exit_code)
        text = "".join(self.text) or None
        exit_kind = _EXIT_KINDS.get(exit_code) if exit_code is not None else None
        if exit_kind is not None:
            message = self.last_stderr() or f"exit code {exit_code}"
            return events + failure(
                exit_kind, message, None, text=message, session_id=self.session_id
            )
        status = status_from_exit(exit_code)
        if status is not None:
            message = self.last_stderr() or f"HTTP {status}"
            return events + failure(
                status_kind(status), message, status, text=message, session_id=self.session_id
            )
        return events + self.exit_failure(exit_code, text=text, session_id=self.session_id)

    def flush_text(self) -> list[Event]:
        return []


class GeminiStreamParser(_GeminiBase):
    """`gemini -p --output-format stream-json`; assistant deltas are merged per message."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self._pending: list[str] = []
        self.turns = 0

    def flush_text(self) -> list[Event]:
        if not self._pending:
            return []
        text, self._pending = "".join(self._pending), []
        return [AssistantText(text=text)] if text else []

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        kind = obj.get("type")
        if kind == "message" and obj.get("role") == "assistant":
            content = as_str(obj.get("content"))
            if content:
                if not self._pending:
                    self.turns += 1
                    self.text = []  # the answer is the last assistant message
                self._pending.append(content)
                self.text.append(content)
            return []
        events = self.flush_text()
        if kind == "init":
            self.session_id = as_str(obj.get("session_id")) or self.session_id
            self.model = as_str(obj.get("model")) or self.model
            events.append(SessionStarted(session_id=self.session_id, model=self.model))
        elif kind == "tool_use":
            name = as_str(obj.get("tool_name")) or "tool"
            detail = tool_detail(obj.get("parameters"))
            events.append(ToolCall(name=name, call_id=as_str(obj.get("tool_id")), detail=detail))
        elif kind == "tool_result":
            events.append(_tool_result(obj))
        elif kind == "result":
            events += self.on_result(obj)
        return events

    def on_result(self, obj: dict[str, Any]) -> list[Event]:
        self.result_seen = True
        stats = as_dict(obj.get("stats"))
        by_model, main = stats_by_model(stats)
        main = self.main_model(by_model, main)
        if by_model:
            by_model = with_activity(by_model, main, as_int(stats.get("tool_calls")), self.turns)
        events: list[Event] = [UsageUpdated(by_model=by_model, final=True)]
        if obj.get("status") == "error" or "error" in obj:
            return events + self.error_events(as_dict(obj.get("error")), None)
        text = "".join(self.text) or None
        return [
            *events,
            AgentResult(text=text, session_id=self.session_id, num_turns=self.turns or None),
        ]


class GeminiJsonParser(_GeminiBase):
    """`gemini -p --output-format json`: one pretty-printed object on stdout at the end,
    or, on failure, nothing on stdout and `{session_id, error}` after a stack trace on
    stderr (read at `finish`)."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.stdout_json = JsonBlock()

    def on_stdout(self, line: str) -> list[Event]:
        obj = self.stdout_json.add(line)
        if obj is None:
            if self.stdout_json.stray:  # a line outside the object: not ours
                return self.bad(line)
            return []
        try:
            return self.on_object(obj, line)
        except MALFORMED:
            return self.bad(line)

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        self.session_id = as_str(obj.get("session_id")) or self.session_id
        stats = as_dict(obj.get("stats"))
        by_model, main = stats_by_model(stats)
        main = self.main_model(by_model, main)
        self.model = main if by_model else self.model
        events: list[Event] = [SessionStarted(session_id=self.session_id, model=self.model)]
        response = as_str(obj.get("response"))
        if response:
            self.text = [response]
            events.append(AssistantText(text=response))
        if by_model:
            tools = as_dict(stats.get("tools"))
            api = as_dict(as_dict(as_dict(stats.get("models")).get(main)).get("api"))
            with_activity(
                by_model, main, as_int(tools.get("totalCalls")), as_int(api.get("totalRequests"))
            )
            events.append(UsageUpdated(by_model=by_model, final=True))
        self.result_seen = True
        if isinstance(obj.get("error"), dict):
            return events + self.error_events(obj["error"], None)
        return [*events, AgentResult(text=response, session_id=self.session_id)]

    def on_finish(self, exit_code: int | None) -> list[Event]:
        pending = self.stdout_json.pending
        events: list[Event] = []
        for text in pending:  # an object that never closed: its lines could not be read
            if text.strip():
                events += self.bad(text)
        return events + super().on_finish(exit_code)


def _tool_result(obj: dict[str, Any]) -> ToolResult:
    error = as_dict(obj.get("error"))
    kind = (as_str(error.get("type")) or "").lower()
    return ToolResult(
        call_id=as_str(obj.get("tool_id")),
        is_error=obj.get("status") != "success",
        permission_denied="denied" in kind or "permission" in kind,
    )


__all__ = ["GeminiJsonParser", "GeminiStreamParser", "stats_by_model", "tokens_usage"]
