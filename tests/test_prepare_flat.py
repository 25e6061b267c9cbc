"""What preparing a plain job costs corral's main thread (issue 14's flat rows), pinned
structurally: a template-free spec is neither copied nor walked by the renderer, the
environment is scanned for NUL bytes in one pass, and a job with nothing that can time out
gets no timer. Whatever has a template is still rendered, every NUL still named where it
is, and every timeout still fires. The figures are in benchmarks/README.md ("Wave 9:
w9flat"); nothing here is timed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from corral.config.schema import FlowSpec, JobSpec
from corral.errors import InputError
from corral.execute.executor import AttemptOutcome, JobRequest, StopHandle
from corral.execute.local import LocalExecutor
from corral.execute.prepare import RequestBuilder, _check_bytes
from corral.models import ErrorKind, JobStatus
from corral.plan import PlannedJob, RunInfo, build_plan, render_job
from corral.plan.templates import has_templates

RUN = RunInfo("r7", "flow")


def _job(spec: dict[str, Any], name: str = "j") -> PlannedJob:
    return build_plan(FlowSpec.model_validate({"jobs": {name: spec}})).jobs[name]


def _builder(tmp_path: Path) -> RequestBuilder:
    return RequestBuilder(
        base_dir=tmp_path, log_root=tmp_path / "logs", environ={"HOME": "/h"}, run_info=RUN
    )


PLAIN = {
    "run": ["true", "${HOME}", "{a}"],  # braces and `${VAR}` that are no template
    "env": {"A": "{x}", "B": "${HOME}"},
    "cwd": "sub",
}


def test_a_template_free_spec_comes_back_untouched() -> None:
    job = _job(PLAIN)
    assert not has_templates(job.spec)
    assert render_job(job, {}, {"HOME": "/h"}, RUN) is job.spec


def test_a_template_free_shell_command_comes_back_untouched() -> None:
    job = _job({"run": "echo {a,b} ${HOME} $((1+2))", "shell": True})
    assert not has_templates(job.spec)
    assert render_job(job, {}, {}, RUN) is job.spec


# every field render_job renders, and each kind of template mark
TEMPLATED: list[tuple[dict[str, Any], str, object]] = [
    ({"run": "echo hi", "prompt": "id {{ run.id }}"}, "prompt", "id r7"),
    ({"run": "echo hi", "model": "m-{{ run.name }}"}, "model", "m-flow"),
    ({"run": "echo ${{ flow.run_id }}"}, "run", "echo r7"),
    ({"run": ["echo", "{{ run.id }}"]}, "run", ["echo", "r7"]),
    ({"run": ["echo"], "env": {"X": "{% if true %}yes{% endif %}"}}, "env", {"X": "yes"}),
    ({"run": ["echo"], "cwd": "w/{{ run.name }}{# a comment #}"}, "cwd", "w/flow"),
]


@pytest.mark.parametrize(("spec", "field", "rendered"), TEMPLATED, ids=lambda v: str(v)[:20])
def test_a_template_in_any_field_is_still_rendered(
    spec: dict[str, Any], field: str, rendered: object
) -> None:
    job = _job(spec)
    assert has_templates(job.spec)
    got = render_job(job, {}, {}, RUN)
    assert got is not job.spec
    assert getattr(got, field) == rendered
    assert getattr(job.spec, field) == spec[field]  # the plan's spec is never changed


def test_a_mark_split_across_two_fields_is_no_template() -> None:
    # joined, "x{" and "{y" would read as `{{`: each text is judged alone
    job = _job({"run": ["x{", "{y"]})
    assert not has_templates(job.spec)
    assert render_job(job, {}, {}, RUN) is job.spec


def test_a_plain_command_job_is_prepared_without_copying_its_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies: list[object] = []
    original = JobSpec.model_copy

    def counted(self: JobSpec, *args: Any, **kwargs: Any) -> JobSpec:
        copies.append(kwargs.get("update"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(JobSpec, "model_copy", counted)
    request = _builder(tmp_path)(_job({"run": ["true", "a b"]}), {}, 1)
    assert copies == []
    assert request.argv == ("true", "a b")
    assert request.env["CORRAL_JOB"] == "j" and request.env["HOME"] == "/h"
    assert request.spec == {"run": ["true", "a b"]}


def test_a_command_job_with_a_home_still_runs_with_the_users_home(tmp_path: Path) -> None:
    request = _builder(tmp_path)(_job({"run": ["true"], "home": "auto"}), {}, 1)
    assert request.argv == ("true",)
    assert request.env["HOME"] == "/h"
    assert not (tmp_path / "logs" / "j" / "home").exists()


NUL_PLACES: list[tuple[tuple[str, ...], dict[str, str], str, str]] = [
    (("a", "b\0c"), {"K": "v"}, "/w", "argv[1]"),
    (("a",), {"K": "v", "E": "x\0"}, "/w", "env E"),
    (("a",), {"K\0": "v"}, "/w", "env K\0"),
    (("a",), {"K": "v"}, "/w\0", "cwd"),
    (("a\0",), {"E": "\0"}, "/w\0", "argv[0]"),  # the first place is named, as before
]


@pytest.mark.parametrize(("argv", "env", "cwd", "where"), NUL_PLACES)
def test_a_nul_byte_is_named_where_it_is(
    argv: tuple[str, ...], env: dict[str, str], cwd: str, where: str
) -> None:
    with pytest.raises(InputError) as caught:
        _check_bytes("j", argv, env, cwd)
    assert str(caught.value) == (
        f"job 'j': its {where} holds a NUL byte, which no process can take"
    )
    assert caught.value.hint == (
        "an interpolated value carried it: clean it upstream, or pass the value through a "
        "file (outputs.file)"
    )


def test_no_nul_byte_passes(tmp_path: Path) -> None:
    _check_bytes("j", ("a", ""), {"K": "", "": "v"}, "")
    request = _builder(tmp_path)(_job({"run": ["printf", "%s"], "env": {"A": "b"}}), {}, 1)
    assert request.env["A"] == "b"


def _run(request: JobRequest, stop: StopHandle | None = None) -> tuple[AttemptOutcome, list[float]]:
    """Run `request` with the local executor (no supervisor); and the delay of every timer
    the loop was asked for while the job ran (with `stop`: until it was requested once
    the job started; the stop's own grace timers come after)."""
    delays: list[float] = []

    async def go() -> AttemptOutcome:
        loop = asyncio.get_running_loop()
        call_at = loop.call_at

        def spied(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            if not (stop is not None and stop.requested):
                delays.append(when - loop.time())
            return call_at(when, *args, **kwargs)

        loop.call_at = spied  # type: ignore[method-assign]  # a spy on this loop alone
        started = asyncio.Event()
        task = asyncio.ensure_future(
            LocalExecutor().run(request, lambda e: started.set(), stop or StopHandle())
        )
        if stop is not None:
            await started.wait()  # its first event: JobStarted
            await asyncio.sleep(0)  # its watch begins
            stop.request("interrupted", JobStatus.CANCELLED, ErrorKind.CANCELLED)
        return await task

    return asyncio.run(go()), delays


def _sleep(tmp_path: Path, seconds: str, **fields: Any) -> JobRequest:
    return JobRequest(
        job="j",
        attempt=1,
        argv=("sleep", seconds),
        cwd=str(tmp_path),
        env=dict(os.environ),
        log_dir=tmp_path / "logs",
        **fields,
    )


def test_a_job_that_cannot_time_out_gets_no_timer(tmp_path: Path) -> None:
    outcome, delays = _run(_sleep(tmp_path, "30", kill_grace=1.0), StopHandle())
    # the stop woke its watch, not a timer (there was one of an hour)
    assert outcome.status is JobStatus.CANCELLED and outcome.error == "interrupted"
    assert delays == []


@pytest.mark.parametrize("kind", ["timeout", "idle_timeout"])
def test_a_timeout_still_fires(tmp_path: Path, kind: str) -> None:
    outcome, delays = _run(_sleep(tmp_path, "30", kill_grace=1.0, **{kind: 0.4}))
    assert outcome.status is JobStatus.TIMED_OUT
    assert outcome.error_kind is (ErrorKind.TIMEOUT if kind == "timeout" else ErrorKind.IDLE)
    assert any(0.1 < d <= 0.4 for d in delays)  # its deadline was the timer
