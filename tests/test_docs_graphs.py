"""docs/graphs.md stays true: every flow it shows loads (or fails exactly as shown), and
the matrix example expands to the jobs the page names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corral.config.loader import load_text
from corral.plan import build_plan
from helpers import problems_of

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "graphs.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", PAGE, re.DOTALL)
FLOWS = [body for kind, body in BLOCKS if kind == "yaml" and body.startswith("jobs:")]


def _outcome(text: str) -> list[str]:
    """The lines `corral validate` prints, or the jobs of a valid flow."""
    problems = problems_of(text)
    if problems:
        return problems
    return list(build_plan(load_text(text, Path("flow.yaml"), "flow.yaml").spec).jobs)


def test_the_page_shows_flows() -> None:
    assert len(FLOWS) >= 5


@pytest.mark.parametrize("flow", FLOWS, ids=[f"flow{i}" for i in range(len(FLOWS))])
def test_each_flow_of_the_page_loads_or_fails_as_shown(flow: str) -> None:
    outcome = _outcome(flow)
    shown = PAGE.split(flow, 1)[1]
    if outcome and outcome[-1].endswith("nothing was run"):
        # an example of mistakes: the page shows `corral validate`'s exact output next
        printed = shown.split("$ corral validate flow.yaml\n", 1)[1].split("```", 1)[0]
        assert printed.splitlines() == outcome
    else:
        assert outcome, flow


def test_the_matrix_example_gives_the_jobs_the_page_names() -> None:
    example = next(flow for flow in FLOWS if "include:" in flow and "review:" in flow)
    names = _outcome(example)
    assert names == [
        "review-sonnet-src_app.py",
        "review-sonnet-src_db.py",
        "review-opus-src_app.py",
        "review-haiku-README.md",
    ]
    for name in names:
        assert f"`{name}`" in PAGE


def test_the_matrix_example_prompts_read_include_values() -> None:
    from corral.plan import RunInfo, render_job

    example = next(flow for flow in FLOWS if "include:" in flow and "review:" in flow)
    loaded = load_text(example, Path("flow.yaml"), "flow.yaml")
    plan = build_plan(loaded.spec)
    specs = {name: render_job(job, {}, {}, RunInfo("r", "n")) for name, job in plan.jobs.items()}
    assert specs["review-sonnet-src_app.py"].prompt == "Review src/app.py, focus: general"
    assert specs["review-opus-src_app.py"].prompt == "Review src/app.py, focus: security"
    assert [spec.model for spec in specs.values()] == ["sonnet", "sonnet", "opus", "haiku"]


def test_the_python_examples_of_the_page_run_as_shown() -> None:
    import doctest

    section = PAGE.split("### From Python", 1)[1].split("###", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    test = doctest.DocTestParser().get_doctest(example, {}, "graphs.md", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted == 3
