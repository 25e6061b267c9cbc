"""Small text helpers shared by the renderers: statuses, token counts, money, times."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.durations import format_duration
from corral.models import (
    BudgetAction,
    BudgetLimits,
    BudgetUnit,
    Cost,
    CostSource,
    JobStatus,
    Tokens,
    Usage,
    amount_text,
    money_text,
)
from corral.times import display_time

if TYPE_CHECKING:
    from rich.text import Text

    from corral.events.types import BudgetExceeded
    from corral.journal import RunJournal

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
    """A status as the tables show it ("failed" and its attempt count after retries),
    coloured: the word is the one the JSON says (`timed_out`), everywhere."""
    from rich.text import Text  # here: `corral runs` to a pipe formats without rich

    return Text(status_label(status, attempts), style=STYLE.get(status, ""))


def status_label(status: JobStatus, attempts: int = 0) -> str:
    """`status_text`'s words, without its colour."""
    return status.value + (f" ×{attempts}" if attempts > 1 else "")


def tokens_text(count: int) -> str:
    """`950`, `1.2k`, `3.40M`: a token count for people."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def budget_breach_text(event: BudgetExceeded) -> str:
    """`budget (run) exceeded: $0.60 of $0.50 so far; stop: no new job starts`."""
    where = f"job {event.job}" if event.job else "run"
    spent, limit = amount_text(event.unit, event.spent), amount_text(event.unit, event.limit)
    action = _BUDGET_ACTIONS[event.action]
    return f"budget ({where}) exceeded: {spent} of {limit} so far; {event.action}: {action}"


_BUDGET_ACTIONS = {
    BudgetAction.WARN: "jobs go on",
    BudgetAction.STOP: "no new job starts",
    BudgetAction.KILL: "running jobs are stopped",
}


def budget_reckoning(journal: RunJournal) -> list[str]:
    """[`budget (run): ~$0.90 spent of $0.50`]: each budget reached, against what was
    finally spent (the breach message shows what was spent when it was reached)."""
    lines = []
    for breach in dict.fromkeys((b.job, b.unit) for b in journal.breaches):
        job, unit = breach
        first = next(b for b in journal.breaches if (b.job, b.unit) == breach)
        if job:
            entry = journal.jobs.get(job)
            usage, cost = (entry.usage, entry.cost) if entry else (Usage(), None)
        else:
            usage, cost = journal.usage, journal.cost
        if unit is BudgetUnit.USD:
            spent = cost_text(cost) or "$0"
        else:
            spent = f"{tokens_text(usage.budget_tokens)} tokens"
        limit = amount_text(unit, first.limit)
        lines.append(f"budget ({f'job {job}' if job else 'run'}): {spent} spent of {limit}")
    return lines


def budget_meters(budget: BudgetLimits | None, usage: Usage, cost: Cost) -> list[tuple[str, float]]:
    """(label, fraction spent) for a run budget's dollar and token limits, such as
    ("$0.12 of $5.00", 0.024); tokens count as budgets count them: fresh input, cache
    writes and output."""
    meters: list[tuple[str, float]] = []
    if budget is None:
        return meters
    if budget.usd:
        usd = cost.known_usd
        meters.append((f"{money_text(usd)} of {money_text(budget.usd)}", float(usd / budget.usd)))
    if budget.tokens:
        used = usage.budget_tokens
        label = f"{tokens_text(used)} of {tokens_text(budget.tokens)} tokens"
        meters.append((label, used / budget.tokens))
    return meters


def usage_parts(usage: Usage, cost: Cost | None) -> list[str]:
    """[`2.4k in`, `600 out`, `$0.03`]: a run's totals."""
    parts = [f"{tokens_text(usage.input_tokens)} in", f"{tokens_text(usage.output_tokens)} out"]
    return [*parts, cost_text(cost)] if cost is not None else parts


def usage_line(usage: Usage, cost: Cost | None) -> str:
    """`2.4k in · 600 out · $0.03`: a run's totals in one line."""
    return " · ".join(usage_parts(usage, cost))


def cost_text(cost: Cost | None) -> str:
    """`$0.12` reported, `~$0.12` estimated, `$0.12+unpriced`; "" for no cost."""
    if cost is None:
        return ""
    if cost.source is CostSource.UNPRICED:
        return f"{money_text(cost.usd)}+unpriced" if cost.usd else "unpriced"
    assert cost.usd is not None
    mark = "" if cost.source is CostSource.REPORTED else "~"
    return f"{mark}{money_text(cost.usd)}"


def cost_or_dash(cost: Cost | None) -> str:
    """`$0.12` reported, `~$0.12` estimated, `$0.12+unpriced`; `-` when nothing was spent."""
    return cost_text(cost) or "-"


def time_text(ts: float | None) -> str:
    """A POSIX time for people: `2026-12-03 14:43:29Z` (UTC, as in the JSON); `-` when
    unknown."""
    return display_time(ts)


def duration_or_dash(seconds: float | None) -> str:
    """`1m 05s`, or `-` when unknown."""
    return "-" if seconds is None else format_duration(seconds)


def token_kinds_text(t: Tokens) -> str:
    """`1.2k in / 300 out / 18.0k+500 cache`: a history total by kind."""
    text = f"{tokens_text(t.input)} in / {tokens_text(t.output)} out"
    if t.cache_read or t.cache_write:
        text += f" / {tokens_text(t.cache_read)}+{tokens_text(t.cache_write)} cache"
    return text
