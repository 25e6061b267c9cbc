"""Store benchmarks: writer throughput into SQLite, and `corral usage` over a big history.

    python benchmarks/bench_store.py [--events 1000000] [--throughput 200000] [--url URL]

1. throughput: one run, a realistic mix (per job: started, session, then text, tool
   call, tool result and usage snapshots, output lines that are not stored, finished,
   with `sync()` after every JobFinished as the scheduler does). Target: 20,000 events/s.
2. usage: a history of `--events` stored events (runs of 10 jobs, 100 events each),
   then `store.usage("model")` and the whole `corral usage --by model` command in a
   fresh process. Target: under 1 s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from corral.events.types import (
    AssistantText,
    Event,
    JobFinished,
    JobOutput,
    JobStarted,
    RunFinished,
    RunStarted,
    SessionStarted,
    ToolCall,
    ToolResult,
    UsageUpdated,
)
from corral.models import Cost, CostSource, JobStatus, RunStatus, Usage
from corral.store import SqlHistory, StoreWriter, open_store

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5-codex", "gemini-2.5-pro")
TOOLS = ("claude", "claude", "codex", "gemini")


def job_events(job: str, n: int, index: int) -> list[Event]:
    """About n stored events for one job (plus unstored output lines)."""
    model = MODELS[index % len(MODELS)]
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=20_000, tool_calls=4)
    events: list[Event] = [
        JobStarted(
            job=job,
            attempt=1,
            pid=10_000 + index,
            argv=("claude", "-p", "review the diff", "--output-format", "stream-json"),
            log_dir=f"/logs/{job}",
            started_at=time.time(),
            tool=TOOLS[index % len(TOOLS)],
            model=model,
            spec={"prompt": "review the diff", "timeout": 1800},
        ),
        SessionStarted(job=job, attempt=1, session_id=f"s-{index}", model=model),
    ]
    for i in range(max(0, n - 3) // 4):
        events += [
            AssistantText(job=job, attempt=1, text="Looking at the tests next. " * 4),
            ToolCall(job=job, attempt=1, name="Read", call_id=f"c{i}"),
            JobOutput(job=job, attempt=1, stream="stdout", text='{"type":"x"}', offset=i * 80),
            ToolResult(job=job, attempt=1, call_id=f"c{i}"),
            UsageUpdated(job=job, attempt=1, by_model={model: usage}),
        ]
    priced = index % 7 != 0
    events.append(
        JobFinished(
            job=job,
            attempt=1,
            status=JobStatus.SUCCEEDED if index % 9 else JobStatus.FAILED,
            exit_code=0,
            signal=None,
            duration_s=42.0,
            tool=TOOLS[index % len(TOOLS)],
            result="done",
            by_model={model: usage},
            cost=Cost(
                Decimal("0.0213") if priced else None,
                CostSource.REPORTED if priced else CostSource.UNPRICED,
            ),
            cost_by_model={model: Decimal("0.0213")} if priced else {},
        )
    )
    return events


def run_events(run_id: str, jobs: int, per_job: int) -> list[list[Event]]:
    """The run's events, one list per job (the first list also holds RunStarted)."""
    names = tuple(f"job{i:03d}" for i in range(jobs))
    start = RunStarted(
        run_id=run_id, flow_name=f"flow{len(run_id) % 5}", flow_path="f.yaml", jobs=names,
        started_at=time.time(),
    )  # fmt: skip
    per = [job_events(name, per_job, index) for index, name in enumerate(names)]
    per[0].insert(0, start)
    per[-1].append(RunFinished(run_id=run_id, status=RunStatus.SUCCEEDED, ended_at=time.time()))
    return per


async def publish(writer: StoreWriter, jobs: list[list[Event]], *, sync: bool) -> float:
    """Publish job after job; the time spent in the subscriber call itself."""
    inside = 0.0
    for events in jobs:
        began = time.perf_counter()
        for event in events:
            writer(event)
        inside += time.perf_counter() - began
        if sync:
            await writer.sync()  # the scheduler's durability point after JobFinished
        await asyncio.sleep(0)
    return inside


def stored_count(jobs: list[list[Event]]) -> int:
    return sum(not isinstance(e, JobOutput) for events in jobs for e in events)


def throughput(store: SqlHistory, events: int) -> tuple[int, float, float]:
    per_job = 1000
    jobs = run_events("bench-throughput", max(1, events // per_job), per_job)
    writer = StoreWriter(store)
    began = time.perf_counter()
    inside = asyncio.run(publish(writer, jobs, sync=True))
    writer.close()
    elapsed = time.perf_counter() - began
    return stored_count(jobs), elapsed, inside


def fill(store: SqlHistory, events: int) -> tuple[int, float]:
    per_job, jobs = 100, 10
    runs = max(1, events // (per_job * jobs))
    writer = StoreWriter(store)
    stored = 0
    began = time.perf_counter()
    for r in range(runs):
        # setting a history up: no per-job sync, so this measures bulk writing
        run = run_events(f"bench-{r:06d}", jobs, per_job)
        stored += stored_count(run)
        asyncio.run(publish(writer, run, sync=False))
    writer.close()
    return stored, time.perf_counter() - began


def best_of(n: int, command: list[str]) -> float:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--throughput", type=int, default=200_000)
    parser.add_argument("--url", help="a store URL (default: SQLite in a temp folder)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    url = args.url or f"sqlite:///{folder / 'through.db'}"
    rows: list[tuple[str, str, str]] = []

    store = open_store(url, folder / "unused.db")
    stored, elapsed, inside = throughput(store, args.throughput)
    store.close()
    rate = stored / elapsed
    rows.append(
        ("writer throughput (one run, sync per job)", f"{rate:,.0f} events/s", ">= 20,000 events/s")
    )
    rows.append(("  events stored / wall time", f"{stored:,} / {elapsed:.2f} s", ""))
    rows.append(("  subscriber call per event", f"{inside / stored * 1e6:.2f} µs", ""))

    url = args.url or f"sqlite:///{folder / 'history.db'}"
    store = open_store(url, folder / "unused.db")
    stored, elapsed = fill(store, args.events)
    rate = stored / elapsed
    rows.append(("history filled (bulk)", f"{stored:,} events, {rate:,.0f}/s", ""))
    began = time.perf_counter()
    result = store.usage("model")
    query = time.perf_counter() - began
    rows.append(("store.usage('model')", f"{query * 1000:.0f} ms ({len(result)} rows)", "< 1 s"))
    store.close()
    command = [sys.executable, "-m", "corral", "usage", "--by", "model", "--store", url]
    whole = best_of(3, command)
    rows.append(
        ("`corral usage --by model` (new process, best of 3)", f"{whole * 1000:.0f} ms", "< 1 s")
    )

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'result':<28}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<28}  {target}")


if __name__ == "__main__":
    main()
