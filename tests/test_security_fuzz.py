"""Fuzz: random bytes from an upstream job and random templates into the renderer and the
argv builder. Whatever they hold, one job fails (or a value round-trips exactly), the
rest succeed, the run exits 1, and corral raises nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.app.check import check_flow_document
from corral.app.run import RunOptions, start_run
from corral.errors import FlowError
from corral.plan.expressions import environment
from corral.plan.quoting import capture, quote_command
from helpers import corral

# pieces a template author (or a hostile upstream) may write: Jinja, GitHub expressions,
# shell syntax, and what breaks each of them
FRAGMENTS = [
    "{{ jobs.up.result }}",
    "{{ jobs.up.result | unsafe_raw }}",
    "${{ jobs.up.result }}",
    "{{ 100 / (jobs.up.result | length - jobs.up.result | length) }}",
    "{{ range(10**7) | length }}",
    "{{ jobs.nope.result }}",
    "{{ jobs.up.result[",
    "{% for c in jobs.up.result %}{{ c }}{% endfor %}",
    "{{ jobs.up.result * 3 }}",
    "{{ ''.__class__ }}",
    "${{ fromJSON(jobs.up.result) }}",
    "$(",
    "`",
    "'",
    '"',
    "\\",
    ";",
    " ",
    "\x00",
    "\ue000",
    "x",
]
TEMPLATES = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6).map("".join)


def _flow(template: str, shell: bool) -> dict[str, object]:
    # the bad job fails whatever its template renders to (`exit 1` ignores its argument):
    # by its template, by its argv, or by its exit status; never the run
    argv = [sys.executable, "-c", "raise SystemExit(1)", template]
    run: object = f"exit 1 ; : {template}" if shell else argv
    return {
        "jobs": {
            "up": {"run": ["cat", "payload.bin"]},
            "bad": {"needs": ["up"], "run": run, "shell": shell},
            "good": {"needs": ["up"], "run": ["true"]},
            "other": {"run": ["true"]},
        }
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=st.binary(max_size=200), template=TEMPLATES, shell=st.booleans())
def test_random_bytes_and_templates_fail_one_job(
    tmp_path: Path, payload: bytes, template: str, shell: bool
) -> None:
    (tmp_path / "payload.bin").write_bytes(payload)
    try:
        loaded, plan = check_flow_document(_flow(template, shell), base_dir=tmp_path)
    except FlowError as error:  # refused at load, with a located message: no run at all
        assert error.lines()
        return
    options = RunOptions(no_store=True, base_dir=tmp_path, jobs=4)
    report = asyncio.run(start_run(loaded, plan, options))
    jobs = report.journal.jobs
    assert report.exit_code == 1
    assert jobs["bad"].status.value == "failed"
    assert {jobs[n].status.value for n in ("up", "good", "other")} == {"succeeded"}
    assert list(tmp_path.glob("pwned*")) == []


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
    ),
    shell=st.booleans(),
)
def test_any_value_reaches_the_command_as_exactly_one_argument(value: str, shell: bool) -> None:
    for template in ("printf %s {{ v }}", "printf %s '{{ v }}'", 'printf %s "{{ v }}"'):
        with capture() as values:
            text = environment().from_string(template).render(v=value)
        command = quote_command(text, values, shell=shell)
        if shell:
            out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=True)
            assert out.stdout == value.encode("utf-8", "surrogateescape")
        else:
            import shlex

            assert shlex.split(command) == ["printf", "%s", value]


def test_the_cli_fails_one_job_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "payload.bin").write_bytes(b"\x00\x1b]0;x\x07$(touch pwned)'\"`\xff\n")
    template = "{{ jobs.up.result }}{{ 1/0 }}"
    (tmp_path / "flow.json").write_text(json.dumps(_flow(template, True)))
    result = corral("run", "flow.json", "--json", "--no-store", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    jobs = {j["name"]: j for j in json.loads(result.stdout)["jobs"]}
    assert jobs["bad"]["error_kind"] == "template"
    assert list(tmp_path.glob("pwned*")) == []
