"""Reading the history: runs, one run in full, usage, running jobs, old runs.

Every query reads the derived tables (runs, jobs, attempts, job_models), never replays
the event log; `usage` groups job_models, which holds one row per attempt and model.

The reads the commands need at once (`runs`, `show`, a run's events, resume's running
jobs) are plain SQL text with `:name` parameters, written once here and run by either
driver (`corral.store.sqltext`): the standard library's sqlite3 for a SQLite file (no SQLAlchemy
import: `corral runs` starts in a fraction of the time) or SQLAlchemy's `text()` for
PostgreSQL. The rarer ones (usage, deletion) are SQLAlchemy Core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

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
from corral.store import jobcounts, sqltext
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
from corral.store.sqltext import Db

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_HINT = "`corral runs` lists them"
_JOB_STATUSES: dict[str, JobStatus] = {str(s): s for s in JobStatus}


def _dicts(db: Db, sql: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    # plain dicts, not driver rows: a run may have 50,000 jobs, each looked up a dozen times
    keys, found = db.query(sql, params)
    for values in found:
        yield dict(zip(keys, values, strict=True))


def _in(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`IN (:name0, :name1, ...)` and its parameters (both drivers take named ones)."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "IN (" + ", ".join(":" + key for key in params) + ")", params


def _job_status(value: str) -> JobStatus:
    # a dict look-up: the enum's own call costs more, 50,000 times in a big run
    return _JOB_STATUSES.get(value) or JobStatus(value)


def _tokens(row: Any) -> Tokens:
    return Tokens.from_columns(row if isinstance(row, dict) else row._mapping)


def _cost(row: Any) -> Cost | None:
    m = row if isinstance(row, dict) else row._mapping
    if m["cost_source"] is None:
        return None
    usd = m["cost_usd"]  # exact decimal text (schema.Money), unless read through Money
    return Cost(Decimal(usd) if isinstance(usd, str) else usd, CostSource(m["cost_source"]))


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


# what `_run_row` reads: a listing never reads a run's flow text (`SELECT *` did, from the
# overflow pages of a 10,000-job flow: most of `corral runs`' query on a big history)
_ROW_COLUMNS = ", ".join(
    sqltext.name(column)  # quoted: `user` is a keyword in PostgreSQL
    for column in (
        *("id", "flow_name", "flow_path", "status", "started_at", "ended_at", "log_root"),
        *("resumed_from", "user", "host", "error", *TOKEN_COLUMN_NAMES),
        *("cost_usd", "cost_source", "rehearsal"),
    )
)


def _run_row(m: Mapping[str, Any], counts: dict[str, int]) -> RunRow:
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
        tokens=Tokens.from_columns(m),
        cost=_cost(m),
        jobs_total=sum(counts.values()),
        jobs_succeeded=counts.get("succeeded", 0),
        jobs_failed=counts.get("failed", 0) + counts.get("timed_out", 0),
        jobs_skipped=counts.get("skipped", 0),
        rehearsal=bool(m["rehearsal"]),
        jobs_cancelled=counts.get("cancelled", 0),
    )


def _job_counts(db: Db, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if not run_ids:
        return counts
    # a finished run's counts are kept in one row (corral.store.jobcounts); the others are
    # counted from their jobs
    counts.update(jobcounts.kept(db, *_in("r", run_ids)))
    uncounted = [run_id for run_id in run_ids if run_id not in counts]
    if not uncounted:
        return counts
    where, params = _in("r", uncounted)
    sql = f"SELECT run_id, status, count(*) FROM jobs WHERE run_id {where} GROUP BY run_id, status"
    for run_id, status, n in db.query(sql, params)[1]:
        counts[run_id][status] = int(n)
    return counts


def list_runs(
    db: Db,
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
    where: list[str] = []
    params: dict[str, Any] = {}
    if status is not None:
        where.append("status = :status")
        params["status"] = str(status)
    if flow is not None:
        where.append("(flow_name = :flow OR flow_path = :flow)")
        params["flow"] = flow
    if since is not None:
        where.append("started_at >= :since")
        params["since"] = since
    if until is not None:
        where.append("started_at < :until")
        params["until"] = until
    if rehearsal is not None:
        where.append("rehearsal = :rehearsal")
        params["rehearsal"] = rehearsal
    sql = f"SELECT {_ROW_COLUMNS} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, id"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    found = list(_dicts(db, sql, params))
    counts: dict[str, dict[str, int]] = {}
    for start in range(0, len(found), 500):  # stay under every engine's parameter limit
        counts.update(_job_counts(db, [run["id"] for run in found[start : start + 500]]))
    return [_run_row(run, counts.get(run["id"], {})) for run in found]


def resumers(db: Db, run_id: str) -> list[RunRow]:
    """The runs resumed from `run_id`, newest first: one look at `runs.resumed_from`,
    not a listing of every later run."""
    sql = f"SELECT {_ROW_COLUMNS} FROM runs WHERE resumed_from = :run ORDER BY started_at DESC, id"
    found = list(_dicts(db, sql, {"run": run_id}))
    counts = _job_counts(db, [run["id"] for run in found])
    return [_run_row(run, counts.get(run["id"], {})) for run in found]


def resolve_run_id(db: Db, run_id: str) -> str:
    """The full id of a run given its id or a unique prefix."""
    if any(db.query("SELECT id FROM runs WHERE id = :id", {"id": run_id})[1]):
        return run_id
    pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = "SELECT id FROM runs WHERE id LIKE :pattern ESCAPE '\\' ORDER BY id LIMIT 6"
    found = [str(row[0]) for row in db.query(sql, {"pattern": pattern})[1]]
    if not found:
        raise NotFoundError(f"no run {run_id!r} in the history", hint=_HINT)
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise UsageError(f"run id {run_id!r} is ambiguous: {shown}", hint="give more characters")
    return found[0]


# columns in AttemptRow's order, then the usage columns every accounting table has: rows
# are unpacked by position (a run may have 50,000 attempts; no dict per row)
_ATTEMPT_FIELDS = (
    "run_id",
    "job",
    "attempt",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "exit_code",
    "signal",
    "error",
    "error_kind",
    "pid",
    "argv",
    "spec",
    "tool",
    "model",
    "session_id",
    "result",
    "outputs",
    "log_dir",
    "unparsed_lines",
)
_USAGE = (*TOKEN_COLUMN_NAMES, "cost_usd", "cost_source")
_TOKENS = len(TOKEN_COLUMN_NAMES)
_ATTEMPTS_SQL = (
    f"SELECT {', '.join((*_ATTEMPT_FIELDS, *_USAGE))} FROM attempts"
    " WHERE run_id = :run_id ORDER BY job, attempt"
)
_MODELS_SQL = (
    f"SELECT job, attempt, model, {', '.join(_USAGE)} FROM job_models"
    " WHERE run_id = :run_id ORDER BY model"
)


def _usage(values: Sequence[Any]) -> tuple[Tokens, Cost | None]:
    """Tokens and cost from the `_USAGE` columns, in that order."""
    tokens = Tokens(*[int(v or 0) for v in values[:_TOKENS]])
    usd, source = values[_TOKENS], values[_TOKENS + 1]
    if source is None:
        return tokens, None
    return tokens, Cost(Decimal(usd) if isinstance(usd, str) else usd, CostSource(source))


def get_run(db: Db, run_id: str) -> RunRecord:
    """A run with every job, each with all its attempts and per-model usage."""
    run_id = resolve_run_id(db, run_id)
    key = {"run_id": run_id}
    run = next(_dicts(db, "SELECT * FROM runs WHERE id = :run_id", key))
    models: dict[tuple[str, int], list[ModelUsage]] = defaultdict(list)
    for values in db.query(_MODELS_SQL, key)[1]:
        tokens, cost = _usage(values[3:])
        models[(values[0], int(values[1]))].append(
            ModelUsage(
                model=values[2],
                tokens=tokens,
                cost_usd=None if cost is None else cost.usd,
                cost_source=CostSource.UNPRICED if cost is None else cost.source,
            )
        )
    attempts: dict[str, list[AttemptRow]] = defaultdict(list)
    fields = len(_ATTEMPT_FIELDS)
    for values in db.query(_ATTEMPTS_SQL, key)[1]:
        at_models = tuple(models.get((values[1], int(values[2])), ()))
        attempts[values[1]].append(_attempt_row(values[:fields], values[fields:], at_models))
    jobs = []
    counts: dict[str, int] = defaultdict(int)
    sql = "SELECT name, status, reason FROM jobs WHERE run_id = :run_id ORDER BY position, name"
    for name, status, reason in db.query(sql, key)[1]:
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
        run=_run_row(run, counts),
        flow_hash=run["flow_hash"],
        flow_content=run["flow_content"],
        args=tuple(_json(run["args"]) or ()),
        jobs=tuple(jobs),
    )


def _attempt_row(
    fields: Sequence[Any], usage: Sequence[Any], models: tuple[ModelUsage, ...]
) -> AttemptRow:
    (
        run_id,
        job,
        attempt,
        status,
        started_at,
        ended_at,
        duration_s,
        exit_code,
        signal,
        error,
        error_kind,
        pid,
        argv,
        spec,
        tool,
        model,
        session_id,
        result,
        outputs,
        log_dir,
        unparsed_lines,
    ) = fields
    tokens, cost = _usage(usage)
    return AttemptRow(
        run_id=run_id,
        job=job,
        attempt=int(attempt),
        status=_job_status(status),
        started_at=started_at,
        ended_at=ended_at,
        duration_s=duration_s,
        exit_code=exit_code,
        signal=signal,
        error=error,
        error_kind=ErrorKind(error_kind) if error_kind else None,
        pid=pid,
        argv=tuple(_json(argv) or ()),
        spec=_json(spec),
        tool=tool,
        model=model,
        session_id=session_id,
        result=result,
        outputs=_json(outputs),
        log_dir=log_dir,
        unparsed_lines=int(unparsed_lines or 0),
        tokens=tokens,
        cost=cost,
        models=models,
    )


def events(db: Db, run_id: str, after_seq: int) -> Iterator[tuple[int, float, str, str]]:
    """(seq, ts, kind, payload) of a run's stored events after `after_seq`, in order."""
    sql = (
        "SELECT seq, ts, kind, payload FROM events"
        " WHERE run_id = :run_id AND seq > :after ORDER BY seq"
    )
    params = {"run_id": run_id, "after": after_seq}
    for seq, ts, kind, payload in db.query(sql, params, stream=True)[1]:
        yield int(seq), float(ts), str(kind), str(payload)


def last_seq(db: Db, run_id: str) -> int:
    """The number of the run's last stored event (0: none)."""
    found = db.query("SELECT max(seq) FROM events WHERE run_id = :run_id", {"run_id": run_id})
    return int(next(iter(found[1]))[0] or 0)


def usage(
    conn: Connection,
    by: UsageBy,
    *,
    since: float | None = None,
    include_rehearsals: bool = False,
) -> list[UsageRow]:
    """Tokens and cost by source, grouped by `by`, over attempts that ended after `since`;
    a rehearsal's (simulated) spend only with `include_rehearsals`."""
    from sqlalchemy import String, cast, func, select

    from corral.store import schema

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


def running_jobs(db: Db, run_id: str) -> list[RunningJob]:
    """Attempts recorded as running, with the pid and process group resume must reap."""
    run_id = resolve_run_id(db, run_id)
    sql = (
        "SELECT job, attempt, pid, started_at, log_dir FROM attempts WHERE run_id = :run_id"
        " AND status = :status AND pid IS NOT NULL ORDER BY job, attempt"
    )
    params = {"run_id": run_id, "status": str(JobStatus.RUNNING)}
    return [
        RunningJob(
            run_id=run_id,
            job=job,
            attempt=int(attempt),
            pid=int(pid),
            pgid=int(pid),
            started_at=started_at,
            log_dir=log_dir,
        )
        for job, attempt, pid, started_at, log_dir in db.query(sql, params)[1]
    ]


def delete_runs(conn: Connection, run_ids: Iterable[str]) -> None:
    """Delete runs and everything recorded about them (no cascades: see schema)."""
    from sqlalchemy import delete

    from corral.store import schema

    ids = list(run_ids)
    for start in range(0, len(ids), 500):  # stay under every engine's parameter limit
        chunk = ids[start : start + 500]
        tables = (schema.events, schema.job_models, schema.attempts, schema.jobs)
        for table in (*tables, schema.run_job_counts):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        conn.execute(delete(schema.runs).where(schema.runs.c.id.in_(chunk)))
