"""Planning a large flow: 10,000 jobs and 30,000 `needs` edges.

    python benchmarks/bench_plan.py [--jobs N] [--edges M] [--repeat R]

Prints a table of the best and median time of each stage. Pydantic validation of the
JobSpecs belongs to loading (config/), so it is timed apart from build_plan.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from corral.config.schema import FlowSpec
from corral.plan import build_plan, select, to_json

BUDGET_SECONDS = 0.5


def make_flow(jobs: int, edges: int, seed: int = 1) -> dict[str, Any]:
    """A random DAG: each edge goes from a job to one declared before it."""
    rng = random.Random(seed)
    names = [f"job{i:05d}" for i in range(jobs)]
    needs: list[set[str]] = [set() for _ in names]
    placed = 0
    while placed < edges:
        i = rng.randrange(1, jobs)
        need = names[rng.randrange(0, i)]
        if need not in needs[i]:
            needs[i].add(need)
            placed += 1
    body = {
        name: {"run": f"echo {name}", "needs": sorted(needs[i]), "priority": i % 3}
        for i, name in enumerate(names)
    }
    # a few conditions and templates, so those paths are part of the figure
    for i in range(1, jobs, 500):
        body[names[i]]["if"] = "always()" if i % 2 else "failure() or cancelled()"
    return {"name": "bench", "jobs": body}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--edges", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    data = make_flow(args.jobs, args.edges)
    best_v, med_v, flow = timed(lambda: FlowSpec.model_validate(data), args.repeat)
    best_p, med_p, plan = timed(lambda: build_plan(flow), args.repeat)
    last = list(plan.jobs)[-1]
    best_s, med_s, _ = timed(lambda: select(plan, only=[last]), args.repeat)
    best_j, med_j, _ = timed(lambda: to_json(plan), args.repeat)

    edges = sum(len(job.needs) for job in plan.jobs.values())
    size = f"{len(plan.jobs):,} jobs, {edges:,} edges, {len(plan.levels)} levels"
    print(f"{size}, best and median of {args.repeat}")
    print(f"{'stage':<42}{'best':>10}{'median':>10}")
    rows = [
        ("FlowSpec.model_validate (loading, pydantic)", best_v, med_v),
        ("build_plan (validate, expand, levels)", best_p, med_p),
        ("select(only=[last job])", best_s, med_s),
        ("to_json", best_j, med_j),
    ]
    for label, best, median in rows:
        print(f"{label:<42}{best * 1000:>8.1f}ms{median * 1000:>8.1f}ms")
    verdict = "ok" if best_p < BUDGET_SECONDS else "SLOW"
    print(f"build_plan budget {BUDGET_SECONDS * 1000:.0f}ms: {verdict}")


if __name__ == "__main__":
    main()
