"""What one turn of a loop does at once (issue 14's flat rows, x10flat).

corral's requests to the run's supervisor go in one send per event-loop turn; the
supervisor writes its start records and sends its replies once per turn of its own loop,
and its exit writer sends a batch of exits in one send; the joblog writes a turn's rows in
one write. None of it may change what is recorded, sent or published: the same lines in
the same order, every event of a run in the same order with the same content. Nothing
here is timed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config.schema import FlowSpec
from corral.events.bus import Bus
from corral.events.types import Event, JobFinished, JobStarted
from corral.execute import supervised
from corral.execute.executor import ExecutorContext, JobRequest, StopHandle
from corral.execute.local import LocalExecutor
from corral.execute.scheduler import Scheduler, Settings
from corral.execute.supervised import SupervisorClient
from corral.execute.waiting import first_done
from corral.journal.joblog import JobLog
from corral.models import JobStatus
from corral.plan import JobView, Plan, PlannedJob, build_plan


def _plan(jobs: dict[str, Any]) -> Plan:
    return build_plan(FlowSpec.model_validate(yaml.safe_load(yaml.safe_dump({"jobs": jobs}))))


def _run(root: Path, count: int, concurrency: int, lookahead: int) -> tuple[list[Event], Any]:
    """A flat run of `count` jobs that each print their name, under a real supervisor."""

    async def go() -> tuple[list[Event], Any]:
        plan = _plan({f"j{i}": {"run": "true"} for i in range(count)})
        bus = Bus()
        seen: list[Event] = []
        bus.subscribe(seen.append)

        def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
            return JobRequest(
                job.name,
                attempt,
                ("/bin/sh", "-c", f"echo {job.name}; echo err-{job.name} >&2"),
                None,
                dict(os.environ),
                root / job.name,
            )

        async with LocalExecutor(ExecutorContext("r", root, kill_grace=1.0)) as executor:
            settings = Settings(concurrency=concurrency, lookahead=lookahead)
            states = await Scheduler(plan, settings, executor, bus, prepare).run()
        return seen, states

    return asyncio.run(go())


@pytest.mark.parametrize(("count", "concurrency", "lookahead"), [(40, 8, 8), (25, 3, 0)])
def test_every_job_of_a_run_publishes_the_same_events_and_records_in_order(
    tmp_path: Path, count: int, concurrency: int, lookahead: int
) -> None:
    """Many jobs through the batched paths: per job JobStarted, its two lines' worth of
    output in its logs, then JobFinished; one start and one exit record per job, the
    start first; every exit said once, with the log sizes."""
    root = tmp_path / "run"
    events, states = _run(root, count, concurrency, lookahead)
    names = [f"j{i}" for i in range(count)]
    assert {n: s.status for n, s in states.items()} == dict.fromkeys(names, JobStatus.SUCCEEDED)
    kinds: dict[str, list[str]] = {}
    for event in events:
        kinds.setdefault(getattr(event, "job", ""), []).append(type(event).__name__)
    for name in names:
        assert kinds[name][0] == "JobStarted" and kinds[name][-1] == "JobFinished", kinds[name]
        assert kinds[name].count("JobStarted") == 1 and kinds[name].count("JobFinished") == 1
        assert (root / name / "stdout.log").read_text() == f"{name}\n"
        assert (root / name / "stderr.log").read_text() == f"err-{name}\n"
    started = {e.job: e for e in events if isinstance(e, JobStarted)}
    finished = {e.job: e for e in events if isinstance(e, JobFinished)}
    for name in names:
        assert started[name].pid > 0 and started[name].attempt == 1
        assert finished[name].exit_code == 0 and finished[name].status is JobStatus.SUCCEEDED
    # the records: one start then one exit per key, each a whole JSON line
    lines = (root / "supervisor.jsonl").read_bytes().splitlines()
    entries = [orjson.loads(line) for line in lines]
    order = [(e["key"], e["e"]) for e in entries]
    assert sorted(order) == sorted(
        [(f"{n}#1", "start") for n in names] + [(f"{n}#1", "exit") for n in names]
    )
    for name in names:
        key = f"{name}#1"
        assert order.index((key, "start")) < order.index((key, "exit"))
    records, _ = supervised.read_records(root)
    assert all(records[f"{n}#1"].exit == supervised.Exit(0, None) for n in names)
    assert all(records[f"{n}#1"].pid == started[n].pid for n in names)


def _client_spawns(root: Path, count: int) -> tuple[list[int], list[bytes]]:
    """`count` spawn requests made in one loop turn; what went over the socket."""
    sent: list[bytes] = []

    async def go() -> list[int]:
        client = SupervisorClient(root, "kill", 1.0)
        await client.start()
        sock = client._sock
        assert sock is not None

        class Spy:
            def __init__(self, real: socket.socket) -> None:
                self.real = real

            def send(self, data: bytes) -> int:
                sent.append(bytes(data))
                return self.real.send(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.real, name)

        client._sock = Spy(sock)  # type: ignore[assignment]  # a spy around the socket
        try:
            futures = [
                client.submit(
                    f"k{i}#1",
                    ("/bin/sh", "-c", f"echo {i}"),
                    dict(os.environ),
                    None,
                    root / f"k{i}" / "stdout.log",
                    root / f"k{i}" / "stderr.log",
                )
                for i in range(count)
            ]
            pids = [supervised.started_pid(await future) for future in futures]
            for i in range(count):
                await client.exited(f"k{i}#1")
        finally:
            client._sock = sock
            await client.close()
        return pids

    return asyncio.run(go()), sent


def test_the_requests_of_one_turn_go_in_one_send_in_order(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    pids, sent = _client_spawns(root, 5)
    assert len(sent) == 1
    messages = [orjson.loads(line) for line in sent[0].splitlines()]
    assert [m["key"] for m in messages] == [f"k{i}#1" for i in range(5)]
    assert all(m["op"] == "spawn" for m in messages) and len(set(pids)) == 5
    for i in range(5):
        assert (root / f"k{i}" / "stdout.log").read_text() == f"{i}\n"


def test_a_request_to_a_supervisor_that_is_gone_fails_the_spawn(tmp_path: Path) -> None:
    """A send that fails means the supervisor is gone: what waits for it fails, as when
    its end of the socket closes."""
    root = tmp_path / "run"
    root.mkdir()

    async def go() -> str:
        client = SupervisorClient(root, "kill", 1.0)
        await client.start()
        sock = client._sock
        assert sock is not None

        class Broken:
            def send(self, data: bytes) -> int:
                raise BrokenPipeError(32, "Broken pipe")

            def fileno(self) -> int:
                return sock.fileno()

            def close(self) -> None:
                sock.close()

        client._sock = Broken()  # type: ignore[assignment]  # a socket whose peer is gone
        try:
            await client.spawn("a#1", ("true",), dict(os.environ), None, root / "o", root / "e")
        except supervised.SpawnError as error:
            return str(error)
        finally:
            await client.close()
        return "started"

    assert asyncio.run(go()) == "the run's supervisor died"


def finished(name: str, ended_at: float | None = None) -> JobFinished:
    """A job's successful end, as the joblog is handed it."""
    return JobFinished(
        job=name,
        attempt=1,
        status=JobStatus.SUCCEEDED,
        exit_code=0,
        signal=None,
        duration_s=0.5,
        ended_at=ended_at,
    )


def test_the_joblog_writes_a_turns_rows_at_its_end_and_the_rest_at_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "joblog.tsv"
    names = [f"j{i}" for i in range(6)]

    async def go() -> list[int]:
        log = JobLog(path, names)
        rows_seen: list[int] = []
        for name in names[:4]:
            log(
                JobStarted(
                    job=name, attempt=1, pid=1, argv=("echo", name), log_dir="/l", started_at=100.0
                )
            )
            log(finished(name, ended_at=100.5))
        rows_seen.append(len(path.read_text().splitlines()) - 1)  # the header alone
        await asyncio.sleep(0)  # the turn ends: its rows are written
        rows_seen.append(len(path.read_text().splitlines()) - 1)
        log(finished(names[4]))
        log.close()  # at close: whatever the turn had
        rows_seen.append(len(path.read_text().splitlines()) - 1)
        return rows_seen

    assert asyncio.run(go()) == [0, 4, 5]
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    assert [r[-1] for r in rows] == names[:5]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0][2:7] == ["100.000", "0.500", "0", "0", "echo j0"]
    # outside an event loop a row is written at once
    other = JobLog(tmp_path / "other.tsv", names)
    other(finished("j5"))
    assert len((tmp_path / "other.tsv").read_text().splitlines()) == 2
    other.close()


def test_a_stop_handle_calls_back_once_a_stop_is_requested() -> None:
    handle = StopHandle()
    calls: list[str] = []
    handle.on_request(lambda: calls.append("first"))
    assert calls == []
    handle.request("why", JobStatus.CANCELLED, None)
    handle.on_request(lambda: calls.append("late"))  # already requested: at once
    handle.request("again", JobStatus.CANCELLED, None)  # each callback once
    assert calls == ["first", "late"]


@settings(max_examples=50, deadline=None)
@given(done=st.lists(st.booleans(), min_size=1, max_size=4), within=st.sampled_from([None, 0.0]))
def test_first_done_returns_as_asyncio_wait_would_and_cancels_nothing(
    done: list[bool], within: float | None
) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in done]
        for future, is_done in zip(futures, done, strict=True):
            if is_done:
                future.set_result(None)
        if not any(done) and within is None:
            loop.call_soon(futures[-1].set_result, None)  # something ends it
        await first_done(futures, within)
        assert not any(f.cancelled() for f in futures)
        # no callback of its own is left on them
        assert all(not f._callbacks for f in futures if not f.done())  # type: ignore[attr-defined]

    asyncio.run(go())


def test_a_flat_run_records_every_event_in_publish_order_and_the_joblog_agrees(
    tmp_path: Path,
) -> None:
    """`corral run` of 60 plain jobs, history on: each job's JobStarted then JobFinished
    in the history, numbered 1, 2, ... without a gap; the joblog's rows in the order of
    the JobFinished events, one per job; each job's row succeeded with its pid."""
    import json
    import sys

    from corral.app.location import default_history
    from corral.store.sql import open_store

    sys.path.insert(0, str(Path(__file__).parent))
    from helpers import corral, write_flow

    names = [f"j{i}" for i in range(60)]
    body = "concurrency: 8\njobs:\n" + "".join(f"  {n}: {{run: [echo, {n}]}}\n" for n in names)
    flow = write_flow(tmp_path, body)
    run = corral("run", str(flow), "-q", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    store = open_store(None, default_history(tmp_path))
    try:
        stored = list(store.events(run_id))
        record = store.get_run(run_id)
    finally:
        store.close()
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1))
    per_job: dict[str, list[str]] = {}
    for each in stored:
        if isinstance(each.event, JobStarted | JobFinished):
            per_job.setdefault(each.event.job, []).append(type(each.event).__name__)
    assert per_job == {name: ["JobStarted", "JobFinished"] for name in names}
    finished_order = [s.event.job for s in stored if isinstance(s.event, JobFinished)]
    joblog = (Path(record.run.log_root) / "joblog.tsv").read_text().splitlines()
    assert [row.split("\t")[-1] for row in joblog[1:]] == finished_order
    pids = {s.event.job: s.event.pid for s in stored if isinstance(s.event, JobStarted)}
    jobs = {j.name: j for j in record.jobs}
    assert all(jobs[n].status is JobStatus.SUCCEEDED for n in names)
    assert all(jobs[n].attempts[-1].pid == pids[n] for n in names)


def test_a_joblog_write_that_fails_reaches_the_run_through_the_bus(tmp_path: Path) -> None:
    """Written from a loop callback, a failed write is raised from the next event the
    joblog gets (the bus's publish), or from its close, as it was from the write."""

    class Full:
        closed = False

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    async def go() -> list[str]:
        raised: list[str] = []
        log = JobLog(tmp_path / "joblog.tsv", ["a", "b", "c"])
        log._handle.close()
        log._handle = Full()  # type: ignore[assignment]  # a disk that is full
        log(finished("a"))
        await asyncio.sleep(0)  # the turn's write fails
        try:
            log(finished("b"))
        except OSError as error:
            raised.append(f"event: {error.strerror}")
        log(finished("c"))
        await asyncio.sleep(0)
        try:
            log.close()
        except OSError as error:
            raised.append(f"close: {error.strerror}")
        return raised

    assert asyncio.run(go()) == ["event: No space left on device", "close: No space left on device"]
