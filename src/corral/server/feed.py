"""The direct feed from a run's worker to the server that started it: each stored event,
with its number in the history, as soon as it is published.

The history writer batches its writes (tens of milliseconds) and the server would only
see an event once it is committed and read back. Instead the worker's history writer
numbers each event when it is published (`corral.store.writer`), and `FeedSender`, one of
its listeners, writes it as a JSON line into a pipe the server passed the worker
(`WorkOrder.live_fd`); `read_feed` on the server hands each line to the event hub. The
number is the history's, so a client that saw an event live resumes from the history
with it, and the hub fills any hole from the history.

Writes are coalesced: an event after a quiet spell is written at once and opens a window
of `WINDOW_S` (5 ms); the events published within it are written together when it ends
(one write, one wake and one read of the server for a burst, instead of one per event).
The server reads what the pipe holds in one go and splits it into lines. A worker that
dies mid-write leaves a torn last line, which the reader drops (the history has it).

The feed never slows the run: the pipe is non-blocking, what the server has not read yet
waits in a bounded buffer, and a server that stops reading (or goes away) only ends the
feed. Then, and after the worker exits, the hub follows the run from the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import orjson

from corral.events.types import Event
from corral.store.apply import payload_of

MAX_BACKLOG = 8 * 1024 * 1024  # bytes the server may fall behind before the feed ends
MAX_LINE = 64 * 1024 * 1024  # a longer event ends the feed (the hub reads it from the history)
WINDOW_S = 0.005  # the events of a burst wait this long at most, to go in one write
READ_BYTES = 256 * 1024  # the server reads up to this much of the pipe at once


def encode(run_id: str, seq: int, ts: float, event: Event) -> bytes:
    """One event as a feed line: its number and its JSON as the history stores it
    (`payload_of`: orjson from the dataclass, not `event_to_dict`'s dict)."""
    head = orjson.dumps({"run_id": run_id, "seq": seq, "ts": ts, "type": type(event).__name__})
    return b'%s,"event":%s}\n' % (head[:-1], payload_of(event).encode())


class FeedSender:
    """A history writer's listener (`SeqListener`) that writes each event into the pipe.

    Called on the run's event loop. Writes what the pipe takes at once; the rest waits
    in a buffer flushed when the pipe is writable again; past `limit` bytes, or when the
    server is gone, the feed ends (the fd is closed) and the run goes on.
    """

    def __init__(self, fd: int, *, limit: int = MAX_BACKLOG, window_s: float = WINDOW_S) -> None:
        os.set_inheritable(fd, False)  # the jobs must not hold the server's pipe open
        os.set_blocking(fd, False)
        self._fd = fd
        self._limit = limit
        self._backlog = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None  # set while waiting for the pipe
        self._window: asyncio.TimerHandle | None = None  # set while a window collects
        self._window_s = window_s
        self.sent = 0

    @property
    def open(self) -> bool:
        return self._fd >= 0

    def __call__(self, run_id: str, seq: int, ts: float, event: Event) -> None:
        if self._fd < 0:
            return
        self._backlog += encode(run_id, seq, ts, event)
        self.sent += 1
        if self._loop is not None or self._window is not None:
            return  # waiting for the pipe, or in a window: written in order, later
        self._flush()
        if self._fd >= 0 and self._loop is None:
            self._open_window()

    def _open_window(self) -> None:
        """Hold the events of the next `WINDOW_S` for one write (none off the loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published off the loop: each is written at once
            return
        self._window = loop.call_later(self._window_s, self._close_window)

    def _close_window(self) -> None:
        self._window = None
        if self._backlog and self._loop is None:
            self._flush()

    def finish(self) -> None:
        """Write what waits (as far as the pipe takes it) and end the feed: the run is over."""
        if self._window is not None:
            self._window.cancel()
            self._window = None
        if self._backlog and self._loop is None:
            self._flush()
        self.close()

    def _flush(self) -> None:
        try:
            while self._backlog:
                written = os.write(self._fd, self._backlog)
                del self._backlog[:written]
        except BlockingIOError:
            if len(self._backlog) > self._limit:
                self.close()  # the server does not read: it follows the history instead
            else:
                self._wait_for_pipe()
            return
        except OSError:  # the server went away (EPIPE): nobody to feed
            self.close()
            return
        if self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._loop = None

    def _wait_for_pipe(self) -> None:
        if self._loop is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published off the loop: the next event flushes it
            return
        loop.add_writer(self._fd, self._flush)
        self._loop = loop

    def close(self) -> None:
        """End the feed (the server then follows the run from the history)."""
        if self._fd < 0:
            return
        if self._window is not None:
            self._window.cancel()
            self._window = None
        if self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._loop = None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        self._backlog.clear()


async def read_feed(fd: int, on_line: Callable[[dict[str, Any]], None]) -> None:
    """Read a worker's feed until it ends (the worker exited or gave up), calling
    `on_line` with each decoded line, in order; a line that does not decode ends the feed.
    Reads what the pipe holds at once (up to `READ_BYTES`) and splits it into lines."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_BYTES)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    pieces: list[bytes] = []  # the start of a line whose end has not come yet
    waiting = 0  # their length
    try:
        while True:
            chunk = await reader.read(READ_BYTES)
            if not chunk:
                return  # the end (a partial last line is the worker's death mid-write)
            if b"\n" not in chunk:  # a long line: kept in pieces, joined once it ends
                pieces.append(chunk)
                waiting += len(chunk)
                if waiting > MAX_LINE:
                    return  # an event over MAX_LINE: the rest comes from the history
                continue
            if pieces:
                pieces.append(chunk)
                chunk = b"".join(pieces)
                pieces.clear()
            lines = chunk.split(b"\n")
            rest = lines.pop()
            if rest:
                pieces.append(rest)
            waiting = len(rest)
            for line in lines:
                if len(line) > MAX_LINE:
                    return  # an event over MAX_LINE: the rest comes from the history
                try:
                    decoded = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return
                on_line(decoded)
    finally:
        transport.close()
