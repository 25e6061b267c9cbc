"""Writing one batch for the writer, inside one transaction.

Every event becomes a row of `events` (one multi-row insert: the hot path). The events
that change the runs, jobs, attempts and job_models rows (the ones the queries read, so
no query ever has to replay the event log) come with those rows' values, read from the
run's journal when they were published (`corral.store.rows`): this module stores them.
Statements are SQL text (`corral.store.sqltext`), the same for SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

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
from corral.store import jobcounts, sqltext
from corral.store.rows import Rows, day_of, dumps
from corral.store.sqltext import Db, name

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
        body = orjson.dumps(event, default=str)
    except TypeError:
        try:  # a dict with keys that are not strings (a spec's): as `dumps` writes them
            body = orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # the slow, sure path
            return dumps(event_to_dict(event))
    head = _HEADS.get(event.kind)
    if head is None:
        head = _HEADS[event.kind] = b'{"v":%d,"kind":%s,' % (
            SCHEMA_VERSION,
            orjson.dumps(event.kind),
        )
    return (head + body[1:] if len(body) > 2 else head[:-1] + b"}").decode()


_HEADS: dict[str, bytes] = {}  # the start of each kind's payload, up to its first field


def payload_of(event: Event) -> str:
    """The JSON text an event is stored as (`_payload`), for the writer's on-disk backlog."""
    return _payload(event)


_EVENT_COLUMNS = ("run_id", "seq", "ts", "kind", "job", "attempt", "payload")
_ATTEMPT_KEY = ("run_id", "job", "attempt")
# a job's attempt count only grows
_MORE_ATTEMPTS = {
    "attempts": "CASE WHEN jobs.attempts > excluded.attempts THEN jobs.attempts"
    " ELSE excluded.attempts END"
}
_TOTALS = (
    "SELECT "
    + ", ".join(f"coalesce(sum({name(n)}), 0)" for n in TOKEN_COLUMN_NAMES)
    + " FROM attempts WHERE run_id = :run_id"
)
_COSTS = (
    "SELECT cost_usd, cost_source FROM attempts WHERE run_id = :run_id AND cost_source IS NOT NULL"
)
_STATEMENTS: dict[tuple[str, ...], str] = {}


def _statement(kind: str, table: str, columns: Sequence[str], keys: Sequence[str] = ()) -> str:
    # one text per shape of row, built once
    shape = (kind, table, *columns, "|", *keys)
    sql = _STATEMENTS.get(shape)
    if sql is None:
        if kind == "upsert":
            changes = _MORE_ATTEMPTS if table == "jobs" else None
            sql = sqltext.upsert(table, columns, keys, changes)
        elif kind == "update":
            sql = sqltext.update(table, columns, keys)
        else:
            sql = sqltext.insert(table, columns, ignore_conflicts=kind == "insert-new")
        _STATEMENTS[shape] = sql
    return sql


def _upsert(db: Db, table: str, values: dict[str, Any], keys: Sequence[str]) -> None:
    db.execute(_statement("upsert", table, tuple(values), keys), values)


def _update(db: Db, table: str, values: dict[str, Any], where: dict[str, Any]) -> None:
    params = {**values, **{f"w_{k}": v for k, v in where.items()}}
    db.execute(_statement("update", table, tuple(values), tuple(where)), params)


def _attempt_where(run_id: str, job: str, attempt: int) -> dict[str, Any]:
    return {"run_id": run_id, "job": job, "attempt": attempt}


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

    def write(self, db: Db, batch: Sequence[Pending]) -> None:
        """Insert the batch's events and derive their rows; the caller commits."""
        rows = []
        for item in batch:  # one pass: once per event on the writer's thread
            if item.seq == 0:
                item.seq = self._take_seq(db, item.run_id)
            event = item.event
            if not item.payload:
                item.payload = _payload(event)
            rows.append(
                (item.run_id, item.seq, item.ts, event.kind, event.job, event.attempt, item.payload)
            )
        # do-nothing on conflict: a retried batch whose first commit did land is harmless
        db.insert_many("events", _EVENT_COLUMNS, rows, ignore=True)
        touched: set[str] = set()
        recount: set[str] = set()  # runs whose job rows this batch writes
        for item in batch:
            if item.rows is not None:
                self._derive(db, item, item.rows, touched)
                if item.rows.jobs:
                    recount.add(item.run_id)
        ended = {p.run_id for p in batch if isinstance(p.event, RunFinished)}
        self._keep_job_counts(db, recount, ended)
        now = self._clock()
        for run_id in touched:
            if run_id in ended or now - self._totals_at.get(run_id, -1e9) >= self.TOTALS_EVERY_S:
                self._update_totals(db, run_id)
                self._totals_at[run_id] = now

    @staticmethod
    def _keep_job_counts(db: Db, recount: set[str], ended: set[str]) -> None:
        # a run's kept job counts are exact or absent: stored with its end, dropped when
        # a later batch writes its jobs (corral.store.jobcounts)
        jobcounts.forget(db, sorted(recount - ended))
        for run_id in sorted(ended):
            jobcounts.store(db, run_id)

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

    def refresh_totals(self, db: Db, run_id: str) -> None:
        """Sum the run's totals again now (after writing events back out of order)."""
        self._update_totals(db, run_id)
        self._totals_at[run_id] = self._clock()

    def _take_seq(self, db: Db, run_id: str) -> int:
        if run_id not in self._next_seq:
            # a resumed run may already have events from an earlier process
            sql = "SELECT max(seq) FROM events WHERE run_id = :run_id"
            last = next(iter(db.query(sql, {"run_id": run_id})[1]))[0]
            self._next_seq[run_id] = int(last or 0) + 1
        seq = self._next_seq[run_id]
        self._next_seq[run_id] = seq + 1
        return seq

    def _derive(self, db: Db, item: Pending, rows: Rows, touched: set[str]) -> None:
        event, run_id = item.event, item.run_id
        if isinstance(event, RunStarted) and rows.run is not None:
            self._flow_names[run_id] = event.flow_name
            _upsert(db, "runs", rows.run, ["id"])
            if rows.jobs:
                jobs = [{"run_id": run_id, **job} for job in rows.jobs]
                db.executemany(_statement("insert-new", "jobs", tuple(jobs[0])), jobs)
            return
        if rows.run is not None:  # the run ended
            _update(db, "runs", rows.run, {"id": run_id})
            touched.add(run_id)
        if rows.session is not None:
            values = dict(rows.session)
            where = _attempt_where(run_id, values.pop("job"), values.pop("attempt"))
            _update(db, "attempts", values, where)
        if rows.attempt is not None:
            attempt = {"run_id": run_id, "job": event.job, **rows.attempt}
            _upsert(db, "attempts", attempt, _ATTEMPT_KEY)
        if isinstance(event, JobStarted):
            self._started.add((run_id, event.job, event.attempt))
        elif isinstance(event, JobFinished):
            self._job_finished(db, item, rows)
            touched.add(run_id)
        for job in rows.jobs:
            _upsert(db, "jobs", {"run_id": run_id, **job}, ["run_id", "name"])

    def _job_finished(self, db: Db, item: Pending, rows: Rows) -> None:
        event, run_id = item.event, item.run_id
        ident = (run_id, event.job, event.attempt)
        where = {f"w_{k}": v for k, v in _attempt_where(*ident).items()}
        if ident not in self._started and rows.ended_at is not None:
            # a job that never started (spawn failure) still gets its attempt row: backfill
            db.execute(
                "UPDATE attempts SET started_at = :started_at WHERE "
                + sqltext.matching(_ATTEMPT_KEY)
                + " AND started_at IS NULL",
                {"started_at": rows.ended_at - rows.duration_s, **where},
            )
        if ident in self._finished or ident not in self._started:
            # written before (a retried batch, another process): replace, not add
            db.execute("DELETE FROM job_models WHERE " + sqltext.matching(_ATTEMPT_KEY), where)
        self._finished.add(ident)
        if not rows.models:
            return
        ended = rows.ended_at if rows.ended_at is not None else item.ts
        base = {
            "run_id": run_id,
            "job": event.job,
            "attempt": event.attempt,
            "tool": rows.attempt["tool"] if rows.attempt else "generic",
            "flow_name": self._flow_name(db, run_id),
            "ended_at": ended,
            "day": day_of(ended),
        }
        models = [{**base, **row} for row in rows.models]
        db.executemany(_statement("insert", "job_models", tuple(models[0])), models)

    def _flow_name(self, db: Db, run_id: str) -> str:
        if run_id not in self._flow_names:
            found = list(db.query("SELECT flow_name FROM runs WHERE id = :id", {"id": run_id})[1])
            self._flow_names[run_id] = str(found[0][0] or "") if found else ""
        return self._flow_names[run_id]

    def _update_totals(self, db: Db, run_id: str) -> None:
        key = {"run_id": run_id}
        sums = next(iter(db.query(_TOTALS, key)[1]))
        costs = db.query(_COSTS, key)[1]
        total = Cost.total(Cost(_money(usd), CostSource(source)) for usd, source in costs)
        values: dict[str, Any] = {n: int(v) for n, v in zip(TOKEN_COLUMN_NAMES, sums, strict=True)}
        values["cost_usd"] = None if total is None else total.usd
        values["cost_source"] = None if total is None else str(total.source)
        _update(db, "runs", values, {"id": run_id})


def _money(value: Any) -> Decimal | None:
    # exact decimal text in the table (schema.Money)
    return Decimal(value) if isinstance(value, str) else value
