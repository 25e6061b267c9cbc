"""What a short job costs corral's own process (issue 14's flat rows), pinned structurally.

A job that prints nothing and ends at once must not make corral's event loop create its
log folder (the run's supervisor does), open its empty logs, hop to a thread for session
files it cannot have, or keep its slot while its final status is being made durable.
The figures are in benchmarks/README.md ("Wave 4: w4flat"); nothing here is timed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from corral.config.schema import FlowSpec
from corral.events.bus import Bus
from corral.events.types import Event, JobFinished, JobOutput, JobStarted
from corral.execute import supervised
from corral.execute.executor import ExecutorContext, JobRequest, StopHandle
from corral.execute.local import LocalExecutor
from corral.execute.scheduler import Scheduler, Settings
from corral.execute.supervised import SupervisorClient
from corral.models import JobStatus
from corral.plan import JobView, PlannedJob, build_plan
from corral.testing import FakeExecutor, VirtualTimeLoop, ok, run_virtual


def _request(log_dir: Path, script: str) -> JobRequest:
    return JobRequest(
        job=log_dir.name,
        attempt=1,
        argv=("/bin/sh", "-c", script),
        cwd=None,
        env=dict(os.environ),
        log_dir=log_dir,
    )


def _supervised_runs(
    tmp_path: Path, scripts: dict[str, str]
) -> dict[str, tuple[JobStatus, list[Event]]]:
    """Run each script as a job of one supervised run (the local executor with a context)."""
    root = tmp_path / "run"

    async def go() -> dict[str, tuple[JobStatus, list[Event]]]:
        found: dict[str, tuple[JobStatus, list[Event]]] = {}
        async with LocalExecutor(ExecutorContext("r", root, kill_grace=1.0)) as executor:
            for name, script in scripts.items():
                events: list[Event] = []
                outcome = await executor.run(
                    _request(root / name, script), events.append, StopHandle()
                )
                found[name] = (outcome.status, events)
        return found

    return asyncio.run(go())


def test_the_supervisor_makes_the_log_folder_and_corral_opens_no_empty_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    made: list[str] = []
    real_open, real_mkdir = os.open, os.mkdir

    def spy_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    def spy_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        made.append(str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "mkdir", spy_mkdir)
    results = _supervised_runs(
        tmp_path, {"quiet": "true", "talks": "echo one; echo two >&2; sleep 0.1; echo three"}
    )
    root = tmp_path / "run"
    # corral (this process) made no job folder and opened no log of the quiet job
    assert not [path for path in made if Path(path).parent == root]
    assert not [path for path in opened if path.startswith(str(root / "quiet"))]
    status, events = results["quiet"]
    assert status is JobStatus.SUCCEEDED
    assert not [event for event in events if isinstance(event, JobOutput)]
    for name in ("quiet", "talks"):
        folder = root / name
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert {p.name for p in folder.iterdir()} == {"stdout.log", "stderr.log"}
    # a job that prints is still followed, every line of both streams
    status, events = results["talks"]
    assert status is JobStatus.SUCCEEDED
    lines = [(e.stream, e.text) for e in events if isinstance(e, JobOutput)]
    assert sorted(lines) == [("stderr", "two"), ("stdout", "one"), ("stdout", "three")]
    assert (root / "talks" / "stdout.log").read_bytes() == b"one\nthree\n"


def test_the_exit_message_says_the_log_sizes_leftovers_and_disk(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()

    async def go() -> list[dict[str, Any]]:
        client = SupervisorClient(root, "kill", 1.0)
        await client.start()
        messages = []
        try:
            for key, script in (("a#1", "printf abc; printf de >&2"), ("b#1", "sleep 30 & :")):
                folder = root / key[0] / "deep"  # parents are made too
                await client.spawn(
                    key,
                    ("/bin/sh", "-c", script),
                    dict(os.environ),
                    None,
                    folder / "stdout.log",
                    folder / "stderr.log",
                )
                messages.append(await client.exited(key))
                # corral hears of an exit only once it is on record (the exit writer's
                # thread syncs, then sends)
                assert supervised.read_records(root)[0][key].exit is not None
        finally:
            for message in messages:
                if message["group"]:
                    os.killpg(message["pid"], signal.SIGKILL)  # the `sleep` left in b's group
            await client.close()
        return messages

    first, second = asyncio.run(go())
    assert (first["code"], first["sizes"], first["group"], first["disk_full"]) == (
        0,
        [3, 2],
        False,
        False,
    )
    assert second["sizes"] == [0, 0] and second["group"] is True  # `sleep` is still in it
    assert stat.S_IMODE((root / "a" / "deep").stat().st_mode) == 0o700


def test_a_plain_command_takes_no_thread_for_session_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[str] = []
    real = asyncio.to_thread

    async def spy(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    status, _ = _supervised_runs(tmp_path, {"plain": "true"})["plain"]
    assert status is JobStatus.SUCCEEDED
    assert "session_report" not in hops


def test_a_finished_job_frees_its_slot_before_its_status_is_durable() -> None:
    """With one slot, `b` starts as soon as `a` ended, while `a`'s final status is still
    being written; `c`, which needs `a`, waits for that write. Only `a` waits for a write
    of its own: nothing needs `b` or `c` (the writer's batches and its close store them)."""
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "fake a"},
                    "b": {"run": "fake b"},
                    "c": {"run": "fake c", "needs": ["a"]},
                }
            }
        )
    )

    async def main(loop: VirtualTimeLoop) -> dict[str, float]:
        bus = Bus()
        started: dict[str, float] = {}
        durable_at: dict[str, float] = {}
        durable_calls: list[float] = []

        def seen(event: Event) -> None:
            if isinstance(event, JobStarted):
                started[event.job] = loop.time()
            elif isinstance(event, JobFinished):
                durable_at[event.job] = loop.time() + 5.0

        bus.subscribe(seen)

        async def durable() -> bool:
            durable_calls.append(loop.time())
            await asyncio.sleep(5.0)  # a slow history
            return True

        def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
            return JobRequest(job.name, attempt, ("fake",), None, {}, Path("/nonexistent"))

        scheduler = Scheduler(
            plan,
            Settings(concurrency=1),
            FakeExecutor({"a": [ok(duration=1.0)], "b": [ok(duration=1.0)]}, clock=loop.time),
            bus,
            prepare,
            durable=durable,
            clock=loop.time,
            wall=loop.time,
        )
        await scheduler.run()
        assert durable_calls == [1.0]  # a's, once it ended
        return {**started, "a durable": durable_at["a"]}

    times = run_virtual(main)
    assert times["a"] == 0.0
    assert times["b"] == pytest.approx(1.0)  # not after a's 5 s write
    assert times["c"] >= times["a durable"]


def test_a_stop_handle_future_is_done_once_a_stop_is_requested() -> None:
    async def go() -> tuple[bool, bool, bool]:
        handle = StopHandle()
        before = handle.requested_future()
        cancelled = handle.requested_future()
        cancelled.cancel()  # an attempt that ended lets go of its future
        waiting = not before.done()
        handle.request("budget exceeded", JobStatus.FAILED, None)
        return waiting, before.done(), handle.requested_future().done()

    assert asyncio.run(go()) == (True, True, True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
