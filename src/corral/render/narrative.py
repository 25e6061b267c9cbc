"""An agent's events as the lines of its narrative: what `--output prefixed` shows while
it runs and what `corral logs --format text` shows afterwards, worded once.

Everything here quotes what an agent printed: each line is made visible (control and
escape sequences as text), never obeyed.
"""

from __future__ import annotations

from corral.events.types import (
    AgentError,
    AssistantText,
    ConnectionFailing,
    Event,
    RateLimited,
    ToolCall,
    ToolResult,
)
from corral.render.safe import visible_line

# (text, ANSI colour code or "" for the agent's own words)
NarrativeLine = tuple[str, str]


def truncate(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis (None: never cut)."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def narrative(event: Event, limit: int | None = None) -> list[NarrativeLine]:
    """The narrative's lines for `event` (none for an event the narrative does not show);
    `limit` cuts what the agent said, never corral's own words around it."""
    if isinstance(event, AssistantText):
        return [
            (truncate(visible_line(line), limit), "")
            for line in event.text.splitlines()
            if line.strip()
        ]
    if isinstance(event, ToolCall):
        said = f": {truncate(event.detail, limit)}" if event.detail else ""
        return [(visible_line(f"⚙ {event.name}{said}"), "36")]
    if isinstance(event, ToolResult):
        # a tool's answer is shown only when it did not go through
        if event.permission_denied:
            return [("↳ permission denied", "33")]
        return [("↳ the tool failed", "33")] if event.is_error else []
    if isinstance(event, AgentError):
        return [(visible_line(f"error ({event.error_kind.value}): {event.message}"), "31")]
    if isinstance(event, RateLimited):
        return [(visible_line("rate limited: " + event.message), "33")]
    if isinstance(event, ConnectionFailing):
        return [(visible_line("cannot connect: " + event.message), "33")]
    return []
