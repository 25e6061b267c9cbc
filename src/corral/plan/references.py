"""Checking what conditions and templates read against the graph, before anything runs.

`jobs.X` must be a job upstream (its needs, their needs...); `needs.X` one of the job's
direct needs, as written; fields, outputs and token counts must exist; `matrix.K` a key
of the job's matrix; `run.F` and `flow.F` one of their fields. Names in `${{ }}` and
`if:` are found ignoring case, as GitHub does; names in Jinja templates must match.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.config.fields import JobFields
from corral.plan.conditions import DEFAULT_CONDITION, Condition
from corral.plan.contexts import FLOW_FIELDS, NEEDS_FIELDS
from corral.plan.problems import Problems, did_you_mean
from corral.plan.views import JOB_FIELDS as VIEW_FIELDS
from corral.plan.views import TOKEN_FIELDS

Path = tuple[str | int, ...]
Chain = tuple[str, ...]
RUN_FIELDS = frozenset({"id", "name"})


@dataclass(frozen=True, slots=True)
class Ref:
    """One access chain read by a field: where (path, offset in its text) and how names
    match (Jinja exactly, GitHub expressions ignoring case)."""

    path: Path
    chain: Chain
    at: int | None = None
    exact: bool = True


@dataclass
class Group:
    """A job as written in the flow, with what is shared by all its expansions."""

    name: str
    spec: JobFields
    members: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    need_groups: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    condition: Condition = DEFAULT_CONDITION
    refs: list[Ref] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)


def find(name: str, names: Collection[str], exact: bool) -> str | None:
    """`name` among `names`: as written, or (unless `exact`) ignoring case."""
    if name in names:
        return name
    if not exact:
        lower = name.lower()
        return next((n for n in names if n.lower() == lower), None)
    return None


class Checker:
    """Checks every reference of every group; records the jobs each group reads."""

    def __init__(
        self, groups: dict[str, Group], needs: Mapping[str, list[str]], problems: Problems
    ) -> None:
        self.groups = groups
        self.needs = needs
        self.problems = problems
        self.group_of = {name: g.name for g in groups.values() for name, _ in g.members}

    def upstream(self, group: Group) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(group.needs)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.needs.get(name, ()))
        return frozenset(seen)

    def add(self, ref: Ref, message: str) -> None:
        shown = ".".join(ref.chain)
        self.problems.add(ref.path, f"{shown}: {message}", at=ref.at)

    def check(self, group: Group) -> None:
        if not group.refs:
            return
        upstream = self.upstream(group)
        for ref in group.refs:
            root = ref.chain[0] if ref.exact else ref.chain[0].lower()
            if len(ref.chain) < 2 or ref.chain[1] == "*":
                continue
            if root == "jobs":
                self._job(group, ref, upstream)
            elif root == "needs":
                self._need(group, ref)
            elif root == "matrix":
                self._matrix(group, ref)
            elif root in ("run", "flow"):
                self._fields(ref, RUN_FIELDS if root == "run" else FLOW_FIELDS)

    def _fields(self, ref: Ref, fields: frozenset[str]) -> None:
        if find(ref.chain[1], fields, ref.exact) is None:
            listed = " and ".join(sorted(fields))
            self.add(ref, f"{ref.chain[0]} has only {listed}{did_you_mean(ref.chain[1], fields)}")

    def _matrix(self, group: Group, ref: Ref) -> None:
        if not group.spec.matrix:
            self.add(ref, f"job {group.name!r} has no matrix")
            return
        from corral.plan.matrix import keys as matrix_keys  # a job with a matrix loaded it

        keys = matrix_keys(group.spec.matrix)
        if find(ref.chain[1], keys, ref.exact) is None:
            key = ref.chain[1]
            self.add(ref, f"unknown matrix key {key!r}{did_you_mean(key, keys)}")

    def _need(self, group: Group, ref: Ref) -> None:
        written = [name for name, _members in group.need_groups]
        target = find(ref.chain[1], written, exact=False)
        if target is None:
            name = ref.chain[1]
            extra = " (add it to needs, or read jobs.NAME for a job further up)"
            if find(name, self.groups, exact=False) is None:
                extra = did_you_mean(name, written)
            self.add(ref, f"{name!r} is not a direct need of {group.name!r}{extra}")
            return
        if len(ref.chain) < 3:
            return
        attr = ref.chain[2]
        if find(attr, NEEDS_FIELDS, exact=False) is None:
            self.add(
                ref,
                f"needs.{target} has only result and outputs "
                f"(corral's other fields are under jobs.{target})",
            )
        elif attr.lower() == "outputs" and len(ref.chain) > 3 and ref.chain[3] != "*":
            self._output(ref, self.group_of.get(target, target), ref.chain[3])

    def _output(self, ref: Ref, group_name: str, key: str) -> None:
        declared = self.groups[group_name].spec.outputs
        if find(key, declared, ref.exact) is None:
            self.add(ref, f"{group_name!r} declares no output {key!r}{did_you_mean(key, declared)}")

    def _unknown_job(self, ref: Ref, target: str) -> None:
        group = find(target, self.groups, ref.exact)
        if group is not None:  # a matrix job with no expansion of that name
            members = self.groups[group].members
            example = members[0][0] if members else group
            also = "" if ref.exact else f", or needs.{group} for all of them"
            self.add(
                ref,
                f"{group!r} is a matrix job; read one expansion, such as jobs[{example!r}]{also}",
            )
            return
        hint = did_you_mean(target, self.group_of)
        dashed = [n for n in self.group_of if n.startswith((target + "-", target + "."))]
        if dashed and ref.exact:
            hint = f" (a name with '-' or '.' is read as jobs[{dashed[0]!r}])"
        self.add(ref, f"no job named {target!r}{hint}")

    def _job(self, group: Group, ref: Ref, upstream: frozenset[str]) -> None:
        target = find(ref.chain[1], self.group_of, ref.exact)
        if target is None:
            self._unknown_job(ref, ref.chain[1])
            return
        if target not in upstream:
            self.add(ref, f"{target!r} is not among the needs of {group.name!r} (add it to needs)")
            return
        group.reads.add(target)
        if len(ref.chain) < 3:
            return
        attr = find(ref.chain[2], VIEW_FIELDS, ref.exact)
        sub = ref.chain[3] if len(ref.chain) > 3 and ref.chain[3] != "*" else None
        if attr is None:
            name = ref.chain[2]
            self.add(ref, f"a job has no {name!r}{did_you_mean(name, VIEW_FIELDS)}")
        elif attr == "outputs" and sub is not None:
            self._output(ref, self.group_of[target], sub)
        elif attr == "tokens" and sub is not None and find(sub, TOKEN_FIELDS, ref.exact) is None:
            self.add(ref, f"tokens has no {sub!r}{did_you_mean(sub, TOKEN_FIELDS)}")
