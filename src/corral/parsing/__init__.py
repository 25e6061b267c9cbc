"""Pure, incremental parsers of agent CLI output: one line in, typed events out.

    parser = make_parser("claude-stream-json")
    for line, stream in lines:          # decoded, without the newline; may be megabytes
        publish(parser.feed(line, stream))
    publish(parser.finish(exit_code))   # once, when the process has ended

A parser does no I/O, reads no clock and keeps no global state. What every parser emits:
- `SessionStarted` when the CLI names its session (and model);
- `AssistantText`, `ToolCall`, `ToolResult` as the agent works;
- `UsageUpdated`: the job's running total per model (it replaces the previous one);
  `final=True` marks the CLI's own totals, with `cost` only where the CLI priced them.
  Conventions of `Usage` hold for every CLI: input excludes cache reads and writes, and
  reasoning tokens are a part of output tokens;
- `RateLimited` when the CLI reports a rate limit it is retrying;
- on failure one `AgentError` followed by the `AgentResult(is_error=True)`; on success
  one `AgentResult`. Either comes as soon as the CLI says it is done, else at `finish`;
- `Unparsed` for each stdout line that is not the format's JSON (counted in `unparsed`;
  blank lines and stderr are never counted).

Formats:
    claude-stream-json, claude-json   Claude Code (exact `total_cost_usd`)
    codex-jsonl                       Codex `exec --json` (the model from its session file)
    gemini-stream-json, gemini-json   Gemini CLI (errors read from stderr at finish)
    qwen-stream-json                  Qwen Code (Claude's events, Gemini's counts)
    opencode-json                     OpenCode `run --format json`
    copilot-jsonl                     Copilot CLI `--output-format json` (tokens from its
                                      session log)
    cursor-stream-json                Cursor Agent
    generic                           any command; token counts read from its text
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from corral.events.types import Event
from corral.parsing.base import UNKNOWN_MODEL, BaseParser
from corral.parsing.claude import ClaudeJsonParser, ClaudeStreamParser
from corral.parsing.codex import CodexParser
from corral.parsing.copilot import CopilotParser
from corral.parsing.gemini import GeminiJsonParser, GeminiStreamParser
from corral.parsing.generic import GenericParser
from corral.parsing.others import CursorStreamParser, OpenCodeParser, QwenStreamParser


class Parser(Protocol):
    """Reads one job's output, line by line."""

    unparsed: int
    """Stdout lines that could not be read (they stay in the log)."""

    def feed(self, line: str, stream: Literal["stdout", "stderr"]) -> list[Event]:
        """Events for one decoded output line (no newline)."""
        ...

    def finish(self, exit_code: int | None) -> list[Event]:
        """Events owed once the process ended (`None`: killed by a signal)."""
        ...

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        """What the CLI's own files say, read by its adapter once the process ended and
        handed over before `finish`: the model it used (`source`: where that was read)
        and records of its session log. No I/O here either."""
        ...


class UnknownFormatError(KeyError, ValueError):
    """`make_parser` was given a format name it does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown format"


_REGISTRY: dict[str, Callable[[str | None], BaseParser]] = {
    "claude-stream-json": ClaudeStreamParser,
    "claude-json": ClaudeJsonParser,
    "codex-jsonl": CodexParser,
    "gemini-stream-json": GeminiStreamParser,
    "gemini-json": GeminiJsonParser,
    "qwen-stream-json": QwenStreamParser,
    "opencode-json": OpenCodeParser,
    "cursor-stream-json": CursorStreamParser,
    "copilot-jsonl": CopilotParser,
    "generic": GenericParser,
}

FORMATS: tuple[str, ...] = tuple(_REGISTRY)


def make_parser(fmt: str, *, model: str | None = None) -> Parser:
    """A fresh parser for output format `fmt` (one of `FORMATS`).

    `model` is the model the job asked for: it keys the usage of CLIs whose output never
    names a model (Codex `--json`, OpenCode). Raises `UnknownFormatError` (a `ValueError`
    and a `KeyError`) for an unknown format.
    """
    try:
        factory = _REGISTRY[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        raise UnknownFormatError(f"unknown output format {fmt!r} (known: {known})") from None
    return factory(model)


__all__ = ["FORMATS", "UNKNOWN_MODEL", "Parser", "UnknownFormatError", "make_parser"]
