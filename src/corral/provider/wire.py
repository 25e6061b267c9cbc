"""What the API modules share: SSE events, calls, error replies, ids and the dialect seam."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from corral.provider.scenarios import Reply, Scenario

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event; `event` is None for APIs that send bare `data:` lines (Gemini,
    Chat Completions). A `str` payload goes out as it is (Chat Completions' `[DONE]`)."""

    data: JsonObject | str
    event: str | None = None

    def encode(self) -> bytes:
        """The event as it goes on the wire, blank line included."""
        head = f"event: {self.event}\n" if self.event else ""
        payload = self.data if isinstance(self.data, str) else json.dumps(self.data)
        return f"{head}data: {payload}\n\n".encode()


@dataclass(frozen=True)
class Route:
    """What a request path asks for, once the `/s/<id>` prefix is gone."""

    model: str | None = None  # from the path (Gemini); None = read it from the body
    stream: bool | None = None  # from the path (Gemini); None = read it from the body


@dataclass(frozen=True)
class Call:
    """One model call as a dialect sees it: the scenario, the requested model and the body."""

    scenario: Scenario
    model: str
    body: JsonObject
    stream: bool

    @property
    def reply_model(self) -> str:
        """The model named in the response: the scenario's, or the one asked for."""
        return self.scenario.model or self.model


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error in an API's own body shape."""

    status: int
    body: JsonObject
    headers: dict[str, str] = field(default_factory=dict)


class Dialect(Protocol):
    """One model API (Anthropic Messages, OpenAI Responses or Chat Completions, Gemini) as
    the server drives it."""

    name: str

    def route(self, path: str) -> Route | None:
        """Whether this API serves `path` (no scenario prefix, no query), and how."""

    def tool_results(self, body: JsonObject) -> list[str]:
        """The tool outputs the conversation already holds, oldest first."""

    def events(self, reply: Reply, call: Call) -> list[SseEvent]:
        """The whole streamed answer."""

    def document(self, reply: Reply, call: Call) -> JsonObject:
        """The whole answer as one JSON body (not streamed)."""

    def failure(self, call: Call) -> SseEvent:
        """The event that fails a stream midway."""

    def error(self, status: int, message: str, retry_after: int | None) -> ErrorReply:
        """The API's error response for HTTP `status`."""


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id that looks like the API's own (`msg_…`, `resp_…`, `toolu_…`)."""
    return f"{prefix}{uuid.uuid4().hex[:length]}"


def retry_headers(status: int, retry_after: int | None) -> dict[str, str]:
    """`retry-after` on the statuses where the real APIs send it."""
    if retry_after is not None and status in (429, 503, 529):
        return {"retry-after": str(retry_after)}
    return {}


def tool_arguments(tools: list[JsonObject], command: str) -> tuple[str, JsonObject]:
    """The shell tool the CLI offered and its arguments for `command`.

    Each CLI names its shell tool and its argument differently, and Codex's depends on the
    model, so the name and schema are read from the request rather than assumed. `tools`
    are the declarations as sent, whichever key holds the JSON schema.
    """
    for tool in tools:
        name = str(tool.get("name", ""))
        if name not in SHELL_TOOLS:
            continue
        value: Any = ["bash", "-lc", command] if name == "shell" else command
        arguments: JsonObject = {SHELL_TOOLS[name]: value, "description": "Run a command"}
        declared = _declared_properties(tool)
        if declared:
            # a strict schema may reject arguments it does not declare
            arguments = {key: val for key, val in arguments.items() if key in declared}
        return name, arguments
    return DEFAULT_SHELL_TOOL, {"command": command, "description": "Run a command"}


def _declared_properties(tool: JsonObject) -> set[str]:
    for key in ("input_schema", "parameters", "parametersJsonSchema"):
        schema = tool.get(key)
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            return set(schema["properties"])
    return set()


# tool name -> the argument holding the command (Claude, Codex classic tools, Gemini and
# Qwen Code, OpenCode)
SHELL_TOOLS = {
    "Bash": "command",
    "exec_command": "cmd",
    "shell": "command",
    "run_shell_command": "command",
    "bash": "command",
}
DEFAULT_SHELL_TOOL = "run_shell_command"


def text_of(content: Any) -> str:
    """Plain text of a tool result, whatever nesting the API uses (str, blocks, dict)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(item) for item in content)
    if isinstance(content, dict):
        for key in ("text", "output", "content"):
            if key in content:
                return text_of(content[key])
        return json.dumps(content)
    return ""
