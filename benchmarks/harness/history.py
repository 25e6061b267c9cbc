"""Build a large run history deterministically, through corral's own store writer.

    python -m harness.history OUT.db SPEC.json      (from benchmarks/)

SPEC is `{"runs": [["flat", JOBS], ["agents", JOBS, STREAM_PATH], ...], "base_ts": T}`.
A flat run is JOBS `true` jobs; an agent run is JOBS Claude jobs, each storing exactly
what corral stores for a replay of STREAM (the events its Claude parser emits, between a
job.started and a job.finished). Run ids, timestamps, pids and paths come from the spec,
never from the clock, so the same spec gives the same rows. The events go through
`StoreWriter` as a real run's do, so the tables, indexes and payloads are the real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from corral.events.types import (
    AgentResult,
    Event,
    JobFinished,
    JobStarted,
    RunFinished,
    RunStarted,
    SessionStarted,
    UsageUpdated,
)
from corral.models import JobStatus, RunStatus
from corral.parsing import make_parser
from corral.store import StoreWriter, open_store
from harness import flows

JOB_GAP_S = 0.001  # between two job starts
JOB_S = 0.004  # a `true` job's duration
RUN_GAP_S = 600.0  # between two runs
ROOT = "/home/dev/bench"  # where the flows and logs of the recorded runs "were"
CLAUDE_ARGV = ("claude", "-p", "go", "--output-format", "stream-json", "--verbose")


class Clock:
    """The writer's clock: the time of the event being published, set by the builder."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def agent_events(stream: Path) -> list[Event]:
    """What corral's Claude parser emits for one replay of `stream` (job not stamped)."""
    parser = make_parser("claude-stream-json")
    events: list[Event] = []
    with stream.open(encoding="utf-8") as lines:
        for line in lines:
            events += parser.feed(line.rstrip("\n"), "stdout")
    events += parser.finish(0)
    return events


def _run_events(
    run_id: str, kind: str, jobs: int, started: float, clock: Clock, template: list[Event]
) -> Iterator[Event]:
    content = flows.flat(jobs) if kind == "flat" else flows.agents(jobs)
    flow_path = f"{ROOT}/{kind}{jobs}.yaml"
    log_root = f"{ROOT}/.corral/runs/{run_id}"
    prefix = "j" if kind == "flat" else "a"
    names = tuple(f"{prefix}{i}" for i in range(jobs))
    clock.now = started
    yield RunStarted(
        run_id=run_id,
        flow_name=f"{kind}{jobs}",
        flow_path=flow_path,
        jobs=names,
        started_at=started,
        flow_hash=hashlib.sha256(content.encode()).hexdigest(),
        flow_content=content,
        args=("run", flow_path, "-q"),
        user="bench",
        host="bench",
        log_root=log_root,
    )
    for i, name in enumerate(names):
        begin = started + 0.05 + i * JOB_GAP_S
        clock.now = begin
        if kind == "flat":
            yield JobStarted(
                job=name,
                attempt=1,
                pid=100_000 + i,
                argv=("true",),
                log_dir=f"{log_root}/{name}",
                started_at=begin,
                spec={"run": ["true"]},
            )
            clock.now = begin + JOB_S
            yield JobFinished(
                job=name,
                attempt=1,
                status=JobStatus.SUCCEEDED,
                exit_code=0,
                signal=None,
                duration_s=JOB_S,
            )
            continue
        yield JobStarted(
            job=name,
            attempt=1,
            pid=100_000 + i,
            argv=CLAUDE_ARGV,
            log_dir=f"{log_root}/{name}",
            started_at=begin,
            tool="claude",
            spec={"tool": "claude", "prompt": "go"},
        )
        yield from _agent_job(name, begin, clock, template)
    clock.now = started + 0.1 + jobs * JOB_GAP_S + 1.0
    yield RunFinished(run_id=run_id, status=RunStatus.SUCCEEDED, ended_at=clock.now)


def _agent_job(name: str, begin: float, clock: Clock, template: list[Event]) -> Iterator[Event]:
    usage: UsageUpdated | None = None
    result: AgentResult | None = None
    session: SessionStarted | None = None
    step = 0.5 / max(1, len(template))
    for n, event in enumerate(template):
        clock.now = begin + n * step
        stamped = dataclasses.replace(event, job=name, attempt=1)
        if isinstance(stamped, UsageUpdated):
            usage = stamped
        elif isinstance(stamped, AgentResult):
            result = stamped
        elif isinstance(stamped, SessionStarted):
            session = stamped
        yield stamped
    clock.now = begin + 0.5
    yield JobFinished(
        job=name,
        attempt=1,
        status=JobStatus.SUCCEEDED,
        exit_code=0,
        signal=None,
        duration_s=0.5,
        result=result.text if result else None,
        tool="claude",
        session_id=session.session_id if session else None,
        by_model=dict(usage.by_model) if usage else {},
        cost=usage.cost if usage else None,
        cost_by_model=dict(usage.cost_by_model) if usage else {},
    )


def build(out: Path, spec: dict[str, object]) -> dict[str, int]:
    """Write the history of `spec` into a new SQLite file `out`; returns row counts."""
    out.unlink(missing_ok=True)
    store = open_store(f"sqlite:///{out}", out)
    clock = Clock(float(spec["base_ts"]))  # type: ignore[arg-type]
    writer = StoreWriter(store, clock=clock, sync_timeout_s=600.0, close_timeout_s=600.0)
    templates: dict[str, list[Event]] = {}
    counts = {"runs": 0, "jobs": 0, "events": 0}
    started = float(spec["base_ts"])  # type: ignore[arg-type]
    for number, entry in enumerate(spec["runs"]):  # type: ignore[attr-defined]
        kind, jobs = entry[0], int(entry[1])
        template: list[Event] = []
        if kind == "agents":
            template = templates.setdefault(entry[2], agent_events(Path(entry[2])))
        run_id = f"bench-{number:04d}-{kind}{jobs}"
        for published, event in enumerate(
            _run_events(run_id, kind, jobs, started, clock, template), 1
        ):
            writer(event)
            counts["events"] += 1
            if published % 20_000 == 0:
                writer.flush_now(timeout=600.0)  # bound the writer's queue
        writer.flush_now(timeout=600.0)
        counts["runs"] += 1
        counts["jobs"] += jobs
        started += RUN_GAP_S + jobs * JOB_GAP_S
    writer.close(timeout=600.0)
    store.close()
    counts["bytes"] = out.stat().st_size
    return counts


def main() -> None:
    out, spec_path = Path(sys.argv[1]), Path(sys.argv[2])
    counts = build(out, json.loads(spec_path.read_text()))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
