"""What the history's derived tables (runs, jobs, attempts, job_models) hold after an
event: read from the run's journal, the one fold of its events, at the moment the
event is published. The SQL writer stores these values; it interprets no event itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from corral.budget.attribution import model_shares
from corral.events.types import (
    Event,
    JobFinished,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RateLimited,
    RunFinished,
    RunRefused,
    RunStarted,
    SessionStarted,
    SpendUpdated,
)
from corral.journal.state import AttemptEntry, JobEntry, RunJournal
from corral.models import Cost, JobStatus, RunStatus, Tokens, Usage

# events that change the derived tables (the others are only appended to `events`)
DERIVED = (
    RunStarted,
    RunFinished,
    JobWaiting,
    JobStarted,
    JobRetrying,
    JobSkipped,
    JobFinished,
    SessionStarted,
)

# ...and the events their values read besides: the priced spend, a job's waiting reason
_FOLDED = frozenset((*DERIVED, RunRefused, SpendUpdated, RateLimited))

Values = dict[str, Any]


def dumps(value: Any) -> str:
    """JSON text for a column (a job's argv, spec or outputs)."""
    # str() for the odd value a job spec may hold (paths, dates): never fail a write on it
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def day_of(ts: float) -> str:
    """The UTC calendar day of a timestamp, as `corral usage --by day` groups it."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


@dataclass(slots=True)
class Rows:
    """One event's effect on the derived tables (run_id is added by the writer)."""

    run: Values | None = None  # RunStarted: the whole row; RunFinished: its end
    jobs: list[Values] = field(default_factory=list)  # RunStarted: every job, else one
    attempt: Values | None = None
    session: Values | None = None  # an announced session (and model) of an attempt
    models: list[Values] | None = None  # the attempt's job_models rows, when it ended
    ended_at: float | None = None
    duration_s: float = 0.0


class RowMaker:
    """Folds the events a writer receives and says what each changes in the tables."""

    def __init__(self) -> None:
        self.journal = RunJournal()

    def __call__(self, event: Event, ts: float) -> Rows | None:
        if type(event) not in _FOLDED:
            return None  # nothing the rows read: the writer's hot path stays cheap
        if isinstance(event, RunStarted):
            self.journal = RunJournal()  # a writer may record run after run
        self.journal(event)
        if not isinstance(event, DERIVED):
            return None
        if isinstance(event, RunStarted):
            return _run_started(event)
        if isinstance(event, RunFinished):
            run = self.journal
            return Rows(
                run={"status": str(run.status), "ended_at": run.ended_at, "error": run.error}
            )
        job = self.journal.job(event.job)
        attempt = self.journal.attempt(event.job, event.attempt)
        if isinstance(event, JobStarted):
            assert attempt is not None  # the fold made it
            return Rows(attempt=_started(attempt), jobs=[_job(job, attempts=event.attempt)])
        if isinstance(event, JobFinished):
            return _finished(job, attempt, event, ts)
        if isinstance(event, SessionStarted):
            values: Values = {"session_id": event.session_id}
            if event.model:
                values["model"] = event.model
            return Rows(session={"job": event.job, "attempt": event.attempt, **values})
        return Rows(jobs=[_job(job)])


def _run_started(event: RunStarted) -> Rows:
    run = {
        "id": event.run_id,
        "flow_name": event.flow_name,
        "flow_path": event.flow_path,
        "flow_content": event.flow_content,
        "flow_hash": event.flow_hash,
        "args": dumps(list(event.args)),
        "user": event.user,
        "host": event.host,
        "log_root": event.log_root,
        "started_at": event.started_at,
        "ended_at": None,
        "status": str(RunStatus.RUNNING),
        "error": None,
        "resumed_from": event.resumed_from,
        "rehearsal": event.rehearsal,
    }
    jobs = [
        {"name": name, "position": i, "status": str(JobStatus.WAITING)}
        for i, name in enumerate(event.jobs)
    ]
    return Rows(run=run, jobs=jobs)


def _job(job: JobEntry, attempts: int | None = None) -> Values:
    # why a job waits, retries, was skipped or cancelled; an ended job's error says the rest
    keep = not job.status.is_final or job.status in (JobStatus.SKIPPED, JobStatus.CANCELLED)
    values: Values = {
        "name": job.name,
        "status": str(job.status),
        "reason": job.reason if keep else None,
    }
    if attempts is not None:
        values["attempts"] = attempts
    return values


def _started(attempt: AttemptEntry) -> Values:
    return {
        "attempt": attempt.number,
        "status": str(JobStatus.RUNNING),
        "started_at": attempt.started_at,
        "pid": attempt.pid,
        "argv": dumps(list(attempt.argv)),
        "spec": dumps(attempt.spec),
        "tool": attempt.tool,
        "model": attempt.model,
        "log_dir": attempt.log_dir,
    }


def _finished(job: JobEntry, attempt: AttemptEntry | None, event: JobFinished, ts: float) -> Rows:
    # an attempt the fold has: its record; a job settled without one (attempt 0): the event
    by_model: dict[str, Usage] = dict(attempt.by_model if attempt else event.by_model)
    cost: Cost | None = attempt.cost if attempt else event.cost
    session = attempt.session_id if attempt else event.session_id
    ended = event.ended_at if event.ended_at is not None else ts
    values: Values = {
        "attempt": event.attempt,
        "status": str(event.status),
        "ended_at": ended,
        "duration_s": event.duration_s,
        "exit_code": event.exit_code,
        "signal": event.signal,
        "error": event.error,
        "error_kind": None if event.error_kind is None else str(event.error_kind),
        "tool": event.tool,
        "result": event.result,
        "outputs": dumps(event.outputs),
        "unparsed_lines": event.unparsed_lines,
        "cost_usd": None if cost is None else cost.usd,
        "cost_source": None if cost is None else str(cost.source),
        **Tokens.from_usage(Usage.sum(by_model.values())).columns(),
    }
    if len(by_model) == 1:
        values["model"] = next(iter(by_model))
    if session is not None:  # else keep the one the agent announced
        values["session_id"] = session
    priced = (
        {m: c.usd for m, c in attempt.cost_by_model.items() if c.usd is not None}
        if attempt
        else dict(event.cost_by_model)
    )
    models = [
        {
            "model": share.model,
            "cost_usd": share.usd,
            "cost_source": str(share.source),
            **Tokens.from_usage(share.usage).columns(),
        }
        for share in model_shares(by_model, cost, priced)
    ]
    return Rows(
        attempt=values,
        jobs=[_job(job, attempts=event.attempt)],
        models=models,
        ended_at=ended,
        duration_s=event.duration_s,
    )
