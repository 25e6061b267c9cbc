"""Live events against a real `corral serve`: WebSocket and SSE, exactly once and in
order across connections cut at random points, all-runs cursors, terminal runs seen
live, slow clients told to resync, bad requests, and a restart mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import corral
from tests.serverkit import (
    LiveServer,
    sleeping_flow,
    start_server,
    stored_seqs,
    submit,
    wait_run,
)

pytest.importorskip("websockets")
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(tmp_path)
    yield live
    live.stop()


def _events(server: LiveServer, query: str) -> str:
    return f"{server.ws_url}/api/v1/events?{query}"


async def _collect_with_cuts(
    server: LiveServer, run_id: str, cuts: int, rng: random.Random, batch: bool = False
) -> list[int]:
    """Follow `run_id`, dropping the connection after a random number of messages (or a
    random time) `cuts` times, reconnecting from the last seq; every seq received. With
    `batch` the messages are arrays of frames (`batch=true`)."""
    received: list[int] = []
    last = 0
    done = False
    cut = 0
    while not done:
        budget = rng.randint(0, 4) if cut < cuts else 10**9
        deadline = rng.uniform(0.005, 0.05) if cut < cuts else 60.0
        async with connect(
            _events(server, f"run={run_id}&after={last}" + ("&batch=true" if batch else "")),
            additional_headers=server.headers(),
        ) as socket:
            try:
                async with asyncio.timeout(deadline):
                    while budget > 0 and not done:
                        message = json.loads(await socket.recv())
                        assert isinstance(message, list) == batch, message
                        budget -= 1
                        for frame in message if batch else [message]:
                            assert frame["type"] != "error", frame
                            if frame["type"] in ("heartbeat",):
                                continue
                            received.append(frame["seq"])
                            last = frame["seq"]
                            if frame["type"] == "RunFinished":
                                done = True
                                break
            except TimeoutError:
                pass
        cut += 1
    return received


def test_fifty_random_cuts_lose_and_repeat_nothing(server: LiveServer) -> None:
    run_id = submit(server, sleeping_flow(12, 0.15, concurrency=3))
    rng = random.Random(15)
    received = asyncio.run(_collect_with_cuts(server, run_id, 50, rng))
    wait_run(server, run_id)
    assert received == stored_seqs(server.directory, run_id)
    assert received == list(range(1, len(received) + 1))


def test_batched_frames_with_twenty_random_cuts_lose_and_repeat_nothing(
    server: LiveServer,
) -> None:
    run_id = submit(server, sleeping_flow(12, 0.05, concurrency=6))
    received = asyncio.run(_collect_with_cuts(server, run_id, 20, random.Random(16), batch=True))
    wait_run(server, run_id)
    assert received == stored_seqs(server.directory, run_id)
    assert received == list(range(1, len(received) + 1))

    async def replay() -> list[list[dict[str, Any]]]:
        # a finished run from 0: its frames, consecutive, many to a message
        url = _events(server, f"run={run_id}&after=0&batch=true")
        messages = []
        async with connect(url, additional_headers=server.headers()) as socket:
            while not messages or messages[-1][-1]["type"] != "RunFinished":
                messages.append(json.loads(await socket.recv()))
        return messages

    messages = asyncio.run(replay())
    assert [f["seq"] for m in messages for f in m] == received
    assert len(messages) < len(received)  # batched


def test_sse_resumes_with_last_event_id(server: LiveServer) -> None:
    run_id = submit(server, sleeping_flow(4, 0.1))
    wait_run(server, run_id)
    expected = stored_seqs(server.directory, run_id)
    seen: list[int] = []
    last = None
    with httpx.Client(headers=server.headers(), timeout=30) as http:
        for _ in range(20):
            headers = {"Last-Event-ID": last} if last else {}
            with http.stream(
                "GET", f"{server.url}/api/v1/events", params={"run": run_id}, headers=headers
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                taken = 0
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last = line[4:]
                    elif line.startswith("data: "):
                        frame = json.loads(line[6:])
                        seen.append(frame["seq"])
                        taken += 1
                        if taken == 3 or frame["type"] == "RunFinished":
                            break
            if seen and seen[-1] == expected[-1]:
                break
    assert seen == expected


def test_all_runs_stream_sees_a_terminal_run_and_resumes_by_cursor(
    server: LiveServer, tmp_path: Path
) -> None:
    async def follow() -> tuple[list[tuple[str, int]], str]:
        got: list[tuple[str, int]] = []
        cursor = ""
        async with connect(_events(server, ""), additional_headers=server.headers()) as socket:
            await asyncio.sleep(0.3)  # connected before the run starts
            (tmp_path / "term.yaml").write_text(sleeping_flow(3, 0.1))
            started = asyncio.get_running_loop().run_in_executor(
                None, lambda: corral("run", "term.yaml", cwd=tmp_path)
            )
            async with asyncio.timeout(60):
                while True:
                    frame = json.loads(await socket.recv())
                    if frame["type"] == "heartbeat":
                        continue
                    got.append((frame["run_id"], frame["type"]))
                    cursor = frame["seq"]
                    if len([g for g in got if g[1] == "JobFinished"]) == 2:
                        break
            result = await started
            assert result.returncode == 0, result.stderr
        return got, cursor

    got, cursor = asyncio.run(follow())
    run_id = got[0][0]
    assert got[0][1] == "RunStarted"

    # resume the all-runs stream from its cursor: the rest of that run, once
    async def rest() -> list[str]:
        kinds: list[str] = []
        async with connect(
            _events(server, f"after={cursor}"), additional_headers=server.headers()
        ) as socket:
            async with asyncio.timeout(30):
                while True:
                    frame = json.loads(await socket.recv())
                    if frame["type"] == "heartbeat":
                        continue
                    assert frame["run_id"] == run_id
                    kinds.append(frame["type"])
                    if frame["type"] == "RunFinished":
                        return kinds

    remaining = asyncio.run(rest())
    total = len(stored_seqs(tmp_path, run_id))
    assert len(got) + len(remaining) == total


def test_bad_requests_get_documented_errors_and_the_server_keeps_serving(
    server: LiveServer,
) -> None:
    run_id = submit(server, sleeping_flow(1, 0.01))
    wait_run(server, run_id)
    end = len(stored_seqs(server.directory, run_id))

    async def refused(query: str, headers: dict[str, str]) -> tuple[dict[str, Any], int]:
        async with connect(_events(server, query), additional_headers=headers) as socket:
            frame = json.loads(await socket.recv())
            with pytest.raises(ConnectionClosed):
                await socket.recv()
            assert socket.close_code is not None
            return frame, socket.close_code

    cases = [
        (f"run={run_id}&after={end + 1}", server.headers(), "after_beyond_end", 4400),
        (f"run={run_id}&after=-1", server.headers(), "bad_request", 4400),
        ("run=nosuch", server.headers(), "not_found", 4404),
        ("after=garbage", server.headers(), "bad_request", 4400),
        (f"run={run_id}", {}, "unauthorized", 4401),
        (f"run={run_id}", {"Authorization": "Bearer nope"}, "unauthorized", 4401),
    ]
    for query, headers, code, close in cases:
        frame, closed = asyncio.run(refused(query, headers))
        assert frame["type"] == "error" and frame["error"]["code"] == code, query
        assert closed == close
        assert server.token not in json.dumps(frame)
    beyond = httpx.get(
        f"{server.url}/api/v1/events",
        params={"run": run_id, "after": end + 5},
        headers=server.headers(),
    )
    assert beyond.status_code == 400 and beyond.json()["error"]["last_seq"] == end

    # at the end exactly: nothing to replay, a valid cursor
    async def at_end() -> str:
        async with connect(
            _events(server, f"run={run_id}&after={end}"), additional_headers=server.headers()
        ) as socket:
            try:
                async with asyncio.timeout(0.5):
                    return str(await socket.recv())
            except TimeoutError:
                return "quiet"

    assert asyncio.run(at_end()) == "quiet"
    assert httpx.get(server.url + "/readyz").status_code == 200


@pytest.mark.parametrize("batch", [False, True], ids=["frames", "batched"])
def test_a_slow_client_is_told_to_resync_and_loses_nothing(tmp_path: Path, batch: bool) -> None:
    live = start_server(tmp_path, "--client-queue", "5")
    try:
        run_id = submit(live, sleeping_flow(20, 0.01, concurrency=8))

        async def slow() -> tuple[list[int], int]:
            seqs: list[int] = []
            resyncs = 0
            last = 0
            while True:
                async with connect(
                    _events(live, f"run={run_id}&after={last}" + ("&batch=1" if batch else "")),
                    additional_headers=live.headers(),
                    max_queue=1,
                ) as socket:
                    await asyncio.sleep(0.5)  # fall behind
                    try:
                        async for message in socket:
                            for frame in json.loads(message) if batch else [json.loads(message)]:
                                if frame["type"] == "resync":
                                    resyncs += 1
                                    assert frame["after"] == last
                                    continue
                                if frame["type"] == "heartbeat":
                                    continue
                                seqs.append(frame["seq"])
                                last = frame["seq"]
                                if frame["type"] == "RunFinished":
                                    return seqs, resyncs
                    except ConnectionClosed:
                        pass
                    assert socket.close_code == 4001

        seqs, resyncs = asyncio.run(slow())
        assert seqs == stored_seqs(tmp_path, run_id)
        assert resyncs >= 1
        metrics = httpx.get(live.url + "/metrics").text
        assert "corral_events_dropped_total 0" in metrics
    finally:
        live.stop()


def test_heartbeats_keep_an_idle_stream_alive(tmp_path: Path) -> None:
    live = start_server(tmp_path, "--heartbeat", "0.2")
    try:

        async def beats() -> list[dict[str, Any]]:
            async with connect(_events(live, ""), additional_headers=live.headers()) as socket:
                return [json.loads(await socket.recv()) for _ in range(2)]

        frames = asyncio.run(beats())
        assert [f["type"] for f in frames] == ["heartbeat", "heartbeat"]
        assert frames[1]["ts"] > frames[0]["ts"]
    finally:
        live.stop()


def test_sigterm_closes_sockets_with_reconnect_and_the_next_start_serves_the_rest(
    tmp_path: Path,
) -> None:
    first = start_server(tmp_path)
    run_id = submit(first, sleeping_flow(2, 0.05))
    wait_run(first, run_id)

    async def until_close() -> tuple[list[int], int | None]:
        seqs: list[int] = []
        async with connect(
            _events(first, f"run={run_id}"), additional_headers=first.headers()
        ) as socket:
            seqs.append(json.loads(await socket.recv())["seq"])  # the stream is up
            first.proc.send_signal(signal.SIGTERM)
            try:
                async for message in socket:
                    frame = json.loads(message)
                    if "seq" in frame and isinstance(frame["seq"], int):
                        seqs.append(frame["seq"])
            except ConnectionClosed:
                pass
            return seqs, socket.close_code

    seqs, code = asyncio.run(until_close())
    assert first.proc.wait(30) == 0  # drained, then a clean exit
    first.stop()
    assert code == 4000
    assert seqs == stored_seqs(tmp_path, run_id)


def _wait_for_marks(marks: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while not all((marks / f"j{i}").exists() for i in range(count)):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_restart_mid_run_completes_the_run_once_with_a_complete_sequence(
    tmp_path: Path,
) -> None:
    """SIGTERM while jobs sleep, then a new server on the same port's history: the run
    completes, each job ran once, and a client that followed throughout (reconnecting
    with backoff from its last seq) has the store's sequence exactly."""
    from corral.server.client import follow_events

    marks = tmp_path / "marks"
    marks.mkdir()
    lines = ["version: 1", "concurrency: 3", "jobs:"]
    for index in range(3):
        lines += [f"  j{index}:", f'    run: sh -c "echo x >> {marks}/j{index}; sleep 1.5"']
    first = start_server(tmp_path)
    port = first.url.rsplit(":", 1)[1]
    run_id = submit(first, "\n".join(lines) + "\n")
    received: list[int] = []

    def on_frame(frame: dict[str, Any]) -> bool:
        received.append(frame["seq"])
        return bool(frame["type"] == "RunFinished")

    async def scenario() -> None:
        follower = asyncio.ensure_future(
            follow_events(first.url, first.token, run_id, on_frame, give_up_after_s=60)
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _wait_for_marks, marks, 3)
        assert await loop.run_in_executor(None, first.stop) == 0
        second = await loop.run_in_executor(None, start_server, tmp_path, "--port", port)
        try:
            await asyncio.wait_for(follower, 60)
        finally:
            await loop.run_in_executor(None, second.stop)

    asyncio.run(scenario())
    for index in range(3):
        assert (marks / f"j{index}").read_text() == "x\n", f"j{index} ran twice"
    assert received == stored_seqs(tmp_path, run_id)
    assert received == list(range(1, len(received) + 1))


def test_the_next_start_adopts_a_run_whose_worker_died(tmp_path: Path) -> None:
    """kill -9 of the server and of the run's worker (a reboot, an OOM kill): the next
    server resumes the run through the resume use case, and is ready once it did."""
    from corral.execute.liveness import holder

    first = start_server(tmp_path)
    run_id = submit(first, sleeping_flow(2, 30, concurrency=2))
    with first.client() as http:
        deadline = time.monotonic() + 20
        while not all(
            j["status"] == "running" for j in http.get(f"/runs/{run_id}/jobs").json()["jobs"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        log_root = Path(http.get(f"/runs/{run_id}").json()["run"]["log_root"])
    first.stop(signal.SIGKILL)
    worker = holder(log_root)
    assert worker is not None  # the worker outlived its server
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while holder(log_root) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = start_server(tmp_path)
    try:
        with second.client() as http:
            deadline = time.monotonic() + 30
            while httpx.get(second.url + "/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            runs = http.get("/runs", params={"chain": "false"}).json()["runs"]  # each run
            adopted = [r for r in runs if r["resumed_from"] == run_id]
            assert len(adopted) == 1 and adopted[0]["status"] == "running"
            assert adopted[0]["owner"] == next(r for r in runs if r["id"] == run_id)["owner"]
            assert http.post(f"/runs/{adopted[0]['id']}/cancel").status_code == 202
            wait_run(second, adopted[0]["id"])
    finally:
        second.stop()
