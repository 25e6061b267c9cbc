"""The JSON documents the API answers with, made from the history's records.

The fields are those of the CLI's `--json` outputs (`corral runs`, `show`, `usage`) plus
what a remote client needs (owner, job counts, the graph); times are ISO 8601 UTC with
"Z", money decimal strings, tokens ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corral.models import JobStatus
from corral.store.records import AttemptRow, JobRecord, RunRecord, RunRow
from corral.times import with_iso_times


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


def run_document(record: RunRecord, kept: Sequence[tuple[str, JobRecord]] = ()) -> dict[str, Any]:
    """`corral show RUN --json`'s document (with the jobs a resumed run kept from earlier
    runs) plus owner and the graph of its jobs."""
    data = record.to_dict()
    data["kept"] = [{**job.to_dict(), "kept_from": run} for run, job in kept]
    data["owner"] = record.run.user
    data["rehearsal"] = record.run.rehearsal  # also in "run"; the document's own fact
    data["graph"] = {"nodes": _graph(record)}
    return _timed(data)


def _graph(record: RunRecord) -> list[dict[str, Any]]:
    needs = _needs(record.flow_content, record.run.flow_path)
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


def _needs(flow_content: str, flow_path: str) -> dict[str, tuple[str, ...]]:
    """Each job's needs, from the flow text the run recorded ({} if it no longer plans)."""
    if not flow_content:
        return {}
    from pathlib import Path

    from corral.config.loader import load_text
    from corral.errors import CorralError
    from corral.plan import build_plan

    try:
        loaded = load_text(flow_content, Path(flow_path), flow_path)
        plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    except CorralError:
        return {}
    return {name: job.needs for name, job in plan.jobs.items()}


def job_line(job: JobRecord) -> dict[str, Any]:
    """One row of a run's jobs: its status and its last attempt's figures."""
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
        }
    )


def attempts_document(job: JobRecord) -> list[dict[str, Any]]:
    return [with_iso_times(a.to_dict()) for a in job.attempts]
