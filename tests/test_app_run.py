"""The run use case in process: `start_run` with subscribers, a control, executors from the
registry, and the journal it reports; what a server would call."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from corral.app.check import check_flow
from corral.app.run import RunControl, RunOptions, RunReport, start_run
from corral.events.bus import Subscriber
from corral.events.types import Event, JobFinished, JobStarted, SpendUpdated
from corral.execute.executor import Executor
from corral.journal import RunJournal, summary_json
from corral.models import CostSource, JobStatus, RunStatus
from corral.plugins import PluginError
from corral.testing import FakeExecutor, ok
from helpers import write_flow

DATA = Path(__file__).parent / "data" / "agents"
FAKE_AGENT = Path(__file__).parent / "fakes" / "fake_agent.py"


class Recorder:
    """A view that records what the journal said while the run ran."""

    def __init__(self) -> None:
        self.journal: RunJournal | None = None
        self.seen: list[tuple[str, JobStatus, str | None]] = []
        self.entered = self.exited = False

    def subscriber(self, journal: RunJournal) -> Subscriber:
        self.journal = journal

        def watch(event: Event) -> None:
            if isinstance(event, SpendUpdated) and event.job:
                job = journal.jobs[event.job]
                usd = None if job.cost is None else str(job.cost.usd)
                self.seen.append((event.job, job.status, usd))

        return watch

    def __enter__(self) -> Recorder:
        self.entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.exited = True

    def countdown(self, seconds_left: float) -> None:
        return None


def run(
    flow: Path,
    options: RunOptions,
    *,
    view: Recorder | None = None,
    subscribers: Sequence[Subscriber] = (),
    control: RunControl | None = None,
    executor: Executor | None = None,
) -> RunReport:
    loaded, plan = check_flow(flow)
    return asyncio.run(
        start_run(
            loaded,
            plan,
            options,
            view=view,
            subscribers=subscribers,
            control=control,
            executor=executor,
        )
    )


def test_live_cost_of_an_estimated_job_is_on_the_bus_before_it_ends(tmp_path: Path) -> None:
    # Codex reports tokens, no cost: corral prices them as they come, while the job runs
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          tests:
            tool: codex
            prompt: write tests
            model: gpt-5.5
            env:
              CORRAL_CODEX_BIN: {FAKE_AGENT}
              FAKE_AGENT_DIR: {DATA}
              FAKE_AGENT_SCRIPT: codex_tool
              FAKE_AGENT_LINGER: "0.5"
        """,
    )
    events: list[Event] = []
    view = Recorder()
    report = run(flow, RunOptions(no_store=True), view=view, subscribers=[events.append])
    assert report.status is RunStatus.SUCCEEDED and view.entered and view.exited
    # the priced spend was published, and shown, while the job was still running
    assert view.seen and view.seen[0][1] is JobStatus.RUNNING and view.seen[0][2] is not None
    spends = [e for e in events if isinstance(e, SpendUpdated)]
    finished = next(e for e in events if isinstance(e, JobFinished))
    assert events.index(spends[0]) < events.index(finished)
    assert spends[-1].cost.source is CostSource.ESTIMATED and spends[-1].cost.known_usd > 0
    # the job's final figures are the ones the ledger published, once
    assert finished.cost == spends[-1].cost and finished.by_model == spends[-1].by_model
    job = report.journal.jobs["tests"]
    assert job.cost == spends[-1].job_cost and job.usage == spends[-1].job_usage
    assert report.totals == (spends[-1].run_usage, spends[-1].run_cost)


def test_the_report_carries_the_fold_and_no_cost_is_null(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          hello: {{run: [{sys.executable}, -c, "print('hi')"]}}
          after: {{needs: [hello], run: [{sys.executable}, -c, "raise SystemExit(3)"]}}
        """,
    )
    report = run(flow, RunOptions(no_store=True))
    assert (report.status, report.exit_code) == (RunStatus.FAILED, 1)
    jobs = report.journal.jobs
    assert jobs["hello"].result == "hi" and jobs["after"].exit_code == 3
    document = summary_json(report.journal, started_at=report.started_at, ended_at=report.ended_at)
    assert [j["cost"] for j in document["jobs"]] == [None, None]
    assert document["totals"]["cost"] is None
    assert json.loads(json.dumps(document))["status"] == "failed"
    assert (report.log_root / "joblog.tsv").read_text().count("\n") == 3


def test_a_control_cancels_from_outside_the_run(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        f"""
        jobs:
          slow: {{run: [{sys.executable}, -c, "import time; time.sleep(60)"]}}
          later: {{needs: [slow], run: [echo, never]}}
        """,
    )
    loaded, plan = check_flow(flow)
    control = RunControl()

    def cancel_once_started(event: Event) -> None:
        if isinstance(event, JobStarted):
            asyncio.get_running_loop().call_later(0.2, control.cancel, "stopped by a server")

    report = asyncio.run(
        start_run(
            loaded,
            plan,
            RunOptions(no_store=True),
            control=control,
            subscribers=[cancel_once_started],
        )
    )
    assert (report.status, report.exit_code) == (RunStatus.CANCELLED, 1)
    jobs = report.journal.jobs
    assert jobs["slow"].status is JobStatus.CANCELLED
    assert jobs["slow"].error == "stopped by a server"
    assert jobs["later"].status is JobStatus.CANCELLED


def test_a_cancel_before_the_start_runs_nothing(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: [echo, a]}\n")
    control = RunControl()
    control.cancel("not today")
    executor = FakeExecutor({"a": [ok()]})
    report = run(flow, RunOptions(no_store=True), control=control, executor=executor)
    assert report.status is RunStatus.CANCELLED and executor.attempts == []
    assert (executor.entered, executor.exited) == (1, 1)  # the lifecycle still ran


def test_the_executor_comes_from_the_registry_by_name(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "jobs:\n  a: {run: [echo, a]}\n")
    with pytest.raises(PluginError) as caught:
        run(flow, RunOptions(no_store=True, executor="nowhere"))
    assert caught.value.lines() == ["unknown executor 'nowhere' (known executors: local)"]
    with pytest.raises(PluginError) as caught:
        run(flow, RunOptions(no_store=True, executor="locl"))
    assert caught.value.lines() == ["unknown executor 'locl' (did you mean 'local'?)"]
    assert not (tmp_path / ".corral").exists()  # refused before anything was made


def test_start_run_runs_inside_a_running_loop(tmp_path: Path) -> None:
    # as a web server calls it: awaited on its own loop, next to other tasks
    flow = write_flow(tmp_path, "jobs:\n  a: {run: [echo, a]}\n  b: {run: [echo, b]}\n")
    loaded, plan = check_flow(flow)

    async def server() -> list[RunReport]:
        ticks = asyncio.create_task(asyncio.sleep(0.01))
        reports = await asyncio.gather(
            start_run(loaded, plan, RunOptions(no_store=True)),
            start_run(loaded, plan, RunOptions(no_store=True)),
        )
        await ticks
        return list(reports)

    first, second = asyncio.run(server())
    assert first.run_id != second.run_id
    assert {first.status, second.status} == {RunStatus.SUCCEEDED}
    assert first.journal.jobs["b"].result == "b"


def test_a_history_is_written_through_the_store_protocol(tmp_path: Path) -> None:
    from corral.app.history import show_run

    flow = write_flow(tmp_path, "jobs:\n  a: {run: [echo, a]}\n")
    report = run(flow, RunOptions())
    record = show_run(None, tmp_path, report.run_id)
    assert record.run.status is RunStatus.SUCCEEDED and record.jobs[0].status is JobStatus.SUCCEEDED
    assert record.jobs[0].cost is None and record.run.cost is None  # no cost: null
    assert Decimal(0) == sum((j.tokens.total for j in record.jobs), Decimal(0))


def test_a_missing_agent_cli_stops_the_run_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.errors import ToolError

    monkeypatch.setenv("CORRAL_CLI_CACHE", str(tmp_path / "no-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CORRAL_CURSOR_AGENT_BIN", raising=False)
    monkeypatch.delenv("CORRAL_CLI_BIN_DIR", raising=False)
    flow = write_flow(
        tmp_path,
        "jobs:\n  ask: {tool: cursor-agent, prompt: hi}\n  also: {tool: cursor-agent, prompt: x}\n",
    )
    with pytest.raises(ToolError) as caught:
        run(flow, RunOptions())
    assert caught.value.lines() == [
        "not installed: cursor-agent (jobs: ask, also) (install it, put it on PATH, or set "
        "CORRAL_CURSOR_AGENT_BIN; see `corral tools`)"
    ]
    assert not (tmp_path / ".corral").exists()
