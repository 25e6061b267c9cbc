"""The JSON documents the API answers with, made from the history's records.

The fields are those of the CLI's `--json` outputs (`corral runs`, `show`, `usage`) plus
what a remote client needs (owner, job counts, the graph, budgets, last lines); times
are ISO 8601 UTC with "Z", money decimal strings, tokens ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from corral.models import BudgetLimits, Cost, JobStatus, Tokens
from corral.store.records import AttemptRow, JobRecord, RunRecord, RunRow
from corral.times import with_iso_times

if TYPE_CHECKING:
    from corral.plan import Plan


def run_summary(row: RunRow) -> dict[str, Any]:
    """A line of `corral runs --json`, plus owner and job counts."""
    data = row.to_dict()
    data["owner"] = row.user
    data["jobs_total"] = row.jobs_total
    data["jobs_done"] = row.jobs_succeeded + row.jobs_failed + row.jobs_skipped + row.jobs_cancelled
    data["cost_source"] = None if row.cost is None else str(row.cost.source)
    return _timed(data)


def _timed(data: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = with_iso_times(data)
    return converted


def run_document(
    record: RunRecord,
    kept: Sequence[tuple[str, JobRecord]] = (),
    earlier: Sequence[RunRecord] = (),
) -> dict[str, Any]:
    """`corral show RUN --json`'s document (with the jobs a resumed run kept from earlier
    runs) plus owner, the graph of its jobs and its budgets (`earlier`: the runs it
    resumed, newest first, whose spend its budgets count too)."""
    data = record.to_dict()
    data["kept"] = [{**job.to_dict(), "kept_from": run} for run, job in kept]
    data["owner"] = record.run.user
    data["rehearsal"] = record.run.rehearsal  # also in "run"; the document's own fact
    plan = _plan(record.flow_content, record.run.flow_path)
    data["graph"] = {"nodes": _graph(record, plan)}
    data["budgets"] = _budgets(plan, (record, *earlier))
    return _timed(data)


def _budgets(plan: Plan | None, chain: Sequence[RunRecord]) -> dict[str, Any]:
    """The run's budget and each job's: per unit its limit, what is spent, the action.

    Spent is what the budget guard counts: every attempt of the run (of the job), and of
    the runs a resumed run finishes; tokens are budget tokens (fresh input, cache
    writes, output)."""
    if plan is None:
        return {"run": [], "jobs": {}}
    runs = [(r.run.cost, r.run.tokens) for r in chain]
    jobs: dict[str, list[dict[str, Any]]] = {}
    for name, job in plan.jobs.items():
        if job.budget is not None:
            spent = [(j.cost, j.tokens) for r in chain if (j := r.job(name)) is not None]
            jobs[name] = _limits(job.budget, spent)
    return {"run": [] if plan.budget is None else _limits(plan.budget, runs), "jobs": jobs}


def _limits(
    budget: BudgetLimits, spent: Sequence[tuple[Cost | None, Tokens]]
) -> list[dict[str, Any]]:
    action = str(budget.on_exceed)
    found: list[dict[str, Any]] = []
    if budget.usd is not None:
        usd = sum((c.usd for c, _ in spent if c is not None and c.usd is not None), Decimal(0))
        found.append({"unit": "usd", "limit": str(budget.usd), "spent": str(usd), "action": action})
    if budget.tokens is not None:
        tokens = sum(t.input + t.cache_write + t.output for _, t in spent)
        found.append({"unit": "tokens", "limit": budget.tokens, "spent": tokens, "action": action})
    return found


def _graph(record: RunRecord, plan: Plan | None) -> list[dict[str, Any]]:
    needs = {} if plan is None else {name: job.needs for name, job in plan.jobs.items()}
    status = {job.name: job.status for job in record.jobs}
    nodes = []
    for job in record.jobs:
        wanted = needs.get(job.name, ())
        waiting = [n for n in wanted if status.get(n) is not JobStatus.SUCCEEDED]
        nodes.append(
            {
                "id": job.name,
                "status": str(job.status),
                "needs": list(wanted),
                "waiting_for": waiting if not job.status.is_final else [],
            }
        )
    return nodes


@lru_cache(maxsize=8)
def _plan(flow_content: str, flow_path: str) -> Plan | None:
    """The plan of the flow text the run recorded (None if it no longer plans).

    Kept for the last few flows: a dashboard polls a run's document every half second, and
    planning a 1,000-job flow again each time cost the server over 1 s of CPU per run. A
    run's recorded text never changes and a `Plan` is frozen, so the cached one is the one
    a fresh call would build."""
    if not flow_content:
        return None
    from pathlib import Path

    from corral.config.loader import load_text
    from corral.errors import CorralError
    from corral.plan import build_plan

    try:
        loaded = load_text(flow_content, Path(flow_path), flow_path)
        return build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    except CorralError:
        return None


def job_line(job: JobRecord, last_line: str = "") -> dict[str, Any]:
    """One row of a run's jobs: its status, its last attempt's figures, and its last
    line as the live table shows it (`corral.server.lastline`)."""
    final: AttemptRow | None = job.final
    tokens = job.tokens.to_dict()
    cost = job.cost
    return _timed(
        {
            "name": job.name,
            "status": str(job.status),
            "attempt": job.attempts[-1].attempt if job.attempts else 0,
            "attempts": len(job.attempts),
            "reason": job.reason,
            "tool": None if final is None else final.tool,
            "model": None if final is None else final.model,
            "tokens": tokens,
            "cost": None if cost is None else cost.to_dict(),
            "cost_source": None if cost is None else str(cost.source),
            "started_at": job.attempts[0].started_at if job.attempts else None,
            "ended_at": None if final is None else final.ended_at,
            "last_line": last_line,
        }
    )


def attempts_document(job: JobRecord) -> list[dict[str, Any]]:
    return [with_iso_times(a.to_dict()) for a in job.attempts]
