"""Planning a large flow: 10,000 jobs and 30,000 `needs` edges.

    python benchmarks/bench_plan.py [--jobs N] [--edges M] [--repeat R]

Prints a table of the best and median time of each stage. Pydantic validation of the
JobSpecs belongs to loading (config/), so it is timed apart from build_plan.

It also decides every job (`decide`, what the scheduler calls once per job) twice: with
the flow's few conditions, and with a GitHub expression on every job that reads `needs`
(compiled once at plan time), and prints the cost per job of both.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from corral.config.schema import FlowSpec
from corral.models import JobStatus
from corral.plan import JobView, Plan, build_plan, decide, select, to_json

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
        body[names[i]]["if"] = "always()" if i % 2 else "failure() || cancelled()"
    return {"name": "bench", "jobs": body}


EVERY_JOB_IF = (
    "!cancelled() && !contains(needs.*.result, 'failure') && "
    "!contains(needs.*.result, 'cancelled') && format('{0}', flow.run_id) == ''"
)


def decide_all(plan: Plan) -> int:
    """Decide every job in order, each need having succeeded; returns how many run."""
    views: dict[str, JobView] = {}
    ran = 0
    for name in plan.order:
        decision = decide(plan.jobs[name], views, False)
        ran += decision.run
        views[name] = JobView(JobStatus.SUCCEEDED if decision.run else JobStatus.SKIPPED)
    return ran


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

    best_d, med_d, _ = timed(lambda: decide_all(plan), args.repeat)
    with_if = dict(data, jobs={n: {**j, "if": EVERY_JOB_IF} for n, j in data["jobs"].items()})
    plan_if = build_plan(FlowSpec.model_validate(with_if))
    best_e, med_e, ran = timed(lambda: decide_all(plan_if), args.repeat)
    assert ran == len(plan_if.jobs)

    edges = sum(len(job.needs) for job in plan.jobs.values())
    size = f"{len(plan.jobs):,} jobs, {edges:,} edges, {len(plan.levels)} levels"
    print(f"{size}, best and median of {args.repeat}")
    print(f"{'stage':<42}{'best':>10}{'median':>10}")
    rows = [
        ("FlowSpec.model_validate (loading, pydantic)", best_v, med_v),
        ("build_plan (validate, expand, levels)", best_p, med_p),
        ("select(only=[last job])", best_s, med_s),
        ("to_json", best_j, med_j),
        ("decide every job (the flow's conditions)", best_d, med_d),
        ("decide every job (an `if:` on each)", best_e, med_e),
    ]
    for label, best, median in rows:
        print(f"{label:<42}{best * 1000:>8.1f}ms{median * 1000:>8.1f}ms")
    per_job = (best_e - best_d) / len(plan.jobs) * 1e6
    print(f"an `if:` expression costs {per_job:.1f} us per job more than the default condition")
    verdict = "ok" if best_p < BUDGET_SECONDS else "SLOW"
    print(f"build_plan budget {BUDGET_SECONDS * 1000:.0f}ms: {verdict}")


if __name__ == "__main__":
    main()
