"""One live client's stream: replay from the store after its cursor, then the hub's frames.

Exactly once and in order: the client subscribes to the hub BEFORE it replays, so an
event is either in the replay or queued; a queued frame at or below the client's seq is
skipped, and a hole (a frame past seq + 1) is filled first. A replay or a fill reads the
history, then the events the hub sent that the history has not written yet (a run of
this server feeds them in before its writer commits them: `EventHub.recent`); an event
in neither yet is waited for, briefly. The same stream feeds the WebSocket and
Server-Sent Events endpoints (`corral.server.events`).

The stream comes in batches (`open_batches`): the frames ready at once (a page of the
history, what the hub queued while the client was sending), so that the work done for
each frame is only its encoding (shared by the clients of a run) and a list append; an
endpoint writes a batch out in one go, as one message (`batch=true`) or one each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from corral.errors import NotFoundError
from corral.server.cursor import BadCursor, Cursor, run_seq
from corral.server.errors import ApiError
from corral.server.hub import (
    EventHub,
    Flushed,
    LiveFrame,
    Subscription,
    frames_of,
    stored_events,
)

Batch = list["Out"]  # the frames ready at once, in order

# how long an event the hub sent (or a reconnecting client saw) may take to be written by
# its run's history writer (it batches; a database that hiccups retries)
WRITE_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Out:
    """What goes to the client: a frame body, its cursor (for SSE's id) and its type."""

    kind: str  # an event type, or heartbeat | resync | reconnect
    body: bytes
    cursor: str | None = None
    final: bool = False  # the stream ends after this one


def _control(kind: str, **fields: object) -> Out:
    final = kind in ("resync", "reconnect")
    return Out(kind, orjson.dumps({"type": kind, **fields}), final=final)


async def open_batches(
    hub: EventHub,
    run: str | None,
    after: str | None,
    heartbeat_s: float,
    *,
    window: bool = False,
) -> AsyncIterator[Batch]:
    """Check the request (unknown run 404, bad or too-far `after` 400), then stream, in
    batches of the frames ready at once (never empty; a final frame ends its batch).
    With `window` the live frames are handed over at the hub's flushes (every
    `EventHub.batch_window_s` while frames come): larger batches, and the same ones for
    every client of a run that keeps up.

    The checks run before the first frame, so the endpoints answer them as errors.
    """
    if hub.closed:
        raise ApiError(503, "unavailable", "the server is restarting: reconnect shortly")
    if run is not None:
        return await _one_run(hub, run, after, heartbeat_s, window)
    return await _all_runs(hub, after, heartbeat_s, window)


async def open_stream(
    hub: EventHub, run: str | None, after: str | None, heartbeat_s: float
) -> AsyncIterator[Out]:
    """`open_batches`, a frame at a time."""
    return _frames(await open_batches(hub, run, after, heartbeat_s))


async def _frames(batches: AsyncIterator[Batch]) -> AsyncIterator[Out]:
    try:
        async for batch in batches:
            for out in batch:
                yield out
    finally:
        await batches.aclose()  # type: ignore[attr-defined]  # an async generator


async def _one_run(
    hub: EventHub, run: str, after: str | None, heartbeat_s: float, window: bool
) -> AsyncIterator[Batch]:
    history = hub.history
    try:
        run_id = await asyncio.to_thread(history.resolve_run_id, run)
        position = 0 if after is None else run_seq(after)
    except NotFoundError as error:
        raise ApiError(404, "not_found", error.message) from None
    except BadCursor as error:
        raise ApiError(400, "bad_request", str(error)) from None
    if position > 0 and not await _reaches(hub, run_id, position):
        end = await asyncio.to_thread(_end, hub, run_id)
        raise ApiError(
            400,
            "after_beyond_end",
            f"run {run_id} has {end} events; after={position} is beyond its end "
            "(reconnect with the last seq you received, or 0 for everything)",
            last_seq=end,
        )
    sub = hub.subscribe(run_id, windowed=window)  # before the replay: nothing falls between
    return _stream_one(hub, sub, run_id, position, heartbeat_s)


def _end(hub: EventHub, run_id: str) -> int:
    stored = max((s.seq for s in hub.history.events(run_id, 0)), default=0)
    return max(stored, hub.position(run_id) or 0)


async def _reaches(hub: EventHub, run_id: str, position: int) -> bool:
    """Run `run_id` has an event `position` (or later): in the history, or sent by the hub.

    A client that saw an event live may come back (to a restarted server) before the
    run's writer has written it: while the run goes on, that is waited for a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WRITE_WAIT_S
    while True:
        if (hub.position(run_id) or 0) >= position:
            return True
        if await asyncio.to_thread(stored_events, hub.history, run_id, position - 1, 1):
            return True
        if not hub.running(run_id) or loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


def _own(frames: list[LiveFrame]) -> Batch:
    """One run's frames, each with its own seq: made once, shared by all its clients."""
    return [_shared(frame) for frame in frames]


def _flushed(flushed: Flushed) -> Batch:
    """A flush of the hub as sent (the same list for every client that keeps up)."""
    batch = flushed.shared
    if not isinstance(batch, list):
        batch = flushed.shared = _own(flushed.frames)
    return batch


def _shared(frame: LiveFrame) -> Out:
    out = frame.shared
    if not isinstance(out, Out):
        out = frame.shared = Out(frame.kind, frame.body(frame.seq), str(frame.seq))
    return out


async def _stream_one(
    hub: EventHub, sub: Subscription, run_id: str, position: int, heartbeat_s: float
) -> AsyncIterator[Batch]:
    owner = await hub.owner_of(run_id)
    try:
        async for page in _catch_up(hub, run_id, owner, position):
            position = page[-1].seq
            yield _own(page)
        while True:
            if not await sub.wait(heartbeat_s):
                yield [_control("heartbeat", ts=time.time())]
                continue
            if sub.overflowed:
                yield [_control("resync", after=position)]
                return
            ready: list[LiveFrame] = []
            while sub.frames:
                item = sub.pop()
                if not ready and isinstance(item, Flushed) and item.follows(position):
                    position = item.frames[-1].seq
                    yield _flushed(item)  # caught up: what every such client sends
                    continue
                for frame in item.frames if isinstance(item, Flushed) else (item,):
                    if frame.seq <= position:
                        continue
                    if frame.seq > position + 1:  # a hole: the history (or the hub) has it
                        if ready:
                            yield _own(ready)
                            ready = []
                        async for page in _catch_up(hub, run_id, owner, position, frame.seq):
                            position = page[-1].seq
                            yield _own(page)
                    position = frame.seq
                    ready.append(frame)
            if ready:
                yield _own(ready)
            if sub.closing:
                yield [_control("reconnect", after=position)]
                return
    finally:
        hub.unsubscribe(sub)


async def _catch_up(
    hub: EventHub, run_id: str, owner: str, after: int, before: int | None = None
) -> AsyncIterator[list[LiveFrame]]:
    """The run's events after `after` (and before `before`), in order, in batches (never
    empty): from the history
    up to the frames the hub keeps, then those (the latest, and the ones it sent that the
    history has not written yet). Without `before`, up to the last the hub sent when this
    began (what a new subscriber's queue does not hold)."""
    target = (before - 1) if before is not None else (hub.position(run_id) or 0)
    position = after
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    while True:
        kept = hub.recent(run_id, position)
        if not kept or kept[0].seq > position + 1:
            upto = kept[0].seq if kept else None
            pages = frames_of(hub.history, run_id, owner, position)
            try:
                async for page in pages:
                    taken, ended = _until(page, before, upto)
                    if taken:
                        position = taken[-1].seq
                        yield taken
                    if ended == "before":
                        return
                    if ended == "kept":
                        break  # the rest is kept by the hub
            finally:
                await pages.aclose()  # type: ignore[attr-defined]  # an async generator
            kept = hub.recent(run_id, position)
        taken = []
        for frame in kept:
            if (before is not None and frame.seq >= before) or frame.seq != position + 1:
                break
            position = frame.seq
            taken.append(frame)
        if taken:
            yield taken
        if position >= target:
            return
        # sent live, no longer kept, not written yet: the run's writer is behind
        if deadline is None:
            deadline = loop.time() + WRITE_WAIT_S
        elif loop.time() > deadline:
            # never written (a database that failed for good): a hole, counted on /metrics
            hub.dropped += target - position
            return
        await asyncio.sleep(0.02)


def _until(
    page: list[LiveFrame], before: int | None, upto: int | None
) -> tuple[list[LiveFrame], str | None]:
    """The frames of a history page before `before` and `upto`, and which of the two
    ended it ("before", "kept": the hub keeps the rest), if one did."""
    for index, frame in enumerate(page):
        if before is not None and frame.seq >= before:
            return page[:index], "before"
        if upto is not None and frame.seq >= upto:
            return page[:index], "kept"
    return page, None


async def _all_runs(
    hub: EventHub, after: str | None, heartbeat_s: float, window: bool
) -> AsyncIterator[Batch]:
    try:
        cursor = None if after is None else Cursor.decode(after)
    except BadCursor as error:
        raise ApiError(400, "bad_request", str(error)) from None
    sub = hub.subscribe(None, windowed=window)
    if cursor is None:
        # from now on: every active run from where the hub is (its frames come queued)
        cursor = Cursor(time.time(), hub.active_positions())
        replay: list[str] = []
    else:
        replay = await asyncio.to_thread(_replay_order, hub, cursor)
    return _stream_all(hub, sub, cursor, replay, heartbeat_s)


def _replay_order(hub: EventHub, cursor: Cursor) -> list[str]:
    started = hub.history.list_runs(since=cursor.since, limit=None)
    fresh = [row.id for row in reversed(started) if row.id not in cursor.seqs]
    return [*cursor.seqs, *fresh]


async def _stream_all(
    hub: EventHub, sub: Subscription, cursor: Cursor, replay: list[str], heartbeat_s: float
) -> AsyncIterator[Batch]:
    seqs = cursor.seqs

    def out(frame: LiveFrame) -> Out:
        seqs[frame.run_id] = frame.seq
        encoded = cursor.encode()
        return Out(frame.kind, frame.body(encoded), encoded)

    try:
        for run_id in replay:
            owner = await hub.owner_of(run_id)
            async for page in _catch_up(hub, run_id, owner, seqs.get(run_id, 0)):
                yield [out(frame) for frame in page]
        while True:
            if not await sub.wait(heartbeat_s):
                yield [_control("heartbeat", ts=time.time())]
                continue
            if sub.overflowed:
                yield [_control("resync", after=cursor.encode())]
                return
            ready: Batch = []
            while sub.frames:
                frame = sub.pop()
                assert isinstance(frame, LiveFrame)  # flushes go to the clients of one run
                position = seqs.get(frame.run_id, 0)
                if frame.seq <= position:
                    continue
                if frame.seq > position + 1:  # a hole: the history (or the hub) has it
                    if ready:
                        yield ready
                        ready = []
                    hole = _catch_up(hub, frame.run_id, frame.owner, position, frame.seq)
                    async for page in hole:
                        yield [out(filled) for filled in page]
                ready.append(out(frame))
            if ready:
                yield ready
            if sub.closing:
                yield [_control("reconnect", after=cursor.encode())]
                return
    finally:
        hub.unsubscribe(sub)
