"""Each run's jobs counted by status, kept in one row per run (`run_job_counts`, migration
0005), so `corral runs` reads 50 rows instead of counting every job of the runs it lists
(262,000 index entries on a history of a few big runs).

The rule that keeps them exact: the history writer stores a run's counts in the same
transaction as the run's end, and any later transaction that writes one of its job rows
deletes them first. A run with no row (still running, written back out of order, recorded
before this revision by a process that was running then) is counted from its jobs, as
before; a row, when there is one, is what that count would give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from corral.store import sqltext
from corral.store.sqltext import Db

TABLE = "run_job_counts"
_COUNT = "SELECT status, count(*) FROM jobs WHERE run_id = :run_id GROUP BY status"
_STORE = sqltext.upsert(TABLE, ("run_id", "counts"), ("run_id",))
_FORGET = f"DELETE FROM {TABLE} WHERE run_id = :run_id"


def store(db: Db, run_id: str) -> None:
    """Count the run's jobs now and keep the counts (the caller's transaction)."""
    counts = {str(status): int(n) for status, n in db.query(_COUNT, {"run_id": run_id})[1]}
    text = orjson.dumps(counts, option=orjson.OPT_SORT_KEYS).decode()
    db.execute(_STORE, {"run_id": run_id, "counts": text})


def forget(db: Db, run_ids: Iterable[str]) -> None:
    """Drop the kept counts of runs whose job rows are being written."""
    rows = [{"run_id": run_id} for run_id in run_ids]
    if rows:
        db.executemany(_FORGET, rows)


def kept(db: Db, where: str, params: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The kept counts of the runs `run_id {where}` selects (an `IN (...)`), by run."""
    sql = f"SELECT run_id, counts FROM {TABLE} WHERE run_id {where}"
    found: dict[str, dict[str, int]] = {}
    for run_id, text in db.query(sql, params)[1]:
        counts = orjson.loads(text)
        found[run_id] = {str(status): int(n) for status, n in counts.items()}
    return found
