"""Templates and outputs: rendering with the sandbox, StrictUndefined errors, capture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corral.config.schema import FlowSpec, OutputSpec
from corral.errors import CorralError
from corral.models import JobStatus, Usage
from corral.plan import (
    JobView,
    RunInfo,
    TemplateContext,
    TemplateError,
    build_plan,
    capture_outputs,
    render,
    render_job,
)

DONE = JobView(
    JobStatus.SUCCEEDED,
    result="42 files",
    exit_code=0,
    usage=Usage(input_tokens=10, output_tokens=5),
    outputs={"version": "1.2"},
)


def test_render_reads_jobs_matrix_env_and_run() -> None:
    context = TemplateContext(
        jobs={"a": DONE},
        matrix={"model": "m1"},
        env={"HOME": "/h"},
        run=RunInfo("r1", "nightly"),
    )
    text = (
        "{{ jobs.a.result }} {{ jobs.a.tokens.total }} {{ matrix.model }} {{ env.HOME }} "
        "{{ run.id }}"
    )
    assert render(text, context) == "42 files 15 m1 /h r1"
    assert render("v${{ jobs.a.outputs.version }}", context) == "v1.2"
    assert render("echo ${HOME} {not a template}", context) == "echo ${HOME} {not a template}"
    assert render("{{ jobs.a.session_id }}|", context) == "|"  # None renders as nothing


def test_a_typo_is_an_error_naming_the_job_and_the_template() -> None:
    context = TemplateContext(jobs={"a": DONE}, job="report")
    with pytest.raises(TemplateError) as caught:
        render("Summary: {{ jobs.a.reslt }}", context, where="prompt")
    assert isinstance(caught.value, CorralError)
    assert str(caught.value) == (
        "job 'report', prompt: cannot render `Summary: {{ jobs.a.reslt }}`: jobs.a has no "
        "'reslt' (it has: continue_on_error, cost_usd, exit_code, outputs, result, session_id, "
        "status, tokens)"
    )
    with pytest.raises(TemplateError, match="jobs has no 'b'"):
        render("{{ jobs.b.result }}", context)


def test_the_sandbox_refuses_unsafe_attributes() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render("{{ run.__class__.__mro__ }}", TemplateContext())
    with pytest.raises(TemplateError):
        render("{{ ''.__class__ }}", TemplateContext())


def test_render_job_renders_prompt_run_env_cwd() -> None:
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {"run": "a"},
                    "b": {"run": "b", "needs": ["a"]},
                    "r": {
                        "needs": ["b"],
                        "matrix": {"file": ["x.py"]},
                        "prompt": "Fix {{ matrix.file }}: {{ jobs.a.result }}",
                        "run": ["tool", "--run={{ run.name }}", "{{ jobs.b.status }}"],
                        "env": {"OUT": "{{ env.TMP }}/{{ matrix.file }}", "PLAIN": "${HOME}"},
                        "cwd": "work/{{ run.id }}",
                    },
                }
            }
        )
    )
    job = plan.jobs["r-x.py"]
    states = {"a": DONE, "b": JobView(JobStatus.FAILED, continue_on_error=True)}
    spec = render_job(job, states, {"TMP": "/tmp"}, RunInfo("r9", "ci"))
    assert spec.prompt == "Fix x.py: 42 files"
    assert spec.run == ["tool", "--run=ci", "failed"]
    assert spec.env == {"OUT": "/tmp/x.py", "PLAIN": "${HOME}"}
    assert spec.cwd == "work/r9"
    assert job.spec.prompt == "Fix {{ matrix.file }}: {{ jobs.a.result }}"  # untouched


def test_render_job_exposes_only_what_the_job_may_read() -> None:
    jobs = {
        "a": {"run": "a"},
        "other": {"run": "o"},
        "b": {"run": "x {{ jobs | length }}", "needs": ["a"]},
    }
    plan = build_plan(FlowSpec.model_validate({"jobs": jobs}))
    spec = render_job(plan.jobs["b"], {"a": DONE, "other": DONE}, {}, RunInfo("r", "n"))
    assert spec.run == "x 1"


def test_capture_outputs(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "verdict.txt").write_text("PASS\n")
    specs = {
        "version": OutputSpec(regex=r"^version: (\S+)$"),
        "whole": OutputSpec(regex=r"v\d"),
        "missing": OutputSpec(regex=r"nothing here (x)"),
        "score": OutputSpec(json_path="scores[1].value"),
        "obj": OutputSpec(json_path="$.meta"),
        "flag": OutputSpec(json_path="ok"),
        "gone": OutputSpec(json_path="scores[9]"),
        "verdict": OutputSpec(file="out/verdict.txt"),
        "nofile": OutputSpec(file="nope.txt"),
    }
    result = json.dumps({"scores": [{"value": 1}, {"value": 0.5}], "meta": {"a": [1]}, "ok": True})
    stdout = "building\nversion: 2.0.1\nv3\n"
    values = capture_outputs(specs, stdout_tail=stdout, result=result, cwd=tmp_path)
    assert values == {
        "version": "2.0.1",
        "whole": "v3",
        "missing": "",
        "score": "0.5",
        "obj": '{"a":[1]}',
        "flag": "true",
        "gone": "",
        "verdict": "PASS",
        "nofile": "",
    }

    def scan(pattern: re.Pattern[str]) -> re.Match[str] | None:
        return pattern.search("from the log file: version: 9\n")

    assert capture_outputs(
        {"v": OutputSpec(regex=r"version: (\d)")}, stdout_tail=scan, result="not json", cwd=tmp_path
    ) == {"v": "9"}
    assert capture_outputs(
        {"s": OutputSpec(json_path="a")}, stdout_tail="", result="not json", cwd=tmp_path
    ) == {"s": ""}
