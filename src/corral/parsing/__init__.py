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

Formats are entry points of the `corral.parsers` group (format name = parser class taking
the job's model): a plugin tool ships its parser the way the built-ins below are shipped.
    claude-stream-json, claude-json   Claude Code (exact `total_cost_usd`)
    codex-jsonl                       Codex `exec --json` (the model from its session file)
    gemini-stream-json, gemini-json   Gemini CLI (errors read from stderr at finish)
    qwen-stream-json                  Qwen Code (Claude's events, Gemini's counts)
    opencode-json                     OpenCode `run --format json`
    copilot-jsonl                     Copilot CLI `--output-format json` (tokens from its
                                      session log)
    cursor-stream-json                Cursor Agent
    generic                           text output; token counts read where it prints them
                                      (for a tool whose CLI prints text; plain commands,
                                      the `generic` tool, are not parsed at all)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from corral import plugins
from corral.events.types import Event
from corral.parsing.base import UNKNOWN_MODEL


@runtime_checkable
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


def formats() -> tuple[str, ...]:
    """Every registered output format, sorted."""
    return tuple(plugins.entries(plugins.PARSERS))


def make_parser(fmt: str, *, model: str | None = None) -> Parser:
    """A fresh parser for output format `fmt` (one of `formats()`).

    `model` is the model the job asked for: it keys the usage of CLIs whose output never
    names a model (Codex `--json`, OpenCode). Raises `UnknownFormatError` (a `ValueError`
    and a `KeyError`) for an unknown format.
    """
    ep = plugins.entries(plugins.PARSERS).get(fmt)
    if ep is None:
        known = ", ".join(formats())
        raise UnknownFormatError(f"unknown output format {fmt!r} (known: {known})")
    factory = _FACTORIES.get(fmt)
    if factory is None:
        factory = _FACTORIES[fmt] = plugins.load(ep, plugins.PARSERS, plugins.callable_check)
    try:
        parser = factory(model) if callable(factory) else None
    except Exception as error:  # a broken plugin must name itself, whatever it raised
        raise plugins.PluginError(
            f"parser plugin '{fmt}' ({ep.value}) failed to make a parser: {error}"
        ) from error
    if not isinstance(parser, Parser):
        raise plugins.PluginError(f"parser plugin '{fmt}' ({ep.value}) does not make a parser")
    return parser


_FACTORIES: dict[str, object] = {}


def __getattr__(name: str) -> Any:
    if name == "FORMATS":  # the registered formats, read when first asked for
        return formats()
    raise AttributeError(f"module 'corral.parsing' has no attribute {name!r}")


__all__ = ["FORMATS", "UNKNOWN_MODEL", "Parser", "UnknownFormatError", "make_parser"]
