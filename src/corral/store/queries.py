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
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from corral.errors import NotFoundError, UsageError
from corral.models import (
    TOKEN_COLUMN_NAMES,
    TOKEN_FIELDS,
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
    JobLine,
    JobRecord,
    ModelUsage,
    RunningJob,
    RunRecord,
    RunRow,
    UsageRow,
)
from corral.store.sqltext import Db
from corral.times import iso_time, seconds

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


def _status_text(value: str) -> str:
    """`str(_job_status(value))`, as a look-up."""
    return _STATUS_TEXTS.get(value) or str(JobStatus(value))


_STATUS_TEXTS = {text: text for text in _JOB_STATUSES}


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
    return tokens, _cost_of(values[_TOKENS], values[_TOKENS + 1])


def _cost_of(usd: Any, source: str | None) -> Cost | None:
    """The cost of the `cost_usd` and `cost_source` columns (exact decimal text)."""
    if source is None:
        return None
    return Cost(Decimal(usd) if isinstance(usd, str) else usd, CostSource(source))


@dataclass(frozen=True, slots=True)
class RunRows:
    """A run as read from its tables, before any object is made per job or attempt:
    `corral show` of a 50,000-job run formats these rows directly (`job_lines`,
    `job_dicts`), the rest of corral asks `get_run` for the `RunRecord` built from them."""

    run: dict[str, Any]  # the `runs` row by column
    counts: dict[str, int]  # jobs by status
    # (name, status, reason, attempts), in the run's order; each attempt is its
    # `_ATTEMPT_FIELDS` then its `_USAGE` columns, attempts in order
    jobs: list[tuple[str, str, str | None, list[tuple[Any, ...]]]]
    models: dict[tuple[str, int], list[tuple[Any, ...]]]  # (job, attempt): model, usage...

    @property
    def run_row(self) -> RunRow:
        return _run_row(self.run, self.counts)

    def record(self, *, jobs: bool = True) -> RunRecord:
        """The `RunRecord` of these rows (without its jobs: `jobs` False)."""
        models = {
            key: tuple(_model_usage(values) for values in found)
            for key, found in self.models.items()
        }
        built = []
        if jobs:
            for name, status, reason, attempts in self.jobs:
                rows = tuple(
                    _attempt_row(v[:_FIELDS], v[_FIELDS:], models.get((v[1], int(v[2])), ()))
                    for v in attempts
                )
                built.append(JobRecord(name, _job_status(status), reason, rows))
        return RunRecord(
            run=self.run_row,
            flow_hash=self.run["flow_hash"],
            flow_content=self.run["flow_content"],
            args=tuple(_json(self.run["args"]) or ()),
            jobs=tuple(built),
        )

    def job_lines(self) -> Iterator[JobLine]:
        """Each job's `JobRecord.line()`, straight from the rows."""
        for name, status, reason, attempts in self.jobs:
            if not attempts:
                yield name, _status_text(status), reason, 0, None, 0, None
                continue
            v = attempts[-1]
            kind = str(ErrorKind(v[10])) if v[10] else None
            # JobRecord.line()'s final attempt: tool, model, duration_s, exit_code, signal,
            # error (positions in _ATTEMPT_FIELDS), then the error kind
            final = (v[14], v[15], v[6], v[7], v[8], v[9], kind)
            if len(attempts) == 1:
                tokens, cost = _total_tokens(v), _attempt_cost(v)
            else:
                tokens = sum(_total_tokens(a) for a in attempts)
                cost = Cost.total(_attempt_cost(a) for a in attempts)
            yield name, _status_text(status), reason, len(attempts), final, tokens, cost

    def job_dicts(self) -> Iterator[dict[str, Any]]:
        """Each job's `JobRecord.to_dict()`, straight from the rows (the same values: no
        object per attempt for a run of 50,000 jobs)."""
        models = {
            key: [_model_usage(values).to_dict() for values in found]
            for key, found in self.models.items()
        }
        for name, status, reason, attempts in self.jobs:
            found = [_attempt_dict(v, models.get((v[1], int(v[2])), [])) for v in attempts]
            if len(found) == 1:
                tokens, cost = found[0]["tokens"], found[0]["cost"]
            else:
                total = Tokens()
                for a in attempts:
                    total = total + _usage(a[_FIELDS:])[0]
                summed = Cost.total(_attempt_cost(a) for a in attempts)
                tokens, cost = total.to_dict(), None if summed is None else summed.to_dict()
            yield {
                "name": name,
                "status": _status_text(status),
                "reason": reason,
                "tokens": tokens,
                "cost": cost,
                "final": found[-1] if found else None,  # the same values, built once
                "attempts": found,
            }


_FIELDS = len(_ATTEMPT_FIELDS)


def _total_tokens(v: Sequence[Any]) -> int:
    """`Tokens.total` of an attempt row: input, output and cache (read and write)."""
    return (
        int(v[_FIELDS] or 0)
        + int(v[_FIELDS + 1] or 0)
        + int(v[_FIELDS + 2] or 0)
        + int(v[_FIELDS + 3] or 0)
    )


def _attempt_cost(v: Sequence[Any]) -> Cost | None:
    return _cost_of(v[_FIELDS + _TOKENS], v[_FIELDS + _TOKENS + 1])


def _tokens_dict(values: Sequence[Any]) -> dict[str, int]:
    """`Tokens.to_dict()` of the token columns (most of a big run's attempts used none)."""
    if values == _NO_TOKENS:
        return dict(_ZERO_TOKENS)
    return dict(zip(TOKEN_FIELDS, [int(x or 0) for x in values], strict=True))


_NO_TOKENS = (0,) * _TOKENS
_ZERO_TOKENS = Tokens().to_dict()


def _attempt_dict(v: Sequence[Any], models: list[dict[str, Any]]) -> dict[str, Any]:
    """`AttemptRow.to_dict()` of an attempt row (`_ATTEMPT_FIELDS`, then `_USAGE`)."""
    usage = v[_FIELDS:]
    cost = _attempt_cost(v)
    return {
        "job": v[1],
        "attempt": int(v[2]),
        "status": _status_text(v[3]),
        "started_at": iso_time(v[4]),
        "ended_at": iso_time(v[5]),
        "duration_s": seconds(v[6]),
        "exit_code": v[7],
        "signal": v[8],
        "error": v[9],
        "error_kind": str(ErrorKind(v[10])) if v[10] else None,
        "pid": v[11],
        "argv": list(_json(v[12]) or ()),
        "spec": _json(v[13]),
        "tool": v[14],
        "model": v[15],
        "session_id": v[16],
        "result": v[17],
        "outputs": _json(v[18]),
        "log_dir": v[19],
        "unparsed_lines": int(v[20] or 0),
        "tokens": _tokens_dict(usage[:_TOKENS]),
        "cost": None if cost is None else cost.to_dict(),
        "models": models,
    }


def read_run(db: Db, run_id: str) -> RunRows:
    """A run (by id or unique prefix) with every job, attempt and per-model row, as rows."""
    run_id = resolve_run_id(db, run_id)
    key = {"run_id": run_id}
    run = next(_dicts(db, "SELECT * FROM runs WHERE id = :run_id", key))
    models: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    for values in db.query(_MODELS_SQL, key)[1]:
        models[(values[0], int(values[1]))].append(tuple(values[2:]))
    attempts: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for values in db.query(_ATTEMPTS_SQL, key)[1]:
        attempts[values[1]].append(values)
    jobs = []
    counts: dict[str, int] = defaultdict(int)
    sql = "SELECT name, status, reason FROM jobs WHERE run_id = :run_id ORDER BY position, name"
    for name, status, reason in db.query(sql, key)[1]:
        counts[status] += 1
        jobs.append((name, status, reason, attempts.get(name, [])))
    return RunRows(run, counts, jobs, dict(models))


def get_run(db: Db, run_id: str) -> RunRecord:
    """A run with every job, each with all its attempts and per-model usage."""
    return read_run(db, run_id).record()


def _model_usage(values: Sequence[Any]) -> ModelUsage:
    """A `job_models` row: the model, then the `_USAGE` columns."""
    tokens, cost = _usage(values[1:])
    return ModelUsage(
        model=values[0],
        tokens=tokens,
        cost_usd=None if cost is None else cost.usd,
        cost_source=CostSource.UNPRICED if cost is None else cost.source,
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
