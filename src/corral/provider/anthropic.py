"""The Anthropic Messages API (`POST /v1/messages`), streamed and not, as Claude Code reads it."""

from __future__ import annotations

import json
from typing import Any

from corral.provider.scenarios import Reply, ScenarioUsage, ToolCall, chunk_text
from corral.provider.wire import (
    Call,
    ErrorReply,
    JsonObject,
    Route,
    SseEvent,
    new_id,
    retry_headers,
    text_of,
    tool_arguments,
)

# HTTP status -> (error.type, default message), as the real API names them
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "simulated: invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "simulated: permission denied"),
    404: ("not_found_error", "simulated: not found"),
    413: ("request_too_large", "simulated: request too large"),
    429: ("rate_limit_error", "simulated: rate limited"),
    500: ("api_error", "simulated: internal server error"),
    529: ("overloaded_error", "simulated: overloaded"),
}


class AnthropicMessages:
    """Claude Code's API: one streaming `POST /v1/messages?beta=true` per turn."""

    name = "anthropic"

    def route(self, path: str) -> Route | None:
        return Route() if path == "/v1/messages" else None

    def tool_results(self, body: JsonObject) -> list[str]:
        # the conversation may end with a `system` message, so every message is scanned
        return [
            text_of(block.get("content", ""))
            for message in body.get("messages", [])
            if isinstance(message.get("content"), list)
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]

    def events(self, reply: Reply, call: Call) -> list[SseEvent]:
        message = self.document(reply, call)
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        # message_start carries the input side and a placeholder output, as the real API does
        start["usage"] = {**message["usage"], "output_tokens": 1}
        events = [
            _event({"type": "message_start", "message": start}),
            _event({"type": "ping"}),
        ]
        for index, block in enumerate(message["content"]):
            events.extend(_block_events(index, block))
        events.append(
            _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {
                        key: message["usage"][key]
                        for key in ("output_tokens", "output_tokens_details")
                    },
                }
            )
        )
        events.append(_event({"type": "message_stop"}))
        return events

    def document(self, reply: Reply, call: Call) -> JsonObject:
        content: list[JsonObject] = [{"type": "text", "text": reply.text}]
        stop_reason = "end_turn"
        if isinstance(reply, ToolCall):
            name, arguments = tool_arguments(call.body.get("tools", []), reply.command)
            content.append(
                {"type": "tool_use", "id": new_id("toolu_sim_"), "name": name, "input": arguments}
            )
            stop_reason = "tool_use"
        return {
            "id": new_id("msg_sim_"),
            "type": "message",
            "role": "assistant",
            "model": call.reply_model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage_fields(call.scenario.usage),
        }

    def failure(self, call: Call) -> SseEvent:
        message = call.scenario.message or "simulated: the model failed mid-stream"
        return _event({"type": "error", "error": {"type": "overloaded_error", "message": message}})

    def error(self, status: int, message: str, retry_after: int | None) -> ErrorReply:
        kind, default = ERRORS.get(status, ("api_error", f"simulated: HTTP {status}"))
        request_id = new_id("req_sim_")
        body = {
            "type": "error",
            "error": {"type": kind, "message": message or default},
            "request_id": request_id,
        }
        headers = {"request-id": request_id, **retry_headers(status, retry_after)}
        return ErrorReply(status, body, headers)


def usage_fields(usage: ScenarioUsage) -> JsonObject:
    """A Messages API `usage` object: input counts only the uncached tokens."""
    return {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output,
        "output_tokens_details": {"thinking_tokens": usage.reasoning},
    }


def _event(data: JsonObject) -> SseEvent:
    return SseEvent(data, event=str(data["type"]))


def _block_events(index: int, block: JsonObject) -> list[SseEvent]:
    if block["type"] == "tool_use":
        opening: dict[str, Any] = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in chunk_text(block["text"])]
    return [
        _event({"type": "content_block_start", "index": index, "content_block": opening}),
        *(_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas),
        _event({"type": "content_block_stop", "index": index}),
    ]
