"""Property tests: no input makes a parser raise, and noise never changes the totals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.events.types import AgentResult, Event, Unparsed, UsageUpdated
from corral.parsing import FORMATS, make_parser

DATA = Path(__file__).parent / "data" / "parsing"

# (format, capture) pairs whose stdout is the format's own output
SAMPLES: list[tuple[str, Path]] = [
    *(("claude-stream-json", p) for p in sorted(DATA.glob("claude/*.jsonl"))),
    *(("claude-json", p) for p in sorted(DATA.glob("claude/claude_*json.txt"))),
    *(("codex-jsonl", p) for p in sorted(DATA.glob("codex/*.jsonl"))),
    *(("gemini-stream-json", p) for p in sorted(DATA.glob("gemini/*.jsonl"))),
    *(("gemini-json", p) for p in sorted(DATA.glob("gemini/*.json")) if p.stat().st_size),
    ("qwen-stream-json", DATA / "others" / "qwen_stream.jsonl"),
    *(("qwen-stream-json", p) for p in sorted(DATA.glob("qwen/qwen_*.out")) if p.stat().st_size),
    ("opencode-json", DATA / "others" / "opencode.jsonl"),
    *(("opencode-json", p) for p in sorted(DATA.glob("opencode/*.out")) if p.stat().st_size),
    *(("copilot-jsonl", p) for p in sorted(DATA.glob("copilot/*.out"))),
    ("cursor-stream-json", DATA / "others" / "cursor_documented.jsonl"),
    ("generic", DATA / "codex" / "codex_text.stderr.txt"),
]
LINES = {path: path.read_text().splitlines() for _, path in SAMPLES}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

streams = st.sampled_from(["stdout", "stderr"])
exit_codes = st.one_of(
    st.none(), st.sampled_from([0, 1, 41, 53, 55, 130, 143, 144, 145, 173, 244, 247])
)
decoded_bytes = st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace"))
wrong_values = st.sampled_from(
    [None, "", "12", "x", [], {}, [1, "a"], {"a": None}, -1, 0, 1.5, 10**30, True, float("nan")]
)


def run(fmt: str, feed: list[tuple[str, str]], exit_code: int | None) -> tuple[list[Event], int]:
    parser = make_parser(fmt)
    events: list[Event] = []
    for line, stream in feed:
        out = parser.feed(line, stream)  # type: ignore[arg-type]  # the strategy draws valid names
        assert isinstance(out, list) and all(isinstance(e, Event) for e in out)
        events += out
    events += parser.finish(exit_code)
    assert parser.unparsed == sum(isinstance(e, Unparsed) for e in events)
    assert parser.unparsed <= sum(1 for line, s in feed if s == "stdout" and line.strip())
    return events, parser.unparsed


def mangle(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """The same JSON with some values swapped for values of the wrong type."""
    if isinstance(value, dict):
        return {
            k: data.draw(wrong_values)
            if data.draw(st.integers(0, 9)) == 0
            else mangle(data, v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list) and depth < 6:
        return [mangle(data, v, depth + 1) for v in value]
    return value


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    feed=st.lists(st.tuples(st.one_of(st.text(max_size=200), decoded_bytes), streams), max_size=30),
    exit_code=exit_codes,
)
def test_random_lines_never_raise(
    fmt: str, feed: list[tuple[str, str]], exit_code: int | None
) -> None:
    run(fmt, feed, exit_code)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data(), exit_code=exit_codes)
def test_truncated_lines_never_raise(
    sample: tuple[str, Path], data: st.DataObject, exit_code: int | None
) -> None:
    fmt, path = sample
    feed = []
    for line in LINES[path]:
        cut = data.draw(st.integers(0, len(line)))
        feed.append((line[:cut] if data.draw(st.booleans()) else line, "stdout"))
    run(fmt, feed, exit_code)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data(), exit_code=exit_codes)
def test_wrong_types_in_fields_never_raise(
    sample: tuple[str, Path], data: st.DataObject, exit_code: int | None
) -> None:
    fmt, path = sample
    text = path.read_text()
    docs = (
        [json.loads(text)]
        if fmt == "gemini-json"
        else [json.loads(x) for x in LINES[path] if x.startswith("{")]
    )
    feed = [
        (json.dumps(mangle(data, doc), indent=2 if fmt == "gemini-json" else None), "stdout")
        for doc in docs
    ]
    lines = [(piece, stream) for block, stream in feed for piece in block.splitlines()]
    run(fmt, lines, exit_code)


def test_known_wrong_types() -> None:
    # the cases named in the brief, one by one: usage as a string, content as null, ...
    bad = [
        '{"type":"assistant","message":{"id":"m","usage":"lots","content":null}}',
        '{"type":"assistant","message":null}',
        '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":5}]},"tool_result_meta":"x"}',
        '{"type":"result","modelUsage":{"m":"x"},"usage":[],"total_cost_usd":"free","num_turns":"2"}',
        '{"type":"result","modelUsage":{"m":{"inputTokens":-5,"costUSD":NaN}},"is_error":true}',
        '{"type":"system","subtype":"api_retry","error_status":"429","retry_delay_ms":"soon"}',
        '{"type":"turn.completed","usage":"12"}',
        '{"type":"item.completed","item":[]}',
        '{"type":"result","stats":{"models":{"g":{"tokens":"many"}}},"status":"error","error":"boom"}',
        '{"type":"step_finish","part":{"tokens":{"cache":5},"cost":"0.1"}}',
        '{"type":"tool_call","subtype":"completed","tool_call":[]}',
        '[1, 2, {"type": "result"}]',
        "{" * 5000,
        "[" * 5000,
    ]
    for fmt in FORMATS:
        _, unparsed = run(fmt, [(line, "stdout") for line in bad], 1)
        if fmt != "generic":  # at least the two unbalanced nests are unreadable
            assert 2 <= unparsed <= len(bad)


# -- noise does not change the accounting ----------------------------------------------------

garbage = st.from_regex(r"[A-Za-z!#%&*<>?@~][A-Za-z !#%&*<>?@~\\/|]{0,60}", fullmatch=True)


def summary(events: list[Event]) -> tuple[Any, ...]:
    usages = [e for e in events if isinstance(e, UsageUpdated)]
    last = usages[-1] if usages else None
    final = last and (last.by_model, last.cost, last.cost_by_model, last.final)
    outcome = [
        (e.is_error, e.error_kind, e.session_id) for e in events if isinstance(e, AgentResult)
    ]
    return final, outcome


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data())
def test_blank_and_garbage_lines_do_not_change_totals(
    sample: tuple[str, Path], data: st.DataObject
) -> None:
    fmt, path = sample
    clean = [(line, "stdout") for line in LINES[path]]
    # in plain text any line is content (a line may even split "tokens used" from its
    # number), so only blank lines are noise there
    blank = st.sampled_from(["", "   ", "\t"])
    extras = st.lists(blank if fmt == "generic" else st.one_of(blank, garbage), max_size=3)
    noisy: list[tuple[str, str]] = []
    noise = 0
    for item in clean:
        for extra in data.draw(extras):
            noisy.append((extra, "stdout"))
            noise += bool(extra.strip())
        noisy.append(item)
    expected, expected_unparsed = run(fmt, clean, 0)
    got, unparsed = run(fmt, noisy, 0)
    assert summary(got) == summary(expected)
    assert unparsed == expected_unparsed + noise


def test_a_multi_megabyte_tool_result_line() -> None:
    big = "x" * 8_000_000
    line = json.dumps(
        {
            "type": "user",
            "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": big}]},
        }
    )
    parser = make_parser("claude-stream-json")
    (event,) = parser.feed(line, "stdout")
    assert parser.unparsed == 0 and event.call_id == "t"  # type: ignore[attr-defined]  # a ToolResult
    truncated = parser.feed(line[: len(line) // 2], "stdout")
    assert parser.unparsed == 1 and len(truncated[0].preview) == 200  # type: ignore[attr-defined]  # an Unparsed
