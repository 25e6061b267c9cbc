"""The history's SQL as text, written once and run by either driver.

SQLite and PostgreSQL share the SQL corral needs (upserts with `ON CONFLICT`, named
`:parameters`), so each statement is one string: the standard library's sqlite3 runs it
on a SQLite file, SQLAlchemy's `text()` on PostgreSQL (or on SQLite given by a URL with
options). Starting a run or a history command on a current SQLite history therefore
imports no SQLAlchemy. The tables themselves are declared once, in
`corral.store.schema` (which the migrations build).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class Db(Protocol):
    """One connection (inside a transaction, for writes): reads and writes as SQL text."""

    dialect: str  # "sqlite" or "postgresql"

    def query(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = False
    ) -> tuple[list[str], Iterable[Any]]:
        """A query's column names and its rows, as tuples; with `stream`, rows come in
        batches as they are iterated (a big run's events)."""
        ...

    def execute(self, sql: str, params: Mapping[str, Any]) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, ignore: bool
    ) -> None:
        """Insert `rows`, each a tuple of `columns` in that order (no Decimal in them); with
        `ignore`, a row whose key is already there is skipped. The writer's hot path: no
        dict per row and no binding by name."""
        ...


class SqliteDb:
    """`Db` over a stdlib sqlite3 connection."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def query(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = False
    ) -> tuple[list[str], Iterable[Any]]:
        cursor = self.conn.execute(sql, _bind(params))  # a cursor reads as it goes anyway
        return [d[0] for d in cursor.description], cursor

    def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        self.conn.execute(sql, _bind(params))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.conn.executemany(sql, [_bind(row) for row in rows])

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, ignore: bool
    ) -> None:
        # by position: sqlite3 binds a tuple to `?` without looking a name up per value.
        # Many rows per statement: each step of a statement costs SQLite and sqlite3 a
        # round of setup (reset, bind, VM start) that one row of events barely outweighs.
        # Only the sizes of `row_chunks` and 1 are used, so the driver's statement cache
        # holds three texts per table whatever the batch. The conflict clause is the
        # single row's: with `ignore` a row already there is skipped and the others go
        # in; without, IntegrityError as row by row (a multi-row statement also undoes
        # its own earlier rows, where executemany kept them: the caller rolls the whole
        # transaction back either way)
        width = len(columns)
        done, total = 0, len(rows)
        for size in row_chunks(width):
            count = (total - done) // size
            if not count:
                continue
            sql = positional_insert(table, columns, ignore_conflicts=ignore, rows=size)
            end = done + count * size
            values = list(chain.from_iterable(rows[done:end]))
            step = size * width
            self.conn.executemany(sql, [values[i : i + step] for i in range(0, len(values), step)])
            done = end
        if done < total:
            sql = positional_insert(table, columns, ignore_conflicts=ignore)
            self.conn.executemany(sql, rows[done:] if done else rows)


class AlchemyDb:
    """`Db` over a SQLAlchemy connection (PostgreSQL, or SQLite by URL options)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def query(
        self, sql: str, params: Mapping[str, Any], *, stream: bool = False
    ) -> tuple[list[str], Iterable[Any]]:
        from sqlalchemy import text

        if not stream:
            result = self.conn.execute(text(sql), _bind(params))
            return list(result.keys()), result.all()
        # yield_per (a server-side cursor on PostgreSQL): batches rather than all at once
        result = self.conn.execution_options(yield_per=2000).execute(text(sql), _bind(params))
        return list(result.keys()), result

    def execute(self, sql: str, params: Mapping[str, Any]) -> None:
        from sqlalchemy import text

        self.conn.execute(text(sql), _bind(params))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        from sqlalchemy import text

        if rows:
            self.conn.execute(text(sql), [_bind(row) for row in rows])

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, ignore: bool
    ) -> None:
        sql = insert(table, columns, ignore_conflicts=ignore)
        self.executemany(sql, [dict(zip(columns, row, strict=True)) for row in rows])


def _bind(params: Mapping[str, Any]) -> dict[str, Any]:
    # money is exact decimal text in every table (schema.Money)
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in params.items()}


def name(identifier: str) -> str:
    """A quoted identifier (`user` is a keyword in PostgreSQL)."""
    return '"' + identifier + '"'


def insert(table: str, columns: Iterable[str], *, ignore_conflicts: bool = False) -> str:
    """`INSERT` of one row of `columns` (bound by their names)."""
    cols = list(columns)
    return _insert(table, cols, "(" + ", ".join(":" + c for c in cols) + ")", ignore_conflicts)


# bind parameters one statement may hold: SQLITE_MAX_VARIABLE_NUMBER of SQLite before
# 3.32 (newer builds allow 32766, but the SQLite a Python links is not corral's to choose)
MAX_BINDS = 999
# rows per multi-row statement, biggest first (then single rows): a batch of any size is
# written with these few statement texts, each prepared once per connection
ROW_CHUNKS = (128, 16)


def row_chunks(width: int) -> tuple[int, ...]:
    """The multi-row sizes `insert_many` uses for rows of `width` columns, biggest first:
    `ROW_CHUNKS`, each cut down to what `MAX_BINDS` parameters hold (1 is not listed)."""
    most = max(1, MAX_BINDS // max(1, width))
    return tuple(sorted({min(size, most) for size in ROW_CHUNKS} - {1}, reverse=True))


def positional_insert(
    table: str, columns: Sequence[str], *, ignore_conflicts: bool = False, rows: int = 1
) -> str:
    """The same `INSERT`, its values bound by position (`?`: sqlite3's own style), of
    `rows` rows at once (their values one after the other)."""
    return _positional_insert(table, tuple(columns), ignore_conflicts, rows)


@lru_cache(maxsize=64)
def _positional_insert(table: str, columns: tuple[str, ...], ignore: bool, rows: int) -> str:
    # cached: the writer asks for the same few texts with every batch
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    return _insert(table, columns, ", ".join([one] * rows), ignore)


def _insert(table: str, cols: Sequence[str], values: str, ignore: bool) -> str:
    sql = f"INSERT INTO {name(table)} ({', '.join(map(name, cols))}) VALUES {values}"
    return sql + (" ON CONFLICT DO NOTHING" if ignore else "")


def upsert(
    table: str,
    columns: Iterable[str],
    keys: Sequence[str],
    changes: Mapping[str, str] | None = None,
) -> str:
    """Insert a row, or update the one with the same `keys` to the row's other columns
    (`changes` gives a column an expression of its own instead)."""
    cols, changes = list(columns), changes or {}
    sets = [f"{name(c)} = {changes.get(c, 'excluded.' + name(c))}" for c in cols if c not in keys]
    conflict = f" ON CONFLICT ({', '.join(map(name, keys))}) DO "
    action = "UPDATE SET " + ", ".join(sets) if sets else "NOTHING"
    return insert(table, cols) + conflict + action


def update(table: str, columns: Iterable[str], where: Iterable[str]) -> str:
    """`UPDATE` of `columns` (bound by name) where each of `where` equals `:w_<column>`."""
    sets = ", ".join(f"{name(c)} = :{c}" for c in columns)
    return f"UPDATE {name(table)} SET {sets} WHERE {matching(where)}"


def matching(columns: Iterable[str]) -> str:
    """`a = :w_a AND b = :w_b`: the where-parameters are prefixed, never a value's name."""
    return " AND ".join(f"{name(c)} = :w_{c}" for c in columns)
