"""Small text helpers shared by the renderers: statuses, token counts, money."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.text import Text

from corral.models import Cost, CostSource, JobStatus, Usage

STYLE = {
    JobStatus.WAITING: "dim",
    JobStatus.READY: "cyan",
    JobStatus.RUNNING: "bold blue",
    JobStatus.RETRYING: "yellow",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "bold red",
    JobStatus.TIMED_OUT: "red",
    JobStatus.CANCELLED: "yellow",
    JobStatus.SKIPPED: "dim",
}


def status_text(status: JobStatus, attempts: int = 0) -> Text:
    label = status.value.replace("_", " ")
    if attempts > 1:
        label += f" ×{attempts}"
    return Text(label, style=STYLE.get(status, ""))


def tokens_text(count: int) -> str:
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def money_text(usd: Decimal) -> str:
    """`$1.25`, `$0.0042`, `$0`: dollars for people (JSON keeps the exact decimal)."""
    if usd == 0:
        return "$0"
    if usd < Decimal("0.01"):
        return f"${usd:.4f}"
    return f"${usd:.2f}"


def budget_meters(budget: Any, spent: Any) -> list[tuple[str, float]]:
    """(label, fraction spent) for a run budget's dollar and token limits.

    `budget` is a BudgetSpec, `spent` an Account (usage, cost); tokens count as budgets
    count them: fresh input, cache writes and output.
    """
    meters: list[tuple[str, float]] = []
    if budget.usd:
        usd = spent.cost.known_usd
        meters.append((f"{money_text(usd)} of {money_text(budget.usd)}", float(usd / budget.usd)))
    if budget.tokens:
        used = spent.usage.budget_tokens
        label = f"{tokens_text(used)} of {tokens_text(budget.tokens)} tokens"
        meters.append((label, used / budget.tokens))
    return meters


def usage_line(usage: Usage, cost: Cost | None) -> str:
    """`2.4k in · 600 out · $0.03`: a run's totals in one line."""
    text = f"{tokens_text(usage.input_tokens)} in · {tokens_text(usage.output_tokens)} out"
    return f"{text} · {cost_text(cost)}" if cost is not None else text


def cost_text(cost: Cost | None) -> str:
    if cost is None:
        return ""
    if cost.source is CostSource.UNPRICED:
        return f"{money_text(cost.usd)}+unpriced" if cost.usd else "unpriced"
    assert cost.usd is not None
    mark = "" if cost.source is CostSource.REPORTED else "~"
    return f"{mark}{money_text(cost.usd)}"
