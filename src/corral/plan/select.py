"""`--only` and `--from`: a smaller plan cut out of a built one.

- `only=[J]` keeps J and everything it needs, transitively.
- `from_=[J]` keeps J and everything that needs it, transitively. Needs of the kept jobs
  that fall outside are *external*: `PlannedJob.external_needs` and `Plan.external_needs`
  list them, `PlannedJob.needs` no longer holds them, so the scheduler and `decide`
  treat them as already satisfied (a resume can still pass their old states for templates).
- Both: the jobs on the way from the `from_` jobs to the `only` jobs (the intersection).

A name may be a job, a matrix expansion, or a matrix job (meaning all its expansions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import MappingProxyType

from corral.errors import UsageError
from corral.plan import graph
from corral.plan.model import Plan, PlannedJob
from corral.plan.problems import did_you_mean


def _resolve(plan: Plan, names: Sequence[str], option: str) -> list[str]:
    groups: dict[str, list[str]] = {}
    for job in plan.jobs.values():
        groups.setdefault(job.group, []).append(job.name)
    found: list[str] = []
    for name in names:
        if name in plan.jobs:
            found.append(name)
        elif name in groups:
            found.extend(groups[name])
        else:
            known = [*plan.jobs, *groups]
            raise UsageError(f"{option} {name}: no such job{did_you_mean(name, known)}")
    return found


def select(plan: Plan, *, only: Sequence[str] = (), from_: Sequence[str] = ()) -> Plan:
    """The part of `plan` that `--only` / `--from` ask for; raises UsageError on a bad name."""
    if not only and not from_:
        return plan
    keep: set[str] | None = None
    if only:
        start = _resolve(plan, only, "--only")
        keep = set(start) | graph.closure(start, plan.needs)
    if from_:
        start = _resolve(plan, from_, "--from")
        down = set(start) | graph.closure(start, plan.dependents)
        keep = down if keep is None else keep & down
    assert keep is not None
    return _restrict(plan, keep)


def without(plan: Plan, done: Sequence[str]) -> Plan:
    """`plan` less the jobs in `done` (a resumed run's finished jobs): the jobs that
    needed them keep them as external needs, satisfied by their recorded states."""
    gone = set(done)
    return _restrict(plan, {name for name in plan.jobs if name not in gone})


def _restrict(plan: Plan, keep: set[str]) -> Plan:
    jobs: dict[str, PlannedJob] = {}
    for name, job in plan.jobs.items():
        if name not in keep:
            continue
        inside = tuple(n for n in job.needs if n in keep)
        outside = tuple(n for n in job.needs if n not in keep)
        ancestors = None if job.ancestors is None else job.ancestors & keep
        jobs[name] = dataclasses.replace(
            job, needs=inside, external_needs=job.external_needs + outside, ancestors=ancestors
        )
    needs = {name: job.needs for name, job in jobs.items()}
    index = {name: job.index for name, job in jobs.items()}
    external = frozenset(n for job in jobs.values() for n in job.external_needs)
    return dataclasses.replace(
        plan,
        jobs=MappingProxyType(jobs),
        levels=graph.levels(needs, index),
        external_needs=external,
        _dependents=graph.dependents_map(needs, jobs),
    )
