"""Split a byte stream into lines of any length while spooling every byte to a log file.

Memory stays bounded: a line longer than `keep` bytes is cut in memory (and flagged),
never in the log; with `compact_json` (an agent's JSON stream) it is shrunk instead, its
strings cut while it is read (corral.execute.jsonshrink), so its structure and token
counts survive. A last line without a newline is still delivered at `close()`.

Given a `block` sink, the spool hands over each run of whole lines of a chunk (none
longer than `keep`) in one call, as the chunk and the bounds of the run, instead of one
call per line: a reader that needs only some of the lines (the last one, say) then
looks at those alone. A line held over from the chunk before, or longer than `keep`,
still goes to `sink`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from corral.events.types import Stream
from corral.execute.jsonshrink import Shrinker

# (line bytes without the newline, offset of the line in the log, cut short in memory?)
LineSink = Callable[[bytes, int, bool], None]
# (chunk, start, end, offset of chunk[start] in the log): chunk[start:end] is one or more
# whole lines, each ending with its newline (and maybe a carriage return before it)
BlockSink = Callable[[bytes, int, int, int], None]


@runtime_checkable
class BlockReader(Protocol):
    """Takes a stream's lines a run at a time (`AttemptPipeline` does)."""

    def lines(self, stream: Stream, data: bytes, start: int, end: int, offset: int) -> None: ...


def block_sink(on_line: Callable[..., None], stream: Stream) -> BlockSink | None:
    """The block sink of `stream` when `on_line` is the `line` method of a reader that
    also takes runs of lines (`BlockReader`), else None (one call per line)."""
    reader = getattr(on_line, "__self__", None)
    if isinstance(reader, BlockReader):
        return functools.partial(reader.lines, stream)
    return None


class LineSpool:
    """One stream of a child: every byte to its log, each line to `sink` (see above)."""

    def __init__(
        self,
        path: str | None,
        sink: LineSink,
        keep: int,
        *,
        compact_json: bool = False,
        block: BlockSink | None = None,
    ) -> None:
        # no path: the bytes are already in a log (a supervised job writes its own)
        self._fd = (
            -1
            if path is None
            else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        )
        self._sink = sink
        self._block = block
        self._keep = keep
        self._parts: list[bytes] = []
        self._held = 0  # bytes of the current line held in memory
        self._cut = False
        self._compact = compact_json
        self._shrinker: Shrinker | None = None  # the current line, past `keep`, shrinking
        self._line_start = 0
        self.size = 0

    def feed(self, data: bytes) -> None:
        # write first: the log holds every byte as it arrives, whatever happens next
        view = memoryview(data) if self._fd >= 0 else memoryview(b"")
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        start = 0
        base = self.size
        self.size += len(data)
        if self._block is not None:
            self._feed_blocks(data, base)
            return
        sink, keep = self._sink, self._keep
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            if self._parts or self._cut or self._shrinker is not None or newline - start > keep:
                self._hold(data, start, newline)
                self._emit()
            else:  # the usual line: whole in this chunk and short enough, straight out
                end = newline - 1 if newline > start and data[newline - 1] == 13 else newline
                sink(data[start:end], self._line_start, False)
            start = newline + 1
            self._line_start = base + start
        if start < len(data):
            self._hold(data, start, len(data))

    def _feed_blocks(self, data: bytes, base: int) -> None:
        assert self._block is not None
        start, end, keep = 0, len(data), self._keep
        while start < end:
            if self._parts or self._cut or self._shrinker is not None:
                last = -1  # the rest of a held line first, on its own
            else:
                # the last newline within `keep` bytes: every line before it is short
                last = data.rfind(b"\n", start, start + keep + 1)
            if last >= 0:
                self._block(data, start, last + 1, base + start)
                start = last + 1
            else:  # held over, or longer than `keep`: one line, as without blocks
                newline = data.find(b"\n", start)
                if newline < 0:
                    break
                self._hold(data, start, newline)
                self._emit()
                start = newline + 1
            self._line_start = base + start
        if start < end:
            self._hold(data, start, end)

    def _hold(self, data: bytes, start: int, end: int) -> None:
        if self._shrinker is not None:
            self._shrinker.feed(data[start:end])
            return
        room = self._keep - self._held
        if self._compact and end - start > room:
            self._shrinker = Shrinker()
            for part in self._parts:
                self._shrinker.feed(part)
            self._shrinker.feed(data[start:end])
            self._parts, self._held = [], 0
            return
        if room <= 0:
            self._cut = self._cut or end > start
            return
        if end - start > room:
            end = start + room
            self._cut = True
        if end > start:
            self._parts.append(data[start:end] if start or end != len(data) else data)
            self._held += end - start

    def _emit(self) -> None:
        if self._shrinker is not None:
            self._parts, self._cut = [self._shrinker.result()], True
            self._shrinker = None
        line = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        if line.endswith(b"\r"):
            line = line[:-1]
        self._sink(line, self._line_start, self._cut)
        self._parts = []
        self._held = 0
        self._cut = False

    def close(self) -> None:
        if self._parts or self._cut or self._shrinker is not None:
            self._emit()
        if self._fd >= 0:
            os.close(self._fd)
