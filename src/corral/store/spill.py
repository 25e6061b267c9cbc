"""The on-disk backlog of the store writer: events the history could not take, kept in
the run's folder until it can.

When the database stays down (or the writer's bounded memory is full) the writer appends
its pending events, in order and with their event numbers (`seq`) fixed, to
`<run folder>/history-spill.jsonl` (0600 in the run's 0700 folder) and fsyncs it; once the
database takes writes again it writes them back first, then the rest. A corral killed
meanwhile leaves the file: `corral resume` writes it (`replay`) before it reads the run.

Writing back is idempotent: an event whose (run, seq) is already stored is skipped with
the rows it would change, so a spill written back twice (a kill between the commit and
the file's removal) applies nothing twice. A line torn by a kill during an append was
never fsynced, so never promised: it is ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from corral.events.codec import event_from_dict
from corral.private import FILE_MODE
from corral.store.apply import Applier, Pending, payload_of
from corral.store.rows import Rows
from corral.store.sqltext import Db

if TYPE_CHECKING:
    from corral.store.sql import SqlHistory

SPILL_NAME = "history-spill.jsonl"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # money stays exact
        return {"$dec": str(value)}
    return str(value)


def _decoded(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$dec"}:
            return Decimal(value["$dec"])
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


class SpillFile:
    """`<folder>/history-spill.jsonl`: append (durably), read back, remove."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / SPILL_NAME

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, items: Sequence[Pending]) -> None:
        """Append `items` (each with its seq) and fsync; OSError when the disk refuses."""
        lines = b"".join(_line(item) for item in items)
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # whatever the umask
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's name must survive a crash too
            _fsync_dir(self.path.parent)

    def read(self) -> list[Pending]:
        """The spilled events, in order (a torn last line is left out)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        items = []
        for raw in data.splitlines():
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # torn by a kill mid-append: never fsynced, never promised
            rows = record["rows"]
            payload = record["payload"]
            items.append(
                Pending(
                    ts=record["ts"],
                    event=event_from_dict(orjson.loads(payload)),
                    rows=None if rows is None else Rows(**_decoded(rows)),
                    run_id=record["run"],
                    seq=record["seq"],
                    payload=payload,
                )
            )
        return items

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_dir(self.path.parent)


def _line(item: Pending) -> bytes:
    record = {
        "run": item.run_id,
        "seq": item.seq,
        "ts": item.ts,
        "payload": item.payload or payload_of(item.event),
        "rows": None if item.rows is None else asdict(item.rows),
    }
    return orjson.dumps(record, default=_default) + b"\n"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_back(db: Db, applier: Applier, items: Sequence[Pending]) -> int:
    """Write the spilled `items` not stored yet, in order, in the caller's transaction;
    how many were written."""
    stored = _stored(db, items)
    fresh = [item for item in items if (item.run_id, item.seq) not in stored]
    for start in range(0, len(fresh), 5000):
        applier.write(db, fresh[start : start + 5000])
    for run_id in {item.run_id for item in fresh}:
        applier.refresh_totals(db, run_id)
    return len(fresh)


def _stored(db: Db, items: Iterable[Pending]) -> set[tuple[str, int]]:
    lowest: dict[str, int] = {}
    for item in items:
        lowest[item.run_id] = min(item.seq, lowest.get(item.run_id, item.seq))
    found: set[tuple[str, int]] = set()
    sql = "SELECT seq FROM events WHERE run_id = :run_id AND seq >= :seq"
    for run_id, seq in lowest.items():
        rows = db.query(sql, {"run_id": run_id, "seq": seq})[1]
        found.update((run_id, int(number)) for (number,) in rows)
    return found


def replay(history: SqlHistory, folder: Path) -> int:
    """Write the spill a killed corral left in `folder` (if any) and remove it; how many
    events were written (0 when they all were already). Errors are the database's."""
    spill = SpillFile(folder)
    if not spill.exists():
        return 0
    items = spill.read()
    written = 0
    if items:
        with history.transaction() as db:
            written = write_back(db, Applier(), items)
    spill.remove()
    return written


__all__ = ["SPILL_NAME", "SpillFile", "replay", "write_back"]
