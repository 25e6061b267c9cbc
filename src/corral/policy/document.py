"""The input document policies see: the flow as corral will run it.

`input` is the flow file's document after loading: `defaults` applied to every job (the
`defaults` key itself is gone), matrix jobs expanded (one entry per expansion, with
`matrix` holding that expansion's values and `group` the name written in the file),
`needs` naming expanded jobs, durations in seconds, money as numbers. Every job field
is present, set or not (`timeout: null` when unset), plus `name`, `group`, `tool` (the
adapter that runs it: `claude` for a bare `prompt`, `generic` for a command) and
`agent` (true for an agent prompt). A template that reads only `matrix` (`model:
${{ matrix.model }}`) is rendered, so each expansion shows its own value; any other
template stays as written, since its value is known only while the run goes (so an
allow-list policy sees text it does not allow: it fails closed). `input.plan` holds what
corral derives:
the levels (what runs in parallel) and `max_spend_usd`, the most the flow can spend
(null when no budget bounds it). `input.corral` names the version and the flow file.

Only the jobs that will run are present (`--only` / `--from` select them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from corral import __version__
from corral.config.loaded import LoadedFlow
from corral.errors import CorralError
from corral.plan import Plan, PlannedJob, max_spend

SCHEMA_VERSION = 1


def flow_input(loaded: LoadedFlow, plan: Plan) -> dict[str, Any]:
    """The `input` document for policies evaluated against this flow and plan."""
    spec = loaded.spec
    document: dict[str, Any] = _plain(spec.model_dump(by_alias=True, exclude={"defaults", "jobs"}))
    document["name"] = loaded.name
    document["jobs"] = {name: _job(job) for name, job in plan.jobs.items()}
    spend = max_spend(plan.budget, plan.job_budgets())
    document["plan"] = {
        "levels": [list(level) for level in plan.levels],
        "max_spend_usd": None if spend is None else _plain(spend),
    }
    document["corral"] = {
        "schema_version": SCHEMA_VERSION,
        "version": __version__,
        "flow_file": str(loaded.path.resolve()) if loaded.source != "<exec>" else None,
    }
    return document


def _job(job: PlannedJob) -> dict[str, Any]:
    spec = job.spec
    entry: dict[str, Any] = _plain(spec.model_dump(by_alias=True))
    if job.matrix is not None:
        entry.update(_matrix_rendered(job))
    entry.update(
        name=job.name,
        group=job.group,
        needs=list(job.needs),
        matrix=_plain(dict(job.matrix)) if job.matrix is not None else None,
        tool=job.adapter,
        agent=job.is_agent,
    )
    return entry


def _matrix_rendered(job: PlannedJob) -> dict[str, Any]:
    """The template fields of a matrix expansion that read nothing but `matrix`, rendered."""
    from corral.plan.templates import TemplateContext, render

    context = TemplateContext(matrix=job.matrix, job=job.name)

    def value(text: str) -> str:
        if not _reads_only_matrix(text):
            return text
        try:
            return render(text, context)
        except CorralError:  # pragma: no cover  # the plan checked it; keep it as written
            return text

    spec = job.spec
    found: dict[str, Any] = {}
    for name in ("model", "prompt", "cwd"):
        text = getattr(spec, name)
        if text is not None:
            found[name] = value(text)
    if isinstance(spec.run, str):
        found["run"] = value(spec.run)
    elif spec.run is not None:
        found["run"] = [value(arg) for arg in spec.run]
    if spec.env:
        found["env"] = {key: value(text) for key, text in spec.env.items()}
    return found


def _reads_only_matrix(text: str) -> bool:
    from jinja2 import TemplateSyntaxError

    from corral.plan.expressions import environment, free_names, has_template, parse_template
    from corral.plan.templates import PLACEHOLDER, is_template, split_template

    if not is_template(text):
        return False
    try:
        jinja_text, expressions = split_template(text)
        tree = parse_template(jinja_text) if has_template(jinja_text) else None
    except (CorralError, TemplateSyntaxError):  # pragma: no cover  # the plan rejected it
        return False
    roots = {chain[0].lower() for _, found in expressions for chain, _ in found.references}
    if tree is not None:
        roots |= free_names(tree) - set(environment().globals) - {PLACEHOLDER}
    return roots <= {"matrix"}


def _plain(value: Any) -> Any:
    """JSON values: Decimal becomes a number (regorus numbers are floats anyway)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = ["SCHEMA_VERSION", "flow_input"]
