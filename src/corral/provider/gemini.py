"""The Gemini API (`:streamGenerateContent?alt=sse`, `:generateContent`) as Gemini CLI reads it."""

from __future__ import annotations

import json
import re
from typing import Any

from corral.provider.scenarios import Answer, Reply, ScenarioUsage, ToolCall, chunk_text
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

# HTTP status -> (error.status, default message), as the real API names them
ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "simulated: invalid argument"),
    401: ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    403: ("PERMISSION_DENIED", "simulated: permission denied"),
    404: ("NOT_FOUND", "simulated: model not found"),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "simulated: internal error"),
    503: ("UNAVAILABLE", "simulated: the model is overloaded"),
    504: ("DEADLINE_EXCEEDED", "simulated: deadline exceeded"),
}

_PATH = re.compile(
    r"/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?P<rpc>streamGenerateContent|generateContent)"
)


class GeminiApi:
    """Gemini CLI's API: a JSON router call (model `auto`), then a streamed main call."""

    name = "gemini"

    def route(self, path: str) -> Route | None:
        match = _PATH.fullmatch(path)
        if match is None:
            return None
        return Route(model=match["model"], stream=match["rpc"] == "streamGenerateContent")

    def tool_results(self, body: JsonObject) -> list[str]:
        return [
            text_of(part["functionResponse"].get("response", {}))
            for content in body.get("contents", [])
            for part in content.get("parts", [])
            if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict)
        ]

    def events(self, reply: Reply, call: Call) -> list[SseEvent]:
        final = self.document(reply, call)
        candidate = final["candidates"][0]
        parts: list[JsonObject] = candidate["content"]["parts"]
        if isinstance(reply, Answer) and "text" in parts[0]:
            parts = [{"text": piece} for piece in chunk_text(parts[0]["text"])]
        chunks: list[JsonObject] = []
        for number, part in enumerate(parts):
            body = {key: value for key, value in final.items() if key != "usageMetadata"}
            content = {"parts": [part], "role": "model"}
            body["candidates"] = [{"content": content, "index": 0}]
            if number == len(parts) - 1:
                # the CLI keeps the last usageMetadata it sees: send it once, complete
                body["candidates"][0]["finishReason"] = "STOP"
                body["usageMetadata"] = final["usageMetadata"]
            chunks.append(body)
        return [SseEvent(chunk) for chunk in chunks]

    def document(self, reply: Reply, call: Call) -> JsonObject:
        part: JsonObject
        if isinstance(reply, ToolCall):
            name, arguments = tool_arguments(_declarations(call.body), reply.command)
            part = {"functionCall": {"name": name, "args": arguments}}
        elif _wants_json(call.body):
            part = {"text": json.dumps(_fill(_schema(call.body)))}
        else:
            part = {"text": reply.text}
        return {
            "candidates": [
                {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": usage_fields(call.scenario.usage),
            "modelVersion": call.reply_model,
            "responseId": new_id("sim", 20),
        }

    def failure(self, call: Call) -> SseEvent:
        message = call.scenario.message or "simulated: the model failed mid-stream"
        return SseEvent({"error": {"code": 500, "message": message, "status": "INTERNAL"}})

    def error(self, status: int, message: str, retry_after: int | None) -> ErrorReply:
        code, default = ERRORS.get(status, ("UNKNOWN", f"simulated: HTTP {status}"))
        body = {"error": {"code": status, "message": message or default, "status": code}}
        return ErrorReply(status, body, retry_headers(status, retry_after))


def usage_fields(usage: ScenarioUsage) -> JsonObject:
    """A Gemini `usageMetadata`: the prompt includes cached tokens; thoughts are apart."""
    return {
        "promptTokenCount": usage.prompt_total,
        "candidatesTokenCount": usage.output - usage.reasoning,
        "cachedContentTokenCount": usage.cache_read,
        "thoughtsTokenCount": usage.reasoning,
        "totalTokenCount": usage.prompt_total + usage.output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt_total}],
    }


def _declarations(body: JsonObject) -> list[JsonObject]:
    return [
        declaration
        for tool in body.get("tools", [])
        if isinstance(tool, dict)
        for declaration in tool.get("functionDeclarations", [])
    ]


def _wants_json(body: JsonObject) -> bool:
    config = body.get("generationConfig") or {}
    return bool(config.get("responseMimeType") == "application/json")


def _schema(body: JsonObject) -> JsonObject:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
    return schema if isinstance(schema, dict) else {}


def _fill(schema: JsonObject) -> Any:
    """A value that satisfies `schema`; numbers land inside their bounds.

    The router asks for `{complexity_reasoning, complexity_score 1-100}`: a 0 there made the
    CLI print a ZodError, so integers default to 10 unless the schema bounds say otherwise.
    """
    kind = str(schema.get("type", "OBJECT")).upper()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "OBJECT":
        properties = schema.get("properties") or {}
        return {name: _fill(sub) for name, sub in properties.items() if isinstance(sub, dict)}
    if kind in ("INTEGER", "NUMBER"):
        low = schema.get("minimum", 1)
        high = schema.get("maximum", 100)
        return max(low, min(high, 10))
    if kind == "BOOLEAN":
        return False
    if kind == "ARRAY":
        return []
    return "simulated"
