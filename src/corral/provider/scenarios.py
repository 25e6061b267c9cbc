"""What the simulated model does: scenario values and the pure decision of the next reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_TEXT = "Hello from the corral simulated provider!"
DEFAULT_COMMAND = "echo hello-from-corral-provider"


class Kind(StrEnum):
    """How a scenario behaves on the wire."""

    TEXT = "text"  # answer a text
    TOOL = "tool"  # ask to run shell commands, one per turn, then answer
    ERROR = "error"  # answer every request with an HTTP error
    SLOW = "slow"  # like TEXT (or TOOL), with a pause between streamed events
    HANG = "hang"  # start the stream, then stall until the server stops
    FAILED = "failed"  # start the stream, then fail mid-stream (response.failed, error event)
    BIG = "big"  # a command with a huge output, then a very long answer


@dataclass(frozen=True)
class ScenarioUsage:
    """Token counts reported on every response of a scenario.

    Counted as Anthropic counts them: `input` is the uncached input, and `reasoning` is
    the part of `output` spent thinking. Each API module converts them to its own
    convention (OpenAI and Gemini totals include cached tokens); docs/rehearsal.md
    has the table.
    """

    input: int = 12
    output: int = 11
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @property
    def prompt_total(self) -> int:
        """Every input token, cached or not (OpenAI `input_tokens`, Gemini `promptTokenCount`)."""
        return self.input + self.cache_read + self.cache_write


@dataclass(frozen=True)
class Scenario:
    """One behaviour of the model, selected by the `/s/<id>/` URL prefix."""

    kind: Kind = Kind.TEXT
    text: str = DEFAULT_TEXT
    commands: tuple[str, ...] = ()
    usage: ScenarioUsage = field(default_factory=ScenarioUsage)
    status: int = 429  # ERROR: the HTTP status
    retry_after: int | None = 1  # ERROR: seconds, sent as retry-after on 429/529/503
    message: str = ""  # ERROR / FAILED: the error message (a per-status default if empty)
    delay: float = 0.0  # seconds between streamed events (SLOW sets it)
    size: int = 0  # BIG: characters of the final answer
    model: str = ""  # the model named in responses; empty = echo the requested one

    @classmethod
    def answer(cls, text: str = DEFAULT_TEXT, *, usage: ScenarioUsage | None = None) -> Scenario:
        """The model answers `text`."""
        return cls(Kind.TEXT, text=text, usage=usage or ScenarioUsage())

    @classmethod
    def tool(
        cls, *commands: str, text: str = "", usage: ScenarioUsage | None = None, delay: float = 0.0
    ) -> Scenario:
        """The model runs each shell command in turn, then answers (with the last output)."""
        return cls(
            Kind.TOOL,
            text=text,
            commands=commands or (DEFAULT_COMMAND,),
            usage=usage or ScenarioUsage(),
            delay=delay,
        )

    @classmethod
    def error(cls, status: int, *, message: str = "", retry_after: int | None = 1) -> Scenario:
        """Every request gets HTTP `status` with the API's real error body."""
        return cls(Kind.ERROR, status=status, message=message, retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float = 0.5, text: str = DEFAULT_TEXT) -> Scenario:
        """A text answer streamed with `delay` seconds between events."""
        return cls(Kind.SLOW, text=text, delay=delay)

    @classmethod
    def hang(cls) -> Scenario:
        """The stream starts, then nothing more comes until the provider stops."""
        return cls(Kind.HANG)

    @classmethod
    def failed(cls, message: str = "") -> Scenario:
        """The stream starts, then the model fails mid-stream."""
        return cls(Kind.FAILED, message=message)

    @classmethod
    def big(cls, size: int = 1_000_000, *, lines: int = 100_000) -> Scenario:
        """A command printing `lines` lines (a huge tool result), then `size` characters."""
        return cls(Kind.BIG, commands=(f"seq 1 {lines}",), size=size)

    @classmethod
    def parse(cls, spec: str) -> Scenario:
        """A scenario from a short command-line spec: `text`, `tool`, `error:429`, `slow:0.5`,
        `hang`, `failed`, `big:100000`."""
        name, _, arg = spec.partition(":")
        kind = Kind(name)
        if kind is Kind.ERROR:
            return cls.error(int(arg or 429))
        if kind is Kind.SLOW:
            return cls.slow(float(arg or 0.5))
        if kind is Kind.BIG:
            return cls.big(int(arg or 1_000_000))
        if kind is Kind.TOOL:
            return cls.tool(*([arg] if arg else []))
        if kind is Kind.TEXT and arg:
            return cls.answer(arg)
        return cls(kind)


@dataclass(frozen=True)
class ToolCall:
    """The model asks the CLI to run a shell command."""

    command: str
    text: str = "I'll run a command."


@dataclass(frozen=True)
class Answer:
    """The model answers with text and ends its turn."""

    text: str


Reply = ToolCall | Answer


def next_reply(scenario: Scenario, tool_results: list[str]) -> Reply:
    """What the model says next, given the tool results already in the conversation.

    Counting tool results (rather than turns) keeps this stateless, so one scenario serves
    any number of concurrent CLI sessions.
    """
    step = len(tool_results)
    if scenario.kind in (Kind.TOOL, Kind.BIG) and step < len(scenario.commands):
        return ToolCall(scenario.commands[step])
    if scenario.kind is Kind.BIG:
        return Answer(long_text(scenario.size))
    if scenario.text:
        return Answer(scenario.text)
    last = tool_results[-1] if tool_results else ""
    # a short excerpt: enough for a test to see the command ran, small for a huge result
    return Answer(f"The command printed: {last[:200].strip()}")


def long_text(size: int) -> str:
    """`size` characters that never repeat a phrase.

    Gemini CLI's loop detection flags a repeated sentence and asks the model again, so
    every sentence carries its own number.
    """
    pieces: list[str] = []
    total = 0
    number = 0
    while total < size:
        number += 1
        piece = f"Sentence {number} of a long simulated answer. "
        pieces.append(piece)
        total += len(piece)
    return "".join(pieces)[:size]


def chunk_text(text: str) -> list[str]:
    """Split an answer into streamed deltas: word by word, or 16 KiB pieces for a long one."""
    if len(text) > 4096:
        # a word per event would make a megabyte answer a hundred thousand events
        return [text[i : i + 16384] for i in range(0, len(text), 16384)]
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]
