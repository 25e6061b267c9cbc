"""One child process: line splitting of any length, logs, process-group stop, reaping."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.events.types import Event, JobOutput, JobStarted
from corral.execute.executor import AttemptOutcome, JobRequest, StopHandle
from corral.execute.lines import LineSpool
from corral.execute.local import LocalExecutor
from corral.models import ErrorKind, JobStatus

FAKE = str(Path(__file__).parent / "fakes" / "fake_cli.py")


def spool_lines(chunks: list[bytes], keep: int, tmp_path: Path) -> list[tuple[bytes, int, bool]]:
    got: list[tuple[bytes, int, bool]] = []
    spool = LineSpool(
        str(tmp_path / "log"), lambda line, offset, cut: got.append((line, offset, cut)), keep
    )
    for chunk in chunks:
        spool.feed(chunk)
    spool.close()
    assert (tmp_path / "log").read_bytes() == b"".join(chunks)
    return got


def test_lines_split_across_chunks_with_offsets(tmp_path: Path) -> None:
    got = spool_lines([b"ab", b"c\nde", b"f\n\ng"], 1024, tmp_path)
    assert got == [(b"abc", 0, False), (b"def", 4, False), (b"", 8, False), (b"g", 9, False)]


def test_long_line_is_cut_in_memory_never_in_the_log(tmp_path: Path) -> None:
    got = spool_lines([b"x" * 100, b"y" * 100 + b"\nz\n"], 50, tmp_path)
    assert got[0] == (b"x" * 50, 0, True)
    assert got[1] == (b"z", 201, False)


def test_crlf_is_trimmed_for_display(tmp_path: Path) -> None:
    assert spool_lines([b"a\r\n"], 10, tmp_path) == [(b"a", 0, False)]


def reference_lines(data: bytes, keep: int) -> list[tuple[bytes, int, bool]]:
    """What the spool must deliver, worked out on the whole stream at once."""
    out: list[tuple[bytes, int, bool]] = []
    offset = 0
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()  # the stream ended with a newline: no last partial line
    for part in parts:
        kept = part[:keep]
        out.append((kept[:-1] if kept.endswith(b"\r") else kept, offset, len(part) > keep))
        offset += len(part) + 1
    return out


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\r", b"xyz" * 5]), max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=10),
    keep=st.integers(min_value=0, max_value=20),
)
def test_lines_are_the_same_however_the_stream_is_chunked(
    data: list[bytes], cuts: list[int], keep: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stream = b"".join(data)
    chunks: list[bytes] = []
    at = 0
    for size in cuts:
        chunks.append(stream[at : at + size])
        at += size
    chunks.append(stream[at:])
    got = spool_lines([c for c in chunks if c], keep, tmp_path_factory.mktemp("spool"))
    assert got == reference_lines(stream, keep)


def request(tmp_path: Path, *args: str, **fields: object) -> JobRequest:
    return JobRequest(
        job="j",
        attempt=1,
        argv=(sys.executable, FAKE, *args),
        cwd=str(tmp_path),
        env=dict(os.environ),
        log_dir=tmp_path / "logs",
        **fields,  # type: ignore[arg-type]  # the tests pass JobRequest's own fields
    )


def run(
    req: JobRequest, stop: StopHandle | None = None, events: list[Event] | None = None
) -> AttemptOutcome:
    sink = events if events is not None else []

    async def go() -> AttemptOutcome:
        return await LocalExecutor().run(req, sink.append, stop or StopHandle())

    return asyncio.run(go())


def test_success_output_and_logs(tmp_path: Path) -> None:
    events: list[Event] = []
    outcome = run(request(tmp_path, "echo", "hello", "world"), events=events)
    assert outcome.status is JobStatus.SUCCEEDED and outcome.exit_code == 0
    assert outcome.result == "hello world"
    assert [e.text for e in events if isinstance(e, JobOutput)] == ["hello world"]
    assert isinstance(events[0], JobStarted)
    assert (tmp_path / "logs" / "stdout.log").read_bytes() == b"hello world\n"


def test_exit_code_is_a_failure(tmp_path: Path) -> None:
    outcome = run(request(tmp_path, "exit", "3"))
    assert (outcome.status, outcome.exit_code, outcome.error_kind) == (
        JobStatus.FAILED,
        3,
        ErrorKind.EXIT,
    )


def test_missing_command_fails_with_a_reason(tmp_path: Path) -> None:
    req = request(tmp_path)
    req = JobRequest(**{**req.__dict__, "argv": ("no-such-command-xyz",)})
    outcome = run(req)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error_kind is ErrorKind.SPAWN
    assert "command not found: no-such-command-xyz" in (outcome.error or "")


def test_not_executable_fails_with_a_reason(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    req = JobRequest(**{**request(tmp_path).__dict__, "argv": (str(script),)})
    outcome = run(req)
    assert outcome.error_kind is ErrorKind.SPAWN
    assert "not executable" in (outcome.error or "")


def test_stdin_is_closed(tmp_path: Path) -> None:
    assert run(request(tmp_path, "stdin")).result == "stdin=''"


def test_fifty_megabyte_line_is_logged_whole(tmp_path: Path) -> None:
    events: list[Event] = []
    outcome = run(request(tmp_path, "bigline", "50"), events=events)
    assert outcome.status is JobStatus.SUCCEEDED
    log = tmp_path / "logs" / "stdout.log"
    assert log.stat().st_size == 50 * 1024 * 1024 + len(b"\nafter\n")
    lines = [e for e in events if isinstance(e, JobOutput)]
    assert len(lines) == 2 and lines[0].truncated and lines[1].text == "after"
    assert lines[1].offset == 50 * 1024 * 1024 + 1


def test_final_line_without_newline_is_kept(tmp_path: Path) -> None:
    events: list[Event] = []
    outcome = run(request(tmp_path, "die-midline", "half a line"), events=events)
    assert outcome.status is JobStatus.FAILED and outcome.signal == signal.SIGKILL
    assert [e.text for e in events if isinstance(e, JobOutput)] == ["half a line"]
    assert (tmp_path / "logs" / "stdout.log").read_bytes() == b"half a line"


def test_invalid_utf8_is_raw_in_the_log_and_replaced_on_screen(tmp_path: Path) -> None:
    events: list[Event] = []
    run(request(tmp_path, "binary"), events=events)
    assert (tmp_path / "logs" / "stdout.log").read_bytes() == b"ok \xff\xfe bad \xc3( end\n"
    shown = next(e for e in events if isinstance(e, JobOutput)).text
    assert "\ufffd" in shown and shown.startswith("ok ")


def test_timeout_stops_the_whole_group(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run(request(tmp_path, "grandchildren", "3", timeout=0.5, kill_grace=1.0))
    assert outcome.status is JobStatus.TIMED_OUT and outcome.error_kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 10
    # the autouse fixture fails the test if a grandchild survived


def test_idle_timeout(tmp_path: Path) -> None:
    outcome = run(request(tmp_path, "hang", "first", idle_timeout=0.4))
    assert outcome.status is JobStatus.TIMED_OUT and outcome.error_kind is ErrorKind.IDLE
    assert "no output for 0.4s" in (outcome.error or "")


def test_sigterm_ignored_means_sigkill_after_grace(tmp_path: Path) -> None:
    outcome = run(request(tmp_path, "ignore-term", timeout=0.5, kill_grace=0.5))
    assert outcome.status is JobStatus.TIMED_OUT
    assert outcome.signal == signal.SIGKILL


def test_leftover_grandchildren_are_stopped_when_the_leader_exits(tmp_path: Path) -> None:
    outcome = run(request(tmp_path, "grandchildren", "2", "--exit", kill_grace=0.5))
    assert outcome.status is JobStatus.SUCCEEDED


def test_setsid_grandchildren_are_swept(tmp_path: Path) -> None:
    from corral.execute import reaper

    assert reaper.become_subreaper()
    outcome = run(request(tmp_path, "grandchildren", "2", "--setsid", "--exit"))
    assert outcome.status is JobStatus.SUCCEEDED
    time.sleep(0.2)
    assert len(reaper.sweep(1.0)) == 2


def test_stop_request_cancels(tmp_path: Path) -> None:
    stop = StopHandle()

    async def go() -> AttemptOutcome:
        task = asyncio.ensure_future(
            LocalExecutor().run(request(tmp_path, "hang", "x"), lambda e: None, stop)
        )
        await asyncio.sleep(0.3)
        stop.request("interrupted", JobStatus.CANCELLED, ErrorKind.CANCELLED)
        return await task

    outcome = asyncio.run(go())
    assert outcome.status is JobStatus.CANCELLED and outcome.error == "interrupted"


def test_task_cancellation_still_reaps(tmp_path: Path) -> None:
    async def go() -> None:
        task = asyncio.ensure_future(
            LocalExecutor().run(
                request(tmp_path, "ignore-term", kill_grace=0.3), lambda e: None, StopHandle()
            )
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


def test_start_closes_the_first_pipe_when_the_second_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.execute import process

    made: list[int] = []
    real_pipe = os.pipe

    def pipe() -> tuple[int, int]:
        if made:  # the second pipe: the process is out of descriptors
            raise OSError(24, "Too many open files")
        pair = real_pipe()
        made.extend(pair)
        return pair

    monkeypatch.setattr(process.os, "pipe", pipe)
    child = process.ChildProcess(
        ["true"], cwd=None, env={}, log_dir=tmp_path, on_line=lambda *_: None, keep_line_bytes=100
    )
    with pytest.raises(OSError, match="Too many open files"):
        asyncio.run(child.start())
    assert len(made) == 2
    for fd in made:  # both ends of the first pipe are closed again
        with pytest.raises(OSError):
            os.fstat(fd)
