"""A job's output over HTTP: line ranges of its log files, and following them.

A line's `n` is its number (1-based) in its stream's file for that attempt, and a
client's `offset` is the number of lines of that stream it already has, so a follow
that drops resumes exactly where it stopped. A last line without its newline is held
back until the attempt is over (it may still grow).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from corral.app.history import log_files
from corral.app.logview import LogView, Stream
from corral.errors import CorralError
from corral.models import RunStatus
from corral.server.errors import from_corral
from corral.store.protocols import HistoryReader
from corral.store.records import RunRecord

POLL_S = 0.2
STATUS_EVERY_S = 1.0


@dataclass(frozen=True)
class LogPage:
    lines: list[dict[str, Any]]
    next_offset: int
    at_end: bool


def files_of(
    record: RunRecord, job: str, attempt: int | None, stream: str
) -> list[tuple[str, Path]]:
    """The (stream, file) pairs asked for; 404 for a job or attempt the run lacks."""
    names = ["stdout", "stderr"] if stream == "both" else [stream]
    try:
        return [
            (name, log_files(record, job, attempt=attempt, stderr=name == "stderr")[0].path)
            for name in names
        ]
    except CorralError as error:
        raise from_corral(error) from None


def _lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.splitlines(keepends=True)


def read(
    files: list[tuple[str, Path]],
    offset: int,
    limit: int,
    final: bool = True,
    view: LogView | None = None,
) -> LogPage:
    """`limit` lines after the first `offset` (of the streams one after the other).

    With a `view` (format text or json) each line of the log is shown as the view
    words it, as none or several lines that share its `n`; `offset` and `limit` still
    count the log's lines, and the view reads the skipped ones too (a parser needs the
    whole stream). Once the attempt is over, the last page ends with what the view owed
    at the end (`n` of the stream's last line)."""
    found: list[dict[str, Any]] = []
    taken = skipped = 0
    at_end = True
    last: tuple[int, str] = (0, "stdout")
    for name, path in files:
        start = 0  # where the line starts in the file
        for number, raw in enumerate(_lines(path), start=1):
            start, where = start + len(raw), start
            if not raw.endswith(b"\n") and not final:
                break
            if skipped < offset:
                skipped += 1
                if view is not None:
                    view.line(_text(raw), _stream(name), where)
                continue
            if taken >= limit:
                at_end = False
                break
            taken += 1
            found += _shown(number, name, raw, view, where)
            last = (number, name)
    if view is not None and final and at_end:
        found += [_entry(last[0], s, text) for s, text in view.finish()]
    return LogPage(found, offset + taken, at_end)


def _stream(name: str) -> Stream:
    return "stderr" if name == "stderr" else "stdout"


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")


def _entry(number: int, stream: str, text: str) -> dict[str, Any]:
    return {"n": number, "stream": stream, "text": text}


def _shown(
    number: int, stream: str, raw: bytes, view: LogView | None, where: int
) -> list[dict[str, Any]]:
    if view is None:
        return [_line(number, stream, raw)]
    shown = view.line(_text(raw), _stream(stream), where)
    return [_entry(number, s, text) for s, text in shown]


def _line(number: int, stream: str, raw: bytes) -> dict[str, Any]:
    return _entry(number, stream, _text(raw))


def attempt_over(record: RunRecord, job: str, attempt: int | None) -> bool:
    if record.run.status is not RunStatus.RUNNING:
        return True
    found = record.job(job)
    if found is None:
        return True
    if attempt is None:
        return found.status.is_final
    chosen = next((a for a in found.attempts if a.attempt == attempt), None)
    return chosen is not None and chosen.status.is_final


async def follow(
    history: HistoryReader,
    run_id: str,
    job: str,
    files: list[tuple[str, Path]],
    offsets: list[int],
    attempt: int | None = None,
    view: LogView | None = None,
) -> AsyncIterator[bytes]:
    """NDJSON of the lines after `offsets` (one per stream in `files`) as they are
    written, until the attempt ends; with a `view`, the lines as it shows them."""
    tails = [_Tail(name, path, skip) for (name, path), skip in zip(files, offsets, strict=True)]
    done = False
    since_check = STATUS_EVERY_S
    while True:
        out: list[bytes] = []
        for tail in tails:
            chunk = await asyncio.to_thread(_read_from, tail.path, tail.position)
            tail.position += len(chunk)
            out += tail.lines(chunk, view)
        if out:
            yield b"".join(out)
        if done:
            last = [line for tail in tails for line in tail.rest(view)]
            if view is not None:
                number = tails[0].count
                last += [orjson.dumps(_entry(number, s, t)) + b"\n" for s, t in view.finish()]
            if last:
                yield b"".join(last)
            return
        if since_check >= STATUS_EVERY_S:
            since_check = 0.0
            record = await asyncio.to_thread(history.get_run, run_id)
            done = attempt_over(record, job, attempt)
            if done:
                continue  # read the last lines once more
        await asyncio.sleep(POLL_S)
        since_check += POLL_S


@dataclass
class _Tail:
    """One followed stream: where its file was read to, its line count, the client's
    offset in it, and the partial last line."""

    name: str
    path: Path
    offset: int
    position: int = 0  # how far the file was read
    count: int = 0
    pending: bytes = b""
    start: int = 0  # where the next line starts in the file

    def lines(self, chunk: bytes, view: LogView | None) -> list[bytes]:
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        return [line for raw in complete for line in self._one(raw + b"\n", view)]

    def rest(self, view: LogView | None) -> list[bytes]:
        rest, self.pending = self.pending, b""
        return self._one(rest, view) if rest else []

    def _one(self, raw: bytes, view: LogView | None) -> list[bytes]:
        self.count += 1
        where, self.start = self.start, self.start + len(raw)
        if self.count <= self.offset:
            if view is not None:
                view.line(_text(raw), _stream(self.name), where)  # a parser reads every line
            return []
        shown = _shown(self.count, self.name, raw, view, where)
        return [orjson.dumps(entry) + b"\n" for entry in shown]


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(position)
            return handle.read()
    except FileNotFoundError:
        return b""
