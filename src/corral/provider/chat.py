"""The OpenAI Chat Completions API (`POST /v1/chat/completions`), as Qwen Code and OpenCode read it.

Streamed, the answer is a run of `chat.completion.chunk` objects: the role, the text or tool
call deltas, a chunk with the `finish_reason`, then (only when the request asks for it with
`stream_options.include_usage`) one chunk with empty `choices` and the `usage`, and last the
literal `data: [DONE]`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from corral.provider.openai import openai_error
from corral.provider.scenarios import Reply, ScenarioUsage, ToolCall, chunk_text
from corral.provider.wire import (
    Call,
    ErrorReply,
    JsonObject,
    Route,
    SseEvent,
    new_id,
    text_of,
    tool_arguments,
)

DONE = SseEvent("[DONE]")


class OpenAIChat:
    """`POST {base_url}/chat/completions`, streamed or not, with or without a usage chunk."""

    name = "openai-chat"

    def route(self, path: str) -> Route | None:
        return Route() if path == "/v1/chat/completions" else None

    def tool_results(self, body: JsonObject) -> list[str]:
        messages = body.get("messages", [])
        if not isinstance(messages, list):
            return []
        return [
            text_of(message.get("content", ""))
            for message in messages
            if isinstance(message, dict) and message.get("role") == "tool"
        ]

    def events(self, reply: Reply, call: Call) -> list[SseEvent]:
        document = self.document(reply, call)
        message = document["choices"][0]["message"]
        head = {key: document[key] for key in ("id", "created", "model")}
        head["object"] = "chat.completion.chunk"

        def chunk(delta: JsonObject, finish: str | None = None) -> SseEvent:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return SseEvent({**head, "choices": [choice]})

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in chunk_text(message["content"])]
        for index, tool_call in enumerate(message.get("tool_calls", [])):
            function = tool_call["function"]
            opening = {**tool_call, "index": index, "function": {**function, "arguments": ""}}
            rest = {"index": index, "function": {"arguments": function["arguments"]}}
            events += [chunk({"tool_calls": [opening]}), chunk({"tool_calls": [rest]})]
        events.append(chunk({}, document["choices"][0]["finish_reason"]))
        options = call.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(SseEvent({**head, "choices": [], "usage": document["usage"]}))
        events.append(DONE)
        return events

    def document(self, reply: Reply, call: Call) -> JsonObject:
        message: JsonObject = {"role": "assistant", "content": reply.text}
        finish = "stop"
        if isinstance(reply, ToolCall):
            name, arguments = tool_arguments(_functions(call.body), reply.command)
            function = {"name": name, "arguments": json.dumps(arguments)}
            message["tool_calls"] = [
                {"id": new_id("call_sim_"), "type": "function", "function": function}
            ]
            finish = "tool_calls"
        return {
            "id": new_id("chatcmpl-sim"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.reply_model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage_fields(call.scenario.usage),
        }

    def failure(self, call: Call) -> SseEvent:
        message = call.scenario.message or "simulated: the model failed mid-stream"
        return SseEvent({"error": {"message": message, "type": "server_error", "code": None}})

    def error(self, status: int, message: str, retry_after: int | None) -> ErrorReply:
        return openai_error(status, message, retry_after)


def usage_fields(usage: ScenarioUsage) -> JsonObject:
    """A Chat Completions `usage`: the prompt includes cached tokens (cache writes too: the
    API has no count of its own for them), completion includes reasoning."""
    return {
        "prompt_tokens": usage.prompt_total,
        "completion_tokens": usage.output,
        "total_tokens": usage.prompt_total + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def _functions(body: JsonObject) -> list[JsonObject]:
    """The function declarations (`name`, `parameters`) of the request's tools."""
    tools: Any = body.get("tools") or []
    return [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
