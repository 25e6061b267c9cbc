"""One logical run across resumes: a run and the runs it was resumed from (its chain).

`corral resume R` records a new run whose `resumed_from` is R; R is closed, with the
figures of every job the resume adopted cleared (the resume counts them whole, from the
complete log). The chain therefore holds each piece of work once, and the logical run's
figures are:

- jobs: each job as the newest run of the chain that has it records it (a job kept from
  an earlier run, or adopted by a later one, counts once);
- tokens and cost: the sum over the runs of the chain (a job run again keeps what its
  killed attempt spent: that was spent);
- started at the first run's start, ended at the last run's end (None while running).

`corral runs` lists the newest run of each chain with these figures; `show`, `export`
present the named run with the runs before it. `--no-chain` gives a single run alone.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from corral.errors import NotFoundError, UsageError
from corral.models import Cost, JobStatus, RunStatus, Tokens
from corral.store.export import EXPORT_VERSION
from corral.store.protocols import EXPORT_FORMATS, HistoryReader
from corral.store.records import RunRecord, RunRow
from corral.times import iso_time


def chain_of(history: HistoryReader, record: RunRecord) -> tuple[RunRecord, ...]:
    """`record` and the runs it was resumed from, newest first (up to one deleted by gc)."""
    chain = [record]
    seen = {record.run.id}
    parent = record.run.resumed_from
    while parent and parent not in seen:
        try:
            earlier = history.get_run(parent)
        except NotFoundError:
            break
        chain.append(earlier)
        seen.add(earlier.run.id)
        parent = earlier.run.resumed_from
    return tuple(chain)


def logical_row(chain: tuple[RunRecord, ...]) -> RunRow:
    """The newest run's row with the chain's figures (module docstring)."""
    newest, origin = chain[0].run, chain[-1].run
    if len(chain) == 1:
        return newest
    latest: dict[str, JobStatus] = {}
    for record in chain:
        for job in record.jobs:
            latest.setdefault(job.name, job.status)
    counts = Counter(latest.values())
    tokens = Tokens()
    for record in chain:
        tokens = tokens + record.run.tokens
    return dataclasses.replace(
        newest,
        started_at=origin.started_at,
        tokens=tokens,
        cost=Cost.total(record.run.cost for record in chain),
        jobs_total=len(latest),
        jobs_succeeded=counts[JobStatus.SUCCEEDED],
        jobs_failed=counts[JobStatus.FAILED] + counts[JobStatus.TIMED_OUT],
        jobs_skipped=counts[JobStatus.SKIPPED],
        jobs_cancelled=counts[JobStatus.CANCELLED],
    )


def chain_dict(
    chain: Iterable[RunRow], totals: RunRow, *, resumed_by: Iterable[str] = ()
) -> dict[str, Any]:
    """The `chain` object of the --json outputs: the logical run's `totals`, the runs
    oldest first, each with its own figures; `resumed_by`: later runs that resumed the
    newest of them."""
    runs = list(chain)[::-1]
    figures = totals.to_dict()
    return {
        "origin": runs[0].id,
        "resumes": len(runs) - 1,
        "totals": {
            key: figures[key]
            for key in ("started_at", "ended_at", "duration_s", "jobs", "tokens", "cost")
        },
        "runs": [
            {
                "id": run.id,
                "status": str(run.status),
                "started_at": iso_time(run.started_at),
                "ended_at": iso_time(run.ended_at),
                "tokens": run.tokens.to_dict(),
                "cost": None if run.cost is None else run.cost.to_dict(),
            }
            for run in runs
        ],
        "resumed_by": list(resumed_by),
    }


@dataclass(frozen=True)
class LogicalRun:
    """A line of `corral runs`: the chain's figures, and its runs newest first."""

    row: RunRow
    chain: tuple[RunRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.row.to_dict(), "chain": chain_dict(self.chain, self.row)}


def logical_runs(
    history: HistoryReader,
    *,
    status: RunStatus | str | None,
    flow: str | None,
    since: float | None,
    limit: int | None,
    rehearsal: bool | None = None,
) -> list[LogicalRun]:
    """The newest run of each chain, newest first, with the chain's figures; `status`
    filters on the chain's status (its newest run's), `rehearsal` as `list_runs` does."""
    want = None if status is None else RunStatus(status)
    fetch = None if want is not None or limit is None else limit
    while True:
        rows = history.list_runs(None, flow, since, fetch, rehearsal=rehearsal)
        found = list(_heads(history, rows, want))
        if fetch is None or limit is None or len(rows) < fetch or len(found) >= limit:
            return found if limit is None else found[:limit]
        fetch *= 2  # some rows were earlier runs of a chain: read further back


def _heads(
    history: HistoryReader, rows: list[RunRow], status: RunStatus | None
) -> Iterator[LogicalRun]:
    # a run that a listed run resumed is part of that run's line; the resume is newer,
    # so it is listed whenever the run it resumed is
    resumed = {row.resumed_from for row in rows if row.resumed_from}
    for row in rows:
        if row.id in resumed or (status is not None and row.status is not status):
            continue
        if row.resumed_from is None:
            yield LogicalRun(row, (row,))
            continue
        chain = chain_of(history, history.get_run(row.id))
        yield LogicalRun(logical_row(chain), tuple(record.run for record in chain))


def export_chain(history: HistoryReader, run_id: str, fmt: str) -> Iterator[str]:
    """The export of a run with the runs it was resumed from, oldest first: jsonl and csv
    are theirs one after the other (each line names its run); json is the named run's
    record with a `chain` object and the events of every run of the chain."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use json, jsonl or csv")
    chain = chain_of(history, history.get_run(run_id))
    ids = [record.run.id for record in reversed(chain)]
    if fmt == "csv":
        for index, run in enumerate(ids):
            text = "".join(history.export(run, "csv"))
            yield text if index == 0 else text.partition("\n")[2]
        return
    if fmt == "json":
        runs = tuple(record.run for record in chain)
        head = {
            "schema_version": EXPORT_VERSION,
            **chain[0].to_dict(),
            "chain": chain_dict(runs, logical_row(chain)),
        }
        yield orjson.dumps(head).decode()[:-1] + ',"events":['
    first = True
    for run in ids:
        for line in history.export(run, "jsonl"):
            if fmt == "jsonl":
                yield line
            else:
                yield line.rstrip("\n") if first else "," + line.rstrip("\n")
            first = False
    if fmt == "json":
        yield "]}\n"


def resumed_by(history: HistoryReader, run: RunRow) -> list[str]:
    """The runs that resumed `run` (newest first): they carry on its logical run."""
    return [row.id for row in resumers(history, run)]


def resumers(history: HistoryReader, run: RunRow) -> list[RunRow]:
    """The rows of the runs that resumed `run`, newest first."""
    from corral.store.sql import SqlHistory

    if isinstance(history, SqlHistory):  # one direct query
        return history.resumers(run.id)
    # another history (a plugin's) has only the listing: the later runs of the flow
    later = history.list_runs(None, run.flow_path or None, run.started_at, None)
    return [row for row in later if row.resumed_from == run.id]


__all__ = [
    "LogicalRun",
    "chain_dict",
    "chain_of",
    "export_chain",
    "logical_row",
    "logical_runs",
    "resumed_by",
    "resumers",
]
