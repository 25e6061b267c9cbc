"""How a job's log is shown, by `corral logs` and by the server's logs route alike.

- `raw`: the lines as the job wrote them (an agent's stream-JSON included);
- `text`: the narrative seen live: an agent's stdout goes through the parser of its
  tool (the one that drove the live view) and its events are worded as `--output
  prefixed` words them (corral.render.narrative); its stderr is the CLI's own noise,
  read by the parser for errors and otherwise left in the log. A plain command's lines
  are its narrative, both streams;
- `json`: the parsed events, one JSON object a line (`{"v": 1, "kind": ...}`, the event
  codec); a plain command's lines are `job.output` events.

Each shown line keeps the stream it came from, so a caller can mark stderr.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import orjson

from corral.events.codec import event_to_dict
from corral.events.types import Event, JobOutput, stamp
from corral.parsing import Parser, make_parser
from corral.render.narrative import narrative
from corral.store.records import AttemptRow, RunRecord

LogFormat = Literal["raw", "text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("raw", "text", "json")
Stream = Literal["stdout", "stderr"]
Shown = tuple[Stream, str]  # (the stream a line came from, the line as shown)


def parser_format(attempt: AttemptRow | None) -> str | None:
    """The output format the attempt's stdout was parsed as (None: a plain command)."""
    if attempt is None or attempt.tool == "generic":
        return None
    from corral.errors import ToolError
    from corral.tools import get_tool
    from corral.tools.base import output_format_in

    try:
        tool = get_tool(attempt.tool)
    except ToolError:  # a tool (a plugin) gone since the run: the lines as written
        return None
    chosen = output_format_in((attempt.spec or {}).get("extra_args") or ())
    return tool.output_formats.get(chosen, tool.parser) if chosen else tool.parser


class LogView:
    """One attempt's log lines, shown in `fmt`: feed every line of a stream in order
    (stdout first, then stderr), then `finish` once the attempt is over."""

    def __init__(self, fmt: LogFormat, attempt: AttemptRow | None, job: str = "") -> None:
        self.fmt = fmt
        self.job = job or (attempt.job if attempt is not None else "")
        self.number = attempt.attempt if attempt is not None else 0
        self.exit_code = attempt.exit_code if attempt is not None else None
        found = parser_format(attempt) if fmt != "raw" else None
        model = attempt.model if attempt is not None else None
        self.parser: Parser | None = make_parser(found, model=model) if found else None

    def line(self, text: str, stream: Stream, offset: int = 0) -> list[Shown]:
        """What one line (decoded, without its newline) shows as."""
        if self.fmt == "raw":
            return [(stream, text)]
        if self.parser is None:
            if self.fmt == "text":
                return [(stream, text)]
            return self._events([JobOutput(stream=stream, text=text, offset=offset)], stream)
        return self._events(self.parser.feed(text, stream), stream)

    def finish(self) -> list[Shown]:
        """What the parser owed once the attempt ended (an error read from stderr...)."""
        if self.parser is None:
            return []
        return self._events(self.parser.finish(self.exit_code), "stdout")

    def _events(self, events: Iterable[Event], stream: Stream) -> list[Shown]:
        if self.fmt == "json":
            return [
                (stream, orjson.dumps(event_to_dict(stamp(e, self.job, self.number))).decode())
                for e in events
            ]
        return [(stream, text) for event in events for text, _ in narrative(event)]


def attempt_of(record: RunRecord, job: str, attempt: int | None) -> AttemptRow | None:
    """The attempt `corral logs` shows: `attempt`, else the job's last (None: not started)."""
    found = record.job(job)
    if found is None or not found.attempts:
        return None
    if attempt is None:
        return found.attempts[-1]
    return next((a for a in found.attempts if a.attempt == attempt), None)


class LineSplitter:
    """Whole lines out of the chunks a log is read (or grows) by, each with the offset
    where it starts in the file; the last, partial line is held back until `flush`."""

    def __init__(self) -> None:
        self.pending = b""
        self.offset = 0  # where `pending` starts in the file

    def feed(self, chunk: bytes) -> list[tuple[str, int]]:
        *complete, self.pending = (self.pending + chunk).split(b"\n")
        found = []
        for raw in complete:
            found.append((_decoded(raw), self.offset))
            self.offset += len(raw) + 1
        return found

    def flush(self) -> list[tuple[str, int]]:
        rest, self.pending = self.pending, b""
        return [(_decoded(rest), self.offset)] if rest else []


def _decoded(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")
