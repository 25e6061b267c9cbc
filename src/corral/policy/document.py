"""The input document policies see: the flow as corral will run it.

`input` is the flow file's document after loading: `defaults` applied to every job (the
`defaults` key itself is gone), matrix jobs expanded (one entry per expansion, with
`matrix` holding that expansion's values and `group` the name written in the file),
`needs` naming expanded jobs, durations in seconds, money as numbers. Every job field
is present, set or not (`timeout: null` when unset), plus `name`, `group`, `tool` (the
adapter that runs it: `claude` for a bare `prompt`, `generic` for a command) and
`agent` (true for an agent prompt). Templates (`{{ ... }}`) are not rendered: their
values are known only while the run goes. `input.plan` holds what corral derives:
the levels (what runs in parallel) and `max_spend_usd`, the most the flow can spend
(null when no budget bounds it). `input.corral` names the version and the flow file.

Only the jobs that will run are present (`--only` / `--from` select them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from corral import __version__
from corral.config.loader import LoadedFlow
from corral.plan import Plan, PlannedJob

SCHEMA_VERSION = 1


def flow_input(loaded: LoadedFlow, plan: Plan) -> dict[str, Any]:
    """The `input` document for policies evaluated against this flow and plan."""
    spec = loaded.spec
    document: dict[str, Any] = _plain(spec.model_dump(by_alias=True, exclude={"defaults", "jobs"}))
    document["name"] = loaded.name
    document["jobs"] = {name: _job(job) for name, job in plan.jobs.items()}
    spend = plan.max_spend()
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
    from corral.execute.prepare import uses_tool

    spec = job.spec
    entry: dict[str, Any] = _plain(spec.model_dump(by_alias=True))
    tool = uses_tool(spec)
    entry.update(
        name=job.name,
        group=job.group,
        needs=list(job.needs),
        matrix=_plain(dict(job.matrix)) if job.matrix is not None else None,
        tool=tool or "generic",
        agent=tool is not None,
    )
    return entry


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
