"""Rendering `prompt`, `run`, `env` and `cwd` with Jinja2 (sandboxed, StrictUndefined).

Context: `jobs` (the needs and the jobs the template names), `matrix` (this
expansion's values), `env` (the environment snapshot given), `run` (`id`, `name`).
GitHub's `${{ ... }}` is read as `{{ ... }}`. Text without `{{`, `{%` or `{#` is
returned untouched, so commands full of shell braces need no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import TemplateError as JinjaError

from corral.config.schema import JobSpec
from corral.errors import TemplateError
from corral.plan.expressions import ENV, Namespace, has_template, normalize_template
from corral.plan.model import PlannedJob
from corral.plan.views import JobView, jobs_namespace

TEMPLATE_NAMES = frozenset({"jobs", "matrix", "env", "run"})
RUN_FIELDS = frozenset({"id", "name"})


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    name: str


@dataclass(frozen=True)
class TemplateContext:
    """What a template can read. `jobs` maps job names to their finished views."""

    jobs: Mapping[str, JobView] = field(default_factory=dict)
    matrix: Mapping[str, Any] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    run: RunInfo = RunInfo("", "")
    visible: frozenset[str] | None = None  # the jobs exposed; None exposes all of `jobs`
    job: str = ""  # named in error messages

    def variables(self) -> dict[str, Any]:
        names = self.jobs.keys() if self.visible is None else self.visible
        return {
            "jobs": jobs_namespace(self.jobs, names),
            "matrix": Namespace("matrix", dict(self.matrix or {})),
            "env": Namespace("env", dict(self.env)),
            "run": Namespace("run", {"id": self.run.id, "name": self.run.name}),
        }


def render(template: str, context: TemplateContext, *, where: str = "") -> str:
    """Render one template; raises TemplateError naming the job, the field and the cause."""
    text = normalize_template(template)
    if not has_template(text):
        return template
    try:
        return ENV.from_string(text).render(context.variables())
    except JinjaError as exc:
        place = f"job {context.job!r}" if context.job else "template"
        if where:
            place += f", {where}"
        shown = template if len(template) <= 80 else template[:77] + "..."
        raise TemplateError(f"{place}: cannot render `{shown}`: {exc}") from None


def render_job(
    job: PlannedJob,
    states: Mapping[str, JobView],
    env: Mapping[str, str],
    run_info: RunInfo,
) -> JobSpec:
    """The job's spec with `prompt`, `run`, `env` values and `cwd` rendered.

    `env` is the environment snapshot templates see as `env` (not the job's `env:`).
    """
    context = TemplateContext(states, job.matrix, env, run_info, job.readable(), job.name)
    spec = job.spec
    update: dict[str, Any] = {}
    if spec.prompt is not None:
        update["prompt"] = render(spec.prompt, context, where="prompt")
    if isinstance(spec.run, str):
        update["run"] = render(spec.run, context, where="run")
    elif spec.run is not None:
        update["run"] = [render(a, context, where=f"run[{i}]") for i, a in enumerate(spec.run)]
    if spec.env:
        update["env"] = {k: render(v, context, where=f"env.{k}") for k, v in spec.env.items()}
    if spec.cwd is not None:
        update["cwd"] = render(spec.cwd, context, where="cwd")
    return spec.model_copy(update=update)


def template_fields(spec: JobSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """The (path inside the job, text) of every field that is a template."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if spec.prompt is not None:
        found.append((("prompt",), spec.prompt))
    if isinstance(spec.run, str):
        found.append((("run",), spec.run))
    elif spec.run is not None:
        found.extend((("run", i), arg) for i, arg in enumerate(spec.run))
    found.extend((("env", k), v) for k, v in spec.env.items())
    if spec.cwd is not None:
        found.append((("cwd",), spec.cwd))
    return [(path, text) for path, text in found if has_template(normalize_template(text))]
