"""`corral validate` warns where a user may mean it (issue 13, item 12): a `prompt:` with
no tool (it quietly became claude) and a `${VAR}` in a job's env that is not set (the job
fails at launch where it is not); each at its file:line:col, with how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import corral

FLOW = """\
jobs:
  ask: {prompt: "hi"}
  told: {tool: codex, prompt: "hi"}
  build:
    run: sh -c 'echo "$X $Y $Z"'
    env:
      X: "${CORRAL_TEST_UNSET_X}"
      Y: "${CORRAL_TEST_UNSET_Y:-fallback}"
      Z: "${X}/${HOME}"
"""


def _validate(folder: Path, text: str, **env: str) -> tuple[int, str, str]:
    (folder / "flow.yaml").write_text(text)
    done = corral("validate", "flow.yaml", cwd=folder, env=env)
    return done.returncode, done.stdout, done.stderr


def test_prompt_without_a_tool_and_an_unset_variable_are_warnings(tmp_path: Path) -> None:
    code, out, err = _validate(tmp_path, FLOW)
    assert (code, out) == (0, "flow.yaml: ok (3 jobs, 1 level)\n")
    assert err.splitlines() == [
        "flow.yaml:2:9: jobs.ask.prompt: warning: a `prompt:` with no tool runs claude: "
        "write `tool: claude` (or another agent) on the job or in `defaults:`",
        "flow.yaml:7:10: jobs.build.env.X: warning: ${CORRAL_TEST_UNSET_X} is not set here, "
        "and the job fails at launch where it is not: export CORRAL_TEST_UNSET_X before "
        "`corral run`, or write ${CORRAL_TEST_UNSET_X:-default}",
    ]


def test_no_warning_once_the_tool_and_the_variable_are_given(tmp_path: Path) -> None:
    code, _, err = _validate(
        tmp_path, "defaults: {tool: claude}\n" + FLOW, CORRAL_TEST_UNSET_X="set"
    )
    assert (code, err) == (0, "")


def test_validate_agrees_with_what_a_run_does(tmp_path: Path) -> None:
    """The variable validate warns of fails the job at launch, named the same way; once
    it is set, validate is silent and the job runs with it."""
    build_only = "jobs:\n  build:\n" + FLOW.split("  build:\n", 1)[1]
    (tmp_path / "flow.yaml").write_text(build_only)
    warned = corral("validate", "flow.yaml", cwd=tmp_path).stderr
    assert "${CORRAL_TEST_UNSET_X} is not set" in warned
    failed = corral("run", "flow.yaml", "--json", cwd=tmp_path)
    job = json.loads(failed.stdout)["jobs"][0]
    assert job["status"] == "failed"
    assert "env.X uses ${CORRAL_TEST_UNSET_X}, which is not set" in job["error"]
    env = {"CORRAL_TEST_UNSET_X": "given", "HOME": "/home/x"}
    assert corral("validate", "flow.yaml", cwd=tmp_path, env=env).stderr == ""
    ran = corral("run", "flow.yaml", "--json", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert corral("logs", json.loads(ran.stdout)["run_id"], "build", cwd=tmp_path).stdout == (
        "given fallback given//home/x\n"
    )


def test_a_run_says_what_validate_warns_of(tmp_path: Path) -> None:
    """`corral run` is not the quiet way around a warning: the prompt with no tool is
    named at its place before the run starts (here its claude is a fake that answers)."""
    (tmp_path / "flow.yaml").write_text("jobs:\n  ask: {prompt: hi}\n")
    env = {
        "CORRAL_CLAUDE_BIN": str(Path(__file__).parent / "fakes" / "fake_agent.py"),
        "FAKE_AGENT_DIR": str(Path(__file__).parent / "data" / "agents"),
        "FAKE_AGENT_SCRIPT": "claude_text",
    }
    ran = corral("run", "flow.yaml", "--json", "--no-store", cwd=tmp_path, env=env)
    assert (
        "corral: flow.yaml:2:9: jobs.ask.prompt: warning: a `prompt:` with no tool runs "
        "claude: write `tool: claude` (or another agent) on the job or in `defaults:`"
    ) in ran.stderr.splitlines()
    assert json.loads(ran.stdout)["jobs"][0]["tool"] == "claude"
