"""Checking a flow before it runs: tools decided at plan time, and what the errors say."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.app.check import check_flow
from corral.errors import FlowError
from helpers import write_flow


def test_a_run_job_is_a_command_whatever_defaults_tool_says(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        defaults: {tool: claude, model: sonnet}
        jobs:
          analyze: {prompt: /analyze}
          lint: {run: ruff check .}
        """,
    )
    _, plan = check_flow(flow)
    assert (plan.jobs["analyze"].tool, plan.jobs["lint"].tool) == ("claude", None)
    assert plan.jobs["lint"].adapter == "generic" and not plan.jobs["lint"].is_agent


def test_an_error_names_the_default_a_tool_came_from(tmp_path: Path) -> None:
    flow = write_flow(
        tmp_path,
        """
        defaults: {tool: codex}
        jobs:
          review: {model: gpt-5.5}
          own: {tool: codex, model: gpt-5.5}
        """,
    )
    with pytest.raises(FlowError) as caught:
        check_flow(flow)
    assert caught.value.lines() == [
        f"{flow}:4:11: jobs.review: codex needs a prompt"
        " (the job's tool comes from defaults.tool: codex)",
        f"{flow}:5:8: jobs.own: codex needs a prompt",
        "2 problems; nothing was run",
    ]


def test_an_agent_tool_given_a_command_says_how_to_fix_it(tmp_path: Path) -> None:
    """`tool: codex` with `run:` (the review's case): not a bare "needs a prompt" for a
    job whose author wrote a command, but the two ways out."""
    flow = write_flow(tmp_path, "jobs:\n  c: {tool: codex, run: echo hi}\n")
    with pytest.raises(FlowError) as caught:
        check_flow(flow)
    assert caught.value.lines() == [
        f"{flow}:2:6: jobs.c: codex needs a prompt, not `run:`: drop `tool: codex` to run "
        "the command, or write `prompt:` for the agent"
    ]


def test_tool_generic_may_name_its_command_in_extra_args(tmp_path: Path) -> None:
    ok = write_flow(tmp_path, "jobs:\n  a: {tool: generic, extra_args: [echo, hi]}\n", "ok.yaml")
    _, plan = check_flow(ok)
    assert plan.jobs["a"].tool is None
    bad = write_flow(tmp_path, "jobs:\n  a: {tool: generic, prompt: hi}\n", "bad.yaml")
    with pytest.raises(FlowError) as caught:
        check_flow(bad)
    assert [p.message for p in caught.value.problems] == [
        "generic does not support prompt",
        "generic needs a command: `run`, or the words after `--`",
    ]
    nothing = write_flow(tmp_path, "jobs:\n  a: {cwd: x}\n", "nothing.yaml")
    with pytest.raises(FlowError, match="nothing to run"):
        check_flow(nothing)
