"""The registry loads adapters from entry points only, and names what it cannot load."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint, EntryPoints
from typing import ClassVar

import pytest

from corral import plugins
from corral.config.schema import JobSpec
from corral.errors import ToolError
from corral.events.types import AgentResult, Event
from corral.tools import Invocation, Tool, all_tools, get_tool, registry
from corral.tools.claude import ClaudeTool
from corral.tools.cursor import CursorAgentTool


class EchoTool(Tool):
    """A third-party adapter, as a plugin would write it."""

    name: ClassVar[str] = "echo-agent"
    supports: ClassVar[frozenset[str]] = frozenset({"prompt"})
    executable_names: ClassVar[tuple[str, ...]] = ("echo",)
    parser: ClassVar[str] = "generic"

    def build(self, job: JobSpec, *, executable: str, resume_session: str | None) -> Invocation:
        return Invocation((executable, job.prompt or ""), {}, self.parser)


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.all_tools.cache_clear()
    registry._loaded.cache_clear()
    plugins.entries.cache_clear()
    plugins.installed.cache_clear()
    yield
    registry.all_tools.cache_clear()
    registry._loaded.cache_clear()
    plugins.entries.cache_clear()
    plugins.installed.cache_clear()


def with_entry_points(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str]) -> None:
    # the one place every registry reads its entry points from
    eps = [EntryPoint(name, value, registry.GROUP) for name, value in points]
    monkeypatch.setattr(plugins, "entry_points", lambda: EntryPoints(eps))


def test_builtins_come_from_the_package_entry_points() -> None:
    tools = all_tools()
    assert list(tools) == [
        "claude", "codex", "copilot", "cursor-agent", "gemini", "generic", "opencode", "qwen",
    ]  # fmt: skip
    assert isinstance(tools["claude"], ClaudeTool)
    assert isinstance(tools["cursor-agent"], CursorAgentTool)
    assert all_tools() is tools  # cached


def test_a_plugin_registers_like_a_builtin(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    with_entry_points(
        monkeypatch,
        ("echo-agent", f"{__name__}:EchoTool"),
        ("claude", "corral.tools.claude:ClaudeTool"),
    )
    assert list(all_tools()) == ["claude", "echo-agent"]
    inv = get_tool("echo-agent").build(
        JobSpec(prompt="hi"), executable="/bin/echo", resume_session=None
    )
    assert inv.argv == ("/bin/echo", "hi")


def test_did_you_mean() -> None:
    with pytest.raises(ToolError) as caught:
        get_tool("cladue")
    assert caught.value.lines() == ["unknown tool 'cladue' (did you mean 'claude'?)"]
    with pytest.raises(ToolError) as caught:
        get_tool("zzz")
    assert "known tools: claude, codex" in caught.value.lines()[0]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([("echo-agent", "no.such.module:Thing")], "tool plugin 'echo-agent' .* failed to load"),
        ([("echo-agent", "corral.errors:ToolError")], "is not a corral.tools.Tool subclass"),
        ([("other-name", f"{__name__}:EchoTool")], "calls itself 'echo-agent'"),
        (
            [("claude", "corral.tools.claude:ClaudeTool"), ("claude", f"{__name__}:EchoTool")],
            "tool 'claude' is registered twice",
        ),
    ],
)
def test_broken_plugins_name_themselves(
    monkeypatch: pytest.MonkeyPatch,
    fresh_registry: None,
    points: list[tuple[str, str]],
    message: str,
) -> None:
    with_entry_points(monkeypatch, *points)
    with pytest.raises(ToolError, match=message):
        all_tools()


class ShoutParser:
    """A third-party parser: every stdout line is the agent's answer, in capitals."""

    unparsed = 0

    def __init__(self, model: str | None = None) -> None:
        self.last = ""

    def feed(self, line: str, stream: str) -> list[Event]:
        if stream == "stdout":
            self.last = line.upper()
        return []

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        return []

    def finish(self, exit_code: int | None) -> list[Event]:
        return [AgentResult(text=self.last, is_error=exit_code != 0)]


def test_a_plugin_tool_ships_its_parser(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    from corral.parsing import formats, make_parser

    points = {
        plugins.PARSERS: [
            EntryPoint("shout", f"{__name__}:ShoutParser", plugins.PARSERS),
            EntryPoint("claude-json", "corral.parsing.claude:ClaudeJsonParser", plugins.PARSERS),
        ],
        plugins.TOOLS: [EntryPoint("echo-agent", f"{__name__}:ShoutingEcho", plugins.TOOLS)],
    }
    monkeypatch.setattr(
        plugins, "entry_points", lambda: EntryPoints(e for p in points.values() for e in p)
    )
    assert formats() == ("claude-json", "shout")
    parser = make_parser("shout")
    parser.feed("hello", "stdout")
    assert parser.finish(0) == [AgentResult(text="HELLO")]
    # the tool names the parser by its entry-point name, as a built-in does
    inv = get_tool("echo-agent").build(JobSpec(prompt="x"), executable="e", resume_session=None)
    assert inv.parser == "shout"


class ShoutingEcho(EchoTool):
    parser: ClassVar[str] = "shout"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no.such.module:Parser", "parser plugin 'bad' .* failed to load"),
        ("corral.errors:EXIT_OK", "parser plugin 'bad' .* is not callable"),
        ("builtins:str", "parser plugin 'bad' .* does not make a parser"),
        ("builtins:dict", "parser plugin 'bad' .* failed to make a parser"),
    ],
)
def test_a_broken_parser_plugin_names_itself(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None, value: str, message: str
) -> None:
    from corral import parsing

    parsing._FACTORIES.clear()
    points = [EntryPoint("bad", value, plugins.PARSERS)]
    monkeypatch.setattr(plugins, "entry_points", lambda: EntryPoints(points))
    with pytest.raises(plugins.PluginError, match=message):
        parsing.make_parser("bad")
    parsing._FACTORIES.clear()
