"""A run as JSON (record and events), JSONL (the event log) or CSV (one row per attempt).

Exports are produced as chunks of text so that a run with a million events is never
held whole in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import orjson

from corral.errors import UsageError
from corral.models import TOKEN_COLUMN_NAMES
from corral.store.protocols import EXPORT_FORMATS
from corral.store.queries import events, get_run, resolve_run_id
from corral.store.sqltext import Db
from corral.times import iso_time, seconds

Reads = Callable[[], AbstractContextManager[Db]]

EXPORT_VERSION = 1
CSV_COLUMNS = (
    "run_id",
    "job",
    "attempt",
    "status",
    "tool",
    "model",
    "started_at",
    "ended_at",
    "duration_s",
    "exit_code",
    "signal",
    "error_kind",
    *TOKEN_COLUMN_NAMES,
    "cost_usd",
    "cost_source",
    "log_dir",
)


def export(reads: Reads, run_id: str, fmt: str) -> Iterator[str]:
    """Chunks of the export of one run (resolved by id or unique prefix); `reads` opens
    a connection of the history (`SqlHistory.reads`)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use json, jsonl or csv")
    with reads() as db:
        run_id = resolve_run_id(db, run_id)
    if fmt == "csv":
        yield from _csv(reads, run_id)
        return
    if fmt == "json":
        with reads() as db:
            record = get_run(db, run_id)
        head = {"schema_version": EXPORT_VERSION, **record.to_dict()}
        yield orjson.dumps(head).decode()[:-1] + ',"events":['
    first = True
    for line in _event_lines(reads, run_id):
        if fmt == "jsonl":
            yield line + "\n"
        else:
            yield line if first else "," + line
        first = False
    if fmt == "json":
        yield "]}\n"


def _event_lines(reads: Reads, run_id: str) -> Iterator[str]:
    with reads() as db:
        quoted = orjson.dumps(run_id).decode()
        for seq, ts, _kind, stored in events(db, run_id, 0):
            # the payload is already JSON: splice it in rather than parse and re-encode;
            # its times (`"started_at":1.5`) become ISO 8601 text like every time here
            payload = _TIME.sub(_iso_field, stored) if '_at":' in stored else stored
            yield f'{{"run_id":{quoted},"seq":{seq},"ts":"{iso_time(ts)}","event":{payload}}}'


# a `*_at` key with a number (orjson writes no spaces); inside a JSON string every quote
# is escaped, so this matches keys only
_TIME = re.compile(r'"(\w+_at)":(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def _iso_field(match: re.Match[str]) -> str:
    return f'"{match.group(1)}":"{iso_time(float(match.group(2)))}"'


def _csv(reads: Reads, run_id: str) -> Iterator[str]:
    with reads() as db:
        record = get_run(db, run_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for job in record.jobs:
        for a in job.attempts:
            writer.writerow(
                [
                    run_id,
                    a.job,
                    a.attempt,
                    a.status,
                    a.tool,
                    a.model or "",
                    iso_time(a.started_at),
                    iso_time(a.ended_at),
                    seconds(a.duration_s),
                    a.exit_code,
                    a.signal,
                    a.error_kind or "",
                    *a.tokens.columns().values(),
                    "" if a.cost is None or a.cost.usd is None else a.cost.usd,
                    "" if a.cost is None else a.cost.source,
                    a.log_dir,
                ]
            )
    yield buffer.getvalue()
