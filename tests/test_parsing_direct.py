"""Claude-shaped parsers read the usual line (one JSON object on stdout) by a direct path:
it must give what the general path (`BaseParser.feed` -> `on_stdout`) gives, event for
event, for recorded lines, lines with wrong types in their fields, and cut lines."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from corral.events.types import Event
from corral.parsing import make_parser
from corral.parsing.claude import ClaudeStreamParser
from test_parsing_fuzz import FUZZ, LINES, SAMPLES, exit_codes, mangle

CLAUDE_SHAPED = [(f, p) for f, p in SAMPLES if f.startswith(("claude", "qwen", "cursor"))]


def both(fmt: str, feed: list[tuple[str, str]], exit_code: int | None) -> None:
    """The events and unparsed count of the direct path equal the general path's."""
    outcomes: list[tuple[list[Event], int, str | None]] = []
    for direct in (True, False):
        parser = make_parser(fmt)
        assert isinstance(parser, ClaudeStreamParser) and parser._direct
        parser._direct = direct
        events: list[Event] = []
        for line, stream in feed:
            events += parser.feed(line, stream)  # type: ignore[arg-type]  # valid names
        events += parser.finish(exit_code)
        outcomes.append((events, parser.unparsed, parser.last_text))
    assert outcomes[0] == outcomes[1]


@FUZZ
@given(sample=st.sampled_from(CLAUDE_SHAPED), data=st.data(), exit_code=exit_codes)
def test_direct_path_equals_general_path(
    sample: tuple[str, Path], data: st.DataObject, exit_code: int | None
) -> None:
    fmt, path = sample
    feed = []
    for recorded in LINES[path]:
        line, how = recorded, data.draw(st.integers(0, 3))
        if how == 1 and line.startswith("{"):  # wrong types in its fields
            line = json.dumps(mangle(data, json.loads(line)))
        elif how == 2:  # cut short
            line = line[: data.draw(st.integers(0, len(line)))]
        feed.append((line, data.draw(st.sampled_from(["stdout", "stdout", "stderr"]))))
    both(fmt, feed, exit_code)


def test_odd_message_ids_and_blocks_read_as_before() -> None:
    lines = [
        '{"type":"assistant","message":{"id":["m"],"usage":{"input_tokens":1},'
        '"content":[{"type":"text","text":"a"}]}}',
        '{"type":"assistant","message":{"id":{"a":1},"content":[7,{"type":"text","text":5}]}}',
        '{"type":"assistant","message":{"id":"m1","model":"","usage":{"output_tokens":2},'
        '"content":[{"type":"tool_use","name":"Bash","input":{"command":"ls"}}]}}',
        '{"type":"user","message":{"content":[3,{"type":"tool_result","tool_use_id":"x"}]}}',
        '{"type":"assistant","message":"text"}',
        "[1, 2]",
        "{not json",
        "   ",
    ]
    both("claude-stream-json", [(line, "stdout") for line in lines], 0)


def test_a_subclass_with_its_own_on_stdout_keeps_the_general_path() -> None:
    class Own(ClaudeStreamParser):
        def on_stdout(self, line: str) -> list[Event]:
            return []

    parser = Own()
    assert not parser._direct
    assert parser.feed('{"type":"system","subtype":"init","session_id":"s"}', "stdout") == []
