"""The `--json` summary of a run (schema_version 1), made from the run's journal.

It is the CI contract: `tests/test_json_contract.py` pins its keys. Money is exact
decimal text, and "no cost" is `null`, as in every JSON document corral writes.
"""

from __future__ import annotations

from typing import Any

from corral.journal.state import JobEntry, RunJournal
from corral.models import Cost, JobStatus
from corral.times import iso_time, seconds

SUMMARY_SCHEMA_VERSION = 1


def iso(timestamp: float | None) -> str | None:
    """`2025-01-31T12:00:00.000000Z`: a POSIX time as every JSON document writes it."""
    return iso_time(timestamp)


def cost_json(cost: Cost | None) -> dict[str, str | None] | None:
    """`{"usd": "0.0421", "source": "reported"}`, or null when nothing was spent."""
    return None if cost is None else cost.to_dict()


def job_json(job: JobEntry) -> dict[str, Any]:
    """One job of the summary: where it ended, why, what it spent (null: nothing)."""
    status = job.final_status
    return {
        "name": job.name,
        "status": status.value,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "duration_s": seconds(job.duration_s),
        "attempts": job.attempt_count,
        "started_at": iso(job.started_at),
        "log_dir": job.log_dir,
        "error": job.error if status is not JobStatus.SKIPPED else None,
        "error_kind": None if job.error_kind is None else job.error_kind.value,
        "reason": job.reason if status in (JobStatus.SKIPPED, JobStatus.CANCELLED) else None,
        "tool": job.tool,
        "models": list(job.models),
        "model_source": job.model_source,
        "session_id": job.session_id,
        "usage": job.usage.to_json(),
        "cost": cost_json(job.cost),
        "outputs": job.outputs,
    }


def summary_json(journal: RunJournal, *, started_at: float, ended_at: float) -> dict[str, Any]:
    """The whole document for a finished run."""
    jobs = sorted(journal.jobs.values(), key=lambda j: j.seq)
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": journal.run_id,
        "flow": journal.flow,
        "status": journal.status.value,
        "started_at": iso(started_at),
        "ended_at": iso(ended_at),
        "duration_s": seconds(ended_at - started_at),
        "log_root": journal.log_root,
        "rehearsal": journal.rehearsal,  # simulated: nothing was billed
        "jobs": [job_json(job) for job in jobs],
        "totals": {"usage": journal.usage.to_json(), "cost": cost_json(journal.cost)},
    }
