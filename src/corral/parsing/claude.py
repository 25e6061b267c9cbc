"""Claude Code `--output-format stream-json --verbose` and `json`: events, usage and exact cost."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from corral.events.types import (
    AgentResult,
    AssistantText,
    Event,
    RateLimited,
    SessionStarted,
    Stream,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import Cost, CostSource, ErrorKind, Usage
from corral.parsing.base import (
    MALFORMED,
    UNKNOWN_MODEL,
    BaseParser,
    as_dict,
    as_int,
    as_list,
    as_str,
    failure,
    kind_of_message,
    loads_exact,
    money,
    opt_int,
    shortfall,
    status_kind,
    tool_detail,
)

_ALLOWED = frozenset({"accept", "allow", "allowed", "approved", "approve"})
_PERMISSION_HINTS = ("needs approval", "requires approval", "permission", "was denied")


def cache_writes(total: int, five_m: int, one_h: int, has_total: bool) -> tuple[int, int]:
    """Split cache-creation tokens into 5-minute and 1-hour writes.

    The CLI reports the split next to the total, but the split is often zero while the
    total is not (the API answered without `cache_creation`): the unsplit rest is a
    5-minute write, the API's default.
    """
    if has_total and five_m + one_h < total:
        five_m = total - one_h
    return five_m, one_h


def message_usage(usage: dict[str, Any]) -> Usage:
    """One API message's usage in Anthropic's shape (input excludes cache reads and writes)."""
    split = as_dict(usage.get("cache_creation"))
    five_m, one_h = cache_writes(
        as_int(usage.get("cache_creation_input_tokens")),
        as_int(split.get("ephemeral_5m_input_tokens")),
        as_int(split.get("ephemeral_1h_input_tokens")),
        "cache_creation_input_tokens" in usage,
    )
    details = as_dict(usage.get("output_tokens_details"))
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=as_int(usage.get("cache_read_input_tokens")),
        cache_write_5m_tokens=five_m,
        cache_write_1h_tokens=one_h,
        reasoning_tokens=as_int(details.get("thinking_tokens")),
    )


def model_usage(entry: dict[str, Any]) -> Usage:
    """One `modelUsage` entry (camelCase; thinking tokens are part of output tokens)."""
    five_m, one_h = cache_writes(
        as_int(entry.get("cacheCreationInputTokens")),
        as_int(entry.get("cacheCreationEphemeral5mInputTokens")),
        as_int(entry.get("cacheCreationEphemeral1hInputTokens")),
        "cacheCreationInputTokens" in entry,
    )
    return Usage(
        input_tokens=as_int(entry.get("inputTokens")),
        output_tokens=as_int(entry.get("outputTokens")),
        cache_read_tokens=as_int(entry.get("cacheReadInputTokens")),
        cache_write_5m_tokens=five_m,
        cache_write_1h_tokens=one_h,
        reasoning_tokens=as_int(entry.get("thinkingTokens")),
    )


class ClaudeStreamParser(BaseParser):
    """`claude -p --output-format stream-json --verbose` (and Claude-shaped streams).

    Live usage is an estimate: one API message arrives as one `assistant` event per
    content block, each repeating the message_start usage, so every `message.id` counts
    once. The `result` event's own totals then replace the estimate (`final=True`).
    """

    init_subtypes: tuple[str, ...] = ("init",)
    _handlers: ClassVar[dict[str, Callable[[ClaudeStreamParser, dict[str, Any]], list[Event]]]]

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.session_id: str | None = None
        self.model: str | None = None
        self.last_text: str | None = None
        self.result_seen = False
        self.tool_calls = 0
        self.turns = 0
        self._messages: dict[str, tuple[str, Usage]] = {}
        self._live: dict[str, Usage] = {}
        self._tools_by_model: dict[str, int] = {}
        self._turns_by_model: dict[str, int] = {}
        self._direct = type(self).on_stdout is ClaudeStreamParser.on_stdout

    # -- dispatch --

    def feed(self, line: str, stream: Stream) -> list[Event]:
        # the usual line, one JSON object on stdout, goes straight to the base class's
        # object path, skipping `BaseParser.feed`'s checks and this class's array test
        # (once per line); a subclass with an `on_stdout` of its own keeps the general path
        if stream == "stdout" and line[:1] == "{" and self._direct:
            return BaseParser.on_stdout(self, line)
        return super().feed(line, stream)

    def on_stdout(self, line: str) -> list[Event]:
        if line.startswith("["):  # `--output-format json --verbose` prints one array of events
            try:
                items = loads_exact(line)
            except MALFORMED:
                return self.bad(line)
            if not isinstance(items, list):
                return self.bad(line)
            events: list[Event] = []
            for item in items:
                if isinstance(item, dict):
                    try:
                        events += self.on_object(item, "")
                    except MALFORMED:
                        events += self.bad(line)
            return events
        return super().on_stdout(line)

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        kind = obj.get("type")
        if kind == "result" and line:
            # re-read with exact decimals: the cost must equal the CLI's digits
            try:
                exact = loads_exact(line)
            except MALFORMED:
                exact = obj
            obj = exact if isinstance(exact, dict) else obj
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        return handler(self, obj) if handler is not None else []

    # -- events --

    def on_system(self, obj: dict[str, Any]) -> list[Event]:
        subtype = obj.get("subtype")
        if subtype in self.init_subtypes:
            self.session_id = as_str(obj.get("session_id")) or self.session_id
            self.model = as_str(obj.get("model")) or self.model
            return [SessionStarted(session_id=self.session_id, model=self.model)]
        if subtype == "api_retry":
            status = opt_int(obj.get("error_status"))
            if status != 429:
                return []
            delay = obj.get("retry_delay_ms")
            retry_after = (
                delay / 1000
                if isinstance(delay, int | float) and not isinstance(delay, bool)
                else None
            )
            return [
                RateLimited(
                    status=status,
                    retry_after_s=retry_after,
                    message=as_str(obj.get("error")) or "",
                    retrying=True,
                )
            ]
        return []

    def on_rate_limit(self, obj: dict[str, Any]) -> list[Event]:
        info = as_dict(obj.get("rate_limit_info"))
        if info.get("status") != "rejected":
            return []
        resets = info.get("resetsAt")
        reset_at = (
            float(resets)
            if isinstance(resets, int | float) and not isinstance(resets, bool)
            else None
        )
        return [
            RateLimited(
                status=429, reset_at=reset_at, message=as_str(info.get("rateLimitType")) or ""
            )
        ]

    def on_assistant(self, obj: dict[str, Any]) -> list[Event]:
        # once per line of a Claude stream: the tolerant accessors (`as_dict`...) inline
        message = obj.get("message")
        if not isinstance(message, dict):
            message = {}
        model = message.get("model")
        if not (isinstance(model, str) and model):
            model = self.model or self.model_hint or UNKNOWN_MODEL
        events: list[Event] = []
        counted = self.count_message(message, model, main=obj.get("parent_tool_use_id") is None)
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            block_type = block.get("type") if isinstance(block, dict) else None
            if block_type == "text" and not obj.get("is_api_error_message"):
                text = block.get("text")
                if text and isinstance(text, str):
                    self.last_text = text
                    events.append(AssistantText(text=text))
            elif block_type == "tool_use":
                self.tool_calls += 1
                self._tools_by_model[model] = self._tools_by_model.get(model, 0) + 1
                name = as_str(block.get("name")) or "tool"
                detail = tool_detail(block.get("input"))
                events.append(ToolCall(name=name, call_id=as_str(block.get("id")), detail=detail))
        if counted and not self.result_seen:
            events.append(self.live_usage())
        return events

    def count_message(self, message: dict[str, Any], model: str, *, main: bool) -> bool:
        """Add an API message's usage to the live estimate, once per message id."""
        msg_id = message.get("id")
        if not isinstance(msg_id, str) or msg_id in self._messages:  # the usual: seen
            return False
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return False
        if model == "<synthetic>":  # the CLI's stand-in for an API error: no tokens spent
            return False
        spent = self.message_usage(usage)
        self._messages[msg_id] = (model, spent)
        self._live[model] = self._live.get(model, Usage()) + spent
        if main:
            self.turns += 1
            self._turns_by_model[model] = self._turns_by_model.get(model, 0) + 1
        return True

    def message_usage(self, usage: dict[str, Any]) -> Usage:
        return message_usage(usage)

    def live_usage(self) -> UsageUpdated:
        by_model = {
            model: Usage(
                **{
                    **usage.to_dict(),
                    "tool_calls": self._tools_by_model.get(model, 0),
                    "turns": self._turns_by_model.get(model, 0),
                }
            )
            for model, usage in self._live.items()
        }
        return UsageUpdated(by_model=by_model)

    def on_stream_event(self, obj: dict[str, Any]) -> list[Event]:
        # only `message_delta` matters: it carries the message's final output count
        event = as_dict(obj.get("event"))
        if event.get("type") != "message_delta" or self.result_seen:
            return []
        msg_id = as_str(obj.get("api_message_id")) or ""
        known = self._messages.get(msg_id)
        output = as_int(as_dict(event.get("usage")).get("output_tokens"))
        if known is None or output <= known[1].output_tokens:
            return []
        model, before = known
        extra = Usage(output_tokens=output - before.output_tokens)
        self._messages[msg_id] = (model, before + extra)
        self._live[model] = self._live[model] + extra
        return [self.live_usage()]

    def on_user(self, obj: dict[str, Any]) -> list[Event]:
        message = as_dict(obj.get("message"))
        decisions = {
            as_str(meta.get("id")): as_dict(meta.get("permission_decision")).get("decision")
            for meta in as_list(obj.get("tool_result_meta"))
            if isinstance(meta, dict)
        }
        events: list[Event] = []
        for block in as_list(message.get("content")):
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            call_id = as_str(block.get("tool_use_id"))
            is_error = block.get("is_error") is True
            decision = decisions.get(call_id)
            denied = isinstance(decision, str) and decision.lower() not in _ALLOWED
            if not denied and is_error:
                denied = _mentions_permission(block.get("content"))
            events.append(ToolResult(call_id=call_id, is_error=is_error, permission_denied=denied))
        return events

    # -- the result --

    def on_result(self, obj: dict[str, Any]) -> list[Event]:
        self.result_seen = True
        self.session_id = as_str(obj.get("session_id")) or self.session_id
        events: list[Event] = []
        usage = self.final_usage(obj)
        if usage is not None:
            events.append(usage)
        num_turns = opt_int(obj.get("num_turns"))
        denials = tuple(
            name
            for d in as_list(obj.get("permission_denials"))
            if (name := as_str(as_dict(d).get("tool_name")))
        )
        text = as_str(obj.get("result"))
        common: dict[str, Any] = {
            "num_turns": num_turns,
            "session_id": self.session_id,
            "permission_denials": denials,
        }
        outcome = self.outcome(obj, text)
        if outcome is None:
            events.append(AgentResult(text=text if text is not None else self.last_text, **common))
            return events
        kind, message, status = outcome
        return events + failure(kind, message, status, text=text or message, **common)

    def outcome(
        self, obj: dict[str, Any], text: str | None
    ) -> tuple[ErrorKind, str, int | None] | None:
        """None on success, else (kind, message, status). `subtype` says "success" on API errors."""
        subtype = as_str(obj.get("subtype")) or ""
        reason = as_str(obj.get("terminal_reason")) or ""
        if obj.get("is_error") is not True and not subtype.startswith("error"):
            return None
        errors = [e for e in as_list(obj.get("errors")) if isinstance(e, str)]
        detail = as_str(as_dict(obj.get("error")).get("message"))
        message = text or detail or "; ".join(errors) or subtype or "error"
        status = opt_int(obj.get("api_error_status"))
        if subtype == "error_max_turns" or reason == "max_turns":
            return ErrorKind.MAX_TURNS, message, status
        if subtype == "error_max_budget_usd" or reason == "budget_exhausted":
            return ErrorKind.MAX_BUDGET, message, status
        if status is not None:
            return status_kind(status), message, status
        kind, status = kind_of_message(message)
        return kind, message, status

    def primary_model(self, by_model: dict[str, Usage]) -> str:
        for name in (self.model, self.model_hint):
            if name and name in by_model:
                return name
        return next(iter(by_model), self.model or self.model_hint or UNKNOWN_MODEL)

    def final_usage(self, obj: dict[str, Any]) -> UsageUpdated | None:
        """The CLI's own totals: `modelUsage` per model, checked against `usage`, and the cost.

        `modelUsage` is what the CLI prices (`total_cost_usd` is the sum of its costUSD)
        and also holds side calls that `usage` may lack; where `usage` is larger in some
        field, the difference goes to the main model so the totals still match `usage`.
        """
        by_model: dict[str, Usage] = {}
        cost_by_model: dict[str, Decimal] = {}
        for name, entry in as_dict(obj.get("modelUsage")).items():
            if isinstance(entry, dict):
                by_model[name] = model_usage(entry)
                usd = money(entry.get("costUSD"))
                if usd is not None:
                    cost_by_model[name] = usd
        top = obj.get("usage")
        if isinstance(top, dict):
            missing = shortfall(message_usage(top), Usage.sum(by_model.values()))
            if missing != Usage():
                main = self.primary_model(by_model)
                by_model[main] = by_model.get(main, Usage()) + missing
        main = self.primary_model(by_model)
        if by_model or self.tool_calls:
            turns = opt_int(obj.get("num_turns"))
            base = by_model.get(main, Usage())
            extra = {
                "tool_calls": self.tool_calls,
                "turns": turns if turns is not None else self.turns,
            }
            by_model[main] = Usage(**{**base.to_dict(), **extra})
        total = money(obj.get("total_cost_usd"))
        if total is None and cost_by_model:
            total = sum(cost_by_model.values(), Decimal(0))
        cost = Cost(total, CostSource.REPORTED) if total is not None else None
        return UsageUpdated(by_model=by_model, final=True, cost=cost, cost_by_model=cost_by_model)

    def on_finish(self, exit_code: int | None) -> list[Event]:
        if self.result_seen:
            return []
        return self.exit_failure(exit_code, text=self.last_text, session_id=self.session_id)


class ClaudeJsonParser(ClaudeStreamParser):
    """`claude -p --output-format json`: one result object (or, with --verbose, one array)."""


ClaudeStreamParser._handlers = {
    "assistant": ClaudeStreamParser.on_assistant,
    "user": ClaudeStreamParser.on_user,
    "stream_event": ClaudeStreamParser.on_stream_event,
    "system": ClaudeStreamParser.on_system,
    "result": ClaudeStreamParser.on_result,
    "rate_limit_event": ClaudeStreamParser.on_rate_limit,
}


def _mentions_permission(content: Any) -> bool:
    if isinstance(content, list):
        content = " ".join(as_str(as_dict(c).get("text")) or "" for c in content[:4])
    if not isinstance(content, str):
        return False
    head = content[:500].lower()
    return any(hint in head for hint in _PERMISSION_HINTS)


__all__ = ["ClaudeJsonParser", "ClaudeStreamParser"]
