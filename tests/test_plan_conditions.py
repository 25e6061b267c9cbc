"""Trigger semantics of `if:` as a table: every need outcome against every condition kind."""

from __future__ import annotations

import pytest

from corral.config.schema import FlowSpec
from corral.models import JobStatus, Usage
from corral.plan import JobView, Plan, build_plan, compile_condition, decide

S, F, T, C, K = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.TIMED_OUT,
    JobStatus.CANCELLED,
    JobStatus.SKIPPED,
)

# need outcome -> the view of job `a` that `b` needs
OUTCOMES = {
    "succeeded": JobView(S, result="ok", exit_code=0),
    "failed": JobView(F, exit_code=1),
    "failed+coe": JobView(F, exit_code=1, continue_on_error=True),
    "timed_out": JobView(T),
    "cancelled": JobView(C),
    "skipped": JobView(K),
}
CONDITIONS = {
    "default": None,
    "success": "success()",
    "failure": "failure()",
    "always": "always()",
    "cancelled": "cancelled()",
    # no status function: GitHub's implicit `success() and (...)`
    "expr": "jobs.a.status != 'succeeded'",
}
R, X = True, False  # run, skip
TABLE = {
    #              default success failure always cancelled expr
    "succeeded": (R, R, X, R, X, X),
    "failed": (X, X, R, R, X, X),
    "failed+coe": (R, R, X, R, X, R),
    "timed_out": (X, X, R, R, X, X),
    "cancelled": (X, X, X, R, R, X),
    "skipped": (X, X, X, R, X, X),
}
# the same after the run was cancelled: only always() and cancelled() still start jobs
TABLE_RUN_CANCELLED = {
    "succeeded": (X, X, X, R, R, X),
    "failed": (X, X, R, R, R, X),
    "failed+coe": (X, X, X, R, R, X),
    "timed_out": (X, X, R, R, R, X),
    "cancelled": (X, X, X, R, R, X),
    "skipped": (X, X, X, R, R, X),
}


def _plan(condition: str | None, coe: bool = False) -> Plan:
    job_b: dict[str, object] = {"run": "b", "needs": ["a"]}
    if condition is not None:
        job_b["if"] = condition
    return build_plan(
        FlowSpec.model_validate({"jobs": {"a": {"run": "a", "continue_on_error": coe}, "b": job_b}})
    )


CASES = [
    (outcome, kind, cancelled, row[i])
    for cancelled, table in ((False, TABLE), (True, TABLE_RUN_CANCELLED))
    for outcome, row in table.items()
    for i, kind in enumerate(CONDITIONS)
]


@pytest.mark.parametrize(("outcome", "kind", "run_cancelled", "expected"), CASES)
def test_trigger_table(outcome: str, kind: str, run_cancelled: bool, expected: bool) -> None:
    plan = _plan(CONDITIONS[kind])
    decision = decide(plan.jobs["b"], {"a": OUTCOMES[outcome]}, run_cancelled)
    assert decision.run is expected, decision.reason
    assert not decision.error
    if not expected:
        assert decision.reason.startswith("skipped: ")


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("failed", "skipped: needs 'a' failed"),
        ("timed_out", "skipped: needs 'a' timed out"),
        ("cancelled", "skipped: needs 'a' was cancelled"),
        ("skipped", "skipped: needs 'a' was skipped"),
    ],
)
def test_skip_reasons_name_the_need(outcome: str, reason: str) -> None:
    assert decide(_plan(None).jobs["b"], {"a": OUTCOMES[outcome]}, False).reason == reason
    # an expression without a status function is blocked by the need first, like GitHub
    assert (
        decide(_plan(CONDITIONS["expr"]).jobs["b"], {"a": OUTCOMES[outcome]}, False).reason
        == reason
    )


def test_false_condition_reason_quotes_the_expression() -> None:
    plan = _plan("${{ jobs.a.exit_code == 1 }}")
    decision = decide(plan.jobs["b"], {"a": OUTCOMES["succeeded"]}, False)
    assert decision == decide(plan.jobs["b"], {"a": OUTCOMES["succeeded"]}, False)
    assert decision.reason == "skipped: condition `jobs.a.exit_code == 1` is false"
    assert decide(plan.jobs["b"], {"a": OUTCOMES["succeeded"]}, True).reason == (
        "skipped: the run was cancelled"
    )


def test_run_reasons() -> None:
    assert (
        decide(_plan(None).jobs["b"], {"a": OUTCOMES["succeeded"]}, False).reason
        == "needs succeeded"
    )
    assert decide(_plan("always()").jobs["b"], {"a": OUTCOMES["failed"]}, False).reason == (
        "condition `always()` is true"
    )
    lone = build_plan(FlowSpec.model_validate({"jobs": {"a": {"run": "a"}}}))
    assert decide(lone.jobs["a"], {}, False) == decide(lone.jobs["a"], {}, False)
    assert decide(lone.jobs["a"], {}, False).reason == "no needs"
    assert not decide(lone.jobs["a"], {}, True).run


def _chain_plan() -> Plan:
    return build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "a"},
                    "b": {"run": "b", "needs": ["a"]},
                    "c": {"run": "c", "needs": ["b"]},
                    "notify": {"run": "n", "needs": ["c"], "if": "failure()"},
                    "cleanup": {"run": "x", "needs": ["c"], "if": "always()"},
                    "on_cancel": {"run": "x", "needs": ["c"], "if": "cancelled()"},
                }
            }
        )
    )


def test_skip_propagates_two_levels_and_failure_sees_upstream() -> None:
    plan = _chain_plan()
    states = {"a": JobView(F, exit_code=2)}
    b = decide(plan.jobs["b"], states, False)
    assert (b.run, b.reason) == (False, "skipped: needs 'a' failed")
    states["b"] = JobView(K)
    c = decide(plan.jobs["c"], states, False)
    assert (c.run, c.reason) == (False, "skipped: needs 'b' was skipped")
    states["c"] = JobView(K)
    # failure() looks at every job upstream: a failed two levels up
    assert decide(plan.jobs["notify"], states, False).run
    assert decide(plan.jobs["cleanup"], states, False).run
    assert not decide(plan.jobs["on_cancel"], states, False).run


def test_always_and_cancelled_after_a_cancelled_need_upstream() -> None:
    plan = _chain_plan()
    states = {"a": JobView(C), "b": JobView(K), "c": JobView(K)}
    assert not decide(plan.jobs["b"], states, False).run
    assert decide(plan.jobs["cleanup"], states, False).run
    assert decide(plan.jobs["on_cancel"], states, False).run
    assert not decide(plan.jobs["notify"], states, False).run


def test_success_is_judged_on_direct_needs() -> None:
    # a failed, b ran anyway (always) and succeeded: c trusts b (GitHub would skip c)
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "a"},
                    "b": {"run": "b", "needs": ["a"], "if": "always()"},
                    "c": {"run": "c", "needs": ["b"]},
                }
            }
        )
    )
    assert decide(plan.jobs["c"], {"a": JobView(F), "b": JobView(S)}, False).run


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("jobs.a.status == 'succeeded'", True),
        ("jobs.a.cost_usd < 0.5", True),
        ("jobs.a.tokens.output > 1000", True),
        ("jobs.a.tokens.total == 1700", True),
        ("'PASS' in jobs.a.result", True),
        ("jobs.a.exit_code == 0", True),
        ("jobs.a.outputs.verdict == 'ok'", True),
        ("jobs['a'].session_id == 's-1'", True),
        ("jobs.a.cost_usd > 1 or jobs.a.tokens.input > 100", False),
        ("${{ always() and jobs.a.result.startswith('All') }}", True),
    ],
)
def test_expressions_read_the_job_view(expression: str, expected: bool) -> None:
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "a", "outputs": {"verdict": {"regex": "V=(\\w+)"}}},
                    "b": {"run": "b", "needs": ["a"], "if": expression},
                }
            }
        )
    )
    view = JobView(
        S,
        result="All tests PASS",
        exit_code=0,
        session_id="s-1",
        usage=Usage(input_tokens=100, output_tokens=1500, cache_read_tokens=100),
        cost_usd=0.25,
        outputs={"verdict": "ok"},
    )
    assert decide(plan.jobs["b"], {"a": view}, False).run is expected


def test_an_expression_that_cannot_be_evaluated_is_an_error_not_a_skip() -> None:
    plan = _plan("jobs.a.cost_usd < 0.5")
    decision = decide(plan.jobs["b"], {"a": JobView(S)}, False)  # cost unknown: None < 0.5
    assert decision.error
    assert not decision.run
    assert "could not be evaluated" in decision.reason


def test_decide_refuses_to_run_before_needs_finish() -> None:
    plan = _plan(None)
    with pytest.raises(ValueError, match="before its need 'a' finished"):
        decide(plan.jobs["b"], {"a": JobView(JobStatus.RUNNING)}, False)
    with pytest.raises(ValueError):
        decide(plan.jobs["b"], {}, False)


def test_compile_condition_flags() -> None:
    assert compile_condition("jobs.a.exit_code == 0").implicit_success
    assert not compile_condition("always() and jobs.a.exit_code == 0").implicit_success
    assert compile_condition("${{ failure() }}").looks_upstream
    assert compile_condition("${{ failure() }}").expression == "failure()"
