"""Templates and outputs: rendering with the sandbox, StrictUndefined errors, capture."""

from __future__ import annotations

import json

import pytest

from corral.config.schema import FlowSpec, OutputSpec
from corral.errors import CorralError
from corral.models import JobStatus, Usage
from corral.plan import (
    JobView,
    RunInfo,
    TemplateContext,
    TemplateError,
    TextOutput,
    build_plan,
    capture_outputs,
    render,
    render_job,
)
from helpers import problems_of

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


def test_capture_outputs() -> None:
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
    output = TextOutput(stdout, {"out/verdict.txt": b"PASS\n"})
    values = capture_outputs(specs, output=output, result=result)
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

    assert capture_outputs(
        {"v": OutputSpec(regex=r"version: (\d)")},
        output=TextOutput("from the log file: version: 9\n"),
        result="not json",
    ) == {"v": "9"}
    assert capture_outputs(
        {"s": OutputSpec(json_path="a")}, output=TextOutput(), result="not json"
    ) == {"s": ""}


# -- GitHub's ${{ }} -------------------------------------------------------------------------


def _context(**extra: object) -> TemplateContext:
    fields: dict[str, object] = {
        "jobs": {"a": DONE, "b": JobView(JobStatus.FAILED, continue_on_error=True)},
        "matrix": {"os": "linux", "flags": ["-x"]},
        "env": {"HOME": "/h"},
        "run": RunInfo("r1", "nightly"),
        "need_groups": (("a", ("a",)), ("b", ("b",))),
        **extra,
    }
    return TemplateContext(**fields)  # type: ignore[arg-type]  # keyword bag built above


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ jobs.a.result }}", "42 files"),
        ("v${{ needs.a.outputs.version }}-${{ needs.b.result }}", "v1.2-success"),
        (
            "${{ matrix.os }} ${{ env.home }} ${{ flow.name }}/${{ flow.run_id }}",
            "linux /h nightly/r1",
        ),
        ("${{ jobs.a.tokens.total > 10 }} ${{ jobs.a.session_id }}|${{ 1.50 }}", "true |1.5"),
        ("${{ matrix.flags }} ${{ toJSON(matrix.flags) }}", 'Array [\n  "-x"\n]'),
        ("${{ format('{0} of {1}', needs.a.result, 'job a') }}", "success of job a"),
        ("${{ '${{' }} stays", "${{ stays"),
    ],
)
def test_github_expressions_in_templates(template: str, expected: str) -> None:
    assert render(template, _context()) == expected


def test_both_syntaxes_in_one_field_and_values_are_not_read_again() -> None:
    context = _context(jobs={"a": JobView(JobStatus.SUCCEEDED, result="{{ env.HOME }}")})
    text = "${{ jobs.a.result }} / {{ jobs.a.result }} / {% if true %}${{ matrix.os }}{% endif %}"
    # what a job printed is text, whichever syntax inserts it: never a template
    assert render(text, context) == "{{ env.HOME }} / {{ env.HOME }} / linux"
    # a `${{` is GitHub's even inside Jinja syntax
    assert render("{{ 'x' ~ '${{ matrix.os }}' }}", context) != "x${{ matrix.os }}"


def test_jinja_errors_keep_their_line_after_a_multi_line_expression() -> None:
    from corral.plan.templates import split_template

    text = "${{ format('{0}',\n  matrix.os) }}\n{{ jobs.a.result }}\n{% if %}"
    jinja_text, _ = split_template(text)
    assert jinja_text.count("\n") == text.count("\n")
    assert problems_of(
        f"jobs:\n  a:\n    run: |\n      {text.replace(chr(10), chr(10) + '      ')}"
        "\n    matrix: {os: [x]}\n"
    )[0].endswith(
        "invalid template at line 4: Expected an expression, got 'end of statement block'"
    )
    with pytest.raises(TemplateError, match="is not an expression"):
        render("${{ 1 }} {{ _corral_expression(3) }}", _context())


def test_an_expression_that_fails_at_run_time_names_the_job_and_field() -> None:
    with pytest.raises(TemplateError) as caught:
        render("${{ fromJSON(jobs.a.result) }}", _context(job="report"), where="prompt")
    assert str(caught.value) == (
        "job 'report', prompt: cannot render `${{ fromJSON(jobs.a.result) }}`: Error parsing "
        "fromJson: Extra data: line 1 column 4 (char 3)"
    )


FLOW = """\
jobs:
  a: {run: a, outputs: {v: {regex: "v=(.*)"}}}
  b:
    needs: [a]
    prompt: |
      Review ${{ needs.a.outputs.v }}
      and ${{ jobs.a.result | upper }} please
    run: echo ${{ needs.a.outputs.w }}
    env:
      X: "${{ needs.c.result }}"
      Y: "${{ always() }}"
    cwd: "${{ matrix.x }"
"""


def test_template_mistakes_are_found_at_load_with_the_character() -> None:
    assert problems_of(FLOW) == [
        "flow.yaml:7:29: jobs.b.prompt: invalid expression `Review ${{ needs.a.outputs.v }}\\nand "
        "${{ jobs.a.result | upper }} please\\n`: Unexpected symbol: '|' at position 55; `|` is a "
        "Jinja filter: GitHub expressions call functions instead, such as contains, startsWith, "
        "endsWith, format, join, toJSON, fromJSON, case; write `||` for or",
        "flow.yaml:11:15: jobs.b.env.Y: invalid expression `${{ always() }}`: Unrecognized "
        "function: 'always' at position 5; always() is a status function: it works only in `if:`",
        "flow.yaml:12:11: jobs.b.cwd: invalid expression `${{ matrix.x }`: Unclosed expression: "
        "'${{' at position 1; close it with `}}` (a `}}` inside quotes does not count)",
        "flow.yaml:8:19: jobs.b.run: needs.a.outputs.w: 'a' declares no output 'w'",
        "flow.yaml:10:15: jobs.b.env.X: needs.c.result: 'c' is not a direct need of 'b'",
        "5 problems; nothing was run",
    ]


def test_a_jobs_own_env_is_in_the_env_context_of_its_other_fields() -> None:
    plan = build_plan(
        FlowSpec.model_validate(
            {
                "jobs": {
                    "a": {
                        "run": "echo ${{ env.OUT }} {{ env.OUT }} ${{ env.HOME }}",
                        "env": {"OUT": "${{ env.HOME }}/out", "HOME": "/job"},
                    }
                }
            }
        )
    )
    spec = render_job(plan.jobs["a"], {}, {"HOME": "/h"}, RunInfo("r", "n"))
    # env values see corral's environment; the other fields see the job's env on top
    assert spec.env == {"OUT": "/h/out", "HOME": "/job"}
    assert spec.run == "echo /h/out /h/out /job"
