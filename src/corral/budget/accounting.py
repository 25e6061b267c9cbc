"""The ledger: tokens and dollars per attempt, job, model, tool and run, as running totals.

It is the one place usage becomes money: it prices each `UsageUpdated` and publishes the
result as `SpendUpdated`, which the budget guard, the run's fold and the views consume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from operator import attrgetter
from typing import ClassVar

from corral.budget.pricing import PriceBook
from corral.events.types import Event, JobStarted, SpendUpdated, UsageUpdated
from corral.models import Cost, CostSource, Usage, plain_decimal

UNKNOWN_TOOL = "unknown"  # an attempt whose job never announced its tool


@dataclass(frozen=True, slots=True)
class Account:
    """Usage and cost of a set of model calls, with the per-model breakdown."""

    usage: Usage = field(default_factory=Usage)
    by_model: Mapping[str, Usage] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost.zero)
    cost_by_model: Mapping[str, Cost] = field(default_factory=dict)


_USAGE_FIELDS = attrgetter(*(f.name for f in fields(Usage)))
_USAGE_SIZE = len(fields(Usage))


class _Tally:
    """A mutable Usage sum: adding Usage values field by field was the hot spot."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * _USAGE_SIZE

    def add(self, usage: Usage, sign: int) -> None:
        self.counts = [c + sign * n for c, n in zip(self.counts, _USAGE_FIELDS(usage), strict=True)]

    def value(self) -> Usage:
        return Usage(*self.counts)


class _CostSum:
    """A sum of Costs that can also take one back, with `Cost.__add__`'s semantics."""

    __slots__ = ("estimated", "priced", "unpriced")

    def __init__(self) -> None:
        self.priced = Decimal(0)
        self.unpriced = 0  # how many summed costs were (partly) unpriced
        self.estimated = 0

    def add(self, cost: Cost, sign: int) -> None:
        self.priced += sign * cost.known_usd
        if cost.usd is None or cost.source is CostSource.UNPRICED:
            self.unpriced += sign
        elif cost.source is CostSource.ESTIMATED:
            self.estimated += sign

    def value(self) -> Cost:
        # taking a live estimate back leaves its digits behind (0.0924280): drop them
        priced = plain_decimal(self.priced)
        if self.unpriced > 0:
            # as Cost.__add__ does: the priced part, or None when nothing was priced
            return Cost(priced if priced else None, CostSource.UNPRICED)
        if self.estimated > 0:
            return Cost(priced, CostSource.ESTIMATED)
        return Cost(priced, CostSource.REPORTED)


class _ModelSum:
    __slots__ = ("cost", "count", "usage")

    def __init__(self) -> None:
        self.usage = _Tally()
        self.cost = _CostSum()
        self.count = 0  # contributions: the model leaves the breakdown when this is 0


@dataclass(slots=True)
class _Attempt:
    tool: str
    usage: Usage
    by_model: dict[str, Usage]
    cost: Cost
    cost_by_model: dict[str, Cost]


class _Bucket:
    """Running totals over some attempts; an attempt is added, or taken back, whole."""

    __slots__ = ("attempts", "cost", "models", "usage")

    def __init__(self) -> None:
        self.usage = _Tally()
        self.cost = _CostSum()
        self.models: dict[str, _ModelSum] = {}
        self.attempts = 0

    def add(self, attempt: _Attempt, sign: int) -> None:
        self.attempts += sign
        self.usage.add(attempt.usage, sign)
        self.cost.add(attempt.cost, sign)
        for model, cost in attempt.cost_by_model.items():
            total = self.models.get(model)
            if total is None:
                total = self.models[model] = _ModelSum()
            model_usage = attempt.by_model.get(model)
            if model_usage is not None:
                total.usage.add(model_usage, sign)
            total.cost.add(cost, sign)
            total.count += sign
            if total.count == 0:
                del self.models[model]

    def account(self) -> Account:
        return Account(
            usage=self.usage.value(),
            by_model={m: s.usage.value() for m, s in self.models.items()},
            cost=self.cost.value(),
            cost_by_model={m: s.cost.value() for m, s in self.models.items()},
        )

    def model_account(self, model: str) -> Account:
        total = self.models[model]
        usage, cost = total.usage.value(), total.cost.value()
        return Account(usage, {model: usage}, cost, {model: cost})


class Ledger:
    """A bus subscriber that accounts every attempt's usage and cost.

    A `UsageUpdated` carries the attempt's running total per model, so it replaces the
    attempt's last figures; the job, tool, model and run totals move by the difference,
    which keeps an event O(models in the attempt) however many jobs the run has. Each
    recorded figure is published as `SpendUpdated` through `publish` (when given).
    `JobFinished` is not counted: its figures are the ones published here.
    """

    BUS_EVENTS: ClassVar[tuple[type[Event], ...]] = (UsageUpdated, JobStarted)  # what it reads

    def __init__(
        self,
        prices: PriceBook | None = None,
        publish: Callable[[Event], None] | None = None,
    ) -> None:
        self._prices = prices if prices is not None else PriceBook()
        self._publish = publish
        self._tools: dict[str, str] = {}
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self._jobs: dict[str, _Bucket] = {}
        self._by_tool: dict[str, _Bucket] = {}
        self._run = _Bucket()

    # -- input ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if isinstance(event, UsageUpdated):
            self.record(
                event.job,
                event.attempt,
                event.by_model,
                cost=event.cost,
                cost_by_model=event.cost_by_model,
            )
        elif isinstance(event, JobStarted):
            self.set_tool(event.job, event.tool)

    def set_tool(self, job: str, tool: str) -> None:
        """Say which tool runs `job` (prices its models and files it under the tool)."""
        self._tools[job] = tool

    def record(
        self,
        job: str,
        attempt: int,
        by_model: Mapping[str, Usage],
        *,
        cost: Cost | None = None,
        cost_by_model: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Replace the attempt's totals and publish them as `SpendUpdated`.

        `cost` is the CLI's own figure when it gave one. A resumed run records the spend
        of earlier runs under attempts 0, -1, ... so that its budgets count it.
        """
        tool = self._tools.get(job, UNKNOWN_TOOL)
        new = self._price(tool, by_model, cost, cost_by_model or {})
        old = self._attempts.get((job, attempt))
        job_bucket = self._jobs.get(job)
        if job_bucket is None:
            job_bucket = self._jobs[job] = _Bucket()
        if old is not None:
            for bucket in (job_bucket, self._tool_bucket(old.tool), self._run):
                bucket.add(old, -1)
            if self._by_tool[old.tool].attempts == 0:
                del self._by_tool[old.tool]
        for bucket in (job_bucket, self._tool_bucket(tool), self._run):
            bucket.add(new, 1)
        self._attempts[(job, attempt)] = new
        if self._publish is not None:
            self._publish(
                SpendUpdated(
                    job=job,
                    attempt=attempt,
                    by_model=dict(new.by_model),
                    cost=new.cost,
                    cost_by_model=dict(new.cost_by_model),
                    job_usage=job_bucket.usage.value(),
                    job_cost=job_bucket.cost.value(),
                    run_usage=self._run.usage.value(),
                    run_cost=self._run.cost.value(),
                )
            )

    def _tool_bucket(self, tool: str) -> _Bucket:
        bucket = self._by_tool.get(tool)
        if bucket is None:
            bucket = self._by_tool[tool] = _Bucket()
        return bucket

    def _price(
        self,
        tool: str,
        by_model: Mapping[str, Usage],
        cost: Cost | None,
        cost_by_model: Mapping[str, Decimal],
    ) -> _Attempt:
        tally = _Tally()
        for model_usage in by_model.values():
            tally.add(model_usage, 1)
        usage = tally.value()
        pricing_tool = None if tool == UNKNOWN_TOOL else tool
        models = list(by_model) + [m for m in cost_by_model if m not in by_model]
        per_model: dict[str, Cost] = {}
        for model in models:
            if model in cost_by_model:
                per_model[model] = Cost(cost_by_model[model], CostSource.REPORTED)
            elif cost is not None and not cost_by_model and len(models) == 1:
                per_model[model] = cost  # the one model used: the reported total is its cost
            else:
                per_model[model] = self._prices.price(model, by_model[model], tool=pricing_tool)
        if cost is None:
            cost = Cost.zero()
            for model_cost in per_model.values():
                cost = cost + model_cost
        return _Attempt(tool, usage, dict(by_model), cost, per_model)

    # -- queries -------------------------------------------------------------------------

    def attempt(self, job: str, attempt: int) -> Account:
        """One attempt's figures (empty when it reported nothing)."""
        found = self._attempts.get((job, attempt))
        if found is None:
            return Account()
        return Account(found.usage, dict(found.by_model), found.cost, dict(found.cost_by_model))

    def job(self, name: str) -> Account:
        """A job's figures: the sum over its attempts."""
        bucket = self._jobs.get(name)
        return bucket.account() if bucket is not None else Account()

    def run(self) -> Account:
        """The whole run."""
        return self._run.account()

    def by_job(self) -> dict[str, Account]:
        return {name: bucket.account() for name, bucket in self._jobs.items()}

    def by_model(self) -> dict[str, Account]:
        return {model: self._run.model_account(model) for model in self._run.models}

    def by_tool(self) -> dict[str, Account]:
        return {tool: bucket.account() for tool, bucket in self._by_tool.items()}

    def tool_of(self, job: str) -> str | None:
        return self._tools.get(job)
