"""Rendering `prompt`, `model`, `run`, `env` and `cwd`: GitHub's `${{ }}` and Jinja2's `{{ }}`.

- `${{ expression }}` is GitHub's expression language (`corral.expressions`), reading the
  contexts of `if:`: `jobs`, `needs`, `matrix`, `env`, `flow`. Its value is written as
  GitHub writes one (null as nothing, `true`, `1.5`, `Array`...).
- `{{ ... }}`, `{% ... %}` are Jinja2 (sandboxed, StrictUndefined), reading `jobs`,
  `matrix`, `env` and `run` (`id`, `name`).

Where both appear, `${{ ... }}` is found first (GitHub's rule: from `${{` to the first
`}}` outside a quoted string), even inside Jinja syntax; its value goes into the text
through Jinja's output, like a `{{ }}` value, and is never read again as a template.
Text with neither is returned untouched, so commands full of shell braces need no escaping.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corral.config.fields import JobFields
from corral.errors import TemplateError
from corral.expressions import ExpressionError
from corral.expressions.spans import OPEN
from corral.plan.contexts import CONTEXTS, RunScope, build_contexts
from corral.plan.expressions import Namespace, environment, has_template
from corral.plan.model import PlannedJob
from corral.plan.views import JobView, jobs_namespace

if TYPE_CHECKING:
    from corral.expressions import Expression
    from corral.expressions.spans import Span

TEMPLATE_NAMES = frozenset({"jobs", "matrix", "env", "run"})
RUN_FIELDS = frozenset({"id", "name"})
# what a `${{ }}` becomes in the Jinja text: a call of this (context) function
PLACEHOLDER = "_corral_expression"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a template reads as `run`: the run's id and its flow's name."""

    id: str
    name: str


@dataclass(frozen=True)
class TemplateContext:
    """What a template can read. `jobs` maps job names to their finished views;
    `need_groups` pairs each need as written with the jobs it stands for (`needs`)."""

    jobs: Mapping[str, JobView] = field(default_factory=dict)
    matrix: Mapping[str, Any] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    run: RunInfo = RunInfo("", "")
    visible: frozenset[str] | None = None  # the jobs exposed; None exposes all of `jobs`
    job: str = ""  # named in error messages
    need_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def readable(self) -> frozenset[str]:
        return frozenset(self.jobs) if self.visible is None else self.visible

    def variables(self) -> dict[str, Any]:
        return {
            "jobs": jobs_namespace(self.jobs, self.readable()),
            "matrix": Namespace("matrix", dict(self.matrix or {})),
            "env": Namespace("env", dict(self.env)),
            "run": Namespace("run", {"id": self.run.id, "name": self.run.name}),
        }

    def scope(self) -> RunScope:
        return RunScope(env=self.env, flow_name=self.run.name, run_id=self.run.id)


@functools.lru_cache(maxsize=1024)
def split_template(text: str) -> tuple[str, tuple[tuple[Span, Expression], ...]]:
    """The Jinja text of `text`, each `${{ }}` replaced by a placeholder, and the parsed
    expressions in order. Raises ExpressionSyntaxError with offsets into `text`."""
    if OPEN not in text:
        return text, ()
    # the parser loads with the first `${{ }}`: plain commands never need it
    from corral.expressions import Expression
    from corral.expressions.spans import find_expressions
    from corral.expressions.template import split

    spans = find_expressions(text)
    parsed = [piece for piece in split(text, CONTEXTS) if isinstance(piece, Expression)]
    out: list[str] = []
    last = 0
    for number, span in enumerate(spans):
        out.append(text[last : span.start])
        # the same line breaks as the expression had, so Jinja's line numbers stay true
        breaks = "\n" * text.count("\n", span.start, span.end)
        out.append(f"{{{{ {PLACEHOLDER}({number}){breaks} }}}}")
        last = span.end
    out.append(text[last:])
    return "".join(out), tuple(zip(spans, parsed, strict=True))


def is_template(text: str) -> bool:
    return OPEN in text or has_template(text)


def render(template: str, context: TemplateContext, *, where: str = "") -> str:
    """Render one template; raises TemplateError naming the job, the field and the cause."""
    if not is_template(template):
        return template
    try:
        return _render(template, context)
    except Exception as exc:
        raise _template_error(template, context, where, exc) from None


def render_command(template: str, context: TemplateContext, *, shell: bool) -> str:
    """Render a `run:` string so each interpolated value stays one argument: quoted for
    `/bin/sh` with `shell: true`, else for the split that makes its argv
    (corral.plan.quoting)."""
    if not is_template(template):
        return template
    from corral.plan.quoting import capture, has_markers, quote_command  # with Jinja2

    try:
        if has_markers(template):
            raise ValueError("the command contains U+E000, which corral reserves")
        with capture() as values:
            text = _render(template, context)
        return quote_command(text, values, shell=shell)
    except Exception as exc:
        raise _template_error(template, context, "run", exc) from None


def _render(template: str, context: TemplateContext) -> str:
    from jinja2.exceptions import UndefinedError  # Jinja2 loads with the first template

    text, expressions = split_template(template)
    variables = context.variables()
    if expressions:
        from corral.expressions.values import to_string

        roots = {chain[0].lower() for _, e in expressions for chain, _at in e.references}
        values = build_contexts(context, context.jobs, context.scope(), roots)

        def evaluate(number: int) -> str:
            if not 0 <= number < len(expressions):  # only the placeholders call it
                raise UndefinedError(f"{PLACEHOLDER}({number}) is not an expression")
            return to_string(expressions[number][1].evaluate(values))

        variables[PLACEHOLDER] = evaluate
    return environment().from_string(text).render(variables)


def _template_error(
    template: str, context: TemplateContext, where: str, exc: Exception
) -> TemplateError:
    from jinja2.exceptions import TemplateError as JinjaError

    place = f"job {context.job!r}" if context.job else "template"
    if where:
        place += f", {where}"
    shown = template if len(template) <= 80 else template[:77] + "..."
    if isinstance(exc, ExpressionError):
        cause: object = exc.description
    elif isinstance(exc, (JinjaError, ValueError)):
        cause = exc
    else:
        cause = f"{type(exc).__name__}: {exc}"
    return TemplateError(f"{place}: cannot render `{shown}`: {cause}")


def render_job(
    job: PlannedJob,
    states: Mapping[str, JobView],
    env: Mapping[str, str],
    run_info: RunInfo,
) -> JobFields:
    """The job's spec with `prompt`, `model`, `run`, `env` values and `cwd` rendered.

    `env` is corral's environment: what the job's `env:` values see as `env`. The other
    fields see it with the job's own `env:` (rendered) on top, as a GitHub job sees its
    `env:` in the `env` context.
    """
    spec = job.spec
    if not has_templates(spec):
        # nothing would change: no copy, no context (most jobs of a big flat flow)
        return spec
    context = TemplateContext(
        states, job.matrix, env, run_info, job.readable(), job.name, job.need_groups
    )
    update: dict[str, Any] = {}
    if spec.env:
        update["env"] = {k: render(v, context, where=f"env.{k}") for k, v in spec.env.items()}
        context = dataclasses.replace(context, env={**env, **update["env"]})
    if spec.prompt is not None:
        update["prompt"] = render(spec.prompt, context, where="prompt")
    if spec.model is not None:
        update["model"] = render(spec.model, context, where="model")
    if isinstance(spec.run, str):
        update["run"] = render_command(spec.run, context, shell=spec.shell)
    elif spec.run is not None:
        update["run"] = [render(a, context, where=f"run[{i}]") for i, a in enumerate(spec.run)]
    if spec.cwd is not None:
        update["cwd"] = render(spec.cwd, context, where="cwd")
    return spec.model_copy(update=update)


def has_templates(spec: JobFields) -> bool:
    """Whether any field `render_job` renders is a template (the fields `template_fields`
    names)."""
    return bool(template_fields(spec))


def template_fields(spec: JobFields) -> list[tuple[tuple[str | int, ...], str]]:
    """The (path inside the job, text) of every field that is a template."""
    # every template mark (`${{`, `{{`, `{%`, `{#`) holds a `{`: other texts are skipped
    # before a path is made for them (a big flow's commands are mostly plain)
    found: list[tuple[tuple[str | int, ...], str]] = []
    if spec.prompt is not None:
        found.append((("prompt",), spec.prompt))
    if spec.model is not None:
        found.append((("model",), spec.model))
    run = spec.run
    if isinstance(run, str):
        found.append((("run",), run))
    elif run is not None:
        found.extend((("run", i), arg) for i, arg in enumerate(run) if "{" in arg)
    if spec.env:
        found.extend((("env", k), v) for k, v in spec.env.items() if "{" in v)
    if spec.cwd is not None:
        found.append((("cwd",), spec.cwd))
    return [(path, text) for path, text in found if "{" in text and is_template(text)]
