"""`corral exec` validates what it builds without pydantic (`corral.config.fields`), and
gets the very spec, plan, messages and exit codes the flow schema gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_fast_paths import imported

from corral.app.check import check_flow_document
from corral.cli.run import _exec_document
from corral.config.fields import (
    FLOW_DEFAULTS,
    JOB_FIELDS,
    NOT_DEFAULTABLE,
    FlowFields,
    JobFields,
    PlainFlow,
    PlainJob,
    plain_flow,
)
from corral.config.loader import validate_document
from corral.config.schema import FlowSpec, JobSpec
from corral.errors import FlowError, UsageError
from corral.plan import build_plan
from helpers import corral

FAKES = Path(__file__).parent / "fakes"


def _nowhere(path: tuple[str | int, ...]) -> None:
    return None


_DUMPS: list[dict[str, Any]] = [
    {},
    {"mode": "json", "by_alias": True, "exclude_defaults": True},  # JobStarted's spec
    {"by_alias": True},  # the policies' input
    {"exclude_unset": True, "by_alias": True},
    {"by_alias": True, "exclude": {"defaults", "jobs"}},
]


def _same_job(plain: JobFields, schema: JobFields) -> None:
    for name in JobSpec.model_fields:
        assert repr(getattr(plain, name)) == repr(getattr(schema, name)), name
    assert plain.model_fields_set == schema.model_fields_set
    for options in _DUMPS:
        # key order and types too (repr: a float prints as it was parsed)
        assert repr(plain.model_dump(**options)) == repr(schema.model_dump(**options)), options


def _same_flow(plain: FlowFields, schema: FlowFields) -> None:
    for name in FlowSpec.model_fields:
        if name != "jobs":
            assert repr(getattr(plain, name)) == repr(getattr(schema, name)), name
    assert list(plain.jobs) == list(schema.jobs)
    for name, job in plain.jobs.items():
        _same_job(job, schema.jobs[name])
    assert plain.model_fields_set == schema.model_fields_set  # type: ignore[attr-defined]
    for options in _DUMPS:
        assert repr(plain.model_dump(**options)) == repr(schema.model_dump(**options)), options


def test_the_plain_specs_have_the_schemas_fields_defaults_and_order() -> None:
    _same_job(PlainJob(), JobSpec())
    assert [f for f in PlainJob.__dataclass_fields__ if f != "_set"] == list(JobSpec.model_fields)
    flow_fields = [f for f in PlainFlow.__dataclass_fields__ if f != "_set"]
    assert sorted(flow_fields) == sorted(FlowSpec.model_fields)
    assert set(FLOW_DEFAULTS) | {"defaults", "secret_names", "jobs"} == set(FlowSpec.model_fields)
    given = frozenset({"jobs"})  # whoever builds a plain spec says what it gave
    _same_flow(PlainFlow(jobs={"a": PlainJob()}, _set=given), FlowSpec(jobs={"a": JobSpec()}))
    assert frozenset(JobSpec.model_fields) | {"if"} == JOB_FIELDS
    assert NOT_DEFAULTABLE <= JOB_FIELDS


_WORD = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
_DURATION = st.one_of(
    st.sampled_from(
        ["90", "90s", "5m", "1h30m", "1.5h", "7d", "0", "0s", "00", "-1", "1e3", "abc", "5 m",
         " 2s ", "1_000", "10ms", "1h 30m", "inf", "nan", "1.", ".5", "1m1m", "", "0.0"]
    ),
    st.text(st.sampled_from("0123456789.smhd -_x"), max_size=6),
)  # fmt: skip
_NAME = st.one_of(
    st.none(),
    st.sampled_from(["job", "a.b-c_d", ".x", "-x", "a/b", "é", "x" * 256, "", "a\n", "_"]),
    _WORD,
)
_FIRST = st.one_of(
    st.sampled_from(["claude", "codex", "gemini", "generic", "true", "./run.sh", "/bin/ls"]),
    _WORD,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=_FIRST,
    rest=st.lists(_WORD, max_size=3),
    model=st.one_of(st.none(), _WORD),
    timeout=st.one_of(st.none(), _DURATION),
    idle=st.one_of(st.none(), _DURATION),
    name=_NAME,
)
def test_exec_documents_get_the_schemas_spec_or_its_messages(
    first: str,
    rest: list[str],
    model: str | None,
    timeout: str | None,
    idle: str | None,
    name: str | None,
) -> None:
    try:
        document = _exec_document((first, *rest), model, timeout, idle, name)
    except UsageError:
        return  # --model without an agent: said before any spec is built, as before
    plain = plain_flow(document)
    try:
        schema = validate_document(document, source="<exec>", locate=_nowhere)
    except FlowError:
        assert plain is None  # declined: the schema says what is wrong
        return
    assert plain is not None  # every valid `exec` takes the plain path
    _same_flow(plain, schema)
    # and the plans built from them are the same
    plain_plan = build_plan(plain, source="<exec>", locate=_nowhere)
    schema_plan = build_plan(schema, source="<exec>", locate=_nowhere)
    assert plain_plan.levels == schema_plan.levels
    assert (plain_plan.name, plain_plan.budget, plain_plan.fail_fast) == (
        schema_plan.name,
        schema_plan.budget,
        schema_plan.fail_fast,
    )
    for job_name, job in plain_plan.jobs.items():
        other = schema_plan.jobs[job_name]
        assert job.tool == other.tool and job.retry == other.retry and job.budget == other.budget
        assert (job.needs, job.priority, job.index) == (other.needs, other.priority, other.index)
        assert (job.reads, job.condition.looks_upstream) == (
            other.reads,
            other.condition.looks_upstream,
        )


@pytest.mark.parametrize(
    "update",
    [
        {"run": ["echo", "rendered"]},
        {"home": None},
        {"home": "/h"},
        {"env": {"A": "1"}, "prompt": "p", "model": "m", "cwd": "sub"},
        {"run": "echo x", "extra_args": ["--y"]},
    ],
)
def test_copies_are_the_schemas_copies(update: dict[str, Any]) -> None:
    document = _exec_document(("echo", "{{ run.id }}"), None, "5m", None, None)
    plain = plain_flow(document)
    assert plain is not None
    schema = validate_document(document, source="<exec>", locate=_nowhere)
    [(name, job)] = plain.jobs.items()
    _same_job(job.model_copy(update=update), schema.jobs[name].model_copy(update=update))
    assert job.model_copy(update={}) is job


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1, "name": "x", "jobs": {"x": {"run": ["true"], "shell": True}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": "true"}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": []}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": ["a", 1]}}},
        {"version": 1, "name": "x", "jobs": {"x": {"tool": "claude"}}},
        {"version": 1, "name": "x", "jobs": {"x": {"prompt": "p"}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": ["a"]}, "y": {"run": ["b"]}}},
        {"version": 2, "name": "x", "jobs": {"x": {"run": ["true"]}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": ["true"]}}, "defaults": {}},
        {"version": 1, "name": None, "jobs": {"x": {"run": ["true"]}}},
        {"version": 1, "name": "x", "jobs": {"x": {"run": ["true"], "timeout": True}}},
    ],
)
def test_anything_but_what_exec_builds_goes_to_the_schema(document: dict[str, Any]) -> None:
    assert plain_flow(document) is None


def test_a_plugins_agent_is_given_a_schema_jobspec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/tools.md promises a plugin's adapter the flow schema's JobSpec
    import corral.tools
    from corral.tools import get_tool

    class Plugged:  # an adapter from outside corral.tools
        def validate(self, job: JobFields) -> list[str]:
            return []

    document = _exec_document(("claude", "hi"), None, None, None, None)
    loaded, _ = check_flow_document(document, base_dir=tmp_path)
    assert isinstance(loaded.spec, PlainFlow)  # corral's own adapter: the plain spec
    monkeypatch.setattr(
        corral.tools, "get_tool", lambda name: Plugged() if name == "claude" else get_tool(name)
    )
    loaded, _ = check_flow_document(document, base_dir=tmp_path)
    assert isinstance(loaded.spec, FlowSpec)


_SCHEMA_MODULES = {"pydantic", "corral.config.schema"}


@pytest.mark.parametrize(
    "args",
    [
        ("exec", "-q", "--", "true"),
        ("exec", "-q", "--no-store", "--", "true"),
        ("exec", "-q", "--timeout", "5m", "--idle-timeout", "1m", "--name", "x", "--", "true"),
        ("exec", "-q", "--json", "--", "sh", "-c", "exit 3"),
    ],
)
def test_exec_imports_neither_pydantic_nor_the_flow_schema(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    found = imported(tmp_path, *args)
    assert found.isdisjoint(_SCHEMA_MODULES), found
    assert "asyncio" in found  # it did run


def test_exec_of_an_agent_imports_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = FAKES / "agents"
    env = {
        "FAKE_AGENT_DIR": str(agents),
        "FAKE_AGENT_SCRIPT": "claude_text",
        "FAKE_AGENT_ARGS": str(tmp_path / "argv.jsonl"),
        "CORRAL_CLAUDE_BIN": str(FAKES / "fake_agent.py"),
    }
    found = imported(tmp_path, "exec", "-q", "claude", "hi", "--model", "m", env=env)
    assert found.isdisjoint(_SCHEMA_MODULES), found
    assert (tmp_path / "argv.jsonl").exists()  # the agent ran


def test_a_bad_exec_input_is_the_schemas_one_line_error(tmp_path: Path) -> None:
    for args, message in [
        (
            ("--timeout", "abc"),
            "jobs.true.timeout: invalid duration 'abc': use 90, 90s, 5m, 1h30m, 1.5h or 7d",
        ),
        (
            ("--timeout", "0"),
            "jobs.true.timeout: a timeout of 0 would stop the job at once: leave `timeout` "
            "out for no limit",
        ),
        (("--idle-timeout", "-5"), "jobs.true.idle_timeout: a duration cannot be negative"),
        (
            ("--name", ".bad"),
            "jobs..bad: job name '.bad' starts with '.': start it with a letter, digit or '_'",
        ),
    ]:
        ran = corral("exec", "-q", "--no-store", *args, "--", "true", cwd=tmp_path)
        assert ran.returncode == 2, ran.stderr
        assert ran.stderr == f"corral: error: <exec>: {message}\n", ran.stderr
    both = corral(
        "exec", "-q", "--timeout", "x", "--idle-timeout", "y", "--", "true", cwd=tmp_path
    )  # fmt: skip
    assert both.returncode == 2
    assert both.stderr.splitlines()[-1] == "corral: error: 2 problems; nothing was run"
    misuse = corral("exec", "-q", "--model", "m", "--", "true", cwd=tmp_path)
    assert misuse.returncode == 2
    assert misuse.stderr == (
        'corral: error: --model only applies to an agent tool: corral exec claude "PROMPT" '
        "--model M\n"
    )
    assert not (tmp_path / ".corral").exists()  # nothing ran, nothing was recorded


def test_nul_bytes_fail_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # no process takes a NUL in its argv, so in process: the job fails at launch, a NUL in
    # a name or a duration is the schema's one-line error
    from corral.cli.main import main

    monkeypatch.chdir(tmp_path)
    for args, code, said in [
        (("--", "echo", "a\0b"), 1, "its argv[1] holds a NUL byte"),
        (("--name", "a\0b", "--", "echo"), 2, "job name 'a\\x00b' has '\\x00'"),
        (("--timeout", "1\0", "--", "echo"), 2, "jobs.echo.timeout: invalid duration '1\\x00'"),
    ]:
        with pytest.raises(SystemExit) as done:
            main(["exec", "-q", "--no-store", *args])
        assert done.value.code == code
        seen = capsys.readouterr()
        assert said in seen.out + seen.err


def test_an_exec_run_is_recorded_and_resumed(tmp_path: Path) -> None:
    marker = tmp_path / "ok"
    script = f"test -f {marker} || exit 3"
    first = corral("exec", "--json", "--timeout", "1m", "--", "sh", "-c", script, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    run_id = summary["run_id"]
    shown = json.loads(corral("show", run_id, "--json", cwd=tmp_path).stdout)
    assert json.dumps(shown).count('"timeout": 60.0') >= 1, shown  # the spec as the schema's
    marker.write_text("")
    resumed = corral("resume", run_id, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["jobs"][0]["status"] == "succeeded"


def test_a_copy_given_a_budget_dumps_it_as_the_schema_does() -> None:
    from decimal import Decimal

    from corral.config.schema import BudgetSpec

    budget = BudgetSpec(usd=Decimal("1.50"))
    document = _exec_document(("claude", "hi"), "m", None, None, None)
    plain = plain_flow(document)
    assert plain is not None
    schema = validate_document(document, source="<exec>", locate=_nowhere)
    _same_job(
        plain.jobs["claude"].model_copy(update={"budget": budget}),
        schema.jobs["claude"].model_copy(update={"budget": budget}),
    )
