"""The most a flow can spend: one pure rule, used by `corral plan` and the budget guard."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from corral.models import BudgetUnit


class Limits(Protocol):
    """A budget: `BudgetLimits`, or a flow file's `BudgetSpec` (read the same way)."""

    @property
    def usd(self) -> Decimal | None: ...
    @property
    def tokens(self) -> int | None: ...
    @property
    def on_exceed(self) -> str: ...


def limit_of(budget: Limits, unit: BudgetUnit) -> Decimal | int | None:
    """The budget's limit in `unit`, or None when it sets none."""
    return budget.usd if unit is BudgetUnit.USD else budget.tokens


def spend_cap(
    run_budget: Limits | None, job_budgets: Mapping[str, Limits | None], unit: BudgetUnit
) -> Decimal | int | None:
    """The most the flow can spend in `unit`; None when nothing bounds it.

    `job_budgets` names every job of the flow (None: no budget). The bound is the run
    budget, or the sum of the job budgets when every job has one, whichever is lower;
    `warn` budgets bound nothing. Limits act on usage reports, so a job can overshoot by
    its last model call.
    """
    caps: list[Decimal | int] = []
    if run_budget is not None and run_budget.on_exceed != "warn":
        limit = limit_of(run_budget, unit)
        if limit is not None:
            caps.append(limit)
    limits = [
        None if spec is None or spec.on_exceed == "warn" else limit_of(spec, unit)
        for spec in job_budgets.values()
    ]
    if limits and all(limit is not None for limit in limits):
        start: Decimal | int = Decimal(0) if unit is BudgetUnit.USD else 0
        caps.append(sum((limit for limit in limits if limit is not None), start))
    return min(caps) if caps else None


def max_spend(
    run_budget: Limits | None, job_budgets: Mapping[str, Limits | None]
) -> Decimal | None:
    """`spend_cap` in dollars."""
    cap = spend_cap(run_budget, job_budgets, BudgetUnit.USD)
    return None if cap is None else Decimal(cap)


def max_tokens(run_budget: Limits | None, job_budgets: Mapping[str, Limits | None]) -> int | None:
    """`spend_cap` in budget tokens (fresh input + cache writes + output)."""
    cap = spend_cap(run_budget, job_budgets, BudgetUnit.TOKENS)
    return None if cap is None else int(cap)
