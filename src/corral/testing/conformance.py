"""The executor conformance checks: what every `Executor` must do, checked against any.

Each check is a coroutine `check(make, workdir)`: `make` builds the executor under test
from an `ExecutorContext` (an executor class taking the context will do), `workdir` is an
empty folder it may use. A check raises `ConformanceError` saying what was wrong. They
use no test framework: a plugin's own tests run them, for example with pytest::

    from corral.testing.conformance import CHECKS

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
    def test_my_executor(check, tmp_path):
        asyncio.run(check(MyExecutor, tmp_path))

Time is measured on the event loop's clock, so the same checks run on real time (an
executor that runs processes) and on virtual time (`corral.testing.FakeExecutor`).
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from corral.events.types import AgentResult, Event, JobOutput, JobStarted
from corral.execute.executor import StopHandle
from corral.models import ErrorKind, JobStatus
from corral.testing.program import Program
from corral.testing.trial import (
    CHECKS,
    ConformanceError,
    ExecutorFactory,
    NamedCheck,
    Trial,
    check,
    expect,
    run_attempt,
)

# -- the checks ------------------------------------------------------------------------------


@check
async def check_started_before_output_in_order(make: ExecutorFactory, workdir: Path) -> None:
    """JobStarted comes first, then every line in order, stdout and stderr; exit 0
    succeeds, with the last stdout line as its result."""
    trial = Trial(make, workdir)
    program = Program(stdout=("one", "two", "three"), stderr=("careful",))
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, trial.request(program, tool="generic"))
    kinds = trial.kinds()
    expect(kinds[:1] == [JobStarted], f"JobStarted must come first, got {kinds[:3]}")
    started = trial.events[0]
    assert isinstance(started, JobStarted)
    expect(started.attempt == 1 and started.tool == "generic", "JobStarted names the attempt")
    lines = [(e.stream, e.text) for e in trial.events if isinstance(e, JobOutput)]
    stdout = [text for stream, text in lines if stream == "stdout"]
    expect(stdout == ["one", "two", "three"], f"stdout lines in order, got {stdout}")
    expect(("stderr", "careful") in lines, f"stderr lines are published, got {lines}")
    expect(outcome.status is JobStatus.SUCCEEDED, f"exit 0 succeeds, got {outcome}")
    expect(outcome.exit_code == 0 and outcome.signal is None, f"exit 0, got {outcome}")
    expect(outcome.result == "three", f"a command's result is its last stdout line: {outcome}")


@check
async def check_exit_code_is_a_failure(make: ExecutorFactory, workdir: Path) -> None:
    """A non-zero exit fails the attempt with its code, as `exit`."""
    trial = Trial(make, workdir)
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, trial.request(Program(exit_code=3)))
    expect(outcome.status is JobStatus.FAILED, f"exit 3 fails, got {outcome.status}")
    expect(outcome.exit_code == 3, f"the exit code is kept, got {outcome.exit_code}")
    expect(
        (outcome.error, outcome.error_kind) == ("exit code 3", ErrorKind.EXIT),
        f"classified as `exit`, got {outcome.error!r} ({outcome.error_kind})",
    )


@check
async def check_spawn_failure(make: ExecutorFactory, workdir: Path) -> None:
    """A command that cannot start fails as `spawn`, and publishes no JobStarted."""
    trial = Trial(make, workdir)
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, trial.request(Program(missing=True)))
    expect(outcome.status is JobStatus.FAILED, f"a missing command fails, got {outcome}")
    expect(outcome.error_kind is ErrorKind.SPAWN, f"classified as `spawn`, got {outcome}")
    expect(JobStarted not in trial.kinds(), "no JobStarted for an attempt that never started")


@check
async def check_stop_request(make: ExecutorFactory, workdir: Path) -> None:
    """A stop request ends the attempt with the status, reason and kind it asked for."""
    trial = Trial(make, workdir)

    def stop(handle: StopHandle) -> None:
        handle.request("stopped by the check", JobStatus.CANCELLED, ErrorKind.CANCELLED)

    executor = make(trial.context())

    async with executor:
        outcome, took = await run_attempt(
            executor, trial, trial.request(Program(stdout=("up",), hang=True)), on_output=stop
        )
    expect(outcome.status is JobStatus.CANCELLED, f"the stop's status, got {outcome.status}")
    expect(outcome.error == "stopped by the check", f"the stop's reason, got {outcome.error!r}")
    expect(outcome.error_kind is ErrorKind.CANCELLED, f"the stop's kind, got {outcome}")
    expect(outcome.signal == signal.SIGTERM, f"SIGTERM ends it, got signal {outcome.signal}")
    expect(took < trial.kill_grace, f"a soft stop of a willing process is quick ({took:.1f}s)")


@check
async def check_sigterm_ignored_means_sigkill_after_grace(
    make: ExecutorFactory, workdir: Path
) -> None:
    """A process that ignores SIGTERM gets SIGKILL after `kill_grace`."""
    trial = Trial(make, workdir, kill_grace=0.5)

    def stop(handle: StopHandle) -> None:
        handle.request("budget exceeded", JobStatus.FAILED, ErrorKind.BUDGET)

    program = Program(stdout=("up",), hang=True, ignore_term=True)
    executor = make(trial.context())
    async with executor:
        outcome, took = await run_attempt(executor, trial, trial.request(program), on_output=stop)
    expect(outcome.signal == signal.SIGKILL, f"SIGKILL after the grace, got {outcome.signal}")
    expect(took >= 0.5, f"the grace is given ({took:.2f}s)")
    expect(
        (outcome.status, outcome.error_kind) == (JobStatus.FAILED, ErrorKind.BUDGET),
        f"the stop's status and kind, got {outcome}",
    )


@check
async def check_hard_stop_kills_at_once(make: ExecutorFactory, workdir: Path) -> None:
    """A hard stop kills at once, without waiting for the grace."""
    trial = Trial(make, workdir, kill_grace=60.0)

    def stop(handle: StopHandle) -> None:
        handle.request("interrupted", JobStatus.CANCELLED, ErrorKind.CANCELLED, hard=True)

    program = Program(stdout=("up",), hang=True, ignore_term=True)
    executor = make(trial.context())
    async with executor:
        outcome, took = await run_attempt(executor, trial, trial.request(program), on_output=stop)
    expect(outcome.signal == signal.SIGKILL, f"a hard stop is SIGKILL, got {outcome.signal}")
    expect(took < 10.0, f"without waiting the 60 s grace ({took:.1f}s)")
    expect(outcome.status is JobStatus.CANCELLED, f"the stop's status, got {outcome.status}")


@check
async def check_timeout(make: ExecutorFactory, workdir: Path) -> None:
    """`timeout` stops the attempt and times it out, as `timeout`."""
    trial = Trial(make, workdir)
    request = trial.request(Program(hang=True), timeout=0.5)
    executor = make(trial.context())
    async with executor:
        outcome, took = await run_attempt(executor, trial, request)
    expect(outcome.status is JobStatus.TIMED_OUT, f"timed out, got {outcome.status}")
    expect(
        (outcome.error, outcome.error_kind) == ("timed out after 0.5s", ErrorKind.TIMEOUT),
        f"classified as `timeout`, got {outcome.error!r} ({outcome.error_kind})",
    )
    expect(0.5 <= took < 10.0, f"stopped at its timeout ({took:.2f}s)")


@check
async def check_idle_timeout(make: ExecutorFactory, workdir: Path) -> None:
    """`idle_timeout` stops an attempt that went quiet, as `idle`."""
    trial = Trial(make, workdir)
    request = trial.request(Program(stdout=("working",), hang=True), idle_timeout=0.5)
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, request)
    expect(outcome.status is JobStatus.TIMED_OUT, f"timed out, got {outcome.status}")
    expect(outcome.error_kind is ErrorKind.IDLE, f"classified as `idle`, got {outcome}")
    expect(outcome.error == "no output for 0.5s (idle_timeout)", f"got {outcome.error!r}")


_INIT = '{"type":"system","subtype":"init","session_id":"%s","model":"claude-x"}'
_RESULT = '{"type":"result","subtype":"success","is_error":%s,%s"result":"%s","session_id":"%s"}'


@check
async def check_agent_output_is_parsed_and_classified(make: ExecutorFactory, workdir: Path) -> None:
    """The request's parser reads the output: the agent's error kind, session and result win."""
    trial = Trial(make, workdir)
    failing = Program(
        stdout=(
            _INIT % "s-1",
            _RESULT % ("true", '"api_error_status":429,', "rate limited", "s-1"),
        ),
        exit_code=1,
    )
    passing = Program(stdout=(_INIT % "s-2", _RESULT % ("false", "", "done", "s-2")))
    parser = "claude-stream-json"
    executor = make(trial.context())
    async with executor:
        bad = trial.request(failing, "bad", tool="claude", parser=parser)
        good = trial.request(passing, "good", tool="claude", parser=parser)
        failed, _ = await run_attempt(executor, trial, bad)
        passed, _ = await run_attempt(executor, trial, good)
    expect(
        (failed.status, failed.error_kind) == (JobStatus.FAILED, ErrorKind.RATE_LIMIT),
        f"the agent's error kind wins over the exit code, got {failed}",
    )
    expect(failed.session_id == "s-1", f"the session id is kept, got {failed.session_id}")
    expect(passed.status is JobStatus.SUCCEEDED, f"a successful result, got {passed}")
    expect(passed.result == "done", f"the agent's result is its answer, got {passed.result!r}")
    results = [e for e in trial.events if isinstance(e, AgentResult)]
    expect(
        [(e.job, e.attempt) for e in results] == [("bad", 1), ("good", 1)],
        f"parser events are stamped with the job and attempt, got {results}",
    )


@check
async def check_a_lingering_agent_keeps_its_result(make: ExecutorFactory, workdir: Path) -> None:
    """An agent that printed its result and lingers is stopped after `result_grace`, successful."""
    trial = Trial(make, workdir)
    program = Program(stdout=(_INIT % "s-3", _RESULT % ("false", "", "done", "s-3")), hang=True)
    request = trial.request(program, parser="claude-stream-json", result_grace=0.5)
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, request)
    expect(outcome.status is JobStatus.SUCCEEDED, f"stopped after its result: ok, got {outcome}")
    expect(outcome.result == "done", f"the result is kept, got {outcome.result!r}")


@check
async def check_output_reader(make: ExecutorFactory, workdir: Path) -> None:
    """`output()` reads the attempt's stdout and the files in its working directory."""
    trial = Trial(make, workdir)
    program = Program(stdout=("building", "verdict: pass"), files=(("out/answer.txt", "42\n"),))
    request = trial.request(program)
    executor = make(trial.context())
    async with executor:
        await run_attempt(executor, trial, request)
        reader = executor.output(request)
        match = reader.search(re.compile(r"^verdict: (\w+)$", re.MULTILINE))
        answer = reader.read_file("out/answer.txt", 100)
        missing = reader.read_file("nothing/here.txt", 100)
    expect(match is not None and match.group(1) == "pass", f"stdout is searched, got {match}")
    expect(answer == b"42\n", f"a file in the job's cwd is read, got {answer!r}")
    expect(missing is None, f"a missing file reads as None, got {missing!r}")


@check
async def check_nothing_is_left_behind(make: ExecutorFactory, workdir: Path) -> None:
    """What a job left running (an escaped daemon) is stopped when the executor is left."""
    trial = Trial(make, workdir)
    executor = make(trial.context())
    async with executor:
        outcome, _ = await run_attempt(executor, trial, trial.request(Program(orphan=True)))
    expect(outcome.status is JobStatus.SUCCEEDED, f"the attempt itself succeeds, got {outcome}")
    await asyncio.sleep(0)
    left = trial.left_behind()
    expect(not left, f"the executor's end stops what a job left running: {left}")


@check
async def check_cancellation_stops_the_attempt(make: ExecutorFactory, workdir: Path) -> None:
    """A cancelled `run()` stops its process before it raises CancelledError."""
    trial = Trial(make, workdir, kill_grace=0.5)
    executor = make(trial.context())
    async with executor:
        started = asyncio.Event()

        def publish(event: Event) -> None:
            trial.events.append(event)
            if isinstance(event, JobOutput):
                started.set()

        request = trial.request(Program(stdout=("up",), hang=True, ignore_term=True))
        task = asyncio.ensure_future(executor.run(request, publish, StopHandle()))
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise ConformanceError("a cancelled run() must raise CancelledError")
    expect(not trial.left_behind(), f"a cancelled attempt leaves nothing: {trial.left_behind()}")


@check
async def check_the_lifecycle_is_entered_once(make: ExecutorFactory, workdir: Path) -> None:
    """Several attempts run inside one `async with executor`."""
    trial = Trial(make, workdir)
    executor = make(trial.context())
    async with executor as entered:
        expect(entered is not None, "`async with executor` gives a value")
        first, _ = await run_attempt(executor, trial, trial.request(Program(stdout=("a",)), "a"))
        second, _ = await run_attempt(executor, trial, trial.request(Program(stdout=("b",)), "b"))
    expect(
        [first.status, second.status] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED],
        "several attempts run inside one lifecycle",
    )


async def run_all(make: ExecutorFactory, workdir: Path) -> dict[str, str]:
    """Every check, each in its own folder; the failures by check name."""
    failures: dict[str, str] = {}
    for each in CHECKS:
        folder = workdir / each.name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            await each(make, folder)
        except ConformanceError as error:
            failures[each.name] = str(error)
    return failures


__all__ = ["CHECKS", "ConformanceError", "ExecutorFactory", "NamedCheck", "run_all"]
