"""The history's cost for a Claude stream's events, without the run around it.

    python benchmarks/bench_history_events.py [--jobs 20] [--batch 500] [--repeat 5]

The events the Claude parser makes of the recorded 2 MB stream-json (issue 14's Claude
row, as benchmarks/harness/fixtures.py builds it), for `--jobs` jobs, are written to a
fresh SQLite history in batches of `--batch` (one transaction each, as the writer
thread does), twice:

- "insert": only `Db.insert_many` of the event rows (payloads made beforehand): SQLite
  and the driver;
- "apply": `Applier.write` of fresh `Pending` items: numbering, each event's JSON and
  the insert, the writer thread's work per batch (the derived rows of the few lifecycle
  events, made on the main thread when published, are left out: `rows` is None).

Prints the best and median CPU time (`time.thread_time`: the machine is shared) over
`--repeat` runs, and ms per MB of stream.
Run it with PYTHONPATH=<another tree>/src to measure that tree (A/B: alternate).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fixtures

from corral.events.types import Event, JobOutput, JobStarted, RunStarted
from corral.parsing.claude import ClaudeStreamParser
from corral.store import open_store
from corral.store.apply import Applier, Pending, payload_of

COLUMNS = ("run_id", "seq", "ts", "kind", "job", "attempt", "payload")
MB = 1024 * 1024


def job_events(stream: Path, job: str) -> list[Event]:
    parser = ClaudeStreamParser()
    out: list[Event] = []
    with stream.open(encoding="utf-8") as lines:
        for line in lines:
            out += parser.feed(line.rstrip("\n"), "stdout")
    out += parser.finish(0)
    # the parser leaves `job` empty: the runner stamps it; JobOutput is never stored
    return [_stamped(e, job) for e in out if not isinstance(e, JobOutput)]


def _stamped(event: Event, job: str) -> Event:
    import dataclasses

    return dataclasses.replace(event, job=job, attempt=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stream = fixtures.claude_stream(2_000_000)
    megabytes = args.jobs * stream.stat().st_size / MB
    one = job_events(stream, "j")
    events: list[Event] = []
    for n in range(args.jobs):  # job after job: the order changes nothing written
        events += [_stamped(e, f"job{n}") for e in one]
    print(f"{len(events)} events of {args.jobs} jobs ({megabytes:.1f} MB of stream)")
    times: dict[str, list[float]] = {"insert": [], "apply": []}
    for _ in range(args.repeat):
        for mode, samples in times.items():
            samples.append(_once(mode, events, args.batch))
    for mode, samples in times.items():
        best, median = min(samples), statistics.median(samples)
        print(
            f"{mode:7s} best {best * 1000:7.1f} ms  median {median * 1000:7.1f} ms"
            f"  ({median * 1000 / megabytes:.2f} ms/MB)"
        )
    return 0


def _once(mode: str, events: list[Event], batch: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(None, Path(folder) / "history.db")
        try:
            run_id = "run-1"
            start = RunStarted(
                run_id=run_id, flow_name="f", flow_path="f.yaml", jobs=(), started_at=time.time()
            )
            applier = Applier()
            with store.transaction() as db:
                applier.write(db, [Pending(time.time(), start, run_id=run_id)])
                first = JobStarted(job="j", attempt=1, pid=1, argv=(), log_dir="", started_at=0.0)
                applier.write(db, [Pending(time.time(), first, run_id=run_id)])
            if mode == "insert":
                rows = [
                    (run_id, seq, 0.0, e.kind, e.job, e.attempt, payload_of(e))
                    for seq, e in enumerate(events, start=10)
                ]
                began = time.thread_time()
                for i in range(0, len(rows), batch):
                    with store.transaction() as db:
                        db.insert_many("events", COLUMNS, rows[i : i + batch], ignore=True)
                return time.thread_time() - began
            # the items are the publisher's (the main thread's): made before the clock starts
            items = [Pending(time.time(), e, run_id=run_id) for e in events]
            began = time.thread_time()
            for i in range(0, len(items), batch):
                with store.transaction() as db:
                    applier.write(db, items[i : i + batch])
            return time.thread_time() - began
        finally:
            store.close()


if __name__ == "__main__":
    raise SystemExit(main())
