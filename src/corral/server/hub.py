"""The live event hub: fans each run's new events out to live clients, in order.

Two sources, one numbering. The runs this server started feed their events straight in
as they are published (`corral.server.feed`), each with the number the history gives it.
For every other run (a terminal's `corral run` on the same history, a run of an earlier
server, a worker whose feed ended) one follower task asks the history for what each
active run wrote since it last looked (`HistoryReader.events(run, after_seq)`). A seq
therefore means the same thing to every client and after every restart: the hub sends
each run's events once, in seq order, whichever source brought them first.

The hub keeps each run's latest frames a while (`recent`): a client that joins, resumes
or fills a hole replays from them, not from the history, so a hundred clients joining a
run cost one encoding of each frame, not a hundred reads and encodings; and the fed
events the history has not written yet are there too.

Each client has a bounded queue. A client that falls `queue_size` frames behind is
marked overflowed: it gets no more frames and is told to resync from its last seq (it
reconnects and replays from the store), so a slow client never slows the follower, the
run or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import orjson

from corral.errors import NotFoundError
from corral.events.codec import event_to_dict
from corral.events.types import RunFinished, RunStarted
from corral.models import RunStatus
from corral.store.protocols import HistoryReader, RawEventReader, StoredEvent

DISCOVER_EVERY_S = 0.25  # how often the history is asked for runs started elsewhere
RECENT_S = 600.0  # how far back a run may have started and still be discovered
IDLE_AFTER_S = 10.0  # a run silent this long is asked less often (a dead terminal's run)
IDLE_POLL_S = 1.0
COALESCE_S = 0.01  # how long a woken client waits for the frames that follow the first
STARTUP_SLACK_S = 60.0  # a run started this long before the server may not be on record yet
PROBE_S = 0.005  # how often a SQLite history's files are looked at for a change
QUIET_PROBE_S = 0.05  # the same when no run is followed from the history (`_probe_every`)
FULL_LOOK_S = 1.0  # the history is asked at least this often (a change a probe missed)
KEEP_S = 120.0  # how long a run's frames are kept for replays (and unwritten fed events)
KEEP_MAX = 5_000  # and at most this many per run (a few MB)
# how many windowed clients a flush wakes per turn of the event loop (`EventHub._wake`):
# a woken client sends at once, ~40-200 us a socket, and between two slices the loop
# reads the feed and fires its timers instead of waiting for the 100th send
WAKE_SLICE = 8


@dataclass(slots=True)
class LiveFrame:
    """One stored event as the live clients get it."""

    run_id: str
    seq: int
    ts: float  # when the writer received it: the benchmark's delivery latency starts here
    owner: str
    kind: str
    event: bytes  # its JSON as the history stores it (`corral.events.codec`)
    _own: bytes | None = None  # the body with the run's own seq, made once for every client
    shared: object = None  # what `corral.server.live` sends of it: made once, for every client

    def body(self, cursor: int | str) -> bytes:
        if cursor == self.seq:
            if self._own is None:
                self._own = self._encode(cursor)
            return self._own
        return self._encode(cursor)

    def _encode(self, cursor: int | str) -> bytes:
        return orjson.dumps(
            {
                "seq": cursor,
                "run_id": self.run_id,
                "owner": self.owner,
                "type": self.kind,
                "ts": self.ts,
                "event": orjson.Fragment(self.event),
            }
        )


def frame_of(run_id: str, owner: str, stored: StoredEvent) -> LiveFrame:
    """A decoded stored event as a frame (a history that cannot give its JSON as stored)."""
    data = orjson.dumps(event_to_dict(stored.event), default=str)
    return LiveFrame(run_id, stored.seq, stored.ts, owner, type(stored.event).__name__, data)


_TYPE_NAMES: dict[str, str] = {}


def type_name(kind: str) -> str:
    """The event class name of a codec kind (`job.finished` -> `JobFinished`)."""
    name = _TYPE_NAMES.get(kind)
    if name is None:
        from corral.events.codec import _event_class

        try:
            name = _event_class(kind).__name__
        except KeyError:  # written by a newer corral: pass it on under its kind
            name = kind
        _TYPE_NAMES[kind] = name
    return name


def stored_frames(
    history: HistoryReader, run_id: str, owner: str, after: int, size: int = 2000
) -> list[LiveFrame]:
    """Up to `size` of a run's stored events after `after`, as frames: their JSON as
    stored, not decoded and encoded again, when the history can give it (a replay to a
    hundred clients would otherwise build each event a hundred times)."""
    if not isinstance(history, RawEventReader):
        return [
            frame_of(run_id, owner, event) for event in stored_events(history, run_id, after, size)
        ]
    return [
        LiveFrame(run_id, seq, ts, owner, type_name(kind), payload.encode())
        for seq, ts, kind, payload in _first(history.event_payloads(run_id, after), size)
    ]


@dataclass
class _Tracked:
    seq: int  # the last seq sent to the clients
    owner: str
    finished: bool = False
    last_change: float = 0.0
    last_poll: float = 0.0
    fed: bool = False  # its worker's feed brings its events: the follower leaves it alone
    recent: deque[tuple[float, LiveFrame]] = field(default_factory=deque)


@dataclass(eq=False, slots=True)
class Flushed:
    """A run's frames of one flush of the batch window, in seq order, offered whole to
    every windowed client of the run: one that keeps up sends it as it is, and what it
    sends is made once for all of them (`shared`, by `corral.server.live`)."""

    frames: list[LiveFrame]
    shared: object = None
    contiguous: bool = field(init=False)  # no seq missing between the first and the last

    def __post_init__(self) -> None:
        frames = self.frames
        self.contiguous = frames[-1].seq - frames[0].seq == len(frames) - 1

    def follows(self, seq: int) -> bool:
        """Its frames are exactly those after `seq`, up to its last."""
        return self.contiguous and self.frames[0].seq == seq + 1


@dataclass(eq=False)
class Subscription:
    """One live client: the run it follows (None: all runs) and its bounded queue (of
    frames, or for a windowed client of one run, of the hub's flushes)."""

    run: str | None
    limit: int
    frames: deque[LiveFrame | Flushed] = field(default_factory=deque)
    overflowed: bool = False
    closing: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    windowed: bool = False  # woken by the hub's flush (a batched client): see EventHub
    held: int = 0  # the frames in `frames`' flushes
    waking: bool = False  # in the hub's queue of clients to wake (`EventHub._wake`)

    def offer(self, frame: LiveFrame) -> bool:
        """Queue `frame`; False (and overflowed from now on) when the queue is full."""
        if self.overflowed:
            return False
        if len(self.frames) >= self.limit:
            return self._overflow()
        self.frames.append(frame)
        if not self.windowed:  # a windowed client is woken by the hub's flush
            self.ready.set()
        return True

    def offer_flushed(self, flushed: Flushed, joined: dict[int, Flushed]) -> bool:
        """Queue a flush of the hub (the same bound: `limit` frames, those that waited in
        the window included); the hub wakes the client (`EventHub._wake`).

        A flush that continues the one the client has not taken yet joins it: one batch,
        one message, and the same for every client left with that one (`joined`, by the
        id of the flush joined: made once per flush of the hub). Those are the clients a
        fan-out had not reached when the next window ended."""
        if self.overflowed:
            return False
        if self.held + len(flushed.frames) > self.limit:
            return self._overflow()
        last = self.frames[-1] if self.frames else None
        if isinstance(last, Flushed) and last.frames[-1].seq + 1 == flushed.frames[0].seq:
            both = joined.get(id(last))
            if both is None:
                both = joined[id(last)] = Flushed(last.frames + flushed.frames)
            self.frames[-1] = both
        else:
            self.frames.append(flushed)
        self.held += len(flushed.frames)
        return True

    def _overflow(self) -> bool:
        self.overflowed = True
        self.frames.clear()
        self.held = 0
        self.ready.set()
        return False

    def pop(self) -> LiveFrame | Flushed:
        """The oldest frame (or flush) queued."""
        item = self.frames.popleft()
        if isinstance(item, Flushed):
            self.held -= len(item.frames)
        return item

    async def wait(self, seconds: float) -> bool:
        """Wait for frames (or overflow, or closing); False after `seconds` without.

        Frames that come together are sent together: after the first, the client waits
        `COALESCE_S` for more, so a busy run wakes each client a bounded number of times
        a second instead of once an event (the run shares the loop with the clients). A
        windowed client waits for the hub's flush instead (`EventHub.batch_window_s`).
        """
        if self.windowed:
            if not self.ready.is_set():
                try:
                    async with asyncio.timeout(seconds):
                        await self.ready.wait()
                except TimeoutError:
                    return False
            self.ready.clear()
            return True
        if not (self.frames or self.overflowed or self.closing):
            self.ready.clear()
            try:
                async with asyncio.timeout(seconds):
                    await self.ready.wait()
            except TimeoutError:
                return False
        if not (self.overflowed or self.closing):
            await asyncio.sleep(COALESCE_S)
        return True


class EventHub:
    """Follows the history; `subscribe` to get its new events as they are committed."""

    def __init__(
        self,
        history: HistoryReader,
        *,
        poll_s: float,
        queue_size: int,
        batch_window_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.poll_s = poll_s
        self.queue_size = queue_size
        self.batch_window_s = batch_window_s
        self._flush_due: asyncio.TimerHandle | None = None
        self._pending: dict[str, list[LiveFrame]] = {}  # windowed clients' frames, by run
        self._flushed_at = -1e9  # time.monotonic() of the last flush
        self._clock = clock
        self._runs: dict[str, _Tracked] = {}
        self._subs: set[Subscription] = set()
        self._each: set[Subscription] = set()  # handed each frame (`Subscription.offer`)
        self._flushed_to: dict[str, set[Subscription]] = {}  # handed flushes, by run
        self._waking: deque[Subscription] = deque()  # flushed to, not woken yet (`_wake`)
        self._wake_due: asyncio.Handle | None = None
        self._poked = False  # look at the history now (`poke`)
        self._waiter: asyncio.Future[None] | None = None  # the follower's nap
        self._closed = False
        self._last_discovery = 0.0
        self._since = 0.0
        self.delivered = 0
        self.overflows = 0
        self.fed = 0  # events a worker of this server fed in directly
        self.dropped = 0  # events a client should have had and could not be given
        self.lag_s = 0.0  # how old the newest event was when the follower read it
        self.ready = False  # the first look at the history is done
        self.failing: str | None = None  # why the last look at the history failed

    # -- clients ---------------------------------------------------------------------------

    def subscribe(self, run: str | None, *, windowed: bool = False) -> Subscription:
        """A new live client of `run` (None: every run). A `windowed` one (it takes its
        frames in batches) is woken by the hub's flush, `batch_window_s` after the first
        frame that came since the last (with no window: as each frame comes)."""
        sub = Subscription(run, self.queue_size, windowed=windowed and self.batch_window_s > 0)
        self._subs.add(sub)
        if sub.windowed and run is not None:
            self._flushed_to.setdefault(run, set()).add(sub)
        else:
            self._each.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self._each.discard(sub)
        if sub.run is not None and sub.run in self._flushed_to:
            subs = self._flushed_to[sub.run]
            subs.discard(sub)
            if not subs:
                del self._flushed_to[sub.run]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def clients(self) -> int:
        return len(self._subs)

    def poke(self) -> None:
        """Look at the history now (a run this server runs has just written)."""
        self._poked = True
        if self._waiter is not None:
            _settle(self._waiter)

    def track(self, run_id: str, owner: str) -> None:
        """Follow `run_id` from its first event (a run this server just started)."""
        self._runs.setdefault(run_id, _Tracked(0, owner, last_change=self._clock()))
        self.poke()

    def active_positions(self) -> dict[str, int]:
        """Each unfinished run the hub follows and the last seq it dispatched."""
        return {r: t.seq for r, t in self._runs.items() if not t.finished}

    async def owner_of(self, run_id: str) -> str:
        """Who a run belongs to: the user its RunStarted names."""
        tracked = self._runs.get(run_id)
        if tracked is not None and tracked.owner:
            return tracked.owner
        first = await asyncio.to_thread(stored_events, self.history, run_id, 0, 1)
        if first and isinstance(first[0].event, RunStarted):
            return first[0].event.user
        return ""

    def position(self, run_id: str) -> int | None:
        tracked = self._runs.get(run_id)
        return None if tracked is None else tracked.seq

    def running(self, run_id: str) -> bool:
        """The hub follows `run_id` and has not seen it finish."""
        tracked = self._runs.get(run_id)
        return tracked is not None and not tracked.finished

    def recent(self, run_id: str, after: int) -> list[LiveFrame]:
        """The frames of `run_id` after seq `after` that the hub still keeps, in order."""
        tracked = self._runs.get(run_id)
        if tracked is None or not tracked.recent or tracked.recent[-1][1].seq <= after:
            return []
        kept = tracked.recent
        if kept[0][1].seq > after:
            return [frame for _, frame in kept]
        # contiguous seqs but for the history's holes: start near where `after` would be
        start = max(0, min(len(kept) - 1, after - kept[0][1].seq))
        while start > 0 and kept[start][1].seq > after:
            start -= 1
        return [frame for _, frame in itertools.islice(kept, start, None) if frame.seq > after]

    # -- the direct feed of this server's runs ---------------------------------------------

    def feed(self, frame: LiveFrame) -> None:
        """An event a worker of this server just published, with its history seq."""
        tracked = self._runs.setdefault(frame.run_id, _Tracked(0, frame.owner))
        tracked.fed = True
        self.fed += 1
        self._accept(tracked, frame, self._clock())

    def unfeed(self, run_id: str) -> None:
        """The worker's feed ended: follow the run from the history again, now."""
        tracked = self._runs.get(run_id)
        if tracked is not None:
            tracked.fed = False
            tracked.last_poll = 0.0
            tracked.last_change = self._clock()
        self.poke()

    # -- the follower ----------------------------------------------------------------------

    async def follow(self) -> None:
        """Poll the history until `close`; each new event goes to every matching client.

        A SQLite history is looked at only when its files changed (`change_probe`), which
        costs two stat calls, so it is probed every `PROBE_S` and a terminal's run is seen
        sooner for less; any other history is asked every `poll_s`."""
        probe = change_probe(self.history)
        seen: object = None
        looked = 0.0
        poked = True
        while not self._closed:
            now = time.monotonic()
            mark = probe() if probe is not None else None
            if poked or mark != seen or now - looked >= FULL_LOOK_S:
                seen, looked = mark, now
                try:
                    await self.step()
                    self.failing = None
                except Exception as error:  # the store is down: say so on /readyz, retry
                    self.failing = f"{type(error).__name__}: {error}"
            poked = await self._nap(self._probe_every() if probe else self.poll_s)

    def _probe_every(self) -> float:
        """`PROBE_S` while a run is followed from the history; else (the runs this
        server feeds, or none) `QUIET_PROBE_S`: a new run is discovered at most every
        `DISCOVER_EVERY_S` anyway, and 200 wake-ups a second are 3 % of a core."""
        for tracked in self._runs.values():
            if not (tracked.finished or tracked.fed):
                return PROBE_S
        return QUIET_PROBE_S

    async def _nap(self, seconds: float) -> bool:
        """Sleep `seconds`, or until poked (True). A future and a timer, not `wait_for`
        on an event: the follower naps 200 times a second, and `wait_for` (a task and a
        timeout each time) was most of an idle server's CPU."""
        if not self._poked:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(seconds, _settle, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        poked, self._poked = self._poked, False
        return poked

    async def step(self) -> None:
        """One look at the history, and the dispatch of what it found."""
        found = await asyncio.to_thread(self._read)
        now = self._clock()
        for frame in found:
            tracked = self._runs.get(frame.run_id)
            if tracked is not None:
                self._accept(tracked, frame, now)
        self.ready = True

    def _accept(self, tracked: _Tracked, frame: LiveFrame, now: float) -> bool:
        """Send `frame` unless the run's clients had it (from the other source); on the
        event loop, so the two sources never interleave out of order."""
        if frame.seq <= tracked.seq:
            return False
        if frame.kind == RunStarted.__name__:
            tracked.owner = str(orjson.loads(frame.event).get("user") or tracked.owner)
        frame.owner = frame.owner or tracked.owner
        tracked.seq = frame.seq
        tracked.last_change = now
        self.lag_s = max(0.0, now - frame.ts)
        if frame.kind == RunFinished.__name__:
            tracked.finished = True
        self._dispatch(frame)
        kept = tracked.recent
        kept.append((now, frame))
        while len(kept) > KEEP_MAX or now - kept[0][0] > KEEP_S:
            kept.popleft()
        return True

    def _read(self) -> list[LiveFrame]:
        """On a thread: what each followed run wrote since the hub last sent from it."""
        now = self._clock()
        if now - self._last_discovery >= DISCOVER_EVERY_S:
            self._discover(now)
        frames: list[LiveFrame] = []
        for run_id, tracked in list(self._runs.items()):
            if tracked.finished or tracked.fed:
                continue
            idle = now - tracked.last_change > IDLE_AFTER_S
            if idle and now - tracked.last_poll < IDLE_POLL_S:
                continue
            tracked.last_poll = now
            try:
                found = stored_frames(self.history, run_id, tracked.owner, tracked.seq, 100_000)
            except NotFoundError:
                continue  # started here, not on record yet
            frames += found
        return frames

    def _discover(self, now: float) -> None:
        """Runs started elsewhere (a terminal) or before this server: follow them."""
        first = self._last_discovery == 0.0
        self._last_discovery = now
        if first:
            self._since = now - STARTUP_SLACK_S
            # what exists when the server comes is the past: clients replay it from the
            # store; the follower dispatches only what is written from now on
            rows = self.history.list_runs(status=RunStatus.RUNNING, limit=None)
            rows += self.history.list_runs(since=self._since, limit=None)
            for row in rows:
                if row.id not in self._runs:
                    last = max((s.seq for s in self.history.events(row.id, 0)), default=0)
                    finished = row.status is not RunStatus.RUNNING
                    # setdefault: the loop may have started following it meanwhile
                    self._runs.setdefault(
                        row.id, _Tracked(last, row.user, finished, last_change=now)
                    )
            return
        for row in self.history.list_runs(since=max(self._since, now - RECENT_S), limit=None):
            if row.id not in self._runs:
                self._runs.setdefault(row.id, _Tracked(0, row.user, last_change=now))
        cutoff = now - RECENT_S
        for run_id in [r for r, t in self._runs.items() if t.finished and t.last_change < cutoff]:
            del self._runs[run_id]

    def _dispatch(self, frame: LiveFrame) -> None:
        windowed = frame.run_id in self._flushed_to
        if windowed:  # its windowed clients get it with the others of the window
            self._pending.setdefault(frame.run_id, []).append(frame)
        for sub in self._each:
            if sub.run is None or sub.run == frame.run_id:
                if sub.offer(frame):
                    self.delivered += 1
                    windowed = windowed or sub.windowed
                else:
                    self.overflows += 1
        if windowed and self._flush_due is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # dispatched off the loop (a test): no window
                self._flush()
                return
            wait = self._flushed_at + self.batch_window_s - time.monotonic()
            if wait <= 0:  # the first frame after a quiet spell goes at once ...
                self._flush()
            else:  # ... the ones after it wait for the window's end
                self._flush_due = loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        """Hand each run's frames since the last flush to its windowed clients, as one
        `Flushed`, and wake them all at once, so that the ones that keep up send the same
        batch (made once: `corral.server.live`). A frame that comes `batch_window_s` or
        more after the last flush is flushed at once; the ones after it wait for the end
        of its window: a lone event is not delayed, a stream goes out in windows."""
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        pending, self._pending = self._pending, {}
        self._flushed_at = time.monotonic()
        waking = self._waking
        for run_id, frames in pending.items():
            flushed = Flushed(frames)
            joined: dict[int, Flushed] = {}
            for sub in self._flushed_to.get(run_id, ()):
                if sub.offer_flushed(flushed, joined):
                    self.delivered += len(frames)
                    if not sub.waking:
                        sub.waking = True
                        waking.append(sub)
                else:
                    self.overflows += len(frames)
        for sub in self._each:
            if sub.windowed and sub.frames and not sub.waking:
                sub.waking = True
                waking.append(sub)
        if self._wake_due is None:
            self._wake()

    def _wake(self) -> None:
        """Wake the next `WAKE_SLICE` clients a flush was handed to, and the rest on the
        loop's next turns. A woken client writes its message in the turn after it is
        woken: woken all at once, a hundred clients are a hundred socket writes in one
        turn (11-78 ms on a busy machine), in which the loop reads no feed line and
        fires no window timer, so every event waiting behind them was late. Each
        client's frames stay in its own queue, in order: waking it later changes when
        it sends them, not what or in which order. A client that a new flush reaches
        before it was woken keeps its place."""
        self._wake_due = None
        waking = self._waking
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # flushed off the loop (a test): every client at once
            loop = None
        for _ in range(len(waking) if loop is None else min(WAKE_SLICE, len(waking))):
            sub = waking.popleft()
            sub.waking = False
            sub.ready.set()
        if waking and loop is not None:
            self._wake_due = loop.call_soon(self._wake)

    async def close(self) -> None:
        """Read what is committed one last time, hand it out, and end every client."""
        self._closed = True
        self.poke()
        with contextlib.suppress(Exception):  # a dead store must not stop the shutdown
            await self.step()
        self._flush()  # what waits in the batch window goes out before the close
        for sub in self._subs:
            sub.closing = True
            sub.ready.set()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def change_probe(history: HistoryReader) -> Callable[[], object] | None:
    """A cheap sign that a SQLite history changed: its file's and its write-ahead log's
    size and modification time (None for another database: it is asked instead)."""
    engine = getattr(history, "engine", None)
    if engine is None or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    paths = (database, database + "-wal")

    def probe() -> object:
        marks: list[tuple[int, int] | None] = []
        for path in paths:
            try:
                found = os.stat(path)
            except OSError:
                marks.append(None)
            else:
                marks.append((found.st_mtime_ns, found.st_size))
        return tuple(marks)

    return probe


async def frames_of(
    history: HistoryReader, run_id: str, owner: str, after: int
) -> AsyncIterator[list[LiveFrame]]:
    """A run's stored events after `after` as frames, in pages read off the event loop."""
    while True:
        page = await asyncio.to_thread(stored_frames, history, run_id, owner, after)
        if not page:
            return
        yield page
        after = page[-1].seq


def stored_events(
    history: HistoryReader, run_id: str, after: int, size: int = 2000
) -> list[StoredEvent]:
    """Up to `size` of a run's stored events after `after` (blocking: call off the loop)."""
    return _first(history.events(run_id, after), size)


_Row = TypeVar("_Row")


def _first(rows: Iterable[_Row], size: int) -> list[_Row]:
    """The first `size` rows of a history read, closing the read when it stops early."""
    try:
        return list(itertools.islice(rows, size))
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # a generator left early gives its connection back now
