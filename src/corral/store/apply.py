"""Writing one batch for the writer, inside one transaction.

Every event becomes a row of `events` (one multi-row insert: the hot path). The events
that change the runs, jobs, attempts and job_models rows (the ones the queries read, so
no query ever has to replay the event log) come with those rows' values, read from the
run's journal when they were published (`corral.store.rows`): this module stores them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, case, delete, func, select, update
from sqlalchemy.engine import Connection

from corral.events.codec import SCHEMA_VERSION, event_to_dict
from corral.events.types import (
    Event,
    JobFinished,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RunFinished,
    RunStarted,
)
from corral.models import TOKEN_COLUMN_NAMES, Cost, CostSource
from corral.store import schema
from corral.store.rows import Rows, day_of, dumps

# events that build the runs/jobs/attempts rows: never dropped from a full buffer
LIFECYCLE = (RunStarted, RunFinished, JobWaiting, JobStarted, JobRetrying, JobSkipped, JobFinished)


@dataclass(slots=True)
class Pending:
    """One event waiting to be written; run and seq are fixed once, so retries reuse them.

    `rows` is what the event changes in the derived tables (None: nothing)."""

    ts: float
    event: Event
    rows: Rows | None = None
    run_id: str = ""
    seq: int = 0
    payload: str = ""
    counted: bool = False  # already counted as resolved by the writer's sync()


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


def payload_of(event: Event) -> str:
    """The JSON text an event is stored as (`_payload`), for the writer's on-disk backlog."""
    return _payload(event)


def _insert(conn: Connection, table: Table) -> Any:
    # each dialect's module loads with its first use: a SQLite history never needs
    # PostgreSQL's (a fifth of SQLAlchemy's import time)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


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
            if item.rows is not None:
                self._derive(conn, item, item.rows, touched)
        ended = {p.run_id for p in batch if isinstance(p.event, RunFinished)}
        now = self._clock()
        for run_id in touched:
            if run_id in ended or now - self._totals_at.get(run_id, -1e9) >= self.TOTALS_EVERY_S:
                self._update_totals(conn, run_id)
                self._totals_at[run_id] = now

    def forget_numbers(self) -> None:
        """Read the next event numbers from the database again (after a rollback)."""
        self._next_seq.clear()

    def number_offline(self, item: Pending, *, new_run: bool) -> bool:
        """Give `item` its event number without the database (it is down): from the
        numbers this applier read, or from 1 for a run the database has never seen
        (`new_run`). False when the next number is unknown."""
        if item.seq:
            return True
        if item.run_id not in self._next_seq:
            if not new_run:
                return False
            self._next_seq[item.run_id] = 1
        item.seq = self._next_seq[item.run_id]
        self._next_seq[item.run_id] = item.seq + 1
        return True

    def refresh_totals(self, conn: Connection, run_id: str) -> None:
        """Sum the run's totals again now (after writing events back out of order)."""
        self._update_totals(conn, run_id)
        self._totals_at[run_id] = self._clock()

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

    def _derive(self, conn: Connection, item: Pending, rows: Rows, touched: set[str]) -> None:
        event, run_id = item.event, item.run_id
        if isinstance(event, RunStarted) and rows.run is not None:
            self._flow_names[run_id] = event.flow_name
            _upsert(conn, schema.runs, rows.run, ["id"])
            if rows.jobs:
                jobs = [{"run_id": run_id, **job} for job in rows.jobs]
                conn.execute(_insert(conn, schema.jobs).on_conflict_do_nothing(), jobs)
            return
        if rows.run is not None:  # the run ended
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(**rows.run))
            touched.add(run_id)
        if rows.session is not None:
            values = dict(rows.session)
            ident = _attempt_key(schema.attempts, run_id, values.pop("job"), values.pop("attempt"))
            conn.execute(update(schema.attempts).where(*ident).values(**values))
        if rows.attempt is not None:
            attempt = {"run_id": run_id, "job": event.job, **rows.attempt}
            _upsert(conn, schema.attempts, attempt, ["run_id", "job", "attempt"])
        if isinstance(event, JobStarted):
            self._started.add((run_id, event.job, event.attempt))
        elif isinstance(event, JobFinished):
            self._job_finished(conn, item, rows)
            touched.add(run_id)
        for job in rows.jobs:
            _upsert(conn, schema.jobs, {"run_id": run_id, **job}, ["run_id", "name"])

    def _job_finished(self, conn: Connection, item: Pending, rows: Rows) -> None:
        event, run_id = item.event, item.run_id
        ident = (run_id, event.job, event.attempt)
        key = _attempt_key(schema.attempts, *ident)
        if ident not in self._started and rows.ended_at is not None:
            # a job that never started (spawn failure) still gets its attempt row: backfill
            conn.execute(
                update(schema.attempts)
                .where(*key, schema.attempts.c.started_at.is_(None))
                .values(started_at=rows.ended_at - rows.duration_s)
            )
        models = _attempt_key(schema.job_models, *ident)
        if ident in self._finished or ident not in self._started:
            # written before (a retried batch, another process): replace, not add
            conn.execute(delete(schema.job_models).where(*models))
        self._finished.add(ident)
        if not rows.models:
            return
        ended = rows.ended_at if rows.ended_at is not None else item.ts
        base = {
            "run_id": run_id,
            "job": event.job,
            "attempt": event.attempt,
            "tool": rows.attempt["tool"] if rows.attempt else "generic",
            "flow_name": self._flow_name(conn, run_id),
            "ended_at": ended,
            "day": day_of(ended),
        }
        conn.execute(schema.job_models.insert(), [{**base, **row} for row in rows.models])

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


def _attempt_key(table: Table, run_id: str, job: str, attempt: int) -> tuple[Any, ...]:
    """The where-clause of one attempt's rows in `table`."""
    return (table.c.run_id == run_id, table.c.job == job, table.c.attempt == attempt)
