"""Reading the history: runs, one run in full, usage, running jobs, old runs.

Every query reads the derived tables (runs, jobs, attempts, job_models), never replays
the event log; `usage` groups job_models, which holds one row per attempt and model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import String, cast, delete, func, select
from sqlalchemy.engine import Connection, Row

from corral.errors import NotFoundError, UsageError
from corral.models import (
    TOKEN_COLUMN_NAMES,
    Cost,
    CostSource,
    ErrorKind,
    JobStatus,
    RunStatus,
    Tokens,
)
from corral.store import schema
from corral.store.protocols import USAGE_KEYS, UsageBy
from corral.store.records import (
    AttemptRow,
    JobRecord,
    ModelUsage,
    RunningJob,
    RunRecord,
    RunRow,
    UsageRow,
)

_HINT = "`corral runs` lists them"
_JOB_STATUSES: dict[str, JobStatus] = {str(s): s for s in JobStatus}


def _job_status(value: str) -> JobStatus:
    # a dict look-up: the enum's own call costs more, 50,000 times in a big run
    return _JOB_STATUSES.get(value) or JobStatus(value)


def _tokens(row: Any) -> Tokens:
    return Tokens.from_columns(row if isinstance(row, dict) else row._mapping)


def _cost(row: Any) -> Cost | None:
    m = row if isinstance(row, dict) else row._mapping
    if m["cost_source"] is None:
        return None
    return Cost(m["cost_usd"], CostSource(m["cost_source"]))


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _run_row(row: Row[Any], counts: dict[str, int]) -> RunRow:
    m = row._mapping
    return RunRow(
        id=m["id"],
        flow_name=m["flow_name"],
        flow_path=m["flow_path"],
        status=RunStatus(m["status"]),
        started_at=float(m["started_at"]),
        ended_at=None if m["ended_at"] is None else float(m["ended_at"]),
        log_root=m["log_root"],
        resumed_from=m["resumed_from"],
        user=m["user"],
        host=m["host"],
        error=m["error"],
        tokens=_tokens(row),
        cost=_cost(row),
        jobs_total=sum(counts.values()),
        jobs_succeeded=counts.get("succeeded", 0),
        jobs_failed=counts.get("failed", 0) + counts.get("timed_out", 0),
        jobs_skipped=counts.get("skipped", 0),
        rehearsal=bool(m["rehearsal"]),
        jobs_cancelled=counts.get("cancelled", 0),
    )


def _job_counts(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if not run_ids:
        return counts
    j = schema.jobs
    stmt = (
        select(j.c.run_id, j.c.status, func.count())
        .where(j.c.run_id.in_(run_ids))
        .group_by(j.c.run_id, j.c.status)
    )
    for run_id, status, n in conn.execute(stmt):
        counts[run_id][status] = int(n)
    return counts


def list_runs(
    conn: Connection,
    *,
    status: RunStatus | str | None = None,
    flow: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = 50,
    rehearsal: bool | None = None,
) -> list[RunRow]:
    """Runs, newest first. `since`/`until` are POSIX timestamps on the start time;
    `rehearsal` keeps only the rehearsals (True) or only the real runs (False)."""
    r = schema.runs
    stmt = select(r).order_by(r.c.started_at.desc(), r.c.id)
    if status is not None:
        stmt = stmt.where(r.c.status == str(status))
    if flow is not None:
        stmt = stmt.where((r.c.flow_name == flow) | (r.c.flow_path == flow))
    if since is not None:
        stmt = stmt.where(r.c.started_at >= since)
    if until is not None:
        stmt = stmt.where(r.c.started_at < until)
    if rehearsal is not None:
        stmt = stmt.where(r.c.rehearsal.is_(rehearsal))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = conn.execute(stmt).all()
    counts = _job_counts(conn, [row.id for row in rows])
    return [_run_row(row, counts.get(row.id, {})) for row in rows]


def resolve_run_id(conn: Connection, run_id: str) -> str:
    """The full id of a run given its id or a unique prefix."""
    r = schema.runs
    if conn.execute(select(r.c.id).where(r.c.id == run_id)).first():
        return run_id
    pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = [
        row.id
        for row in conn.execute(
            select(r.c.id).where(r.c.id.like(pattern, escape="\\")).order_by(r.c.id).limit(6)
        )
    ]
    if not found:
        raise NotFoundError(f"no run {run_id!r} in the history", hint=_HINT)
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise UsageError(f"run id {run_id!r} is ambiguous: {shown}", hint="give more characters")
    return str(found[0])


def get_run(conn: Connection, run_id: str) -> RunRecord:
    """A run with every job, each with all its attempts and per-model usage."""
    run_id = resolve_run_id(conn, run_id)
    row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).one()
    jm, a, j = schema.job_models, schema.attempts, schema.jobs
    models: dict[tuple[str, int], list[ModelUsage]] = defaultdict(list)
    for m in conn.execute(select(jm).where(jm.c.run_id == run_id).order_by(jm.c.model)):
        cost = _cost(m)
        models[(m.job, m.attempt)].append(
            ModelUsage(
                model=m.model,
                tokens=_tokens(m),
                cost_usd=None if cost is None else cost.usd,
                cost_source=CostSource.UNPRICED if cost is None else cost.source,
            )
        )
    # a run may have 50,000 jobs: plain dicts (one per row) instead of SQLAlchemy's
    # row mappings, looked up a dozen times a row
    attempts: dict[str, list[AttemptRow]] = defaultdict(list)
    found = conn.execute(select(a).where(a.c.run_id == run_id).order_by(a.c.job, a.c.attempt))
    keys = list(found.keys())
    for values in found.fetchall():
        at = dict(zip(keys, values, strict=True))
        at_models = tuple(models.get((at["job"], at["attempt"]), ()))
        attempts[at["job"]].append(_attempt_row(at, at_models))
    jobs = []
    counts: dict[str, int] = defaultdict(int)
    found = conn.execute(
        select(j.c.name, j.c.status, j.c.reason)
        .where(j.c.run_id == run_id)
        .order_by(j.c.position, j.c.name)
    )
    for name, status, reason in found.fetchall():
        counts[status] += 1
        jobs.append(
            JobRecord(
                name=name,
                status=_job_status(status),
                reason=reason,
                attempts=tuple(attempts.get(name, ())),
            )
        )
    return RunRecord(
        run=_run_row(row, counts),
        flow_hash=row.flow_hash,
        flow_content=row.flow_content,
        args=tuple(_json(row.args) or ()),
        jobs=tuple(jobs),
    )


def _attempt_row(row: Row[Any] | dict[str, Any], models: tuple[ModelUsage, ...]) -> AttemptRow:
    m = row if isinstance(row, dict) else row._mapping
    return AttemptRow(
        run_id=m["run_id"],
        job=m["job"],
        attempt=int(m["attempt"]),
        status=_job_status(m["status"]),
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        duration_s=m["duration_s"],
        exit_code=m["exit_code"],
        signal=m["signal"],
        error=m["error"],
        error_kind=ErrorKind(m["error_kind"]) if m["error_kind"] else None,
        pid=m["pid"],
        argv=tuple(_json(m["argv"]) or ()),
        spec=_json(m["spec"]),
        tool=m["tool"],
        model=m["model"],
        session_id=m["session_id"],
        result=m["result"],
        outputs=_json(m["outputs"]),
        log_dir=m["log_dir"],
        unparsed_lines=int(m["unparsed_lines"] or 0),
        tokens=_tokens(m),
        cost=_cost(m),
        models=models,
    )


def usage(
    conn: Connection,
    by: UsageBy,
    *,
    since: float | None = None,
    include_rehearsals: bool = False,
) -> list[UsageRow]:
    """Tokens and cost by source, grouped by `by`, over attempts that ended after `since`;
    a rehearsal's (simulated) spend only with `include_rehearsals`."""
    if by not in USAGE_KEYS:
        raise UsageError(f"cannot group usage by {by!r}", hint="use " + ", ".join(USAGE_KEYS))
    jm = schema.job_models
    key = {"model": jm.c.model, "tool": jm.c.tool, "job": jm.c.job}.get(by)
    key = key if key is not None else (jm.c.flow_name if by == "flow" else jm.c.day)
    where = [] if since is None else [jm.c.ended_at >= since]
    if not include_rehearsals:
        rehearsals = select(schema.runs.c.id).where(schema.runs.c.rehearsal.is_(True))
        where.append(jm.c.run_id.not_in(rehearsals))
    attempt_id = jm.c.run_id + "/" + jm.c.job + "/" + cast(jm.c.attempt, String)
    sums = [func.coalesce(func.sum(jm.c[n]), 0).label(n) for n in TOKEN_COLUMN_NAMES]
    totals = conn.execute(
        select(key.label("key"), func.count(func.distinct(attempt_id)), *sums)
        .where(*where)
        .group_by(key)
    ).all()
    # money is text: add it exactly in Python, one aggregated string per (key, source)
    money: dict[str, dict[str, tuple[Decimal, int]]] = defaultdict(dict)
    for k, source, n, joined in conn.execute(
        select(key, jm.c.cost_source, func.count(), func.aggregate_strings(jm.c.cost_usd, ","))
        .where(*where)
        .group_by(key, jm.c.cost_source)
    ):
        money[k][source] = (_add_text(joined), int(n))
    rows = []
    for row in totals:
        by_source = money.get(row.key, {})
        rows.append(
            UsageRow(
                key=str(row.key),
                attempts=int(row[1]),
                tokens=_tokens(row),
                reported_usd=by_source.get("reported", (Decimal(0), 0))[0],
                estimated_usd=by_source.get("estimated", (Decimal(0), 0))[0],
                unpriced=by_source.get("unpriced", (Decimal(0), 0))[1],
            )
        )
    rows.sort(key=lambda u: (u.key if by == "day" else "", -u.tokens.total, u.key))
    return rows


def _add_text(joined: str | None) -> Decimal:
    if not joined:
        return Decimal(0)
    return sum((Decimal(part) for part in joined.split(",") if part), Decimal(0))


def running_jobs(conn: Connection, run_id: str) -> list[RunningJob]:
    """Attempts recorded as running, with the pid and process group resume must reap."""
    run_id = resolve_run_id(conn, run_id)
    a = schema.attempts
    stmt = (
        select(a)
        .where(a.c.run_id == run_id, a.c.status == str(JobStatus.RUNNING), a.c.pid.is_not(None))
        .order_by(a.c.job, a.c.attempt)
    )
    return [
        RunningJob(
            run_id=run_id,
            job=row.job,
            attempt=row.attempt,
            pid=row.pid,
            pgid=row.pid,
            started_at=row.started_at,
            log_dir=row.log_dir,
        )
        for row in conn.execute(stmt)
    ]


def delete_runs(conn: Connection, run_ids: Iterable[str]) -> None:
    """Delete runs and everything recorded about them (no cascades: see schema)."""
    ids = list(run_ids)
    for start in range(0, len(ids), 500):  # stay under every engine's parameter limit
        chunk = ids[start : start + 500]
        for table in (schema.events, schema.job_models, schema.attempts, schema.jobs):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        conn.execute(delete(schema.runs).where(schema.runs.c.id.in_(chunk)))
