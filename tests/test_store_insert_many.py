"""Multi-row inserts of the history writer (`SqliteDb.insert_many`): the same rows as one
statement per row, in 128-, 16- and 1-row statements, within SQLite's bind limit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.store.sqltext import MAX_BINDS, SqliteDb, positional_insert, row_chunks

COLUMNS = ("run_id", "seq", "ts", "kind", "job", "attempt", "payload")  # as `events`
TABLE = (
    'CREATE TABLE "t" (run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL, kind TEXT,'
    " job TEXT, attempt INTEGER, payload TEXT, PRIMARY KEY (run_id, seq))"
)


class Recording(sqlite3.Connection):
    """A connection that notes each executemany: its SQL and how many times it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int]] = []

    def executemany(self, sql: str, params: Any, /) -> sqlite3.Cursor:
        params = list(params)
        self.calls.append((sql, len(params)))
        return super().executemany(sql, params)


def connect() -> Recording:
    conn = sqlite3.connect(":memory:", factory=Recording, isolation_level=None)
    assert isinstance(conn, Recording)
    conn.execute(TABLE)
    return conn


def contents(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    # rowid too: the rows went in in the same order
    return list(conn.execute('SELECT rowid, * FROM "t" ORDER BY rowid'))


def one_by_one(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], *, ignore: bool) -> None:
    sql = positional_insert("t", COLUMNS, ignore_conflicts=ignore)
    for row in rows:
        conn.execute(sql, row)


values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),  # NUL and any other code point included
    st.binary(max_size=8),
)
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2"]),
        st.integers(min_value=1, max_value=300),  # repeats: conflicts to ignore
        values,
        values,
        values,
        values,
        values,
    ),
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, present=st.lists(st.integers(1, 300), max_size=20))
def test_insert_many_leaves_what_one_insert_per_row_does(
    rows: list[tuple[Any, ...]], present: list[int]
) -> None:
    multi, single = connect(), connect()
    for conn in (multi, single):  # rows already there from an earlier batch
        one_by_one(conn, [("r1", seq, 0.0, "k", None, 1, "{}") for seq in present], ignore=True)
    SqliteDb(multi).insert_many("t", COLUMNS, rows, ignore=True)
    one_by_one(single, rows, ignore=True)
    assert contents(multi) == contents(single)


@settings(max_examples=30, deadline=None)
@given(count=st.integers(min_value=0, max_value=400))
def test_unique_rows_all_land_in_order(count: int) -> None:
    conn = connect()
    rows = [(f"r{n % 3}", n, n / 7, "kind", f"job{n}", n % 5, "x" * (n % 11)) for n in range(count)]
    SqliteDb(conn).insert_many("t", COLUMNS, rows, ignore=False)
    assert [row[1:] for row in contents(conn)] == rows


@pytest.mark.parametrize(
    ("count", "statements"),
    [
        (0, []),
        (1, [(1, 1)]),
        (15, [(1, 15)]),
        (16, [(16, 1)]),
        (127, [(16, 7), (1, 15)]),
        (128, [(128, 1)]),
        (400, [(128, 3), (16, 1)]),
        (401, [(128, 3), (16, 1), (1, 1)]),
        (300, [(128, 2), (16, 2), (1, 12)]),
    ],
)
def test_rows_go_in_128_then_16_then_single_row_statements(
    count: int, statements: list[tuple[int, int]]
) -> None:
    conn = connect()
    rows = [("r", n, 0.0, "k", None, 1, "{}") for n in range(count)]
    SqliteDb(conn).insert_many("t", COLUMNS, rows, ignore=True)
    expected = [
        (positional_insert("t", COLUMNS, ignore_conflicts=True, rows=size), runs)
        for size, runs in statements
    ]
    assert conn.calls == expected
    assert len(contents(conn)) == count


def test_only_three_statement_texts_whatever_the_batch() -> None:
    conn = connect()
    db, seq = SqliteDb(conn), 0
    for count in (1, 5, 17, 129, 250, 3, 1000):
        db.insert_many(
            "t", COLUMNS, [("r", seq + n, 0.0, "k", None, 1, "") for n in range(count)], ignore=True
        )
        seq += count
    assert len({sql for sql, _ in conn.calls}) == 3


def test_a_wide_table_stays_within_the_bind_limit() -> None:
    width = 100  # 999 // 100: 9 rows per statement at most
    columns = tuple(f"c{n}" for n in range(width))
    conn = sqlite3.connect(":memory:", factory=Recording, isolation_level=None)
    assert isinstance(conn, Recording)
    conn.execute("CREATE TABLE w (" + ", ".join(columns) + ")")
    assert row_chunks(width) == (9,)
    rows = [tuple(range(n, n + width)) for n in range(50)]
    SqliteDb(conn).insert_many("w", columns, rows, ignore=False)
    assert [(sql.count("?"), runs) for sql, runs in conn.calls] == [(9 * width, 5), (width, 5)]
    assert all(sql.count("?") <= MAX_BINDS for sql, _ in conn.calls)
    assert list(conn.execute("SELECT * FROM w ORDER BY rowid")) == rows


@pytest.mark.parametrize("width", [1, 7, 8, 62, 63, 64, 500, 999, 1000])
def test_row_chunks_fit_the_bind_limit(width: int) -> None:
    chunks = row_chunks(width)
    assert all(size * width <= MAX_BINDS and size > 1 for size in chunks)
    assert list(chunks) == sorted(chunks, reverse=True)
    if width <= MAX_BINDS // 128:
        assert chunks == (128, 16)


def rows_with_a_conflict_at(index: int, count: int) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        yield ("r", 5 if n == index else 1000 + n, 0.0, "k", None, 1, "{}")


@pytest.mark.parametrize("index", [0, 100, 127, 130, 260, 287, 299])
def test_a_conflicting_row_raises_as_it_does_row_by_row(index: int) -> None:
    rows = list(rows_with_a_conflict_at(index, 300))
    for insert in (
        lambda conn: SqliteDb(conn).insert_many("t", COLUMNS, rows, ignore=False),
        lambda conn: one_by_one(conn, rows, ignore=False),
    ):
        conn = connect()
        one_by_one(conn, [("r", 5, 0.0, "k", None, 1, "{}")], ignore=False)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            insert(conn)


def test_a_conflicting_row_is_skipped_with_ignore() -> None:
    conn = connect()
    one_by_one(conn, [("r", 5, 0.0, "old", None, 1, "{}")], ignore=False)
    rows = list(rows_with_a_conflict_at(140, 300))
    SqliteDb(conn).insert_many("t", COLUMNS, rows, ignore=True)
    stored = contents(conn)
    assert len(stored) == 300  # the old row and the 299 others
    assert stored[0][4] == "old"
