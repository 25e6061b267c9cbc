"""The SQL history: SQLite by default, PostgreSQL by URL.

`SqlHistory` implements `corral.store.protocols.HistoryStore`; `open_sql` is what the
`sqlite` and `postgresql` entry points of `corral.stores` name. Every query and write is
SQL text (`corral.store.sqltext`): on a SQLite file the standard library's sqlite3 runs
it, so opening a current history to read it or to record a run imports neither
SQLAlchemy nor Alembic; SQLAlchemy runs it on PostgreSQL, and migrates both (its engine
is made on first use). The reads (`corral.store.queries`) are imported by the methods
that read: recording a run never loads them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import orjson

from corral.models import RunStatus
from corral.store.engine import (
    BUSY_TIMEOUT_MS,
    IMMEDIATE,
    busy_timeout_of,
    connect_sqlite,
    create_store_engine,
    is_current_sqlite,
    migrate,
    resolve_url,
    sqlite_file,
)
from corral.store.protocols import StoredEvent, UsageBy
from corral.store.sqltext import AlchemyDb, Db, SqliteDb

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from corral.store.queries import RunRows
    from corral.store.records import RunningJob, RunRecord, RunRow, UsageRow
    from corral.store.writer import StoreWriter

Driver = Literal["auto", "sqlalchemy"]


class SqlHistory:
    """A history database. Thread-safe: the writer thread and queries share the engine,
    which this object owns (its writers never dispose of it).

    Give an engine, or a URL (the engine is then made when first needed). `driver`
    "auto" reads and writes a SQLite file through sqlite3; "sqlalchemy" through the
    engine (the tests run the store both ways).
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        url: str | None = None,
        driver: Driver = "auto",
        busy_timeout_ms: int | None = None,
    ) -> None:
        if engine is not None:
            url = engine.url.render_as_string(hide_password=False)
            if busy_timeout_ms is None:
                busy_timeout_ms = busy_timeout_of(engine)
        elif url is None:
            raise ValueError("SqlHistory needs an engine or a URL")
        self._engine = engine
        self._url = url
        self._busy_timeout_ms = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        self._file = sqlite_file(self._url) if driver == "auto" else None
        self._writes: sqlite3.Connection | None = None  # kept open between transactions
        self._writes_busy_ms = self._busy_timeout_ms  # its busy timeout now
        self._write_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (made on first use: PostgreSQL, migrations, usage, gc)."""
        if self._engine is None:
            self._engine = create_store_engine(self._url, busy_timeout_ms=self._busy_timeout_ms)
        return self._engine

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        if self._file is not None:
            # a file URL holds no password; shown with the path as the user wrote it
            return f"sqlite:///{self._file}"
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self, target: str = "head") -> None:
        """Bring the schema to the newest revision (or `target`); safe to call always."""
        migrate(self.engine, target)

    def close(self) -> None:
        with self._write_lock:
            if self._writes is not None:
                self._writes.close()
                self._writes = None
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def reads(self) -> Iterator[Db]:
        """A connection to read with: sqlite3 for a SQLite file, else the engine's."""
        if self._file is not None:
            conn = connect_sqlite(self._file, busy_timeout_ms=self._busy_timeout_ms)
            try:
                yield SqliteDb(conn)
            finally:
                conn.close()
            return
        with self.engine.connect() as connection:
            yield AlchemyDb(connection)

    @contextmanager
    def transaction(self, *, busy_timeout_ms: int | None = None) -> Iterator[Db]:
        """A write transaction, committed at the end of the block (rolled back if it
        raises). It takes the write lock up front (BEGIN IMMEDIATE on SQLite), so SQLite
        never has to refuse an upgrade from read to write. `busy_timeout_ms` caps how
        long a SQLite file another process holds locked is waited for (the history
        writer waits briefly and retries on its own schedule)."""
        if self._file is None:
            with (
                self.engine.connect().execution_options(**{IMMEDIATE: True}) as connection,
                connection.begin(),
            ):
                yield AlchemyDb(connection)
            return
        with self._write_lock:
            if self._writes is None:
                self._writes = connect_sqlite(self._file, busy_timeout_ms=self._busy_timeout_ms)
                self._writes_busy_ms = self._busy_timeout_ms
                # as the engine's: durable across a crash of corral in WAL mode
                self._writes.execute("PRAGMA synchronous = NORMAL")
            conn = self._writes
            wanted = min(busy_timeout_ms or self._busy_timeout_ms, self._busy_timeout_ms)
            if self._writes_busy_ms != wanted:  # the pragma stays with the connection
                conn.execute(f"PRAGMA busy_timeout = {int(wanted)}")
                self._writes_busy_ms = wanted
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield SqliteDb(conn)
                conn.execute("COMMIT")
            except BaseException:
                # whatever failed (a lock, a full disk, a bug), start the next one afresh
                self._writes = None
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                conn.close()
                raise

    def list_runs(
        self,
        status: RunStatus | str | None = None,
        flow: str | None = None,
        since: float | None = None,
        limit: int | None = 50,
        *,
        rehearsal: bool | None = None,
    ) -> list[RunRow]:
        """Runs newest first; `since` is a POSIX timestamp, `flow` a name or path;
        `rehearsal` keeps only the rehearsals (True) or only the real runs (False)."""
        from corral.store import queries

        with self.reads() as db:
            return queries.list_runs(
                db, status=status, flow=flow, since=since, limit=limit, rehearsal=rehearsal
            )

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id or unique prefix; NotFoundError (with a hint) if there is none."""
        from corral.store import queries

        with self.reads() as db:
            return queries.get_run(db, run_id)

    def read_run(self, run_id: str) -> RunRows:
        """`get_run`'s rows, before any object is built per job (`corral show`)."""
        from corral.store import queries

        with self.reads() as db:
            return queries.read_run(db, run_id)

    def resumers(self, run_id: str) -> list[RunRow]:
        """The runs resumed from `run_id`, newest first (`corral.app.chain.resumers`)."""
        from corral.store import queries

        with self.reads() as db:
            return queries.resumers(db, run_id)

    def resolve_run_id(self, run_id: str) -> str:
        from corral.store import queries

        with self.reads() as db:
            return queries.resolve_run_id(db, run_id)

    def events(self, run_id: str, after_seq: int = 0) -> Iterator[StoredEvent]:
        """The run's stored events after `after_seq`, in publish order (JobOutput is never
        stored). Each call reads what is committed by then: a live tail calls again
        with the last seq it saw."""
        from corral.events.codec import event_from_dict
        from corral.store import queries

        full = self.resolve_run_id(run_id)
        with self.reads() as db:
            for seq, ts, _kind, payload in queries.events(db, full, after_seq):
                yield StoredEvent(seq, ts, event_from_dict(orjson.loads(payload)))

    def event_payloads(
        self, run_id: str, after_seq: int = 0
    ) -> Iterator[tuple[int, float, str, str]]:
        """`events`, undecoded: (seq, ts, kind, the event's JSON as stored)."""
        from corral.store import queries

        full = self.resolve_run_id(run_id)
        with self.reads() as db:
            yield from queries.events(db, full, after_seq)

    def usage(
        self, by: UsageBy, since: float | None = None, *, include_rehearsals: bool = False
    ) -> list[UsageRow]:
        """Tokens by kind and cost by source, grouped by model, tool, job, flow or day;
        the spend of rehearsals (simulated) only with `include_rehearsals`."""
        from corral.store import queries

        with self.engine.connect() as conn:
            return queries.usage(conn, by, since=since, include_rehearsals=include_rehearsals)

    def running_jobs(self, run_id: str) -> list[RunningJob]:
        """Jobs recorded as running (pid and process group), for resume to reap."""
        from corral.store import queries

        with self.reads() as db:
            return queries.running_jobs(db, run_id)

    def delete_runs_older_than(
        self,
        seconds: float,
        *,
        now: float | None = None,
        dry_run: bool = False,
        keep: Callable[[RunRow], bool] | None = None,
    ) -> list[RunRow]:
        """Delete runs started more than `seconds` ago, except those `keep` holds on to;
        returns them (to remove their logs)."""
        from corral.store import queries

        cutoff = (time.time() if now is None else now) - seconds
        with self.reads() as db:
            old = queries.list_runs(db, until=cutoff, limit=None)
        if keep is not None:
            old = [run for run in old if not keep(run)]
        if old and not dry_run:
            with self.engine.begin() as conn:
                queries.delete_runs(conn, [run.id for run in old])
        return old

    def export(self, run_id: str, fmt: str) -> Iterator[str]:
        """The run as `json`, `jsonl` or `csv`, in chunks of text."""
        from corral.store.export import export

        return export(self.reads, run_id, fmt)

    def writer(self, *, run_id: str | None = None) -> StoreWriter:
        """A batching writer on a thread (see `corral.store.writer`)."""
        from corral.store.writer import StoreWriter

        return StoreWriter(self, run_id=run_id)


def open_store(
    url: str | None, default_path: Path, *, migrate: bool = True, driver: Driver = "auto"
) -> SqlHistory:
    """Open (and by default migrate) the history at `url`, else SQLite at `default_path`.

    Raises StoreError for a bad URL or an unreachable database, MissingExtraError when a
    PostgreSQL URL is given without `corral[postgres]` installed.
    """
    return _open(resolve_url(url, default_path), migrate=migrate, driver=driver)


def open_sql(url: str) -> SqlHistory:
    """The `corral.stores` factory for `sqlite://` and `postgresql://` URLs."""
    return _open(resolve_url(url, None), migrate=True)


def _open(url: str, *, migrate: bool, driver: Driver = "auto") -> SqlHistory:
    file = sqlite_file(url)
    if file is not None and is_current_sqlite(file):
        # current already: no engine, no migration machinery (one SELECT through sqlite3)
        return SqlHistory(url=url, driver=driver)
    store = SqlHistory(create_store_engine(url), driver=driver)
    if migrate:
        store.migrate()
    return store
