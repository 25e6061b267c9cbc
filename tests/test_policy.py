"""Rego policies against flows: the input document, the example policies, the rule
conventions, bad policies, and `corral policy check` / `corral policy input`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from corral.app.check import check_flow
from corral.errors import FlowError, PolicyError
from corral.policy import PolicyFiles, PolicySet, Verdict, evaluate, flow_input
from helpers import corral, write_flow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "policies"
DATA = Path(__file__).parent / "data" / "policy"

GOOD = """
version: 1
name: governed
budget: {usd: 5}
defaults: {timeout: 10m, budget: {usd: 1.50}}
jobs:
  review:
    tool: claude
    model: claude-sonnet-4-5
    prompt: Review {{ matrix.file }}
    matrix: {file: [a.py, b.py]}
  lint:
    run: [ruff, check, .]
    needs: [review]
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # flows are named as a user would: flow.yaml


def verdict_of(tmp_path: Path, body: str, *policies: Path) -> Verdict:
    write_flow(tmp_path, body)
    loaded, plan = check_flow("flow.yaml")
    found = evaluate(loaded, plan, policies=policies, environ={})
    assert found is not None
    return found


def denied(verdict: Verdict) -> set[tuple[str, str | None]]:
    """(rule, job) of each denial."""
    return {(f.rule, f.job) for f in verdict.denials}


# -- the input document ----------------------------------------------------------------


def test_input_is_the_flow_as_it_will_run(tmp_path: Path) -> None:
    loaded, plan = check_flow(write_flow(tmp_path, GOOD))
    document = flow_input(loaded, plan)
    assert "defaults" not in document
    assert document["name"] == "governed"
    assert document["budget"] == {"usd": 5, "tokens": None, "on_exceed": "stop"}
    assert list(document["jobs"]) == ["review-a.py", "review-b.py", "lint"]
    review = document["jobs"]["review-b.py"]
    assert review["group"] == "review"
    assert review["matrix"] == {"file": "b.py"}
    assert review["timeout"] == 600.0  # from defaults, in seconds
    assert review["budget"]["usd"] == 1.5  # a number, from defaults
    assert review["tool"] == "claude" and review["agent"] is True
    assert review["prompt"] == "Review b.py"  # a template that reads only matrix is rendered
    lint = document["jobs"]["lint"]
    assert lint["tool"] == "generic" and lint["agent"] is False
    assert lint["needs"] == ["review-a.py", "review-b.py"]
    assert lint["shell"] is False and lint["model"] is None and lint["if"] is None
    assert document["plan"] == {"levels": [["review-a.py", "review-b.py"], ["lint"]],
                                "max_spend_usd": 4.5}  # fmt: skip
    assert document["corral"]["flow_file"] == str((tmp_path / "flow.yaml").resolve())


def test_policy_input_command_prints_it_and_honours_only(tmp_path: Path) -> None:
    write_flow(tmp_path, GOOD)
    result = corral("policy", "input", "flow.yaml", "--only", "review", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["jobs"]) == ["review-a.py", "review-b.py"]


# -- the example policies: each denies what it is about, and passes a good flow ----------


def test_examples_allow_a_flow_that_follows_them(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, GOOD, EXAMPLES)
    assert verdict.allowed, verdict.denial_lines()
    assert len(verdict.files) == 4
    assert verdict.summary() == "flow.yaml: allowed by 4 policy files"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a budget ceiling per job
        (
            "defaults: {timeout: 10m}",
            {
                ("corral.budget.deny_missing_budget", "review-a.py"),
                ("corral.budget.deny_missing_budget", "review-b.py"),
            },
        ),
        (
            "defaults: {timeout: 10m, budget: {usd: 2.5}}",
            {
                ("corral.budget.deny_over_job_ceiling", "review-a.py"),
                ("corral.budget.deny_over_job_ceiling", "review-b.py"),
                ("corral.budget.deny_over_job_ceiling", "lint"),
            },
        ),
        (
            "budget: {usd: 50}\ndefaults: {timeout: 10m, budget: {usd: 1.50}}\njobs:\n"
            + "".join(f"  j{i}: {{prompt: p, model: claude-haiku-4-5}}\n" for i in range(8)),
            {("corral.budget.deny_over_run_ceiling", None)},
        ),
        # allowed tools and models
        (
            "  odd: {tool: cursor-agent, prompt: p, model: claude-sonnet-4-5}",
            {("corral.tools.deny_tool", "odd")},
        ),
        ("  odd: {tool: codex, prompt: p}", {("corral.tools.deny_missing_model", "odd")}),
        ("  odd: {tool: codex, prompt: p, model: gpt-4o}", {("corral.tools.deny_model", "odd")}),
        # no shell: true
        ("  odd: {run: 'echo $HOME', shell: true}", {("corral.shell.deny_shell", "odd")}),
        # a required timeout
        ("  odd: {run: [echo], timeout: null}", {("corral.timeout.deny_missing_timeout", "odd")}),
    ],
)
def test_each_example_policy_denies_what_it_is_about(
    tmp_path: Path, change: str, expected: set[tuple[str, str | None]]
) -> None:
    if change.startswith("  "):
        body = GOOD + change + "\n"
    elif "jobs:" in change:
        body = "version: 1\n" + change
    else:
        body = GOOD.replace("defaults: {timeout: 10m, budget: {usd: 1.50}}", change)
    assert denied(verdict_of(tmp_path, body, EXAMPLES)) == expected


def test_a_long_timeout_only_warns(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, GOOD + "  long: {run: [echo], timeout: 2h}\n", EXAMPLES)
    assert verdict.allowed
    assert [(w.rule, w.job) for w in verdict.warnings] == [
        ("corral.timeout.warn_long_timeout", "long")
    ]


def test_denials_name_rule_job_place_and_policy_file(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, GOOD + "  odd: {run: 'echo hi', shell: true}\n", EXAMPLES)
    (line,) = verdict.denial_lines()
    policy = EXAMPLES / "shell.rego"
    assert line == (
        f"flow.yaml:15:3: job 'odd': `shell: true` is not allowed: give `run` as a list of "
        f"arguments instead (denied by corral.shell.deny_shell, {policy}:7)"
    )
    assert verdict.summary() == "flow.yaml: 1 denial from 4 policy files"


def test_denials_come_in_flow_order_flow_level_first(tmp_path: Path) -> None:
    body = GOOD.replace("budget: {usd: 5}", "budget: {usd: 50}") + "".join(
        f"  z{i}: {{run: 'x', shell: true, timeout: 1m}}\n" for i in range(3)
    )
    body = body.replace("defaults: {timeout: 10m, budget: {usd: 1.50}}",
                        "defaults: {timeout: 10m, budget: {usd: 2}}")  # fmt: skip
    verdict = verdict_of(tmp_path, body, EXAMPLES)
    assert [f.job for f in verdict.denials] == [None, "z0", "z1", "z2"]
    assert verdict.denials[0].rule == "corral.budget.deny_over_run_ceiling"


# -- rule conventions, data, Rego versions -----------------------------------------------


def test_bundle_data_and_extra_fields(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, "jobs:\n  a: {run: [echo], retries: 3}\n", DATA / "bundle")
    (finding,) = verdict.denials
    assert (finding.rule, finding.job, finding.message) == (
        "corral.retries.deny_retries",
        "a",
        "retries 3 over 1",
    )
    assert finding.details == {"severity": "high"}


def test_rego_v0_policies_load_unchanged(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, "jobs:\n  a: {run: [echo], retries: 3}\n", DATA / "v0")
    assert denied(verdict) == {("corral.legacy.deny", "a")}
    assert verdict.denials[0].message == "3 retries is too many"


def test_string_and_boolean_rules(tmp_path: Path) -> None:
    policy = tmp_path / "p.rego"
    policy.write_text(
        "package x\nimport rego.v1\n"
        'deny contains "plain message" if true\n'
        "violation_flag := true\n"
        "warn_off := false\n"
        "helper := 3\n"
    )
    verdict = verdict_of(tmp_path, "jobs:\n  a: {run: [echo]}\n", policy)
    assert [(f.rule, f.job, f.message, f.line) for f in verdict.denials] == [
        ("x.deny", None, "plain message", 3),
        ("x.violation_flag", None, "violation_flag", 4),
    ]
    assert verdict.denial_lines()[0] == f"flow.yaml: plain message (denied by x.deny, {policy}:3)"
    assert not verdict.warnings


def test_print_output_is_kept_for_stderr(tmp_path: Path) -> None:
    verdict = verdict_of(tmp_path, "jobs:\n  a: {run: [echo]}\n", DATA / "printing")
    assert verdict.allowed
    assert verdict.prints == (f"{DATA / 'printing' / 'debug.rego'}:7: checking a",)


# -- bad policies and missing pieces ---------------------------------------------------


def test_syntax_error_names_file_line_column(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        PolicySet.load([DATA / "syntax"])
    bad = DATA / "syntax" / "bad.rego"
    assert caught.value.lines() == [
        f"{bad}:8:9: invalid Rego: expecting `}}` while parsing query",
        '    msg := sprintf("job %s", [name])',
    ]


def test_syntax_error_through_the_cli_exits_2(tmp_path: Path) -> None:
    write_flow(tmp_path, "jobs:\n  a: {run: [echo]}\n")
    result = corral("policy", "check", "flow.yaml", "--policy", str(DATA / "syntax"), cwd=tmp_path)
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"corral: error: {DATA / 'syntax' / 'bad.rego'}:")
    assert "invalid Rego" in first and "Traceback" not in result.stderr
    assert "Stack backtrace" not in result.stderr


def test_evaluation_error_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        verdict_of(tmp_path, "jobs:\n  a: {run: [echo]}\n", DATA / "runtime")
    assert f"{DATA / 'runtime' / 'conflict.rego'}:7:" in caught.value.message
    assert "policy corral.conflict failed" in caught.value.message


def test_a_folder_without_policies_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match=r"no Rego policy \(\*\.rego\) in this folder"):
        PolicyFiles.find([tmp_path / "empty"])


def test_flow_policy_paths_are_checked_with_their_location(tmp_path: Path) -> None:
    body = "version: 1\npolicy: [missing/]\njobs:\n  a: {run: [echo]}\n"
    with pytest.raises(FlowError) as caught:
        verdict_of(tmp_path, body)
    assert str(caught.value.problems[0]) == (
        "flow.yaml:2:10: policy[0]: no such policy file or folder: missing/"
    )


def test_missing_extra_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "regorus", None)  # import regorus now fails
    with pytest.raises(PolicyError) as caught:
        verdict_of(tmp_path, "jobs:\n  a: {run: [echo]}\n", EXAMPLES)
    assert caught.value.lines() == [
        "policies need the Rego interpreter, which is not installed "
        "(install it with: pip install 'corral[policy]')"
    ]


def test_sources_flow_cli_and_environment_all_apply(tmp_path: Path) -> None:
    (tmp_path / "flowpol").mkdir()
    (tmp_path / "flowpol" / "a.rego").write_text('package a\ndeny contains "from flow" if true\n')
    (tmp_path / "clipol.rego").write_text('package b\ndeny contains "from cli" if true\n')
    (tmp_path / "envpol.rego").write_text('package c\ndeny contains "from env" if true\n')
    loaded, plan = check_flow(write_flow(tmp_path, "policy: flowpol\njobs:\n  a: {run: [echo]}\n"))
    environ = {"CORRAL_POLICY": f"{tmp_path / 'envpol.rego'}:{tmp_path / 'flowpol'}"}
    verdict = evaluate(loaded, plan, policies=[tmp_path / "clipol.rego"], environ=environ)
    assert verdict is not None
    assert sorted(f.message for f in verdict.denials) == ["from cli", "from env", "from flow"]
    assert len(verdict.files) == 3  # flowpol named twice, read once
    with pytest.raises(PolicyError, match="CORRAL_POLICY names /nowhere, which does not exist"):
        evaluate(loaded, plan, environ={"CORRAL_POLICY": "/nowhere"})
    assert evaluate(*check_flow(write_flow(tmp_path, "jobs:\n  a: {run: [echo]}\n", "b.yaml")),
                    environ={}) is None  # fmt: skip


# -- corral policy check -----------------------------------------------------------------


def test_check_exit_codes_and_output(tmp_path: Path) -> None:
    write_flow(tmp_path, GOOD)
    write_flow(tmp_path, GOOD + "  odd: {run: 'x', shell: true}\n", "bad.yaml")
    ok = corral("policy", "check", "flow.yaml", "--policy", str(EXAMPLES), cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (
        0,
        "flow.yaml: allowed by 4 policy files\n",
        "",
    )
    bad = corral("policy", "check", "bad.yaml", "--policy", str(EXAMPLES), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "bad.yaml:15:3: job 'odd': `shell: true` is not allowed: give `run` as a list of "
        f"arguments instead (denied by corral.shell.deny_shell, {EXAMPLES / 'shell.rego'}:7)",
        "bad.yaml: 1 denial from 4 policy files",
    ]
    as_json = corral("policy", "check", "bad.yaml", "--json", "--policy", str(EXAMPLES),
                     cwd=tmp_path)  # fmt: skip
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 2
    assert set(document) == {"schema_version", "flow", "allowed", "policies", "denials",
                             "warnings"}  # fmt: skip
    assert document["denials"][0] == {
        "rule": "corral.shell.deny_shell",
        "job": "odd",
        "message": "`shell: true` is not allowed: give `run` as a list of arguments instead",
        "file": str(EXAMPLES / "shell.rego"),
        "line": 7,
        "details": {},
        "location": "bad.yaml:15:3",
    }
    nothing = corral("policy", "check", "flow.yaml", cwd=tmp_path, env={"CORRAL_POLICY": ""})
    assert nothing.returncode == 2
    assert "no policy to check" in nothing.stderr and "--policy" in nothing.stderr


def test_the_flow_in_the_docs_passes_the_example_policies(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "policy.md").read_text()
    (flow,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "jobs:" in b]
    (tmp_path / "policies").symlink_to(EXAMPLES)
    loaded, plan = check_flow(write_flow(tmp_path, flow))
    verdict = evaluate(loaded, plan, environ={})
    assert verdict is not None and verdict.allowed, verdict and verdict.denial_lines()
    rego = re.findall(r"```rego\n(.*?)```", text, re.DOTALL)
    (tmp_path / "doc.rego").write_text(rego[0])
    shell = verdict_of(tmp_path, "jobs:\n  a: {run: x, shell: true}\n", tmp_path / "doc.rego")
    assert denied(shell) == {("corral.shell.deny_shell", "a")}


def test_dates_in_a_matrix_and_linked_folders(tmp_path: Path) -> None:
    policies = tmp_path / "p"
    policies.mkdir()
    (policies / "loop").symlink_to(policies)  # a link back up the tree is read once
    (policies / "d.rego").write_text(
        "package d\nimport rego.v1\ndeny contains j if { some j, job in input.jobs\n"
        '  job.matrix.day == "2024-01-02" }\n'
    )
    body = "jobs:\n  a: {run: [echo], matrix: {day: [2024-01-02]}}\n"
    verdict = verdict_of(tmp_path, body, policies)
    assert [f.message for f in verdict.denials] == ["a-2024-01-02"]
    assert len(verdict.files) == 1


def test_matrix_templates_are_rendered_others_fail_closed(tmp_path: Path) -> None:
    body = """
    defaults: {timeout: 1m, budget: {usd: 1}}
    jobs:
      review:
        tool: claude
        model: ${{ matrix.model }}
        prompt: "Review {{ matrix.file }} for ${{ env.USER }}"
        matrix: {model: [claude-sonnet-4-5, gpt-4o], file: [a.py]}
      hidden:
        tool: codex
        model: ${{ env.MODEL }}
        prompt: x
    """
    loaded, plan = check_flow(write_flow(tmp_path, body))
    jobs = flow_input(loaded, plan)["jobs"]
    assert jobs["review-claude-sonnet-4-5-a.py"]["model"] == "claude-sonnet-4-5"
    # the prompt also reads env: known only when the run goes, so it stays as written
    assert jobs["review-gpt-4o-a.py"]["prompt"] == "Review {{ matrix.file }} for ${{ env.USER }}"
    verdict = verdict_of(tmp_path, body, EXAMPLES)
    assert denied(verdict) == {
        ("corral.tools.deny_model", "review-gpt-4o-a.py"),
        ("corral.tools.deny_model", "hidden"),  # ${{ env.MODEL }} is not an allowed model
    }
