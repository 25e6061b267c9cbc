"""select(), the ready order, max spend, and the export formats (tree, Mermaid, DOT, JSON)."""

from __future__ import annotations

import io
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import corral.plan
from corral.config.schema import BudgetSpec, FlowSpec
from corral.errors import UsageError
from corral.plan import (
    Plan,
    ReadyQueue,
    build_plan,
    max_spend,
    render_text,
    render_tree,
    select,
    to_dot,
    to_json,
    to_mermaid,
)
from live_screens import Terminal

FLOW: dict[str, Any] = {
    "name": "review",
    "budget": {"usd": "5.00"},
    "jobs": {
        "analyze": {
            "prompt": "/analyze",
            "tool": "claude",
            "model": "sonnet",
            "budget": {"usd": "1.50"},
        },
        "review": {
            "prompt": "Review {{ matrix.file }}",
            "tool": "codex",
            "matrix": {"file": ["a.py", "b.py"]},
            "needs": ["analyze"],
            "budget": {"usd": 1},
        },
        "lint": {"run": "ruff check .", "retries": 2, "priority": 5, "budget": {"usd": "0"}},
        "report": {
            "needs": ["review", "lint"],
            "if": "always()",
            "run": ["echo", "done"],
            "budget": {"usd": "0.25", "tokens": 1000},
        },
    },
}


def _plan(**changes: Any) -> Plan:
    return build_plan(FlowSpec.model_validate({**FLOW, **changes}))


def test_public_api() -> None:
    public = {
        name
        for name, value in vars(corral.plan).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    # with the names loaded on first use (matrices, outputs, drawings), each what it names
    lazy = set(corral.plan._LAZY)
    assert set(corral.plan.__all__) == public | lazy
    for name in corral.plan.__all__:
        value = getattr(corral.plan, name)
        assert not isinstance(value, types.ModuleType), name
        assert getattr(corral.plan, name) is value  # the same object once loaded


def test_select_only_and_from() -> None:
    plan = _plan()
    only = select(plan, only=["review-a.py"])
    assert list(only.jobs) == ["analyze", "review-a.py"]
    assert only.external_needs == frozenset()
    down = select(plan, from_=["review"])  # a matrix job means all of its expansions
    assert list(down.jobs) == ["review-a.py", "review-b.py", "report"]
    assert down.external_needs == {"analyze", "lint"}
    assert down.jobs["report"].needs == ("review-a.py", "review-b.py")
    assert down.jobs["report"].external_needs == ("lint",)
    assert down.levels == [["review-a.py", "review-b.py"], ["report"]]
    between = select(plan, from_=["analyze"], only=["report"])
    assert list(between.jobs) == ["analyze", "review-a.py", "review-b.py", "report"]
    assert between.external_needs == {"lint"}
    assert select(plan) is plan


def test_select_unknown_name_suggests() -> None:
    with pytest.raises(UsageError, match=r"--only reveiw: no such job \(did you mean 'review'\?\)"):
        select(_plan(), only=["reveiw"])
    with pytest.raises(UsageError, match="--from"):
        select(_plan(), from_=["zzz"])


def test_ready_queue_priority_then_plan_order() -> None:
    plan = _plan()
    names = ["report", "review-b.py", "analyze", "lint"]
    queue = ReadyQueue(plan.jobs[n] for n in names)
    assert [queue.pop() for _ in range(len(queue))] == ["lint", "analyze", "review-b.py", "report"]
    assert not queue
    queue = ReadyQueue(plan.jobs[n] for n in names)
    assert queue.drain() == ["lint", "analyze", "review-b.py", "report"]
    assert not queue


def _max_spend(plan: Plan) -> Decimal | None:
    return max_spend(plan.budget, plan.job_budgets())


def test_max_spend() -> None:
    assert _max_spend(_plan()) == Decimal("3.75")  # 1.50 + 1 + 1 + 0 + 0.25, under the run's 5
    assert _max_spend(_plan(budget={"usd": 2})) == Decimal(2)
    jobs = {**FLOW["jobs"], "free": {"run": "x"}}
    assert _max_spend(_plan(jobs=jobs)) == Decimal("5.00")  # one job unbounded: the run cap
    assert _max_spend(_plan(jobs=jobs, budget=None)) is None
    assert _max_spend(_plan(jobs=jobs, budget={"usd": 3, "on_exceed": "warn"})) is None


def test_render_tree_text() -> None:
    assert render_text(_plan(), width=140) == (
        "flow review · 5 jobs · 3 levels · budget $5.00 (stop) · max spend $3.75\n"
        "├── level 1 · 2 in parallel\n"
        "│   ├── analyze  claude · sonnet  budget $1.50 (stop)\n"
        "│   └── lint  run: ruff check .  retries 2 · budget $0.00 (stop) · priority 5\n"
        "├── level 2 · 2 in parallel\n"
        "│   ├── review-a.py  codex  needs analyze · budget $1.00 (stop)\n"
        "│   └── review-b.py  codex  needs analyze · budget $1.00 (stop)\n"
        "└── level 3\n"
        "    └── report  run: echo done  needs review×2, lint · if always() · "
        "budget $0.25 / 1,000 tokens (stop)\n"
    )


def test_a_flow_with_no_agent_job_is_not_unbounded() -> None:
    """Commands call no model: the headline says so, not "max spend unbounded"."""
    plan = _plan(jobs={"lint": {"run": "ruff check ."}}, budget=None)
    assert render_text(plan).splitlines()[0] == "flow review · 1 job · 1 level · no agent jobs"


def test_mermaid() -> None:
    plan = select(_plan(), from_=["review"])
    assert to_mermaid(plan) == (
        "flowchart TD\n"
        '  j_analyze(["analyze (done)"])\n'
        '  j_lint(["lint (done)"])\n'
        '  subgraph g_review["review"]\n'
        '    j_review_a_py["review-a.py"]\n'
        '    j_review_b_py["review-b.py"]\n'
        "  end\n"
        '  j_report["report<br/>if always()"]\n'
        "  j_analyze -.-> j_review_a_py\n"
        "  j_analyze -.-> j_review_b_py\n"
        "  j_review_a_py --> j_report\n"
        "  j_review_b_py --> j_report\n"
        "  j_lint -.-> j_report\n"
    )


def test_mermaid_escapes_labels_and_keeps_ids_unique() -> None:
    flow = FlowSpec.model_validate(
        {
            "jobs": {
                "a.b": {"run": "x"},
                "a-b": {
                    "run": "y",
                    "needs": ["a.b"],
                    "if": "jobs['a.b'].cost_usd > 0.5 && '\"#\"' != '<'",
                },
            }
        }
    )
    text = to_mermaid(build_plan(flow))
    assert 'j_a_b["a.b"]' in text
    label = "a-b<br/>if jobs['a.b'].cost_usd #gt; 0.5 && '#quot;#35;#quot;' != '#lt;'"
    assert f'j_a_b_2["{label}"]' in text
    assert "j_a_b --> j_a_b_2" in text


def test_dot() -> None:
    flow = FlowSpec.model_validate(
        {
            "jobs": {
                "a": {"run": "x"},
                "b": {"run": "y", "needs": ["a"], "if": "jobs.a.result == '\"q\"'"},
            }
        }
    )
    assert to_dot(build_plan(flow)) == (
        'digraph "flow" {\n'
        "  rankdir=TB;\n"
        "  node [shape=box];\n"
        '  "a" [label="a"];\n'
        '  "b" [label="b\\nif jobs.a.result == \'\\"q\\"\'"];\n'
        '  "a" -> "b";\n'
        "}\n"
    )
    assert 'subgraph "cluster_review"' in to_dot(_plan())


def test_json_contract() -> None:
    data = to_json(select(_plan(), from_=["lint"]))
    assert data == {
        "schema_version": 2,
        "name": "review",
        "fail_fast": False,
        "budget": {"usd": "5.00", "tokens": None, "on_exceed": "stop"},
        "max_spend_usd": "0.25",
        "levels": [["lint"], ["report"]],
        "external_needs": ["review-a.py", "review-b.py"],
        "jobs": [
            {
                "name": "lint",
                "group": "lint",
                "level": 1,
                "needs": [],
                "external_needs": [],
                "matrix": None,
                "if": None,
                "continue_on_error": False,
                "priority": 5,
                "retries": 2,
                "retry_on": None,
                "tool": None,
                "model": None,
                "run": "ruff check .",
                "budget": {"usd": "0", "tokens": None, "on_exceed": "stop"},
            },
            {
                "name": "report",
                "group": "report",
                "level": 2,
                "needs": ["lint"],
                "external_needs": ["review-a.py", "review-b.py"],
                "matrix": None,
                "if": "always()",
                "continue_on_error": False,
                "priority": 0,
                "retries": 0,
                "retry_on": None,
                "tool": None,
                "model": None,
                "run": ["echo", "done"],
                "budget": {"usd": "0.25", "tokens": 1000, "on_exceed": "stop"},
            },
        ],
    }
    assert to_json(_plan())["jobs"][1]["matrix"] == {"file": "a.py"}
    capped = to_json(_plan(), run_budget=BudgetSpec(usd=Decimal(2)))
    assert capped["max_spend_usd"] == "2"


def test_tree_title_and_budget_override() -> None:
    tree = render_tree(_plan(), title="review.yaml", run_budget=BudgetSpec(usd=Decimal(1)))
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(tree)
    assert buffer.getvalue().splitlines()[0] == (
        "flow review.yaml · 5 jobs · 3 levels · budget $1.00 (stop) · max spend $1.00"
    )


PLAN_FLOW = """\
name: a-review-of-the-code-base
budget: {usd: 5}
jobs:
  analyze: {tool: claude, prompt: "review", budget: {usd: 1.5}}
  lint: {run: "ruff check ."}
  report:
    {needs: [analyze, lint], if: always(), run: "echo done", budget: {usd: 0.25, tokens: 1000}}
"""

PLAN_80 = """\
flow a-review-of-the-code-base · 3 jobs · 2 levels · budget $5.00 (stop)
max spend $5.00
├── level 1 · 2 in parallel
│   ├── analyze  claude  budget $1.50 (stop)
│   └── lint  run: ruff check .
└── level 2
    └── report  run: echo done  needs analyze, lint · if always()
        budget $0.25 / 1,000 tokens (stop)"""

PLAN_160 = (
    "flow a-review-of-the-code-base · 3 jobs · 2 levels · budget $5.00 (stop) · max spend $5.00\n"
    "├── level 1 · 2 in parallel\n"
    "│   ├── analyze  claude  budget $1.50 (stop)\n"
    "│   └── lint  run: ruff check .\n"
    "└── level 2\n"
    "    └── report  run: echo done  needs analyze, lint · if always() · "
    "budget $0.25 / 1,000 tokens (stop)"
)


@pytest.mark.parametrize(("columns", "screen"), [(80, PLAN_80), (160, PLAN_160)])
def test_the_plan_breaks_its_lines_between_their_parts(
    tmp_path: Path, columns: int, screen: str
) -> None:
    """`corral plan` under a pseudo-terminal, the whole screen compared: at 80 columns
    the headline (90 characters) and a job's details break between two parts (they
    wrapped as `… max` / `spend $5.00` and `budget $0.25 / 1,000` / `tokens (stop)`); at
    160 each is one line."""
    (tmp_path / "flow.yaml").write_text(PLAN_FLOW)
    terminal = Terminal(["plan", "flow.yaml"], tmp_path, columns, 24)
    try:
        assert terminal.finish() == 0
    finally:
        terminal.stop()
    shown = "\n".join(line.rstrip() for line in terminal.text().splitlines()).strip("\n")
    assert shown == screen
