"""Trigger semantics of `if:` as a table: every need outcome against every condition kind."""

from __future__ import annotations

import pytest

from corral.config.schema import FlowSpec
from corral.expressions import ExpressionSyntaxError
from corral.models import JobStatus, Usage
from corral.plan import JobView, Plan, RunScope, build_plan, compile_condition, decide

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
    # cancelled() asks whether the *run* was cancelled, as on GitHub (a need cancelled by
    # a matrix's fail-fast is not a cancelled run)
    "cancelled": (X, X, X, R, X, X),
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


def _settle(
    plan: Plan, states: dict[str, JobView], name: str, ran: JobStatus, cancelled: bool = False
) -> JobView:
    """Decide `name` as the scheduler does and record its view: `ran` if it runs."""
    decision = decide(plan.jobs[name], states, cancelled)
    status = ran if decision.run else JobStatus.SKIPPED
    states[name] = JobView(
        status,
        continue_on_error=plan.jobs[name].spec.continue_on_error,
        upstream_ok=decision.upstream_ok,
        upstream_failed=decision.upstream_failed,
    )
    return states[name]


def test_skip_propagates_two_levels_and_failure_sees_upstream() -> None:
    plan = _chain_plan()
    states: dict[str, JobView] = {}
    _settle(plan, states, "a", F)
    b = decide(plan.jobs["b"], states, False)
    assert (b.run, b.reason) == (False, "skipped: needs 'a' failed")
    _settle(plan, states, "b", S)
    c = decide(plan.jobs["c"], states, False)
    assert (c.run, c.reason) == (False, "skipped: needs 'b' was skipped")
    _settle(plan, states, "c", S)
    # failure() looks at every job upstream: a failed two levels up
    assert decide(plan.jobs["notify"], states, False).run
    assert decide(plan.jobs["cleanup"], states, False).run
    assert not decide(plan.jobs["on_cancel"], states, False).run


def test_cancelled_is_about_the_run_not_a_cancelled_job_upstream() -> None:
    plan = _chain_plan()
    states: dict[str, JobView] = {}
    _settle(plan, states, "a", C)
    _settle(plan, states, "b", S)
    _settle(plan, states, "c", S)
    assert states["b"].status is K and states["c"].status is K
    assert decide(plan.jobs["cleanup"], states, False).run
    assert not decide(plan.jobs["on_cancel"], states, False).run
    assert not decide(plan.jobs["notify"], states, False).run
    assert decide(plan.jobs["on_cancel"], states, True).run  # the run itself was cancelled


def test_success_is_judged_on_every_job_upstream_as_on_github() -> None:
    # a failed, b ran anyway (always) and succeeded: c is skipped, as GitHub skips it
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "a"},
                    "b": {"run": "b", "needs": ["a"], "if": "always()"},
                    "c": {"run": "c", "needs": ["b"]},
                    "d": {
                        "run": "d",
                        "needs": ["b"],
                        "if": "always() && needs.b.result == 'success'",
                    },
                    "e": {"run": "e", "needs": ["b"], "if": "needs.b.result == 'success'"},
                }
            }
        )
    )
    states: dict[str, JobView] = {}
    _settle(plan, states, "a", F)
    assert _settle(plan, states, "b", S).status is S
    c = decide(plan.jobs["c"], states, False)
    assert (c.run, c.reason) == (False, "skipped: a job upstream of 'b' did not succeed")
    assert decide(plan.jobs["d"], states, False).run  # the way to run after b regardless
    assert not decide(plan.jobs["e"], states, False).run  # implicit success() && ...


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("jobs.a.status == 'succeeded'", True),
        ("jobs.a.status == 'SUCCEEDED'", True),  # strings compare ignoring case
        ("jobs.a.cost_usd < 0.5", True),
        ("jobs.a.tokens.output > 1000", True),
        ("jobs.a.tokens.total == 1700", True),
        ("contains(jobs.a.result, 'pass')", True),
        ("jobs.a.exit_code == 0", True),
        ("jobs.a.outputs.verdict == 'ok'", True),
        ("jobs.a.outputs.score >= 7", True),  # an output is text; '8' >= 7 as numbers
        ("jobs.a.outputs.score == 8", True),
        ("jobs['a'].session_id == 's-1'", True),
        ("jobs.a.cost_usd > 1 || jobs.a.tokens.input > 100", False),
        ("${{ always() && startsWith(jobs.a.result, 'All') }}", True),
        ("needs.a.result == 'success' && needs.a.outputs.verdict == 'ok'", True),
        ("contains(needs.*.result, 'failure')", False),
        ("env.DEPLOY == 'yes' && flow.name == 'nightly' && flow.run_id == 'r-7'", True),
        ("JOBS.A.EXIT_CODE == 0 && Needs.a.Result == 'Success'", True),
    ],
)
def test_expressions_read_the_job_view(expression: str, expected: bool) -> None:
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {
                        "run": "a",
                        "outputs": {
                            "verdict": {"regex": "V=(\\w+)"},
                            "score": {"regex": "S=(\\d+)"},
                        },
                    },
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
        outputs={"verdict": "ok", "score": "8"},
    )
    scope = RunScope(env={"DEPLOY": "yes"}, flow_name="nightly", run_id="r-7")
    decision = decide(plan.jobs["b"], {"a": view}, False, scope)
    assert not decision.error, decision.reason
    assert decision.run is expected, decision.reason


@pytest.mark.parametrize(
    ("status", "continue_on_error", "result"),
    [
        (S, False, "success"),
        (F, False, "failure"),
        (T, False, "failure"),
        (F, True, "success"),  # as on GitHub: continue-on-error makes the result a success
        (T, True, "success"),
        (C, False, "cancelled"),
        (K, False, "skipped"),
    ],
)
def test_needs_result_uses_githubs_words(
    status: JobStatus, continue_on_error: bool, result: str
) -> None:
    plan = _plan(f"always() && needs.a.result == '{result}'")
    view = JobView(status, continue_on_error=continue_on_error)
    assert decide(plan.jobs["b"], {"a": view}, False).run


def test_needs_of_a_matrix_job_is_one_entry_with_an_aggregate_result() -> None:
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "m": {
                        "run": "m",
                        "matrix": {"n": [1, 2, 3]},
                        "outputs": {"v": {"regex": "v=(\\d)"}},
                        "continue_on_error": True,
                    },
                    "after": {"run": "x", "needs": ["m"], "if": "always()"},
                }
            }
        )
    )
    job = plan.jobs["after"]
    assert job.need_groups == (("m", ("m-1", "m-2", "m-3")),)

    def result(*views: JobView) -> str:
        from corral.plan.contexts import build_contexts

        states = dict(zip(["m-1", "m-2", "m-3"], views, strict=True))
        needs = build_contexts(job, states, RunScope(), ["needs"])["needs"]
        return f"{needs['m']['result']}/{needs['m']['outputs'].get('v', '')}"

    ok, bad = JobView(S, outputs={"v": "1"}), JobView(F, outputs={"v": "2"})
    empty = JobView(S, outputs={"v": ""})
    assert result(ok, ok, empty) == "success/1"  # an empty value does not win
    assert result(ok, JobView(F, outputs={"v": "2"}, continue_on_error=False), ok) == "failure/1"
    assert result(ok, JobView(C), bad) == "failure/2"  # failure beats cancelled
    assert result(ok, JobView(C), ok) == "cancelled/1"
    assert result(JobView(K), JobView(K), JobView(K)) == "skipped/"


def test_an_expression_that_cannot_be_evaluated_is_an_error_not_a_skip() -> None:
    plan = _plan("always() && fromJSON(jobs.a.result).ok")
    decision = decide(plan.jobs["b"], {"a": JobView(S, result="not json")}, False)
    assert decision.error
    assert not decision.run
    assert decision.reason.startswith(
        "condition `always() && fromJSON(jobs.a.result).ok` could not be evaluated: "
        "Error parsing fromJson"
    )
    # GitHub's coercion: an unknown cost is null, and null < 0.5 (as 0 < 0.5)
    assert decide(_plan("jobs.a.cost_usd < 0.5").jobs["b"], {"a": JobView(S)}, False).run


def test_decide_refuses_to_run_before_needs_finish() -> None:
    plan = _plan(None)
    with pytest.raises(ValueError, match="before its need 'a' finished"):
        decide(plan.jobs["b"], {"a": JobView(JobStatus.RUNNING)}, False)
    with pytest.raises(ValueError):
        decide(plan.jobs["b"], {}, False)


def test_compile_condition_flags() -> None:
    assert compile_condition("jobs.a.exit_code == 0").implicit_success
    assert not compile_condition("always() && jobs.a.exit_code == 0").implicit_success
    assert not compile_condition("ALWAYS()").implicit_success  # names ignore case
    assert compile_condition("${{ failure() }}").looks_upstream
    assert compile_condition("${{ failure() }}").expression == "failure()"
    assert compile_condition("{{ always() }}").expression == "always()"  # the old wrapper
    assert compile_condition("  ").is_default  # empty, as on GitHub: success()
    assert compile_condition("${{ needs.a.result }}").roots == {"needs"}


@pytest.mark.parametrize(
    ("text", "offset", "hint"),
    [
        ("${{ always() }} && ${{ failure() }}", 0, "an `if:` is one expression"),
        ("${{ }}", 3, "write a condition"),
        ("always() and failure()", 9, "write `&&` for `and`"),
        ("${{ jobs.a.status === 'x' }}", 20, "`===` is JavaScript"),
    ],
)
def test_bad_conditions_are_refused_with_a_position(text: str, offset: int, hint: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_condition(text)
    assert caught.value.offset == offset
    assert caught.value.hint is not None and hint in caught.value.hint
