"""build_plan: a FlowSpec in, a validated Plan out, or a FlowError with every problem.

It is also where each job's tool is decided, once (`corral.plan.adapter.tool_of`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from graphlib import CycleError
from types import MappingProxyType

from corral.config.fields import JOB_FIELDS, NOT_DEFAULTABLE, FlowFields, JobFields
from corral.expressions import ExpressionSyntaxError
from corral.plan import graph
from corral.plan.adapter import tool_inherited, tool_of
from corral.plan.conditions import compile_condition
from corral.plan.expressions import (
    JinjaSyntaxError,
    environment,
    free_names,
    has_template,
    parse_template,
    references,
)
from corral.plan.model import Plan, PlannedJob
from corral.plan.problems import Locator, Problems, did_you_mean
from corral.plan.references import Checker, Group, Path, Ref
from corral.plan.retry import RETRYABLE, RetryPolicy, check_retry_on
from corral.plan.templates import PLACEHOLDER, TEMPLATE_NAMES, split_template, template_fields


def _nowhere(path: tuple[str | int, ...]) -> tuple[int, int] | None:
    return None


_NO_READS: frozenset[str] = frozenset()  # shared: most jobs read no other job's values
# a job name's parts after the first (`build-linux.x64`: linux, x64)
_SEPARATED = re.compile(r"[-.]").search
_PARTS = re.compile(r"[-.]").split


def _with_defaults(flow: FlowFields, problems: Problems) -> dict[str, JobFields]:
    """Jobs with `defaults` applied to the fields they leave unset.

    Idempotent: if the loader already merged the defaults, those fields count as set.
    """
    defaults = {k: v for k, v in flow.defaults.items() if k not in NOT_DEFAULTABLE}
    for key in list(defaults):
        if key not in JOB_FIELDS:
            problems.add(("defaults", key), f"unknown job field{did_you_mean(key, JOB_FIELDS)}")
            del defaults[key]
    if not defaults:
        return dict(flow.jobs)
    from pydantic import ValidationError

    from corral.config.schema import JobSpec

    jobs: dict[str, JobFields] = {}
    reported: set[str] = set()
    for name, spec in flow.jobs.items():
        unset = {
            k: v
            for k, v in defaults.items()
            if ("if_" if k == "if" else k) not in spec.model_fields_set
        }
        if not unset:
            jobs[name] = spec
            continue
        try:
            jobs[name] = JobSpec.model_validate(
                {**unset, **spec.model_dump(exclude_unset=True, by_alias=True)}
            )
        except ValidationError as exc:
            jobs[name] = spec
            for error in exc.errors():
                path = ("defaults", *(str(p) for p in error["loc"]))
                if path[1] in unset and ".".join(path) not in reported:
                    reported.add(".".join(path))
                    problems.add(path, error["msg"])
    return jobs


def _expand(specs: Mapping[str, JobFields], problems: Problems) -> dict[str, Group]:
    groups = {name: Group(name, spec) for name, spec in specs.items()}
    taken = set(specs)
    seen: set[str] = set()
    for group in groups.values():
        matrix = group.spec.matrix
        if not matrix:
            group.members.append((group.name, None))
            seen.add(group.name)
            continue
        # the rules load with the first matrix: most flows have none
        from corral.plan import matrix as matrix_rules

        path = ("jobs", group.name, "matrix")
        found = matrix_rules.problems(matrix)
        for where, message in found:
            problems.add((*path, *where), message)
        if found:
            continue
        try:
            expansions = matrix_rules.expand(group.name, matrix, taken - {group.name})
        except ValueError as exc:
            problems.add(path, str(exc))
            continue
        for item in expansions:
            if item.name in seen:
                problems.add(path, f"expansion {item.name!r} clashes with another job")
                continue
            seen.add(item.name)
            taken.add(item.name)
            group.members.append((item.name, dict(item.values)))
    return groups


def _resolve_needs(groups: dict[str, Group], problems: Problems) -> None:
    member_of = {name: g.name for g in groups.values() for name, _ in g.members}
    # what a need names: a job, every expansion of a matrix job, or one expansion
    targets: dict[str, tuple[str, ...]] = {name: (name,) for name in member_of}
    targets.update((g.name, tuple(name for name, _ in g.members)) for g in groups.values())
    for group in groups.values():
        resolved: dict[str, None] = {}
        if not group.spec.needs:
            continue  # group.needs stays empty
        name, kept = group.name, group.need_groups.append  # per edge: 30,000 in a big DAG
        for i, need in enumerate(group.spec.needs):
            found = targets.get(need)
            if found is not None and (not found or member_of[found[0]] != name):
                if len(found) == 1:
                    resolved[found[0]] = None
                else:
                    resolved.update(dict.fromkeys(found))
                kept((need, found))
                continue
            path = ("jobs", group.name, "needs", i)
            if found is not None:
                problems.add(path, f"{group.name!r} needs itself")
            else:
                known = [*groups, *(n for n in member_of if n not in groups)]
                problems.add(path, f"needs {need!r}, which is not a job{did_you_mean(need, known)}")
        group.needs = list(resolved)


def _syntax_problem(
    problems: Problems, path: Path, text: str, error: ExpressionSyntaxError
) -> None:
    flat = text.replace("\n", "\\n")  # one line, whatever the field holds
    shown = flat if len(flat) <= 80 else flat[:77] + "..."
    where = "" if error.offset is None else f" at position {error.offset + 1}"
    message = f"invalid expression `{shown}`: {error.description}{where}"
    if error.hint:
        message += f"; {error.hint}"
    problems.add(path, message, at=error.offset)


def _check_condition(group: Group, problems: Problems) -> None:
    spec, path = group.spec, ("jobs", group.name, "if")
    if spec.if_ is None:
        return
    try:
        group.condition = compile_condition(spec.if_)
    except ExpressionSyntaxError as error:
        _syntax_problem(problems, path, spec.if_, error)
        return
    group.refs.extend(Ref(path, chain, at, exact=False) for chain, at in group.condition.refs)


def _check_template(
    group: Group, problems: Problems, path: Path, text: str, parts: frozenset[str]
) -> None:
    try:
        jinja_text, expressions = split_template(text)
    except ExpressionSyntaxError as error:
        _syntax_problem(problems, path, text, error)
        return
    for span, expression in expressions:
        group.refs.extend(
            Ref(path, chain, span.inner_start + at, exact=False)
            for chain, at in expression.references
        )
    if has_template(jinja_text):
        _check_jinja(group, problems, path, jinja_text, parts)


def _check_jinja(
    group: Group, problems: Problems, path: Path, text: str, parts: frozenset[str]
) -> None:
    # `jobs.my-job.result` parses as `jobs.my - job.result`: the reference check explains
    # that, so the stray `job` is not reported as an unknown name as well
    allowed = TEMPLATE_NAMES | set(environment().globals) | {PLACEHOLDER} | parts
    try:
        tree = parse_template(text)
    except JinjaSyntaxError as exc:
        at = f"line {exc.line}" + ("" if exc.column is None else f", column {exc.column}")
        problems.add(path, f"invalid template at {at}: {exc.message}")
        return
    for name in sorted(free_names(tree) - allowed):
        hint = did_you_mean(name, TEMPLATE_NAMES)
        if name in ("needs", "flow"):
            hint = f" (`{name}` is read by `${{{{ }}}}` expressions: write ${{{{ {name}... }}}})"
        problems.add(
            path,
            f"unknown name {name!r} in template{hint}; templates read jobs, matrix, env and run",
        )
    group.refs.extend(
        Ref(path, chain) for chain in references(tree) if chain[0] in ("jobs", "matrix", "run")
    )


def _check_templates(group: Group, problems: Problems, parts: frozenset[str]) -> None:
    for where, text in template_fields(group.spec):
        _check_template(group, problems, ("jobs", group.name, *where), text, parts)


def _check_fields(group: Group, problems: Problems, parts: frozenset[str]) -> None:
    """`if`, `retry_on`, `outputs` and templates of one job (shared by its expansions)."""
    base = ("jobs", group.name)
    _check_condition(group, problems)
    for i, item in enumerate(group.spec.retry_on or ()):
        message = check_retry_on(item)
        if message is not None:
            if isinstance(item, str):
                message += did_you_mean(item, [k.value for k in RETRYABLE])
            problems.add((*base, "retry_on", i), message)
    for key, output in group.spec.outputs.items():
        from corral.plan.outputs import output_problem  # loaded by the first `outputs:`

        message = output_problem(output)
        if message is not None:
            problems.add((*base, "outputs", key), message)
    _check_templates(group, problems, parts)


def _report_cycles(
    groups: dict[str, Group],
    needs: dict[str, list[str]],
    order: Mapping[str, int],
    problems: Problems,
    group_of: Mapping[str, str],
) -> None:
    for cycle in graph.find_cycles(needs, order):
        first, second = cycle[0], cycle[1]
        spec_needs = groups[group_of[first]].spec.needs
        index = next((i for i, n in enumerate(spec_needs) if n in (second, group_of[second])), None)
        path: tuple[str | int, ...] = ("jobs", group_of[first], "needs")
        problems.add(
            path if index is None else (*path, index), "needs form a cycle: " + " -> ".join(cycle)
        )


def build_plan(flow: FlowFields, *, source: str = "flow", locate: Locator = _nowhere) -> Plan:
    """Expand, resolve and validate a flow; raises FlowError listing every problem.

    `locate` maps a path in the flow document to (line, column) for the messages.
    """
    problems = Problems(source, locate)
    groups = _expand(_with_defaults(flow, problems), problems)
    _resolve_needs(groups, problems)
    parts = frozenset(p for name in groups if _SEPARATED(name) for p in _PARTS(name)[1:])
    for group in groups.values():
        _check_fields(group, problems, parts)
    needs = {name: group.needs for group in groups.values() for name, _ in group.members}
    order = {name: i for i, name in enumerate(needs)}
    checker = Checker(groups, needs, problems)
    levels: list[list[str]] = []
    try:
        levels = graph.levels(needs, order)
    except CycleError:
        _report_cycles(groups, needs, order, problems, checker.group_of)
    for group in groups.values():  # with a cycle too: the closure walk still terminates
        checker.check(group)
    # one job's problems together, jobs in file order (each check runs over all jobs)
    rank = {name: i for i, name in enumerate(flow.jobs, start=1)}
    problems.sort(lambda path: rank.get(str(path[1]), 0) if path[0] == "jobs" else 0)
    problems.raise_if_any()
    jobs: dict[str, PlannedJob] = {}
    # no `defaults.tool`: no job inherits one (what `tool_inherited` says, asked once)
    may_inherit = flow.defaults.get("tool") is not None
    for group in groups.values():
        spec = group.spec
        retry = RetryPolicy.from_spec(spec)
        ancestors = checker.upstream(group) if group.condition.looks_upstream else None
        reads = frozenset(group.reads) if group.reads else _NO_READS
        need_groups = tuple(group.need_groups)
        inherited = may_inherit and tool_inherited(flow, group.name, locate)
        tool = tool_of(spec, inherited=inherited)
        budget = spec.budget.limits() if spec.budget is not None else None
        job_needs = tuple(group.needs)
        for name, values in group.members:
            jobs[name] = PlannedJob(
                name=name,
                group=group.name,
                spec=spec,
                needs=job_needs,
                matrix=MappingProxyType(values) if values is not None else None,
                condition=group.condition,
                priority=spec.priority,
                index=order[name],
                retry=retry,
                ancestors=ancestors,
                reads=reads,
                need_groups=need_groups,
                tool=tool,
                budget=budget,
            )
    return Plan(
        jobs=MappingProxyType(jobs),
        levels=levels,
        name=flow.name,
        budget=flow.budget.limits() if flow.budget is not None else None,
        fail_fast=flow.fail_fast,
        _dependents=graph.dependents_map(needs, order),
    )
