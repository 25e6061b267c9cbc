"""One live client's stream: replay from the store after its cursor, then the hub's frames.

Exactly once and in order: the client subscribes to the hub BEFORE it replays, so an
event is either in the replay or queued; a queued frame at or below the client's seq is
skipped, and a hole (a frame past seq + 1) is filled from the store first. The same
stream feeds the WebSocket and Server-Sent Events endpoints (`corral.server.events`).
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
from corral.server.hub import EventHub, LiveFrame, Subscription, _page, frame_of, frames_of


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


async def open_stream(
    hub: EventHub, run: str | None, after: str | None, heartbeat_s: float
) -> AsyncIterator[Out]:
    """Check the request (unknown run 404, bad or too-far `after` 400), then stream.

    The checks run before the first frame, so the endpoints answer them as errors.
    """
    if hub.closed:
        raise ApiError(503, "unavailable", "the server is restarting: reconnect shortly")
    if run is not None:
        return await _one_run(hub, run, after, heartbeat_s)
    return await _all_runs(hub, after, heartbeat_s)


async def _one_run(
    hub: EventHub, run: str, after: str | None, heartbeat_s: float
) -> AsyncIterator[Out]:
    history = hub.history
    try:
        run_id = await asyncio.to_thread(history.resolve_run_id, run)
        position = 0 if after is None else run_seq(after)
    except NotFoundError as error:
        raise ApiError(404, "not_found", error.message) from None
    except BadCursor as error:
        raise ApiError(400, "bad_request", str(error)) from None
    if position > 0:
        last = await asyncio.to_thread(_page, history, run_id, position - 1, 1)
        if not last:
            end = await asyncio.to_thread(_end, hub, run_id)
            raise ApiError(
                400,
                "after_beyond_end",
                f"run {run_id} has {end} events; after={position} is beyond its end "
                "(reconnect with the last seq you received, or 0 for everything)",
                last_seq=end,
            )
    sub = hub.subscribe(run_id)  # before the replay: nothing falls between the two
    return _stream_one(hub, sub, run_id, position, heartbeat_s)


def _end(hub: EventHub, run_id: str) -> int:
    return max((s.seq for s in hub.history.events(run_id, 0)), default=0)


async def _stream_one(
    hub: EventHub, sub: Subscription, run_id: str, position: int, heartbeat_s: float
) -> AsyncIterator[Out]:
    owner = await hub.owner_of(run_id)
    try:
        async for page in frames_of(hub.history, run_id, position):
            for stored in page:
                position = stored.seq
                frame = frame_of(run_id, owner, stored)
                yield Out(frame.kind, frame.body(position), str(position))
        while True:
            if not await sub.wait(heartbeat_s):
                yield _control("heartbeat", ts=time.time())
                continue
            if sub.overflowed:
                yield _control("resync", after=position)
                return
            while sub.frames:
                frame = sub.frames.popleft()
                if frame.seq <= position:
                    continue
                if frame.seq > position + 1:  # a hole: the store has it
                    async for filled, seq in _fill(hub, run_id, owner, position, frame.seq):
                        position = seq
                        yield Out(filled.kind, filled.body(seq), str(seq))
                position = frame.seq
                yield Out(frame.kind, frame.body(position), str(position))
            if sub.closing:
                yield _control("reconnect", after=position)
                return
    finally:
        hub.unsubscribe(sub)


async def _fill(
    hub: EventHub, run_id: str, owner: str, after: int, before: int
) -> AsyncIterator[tuple[LiveFrame, int]]:
    """The stored events between `after` and `before` (both excluded)."""
    async for page in frames_of(hub.history, run_id, after):
        for stored in page:
            if stored.seq >= before:
                return
            yield frame_of(run_id, owner, stored), stored.seq


async def _all_runs(hub: EventHub, after: str | None, heartbeat_s: float) -> AsyncIterator[Out]:
    try:
        cursor = None if after is None else Cursor.decode(after)
    except BadCursor as error:
        raise ApiError(400, "bad_request", str(error)) from None
    sub = hub.subscribe(None)
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
) -> AsyncIterator[Out]:
    seqs = cursor.seqs

    def out(frame: LiveFrame) -> Out:
        seqs[frame.run_id] = frame.seq
        encoded = cursor.encode()
        return Out(frame.kind, frame.body(encoded), encoded)

    try:
        for run_id in replay:
            owner = await hub.owner_of(run_id)
            async for page in frames_of(hub.history, run_id, seqs.get(run_id, 0)):
                for stored in page:
                    yield out(frame_of(run_id, owner, stored))
        while True:
            if not await sub.wait(heartbeat_s):
                yield _control("heartbeat", ts=time.time())
                continue
            if sub.overflowed:
                yield _control("resync", after=cursor.encode())
                return
            while sub.frames:
                frame = sub.frames.popleft()
                position = seqs.get(frame.run_id, 0)
                if frame.seq <= position:
                    continue
                if frame.seq > position + 1:  # a hole: the store has it
                    hole = _fill(hub, frame.run_id, frame.owner, position, frame.seq)
                    async for filled, _ in hole:
                        yield out(filled)
                yield out(frame)
            if sub.closing:
                yield _control("reconnect", after=cursor.encode())
                return
    finally:
        hub.unsubscribe(sub)
