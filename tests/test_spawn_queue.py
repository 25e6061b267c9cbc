"""The run's supervisor starts queued jobs itself (issue 14's flat rows).

With `slots` a spawn request waits in the supervisor until fewer jobs run than that, and
the supervisor starts it the moment a job's exit frees a slot, with no round trip through
corral. The scheduler hands requests over that way, one concurrency's worth ahead, only
when what starts next cannot depend on a running job's outcome (`queue_ahead`); a stop
withdraws a queued request, and the job is then decided again as a job still in the ready
queue is, so the run ends as it does without the queue. Nothing here is timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.config.schema import FlowSpec
from corral.events.bus import Bus
from corral.events.types import Event, JobFinished, JobSkipped, JobStarted
from corral.execute import supervised
from corral.execute.executor import (
    AttemptOutcome,
    ExecutorContext,
    JobRequest,
    StopHandle,
    Withdrawn,
)
from corral.execute.local import LocalExecutor
from corral.execute.scheduler import Scheduler, Settings, queue_ahead
from corral.execute.supervised import SupervisedChild, SupervisorClient
from corral.models import JobStatus
from corral.plan import JobView, Plan, PlannedJob, build_plan
from corral.testing import run_virtual
from helpers import corral, write_flow


def _spawn(
    client: SupervisorClient, root: Path, key: str, script: str, slots: int
) -> asyncio.Future[int]:
    folder = root / key.split("#", maxsplit=1)[0]
    return asyncio.ensure_future(
        client.spawn(
            key,
            ("/bin/sh", "-c", script),
            dict(os.environ),
            None,
            folder / "stdout.log",
            folder / "stderr.log",
            slots,
        )
    )


def _spying(client: SupervisorClient) -> list[dict[str, Any]]:
    """What corral sends to its supervisor from now on."""
    sent: list[dict[str, Any]] = []
    real_send = client._send

    def spy(message: dict[str, Any]) -> None:
        sent.append(message)
        real_send(message)

    client._send = spy  # type: ignore[method-assign]  # a spy on the instance
    return sent


def test_a_queued_job_starts_when_an_exit_frees_its_slot(tmp_path: Path) -> None:
    """`b` is handed over while `a` holds the only slot; the supervisor starts it after `a`
    ended, on its own: corral sends nothing after the two requests."""
    root = tmp_path / "run"
    root.mkdir()
    done = tmp_path / "a-done"

    async def go() -> list[dict[str, Any]]:
        client = SupervisorClient(root, "kill", 1.0)
        sent = _spying(client)
        await client.start()
        try:
            a = _spawn(client, root, "a#1", f"sleep 0.2; : > {done}", 1)
            b = _spawn(client, root, "b#1", f"test -e {done} && echo after || echo before", 1)
            await asyncio.gather(a, b)
            await client.exited("a#1")
            await client.exited("b#1")
        finally:
            await client.close()
        return sent

    sent = asyncio.run(go())
    assert [(m["op"], m["key"], m["slots"]) for m in sent] == [
        ("spawn", "a#1", 1),
        ("spawn", "b#1", 1),
    ]
    assert (root / "b" / "stdout.log").read_text() == "after\n"
    records, _ = supervised.read_records(root)
    assert records["a#1"].exit is not None and records["b#1"].exit is not None


def test_a_request_without_slots_is_sent_as_before(tmp_path: Path) -> None:
    """No `slots` key at all when not queued: the message is the one corral always sent."""
    root = tmp_path / "run"
    root.mkdir()

    async def go() -> list[dict[str, Any]]:
        client = SupervisorClient(root, "kill", 1.0)
        sent = _spying(client)
        await client.start()
        try:
            await _spawn(client, root, "a#1", ":", 0)
            await client.exited("a#1")
        finally:
            await client.close()
        return sent

    (message,) = asyncio.run(go())
    assert set(message) == {"op", "key", "argv", "env", "cwd", "out", "err"}


def test_a_stop_withdraws_a_queued_job_that_has_not_started(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()

    async def go() -> tuple[bool, bool]:
        client = SupervisorClient(root, "kill", 1.0)
        await client.start()
        blocker = await _spawn(client, root, "a#1", "sleep 30", 1)
        try:
            child = SupervisedChild(
                client,
                "b#1",
                ("/bin/sh", "-c", ": > started"),
                cwd=str(tmp_path),
                env=dict(os.environ),
                log_dir=root / "b",
                on_line=lambda *_: None,
                keep_line_bytes=1024,
                slots=1,
            )
            stop = StopHandle()
            waiting = asyncio.ensure_future(child.start_or_withdraw(stop))
            await asyncio.sleep(0.1)
            pending = not waiting.done()
            stop.request("interrupted", JobStatus.CANCELLED, None)
            withdrawn = False
            try:
                await waiting
            except Withdrawn:
                withdrawn = True
        finally:
            os.killpg(blocker, signal.SIGKILL)
            await client.exited("a#1")
            await client.close()
        return pending, withdrawn

    assert asyncio.run(go()) == (True, True)
    records, _ = supervised.read_records(root)
    assert "b#1" not in records  # never started, never recorded
    assert not (tmp_path / "started").exists()


def test_queued_jobs_never_start_once_corral_is_gone(tmp_path: Path) -> None:
    """corral dies (its end of the socket closes) while `b` waits for `a`'s slot: `a`
    runs on (adopt) and is recorded, `b` never starts; a resume runs it."""
    root = tmp_path / "run"
    root.mkdir()

    async def go() -> None:
        client = SupervisorClient(root, "adopt", 1.0)
        await client.start()
        await _spawn(client, root, "a#1", "sleep 0.3", 1)
        queued = _spawn(client, root, "b#1", ": > started", 1)
        await asyncio.sleep(0.05)  # both requests are with the supervisor
        process = client._process
        assert process is not None and client._sock is not None
        asyncio.get_running_loop().remove_reader(client._sock.fileno())
        client._sock.close()  # as kill -9 of corral would
        client._sock = None
        await asyncio.to_thread(process.wait)  # it exits once `a` has ended
        queued.cancel()

    asyncio.run(go())
    records, _ = supervised.read_records(root)
    assert records["a#1"].exit is not None
    assert "b#1" not in records
    assert not (root / "b").exists()


def _plan(jobs: Mapping[str, Any], **flow: Any) -> Plan:
    return build_plan(FlowSpec.model_validate({**flow, "jobs": jobs}))


@pytest.mark.parametrize(
    ("jobs", "flow", "ahead"),
    [
        ({"a": {"run": "true"}, "b": {"run": "true", "needs": ["a"]}}, {}, 4),
        ({"a": {"run": "true", "retries": 1}}, {}, 0),
        ({"a": {"run": "true", "delay": "1s"}}, {}, 0),
        ({"a": {"run": "true", "matrix": {"n": [1, 2]}}}, {}, 0),
        ({"a": {"run": "true", "budget": {"usd": 1}}}, {}, 0),
        ({"a": {"run": "true"}}, {"budget": {"usd": 1}}, 0),
        ({"a": {"tool": "claude", "prompt": "hi"}}, {}, 0),
    ],
)
def test_queue_ahead_only_where_nothing_decides_at_launch(
    jobs: dict[str, Any], flow: dict[str, Any], ahead: int
) -> None:
    assert queue_ahead(_plan(jobs, **flow), 4, stagger=0.0, fail_fast=False) == ahead


def test_no_queue_with_stagger_or_fail_fast() -> None:
    plan = _plan({"a": {"run": "true"}})
    assert queue_ahead(plan, 4, stagger=0.5, fail_fast=False) == 0
    assert queue_ahead(plan, 4, stagger=0.0, fail_fast=True) == 0


class _QueueingExecutor:
    """A fake executor that queues: an attempt handed over while `concurrency` attempts
    run waits for a slot (the supervisor's part) and is withdrawn by a stop."""

    queues = True

    def __init__(self, loop: asyncio.AbstractEventLoop, concurrency: int) -> None:
        self.loop = loop
        self.slots = asyncio.Semaphore(concurrency)
        self.queued: list[int] = []

    async def __aenter__(self) -> _QueueingExecutor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def output(self, request: JobRequest) -> Any:
        raise NotImplementedError

    async def run(self, request: JobRequest, publish: Any, stop: StopHandle) -> AttemptOutcome:
        self.queued.append(request.queue)
        slot = asyncio.ensure_future(self.slots.acquire())
        stopped = stop.requested_future()
        await asyncio.wait((slot, stopped), return_when=asyncio.FIRST_COMPLETED)
        if not slot.done():
            slot.cancel()
            raise Withdrawn(request.job)
        try:
            started = self.loop.time()
            publish(
                JobStarted(
                    job=request.job,
                    attempt=request.attempt,
                    pid=1,
                    argv=request.argv,
                    log_dir=str(request.log_dir),
                    started_at=started,
                )
            )
            await asyncio.wait((stopped,), timeout=10.0)
            if stop.requested:
                return AttemptOutcome(
                    JobStatus.CANCELLED, None, 15, self.loop.time() - started, stop.reason
                )
            return AttemptOutcome(JobStatus.SUCCEEDED, 0, None, self.loop.time() - started)
        finally:
            self.slots.release()


def test_a_withdrawn_job_ends_as_a_job_that_was_never_launched() -> None:
    """One slot, three jobs, Ctrl-C while `a` runs: with the queue (`b` handed over
    ahead, then withdrawn) the run publishes what it publishes without it."""
    plan = _plan({"a": {"run": "x"}, "b": {"run": "x"}, "c": {"run": "x"}})

    def play(lookahead: int) -> tuple[list[tuple[Any, ...]], list[int]]:
        async def main(loop: Any) -> tuple[list[tuple[Any, ...]], list[int]]:
            bus = Bus()
            seen: list[tuple[Any, ...]] = []

            def record(event: Event) -> None:
                if isinstance(event, JobFinished):
                    seen.append(("finished", event.job, event.attempt, event.status, event.error))
                elif isinstance(event, JobSkipped):
                    seen.append(("skipped", event.job, event.reason))
                elif isinstance(event, JobStarted):
                    seen.append(("started", event.job))

            bus.subscribe(record)

            def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
                return JobRequest(job.name, attempt, ("x",), None, {}, Path("/nonexistent"))

            executor = _QueueingExecutor(loop, 1)
            scheduler = Scheduler(
                plan,
                Settings(concurrency=1, lookahead=lookahead),
                executor,
                bus,
                prepare,
                clock=loop.time,
                wall=loop.time,
            )
            loop.call_later(1.0, scheduler.cancel, "interrupted by SIGINT")
            states = await scheduler.run()
            assert {n: s.attempts for n, s in states.items()} == {"a": 1, "b": 0, "c": 0}
            return sorted(seen, key=repr), executor.queued

        return run_virtual(main)

    without, handed = play(0)
    assert handed == [0]
    with_queue, handed = play(1)
    assert handed == [1, 1]  # `b` was handed over ahead of a free slot, then withdrawn
    assert with_queue == without
    assert ("skipped", "b", "not started: interrupted by SIGINT") in with_queue


def test_a_run_of_plain_jobs_hands_them_to_the_supervisor_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local executor queues in its supervisor; each job still runs once, in its own
    folder, with its output in its logs."""
    root = tmp_path / "run"
    spawned: list[int] = []
    real = SupervisorClient.submit

    def spy(self: SupervisorClient, *args: Any) -> asyncio.Future[dict[str, Any]]:
        spawned.append(args[-1] if len(args) == 7 else 0)
        return real(self, *args)

    monkeypatch.setattr(SupervisorClient, "submit", spy)

    async def go() -> dict[str, Any]:
        plan = _plan({f"j{i}": {"run": f"echo {i}"} for i in range(4)})
        bus = Bus()

        def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
            return JobRequest(
                job.name,
                attempt,
                ("/bin/sh", "-c", f"echo {job.name}"),
                None,
                dict(os.environ),
                root / job.name,
            )

        async with LocalExecutor(ExecutorContext("r", root, kill_grace=1.0)) as executor:
            scheduler = Scheduler(
                plan, Settings(concurrency=2, lookahead=2), executor, bus, prepare
            )
            return await scheduler.run()

    states = asyncio.run(go())
    assert {n: s.status for n, s in states.items()} == dict.fromkeys(
        ("j0", "j1", "j2", "j3"), JobStatus.SUCCEEDED
    )
    assert spawned == [2, 2, 2, 2]
    for name in states:
        assert (root / name / "stdout.log").read_text() == f"{name}\n"
    records, _ = supervised.read_records(root)
    assert sorted(records) == ["j0#1", "j1#1", "j2#1", "j3#1"]


def test_a_queued_run_records_what_the_general_path_records(tmp_path: Path) -> None:
    """The same flow with the queue (its default) and without (`--fail-fast`, which
    changes nothing else when every job succeeds): the same jobs, attempts, results and
    log bytes in the history and the logs."""
    flow = write_flow(
        tmp_path,
        """
        concurrency: 2
        jobs:
          a: {run: "sh -c 'echo a1; echo a2 >&2'"}
          b: {run: "sh -c 'printf b'"}
          c: {run: "sh -c 'echo c'", needs: [a]}
          d: {run: "true"}
          e: {run: "sh -c 'echo e >&2'", needs: [b, c]}
        """,
    )
    # the flow as the run reads it: the queue is in use for it

    jobs = yaml.safe_load(flow.read_text())["jobs"]
    assert queue_ahead(_plan(jobs), 2, stagger=0.0, fail_fast=False) == 2

    def recorded(*extra: str) -> tuple[list[dict[str, Any]], dict[str, tuple[bytes, bytes]]]:
        run = corral("run", str(flow), "-q", "--json", *extra, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        run_id = json.loads(run.stdout)["run_id"]
        shown = corral("show", run_id, "--json", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        jobs = json.loads(shown.stdout)["jobs"]
        varying = {"started_at", "ended_at", "duration_s", "pid", "log_dir"}
        for job in jobs:
            for attempt in [job["final"], *job["attempts"]]:
                for key in varying:
                    attempt.pop(key, None)
        logs = {}
        for job in jobs:
            folder = tmp_path / ".corral" / "runs" / run_id / job["name"]
            logs[job["name"]] = (
                (folder / "stdout.log").read_bytes(),
                (folder / "stderr.log").read_bytes(),
            )
        return sorted(jobs, key=lambda j: j["name"]), logs

    queued = recorded()
    general = recorded("--fail-fast")
    assert queued == general
    assert queued[1]["a"] == (b"a1\n", b"a2\n") and queued[1]["b"] == (b"b", b"")
