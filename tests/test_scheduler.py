"""The Scheduler driven by a fake executor on virtual time: no process, no real wait.

Every run here happens on `VirtualTimeLoop` (tests/fakes/fake_executor.py): the loop's
clock is a number that jumps to the next timer whenever nothing is ready, so job
durations, retry backoffs, stagger gaps and `asyncio.wait_for` timeouts cost no wall time,
and a run that could never finish raises `Deadlock` instead of hanging. The scheduler gets
the loop's clock, a recording `sleep` and a seeded `random.Random`.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config.schema import FlowSpec
from corral.errors import FlowError
from corral.events.bus import Bus
from corral.events.types import Event, JobFinished, JobRetrying, JobSkipped, JobWaiting
from corral.execute.executor import JobRequest
from corral.execute.scheduler import JobState, Scheduler, Settings
from corral.journal import RunJournal
from corral.models import ErrorKind, JobStatus
from corral.plan import JobView, Plan, PlannedJob, RetryPolicy, build_plan, decide
from corral.testing import (
    FakeExecutor,
    RecordingSleep,
    Step,
    VirtualTimeLoop,
    fail,
    hang,
    ok,
    run_virtual,
    timed_out,
)

# -- harness ---------------------------------------------------------------------------------


@dataclass
class Cancel:
    at: float
    hard: bool = False
    reason: str = "interrupted"


@dataclass
class Run:
    plan: Plan
    scheduler: Scheduler
    states: dict[str, JobState]
    executor: FakeExecutor
    sleep: RecordingSleep
    events: list[tuple[float, Event]]
    rows: RunJournal
    ended: float
    # (virtual time, reason, hard, executor attempts started before it) per cancel() call
    cancels: list[tuple[float, str, bool, int]] = field(default_factory=list)
    prepared: list[tuple[str, int]] = field(default_factory=list)

    def status(self, name: str) -> JobStatus:
        return self.states[name].status

    def reason(self, name: str) -> str | None:
        return self.states[name].reason

    def error(self, name: str) -> str | None:
        outcome = self.states[name].outcome
        return outcome.error if outcome else None

    def kind(self, name: str) -> ErrorKind | None:
        outcome = self.states[name].outcome
        return outcome.error_kind if outcome else None

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for _, event in self.events if isinstance(event, kind)]


def plan_of(jobs: Mapping[str, Mapping[str, Any]], **flow: Any) -> Plan:
    spec = {name: {"run": f"fake {name}", **job} for name, job in jobs.items()}
    return build_plan(FlowSpec.model_validate({"jobs": spec, **flow}))


def execute(
    plan: Plan,
    script: Mapping[str, Sequence[Step]] | None = None,
    *,
    concurrency: int = 4,
    stagger: float = 0.0,
    fail_fast: bool = False,
    seed: int = 0,
    cancels: Sequence[Cancel] = (),
    default: Step | None = None,
    admission: Any = None,
) -> Run:
    """Run `plan` through the real Scheduler and the fake executor, on virtual time."""

    async def main(loop: VirtualTimeLoop) -> Run:
        sleep = RecordingSleep(loop.time)
        executor = FakeExecutor(script, clock=loop.time, default=default or ok())
        bus = Bus()
        events: list[tuple[float, Event]] = []
        rows = RunJournal(plan.jobs)
        bus.subscribe(lambda event: events.append((loop.time(), event)))
        bus.subscribe(rows)
        if callable(admission):
            bus.subscribe(admission)
        prepared: list[tuple[str, int]] = []
        holder: list[Scheduler] = []

        def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
            # an attempt is only ever prepared once every need is final
            for need in job.needs:
                assert views[need].status.is_final, f"{job.name} prepared before {need} was final"
                assert need not in holder[0]._running, f"{job.name} prepared while {need} runs"
            assert (job.name, attempt) not in prepared, f"{job.name} attempt {attempt} twice"
            prepared.append((job.name, attempt))
            return JobRequest(
                job=job.name,
                attempt=attempt,
                argv=("fake", job.name),
                cwd=None,
                env={},
                log_dir=Path("/nonexistent") / job.name / str(attempt),
            )

        scheduler = Scheduler(
            plan,
            Settings(concurrency=concurrency, stagger=stagger, fail_fast=fail_fast),
            executor,
            bus,
            prepare,
            admission=admission,
            journal=rows,
            sleep=sleep,
            clock=loop.time,
            wall=loop.time,
            rng=random.Random(seed),
        )
        holder.append(scheduler)
        record: list[tuple[float, str, bool, int]] = []
        original = scheduler.cancel

        def spy(reason: str, *, hard: bool = False) -> None:
            record.append((loop.time(), reason, hard, len(executor.attempts)))
            original(reason, hard=hard)

        scheduler.cancel = spy  # type: ignore[method-assign]  # fail-fast goes through it too
        for cancel in cancels:
            loop.call_later(cancel.at, lambda c=cancel: scheduler.cancel(c.reason, hard=c.hard))
        states = await scheduler.run()
        return Run(
            plan,
            scheduler,
            states,
            executor,
            sleep,
            events,
            rows,
            loop.time(),
            record,
            prepared,
        )

    return run_virtual(main)


# -- properties on random DAGs ---------------------------------------------------------------

CONDITIONS = [
    None,
    None,
    "always()",
    "failure()",
    "success()",
    "cancelled()",
    "failure() || cancelled()",
]
DURATIONS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])
KINDS = [None, ErrorKind.EXIT, ErrorKind.RATE_LIMIT, ErrorKind.API, ErrorKind.AUTH]
STEPS = st.one_of(
    st.builds(ok, duration=DURATIONS),
    st.builds(ok, duration=DURATIONS),
    st.builds(fail, code=st.sampled_from([1, 75]), kind=st.sampled_from(KINDS), duration=DURATIONS),
    st.builds(timed_out, duration=DURATIONS),
)
RETRY_ON: list[list[str | int] | None] = [None, None, ["rate_limit"], [75], ["exit", "api"]]


@dataclass
class Scenario:
    jobs: dict[str, dict[str, Any]]
    script: dict[str, list[Step]]
    concurrency: int
    stagger: float
    fail_fast: bool
    cancels: list[Cancel]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    size = draw(st.integers(min_value=1, max_value=12))
    names = [f"j{i}" for i in range(size)]
    jobs: dict[str, dict[str, Any]] = {}
    script: dict[str, list[Step]] = {}
    for i, name in enumerate(names):
        job: dict[str, Any] = {
            "needs": draw(st.lists(st.sampled_from(names[:i]), max_size=3, unique=True))
            if i
            else [],
            "continue_on_error": draw(st.booleans()),
            "priority": draw(st.integers(-1, 1)),
        }
        condition = draw(st.sampled_from(CONDITIONS))
        if condition is not None:
            job["if"] = condition
        retries = draw(st.integers(0, 2))
        if retries:
            job["retries"] = retries
            job["retry_delay"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
            job["retry_max_delay"] = draw(st.sampled_from([1.0, 3.0]))
            retry_on = draw(st.sampled_from(RETRY_ON))
            if retry_on is not None:
                job["retry_on"] = retry_on
        jobs[name] = job
        script[name] = draw(st.lists(STEPS, min_size=1, max_size=3))
    cancels = draw(
        st.lists(
            st.builds(Cancel, at=st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0]), hard=st.booleans()),
            max_size=2,
        )
    )
    return Scenario(
        jobs,
        script,
        concurrency=draw(st.integers(1, 4)),
        stagger=draw(st.sampled_from([0.0, 0.0, 1.5])),
        fail_fast=draw(st.booleans()),
        cancels=cancels,
    )


def expected_without_cancel(
    plan: Plan, executor: FakeExecutor
) -> dict[str, tuple[JobStatus, int, str | None]]:
    """What every job must end as when nothing cancels the run: status, attempts, reason.

    Outcomes do not depend on timing then, so a plain walk in topological order with the
    pure `decide` and `RetryPolicy` gives them."""
    views: dict[str, JobView] = {}
    found: dict[str, tuple[JobStatus, int, str | None]] = {}
    for name in plan.order:
        job = plan.jobs[name]
        decision = decide(job, views, run_cancelled=False)
        assert not decision.error  # the scenarios only use status functions
        flags = {"upstream_ok": decision.upstream_ok, "upstream_failed": decision.upstream_failed}
        if not decision.run:
            found[name] = (JobStatus.SKIPPED, 0, decision.reason)
            views[name] = JobView(
                JobStatus.SKIPPED, continue_on_error=job.spec.continue_on_error, **flags
            )
            continue
        attempt = 0
        while True:
            attempt += 1
            step = executor.step(name, attempt)
            if step.status is JobStatus.SUCCEEDED:
                break
            if not job.retry.should_retry(attempt, step.error_kind, step.exit_code):
                break
        found[name] = (step.status, attempt, None)
        views[name] = JobView(
            step.status,
            exit_code=step.exit_code,
            continue_on_error=job.spec.continue_on_error,
            **flags,
        )
    return found


def check_invariants(run: Run, concurrency: int, stagger: float) -> None:
    plan, states, executor = run.plan, run.states, run.executor
    # every job ends in a final status, and the event stream (what the UI, the summary and
    # the store are built from) agrees with the scheduler
    for name, state in states.items():
        assert state.status.is_final, (name, state.status)
        assert run.rows.jobs[name].status is state.status, (name, run.rows.jobs[name].status)
    # each attempt runs at most once, attempts are numbered 1..n in order, one at a time
    assert not executor.overlaps
    for name in plan.jobs:
        numbers = [a.attempt for a in executor.of(name)]
        assert numbers == list(range(1, len(numbers) + 1)), (name, numbers)
        assert len(numbers) <= plan.jobs[name].retry.retries + 1
        state = states[name]
        # a stop that lands between launch and spawn ends an attempt without running it
        assert len(numbers) <= state.attempts <= len(numbers) + 1, (name, state.attempts)
        if state.attempts > len(numbers):
            assert state.status is JobStatus.CANCELLED, (name, state.status)
    # nothing starts before all its needs are final (prepare asserts it on the spot too)
    for attempt in executor.attempts:
        for need in plan.jobs[attempt.job].needs:
            ended = executor.last_end(need)
            assert ended is None or ended <= attempt.started, (attempt, need)
    assert executor.max_running <= concurrency
    # launches (first attempts) are at least `stagger` apart
    firsts = sorted(a.started for a in executor.attempts if a.attempt == 1)
    for before, after in itertools.pairwise(firsts):
        assert after - before >= stagger - 1e-9
    # a waiting job names what it waits for
    for _, event in run.events:
        if isinstance(event, JobWaiting) and event.reason.startswith("waiting for"):
            assert event.reason != "waiting for ", event
    # every end that is not a success is explained
    for name, state in states.items():
        if state.status is JobStatus.SKIPPED:
            assert state.reason and state.reason.startswith("skipped: "), (name, state.reason)
        elif state.status is not JobStatus.SUCCEEDED:
            explained = state.reason or (state.outcome and state.outcome.error)
            assert explained, (name, state.status)
    # after a cancellation only what asks to run on it starts, and a hard one starts nothing
    final_views = run.scheduler.views()
    if run.cancels:
        _, _, _, seen = run.cancels[0]
        for attempt in executor.attempts[seen:]:
            job = plan.jobs[attempt.job]
            assert attempt.attempt == 1, attempt  # no retry once the run is cancelled
            assert decide(job, final_views, run_cancelled=True).run, attempt.job
        hard = [seen for _, _, is_hard, seen in run.cancels if is_hard]
        if hard:
            assert len(executor.attempts) == hard[0]
    # fail-fast fires only on a failure that is final: not allowed and not retried any more
    for _, reason, _, _ in run.cancels:
        if reason.startswith("fail-fast: "):
            name = reason.split("'")[1]
            state, job = states[name], plan.jobs[name]
            assert state.status in (JobStatus.FAILED, JobStatus.TIMED_OUT), (name, state)
            assert not job.spec.continue_on_error
            assert state.outcome is not None
            assert not job.retry.should_retry(
                state.attempts, state.outcome.error_kind, state.outcome.exit_code
            ), f"fail-fast on {name} attempt {state.attempts} although it would be retried"
    if run.scheduler.cancelled is None:
        expected = expected_without_cancel(plan, executor)
        got = {
            n: (s.status, s.attempts, s.reason if s.status is JobStatus.SKIPPED else None)
            for n, s in states.items()
        }
        assert got == expected


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_random_dags_keep_the_scheduling_invariants(scenario: Scenario) -> None:
    plan = plan_of(scenario.jobs)
    run = execute(
        plan,
        scenario.script,
        concurrency=scenario.concurrency,
        stagger=scenario.stagger,
        fail_fast=scenario.fail_fast,
        cancels=scenario.cancels,
    )
    check_invariants(run, scenario.concurrency, scenario.stagger)
    if scenario.fail_fast:
        failed = [
            n
            for n, s in run.states.items()
            if s.status in (JobStatus.FAILED, JobStatus.TIMED_OUT)
            and not plan.jobs[n].spec.continue_on_error
        ]
        assert not failed or run.scheduler.cancelled is not None


def test_a_wide_random_graph_terminates_with_every_invariant() -> None:
    rng = random.Random(7)
    names = [f"n{i}" for i in range(300)]
    jobs: dict[str, dict[str, Any]] = {}
    script: dict[str, list[Step]] = {}
    for i, name in enumerate(names):
        needs = rng.sample(names[max(0, i - 40) : i], k=min(i, rng.randint(0, 3)))
        jobs[name] = {"needs": needs, "retries": rng.choice([0, 0, 1]), "retry_delay": 1}
        if rng.random() < 0.1:
            jobs[name]["if"] = rng.choice(["always()", "failure()"])
        if rng.random() < 0.2:
            jobs[name]["continue_on_error"] = True
        script[name] = [fail() if rng.random() < 0.08 else ok(rng.choice([0.5, 1, 2]))]
    run = execute(plan_of(jobs), script, concurrency=8)
    check_invariants(run, 8, 0.0)
    assert run.executor.max_running == 8


# -- retries ---------------------------------------------------------------------------------


def test_retry_attempts_and_backoff_follow_equal_jitter_on_the_injected_clock() -> None:
    plan = plan_of(
        {
            "flaky": {"retries": 4, "retry_delay": 2, "retry_max_delay": 10},
            "after": {"needs": ["flaky"]},
        }
    )
    script = {"flaky": [fail(duration=1), fail(duration=1), timed_out(1), fail(1), ok(1)]}
    run = execute(plan, script, seed=42)
    assert run.status("flaky") is JobStatus.SUCCEEDED
    assert run.states["flaky"].attempts == 5
    assert [o.status for o in run.states["flaky"].history] == [
        JobStatus.FAILED,
        JobStatus.FAILED,
        JobStatus.TIMED_OUT,
        JobStatus.FAILED,
        JobStatus.SUCCEEDED,
    ]
    assert run.status("after") is JobStatus.SUCCEEDED
    # c = min(retry_max_delay, retry_delay * 2**(n-1)); the wait is drawn from [c/2, c]
    ceilings = [2.0, 4.0, 8.0, 10.0]
    delays = run.sleep.delays
    assert len(delays) == 4
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # exactly the draws of the seeded generator, in order
    replay = random.Random(42)
    assert delays == [c / 2 + replay.uniform(0, c / 2) for c in ceilings]
    retrying = [e for e in run.of(JobRetrying) if isinstance(e, JobRetrying)]
    assert [(e.attempt, e.delay_s) for e in retrying] == list(enumerate(delays, start=1))
    # each attempt starts when the previous one ended plus its delay, on the virtual clock
    attempts = run.executor.of("flaky")
    for before, after, delay in zip(attempts, attempts[1:], delays, strict=False):
        assert before.ended is not None
        assert after.started == pytest.approx(before.ended + delay)
    # 5 attempts of 1 s plus 19+ s of backoff passed on the virtual clock; none of it was
    # waited for: the loop jumps to the next timer instead of blocking
    assert run.ended == pytest.approx(5 + sum(delays) + 1)
    assert sum(delays) >= sum(ceilings) / 2


def test_backoff_is_capped_and_jittered_across_seeds() -> None:
    plan = plan_of({"a": {"retries": 6, "retry_delay": 1, "retry_max_delay": 5}})
    seen: list[list[float]] = []
    for seed in range(25):
        run = execute(plan, {"a": [fail(duration=0)]}, seed=seed)
        assert run.states["a"].attempts == 7 and run.status("a") is JobStatus.FAILED
        seen.append(run.sleep.delays)
    ceilings = [min(5.0, 1.0 * 2**n) for n in range(6)]  # 1, 2, 4, 5, 5, 5
    for delays in seen:
        assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    firsts = [delays[0] for delays in seen]
    assert len(set(firsts)) == len(firsts)  # the random half differs from seed to seed
    assert min(firsts) < 0.6 and max(firsts) > 0.9  # and spreads over [c/2, c]
    policy = RetryPolicy(retries=6, base_delay=1, max_delay=5)
    assert [policy.ceiling(n) for n in range(1, 7)] == ceilings


def idle() -> Step:
    return Step(JobStatus.TIMED_OUT, None, ErrorKind.IDLE)


def kind(error_kind: ErrorKind, code: int | None = 1) -> Step:
    return Step(JobStatus.FAILED, code, error_kind)


@pytest.mark.parametrize(
    ("retry_on", "step", "attempts"),
    [
        (None, fail(1), 3),
        (None, fail(1, kind=None), 3),  # no kind but a non-zero exit counts as `exit`
        (None, timed_out(), 3),
        (None, idle(), 3),
        (None, kind(ErrorKind.RATE_LIMIT), 3),
        (None, kind(ErrorKind.API), 3),
        (None, kind(ErrorKind.AUTH), 1),  # never retried
        (None, kind(ErrorKind.BUDGET), 1),
        (None, kind(ErrorKind.MAX_BUDGET, None), 1),
        (None, kind(ErrorKind.PERMISSION), 1),  # not a transient kind
        (None, kind(ErrorKind.MAX_TURNS), 1),
        ([75], fail(75), 3),
        ([75], fail(1), 1),
        ([75], timed_out(), 1),
        (["rate_limit"], kind(ErrorKind.RATE_LIMIT), 3),
        (["rate_limit"], fail(1), 1),
        (["rate_limit"], kind(ErrorKind.AUTH), 1),
        (["exit"], fail(3), 3),
        (["exit"], timed_out(), 1),
        (["timeout"], timed_out(), 3),
        (["timeout"], idle(), 1),
        (["idle"], idle(), 3),
        (["rate_limit", 75], fail(75), 3),
        (["rate_limit", 75], fail(76), 1),
        (["rate_limit", 75], kind(ErrorKind.BUDGET, 75), 1),
    ],
)
def test_retry_on_filters_kinds_and_exit_codes(
    retry_on: list[str | int] | None, step: Step, attempts: int
) -> None:
    job: dict[str, Any] = {"retries": 2, "retry_delay": 30}
    if retry_on is not None:
        job["retry_on"] = retry_on
    run = execute(plan_of({"a": job}), {"a": [step]})
    assert run.states["a"].attempts == attempts
    assert len(run.executor.of("a")) == attempts
    assert run.status("a") is step.status
    assert len(run.sleep.delays) == attempts - 1
    assert len(run.of(JobRetrying)) == attempts - 1


@pytest.mark.parametrize("never", ["auth", "budget", "max_budget", "cancelled"])
def test_retry_on_refuses_kinds_that_are_never_retried(never: str) -> None:
    with pytest.raises(FlowError, match="is never retried"):
        plan_of({"a": {"retries": 1, "retry_on": [never]}})


def test_no_real_time_passes_even_for_an_hour_of_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def forbidden(seconds: float) -> None:
        raise AssertionError(f"real sleep({seconds}) in a scheduler test")

    monkeypatch.setattr(time, "sleep", forbidden)
    plan = plan_of({"a": {"retries": 60, "retry_delay": "1m", "retry_max_delay": "1m"}})
    run = execute(plan, {"a": [fail(duration=0)]})
    assert run.states["a"].attempts == 61
    assert sum(run.sleep.delays) >= 60 * 30  # at least half an hour of virtual waiting
    assert run.ended == pytest.approx(sum(run.sleep.delays))


# -- priority, concurrency, stagger ----------------------------------------------------------


def test_priority_orders_ready_jobs_when_the_limit_is_reached() -> None:
    plan = plan_of(
        {
            "a": {"priority": 0},
            "b": {"priority": 5},
            "c": {"priority": 1},
            "d": {"priority": 5},  # ties go in file order: b before d
            "e": {"priority": 9, "needs": ["c"]},  # ready later, overtakes a
            "f": {"priority": 99, "needs": ["e"]},  # never before its needs
        }
    )
    run = execute(plan, concurrency=1)
    assert run.executor.started() == ["b", "d", "c", "e", "f", "a"]
    assert run.executor.max_running == 1
    wide = execute(plan, concurrency=2, default=ok(1))
    assert wide.executor.started() == ["b", "d", "c", "a", "e", "f"]
    assert [a.started for a in wide.executor.attempts] == [0, 0, 1, 1, 2, 3]
    assert wide.executor.max_running == 2


def test_concurrency_limit_holds_and_slots_are_reused_at_once() -> None:
    plan = plan_of({f"j{i}": {} for i in range(7)})
    durations = [3, 1, 2, 1, 1, 1, 1]
    run = execute(plan, {f"j{i}": [ok(d)] for i, d in enumerate(durations)}, concurrency=3)
    starts = {a.job: a.started for a in run.executor.attempts}
    assert starts == {"j0": 0, "j1": 0, "j2": 0, "j3": 1, "j4": 2, "j5": 2, "j6": 3}
    assert run.executor.max_running == 3


def test_stagger_spaces_launches_on_the_injected_clock() -> None:
    plan = plan_of({f"j{i}": {} for i in range(4)})
    run = execute(plan, default=ok(10), concurrency=4, stagger=2.5)
    assert [a.started for a in run.executor.attempts] == [0, 2.5, 5.0, 7.5]
    assert run.ended == 17.5
    # a slot that frees up after the stagger has passed is used at once
    serial = execute(plan, default=ok(4), concurrency=1, stagger=2.5)
    assert [a.started for a in serial.executor.attempts] == [0, 4, 8, 12]
    # and a short job does not let the next launch come early
    short = execute(plan, default=ok(1), concurrency=1, stagger=2.5)
    assert [a.started for a in short.executor.attempts] == [0, 2.5, 5.0, 7.5]


def test_stagger_keeps_priority_order() -> None:
    plan = plan_of({"low": {"priority": -1}, "mid": {}, "high": {"priority": 3}})
    run = execute(plan, default=ok(1), concurrency=3, stagger=1)
    assert run.executor.started() == ["high", "mid", "low"]
    assert [a.started for a in run.executor.attempts] == [0, 1, 2]


# -- failure policy, fail-fast, cancellation -------------------------------------------------


def test_skips_propagate_with_reasons_and_failure_looks_upstream() -> None:
    plan = plan_of(
        {
            "build": {},
            "test": {"needs": ["build"]},
            "deploy": {"needs": ["test"]},
            "notify": {"needs": ["deploy"], "if": "failure()"},
            "cleanup": {"needs": ["test"], "if": "always()"},
            "after_cleanup": {"needs": ["cleanup"]},
            "lint": {"continue_on_error": True},
            "after_lint": {"needs": ["lint"]},
            "strict": {"needs": ["lint"], "if": "jobs.lint.exit_code == 0"},
            "on_success": {"needs": ["after_lint"], "if": "success()"},
        }
    )
    run = execute(plan, {"build": [fail(3)], "lint": [fail(1)]})
    assert run.status("build") is JobStatus.FAILED
    assert run.reason("test") == "skipped: needs 'build' failed"
    assert run.reason("deploy") == "skipped: needs 'test' was skipped"
    assert run.status("notify") is JobStatus.SUCCEEDED  # failure() three levels up
    assert run.status("cleanup") is JobStatus.SUCCEEDED
    # success() looks at every job upstream, as on GitHub: cleanup ran after a failure
    assert run.reason("after_cleanup") == "skipped: a job upstream of 'cleanup' did not succeed"
    assert run.status("lint") is JobStatus.FAILED
    assert run.status("after_lint") is JobStatus.SUCCEEDED  # continue_on_error counts as ok
    assert run.reason("strict") == "skipped: condition `jobs.lint.exit_code == 0` is false"
    assert run.status("on_success") is JobStatus.SUCCEEDED
    skipped = {e.job: e.reason for e in run.of(JobSkipped) if isinstance(e, JobSkipped)}
    assert skipped == {n: run.reason(n) for n in ("test", "deploy", "after_cleanup", "strict")}
    assert run.scheduler.cancelled is None


def test_a_condition_that_cannot_be_evaluated_fails_the_job() -> None:
    plan = plan_of(
        {
            "a": {},
            "b": {"needs": ["a"], "if": "always() && fromJSON(jobs.a.result).ok"},
            "c": {"needs": ["b"]},
        }
    )
    run = execute(plan)
    assert run.status("b") is JobStatus.FAILED
    assert run.reason("b") is not None and "could not be evaluated" in run.reason("b")
    assert run.reason("c") == "skipped: needs 'b' failed"
    assert run.executor.started() == ["a"]


def test_fail_fast_cancels_running_and_pending_jobs_but_cleanup_runs() -> None:
    plan = plan_of(
        {
            "boom": {},
            "long": {},
            "short": {},
            "queued1": {"priority": -1},
            "queued2": {"priority": -2},
            "after": {"needs": ["long"]},
            "cleanup": {"needs": ["long"], "if": "always()"},
            "notify": {"needs": ["boom"], "if": "failure()"},
            "on_cancel": {"needs": ["queued2"], "if": "cancelled()"},
        }
    )
    script = {"boom": [fail(duration=2)], "long": [hang()], "short": [ok(1)], "queued1": [hang()]}
    run = execute(plan, script, concurrency=3, fail_fast=True)
    reason = "fail-fast: 'boom' failed"
    assert run.scheduler.cancelled == reason
    assert [(t, r) for t, r, _, _ in run.cancels] == [(2.0, reason)]
    assert run.status("boom") is JobStatus.FAILED
    assert run.status("short") is JobStatus.SUCCEEDED
    for name in ("long", "queued1"):  # running: stopped
        assert run.status(name) is JobStatus.CANCELLED
        assert run.error(name) == reason
        assert run.kind(name) is ErrorKind.CANCELLED
        assert run.executor.of(name)[0].stopped and run.executor.of(name)[0].ended == 2.0
    for name in ("queued2", "after"):  # not started
        assert run.status(name) is JobStatus.CANCELLED
        assert run.reason(name) == f"not started: {reason}"
        assert not run.executor.of(name)
    for name in ("cleanup", "notify", "on_cancel"):
        assert run.status(name) is JobStatus.SUCCEEDED, name
    assert run.executor.first_start("cleanup") == 2.0
    assert run.ended == 3.0


def test_fail_fast_ignores_failures_allowed_by_continue_on_error() -> None:
    plan = plan_of(
        {"allowed": {"continue_on_error": True}, "long": {}, "next": {"needs": ["long"]}}
    )
    run = execute(plan, {"allowed": [fail(duration=1)], "long": [ok(3)]}, fail_fast=True)
    assert run.scheduler.cancelled is None
    assert run.status("allowed") is JobStatus.FAILED
    assert run.status("long") is JobStatus.SUCCEEDED
    assert run.status("next") is JobStatus.SUCCEEDED


def test_fail_fast_waits_for_the_retries_of_a_failing_job() -> None:
    # a failed attempt that will be retried is not a failure of the job yet
    plan = plan_of({"flaky": {"retries": 2, "retry_delay": 1}, "long": {}})
    run = execute(plan, {"flaky": [fail(), ok()], "long": [ok(10)]}, fail_fast=True)
    assert run.scheduler.cancelled is None
    assert run.status("flaky") is JobStatus.SUCCEEDED
    assert run.states["flaky"].attempts == 2
    assert run.status("long") is JobStatus.SUCCEEDED
    # when the retries run out, fail-fast does fire, after the last attempt
    run = execute(plan, {"flaky": [fail()], "long": [hang()]}, fail_fast=True)
    assert run.states["flaky"].attempts == 3
    assert run.scheduler.cancelled == "fail-fast: 'flaky' failed"
    assert run.status("long") is JobStatus.CANCELLED
    assert [t for t, *_ in run.cancels] == [run.executor.of("flaky")[-1].ended]


def test_cancel_stops_running_jobs_and_runs_cleanup_only() -> None:
    plan = plan_of(
        {
            "long": {},
            "queued": {"priority": -1},
            "after": {"needs": ["long"]},
            "cleanup": {"needs": ["long"], "if": "always()"},
            "on_cancel": {"needs": ["long"], "if": "cancelled()"},
            "on_success": {"needs": ["long"], "if": "success()"},
            "on_failure": {"needs": ["long"], "if": "failure()"},
        }
    )
    run = execute(plan, {"long": [hang()]}, concurrency=1, cancels=[Cancel(1.5)])
    assert run.scheduler.cancelled == "interrupted"
    assert run.status("long") is JobStatus.CANCELLED
    assert run.error("long") == "interrupted"
    assert run.executor.of("long")[0].ended == 1.5
    assert run.reason("queued") == "not started: interrupted"
    assert run.reason("after") == "not started: interrupted"
    assert run.reason("on_success") == "not started: interrupted"
    assert run.reason("on_failure") == "not started: interrupted"  # a cancel is no failure
    assert run.status("cleanup") is JobStatus.SUCCEEDED
    assert run.status("on_cancel") is JobStatus.SUCCEEDED
    assert run.executor.started() == ["long", "cleanup", "on_cancel"]


def test_a_second_hard_cancel_stops_cleanup_and_starts_nothing_more() -> None:
    plan = plan_of(
        {
            "long": {},
            "cleanup": {"needs": ["long"], "if": "always()"},
            "cleanup2": {"needs": ["cleanup"], "if": "always()"},
            "spare": {"needs": ["long"], "if": "always()", "priority": -1},
        }
    )
    run = execute(
        plan,
        {"long": [hang()], "cleanup": [hang()]},
        concurrency=1,
        cancels=[Cancel(1), Cancel(3, hard=True)],
    )
    assert run.executor.started() == ["long", "cleanup"]
    assert run.status("cleanup") is JobStatus.CANCELLED
    assert run.executor.of("cleanup")[0].ended == 3
    assert run.status("spare") is JobStatus.CANCELLED  # was queued behind cleanup
    assert run.reason("cleanup2") == "not started: interrupted"
    assert run.scheduler.hard_cancelled


def test_cancel_while_waiting_for_stagger_ends_the_run() -> None:
    plan = plan_of({f"j{i}": {} for i in range(3)})
    run = execute(plan, default=ok(1), stagger=10, cancels=[Cancel(4)])
    assert run.executor.started() == ["j0"]
    assert run.status("j0") is JobStatus.SUCCEEDED
    assert run.reason("j1") == run.reason("j2") == "not started: interrupted"
    assert run.ended == 4


def test_cancel_during_a_retry_backoff_ends_the_job_and_its_dependents() -> None:
    plan = plan_of(
        {
            "a": {"retries": 2, "retry_delay": 10},
            "b": {"needs": ["a"]},
            "cleanup": {"needs": ["a"], "if": "always()"},
        }
    )
    run = execute(plan, {"a": [fail(), ok()]}, cancels=[Cancel(3)])
    assert len(run.executor.of("a")) == 1  # the retry never ran
    assert run.status("a") is JobStatus.CANCELLED
    assert run.error("a") == "interrupted"
    assert run.rows.jobs["a"].status is JobStatus.CANCELLED
    assert run.reason("b") == "not started: interrupted"
    assert run.status("cleanup") is JobStatus.SUCCEEDED
    assert run.ended == 4  # stopped at 3, cleanup ran 1 s; the 10 s wait was cut short
    finished = [e for e in run.of(JobFinished) if isinstance(e, JobFinished) and e.job == "a"]
    assert finished[-1].status is JobStatus.CANCELLED


def test_fail_fast_during_another_jobs_backoff() -> None:
    plan = plan_of(
        {"slow_retry": {"retries": 3, "retry_delay": 8}, "boom": {}, "next": {"needs": ["boom"]}}
    )
    run = execute(plan, {"slow_retry": [fail(duration=1), ok()], "boom": [fail(duration=2)]})
    assert run.status("slow_retry") is JobStatus.SUCCEEDED  # without fail-fast: retried
    run = execute(
        plan, {"slow_retry": [fail(duration=1), ok()], "boom": [fail(duration=2)]}, fail_fast=True
    )
    assert run.scheduler.cancelled == "fail-fast: 'boom' failed"
    assert len(run.executor.of("slow_retry")) == 1
    assert run.status("slow_retry") is JobStatus.CANCELLED
    assert run.status("next") is JobStatus.CANCELLED
    assert run.reason("next") == "not started: fail-fast: 'boom' failed"
    assert run.ended == 2


def test_a_job_whose_needs_are_all_skipped_at_the_start_runs_once() -> None:
    # deciding `a` at the start skips it, which settles `b` on the spot: `b` must not be
    # decided (and queued, and run) a second time by the same start-up loop
    plan = plan_of(
        {
            "a": {"if": "cancelled()"},
            "b": {"needs": ["a"], "if": "always()"},
            "c": {"needs": ["b"]},
        }
    )
    run = execute(plan)
    assert run.reason("a") == "skipped: condition `cancelled()` is false"
    assert [(a.job, a.attempt) for a in run.executor.attempts] == [("b", 1)]
    assert run.status("b") is JobStatus.SUCCEEDED and run.states["b"].attempts == 1
    assert run.reason("c") == "skipped: a job upstream of 'b' did not succeed"


class BudgetAdmission:
    """Admits everything until `stop_after` jobs finished; a rate limit hint on demand."""

    def __init__(self, stop_after: int | None = None, hint: float | None = None) -> None:
        self.finished = 0
        self.stop_after = stop_after
        self.hint = hint

    @property
    def stopped(self) -> str | None:
        if self.stop_after is not None and self.finished >= self.stop_after:
            return "run budget exceeded"
        return None

    def admit(self, job: PlannedJob) -> str | None:
        return None

    def wait_hint(self, tool: str) -> float | None:
        return self.hint if self.finished else None

    def waiting_reason(self, tool: str) -> str | None:
        return None

    def take_kills(self) -> list[str]:
        return []

    def __call__(self, event: Event) -> None:  # on the bus: counts finished attempts
        if isinstance(event, JobFinished) and event.attempt > 0:
            self.finished += 1


def test_a_retry_asks_the_budget_first() -> None:
    plan = plan_of({"a": {"retries": 3}, "b": {"priority": -1}})
    run = execute(plan, {"a": [fail()]}, concurrency=1, admission=BudgetAdmission(stop_after=1))
    assert run.states["a"].attempts == 1 and run.status("a") is JobStatus.FAILED
    assert run.reason("b") == "not started: run budget exceeded"
    assert not run.sleep.calls


def test_a_retry_waits_out_a_rate_limit() -> None:
    plan = plan_of({"a": {"retries": 1, "retry_delay": 1}})
    run = execute(
        plan, {"a": [fail(kind=ErrorKind.RATE_LIMIT), ok()]}, admission=BudgetAdmission(hint=30)
    )
    assert run.sleep.delays == [30]
    assert run.executor.of("a")[1].started == 31


def test_a_run_with_nothing_to_do_after_skips_ends_at_once() -> None:
    plan = plan_of({"a": {}, "b": {"needs": ["a"]}, "c": {"needs": ["b"]}})
    run = execute(plan, {"a": [fail(duration=0)]})
    assert run.ended == 0
    assert [run.status(n) for n in "abc"] == [
        JobStatus.FAILED,
        JobStatus.SKIPPED,
        JobStatus.SKIPPED,
    ]


def test_deadlock_detector_catches_a_run_that_cannot_finish() -> None:
    from corral.testing import Deadlock

    async def never(loop: VirtualTimeLoop) -> None:
        await asyncio.Event().wait()

    with pytest.raises(Deadlock):
        run_virtual(never)


def test_virtual_loop_runs_timeouts_on_virtual_time() -> None:
    async def main(loop: VirtualTimeLoop) -> float:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 3600)
        await asyncio.sleep(0.5)
        return loop.time()

    assert run_virtual(main) == pytest.approx(3600.5)


def test_a_bug_in_a_job_task_stops_the_run_and_is_raised_as_itself() -> None:
    plan = plan_of({"a": {}, "long": {}, "b": {"needs": ["a"]}})

    class Bug(Exception):
        pass

    def prepare(job: PlannedJob, views: Mapping[str, JobView], attempt: int) -> JobRequest:
        if job.name == "b":
            raise Bug("not a CorralError: a bug in corral itself")
        return JobRequest(job.name, attempt, ("x",), None, {}, Path("/nonexistent"))

    async def main(loop: VirtualTimeLoop) -> FakeExecutor:
        executor = FakeExecutor({"a": [ok(1)], "long": [hang()]}, clock=loop.time)
        scheduler = Scheduler(plan, Settings(concurrency=4), executor, Bus(), prepare)
        with pytest.raises(Bug):
            await scheduler.run()
        return executor

    executor = run_virtual(main)
    # the hanging job was stopped (its task cancelled), not left running
    assert [a.job for a in executor.attempts if a.ended is None] == []
