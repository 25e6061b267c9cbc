"""build_plan: expansion, resolution, levels, and every validation problem at once."""

from __future__ import annotations

from typing import Any

import pytest

from corral.config.schema import FlowSpec
from corral.errors import FlowError
from corral.plan import Plan, build_plan


def _flow(jobs: dict[str, Any], **extra: Any) -> FlowSpec:
    return FlowSpec.model_validate({"jobs": jobs, **extra})


def _problems(jobs: dict[str, Any], **extra: Any) -> list[str]:
    with pytest.raises(FlowError) as caught:
        build_plan(_flow(jobs, **extra), source="flow.yaml")
    return [str(p) for p in caught.value.problems]


def test_levels_and_order() -> None:
    plan = build_plan(
        _flow(
            {
                "report": {"run": "r", "needs": ["tests", "lint"]},
                "tests": {"run": "t", "needs": "analyze"},
                "analyze": {"run": "a"},
                "lint": {"run": "l"},
            }
        )
    )
    assert list(plan.jobs) == ["report", "tests", "analyze", "lint"]  # file order
    assert plan.levels == [["analyze", "lint"], ["tests"], ["report"]]
    assert plan.order == ["analyze", "lint", "tests", "report"]
    assert plan.needs("report") == ("tests", "lint")
    assert plan.dependents("analyze") == ("tests",)
    assert plan.dependents("report") == ()
    assert plan.transitive_needs("report") == {"tests", "lint", "analyze"}
    assert plan.transitive_dependents("analyze") == {"tests", "report"}
    with pytest.raises(KeyError):
        plan.dependents("nope")


def test_matrix_expands_with_predictable_names() -> None:
    plan = build_plan(
        _flow(
            {
                "review": {
                    "prompt": "Review {{ matrix.file }} with {{ matrix.model }}",
                    "matrix": {"model": ["a", "b"], "file": ["x.py", "src/y.py"]},
                },
                "summary": {"run": "s", "needs": ["review"], "priority": 2},
            }
        )
    )
    names = ["review-a-x.py", "review-a-src_y.py", "review-b-x.py", "review-b-src_y.py"]
    assert list(plan.jobs) == [*names, "summary"]
    assert plan.jobs["summary"].needs == tuple(names)  # a need on a matrix job means all
    job = plan.jobs["review-b-src_y.py"]
    assert job.group == "review"
    assert job.matrix == {"model": "b", "file": "src/y.py"}
    assert [plan.jobs[n].index for n in plan.jobs] == [0, 1, 2, 3, 4]
    assert plan.jobs["summary"].priority == 2
    assert plan.jobs["summary"].matrix is None


def test_matrix_names_stay_unique() -> None:
    plan = build_plan(
        _flow({"r": {"run": "x", "matrix": {"v": ["a/b", "a_b", {"k": 1}]}}, "r-c": {"run": "y"}})
    )
    assert list(plan.jobs) == ["r-a_b-1", "r-a_b-2", "r-3", "r-c"]
    clash = build_plan(_flow({"r": {"run": "x", "matrix": {"v": ["c", "d"]}}, "r-c": {"run": "y"}}))
    assert list(clash.jobs) == ["r-c-1", "r-d", "r-c"]


def test_need_on_one_expansion() -> None:
    plan = build_plan(
        _flow({"r": {"run": "x", "matrix": {"v": [1, 2]}}, "s": {"run": "s", "needs": ["r-2"]}})
    )
    assert plan.needs("s") == ("r-2",)


def test_unknown_need_suggests_a_name() -> None:
    assert _problems({"build": {"run": "b"}, "test": {"run": "t", "needs": ["biuld"]}}) == [
        "flow.yaml: jobs.test.needs[0]: needs 'biuld', which is not a job (did you mean 'build'?)"
    ]


def test_self_dependency() -> None:
    assert _problems({"a": {"run": "a", "needs": ["a"]}}) == [
        "flow.yaml: jobs.a.needs[0]: 'a' needs itself"
    ]
    assert _problems({"m": {"run": "a", "matrix": {"k": [1, 2]}, "needs": ["m"]}}) == [
        "flow.yaml: jobs.m.needs[0]: 'm' needs itself"
    ]


def test_cycles_are_named_each_once() -> None:
    problems = _problems(
        {
            "a": {"run": "a", "needs": ["x", "b"]},
            "b": {"run": "b", "needs": ["c"]},
            "c": {"run": "c", "needs": ["a"]},
            "x": {"run": "x"},
            "p": {"run": "p", "needs": ["q"]},
            "q": {"run": "q", "needs": ["p"]},
        }
    )
    assert problems == [
        "flow.yaml: jobs.a.needs[1]: needs form a cycle: a -> b -> c -> a",
        "flow.yaml: jobs.p.needs[0]: needs form a cycle: p -> q -> p",
    ]


def test_bad_if_syntax_reports_job_and_column() -> None:
    problems = _problems(
        {
            "a": {"run": "a"},
            "b": {"run": "b", "needs": ["a"], "if": "${{ jobs.a.status == = 'x' }}"},
        }
    )
    assert problems == [
        "flow.yaml: jobs.b.if: invalid expression `${{ jobs.a.status == = 'x' }}`: "
        "Unexpected symbol: '=' at position 22; compare with `==`; a single `=` is not an "
        "operator"
    ]
    assert _problems({"b": {"run": "b", "if": "always() &&"}}) == [
        "flow.yaml: jobs.b.if: invalid expression `always() &&`: "
        "Unexpected end of expression: '&&' at position 10"
    ]
    assert _problems({"b": {"run": "b", "if": "always() and failure()"}}) == [
        "flow.yaml: jobs.b.if: invalid expression `always() and failure()`: "
        "Unexpected symbol: 'and' at position 10; write `&&` for `and`"
    ]


def test_template_reading_a_job_that_is_not_a_need() -> None:
    problems = _problems(
        {
            "lint": {"run": "l"},
            "tests": {"run": "t"},
            "report": {
                "needs": ["tests"],
                "prompt": "{{ jobs.tests.result }} {{ jobs.lint.result }}",
            },
        }
    )
    assert problems == [
        "flow.yaml: jobs.report.prompt: jobs.lint.result: 'lint' is not among the needs of "
        "'report' (add it to needs)"
    ]


def test_transitive_needs_may_be_read() -> None:
    plan = build_plan(
        _flow(
            {
                "a": {"run": "a"},
                "b": {"run": "b", "needs": ["a"]},
                "c": {
                    "run": "echo {{ jobs.a.exit_code }}",
                    "needs": ["b"],
                    "env": {"X": "{{ jobs['a'].result }}"},
                },
            }
        )
    )
    assert plan.jobs["c"].reads == {"a"}
    assert plan.jobs["c"].readable() == {"a", "b"}


def test_reference_checks() -> None:
    problems = _problems(
        {
            "my-build": {"run": "b", "outputs": {"version": {"regex": "v(\\d+)"}}},
            "m": {"run": "x", "matrix": {"model": ["a"]}},
            "use": {
                "needs": ["my-build", "m"],
                "prompt": (
                    "{{ jobs.my-build.result }} {{ jobs['my-build'].outputs.verison }} "
                    "{{ jobs['my-build'].stauts }} {{ jobs['my-build'].tokens.outptu }} "
                    "{{ jobs.m.result }} {{ matrix.model }} {{ run.idd }} {{ env.HOME }}"
                ),
                "cwd": "{{ matrix.mode }}",
            },
            "mm": {"run": "{{ matrix.modle }}", "matrix": {"model": ["a"]}},
            "cond": {
                "run": "x",
                "needs": ["m"],
                "if": "jobs.nope.status == 'x' && env.X && needs.m.stauts && needs.mm.result "
                "&& JOBS.M.result && flow.nam",
            },
            "gh": {
                "run": "x ${{ jobs.my-build.outputs.verison }} "
                "${{ needs.MY-BUILD.outputs.version }}",
                "needs": ["my-build"],
                "prompt": "{{ needs.x.result }}",
            },
        }
    )
    assert problems == [
        "flow.yaml: jobs.use.prompt: jobs.my: no job named 'my' (a name with '-' or '.' is read as "
        "jobs['my-build'])",
        "flow.yaml: jobs.use.prompt: jobs.my-build.outputs.verison: 'my-build' declares no output "
        "'verison' (did you mean 'version'?)",
        "flow.yaml: jobs.use.prompt: jobs.my-build.stauts: a job has no 'stauts' (did you mean "
        "'status'?)",
        "flow.yaml: jobs.use.prompt: jobs.my-build.tokens.outptu: tokens has no 'outptu' (did you "
        "mean 'output'?)",
        "flow.yaml: jobs.use.prompt: jobs.m.result: 'm' is a matrix job; read one expansion, such "
        "as jobs['m-a']",
        "flow.yaml: jobs.use.prompt: matrix.model: job 'use' has no matrix",
        "flow.yaml: jobs.use.prompt: run.idd: run has only id and name (did you mean 'id'?)",
        "flow.yaml: jobs.use.cwd: matrix.mode: job 'use' has no matrix",
        "flow.yaml: jobs.mm.run: matrix.modle: unknown matrix key 'modle' (did you mean 'model'?)",
        "flow.yaml: jobs.cond.if: jobs.nope.status: no job named 'nope'",
        "flow.yaml: jobs.cond.if: needs.m.stauts: needs.m has only result and outputs "
        "(corral's other fields are under jobs.m)",
        "flow.yaml: jobs.cond.if: needs.mm.result: 'mm' is not a direct need of 'cond' (add it "
        "to needs, or read jobs.NAME for a job further up)",
        "flow.yaml: jobs.cond.if: JOBS.M.result: 'm' is a matrix job; read one expansion, such "
        "as jobs['m-a'], or needs.m for all of them",
        "flow.yaml: jobs.cond.if: flow.nam: flow has only name and run_id (did you mean 'name'?)",
        "flow.yaml: jobs.gh.prompt: unknown name 'needs' in template (`needs` is read by `${{ }}` "
        "expressions: write ${{ needs... }}); templates read jobs, matrix, env and run",
        "flow.yaml: jobs.gh.run: jobs.my-build.outputs.verison: 'my-build' declares no output "
        "'verison' (did you mean 'version'?)",
    ]


def test_every_problem_at_once_with_locations() -> None:
    where = {
        ("jobs", "a", "needs", 0): (3, 14),
        ("jobs", "c", "if"): (9, 9),
        ("jobs", "d"): (12, 3),
    }
    flow = _flow(
        {
            "a": {"run": "a", "needs": ["zz"]},
            "b": {"run": "b", "needs": ["b"]},
            "c": {"run": "c", "if": "==", "retry_on": ["auth", "ratelimit", 300]},
            "d": {
                "prompt": "{{ oops }}",
                "outputs": {"o": {"regex": "(", "file": "x"}, "j": {"json_path": "a..b"}},
            },
            "e": {"run": "{% if %}", "matrix": {"k": []}},
        }
    )
    with pytest.raises(FlowError) as caught:
        build_plan(flow, source="f.yaml", locate=where.get)
    lines = caught.value.lines()
    assert lines == [
        "f.yaml:3:14: jobs.a.needs[0]: needs 'zz', which is not a job",
        "f.yaml: jobs.b.needs[0]: 'b' needs itself",
        "f.yaml:9:9: jobs.c.if: invalid expression `==`: Unexpected symbol: '==' at position 1",
        "f.yaml: jobs.c.retry_on[0]: 'auth' is never retried",
        "f.yaml: jobs.c.retry_on[1]: unknown failure kind 'ratelimit'; use api, exit, idle, "
        "rate_limit, timeout or an exit code (did you mean 'rate_limit'?)",
        "f.yaml: jobs.c.retry_on[2]: exit code 300 is not in 0-255",
        "f.yaml:12:3: jobs.d.outputs.o: give exactly one of regex, json_path or file",
        "f.yaml:12:3: jobs.d.outputs.j: invalid JSON path 'a..b' at '..b': use a.b[0].c",
        "f.yaml:12:3: jobs.d.prompt: unknown name 'oops' in template; templates read jobs, "
        "matrix, env and run",
        "f.yaml: jobs.e.matrix.k: matrix key 'k' has no values",
        "f.yaml: jobs.e.run: invalid template at line 1: "
        "Expected an expression, got 'end of statement block'",
        "11 problems; nothing was run",
    ]


def test_defaults_fill_unset_fields_only() -> None:
    flow = _flow(
        {"a": {"run": "a"}, "b": {"run": "b", "retries": 0, "if": "always()"}},
        defaults={"retries": 2, "timeout": "5m", "if": "success()", "needs": ["x"]},
    )
    plan = build_plan(flow)
    assert plan.jobs["a"].retry.retries == 2
    assert plan.jobs["a"].spec.timeout == 300
    assert plan.jobs["a"].condition.expression == "success()"
    assert plan.jobs["a"].needs == ()  # needs is never a default
    assert plan.jobs["b"].retry.retries == 0
    assert plan.jobs["b"].condition.expression == "always()"


def test_bad_defaults_are_reported_once() -> None:
    assert _problems(
        {"a": {"run": "a"}, "b": {"run": "b"}}, defaults={"timeout": "soon", "retires": 1}
    ) == [
        "flow.yaml: defaults.retires: unknown job field (did you mean 'retries'?)",
        "flow.yaml: defaults.timeout: Value error, invalid duration 'soon': "
        "use 90, 90s, 5m, 1h30m, 1.5h or 7d",
    ]


def test_plan_is_frozen() -> None:
    plan: Plan = build_plan(_flow({"a": {"run": "a"}}))
    with pytest.raises(AttributeError):
        plan.name = "x"  # type: ignore[misc]  # the point of the test
    with pytest.raises(TypeError):
        plan.jobs["b"] = plan.jobs["a"]  # type: ignore[index]  # a read-only mapping


@pytest.mark.parametrize(
    ("job", "defaults", "tool"),
    [
        ({"prompt": "p"}, {}, "claude"),  # a prompt alone runs the default agent
        ({"prompt": "p", "tool": "codex"}, {}, "codex"),
        ({"run": "ls"}, {}, None),  # a command
        ({"run": "ls"}, {"tool": "codex"}, None),  # whatever defaults.tool says
        ({"run": "ls", "prompt": "p"}, {}, None),
        ({"run": "ls", "tool": "generic"}, {}, None),
        ({"extra_args": ["ls"], "tool": "generic"}, {}, None),
        ({"prompt": "p"}, {"tool": "gemini"}, "gemini"),
        ({"run": "ls", "tool": "codex"}, {"tool": "gemini"}, "codex"),  # written on the job
    ],
)
def test_the_tool_is_decided_once_at_plan_time(
    job: dict[str, Any], defaults: dict[str, Any], tool: str | None
) -> None:
    plan = build_plan(_flow({"j": job}, defaults=defaults))
    planned = plan.jobs["j"]
    assert planned.tool == tool
    assert planned.is_agent is (tool is not None)
    assert planned.adapter == (tool or "generic")


def test_budgets_become_core_values() -> None:
    from decimal import Decimal

    from corral.models import BudgetAction, BudgetLimits

    plan = build_plan(
        _flow(
            {"a": {"run": "ls", "budget": {"usd": "1.5", "on_exceed": "kill"}}, "b": {"run": "ls"}},
            budget={"tokens": 10, "on_exceed": "warn"},
        )
    )
    assert plan.budget == BudgetLimits(None, 10, BudgetAction.WARN)
    assert plan.job_budgets() == {
        "a": BudgetLimits(Decimal("1.5"), None, BudgetAction.KILL),
        "b": None,
    }
