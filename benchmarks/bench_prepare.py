"""Per-job cost of rendering and preparing a plain `true` job (plan → JobRequest).

    python benchmarks/bench_prepare.py [--jobs N] [--repeat R]

Prints µs per job (median of R passes over N jobs): `render_job` + `RequestBuilder`,
what corral's main thread spends on each job of a flat flow before it is started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from corral.config.schema import FlowSpec
from corral.execute.prepare import RequestBuilder
from corral.plan import RunInfo, build_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    flow = FlowSpec.model_validate(
        {"concurrency": 8, "jobs": {f"j{i}": {"run": ["true"]} for i in range(args.jobs)}}
    )
    plan = build_plan(flow)
    with tempfile.TemporaryDirectory() as tmp:
        builder = RequestBuilder(
            base_dir=Path(tmp),
            log_root=Path(tmp) / "logs",
            environ=dict(os.environ),
            run_info=RunInfo("bench", "flat"),
        )
        jobs = list(plan.jobs.values())
        passes = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for job in jobs:
                builder(job, {}, 1)
            passes.append((time.perf_counter() - start) / len(jobs) * 1e6)
    print(f"{statistics.median(passes):.1f} µs/job (min {min(passes):.1f}, max {max(passes):.1f})")


if __name__ == "__main__":
    main()
