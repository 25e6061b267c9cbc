"""The direct feed: a run's writer numbers each event as it is published, the server's hub
sends it at once, and a client that joins (or resumes) while the history has not
written it yet still gets every event exactly once, in order, with the same frame the
history would give it. The real writer (SQLite), the real hub and the real live stream;
the pipe between worker and server is the real encoding (`corral.server.feed`)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral.events.types import AssistantText, Event, JobOutput, RunFinished, RunStarted
from corral.models import RunStatus
from corral.store import SqlHistory, StoreWriter, open_store

pytest.importorskip("fastapi")

from corral.server.errors import ApiError  # after the extra's check
from corral.server.feed import FeedSender, encode, read_feed
from corral.server.hub import EventHub, LiveFrame
from corral.server.live import Out, open_batches, open_stream

RUN = "20261203-000000-feed"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlHistory]:
    history = open_store(None, tmp_path / "corral.db")
    yield history
    history.close()


def started() -> RunStarted:
    return RunStarted(
        run_id=RUN, flow_name="f", flow_path="f.yaml", jobs=("a",), started_at=1.0, user="ana"
    )


def said(n: int) -> AssistantText:
    return AssistantText(job="a", attempt=1, text=f"line {n}")


def piped(hub: EventHub) -> object:
    """A writer listener that hands each event to the hub through the feed's encoding,
    as the server's reader does with the worker's pipe."""

    def listen(run_id: str, seq: int, ts: float, event: Event) -> None:
        line = orjson.loads(encode(run_id, seq, ts, event))
        event = orjson.dumps(line["event"])
        hub.feed(LiveFrame(run_id, line["seq"], line["ts"], "ana", line["type"], event))

    return listen


def fed_hub(store: SqlHistory, **options: Any) -> tuple[EventHub, StoreWriter]:
    """A hub fed by a writer through the feed's encoding, the run already started; the
    writer writes only when told to (flush_now)."""
    hub = EventHub(store, poll_s=0.01, **options)
    writer = StoreWriter(store, window_s=60.0)
    writer.listen(piped(hub))  # type: ignore[arg-type]
    writer(started())
    return hub, writer


async def take(stream: AsyncIterator[Out], count: int) -> list[dict[str, object]]:
    frames = []
    async with asyncio.timeout(10):
        async for out in stream:
            if out.kind != "heartbeat":
                frames.append(orjson.loads(out.body))
            if len(frames) == count:
                break
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    return frames


async def test_numbers_are_given_at_publish_and_kept_by_the_history(store: SqlHistory) -> None:
    writer = store.writer()
    heard: list[tuple[str, int]] = []
    writer.listen(lambda run_id, seq, ts, event: heard.append((run_id, seq)))
    writer(said(0))  # before any RunStarted: numbered with the run, before it
    writer(started())
    writer(JobOutput(job="a", attempt=1, stream="stdout", text="not stored", offset=0))
    for n in range(1, 4):
        writer(said(n))
    assert heard == [(RUN, 1), (RUN, 2), (RUN, 3), (RUN, 4), (RUN, 5)]
    writer.close()
    stored = [(s.seq, type(s.event).__name__) for s in store.events(RUN)]
    assert stored == [(1, "AssistantText"), (2, "RunStarted")] + [
        (n, "AssistantText") for n in (3, 4, 5)
    ]
    # a later writer of the same run (a process closing it) numbers on from the history
    closing = store.writer(run_id=RUN)
    more: list[int] = []
    closing.listen(lambda run_id, seq, ts, event: more.append(seq))
    closing(RunFinished(run_id=RUN, status=RunStatus.CANCELLED, ended_at=2.0))
    closing.close()
    assert more == [6] and [s.seq for s in store.events(RUN)][-1] == 6


async def test_a_client_gets_what_the_history_has_not_written_yet_exactly_once(
    store: SqlHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("corral.server.live.WRITE_WAIT_S", 0.2)  # `after` past the end
    hub, writer = fed_hub(store, queue_size=1000)  # writes only when told to (flush_now)
    for n in range(1, 6):
        writer(said(n))
    assert writer.flush_now()  # seqs 1-6 written
    for n in range(6, 21):
        writer(said(n))  # 7-21: sent by the hub, not written yet
    assert [s.seq for s in store.events(RUN)] == list(range(1, 7))
    assert hub.position(RUN) == 21

    fresh = await take(await open_stream(hub, RUN, None, 15.0), 21)
    assert [f["seq"] for f in fresh] == list(range(1, 22))
    # a client that saw 15 live comes back before the history has it: no error, the rest
    resumed = await take(await open_stream(hub, RUN, "15", 15.0), 6)
    assert [f["seq"] for f in resumed] == list(range(16, 22))
    # live frames and the history's are the same frames
    writer.close()
    replayed = await take(await open_stream(hub, RUN, None, 15.0), 21)
    for live, stored in zip(fresh, replayed, strict=True):
        assert {**live, "ts": 0} == {**stored, "ts": 0}
        assert live["ts"] == pytest.approx(stored["ts"])
    with pytest.raises(ApiError) as beyond:
        await open_stream(hub, RUN, "22", 15.0)
    assert beyond.value.code == "after_beyond_end"
    assert hub.fed == 21 and hub.dropped == 0


async def test_frames_come_in_batches_of_those_ready_at_once_each_once_in_order(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store, queue_size=1000)
    for n in range(1, 30):
        writer(said(n))
    assert writer.flush_now()  # 1-30 written
    batches = await open_batches(hub, RUN, "3", 15.0)
    replay = await anext(batches)  # a page of the history, at once
    assert [orjson.loads(out.body)["seq"] for out in replay] == list(range(4, 31))
    for n in range(30, 40):  # queued for the client while it was away: one batch
        writer(said(n))
    async with asyncio.timeout(10):
        live = await anext(batches)
    assert [orjson.loads(out.body)["seq"] for out in live] == list(range(31, 41))
    assert [out.cursor for out in live] == [str(n) for n in range(31, 41)]
    # a client that keeps up: one frame, one batch
    writer(said(40))
    async with asyncio.timeout(10):
        assert [out.cursor for out in await anext(batches)] == ["41"]
    await batches.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_a_hole_in_the_queue_is_filled_from_the_hub_before_the_history_has_it(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store, queue_size=1000)
    assert writer.flush_now()
    stream = await open_stream(hub, RUN, None, 15.0)
    first = await anext(stream)  # the replay; subscribed before it
    assert orjson.loads(first.body)["seq"] == 1
    # events a client's queue never saw (as after a resync): the hub still keeps them
    sub = next(iter(hub._subs))
    for n in range(1, 4):
        writer(said(n))
    sub.frames.clear()
    writer(said(4))
    rest = await take(stream, 4)
    assert [f["seq"] for f in rest] == [2, 3, 4, 5]
    writer.close()


async def test_the_feed_pipe_carries_events_and_ends_when_the_sender_goes(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    sender = FeedSender(write_fd)
    got: list[dict[str, object]] = []
    reading = asyncio.ensure_future(read_feed(read_fd, got.append))
    for n in range(2000):  # more than a pipe holds: the rest waits for it, in order
        sender(RUN, n + 1, 1.0, said(n))
    async with asyncio.timeout(10):
        while len(got) < 2000:  # noqa: ASYNC110  # the reader fills a plain list
            await asyncio.sleep(0.01)
    sender.close()
    sender(RUN, 9999, 1.0, said(9999))  # after the end: dropped, never raises
    async with asyncio.timeout(10):
        await reading
    assert [line["seq"] for line in got] == list(range(1, 2001))
    assert got[0]["type"] == "AssistantText" and got[0]["event"]["text"] == "line 0"  # type: ignore[index]


async def test_a_sender_whose_server_is_gone_lets_the_run_go_on() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    sender = FeedSender(write_fd)
    sender(RUN, 1, 1.0, said(1))  # EPIPE: the feed ends quietly
    assert not sender.open


async def test_an_event_sent_live_that_the_history_never_writes_is_counted_dropped(
    store: SqlHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("corral.server.live.WRITE_WAIT_S", 0.2)
    hub = EventHub(store, poll_s=0.01, queue_size=1000)
    writer = StoreWriter(store, window_s=60.0)
    writer(started())
    assert writer.flush_now()
    stream = await open_stream(hub, RUN, None, 15.0)
    assert orjson.loads((await anext(stream)).body)["seq"] == 1
    # seq 2 never reaches this hub nor the history (lost with a failing database)
    event = b'{"v": 1, "kind": "agent.text", "job": "a", "attempt": 1, "text": "x"}'
    hub.feed(LiveFrame(RUN, 3, 1.0, "ana", "AssistantText", event))
    rest = await take(stream, 1)
    assert [f["seq"] for f in rest] == [3] and hub.dropped == 1
    writer.close()


def test_a_sqlite_history_tells_it_changed_by_its_files(store: SqlHistory) -> None:
    from corral.server.hub import change_probe

    probe = change_probe(store)
    assert probe is not None and change_probe(object()) is None  # type: ignore[arg-type]
    before = probe()
    assert probe() == before  # nothing written: nothing to read
    writer = store.writer()
    writer(started())
    writer.close()
    assert probe() != before


async def test_a_batch_window_sends_what_came_in_it_once_in_order_one_batch_for_all(
    store: SqlHistory,
) -> None:
    from corral.server.events import _message

    hub, writer = fed_hub(store, queue_size=1000, batch_window_s=0.05)
    assert writer.flush_now()
    one = await open_batches(hub, RUN, "1", 15.0, window=True)
    two = await open_batches(hub, RUN, "1", 15.0, window=True)
    plain = await open_batches(hub, RUN, "1", 15.0)  # no window: as before
    # both subscribed, caught up, waiting
    waiting = [asyncio.ensure_future(anext(stream)) for stream in (one, two)]
    await asyncio.sleep(0.01)
    writer(said(0))  # seq 2, after a quiet spell: at once, alone
    async with asyncio.timeout(10):
        assert [[out.cursor for out in got] for got in await asyncio.gather(*waiting)] == [
            ["2"],
            ["2"],
        ]
    waiting = [asyncio.ensure_future(anext(stream)) for stream in (one, two)]
    await asyncio.sleep(0)
    for n in range(1, 11):  # seqs 3-12, fed within the window the last one opened
        writer(said(n))
    windowed = [sub for sub in hub._subs if sub.windowed]
    assert len(windowed) == 2 and not any(sub.frames for sub in windowed)  # in the window
    async with asyncio.timeout(10):
        first, second = await asyncio.gather(*waiting)
    assert [out.cursor for out in first] == [str(n) for n in range(3, 13)]
    assert first is second  # the same batch for every client that keeps up ...
    assert _message(first) is _message(second)  # ... and its message made once
    assert orjson.loads(_message(first)) == [orjson.loads(out.body) for out in first]
    got: list[str | None] = []
    async with asyncio.timeout(10):
        while len(got) < 11:
            got += [out.cursor for out in await anext(plain)]
    assert got == [str(n) for n in range(2, 13)]
    writer(said(11))  # the next batch, nothing twice
    async with asyncio.timeout(10):
        assert [out.cursor for out in await anext(one)] == ["13"]
    for stream in (one, two, plain):
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_frames_waiting_in_the_window_count_against_the_client_queue(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store, queue_size=5, batch_window_s=0.05)
    assert writer.flush_now()
    fits = await open_batches(hub, RUN, "1", 15.0, window=True)
    hub._flushed_at = time.monotonic() + 60  # a window that lasts: what comes waits in it
    for n in range(1, 6):  # 5 frames in a window: as many as the queue holds
        writer(said(n))
    hub._flush()  # the window's end
    async with asyncio.timeout(10):
        assert [out.cursor for out in await anext(fits)] == ["2", "3", "4", "5", "6"]
    for n in range(6, 12):  # 6 in a window: more than the queue holds
        writer(said(n))
    hub._flush()
    async with asyncio.timeout(10):
        told = await anext(fits)
    assert [(out.kind, orjson.loads(out.body)["after"]) for out in told] == [("resync", 6)]
    assert writer.flush_now()
    again = await open_batches(hub, RUN, "6", 15.0, window=True)  # resynced: nothing lost
    async with asyncio.timeout(10):
        assert [out.cursor for out in await anext(again)] == [str(n) for n in range(7, 13)]
    # no window: a client is handed each frame as it comes
    assert not EventHub(store, poll_s=0.01, queue_size=5).subscribe(RUN, windowed=True).windowed
    await again.aclose()  # type: ignore[attr-defined]  # an async generator
    writer.close()


async def test_a_closing_hub_sends_what_waits_in_the_window_before_the_reconnect(
    store: SqlHistory,
) -> None:
    hub, writer = fed_hub(store, queue_size=1000, batch_window_s=30.0)
    assert writer.flush_now()
    stream = await open_batches(hub, RUN, "1", 15.0, window=True)
    for n in range(1, 4):
        writer(said(n))
    await hub.close()  # long before the window's end
    frames: list[dict[str, object]] = []
    async with asyncio.timeout(10):
        async for batch in stream:
            frames += [orjson.loads(out.body) for out in batch]
    assert [f.get("seq") for f in frames] == [2, 3, 4, None] and frames[-1]["type"] == "reconnect"
    writer.close()


async def test_the_follower_probes_often_only_while_a_run_is_followed_from_the_history(
    store: SqlHistory,
) -> None:
    from corral.server.hub import PROBE_S, QUIET_PROBE_S

    hub = EventHub(store, poll_s=0.01, queue_size=10)
    assert hub._probe_every() == QUIET_PROBE_S  # nothing to follow: a new run is discovered
    hub.track(RUN, "ana")  # started here, its feed not come yet: followed from the history
    assert hub._probe_every() == PROBE_S
    event = b'{"v": 1, "kind": "agent.text", "job": "a", "attempt": 1, "text": "x"}'
    hub.feed(LiveFrame(RUN, 1, 1.0, "ana", "AssistantText", event))
    assert hub._probe_every() == QUIET_PROBE_S  # fed: its events come through the pipe
    hub.unfeed(RUN)
    assert hub._probe_every() == PROBE_S
    # a poke ends the follower's nap at once (and is not lost if it comes before it)
    assert await hub._nap(30.0) is True  # track and unfeed poked
    napping = asyncio.ensure_future(hub._nap(30.0))
    await asyncio.sleep(0)
    hub.poke()
    async with asyncio.timeout(5):
        assert await napping is True
    assert await hub._nap(0.001) is False
    hub.poke()
    assert await hub._nap(30.0) is True


async def test_a_burst_of_events_goes_in_one_write_after_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_fd, write_fd = os.pipe()
    writes: list[int] = []
    write = os.write

    def counted(fd: int, data: bytes) -> int:
        if fd == write_fd:
            writes.append(data.count(b"\n"))
        return write(fd, data)

    monkeypatch.setattr("corral.server.feed.os.write", counted)
    sender = FeedSender(write_fd, window_s=0.05)
    got: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(read_feed(read_fd, got.append))
    for n in range(100):  # one loop pass: the first at once, the rest when the window ends
        sender(RUN, n + 1, 1.0, said(n))
    assert writes == [1]
    async with asyncio.timeout(10):
        while len(got) < 100:  # noqa: ASYNC110  # the reader fills a plain list
            await asyncio.sleep(0.01)
    assert writes == [1, 99]
    sender(RUN, 101, 1.0, said(100))  # after the window: at once again
    sender(RUN, 102, 1.0, said(101))  # in the window it opened: held
    assert writes == [1, 99, 1]
    sender.finish()  # the run is over: what the window holds goes now, and the feed ends
    assert writes == [1, 99, 1, 1] and not sender.open
    async with asyncio.timeout(10):
        await reading
    assert [line["seq"] for line in got] == list(range(1, 103))


async def test_the_reader_splits_what_it_reads_and_drops_a_torn_last_line() -> None:
    read_fd, write_fd = os.pipe()
    got: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(read_feed(read_fd, got.append))
    big = AssistantText(job="a", attempt=1, text="x" * 600_000)  # longer than a read
    whole = encode(RUN, 1, 1.0, said(1)) + encode(RUN, 2, 1.0, big) + encode(RUN, 3, 1.0, said(3))
    torn = encode(RUN, 4, 1.0, said(4))[:-7]  # the worker died mid-write

    def worker() -> None:  # a blocking writer, in pieces, then dead mid-line
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:
            for at in range(0, len(whole), 100_000):
                pipe.write(whole[at : at + 100_000])
            pipe.write(torn)

    await asyncio.to_thread(worker)
    async with asyncio.timeout(10):
        await reading
    assert [line["seq"] for line in got] == [1, 2, 3]
    assert got[1]["event"]["text"] == big.text


async def test_a_line_over_the_limit_ends_the_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("corral.server.feed.MAX_LINE", 1000)
    read_fd, write_fd = os.pipe()
    got: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(read_feed(read_fd, got.append))
    sender = FeedSender(write_fd)
    sender(RUN, 1, 1.0, AssistantText(job="a", attempt=1, text="x" * 5000))
    async with asyncio.timeout(10):
        await reading  # ended by the reader, the sender's pipe still open
    sender.close()
    assert got == []
