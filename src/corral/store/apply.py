"""From events to rows: what the writer executes for one batch, inside one transaction.

Every event becomes a row of `events` (one multi-row insert: the hot path). Lifecycle
events also upsert the runs, jobs, attempts and job_models rows that the queries read,
so no query ever has to replay the event log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Table, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from corral.events.types import (
    SCHEMA_VERSION,
    Event,
    JobFinished,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RunFinished,
    RunStarted,
    SessionStarted,
    event_to_dict,
)
from corral.models import TOKEN_COLUMN_NAMES, Cost, CostSource, JobStatus, RunStatus, Tokens
from corral.store import schema

UNATTRIBUTED = "(unattributed)"
# events that build the runs/jobs/attempts rows: never dropped from a full buffer
LIFECYCLE = (RunStarted, RunFinished, JobWaiting, JobStarted, JobRetrying, JobSkipped, JobFinished)
DERIVED = (*LIFECYCLE, SessionStarted)  # the events that update rows besides `events`


@dataclass(slots=True)
class Pending:
    """One event waiting to be written; run and seq are fixed once, so retries reuse them."""

    ts: float
    event: Event
    run_id: str = ""
    seq: int = 0
    payload: str = ""
    counted: bool = False  # already counted as resolved by the writer's sync()


def dumps(value: Any) -> str:
    # str() for the odd value a job spec may hold (paths, dates): never fail a write on it
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _payload(event: Event) -> str:
    """The JSON of `event_to_dict(event)`, made by orjson from the dataclass directly.

    Five times faster than building the dict in Python, and the writer thread's main
    cost; `test_store_writer` checks that both forms agree for every event type.
    """
    try:
        # Decimal (and odd spec values) as text, like `dumps`
        body = orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. a dict with non-string keys in a spec: the slow, sure path
        return dumps(event_to_dict(event))
    head = f'{{"v":{SCHEMA_VERSION},"kind":{orjson.dumps(event.kind).decode()}'
    return head + ("," + body[1:].decode() if len(body) > 2 else "}")


def _insert(conn: Connection, table: Table) -> Any:
    return pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert(conn: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]) -> None:
    # one statement per shape, values bound at execute: SQLAlchemy's compiled cache then
    # hits, where building `.values(**values)` each time cost a millisecond per row
    shape = (conn.dialect.name, table.name, tuple(values), tuple(keys))
    stmt = _UPSERTS.get(shape)
    if stmt is None:
        insert = _insert(conn, table)
        changes = {k: insert.excluded[k] for k in values if k not in keys}
        if "attempts" in changes:  # a job's attempt count only grows
            changes["attempts"] = case(
                (table.c.attempts > insert.excluded.attempts, table.c.attempts),
                else_=insert.excluded.attempts,
            )
        stmt = _UPSERTS[shape] = insert.on_conflict_do_update(
            index_elements=list(keys), set_=changes
        )
    conn.execute(stmt, values)


def day_of(ts: float) -> str:
    """The UTC calendar day of a timestamp, as `corral usage --by day` groups it."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Applier:
    """Writes batches for one writer; remembers each run's flow name and next seq."""

    # a run's totals are summed over all its attempts: after every batch that would make
    # a run of n jobs cost O(n^2); they are refreshed at most this often, and at its end
    TOTALS_EVERY_S = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._flow_names: dict[str, str] = {}
        self._next_seq: dict[str, int] = {}
        self._clock = clock
        self._totals_at: dict[str, float] = {}
        # attempts this writer saw start / finish: their rows need no repair statements
        self._started: set[tuple[str, str, int]] = set()
        self._finished: set[tuple[str, str, int]] = set()

    def write(self, conn: Connection, batch: Sequence[Pending]) -> None:
        """Insert the batch's events and derive their rows; the caller commits."""
        for item in batch:
            if item.seq == 0:
                item.seq = self._take_seq(conn, item.run_id)
            if not item.payload:
                item.payload = _payload(item.event)
        rows = [
            {
                "run_id": p.run_id,
                "seq": p.seq,
                "ts": p.ts,
                "kind": p.event.kind,
                "job": p.event.job,
                "attempt": p.event.attempt,
                "payload": p.payload,
            }
            for p in batch
        ]
        # do-nothing on conflict: a retried batch whose first commit did land is harmless
        conn.execute(_insert(conn, schema.events).on_conflict_do_nothing(), rows)
        touched: set[str] = set()
        for item in batch:
            if isinstance(item.event, DERIVED):
                self._derive(conn, item, touched)
        ended = {p.run_id for p in batch if isinstance(p.event, RunFinished)}
        now = self._clock()
        for run_id in touched:
            if run_id in ended or now - self._totals_at.get(run_id, -1e9) >= self.TOTALS_EVERY_S:
                self._update_totals(conn, run_id)
                self._totals_at[run_id] = now

    def _take_seq(self, conn: Connection, run_id: str) -> int:
        if run_id not in self._next_seq:
            # a resumed run may already have events from an earlier process
            last = conn.execute(
                select(func.max(schema.events.c.seq)).where(schema.events.c.run_id == run_id)
            ).scalar()
            self._next_seq[run_id] = int(last or 0) + 1
        seq = self._next_seq[run_id]
        self._next_seq[run_id] = seq + 1
        return seq

    def _derive(self, conn: Connection, item: Pending, touched: set[str]) -> None:
        event, run_id = item.event, item.run_id
        if isinstance(event, RunStarted):
            self._run_started(conn, event)
        elif isinstance(event, RunFinished):
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(status=str(event.status), ended_at=event.ended_at, error=event.error)
            )
            touched.add(run_id)
        elif isinstance(event, JobWaiting):
            self._job(conn, run_id, event.job, JobStatus.WAITING, reason=event.reason)
        elif isinstance(event, JobRetrying):
            self._job(conn, run_id, event.job, JobStatus.RETRYING, reason=event.reason)
        elif isinstance(event, JobSkipped):
            self._job(conn, run_id, event.job, JobStatus.SKIPPED, reason=event.reason)
        elif isinstance(event, JobStarted):
            self._job_started(conn, run_id, event)
        elif isinstance(event, JobFinished):
            self._job_finished(conn, item)
            touched.add(run_id)
        elif isinstance(event, SessionStarted):
            values: dict[str, Any] = {"session_id": event.session_id}
            if event.model:
                values["model"] = event.model
            conn.execute(
                update(schema.attempts)
                .where(
                    schema.attempts.c.run_id == run_id,
                    schema.attempts.c.job == event.job,
                    schema.attempts.c.attempt == event.attempt,
                )
                .values(**values)
            )

    def _run_started(self, conn: Connection, event: RunStarted) -> None:
        self._flow_names[event.run_id] = event.flow_name
        values = {
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
        }
        _upsert(conn, schema.runs, values, ["id"])
        if event.jobs:
            rows = [
                {"run_id": event.run_id, "name": name, "position": i, "status": "waiting"}
                for i, name in enumerate(event.jobs)
            ]
            conn.execute(_insert(conn, schema.jobs).on_conflict_do_nothing(), rows)

    def _job(
        self,
        conn: Connection,
        run_id: str,
        name: str,
        status: JobStatus,
        *,
        reason: str | None = None,
        attempt: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"run_id": run_id, "name": name, "status": str(status)}
        values["reason"] = reason
        if attempt is not None:
            values["attempts"] = attempt
        _upsert(conn, schema.jobs, values, ["run_id", "name"])

    def _job_started(self, conn: Connection, run_id: str, event: JobStarted) -> None:
        values = {
            "run_id": run_id,
            "job": event.job,
            "attempt": event.attempt,
            "status": str(JobStatus.RUNNING),
            "started_at": event.started_at,
            "pid": event.pid,
            "argv": dumps(list(event.argv)),
            "spec": dumps(event.spec),
            "tool": event.tool,
            "model": event.model,
            "log_dir": event.log_dir,
        }
        _upsert(conn, schema.attempts, values, ["run_id", "job", "attempt"])
        self._job(conn, run_id, event.job, JobStatus.RUNNING, attempt=event.attempt)
        self._started.add((run_id, event.job, event.attempt))

    def _job_finished(self, conn: Connection, item: Pending) -> None:
        event = item.event
        assert isinstance(event, JobFinished)  # narrowed by _derive's dispatch
        run_id = item.run_id
        tokens = Tokens.from_usage(event.usage)
        cost = event.cost
        values: dict[str, Any] = {
            "run_id": run_id,
            "job": event.job,
            "attempt": event.attempt,
            "status": str(event.status),
            "ended_at": item.ts,
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
            **tokens.columns(),
        }
        if len(event.by_model) == 1:
            values["model"] = next(iter(event.by_model))
        if event.session_id is not None:  # else keep the one the agent announced
            values["session_id"] = event.session_id
        _upsert(conn, schema.attempts, values, ["run_id", "job", "attempt"])
        ident = (run_id, event.job, event.attempt)
        if ident not in self._started:
            # a job that never started (spawn failure) still gets its attempt row: backfill
            conn.execute(
                update(schema.attempts)
                .where(
                    schema.attempts.c.run_id == run_id,
                    schema.attempts.c.job == event.job,
                    schema.attempts.c.attempt == event.attempt,
                    schema.attempts.c.started_at.is_(None),
                )
                .values(started_at=item.ts - event.duration_s)
            )
        self._job(conn, run_id, event.job, event.status, attempt=event.attempt)
        if ident in self._finished or ident not in self._started:
            # written before (a retried batch, another process): replace, not add
            key = (
                schema.job_models.c.run_id == run_id,
                schema.job_models.c.job == event.job,
                schema.job_models.c.attempt == event.attempt,
            )
            conn.execute(delete(schema.job_models).where(*key))
        self._finished.add(ident)
        base = {
            "run_id": run_id,
            "job": event.job,
            "attempt": event.attempt,
            "tool": event.tool,
            "flow_name": self._flow_name(conn, run_id),
            "ended_at": item.ts,
            "day": day_of(item.ts),
        }
        rows = [dict(base, **row) for row in model_rows(event)]
        if rows:
            conn.execute(schema.job_models.insert(), rows)

    def _flow_name(self, conn: Connection, run_id: str) -> str:
        if run_id not in self._flow_names:
            name = conn.execute(
                select(schema.runs.c.flow_name).where(schema.runs.c.id == run_id)
            ).scalar()
            self._flow_names[run_id] = str(name or "")
        return self._flow_names[run_id]

    def _update_totals(self, conn: Connection, run_id: str) -> None:
        a = schema.attempts
        sums = conn.execute(
            select(*(func.coalesce(func.sum(a.c[n]), 0) for n in TOKEN_COLUMN_NAMES)).where(
                a.c.run_id == run_id
            )
        ).one()
        costs = conn.execute(
            select(a.c.cost_usd, a.c.cost_source).where(
                a.c.run_id == run_id, a.c.cost_source.is_not(None)
            )
        ).all()
        total = Cost.total(Cost(usd, CostSource(source)) for usd, source in costs)
        values: dict[str, Any] = {n: int(v) for n, v in zip(TOKEN_COLUMN_NAMES, sums, strict=True)}
        values["cost_usd"] = None if total is None else total.usd
        values["cost_source"] = None if total is None else str(total.source)
        conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(**values))


def model_rows(event: JobFinished) -> Iterable[dict[str, Any]]:
    """One row per model of the attempt, with its share of the cost and its source.

    The shares always add up to the attempt's cost: a model missing from cost_by_model
    is unpriced when others were priced; a single model takes a cost reported for the
    whole job; what no model can take goes to an `(unattributed)` row with no tokens.
    """
    cost = event.cost
    usd = None if cost is None else cost.usd
    source = CostSource.UNPRICED if cost is None else cost.source
    priced = event.cost_by_model
    single = len(event.by_model) == 1 and not priced
    for model, usage in event.by_model.items():
        share: Decimal | None = None
        model_source = source
        if model in priced:
            share = priced[model]
            if source is CostSource.UNPRICED:  # this part was priced; others were not
                model_source = CostSource.ESTIMATED
        elif priced or usd is None:
            model_source = CostSource.UNPRICED
        elif single:
            share = usd
        row: dict[str, Any] = {"model": model, "cost_usd": share, "cost_source": str(model_source)}
        row.update(Tokens.from_usage(usage).columns())
        yield row
    rest = None if usd is None else usd - sum(priced.values(), Decimal(0))
    if rest and not single:
        row = {"model": UNATTRIBUTED, "cost_usd": rest, "cost_source": str(source)}
        row.update(Tokens().columns())
        yield row
