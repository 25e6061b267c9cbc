"""Property tests on random DAGs: levels, selection closures, and simulated runs via decide()."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config.schema import FlowSpec
from corral.models import JobStatus
from corral.plan import JobView, Plan, ReadyQueue, build_plan, decide, select

CONDITIONS = [None, "success()", "failure()", "always()", "cancelled()", "failure() || cancelled()"]
RAN = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED]


@st.composite
def dags(draw: st.DrawFn) -> Plan:
    """A random acyclic flow; file order is a random permutation of a topological one."""
    size = draw(st.integers(min_value=1, max_value=25))
    names = [f"j{i}" for i in range(size)]
    jobs: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        needs = draw(st.lists(st.sampled_from(names[:i]), max_size=4, unique=True)) if i else []
        job: dict[str, Any] = {"run": name, "needs": needs}
        job["continue_on_error"] = draw(st.booleans())
        job["priority"] = draw(st.integers(-2, 2))
        condition = draw(st.sampled_from(CONDITIONS))
        if condition is not None:
            job["if"] = condition
        jobs[name] = job
    order = draw(st.permutations(names))
    return build_plan(FlowSpec.model_validate({"jobs": {n: jobs[n] for n in order}}))


@settings(max_examples=150, deadline=None)
@given(dags())
def test_levels_respect_edges_and_hold_every_job_once(plan: Plan) -> None:
    flat = [name for level in plan.levels for name in level]
    assert sorted(flat) == sorted(plan.jobs)
    assert len(flat) == len(set(flat))
    level_of = {name: i for i, level in enumerate(plan.levels) for name in level}
    for name, job in plan.jobs.items():
        for need in job.needs:
            assert level_of[need] < level_of[name]
            assert name in plan.dependents(need)
        if job.needs:  # longest-path layering: as early as possible
            assert level_of[name] == 1 + max(level_of[n] for n in job.needs)
    for level in plan.levels:
        assert level == sorted(level, key=lambda n: plan.jobs[n].index)


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_select_closures(plan: Plan, data: st.DataObject) -> None:
    names = list(plan.jobs)
    only = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    kept = select(plan, only=only)
    assert set(only) <= set(kept.jobs)
    for job in kept.jobs.values():
        assert set(job.needs) <= set(kept.jobs)  # closed under needs
        assert job.external_needs == ()
    assert set(kept.jobs) == set(only).union(*(plan.transitive_needs(n) for n in only))

    start = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    down = select(plan, from_=start)
    expected = set(start).union(*(plan.transitive_dependents(n) for n in start))
    assert set(down.jobs) == expected
    for name, job in down.jobs.items():
        for dependent in plan.dependents(name):
            assert dependent in down.jobs  # closed under dependents
        assert set(job.needs) | set(job.external_needs) == set(plan.jobs[name].needs)
        assert not set(job.external_needs) & set(down.jobs)
    assert down.external_needs == {n for j in down.jobs.values() for n in j.external_needs}
    flat = [n for level in down.levels for n in level]
    assert sorted(flat) == sorted(down.jobs)


def _simulate(plan: Plan, rng: random.Random, run_cancelled: bool) -> dict[str, JobView]:
    states: dict[str, JobView] = {}
    waiting = {name: set(job.needs) for name, job in plan.jobs.items()}
    queue = ReadyQueue(plan.jobs[n] for n, needs in waiting.items() if not needs)
    steps = 0
    while queue:
        steps += 1
        assert steps <= len(plan.jobs)  # terminates: one decision per job
        name = queue.pop()
        job = plan.jobs[name]
        assert name not in states  # decided exactly once
        assert all(states[n].status.is_final for n in job.needs)  # never before its needs
        decision = decide(job, states, run_cancelled)
        assert not decision.error
        if decision.run:
            status = rng.choice(RAN)
        else:
            assert decision.reason.startswith("skipped: ")
            status = JobStatus.SKIPPED
        states[name] = JobView(
            status,
            continue_on_error=job.spec.continue_on_error,
            upstream_ok=decision.upstream_ok,
            upstream_failed=decision.upstream_failed,
        )
        for dependent in plan.dependents(name):
            waiting[dependent].discard(name)
            if not waiting[dependent]:
                queue.push(plan.jobs[dependent])
    return states


@settings(max_examples=200, deadline=None)
@given(dags(), st.integers(0, 2**32), st.booleans())
def test_simulated_runs_decide_every_job_once(plan: Plan, seed: int, cancelled: bool) -> None:
    states = _simulate(plan, random.Random(seed), cancelled)
    assert set(states) == set(plan.jobs)
    for name, job in plan.jobs.items():
        ran = states[name].status is not JobStatus.SKIPPED
        upstream = plan.transitive_needs(name)
        if job.condition.is_default:  # runs exactly when every job upstream is ok (GitHub)
            assert ran == (not cancelled and all(states[n].ok for n in upstream))
        if job.condition.expression == "failure()":  # some job upstream failed
            assert ran == any(states[n].failed for n in upstream)
        if job.condition.expression == "cancelled()":
            assert ran == cancelled
        if job.condition.expression == "always()":
            assert ran


@settings(max_examples=100, deadline=None)
@given(dags())
def test_when_everything_succeeds_only_trouble_handlers_skip(plan: Plan) -> None:
    states: dict[str, JobView] = {}
    for name in plan.order:
        job = plan.jobs[name]
        decision = decide(job, states, False)
        expression = job.condition.expression
        if expression in ("failure()", "cancelled()", "failure() || cancelled()"):
            assert not decision.run  # nothing failed, nothing was cancelled
        elif expression == "always()":
            assert decision.run
        else:  # success(): a skipped job upstream still skips, even when nothing failed
            ran = all(states[n].status is JobStatus.SUCCEEDED for n in plan.transitive_needs(name))
            assert decision.run is ran
        states[name] = JobView(
            JobStatus.SUCCEEDED if decision.run else JobStatus.SKIPPED,
            upstream_ok=decision.upstream_ok,
            upstream_failed=decision.upstream_failed,
        )
