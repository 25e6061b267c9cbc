"""The hub's fan-out of a flush to many windowed clients: it wakes them a slice at a
time (`WAKE_SLICE` a turn of the event loop), so that flushes interleave with the
wake-ups. Every client still gets every event exactly once and in order, a slow client
among many is told to resync and loses nothing, and a client that goes away while the
others are being woken changes nothing for them. The real writer (SQLite), hub and live
stream, as in test_server_feed; no timing is asserted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from tests.serverkit import sleeping_flow, start_server, stored_seqs, submit, wait_run

from corral.events.types import AssistantText, Event, RunStarted
from corral.store import SqlHistory, StoreWriter, open_store

pytest.importorskip("fastapi")

from corral.server.feed import encode  # after the extra's check
from corral.server.hub import WAKE_SLICE, EventHub, LiveFrame
from corral.server.live import Batch, open_batches

pytest.importorskip("websockets")
from websockets.asyncio.client import connect

RUN = "20261204-000000-fan"
CLIENTS = 3 * WAKE_SLICE + 3  # a flush takes four slices to wake them all


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlHistory]:
    history = open_store(None, tmp_path / "corral.db")
    yield history
    history.close()


def said(n: int) -> AssistantText:
    return AssistantText(job="a", attempt=1, text=f"line {n}")


def fed_hub(store: SqlHistory, queue_size: int = 10_000) -> tuple[EventHub, StoreWriter]:
    """A hub fed by a writer through the feed's encoding, the run started (seq 1). Its
    window never ends by itself: each test flushes it (`hub._flush`) when it means to."""
    hub = EventHub(store, poll_s=0.01, queue_size=queue_size, batch_window_s=3600.0)
    writer = StoreWriter(store, window_s=60.0)

    def listen(run_id: str, seq: int, ts: float, event: Event) -> None:
        line = orjson.loads(encode(run_id, seq, ts, event))
        frame = LiveFrame(run_id, seq, ts, "ana", line["type"], orjson.dumps(line["event"]))
        hub.feed(frame)

    writer.listen(listen)
    writer(
        RunStarted(
            run_id=RUN, flow_name="f", flow_path="f.yaml", jobs=("a",), started_at=1.0, user="ana"
        )
    )
    assert writer.flush_now()
    hub._flushed_at = time.monotonic()  # a window open: no event goes at once by itself
    return hub, writer


async def clients(hub: EventHub, writer: StoreWriter, count: int) -> list[AsyncIterator[Batch]]:
    """`count` windowed clients of the run, each handed seq 2 live: past their catch-up
    (which may read the history on a thread), following the hub's flushes."""
    streams = [await open_batches(hub, RUN, "1", 3600.0, window=True) for _ in range(count)]
    writer(said(0))
    hub._flush()
    async with asyncio.timeout(30):
        firsts = await asyncio.gather(*(anext(stream) for stream in streams))
    assert [[out.cursor for out in batch] for batch in firsts] == [["2"]] * count
    return streams


async def drain(stream: AsyncIterator[Batch], last: int, got: list[int]) -> None:
    """Append to `got` every seq `stream` sends, until `last`."""
    async with asyncio.timeout(30):
        while not got or got[-1] < last:
            for out in await anext(stream):
                if out.kind != "heartbeat":
                    got.append(orjson.loads(out.body)["seq"])


async def turn() -> None:
    """Let the loop run one turn (the woken clients run; the next slice is woken)."""
    await asyncio.sleep(0)


async def test_a_flush_wakes_a_slice_a_turn_and_flushes_interleave_exactly_once_in_order(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store)
    streams = await clients(hub, writer, CLIENTS)
    got: list[list[int]] = [[] for _ in streams]
    pairs = zip(streams, got, strict=True)
    readers = [asyncio.ensure_future(drain(s, 42, seqs)) for s, seqs in pairs]
    await turn()  # every reader waits on its client's queue
    subs = [sub for sub in hub._subs if sub.windowed]
    assert len(subs) == CLIENTS
    seq = 1
    for flush in range(8):  # 8 flushes of 5 events: seqs 3-42
        for _ in range(5):
            writer(said(seq))
            seq += 1
        hub._flush()
        if flush == 0:  # one slice woken at once, the others on the next turns
            assert sum(sub.ready.is_set() for sub in subs) == WAKE_SLICE
            assert len(hub._waking) == CLIENTS - WAKE_SLICE
        # the next flush comes while the fan-out is half done (after 0, 1, 2 turns)
        for _ in range(flush % 3):
            await turn()
    await asyncio.gather(*readers)
    expected = list(range(3, 43))
    assert all(seqs == expected for seqs in got)  # exactly once, in order, every client
    assert not hub._waking
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_a_flush_joins_the_one_its_clients_have_not_taken_one_batch_for_all(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store)
    streams = await clients(hub, writer, CLIENTS)
    nexts = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await turn()
    for n in range(1, 4):  # seqs 3-5
        writer(said(n))
    hub._flush()
    for n in range(4, 7):  # seqs 6-8, flushed before any client took 3-5
        writer(said(n))
    hub._flush()
    async with asyncio.timeout(30):
        batches = await asyncio.gather(*nexts)
    assert [out.cursor for out in batches[0]] == [str(n) for n in range(3, 9)]
    assert all(batch is batches[0] for batch in batches)  # one batch, made once for all
    # half the clients take the next flush before the one after it: each gets each once
    nexts = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await turn()
    for n in range(7, 10):  # seqs 9-11
        writer(said(n))
    hub._flush()
    await turn()  # the first slice takes 9-11 alone
    for n in range(10, 13):  # seqs 12-14
        writer(said(n))
    hub._flush()
    async with asyncio.timeout(30):
        batches = await asyncio.gather(*nexts)
    alone = [batch for batch in batches if len(batch) == 3]
    assert len(alone) == WAKE_SLICE and all(batch is alone[0] for batch in alone)
    joined = [batch for batch in batches if len(batch) == 6]
    assert len(joined) == CLIENTS - WAKE_SLICE and all(batch is joined[0] for batch in joined)
    assert [out.cursor for out in joined[0]] == [str(n) for n in range(9, 15)]
    rest = [
        asyncio.ensure_future(anext(stream))
        for stream, batch in zip(streams, batches, strict=True)
        if len(batch) == 3
    ]
    async with asyncio.timeout(30):
        assert {tuple(out.cursor for out in batch) for batch in await asyncio.gather(*rest)} == {
            ("12", "13", "14")
        }
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_a_slow_client_among_many_is_told_to_resync_and_the_others_lose_nothing(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store, queue_size=6)
    streams = await clients(hub, writer, CLIENTS)
    slow, quick = streams[0], streams[1:]
    got: list[list[int]] = [[] for _ in quick]
    pairs = zip(quick, got, strict=True)
    readers = [asyncio.ensure_future(drain(s, 14, seqs)) for s, seqs in pairs]
    told = asyncio.ensure_future(anext(slow))  # waits, reads one batch, then no more
    await turn()
    for start in (1, 5, 9):  # three flushes of 4 events: seqs 3-14
        for n in range(start, start + 4):
            writer(said(n))
        hub._flush()
        while hub._waking:  # the fan-out ends before the next flush: the quick keep up
            await turn()
        for _ in range(3):
            await turn()
    await asyncio.gather(*readers)
    assert all(seqs == list(range(3, 15)) for seqs in got)
    assert [out.cursor for out in await told] == ["3", "4", "5", "6"]  # then it read no more
    # 8 more frames queued for it (4 + 4 > 6): overflowed, its next batch is the resync
    async with asyncio.timeout(30):
        resync = await anext(slow)
    assert [(out.kind, orjson.loads(out.body)["after"]) for out in resync] == [("resync", 6)]
    assert hub.overflows > 0
    assert writer.flush_now()
    again = await open_batches(hub, RUN, "6", 3600.0, window=True)  # resynced: nothing lost
    rest: list[int] = []
    await drain(again, 14, rest)
    assert rest == list(range(7, 15))
    for stream in [*streams, again]:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_a_client_that_goes_during_the_fan_out_changes_nothing_for_the_others(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store)
    streams = await clients(hub, writer, CLIENTS)
    got: list[list[int]] = [[] for _ in streams]
    pairs = zip(streams, got, strict=True)
    readers = [asyncio.ensure_future(drain(s, 22, seqs)) for s, seqs in pairs]
    await turn()
    for n in range(1, 6):
        writer(said(n))
    hub._flush()
    assert hub._waking  # some clients not woken yet ...
    # ... among them the last one, which goes away now: its reader is cancelled and its
    # stream closed (a socket gone: the endpoint closes the stream), unsubscribed
    gone = len(streams) - 1
    readers[gone].cancel()
    await asyncio.gather(readers[gone], return_exceptions=True)
    await streams[gone].aclose()  # type: ignore[attr-defined]  # an async generator
    assert hub.clients == CLIENTS - 1
    for start in (6, 11, 16):  # more flushes, while and after the fan-out goes on
        for n in range(start, start + 5):
            writer(said(n))
        hub._flush()
        await turn()
    kept = [seqs for index, seqs in enumerate(got) if index != gone]
    await asyncio.gather(*(r for index, r in enumerate(readers) if index != gone))
    assert all(seqs == list(range(3, 23)) for seqs in kept)
    assert not hub._waking
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


def test_flushed_off_the_loop_every_client_is_woken_at_once(store: SqlHistory) -> None:
    hub, writer = fed_hub(store)  # no event loop runs: each frame is flushed as it comes
    subs = [hub.subscribe(RUN, windowed=True) for _ in range(CLIENTS)]
    for n in range(1, 4):
        writer(said(n))
    assert all(sub.ready.is_set() for sub in subs) and not hub._waking
    queued = [[f.seq for item in sub.frames for f in getattr(item, "frames", ())] for sub in subs]
    assert queued == [[2, 3, 4]] * CLIENTS
    writer.close()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_a_frame_made_once_is_the_text_frame_websockets_makes(size: int) -> None:
    from websockets.frames import Frame, Opcode

    from corral.server.frames import text_frame

    payload = ("é" * size).encode()[:size]
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_corral_serve_offers_the_frame_send_only_with_uvicorns_websockets_protocol() -> None:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from corral.server.frames import EXTENSION, frame_sender, protocol_class

    chosen = protocol_class()
    assert isinstance(chosen, type) and issubclass(chosen, WebSocketsSansIOProtocol)
    assert frame_sender({"type": "websocket", "extensions": {}}) is None  # another server
    assert frame_sender({"type": "websocket"}) is None

    async def send(frame: bytes) -> None:
        return None

    assert frame_sender({"extensions": {EXTENSION: send}}) is send


def test_the_frame_send_is_offered_only_where_uvicorns_state_it_reads_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`send_frame` reads uvicorn's internals: a uvicorn without one of them gets no
    extension (the app sends with send_text), never a send that breaks mid-run."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from corral.server._frameproto import _READS, FrameProtocol
    from corral.server.frames import EXTENSION

    monkeypatch.setattr(WebSocketsSansIOProtocol, "handle_connect", lambda self, event: None)

    def connected(missing: str | None) -> dict[str, object]:
        protocol = object.__new__(FrameProtocol)
        for name in _READS:
            if name != missing:
                setattr(protocol, name, False)
        protocol.scope = {"type": "websocket", "extensions": {}}  # type: ignore[typeddict-item]
        protocol.handle_connect(None)  # type: ignore[arg-type]
        return protocol.scope["extensions"]  # type: ignore[return-value]

    assert EXTENSION in connected(None)
    for name in _READS:
        assert connected(name) == {}, name


def test_a_real_uvicorn_connection_is_offered_the_frame_send_and_it_delivers(
    tmp_path: Path,
) -> None:
    """This uvicorn, run as `corral serve` runs it: the connection's scope has the frame
    send, and a frame written through it is the client's text message."""
    import socket

    import uvicorn

    from corral.server.frames import EXTENSION, frame_sender, protocol_class, text_frame

    offered: list[bool] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":  # type: ignore[operator]
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
            return
        await receive()  # type: ignore[operator]  # websocket.connect
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        sender = frame_sender(scope)
        offered.append(EXTENSION in scope["extensions"])  # type: ignore[operator]
        assert sender is not None
        await sender(text_frame(b'["made once"]'))
        await send({"type": "websocket.close", "code": 1000})  # type: ignore[operator]

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()  # connections queue before uvicorn accepts: no wait for its start
    port = listening.getsockname()[1]
    config = uvicorn.Config(
        app, ws=protocol_class(), log_level="warning", ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)

    async def scenario() -> str | bytes:
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            async with connect(f"ws://127.0.0.1:{port}/") as client:
                return await client.recv()
        finally:
            server.should_exit = True
            await serving
            listening.close()

    assert asyncio.run(scenario()) == '["made once"]'
    assert offered == [True]


def test_many_sockets_get_every_event_once_in_order_when_one_goes_mid_run(
    tmp_path: Path,
) -> None:
    """A real `corral serve` (its frames made once for all sockets), 20 batched sockets,
    one of them cut without a close after its first message: the others get every event
    of the run exactly once, in order, each message a valid text frame of a JSON array."""
    live = start_server(tmp_path)
    try:
        run_id = submit(live, sleeping_flow(30, 0.02, concurrency=6))
        url = f"{live.ws_url}/api/v1/events?run={run_id}&after=0&batch=true"

        async def follow(cut: bool) -> list[int]:
            seqs: list[int] = []
            async with connect(url, additional_headers=live.headers()) as socket:
                while True:
                    message = await socket.recv()
                    assert isinstance(message, str)  # a text frame
                    frames = orjson.loads(message)
                    seqs += [f["seq"] for f in frames if f["type"] != "heartbeat"]
                    if cut:
                        socket.transport.abort()  # gone, no close handshake
                        return seqs
                    if frames[-1]["type"] == "RunFinished":
                        return seqs

        async def everyone() -> list[list[int]]:
            async with asyncio.timeout(120):
                return await asyncio.gather(*(follow(index == 7) for index in range(20)))

        got = asyncio.run(everyone())
        wait_run(live, run_id)
        stored = stored_seqs(tmp_path, run_id)
        assert stored == list(range(1, len(stored) + 1))
        assert all(seqs == stored for index, seqs in enumerate(got) if index != 7)
        assert got[7] == stored[: len(got[7])]
        with live.client() as http:  # and the server serves on
            assert http.get(f"/runs/{run_id}").status_code == 200
    finally:
        live.stop()
