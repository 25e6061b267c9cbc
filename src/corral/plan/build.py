"""build_plan: a FlowSpec in, a validated Plan out, or a FlowError with every problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from corral.config.schema import JOB_FIELDS, NOT_DEFAULTABLE, FlowSpec, JobSpec
from corral.plan import graph
from corral.plan.conditions import CONDITION_NAMES, DEFAULT_CONDITION, Condition, compile_condition
from corral.plan.expressions import (
    ENV,
    ExpressionSyntaxError,
    free_names,
    normalize_template,
    parse_template,
    references,
    strip_wrapper,
)
from corral.plan.matrix import expand
from corral.plan.model import Plan, PlannedJob
from corral.plan.outputs import output_problem
from corral.plan.problems import Locator, Problems, did_you_mean
from corral.plan.retry import RETRYABLE, RetryPolicy, check_retry_on
from corral.plan.templates import RUN_FIELDS, TEMPLATE_NAMES, template_fields
from corral.plan.views import JOB_FIELDS as VIEW_FIELDS
from corral.plan.views import TOKEN_FIELDS

Chain = tuple[str, ...]


def _nowhere(path: tuple[str | int, ...]) -> tuple[int, int] | None:
    return None


@dataclass
class _Group:
    """A job as written in the flow, with what is shared by all its expansions."""

    name: str
    spec: JobSpec
    members: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    condition: Condition = DEFAULT_CONDITION
    # (path inside the job, chain, names the text may use) for every reference read
    refs: list[tuple[tuple[str | int, ...], Chain]] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)


def _with_defaults(flow: FlowSpec, problems: Problems) -> dict[str, JobSpec]:
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
    jobs: dict[str, JobSpec] = {}
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


def _expand(specs: Mapping[str, JobSpec], problems: Problems) -> dict[str, _Group]:
    groups = {name: _Group(name, spec) for name, spec in specs.items()}
    taken = set(specs)
    seen: set[str] = set()
    for group in groups.values():
        if not group.spec.matrix:
            group.members.append((group.name, None))
            seen.add(group.name)
            continue
        try:
            expansions = expand(group.name, group.spec.matrix, taken - {group.name})
        except ValueError as exc:
            problems.add(("jobs", group.name, "matrix"), str(exc))
            continue
        for item in expansions:
            if item.name in seen:
                problems.add(
                    ("jobs", group.name, "matrix"),
                    f"expansion {item.name!r} clashes with another job",
                )
                continue
            seen.add(item.name)
            taken.add(item.name)
            group.members.append((item.name, dict(item.values)))
    return groups


def _resolve_needs(groups: dict[str, _Group], problems: Problems) -> None:
    member_of = {name: g.name for g in groups.values() for name, _ in g.members}
    # what a need names: a job, every expansion of a matrix job, or one expansion
    targets = {name: [name] for name in member_of}
    targets.update((g.name, [name for name, _ in g.members]) for g in groups.values())
    for group in groups.values():
        resolved: dict[str, None] = {}
        for i, need in enumerate(group.spec.needs):
            found = targets.get(need)
            if found is not None and member_of.get(found[0] if found else "") != group.name:
                resolved.update(dict.fromkeys(found))
                continue
            path = ("jobs", group.name, "needs", i)
            if found is not None:
                problems.add(path, f"{group.name!r} needs itself")
            else:
                known = [*groups, *(n for n in member_of if n not in groups)]
                problems.add(path, f"needs {need!r}, which is not a job{did_you_mean(need, known)}")
        group.needs = list(resolved)


def _check_condition(group: _Group, problems: Problems) -> None:
    spec, path = group.spec, ("jobs", group.name, "if")
    if spec.if_ is None:
        return
    try:
        group.condition = compile_condition(spec.if_)
    except ExpressionSyntaxError as exc:
        column = exc.column
        if column is not None and exc.line == 1:
            column += strip_wrapper(spec.if_)[1]  # count the `${{` the user wrote
        where = "" if column is None else f" at column {column}"
        if exc.line > 1:
            where = f" at line {exc.line}" + ("" if column is None else f", column {column}")
        problems.add(path, f"invalid `if` expression `{spec.if_}`{where}: {exc.message}")
        return
    names = set(group.condition.calls) | {chain[0] for chain in group.condition.refs}
    for name in sorted(names - CONDITION_NAMES):
        problems.add(
            path,
            f"unknown name {name!r} in `if`{did_you_mean(name, CONDITION_NAMES)}; conditions "
            "read jobs, matrix and success(), failure(), always(), cancelled()",
        )
    group.refs.extend((path, chain) for chain in group.condition.refs)


def _check_templates(group: _Group, problems: Problems, parts: frozenset[str]) -> None:
    # `jobs.my-job.result` parses as `jobs.my - job.result`: the reference check explains
    # that, so the stray `job` is not reported as an unknown name as well
    allowed = TEMPLATE_NAMES | set(ENV.globals) | parts
    for where, text in template_fields(group.spec):
        path = ("jobs", group.name, *where)
        try:
            tree = parse_template(normalize_template(text))
        except ExpressionSyntaxError as exc:
            at = f"line {exc.line}" + ("" if exc.column is None else f", column {exc.column}")
            problems.add(path, f"invalid template at {at}: {exc.message}")
            continue
        for name in sorted(free_names(tree) - allowed):
            problems.add(
                path,
                f"unknown name {name!r} in template{did_you_mean(name, TEMPLATE_NAMES)}; "
                "templates read jobs, matrix, env and run",
            )
        group.refs.extend((path, c) for c in references(tree) if c[0] in ("jobs", "matrix", "run"))


def _check_fields(group: _Group, problems: Problems, parts: frozenset[str]) -> None:
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
        message = output_problem(output)
        if message is not None:
            problems.add((*base, "outputs", key), message)
    _check_templates(group, problems, parts)


class _Checker:
    """Checks `jobs.X...`, `matrix.K` and `run.F` references against the graph."""

    def __init__(
        self, groups: dict[str, _Group], needs: Mapping[str, list[str]], problems: Problems
    ) -> None:
        self.groups = groups
        self.needs = needs
        self.problems = problems
        self.group_of = {name: g.name for g in groups.values() for name, _ in g.members}

    def upstream(self, group: _Group) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(group.needs)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.needs.get(name, ()))
        return frozenset(seen)

    def check(self, group: _Group) -> None:
        if not group.refs:
            return
        upstream = self.upstream(group)
        for path, chain in group.refs:
            shown = ".".join(chain)
            if chain[0] == "jobs" and len(chain) > 1:
                self._job(group, path, chain, upstream, shown)
            elif chain[0] == "matrix" and len(chain) > 1:
                keys = list(group.spec.matrix or ())
                if not keys:
                    self.problems.add(path, f"{shown}: job {group.name!r} has no matrix")
                elif chain[1] not in keys:
                    self.problems.add(
                        path,
                        f"{shown}: unknown matrix key {chain[1]!r}{did_you_mean(chain[1], keys)}",
                    )
            elif chain[0] == "run" and len(chain) > 1 and chain[1] not in RUN_FIELDS:
                self.problems.add(
                    path, f"{shown}: run has only id and name{did_you_mean(chain[1], RUN_FIELDS)}"
                )

    def _job(
        self,
        group: _Group,
        path: tuple[str | int, ...],
        chain: Chain,
        upstream: frozenset[str],
        shown: str,
    ) -> None:
        target = chain[1]
        if target not in self.group_of:
            if target in self.groups:  # a matrix job with no expansion of that name
                example = (
                    self.groups[target].members[0][0] if self.groups[target].members else target
                )
                self.problems.add(
                    path,
                    f"{shown}: {target!r} is a matrix job; read one expansion, "
                    f"such as jobs[{example!r}]",
                )
                return
            hint = did_you_mean(target, self.group_of)
            dashed = [n for n in self.group_of if n.startswith((target + "-", target + "."))]
            if dashed:
                hint = f" (a name with '-' or '.' is read as jobs[{dashed[0]!r}])"
            self.problems.add(path, f"{shown}: no job named {target!r}{hint}")
            return
        if target not in upstream:
            self.problems.add(
                path,
                f"{shown}: {target!r} is not among the needs of {group.name!r} (add it to needs)",
            )
            return
        group.reads.add(target)
        if len(chain) < 3:
            return
        attr = chain[2]
        if attr not in VIEW_FIELDS:
            self.problems.add(
                path, f"{shown}: a job has no {attr!r}{did_you_mean(attr, VIEW_FIELDS)}"
            )
        elif attr == "outputs" and len(chain) > 3:
            declared = self.groups[self.group_of[target]].spec.outputs
            if chain[3] not in declared:
                self.problems.add(
                    path,
                    f"{shown}: {target!r} declares no output {chain[3]!r}"
                    f"{did_you_mean(chain[3], declared)}",
                )
        elif attr == "tokens" and len(chain) > 3 and chain[3] not in TOKEN_FIELDS:
            self.problems.add(
                path, f"{shown}: tokens has no {chain[3]!r}{did_you_mean(chain[3], TOKEN_FIELDS)}"
            )


def _report_cycles(
    groups: dict[str, _Group],
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


def build_plan(flow: FlowSpec, *, source: str = "flow", locate: Locator = _nowhere) -> Plan:
    """Expand, resolve and validate a flow; raises FlowError listing every problem.

    `locate` maps a path in the flow document to (line, column) for the messages.
    """
    problems = Problems(source, locate)
    groups = _expand(_with_defaults(flow, problems), problems)
    _resolve_needs(groups, problems)
    parts = frozenset(p for name in groups for p in re.split(r"[-.]", name)[1:])
    for group in groups.values():
        _check_fields(group, problems, parts)
    needs = {name: group.needs for group in groups.values() for name, _ in group.members}
    order = {name: i for i, name in enumerate(needs)}
    checker = _Checker(groups, needs, problems)
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
    for group in groups.values():
        retry = RetryPolicy.from_spec(group.spec)
        ancestors = checker.upstream(group) if group.condition.looks_upstream else None
        reads = frozenset(group.reads)
        for name, values in group.members:
            jobs[name] = PlannedJob(
                name=name,
                group=group.name,
                spec=group.spec,
                needs=tuple(group.needs),
                matrix=MappingProxyType(values) if values is not None else None,
                condition=group.condition,
                priority=group.spec.priority,
                index=order[name],
                retry=retry,
                ancestors=ancestors,
                reads=reads,
            )
    return Plan(
        jobs=MappingProxyType(jobs),
        levels=levels,
        name=flow.name,
        budget=flow.budget,
        fail_fast=flow.fail_fast,
        _dependents=graph.dependents_map(needs, order),
    )
