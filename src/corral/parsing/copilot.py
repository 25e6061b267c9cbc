"""GitHub Copilot CLI `copilot -p X --output-format json` (JSON lines) into typed events.

Measured with Copilot CLI 1.0.102 (tests/data/parsing/copilot): each line is
`{type, data, id, timestamp, parentId, ephemeral?}`. The ones read here:
- `model.call_start{model}`: the model of each call;
- `assistant.message{content, toolRequests, model}`: one per model answer;
- `tool.execution_start{toolCallId, toolName}`, `tool.execution_complete{toolCallId,
  success, shellExecution{exitCode}}`;
- `assistant.turn_start`: one per model call of the agent loop (a tool round trip is two);
- `assistant.turn_retry{reason}`: Copilot retries by itself (`rate_limit` five times);
- `session.error{errorType, statusCode, message}`; `abort` when the run was interrupted;
- last `result{sessionId, exitCode}`, whose `usage` has durations and premium requests only.

The token counts are not on stdout: Copilot writes them to its session log
(`session.usage_record{usage{model, inputTokens, outputTokens, cacheReadTokens,
cacheWriteTokens, reasoningTokens}}` per call, `session.shutdown{modelMetrics{<model>
{usage{...}}}}` with the totals, also under `accountingSnapshot`), which the adapter reads after the
process ended and passes to `cli_files`. `inputTokens` holds the cache reads and writes;
`outputTokens` holds the reasoning. No dollar cost (Copilot bills premium requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

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
    as_dict,
    as_int,
    as_str,
    failure,
    kind_of_message,
    opt_int,
    status_kind,
)

# session.error errorType -> kind, when no HTTP status says more
_ERROR_TYPES = {"rate_limit": ErrorKind.RATE_LIMIT, "authentication": ErrorKind.AUTH}


def copilot_usage(usage: dict[str, Any]) -> Usage:
    """One usage record (or a model's totals) in corral's convention."""
    cached = as_int(usage.get("cacheReadTokens"))
    written = as_int(usage.get("cacheWriteTokens"))
    return Usage(
        input_tokens=max(as_int(usage.get("inputTokens")) - cached - written, 0),
        output_tokens=as_int(usage.get("outputTokens")),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        reasoning_tokens=as_int(usage.get("reasoningTokens")),
    )


class CopilotParser(BaseParser):
    """`copilot --output-format json`, plus the usage records of its session log."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.model: str | None = model
        self.session_id: str | None = None
        self.announced = False
        self.last_text: str | None = None
        self.turns = 0
        self.tool_calls = 0
        self.error: dict[str, Any] | None = None
        self.aborted = False
        self.result_sent = False
        self.by_model: dict[str, Usage] = {}
        self._started: set[str] = set()

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        kind = obj.get("type")
        data = as_dict(obj.get("data"))
        if kind == "model.call_start":
            return self.on_model(as_str(data.get("model")))
        if kind == "assistant.turn_start":
            self.turns += 1
        elif kind == "assistant.message":
            return self.on_message(data)
        elif kind == "tool.execution_start":
            return self.on_tool_start(data)
        elif kind == "tool.execution_complete":
            return self.on_tool_end(data)
        elif kind == "assistant.turn_retry" and data.get("reason") == "rate_limit":
            return [RateLimited(status=429, message="rate limited: retrying", retrying=True)]
        elif kind == "session.error":
            self.error = data
        elif kind == "abort":
            self.aborted = True
        elif kind == "result":
            return self.on_result(obj)
        return []

    def on_model(self, model: str | None) -> list[Event]:
        if not model or model == self.model:
            return []
        self.model = model
        return [SessionStarted(session_id=self.session_id, model=model)]

    def on_message(self, data: dict[str, Any]) -> list[Event]:
        events = self.on_model(as_str(data.get("model")))
        text = as_str(data.get("content"))
        if text:
            self.last_text = text
            events.append(AssistantText(text=text))
        return events

    def on_tool_start(self, data: dict[str, Any]) -> list[Event]:
        call_id = as_str(data.get("toolCallId"))
        if call_id is not None and call_id in self._started:
            return []
        if call_id is not None:
            self._started.add(call_id)
        self.tool_calls += 1
        return [ToolCall(name=as_str(data.get("toolName")) or "tool", call_id=call_id)]

    def on_tool_end(self, data: dict[str, Any]) -> list[Event]:
        exit_code = as_dict(data.get("shellExecution")).get("exitCode")
        failed = data.get("success") is False or (
            isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code != 0
        )
        return [ToolResult(call_id=as_str(data.get("toolCallId")), is_error=failed)]

    def on_result(self, obj: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        session = as_str(obj.get("sessionId"))
        if session and session != self.session_id:
            self.session_id = session
            events.append(SessionStarted(session_id=session, model=self.model))
        if self.result_sent:
            return events
        self.result_sent = True
        exit_code = opt_int(obj.get("exitCode"))
        turns = self.turns or None
        if exit_code == 0 and not self.aborted:
            result = AgentResult(text=self.last_text, num_turns=turns, session_id=self.session_id)
            return [*events, result]
        return events + self.fail(exit_code, num_turns=turns, session_id=self.session_id)

    def fail(self, exit_code: int | None, **result: Any) -> list[Event]:
        if self.aborted and self.error is None:
            message = "the Copilot run was interrupted"
            return failure(ErrorKind.CANCELLED, message, None, text=message, **result)
        error = self.error or {}
        message = as_str(error.get("message")) or f"exit code {exit_code}"
        status = opt_int(error.get("statusCode"))
        if status is not None:
            kind = status_kind(status)
        else:
            kind, status = kind_of_message(message)
            kind = _ERROR_TYPES.get(str(error.get("errorType")), kind)
        return failure(kind, message, status, text=message, **result)

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        """Token counts from the session log: the shutdown totals, else the summed records."""
        records: dict[str, Usage] = {}
        totals: dict[str, Usage] = {}
        for line in lines:
            try:
                obj = orjson.loads(line)
                if not isinstance(obj, dict):
                    continue
                data = as_dict(obj.get("data"))
                if obj.get("type") == "session.usage_record":
                    usage = as_dict(data.get("usage"))
                    name = as_str(usage.get("model")) or self.model or UNKNOWN_MODEL
                    records[name] = records.get(name, Usage()) + copilot_usage(usage)
                elif obj.get("type") == "session.shutdown":
                    snapshot = as_dict(data.get("accountingSnapshot"))
                    metrics = as_dict(data.get("modelMetrics") or snapshot.get("modelMetrics"))
                    totals = {
                        name: copilot_usage(as_dict(as_dict(entry).get("usage")))
                        for name, entry in metrics.items()
                    }
            except (orjson.JSONDecodeError, *MALFORMED):
                continue
        self.by_model = totals or records
        return []

    def usage(self) -> UsageUpdated | None:
        if not self.by_model:
            return None
        by_model = dict(self.by_model)
        main = self.model if self.model in by_model else next(iter(by_model))
        extra = {"tool_calls": self.tool_calls, "turns": self.turns}
        by_model[main] = Usage(**{**by_model[main].to_dict(), **extra})
        return UsageUpdated(by_model=by_model, final=True)

    def on_finish(self, exit_code: int | None) -> list[Event]:
        usage = self.usage()
        events: list[Event] = [usage] if usage is not None else []
        if self.result_sent:
            return events
        common = {"text": self.last_text, "num_turns": self.turns or None}
        return events + self.exit_failure(exit_code, session_id=self.session_id, **common)
