"""The OpenAI Responses API (`POST /v1/responses`), streamed and not, as Codex reads it."""

from __future__ import annotations

import json
import time
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

# HTTP status -> (error.type, error.code, default message), as the real API names them
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "simulated: invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: dummy."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "simulated: forbidden"),
    404: ("invalid_request_error", "model_not_found", "simulated: model not found"),
    429: ("requests", "rate_limit_exceeded", "simulated: rate limit reached"),
    500: ("server_error", None, "simulated: the server had an error"),
    503: ("server_error", None, "simulated: service unavailable"),
}


class OpenAIResponses:
    """Codex's API: `POST {base_url}/responses` with `stream: true`."""

    name = "openai"

    def route(self, path: str) -> Route | None:
        return Route() if path == "/v1/responses" else None

    def tool_results(self, body: JsonObject) -> list[str]:
        items = body.get("input", [])
        if not isinstance(items, list):
            return []
        return [
            text_of(item.get("output", ""))
            for item in items
            if isinstance(item, dict)
            and item.get("type") in ("function_call_output", "custom_tool_call_output")
        ]

    def events(self, reply: Reply, call: Call) -> list[SseEvent]:
        response = self.document(reply, call)
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[JsonObject] = [
            {"type": "response.created", "response": pending},
            {"type": "response.in_progress", "response": pending},
        ]
        for index, item in enumerate(response["output"]):
            events.extend(_item_events(index, item))
        events.append({"type": "response.completed", "response": response})
        return [
            SseEvent({**data, "sequence_number": number}, event=str(data["type"]))
            for number, data in enumerate(events)
        ]

    def document(self, reply: Reply, call: Call) -> JsonObject:
        item: JsonObject
        if isinstance(reply, ToolCall):
            name, arguments = tool_arguments(_function_tools(call.body), reply.command)
            item = {
                "type": "function_call",
                "id": new_id("fc_sim_"),
                "call_id": new_id("call_sim_"),
                "name": name,
                "arguments": json.dumps(arguments),
                "status": "completed",
            }
        else:
            item = {
                "type": "message",
                "id": new_id("msg_sim_"),
                "status": "completed",
                "role": "assistant",
                "content": [_text_part(reply.text)],
            }
        return {
            "id": new_id("resp_sim_"),
            "object": "response",
            "created_at": int(time.time()),
            "model": call.reply_model,
            "status": "completed",
            "output": [item],
            "usage": usage_fields(call.scenario.usage),
        }

    def failure(self, call: Call) -> SseEvent:
        message = call.scenario.message or "simulated: the model failed mid-stream"
        response: JsonObject = {
            "id": new_id("resp_sim_"),
            "object": "response",
            "model": call.reply_model,
            "status": "failed",
            "error": {"code": "server_error", "message": message},
            "output": [],
            "usage": None,
        }
        return SseEvent({"type": "response.failed", "response": response}, "response.failed")

    def error(self, status: int, message: str, retry_after: int | None) -> ErrorReply:
        return openai_error(status, message, retry_after)


def openai_error(status: int, message: str, retry_after: int | None) -> ErrorReply:
    """An OpenAI error body; the Responses and Chat Completions APIs share it."""
    kind, code, default = ERRORS.get(status, ("server_error", None, f"simulated: {status}"))
    body = {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
    headers = {"x-request-id": new_id("req_sim_"), **retry_headers(status, retry_after)}
    return ErrorReply(status, body, headers)


def usage_fields(usage: ScenarioUsage) -> JsonObject:
    """A Responses API `usage`: input and output totals include cached and reasoning tokens."""
    return {
        "input_tokens": usage.prompt_total,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt_total + usage.output,
    }


def _function_tools(body: JsonObject) -> list[JsonObject]:
    tools = body.get("tools") or []
    return [tool for tool in tools if isinstance(tool, dict)]


def _text_part(text: str) -> JsonObject:
    return {"type": "output_text", "text": text, "annotations": []}


def _item_events(index: int, item: JsonObject) -> list[JsonObject]:
    where: dict[str, Any] = {"output_index": index, "item_id": item["id"]}
    opening = {**item, "status": "in_progress"}
    middle: list[JsonObject]
    if item["type"] == "function_call":
        opening["arguments"] = ""
        middle = [
            {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]},
            {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": item["arguments"],
            },
        ]
    else:
        opening["content"] = []
        text = item["content"][0]["text"]
        part = {**where, "content_index": 0}
        middle = [
            {"type": "response.content_part.added", **part, "part": _text_part("")},
            *(
                {"type": "response.output_text.delta", **part, "delta": piece}
                for piece in chunk_text(text)
            ),
            {"type": "response.output_text.done", **part, "text": text},
            {"type": "response.content_part.done", **part, "part": _text_part(text)},
        ]
    return [
        {"type": "response.output_item.added", "output_index": index, "item": opening},
        *middle,
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]
