"""The direct feed from a run's worker to the server that started it: each stored event,
with its number in the history, as soon as it is published.

The history writer batches its writes (tens of milliseconds) and the server would only
see an event once it is committed and read back. Instead the worker's history writer
numbers each event when it is published (`corral.store.writer`), and `FeedSender`, one of
its listeners, writes it at once as a JSON line into a pipe the server passed the worker
(`WorkOrder.live_fd`); `read_feed` on the server hands each line to the event hub. The
number is the history's, so a client that saw an event live resumes from the history
with it, and the hub fills any hole from the history.

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

from corral.events.codec import event_to_dict
from corral.events.types import Event

MAX_BACKLOG = 8 * 1024 * 1024  # bytes the server may fall behind before the feed ends
MAX_LINE = 64 * 1024 * 1024  # a longer event ends the feed (the hub reads it from the history)


def encode(run_id: str, seq: int, ts: float, event: Event) -> bytes:
    """One event as a feed line."""
    body = {
        "run_id": run_id,
        "seq": seq,
        "ts": ts,
        "type": type(event).__name__,
        "event": event_to_dict(event),
    }
    return orjson.dumps(body, default=str) + b"\n"


class FeedSender:
    """A history writer's listener (`SeqListener`) that writes each event into the pipe.

    Called on the run's event loop. Writes what the pipe takes at once; the rest waits
    in a buffer flushed when the pipe is writable again; past `limit` bytes, or when the
    server is gone, the feed ends (the fd is closed) and the run goes on.
    """

    def __init__(self, fd: int, *, limit: int = MAX_BACKLOG) -> None:
        os.set_inheritable(fd, False)  # the jobs must not hold the server's pipe open
        os.set_blocking(fd, False)
        self._fd = fd
        self._limit = limit
        self._backlog = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0

    @property
    def open(self) -> bool:
        return self._fd >= 0

    def __call__(self, run_id: str, seq: int, ts: float, event: Event) -> None:
        if self._fd < 0:
            return
        self._backlog += encode(run_id, seq, ts, event)
        self.sent += 1
        if self._loop is None:  # waiting for the pipe already: it flushes in order
            self._flush()

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
        if self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._loop = None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        self._backlog.clear()


async def read_feed(fd: int, on_line: Callable[[dict[str, Any]], None]) -> None:
    """Read a worker's feed until it ends (the worker exited or gave up), calling
    `on_line` with each decoded line; a line that does not decode ends the feed."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                return  # an event over MAX_LINE: the rest comes from the history
            if not line.endswith(b"\n"):
                return  # the end (a partial last line is the worker's death mid-write)
            try:
                decoded = orjson.loads(line)
            except orjson.JSONDecodeError:
                return
            on_line(decoded)
    finally:
        transport.close()
