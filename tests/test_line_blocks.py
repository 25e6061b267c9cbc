"""Output lines a run at a time: the spool's blocks, and an attempt that publishes only
the lines that decide a job's last line when no subscriber takes every line."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.events.bus import Bus
from corral.events.types import AssistantText, Event, JobOutput, Stream, stamp
from corral.execute.attempt import AGENT_KEEP_BYTES, AttemptPipeline
from corral.execute.executor import JobRequest
from corral.execute.lines import LineSpool, block_sink
from corral.journal import RunJournal
from corral.render.ui import TerminalUI
from test_process import reference_lines

DATA = Path(__file__).parent / "data" / "parsing" / "claude"
PIECES = [b"a", b"bc", b"\n", b"\r\n", b"\r", b" ", b"\t\n", b"xyz" * 5, "é".encode(), b"\xff"]


def chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in cuts:
        chunks.append(stream[at : at + size])
        at += size
    chunks.append(stream[at:])
    return [c for c in chunks if c]


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from(PIECES), max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=10),
    keep=st.integers(min_value=0, max_value=20),
)
def test_blocks_hold_the_same_lines_however_the_stream_is_chunked(
    data: list[bytes], cuts: list[int], keep: int
) -> None:
    stream = b"".join(data)
    got: list[tuple[bytes, int, bool]] = []

    def block(chunk: bytes, start: int, end: int, offset: int) -> None:
        assert start < end and chunk[end - 1 : end] == b"\n"
        at = offset
        for line in chunk[start : end - 1].split(b"\n"):
            assert len(line) <= keep  # a longer line never comes in a block
            got.append((line[:-1] if line.endswith(b"\r") else line, at, False))
            at += len(line) + 1

    spool = LineSpool(None, lambda line, at, cut: got.append((line, at, cut)), keep, block=block)
    for chunk in chunked(stream, cuts):
        spool.feed(chunk)
    spool.close()
    assert got == reference_lines(stream, keep)


def test_a_chunk_of_short_lines_is_one_block() -> None:
    calls: list[tuple[object, ...]] = []
    spool = LineSpool(
        None,
        lambda line, at, cut: calls.append((line, at, cut)),
        1000,
        block=lambda chunk, start, end, at: calls.append((start, end, at)),
    )
    spool.feed(b"one\ntwo\nthree\nfour")
    spool.feed(b"\nfive\nsix\n")
    spool.close()
    # one call per chunk, but for the line held over from the chunk before
    assert calls == [(0, 14, 0), (b"four", 14, False), (1, 10, 19)]


def request(parser: str | None = None) -> JobRequest:
    return JobRequest(
        job="j",
        attempt=1,
        argv=("x",),
        cwd=None,
        env={},
        log_dir=Path("/nonexistent"),
        tool="claude" if parser else "generic",
        parser=parser,
    )


class Attempt:
    """One attempt's pipeline on a bus with the run's journal, fed through two spools."""

    def __init__(self, every_line: bool, parser: str | None = None, keep: int = 16) -> None:
        self.bus = Bus()
        self.journal = RunJournal(["j"])
        if parser:
            self.journal.job("j").tool = "claude"
        self.bus.subscribe(self.journal, output="last")
        self.seen: list[Event] = []
        self.bus.subscribe(self.seen.append, output=True if every_line else "last")
        assert self.bus.every_line is every_line
        self.pipeline = AttemptPipeline(request(parser), self.bus.publish)
        self.pipeline.started()
        self.spools = {
            name: LineSpool(
                None,
                lambda line, at, cut, name=name: self.pipeline.line(name, line, at, cut),
                keep,
                block=block_sink(self.pipeline.line, name),
            )
            for name in ("stdout", "stderr")
        }

    def feed(self, stream: Stream, chunk: bytes) -> None:
        self.spools[stream].feed(chunk)

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()

    @property
    def outputs(self) -> list[JobOutput]:
        return [e for e in self.seen if isinstance(e, JobOutput)]


@settings(max_examples=200, deadline=None)
@given(
    feeds=st.lists(
        st.tuples(
            st.sampled_from(["stdout", "stderr"]),
            st.lists(st.sampled_from([*PIECES, b"\n\n", b"x" * 20 + b"\n"]), max_size=12),
        ),
        max_size=12,
    )
)
def test_the_last_lines_are_those_every_line_gives(feeds: list[tuple[Stream, list[bytes]]]) -> None:
    every, last = Attempt(every_line=True), Attempt(every_line=False)
    for stream, pieces in feeds:
        chunk = b"".join(pieces)
        if not chunk:
            continue
        before = len(last.outputs)
        every.feed(stream, chunk)
        last.feed(stream, chunk)
        # what the live table reads between two reads of the logs
        assert last.journal.job("j").last_line == every.journal.job("j").last_line
        # one per run of short lines (two runs span more than `keep` bytes), one per
        # line too long for a run and one held over: never one per line
        long_lines = sum(len(line) > 16 for line in chunk.split(b"\n"))
        assert len(last.outputs) - before <= 2 * (len(chunk) // 17) + long_lines + 2
    every.close()
    last.close()
    assert last.journal.job("j").last_line == every.journal.job("j").last_line
    assert last.pipeline.last_stdout == every.pipeline.last_stdout
    assert last.pipeline.last_stderr == every.pipeline.last_stderr
    # the lines published are lines every subscriber would have had, in order
    published = iter(every.outputs)
    assert all(any(o == e for e in published) for o in last.outputs)


def test_no_event_per_line_when_nobody_takes_every_line() -> None:
    lines = b"".join(b'{"n": %d}\n' % n for n in range(5000)) + b"   \n"
    last = Attempt(every_line=False, keep=256 * 1024)
    last.feed("stdout", lines)
    last.feed("stderr", b"\nwarning: one\nwarning: two\n")
    last.close()
    assert [(o.stream, o.text) for o in last.outputs] == [
        ("stdout", "   "),
        ("stderr", "warning: one"),
    ]
    assert last.pipeline.last_stdout == '{"n": 4999}'
    assert last.pipeline.last_stderr == "warning: two"
    assert last.journal.job("j").last_line == "   "


def test_an_agent_says_the_same_whoever_listens() -> None:
    stream = (DATA / "claude_tool_stream.jsonl").read_bytes()
    runs = {}
    for every_line in (True, False):
        attempt = Attempt(every_line, parser="claude-stream-json", keep=AGENT_KEEP_BYTES)
        for at in range(0, len(stream), 700):
            attempt.feed("stdout", stream[at : at + 700])
        attempt.close()
        attempt.pipeline.finish(0)
        said = [e for e in attempt.seen if not isinstance(e, JobOutput)]
        runs[every_line] = (said, attempt.pipeline.last_stdout, attempt.pipeline.session_id)
    assert runs[True] == runs[False]
    assert any(isinstance(e, AssistantText) for e in runs[True][0])


def test_a_subscriber_that_takes_every_line_gets_every_line() -> None:
    bus = Bus()
    bus.subscribe(lambda e: None, output="last")
    assert not bus.every_line
    taker: list[Event] = []
    bus.subscribe(taker.append)
    assert bus.every_line
    bus.unsubscribe(taker.append)
    assert not bus.every_line
    bus.subscribe(lambda e: None, output=False)
    assert not bus.every_line


def test_only_prefixed_output_shows_every_line() -> None:
    shows = {
        mode: TerminalUI(mode=mode, stream=io.StringIO(), title="t").shows_lines
        for mode in ("prefixed", "grouped", "quiet", "live")
    }
    assert shows == {"prefixed": True, "grouped": False, "quiet": False, "live": False}


def test_stamping_a_fresh_event_keeps_it_and_never_changes_one_stamped_before() -> None:
    fresh = AssistantText(text="hi")
    stamped = stamp(fresh, "a", 2)
    assert stamped is fresh and (stamped.job, stamped.attempt) == ("a", 2)
    assert stamp(stamped, "a", 2) is stamped
    other = stamp(stamped, "b", 1)
    assert (other.job, other.attempt) == ("b", 1)
    assert (stamped.job, stamped.attempt) == ("a", 2)  # what was published stays as it was


AGENT_LINES = [
    line + b"\n" for line in (DATA / "claude_tool_stream.jsonl").read_bytes().splitlines()
]


@settings(max_examples=100, deadline=None)
@given(
    feeds=st.lists(
        st.tuples(
            st.sampled_from(["stdout", "stderr"]),
            st.lists(st.sampled_from([*AGENT_LINES, *PIECES, b"\n\n", b"  \n"]), max_size=8),
        ),
        max_size=10,
    )
)
def test_an_agent_block_reads_as_every_line_does(feeds: list[tuple[Stream, list[bytes]]]) -> None:
    # the agent's block loop (`_parse_block`) against the line-by-line path
    every = Attempt(every_line=True, parser="claude-stream-json", keep=AGENT_KEEP_BYTES)
    last = Attempt(every_line=False, parser="claude-stream-json", keep=AGENT_KEEP_BYTES)
    for stream, pieces in feeds:
        chunk = b"".join(pieces)
        if chunk:
            every.feed(stream, chunk)
            last.feed(stream, chunk)
            assert last.journal.job("j").last_line == every.journal.job("j").last_line
    for attempt in (every, last):
        attempt.close()
        attempt.pipeline.finish(0)
    said = [[e for e in a.seen if not isinstance(e, JobOutput)] for a in (every, last)]
    assert said[0] == said[1]
    assert last.pipeline.last_stdout == every.pipeline.last_stdout
    assert last.pipeline.last_stderr == every.pipeline.last_stderr
    assert last.pipeline.session_id == every.pipeline.session_id
