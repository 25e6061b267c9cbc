"""`corral validate` of a big flow: the shortcuts give what the general code gives."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config import fastyaml
from corral.config.fields import _NAME_CHAR, JOB_NAME, MAX_JOB_NAME, job_name_problem
from corral.config.loader import _flow_loader, _load_yaml
from corral.config.schema import JobSpec
from corral.plan.templates import is_template, template_fields
from helpers import probe_json

_PROBE = textwrap.dedent(
    """
    import json, sys
    from corral.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    watched = ("corral.tools", "corral.config.legacy")
    print(json.dumps([m for m in watched if m in sys.modules]), file=sys.stderr)
    """
)


def _imported(cwd: Path, *args: str) -> set[str]:
    return set(probe_json(cwd, _PROBE, *args))


def test_validate_imports_the_adapters_and_the_converter_only_when_needed(
    tmp_path: Path,
) -> None:
    (tmp_path / ".corral").mkdir()
    (tmp_path / "plain.yaml").write_text("jobs:\n  a: {run: [echo, hi]}\n")
    (tmp_path / "agent.yaml").write_text("jobs:\n  a: {tool: claude, prompt: hi}\n")
    (tmp_path / "zen.json").write_text('{"instances": [{"name": "a", "command": "hi"}]}')
    assert _imported(tmp_path, "validate", "plain.yaml") == set()
    assert "corral.tools" in _imported(tmp_path, "validate", "agent.yaml")
    assert "corral.config.legacy" in _imported(tmp_path, "validate", "zen.json")


def test_a_dag_on_one_line_per_job_is_read_from_its_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's shape (a job per line, a flow mapping each) makes no libyaml event."""
    lines = ["concurrency: 8", "jobs:"]
    for i in range(200):
        needs = ", ".join(f"d{n}" for n in range(max(0, i - 3), i))
        lines.append(f"  d{i}: {{run: ['true'], needs: [{needs}]}}")
    text = "\n".join(lines) + "\n"
    expected = _load_yaml(text)

    def no_events(parser: object) -> object:
        raise AssertionError("read from libyaml's events")

    monkeypatch.setattr(fastyaml, "_from_events", no_events)
    assert fastyaml.fast_load(text, _flow_loader()) == expected
    assert len(expected["jobs"]) == 200 and expected["jobs"]["d5"]["needs"] == ["d2", "d3", "d4"]


def _name_problem_before(name: object) -> str | None:
    """job_name_problem as it was before its shortcut for the usual name."""
    if isinstance(name, bool):
        return "bool"
    if name is None:
        return "null"
    if isinstance(name, int | float):
        return "number"
    if not isinstance(name, str):
        return "type"
    if JOB_NAME.match(name):
        return "long" if len(name.encode()) > MAX_JOB_NAME else None
    if not name:
        return "empty"
    bad = [c for c in dict.fromkeys(name) if not _NAME_CHAR.match(c)]
    return "chars" if bad else "start"


_KIND = {
    "bool": "boolean",
    "null": "null",
    "number": "number",
    "type": "must be text",
    "long": "bytes long",
    "empty": "empty",
    "chars": "has",
    "start": "starts with",
}


@given(
    st.text(alphabet="ab_-.9é\n ", max_size=8)
    | st.text(alphabet="abc", min_size=250, max_size=260)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
)
@settings(max_examples=300, deadline=None)
def test_a_job_names_problem_is_what_it_was(name: object) -> None:
    before = _name_problem_before(name)
    now = job_name_problem(name)
    assert (now is None) == (before is None), (name, now)
    if before is not None and now is not None:
        assert _KIND[before] in now, (name, now)


def _template_fields_before(spec: JobSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Every text field of the job with its path, in template_fields' order, filtered as
    before its shortcut: by is_template alone."""
    run = [spec.run] if isinstance(spec.run, str) else list(spec.run or [])
    listed: list[tuple[tuple[str | int, ...], str | None]] = [
        (("prompt",), spec.prompt),
        (("model",), spec.model),
        *(
            (("run",) if isinstance(spec.run, str) else ("run", i), text)
            for i, text in enumerate(run)
        ),
        *((("env", key), text) for key, text in spec.env.items()),
        (("cwd",), spec.cwd),
    ]
    return [(path, text) for path, text in listed if text is not None and is_template(text)]


_TEXTS = st.sampled_from(
    ["plain", "{{ run.id }}", "${{ jobs.a.result }}", "{% if x %}", "{#", "{x}"]
)


@given(
    st.none() | _TEXTS,
    st.none() | _TEXTS,
    st.none() | _TEXTS | st.lists(_TEXTS, min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["A", "B"]), _TEXTS),
    st.none() | _TEXTS,
)
@settings(max_examples=200, deadline=None)
def test_template_fields_are_what_they_were(
    prompt: str | None, model: str | None, run: object, env: dict[str, str], cwd: str | None
) -> None:
    spec = JobSpec.model_validate(
        {"prompt": prompt, "model": model, "run": run, "env": env, "cwd": cwd}
    )
    assert template_fields(spec) == _template_fields_before(spec)


def test_a_job_name_ending_in_a_newline_is_refused(tmp_path: Path) -> None:
    """`$` matched before a final newline: `"a\\n"` passed, and named a logs folder."""
    assert job_name_problem("a\n") == (
        "job name 'a\\n' has '\\n': a name holds only ASCII letters, digits, '_', '-' and '.'"
    )
    flow = tmp_path / "flow.yaml"
    flow.write_text('jobs:\n  "a\\n": {run: [echo, hi]}\n')
    done = subprocess.run(
        [sys.executable, "-m", "corral", "validate", str(flow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{flow}:2:3: jobs.a\n: job name 'a\\n' has '\\n'" in done.stderr
