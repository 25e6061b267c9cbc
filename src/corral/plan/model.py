"""The plan: frozen values the scheduler walks (PlannedJob, Plan) and the ready order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.config.fields import JobFields
from corral.models import BudgetLimits
from corral.plan.adapter import COMMAND_TOOL
from corral.plan.conditions import DEFAULT_CONDITION, Condition
from corral.plan.expressions import Namespace
from corral.plan.graph import closure
from corral.plan.retry import RetryPolicy


@dataclass(frozen=True)
class PlannedJob:
    """One job of the plan, after matrix expansion.

    `group` is the name written in the flow file (the matrix job for an expansion).
    `needs` are expanded names inside the plan; `external_needs` are needs left out by
    `select(from_=...)`, to be treated as already satisfied. `ancestors` holds every
    transitive need, computed only when the condition looks upstream (failure(),
    cancelled()); `reads` are the jobs the condition and templates name.
    `need_groups` pairs each need as written with the plan jobs it stands for (all the
    expansions of a matrix job): the `needs` context of conditions and `${{ }}`.

    `tool` is decided once, here: the agent adapter that runs the job, or None for a
    plain command (see `build_plan`). `budget` is the job's budget, if it has one.
    """

    name: str
    group: str
    spec: JobFields = field(repr=False)
    needs: tuple[str, ...] = ()
    matrix: Mapping[str, Any] | None = None
    condition: Condition = DEFAULT_CONDITION
    priority: int = 0
    index: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ancestors: frozenset[str] | None = None
    reads: frozenset[str] = frozenset()
    external_needs: tuple[str, ...] = ()
    need_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tool: str | None = None
    budget: BudgetLimits | None = None

    @property
    def is_agent(self) -> bool:
        """Runs an agent CLI through its adapter (not a plain command)."""
        return self.tool is not None

    @property
    def adapter(self) -> str:
        """The tool adapter that builds its argv: `tool`, or `generic` for a command."""
        return self.tool or COMMAND_TOOL

    def readable(self) -> frozenset[str]:
        """Jobs whose values this job's condition and templates may read."""
        names = self.reads.union(self.needs)
        return names | self.ancestors if self.ancestors else names

    def matrix_namespace(self) -> Namespace:
        return Namespace("matrix", dict(self.matrix or {}))


@dataclass(frozen=True)
class Plan:
    """A validated, expanded flow.

    `jobs` is in flow-file order (expansions in place of their matrix job); `levels`
    lists what can run in parallel, each level in plan order. `external_needs` are jobs
    outside this plan that some job needs and that count as succeeded (see `select`).
    """

    jobs: Mapping[str, PlannedJob]
    levels: list[list[str]]
    external_needs: frozenset[str] = frozenset()
    name: str | None = None
    budget: BudgetLimits | None = None
    fail_fast: bool = False
    _dependents: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __contains__(self, name: object) -> bool:
        return name in self.jobs

    def needs(self, name: str) -> tuple[str, ...]:
        return self.jobs[name].needs

    def dependents(self, name: str) -> tuple[str, ...]:
        """Jobs that need `name` directly, in plan order."""
        if name not in self.jobs:
            raise KeyError(name)
        return self._dependents.get(name, ())

    def transitive_needs(self, name: str) -> frozenset[str]:
        return closure([name], self.needs)

    def transitive_dependents(self, name: str) -> frozenset[str]:
        return closure([name], self.dependents)

    @property
    def order(self) -> list[str]:
        """A topological order: level by level, plan order inside a level."""
        return [name for level in self.levels for name in level]

    def job_budgets(self) -> dict[str, BudgetLimits | None]:
        """Every job's budget (None: it has none), for `max_spend` and the guard."""
        return {name: job.budget for name, job in self.jobs.items()}


def ready_key(job: PlannedJob) -> tuple[int, int]:
    """Sort key among ready jobs: higher `priority` first, then plan order."""
    return (-job.priority, job.index)


class ReadyQueue:
    """Jobs whose needs are done, popped by `ready_key` (a heap; not thread-safe)."""

    def __init__(self, jobs: Iterable[PlannedJob] = ()) -> None:
        self._heap: list[tuple[int, int, str]] = []
        for job in jobs:
            self.push(job)

    def push(self, job: PlannedJob) -> None:
        heapq.heappush(self._heap, (*ready_key(job), job.name))

    def pop(self) -> str:
        """The name of the next job to start; IndexError when empty."""
        return heapq.heappop(self._heap)[2]

    def drain(self) -> list[str]:
        """Every queued name, in pop order; the queue is left empty."""
        names = [entry[2] for entry in sorted(self._heap)]
        self._heap = []
        return names

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)
