"""Checking a flow before anything runs: schema, graph, tools; every problem at once.

The CLI's `validate`, `plan`, `run` and `exec` call these; a server would too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.collector import collector_paused
from corral.config.loaded import LoadedFlow
from corral.errors import FlowError, Problem, ToolError
from corral.plan import Plan, build_plan, select
from corral.plan.adapter import COMMAND_TOOL, tool_inherited

if TYPE_CHECKING:
    from corral.config.fields import FlowFields


def check_flow(
    path: str | Path, *, only: Sequence[str] = (), from_: Sequence[str] = ()
) -> tuple[LoadedFlow, Plan]:
    """Load, validate and plan a flow; every problem (schema, graph, tools) at once.

    For a command's process (the flow and plan live as long as it): see `collector_paused`.
    """
    from corral.config.loader import load_flow

    with collector_paused(freeze=True):
        loaded, plan = _planned(load_flow(path))
    if only or from_:
        plan = select(plan, only=only, from_=from_)
    return loaded, plan


def check_flow_text(
    text: str,
    filename: str,
    *,
    base_dir: Path,
    only: Sequence[str] = (),
    from_: Sequence[str] = (),
) -> tuple[LoadedFlow, Plan]:
    """Load, validate and plan flow text sent by a client (a server's submission), as if
    it were the file `base_dir/filename`: the same problems, worded as `corral validate`
    words them, located in `filename`; `only`/`from_` select jobs as `check_flow`'s do."""
    from corral.config.loader import load_text

    name = Path(filename).name or "flow.yaml"
    with collector_paused():
        loaded, plan = _planned(load_text(text, base_dir / name, name))
    if only or from_:
        plan = select(plan, only=only, from_=from_)
    return loaded, plan


def _planned(loaded: LoadedFlow) -> tuple[LoadedFlow, Plan]:
    plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    problems = tool_problems(loaded, plan)
    if problems:
        raise FlowError(problems)
    return loaded, plan


def check_flow_document(
    document: dict[str, Any], *, base_dir: Path, source: str = "<exec>"
) -> tuple[LoadedFlow, Plan]:
    """Validate and plan a flow built in memory (single-instance mode).

    What `corral exec` builds, when valid, is validated without pydantic
    (`corral.config.fields.plain_flow`: the same spec); anything else, and every mistake,
    by the flow schema."""
    from corral.config.fields import plain_flow

    def nowhere(path: tuple[str | int, ...]) -> None:
        return None

    spec: FlowFields | None = plain_flow(document)
    if spec is None or not _own_adapters(spec):
        from corral.config.loader import validate_document

        spec = validate_document(document, source=source, locate=nowhere)
    loaded = LoadedFlow(spec, base_dir / "exec.json", source, json.dumps(document), nowhere)
    plan = build_plan(spec, source=source, locate=nowhere)
    problems = tool_problems(loaded, plan)
    if problems:
        raise FlowError(problems)
    return loaded, plan


def _own_adapters(flow: FlowFields) -> bool:
    """Whether every agent of `flow` is one of corral's own adapters: a plugin's adapter is
    given what docs/tools.md promises it, a flow schema's `JobSpec`."""
    from corral.tools import get_tool

    for job in flow.jobs.values():
        if job.tool is None or job.tool == COMMAND_TOOL:
            continue
        try:
            adapter = get_tool(job.tool)
        except ToolError:
            return False  # the schema's path says it
        if not type(adapter).__module__.startswith("corral.tools."):
            return False
    return True


# a `{{ }}` or `${{ }}` that reads another job's result, outputs or status
_READS_JOBS = re.compile(r"\$?\{\{(?:(?!\}\}).)*\b(?:jobs|needs)\b(?:(?!\}\}).)*\}\}", re.DOTALL)


def security_warnings(loaded: LoadedFlow, plan: Plan) -> list[Problem]:
    """Where a flow puts what an agent printed into a shell (docs/security.md): each
    `shell: true` command that interpolates job results, and every `unsafe_raw`."""
    from corral.plan.expressions import RAW_FILTER

    warnings: list[Problem] = []
    seen: set[str] = set()
    for job in plan.jobs.values():
        if job.group in seen:
            continue
        seen.add(job.group)
        run = job.spec.run
        texts = [run] if isinstance(run, str) else list(run or [])
        where = ("jobs", job.group, "run")
        if job.spec.shell and any(_READS_JOBS.search(text) for text in texts):
            warnings.append(
                loaded.problem(
                    where,
                    "warning: `shell: true` runs a command built from another job's result; "
                    "corral quotes each value, but a command that runs it again (sh -c, "
                    'eval, ssh) would not: prefer `env: {VALUE: "{{ jobs.X.result }}"}` '
                    'and "$VALUE" in the command',
                )
            )
        fields = [*texts, job.spec.prompt or "", job.spec.cwd or "", *job.spec.env.values()]
        if RAW_FILTER in "\0".join(fields):  # in any of them (the filter's name holds no NUL)
            warnings.append(
                loaded.problem(
                    ("jobs", job.group),
                    f"warning: `{RAW_FILTER}` interpolates a value unquoted: what it holds "
                    "runs as shell syntax or becomes several arguments",
                )
            )
    return warnings


def flow_warnings(
    loaded: LoadedFlow, plan: Plan, environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """What `corral validate` warns of, each at its place in the file: the security
    warnings, an agent chosen for a job that names none, and `${VAR}`s in a job's env
    that `environ` (default: corral's own) does not set, which fail the job at launch."""
    from corral.plan.adapter import DEFAULT_AGENT

    environ = dict(os.environ) if environ is None else environ
    warnings = security_warnings(loaded, plan)
    seen: set[str] = set()
    for job in plan.jobs.values():
        if job.group in seen:
            continue
        seen.add(job.group)
        spec = job.spec
        if spec.tool is None and spec.run is None and spec.prompt is not None:
            warnings.append(
                loaded.problem(
                    ("jobs", job.group, "prompt", "<key>"),
                    f"warning: a `prompt:` with no tool runs {DEFAULT_AGENT}: write "
                    f"`tool: {DEFAULT_AGENT}` (or another agent) on the job or in `defaults:`",
                )
            )
        warnings += _unset_variables(loaded, job.group, spec.env, environ)
    return warnings


# `${VAR}` or `${VAR:-default}`, as a job's env expands them at launch (execute/prepare.py)
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _unset_variables(
    loaded: LoadedFlow, group: str, env: Mapping[str, str], environ: Mapping[str, str]
) -> list[Problem]:
    """A warning for each `${VAR}` without a default that neither `environ` nor an
    earlier entry of the job's env sets: at launch the job would fail (docs/running.md).
    A warning, not an error: the variable may be set where the flow runs (CI)."""
    found: list[Problem] = []
    if not env:
        return found
    known = set(environ)
    for key, value in env.items():
        for match in _ENV_VAR.finditer(value):
            name, default = match.group(1), match.group(2)
            if default is None and name not in known:
                found.append(
                    loaded.problem(
                        ("jobs", group, "env", key),
                        f"warning: ${{{name}}} is not set here, and the job fails at launch "
                        f"where it is not: export {name} before `corral run`, or write "
                        f"${{{name}:-default}}",
                    )
                )
        known.add(key)
    return found


def missing_tools(plan: Plan, environ: Mapping[str, str]) -> set[tuple[str, str]]:
    """Fail before anything starts when an agent CLI the plan needs cannot be found.

    Raises ToolError naming each missing tool, the jobs that use it, and how to fix it;
    returns the (tool, executable) pairs found.
    """
    from corral.tools import get_tool

    missing: dict[str, list[str]] = {}
    # one PATH walk per setup
    found: dict[tuple[str, frozenset[tuple[str, str]]], str | None] = {}
    for job in plan.jobs.values():
        name = job.tool
        if name is None:
            continue
        key = (name, frozenset(job.spec.env.items()))
        if key not in found:
            found[key] = get_tool(name).find_executable({**environ, **job.spec.env})
        if found[key] is None:
            missing.setdefault(name, []).append(job.name)
    if missing:
        what = "; ".join(f"{tool} (jobs: {', '.join(jobs)})" for tool, jobs in missing.items())
        variable = get_tool(next(iter(missing))).env_var
        raise ToolError(
            f"not installed: {what}",
            hint=f"install it, put it on PATH, or set {variable}; see `corral tools`",
        )
    return {(name, path) for (name, _), path in found.items() if path is not None}


def version_warnings(located: set[tuple[str, str]]) -> list[str]:
    """One warning per installed CLI whose version is not the one its adapter was
    verified against (`corral tools` shows both)."""
    from corral.tools import get_tool
    from corral.tools.verify import installed_versions, version_warning

    pairs = [(get_tool(name), path) for name, path in sorted(located)]
    versions = installed_versions(pairs)
    warnings = (version_warning(tool, versions.get(path)) for tool, path in pairs)
    return sorted({warning for warning in warnings if warning})


def tool_problems(loaded: LoadedFlow, plan: Plan) -> list[Problem]:
    """What each job's tool adapter says it cannot honour (and jobs with nothing to run),
    located at the field in the flow file."""
    problems: list[Problem] = []
    for job in plan.jobs.values():
        name = job.tool
        if name is None and job.spec.run is not None:
            continue  # a plain command: no adapter to ask (nor the tools' imports)
        from corral.tools import get_tool
        from corral.tools.base import AGENT_FIELDS

        if name is None:
            if job.spec.run is None and job.spec.tool == COMMAND_TOOL:
                # `tool: generic` may take its command from extra_args: the adapter says
                problems += [
                    loaded.problem(("jobs", job.group), message)
                    for message in get_tool(COMMAND_TOOL).validate(job.spec)
                ]
            elif job.spec.run is None:
                problems.append(
                    loaded.problem(
                        ("jobs", job.group),
                        "nothing to run: give `run:` (a command) or `prompt:` (an agent)",
                    )
                )
            continue
        try:
            tool = get_tool(name)
        except ToolError as error:
            problems.append(loaded.problem(("jobs", job.group, "tool"), error.lines()[0]))
            continue
        # a tool the job does not name itself comes from `defaults`: say so
        origin = (
            f" (the job's tool comes from defaults.tool: {name})"
            if tool_inherited(loaded.spec, job.group, loaded.locate)
            else ""
        )
        for message in tool.validate(job.spec):
            # point at the field the message names, when the job sets it
            field = next(
                (f for f in AGENT_FIELDS if f in message and f in job.spec.model_fields_set), None
            )
            where: tuple[str | int, ...] = (
                ("jobs", job.group, field, "<key>") if field else ("jobs", job.group)
            )
            problems.append(loaded.problem(where, message + origin))
    return problems


__all__ = [
    "check_flow",
    "check_flow_document",
    "flow_warnings",
    "missing_tools",
    "security_warnings",
    "tool_problems",
    "version_warnings",
]
