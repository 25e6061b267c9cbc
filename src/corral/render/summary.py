"""The end of a run: the summary table, the versioned `--json` document and the joblog."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from corral.durations import format_duration
from corral.events.types import Event, JobFinished, JobStarted
from corral.models import Cost, JobStatus, Usage
from corral.render.format import cost_text, status_text, tokens_text
from corral.render.state import JobRow, RunState

SUMMARY_SCHEMA_VERSION = 1

Accounts = Callable[[str], tuple[Usage, Cost | None] | None]


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "tool_calls": usage.tool_calls,
        "turns": usage.turns,
    }


def cost_json(cost: Cost | None) -> dict[str, str | None] | None:
    """A cost, or None (`null`) when nothing was spent or reported (a job that called no
    model, a CLI that failed before its first call): the same as the history's JSON."""
    if cost is None:
        return None
    return cost.to_dict()


def job_json(row: JobRow, accounts: Accounts | None) -> dict[str, Any]:
    usage, cost = Usage(), None
    if accounts and (found := accounts(row.name)):
        usage, cost = found
    status = row.status if row.status.is_final else JobStatus.CANCELLED
    return {
        "name": row.name,
        "status": status.value,
        "exit_code": row.exit_code,
        "signal": row.signal,
        "duration_s": round(row.duration_s, 3) if row.duration_s is not None else None,
        "attempts": row.attempts,
        "started_at": iso(row.started_wall),
        "log_dir": row.log_dir,
        "error": row.error if status is not JobStatus.SKIPPED else None,
        "error_kind": row.error_kind,
        "reason": row.reason if status in (JobStatus.SKIPPED, JobStatus.CANCELLED) else None,
        "tool": row.tool,
        "models": list(row.models),
        "model_source": row.model_source,
        "session_id": row.session_id,
        "usage": usage_json(usage),
        "cost": cost_json(cost),
        "outputs": row.outputs,
    }


def summary_json(
    *,
    run_id: str,
    flow: str,
    status: str,
    started_at: float,
    ended_at: float,
    state: RunState,
    log_root: str,
    accounts: Accounts | None,
    totals: tuple[Usage, Cost | None],
) -> dict[str, Any]:
    rows = sorted(state.rows.values(), key=lambda r: r.seq)
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_id": run_id,
        "flow": flow,
        "status": status,
        "started_at": iso(started_at),
        "ended_at": iso(ended_at),
        "duration_s": round(ended_at - started_at, 3),
        "log_root": log_root,
        "jobs": [job_json(row, accounts) for row in rows],
        "totals": {"usage": usage_json(totals[0]), "cost": cost_json(totals[1])},
    }


FULL_SUMMARY_MAX_JOBS = 40


def print_summary(
    console: Console, state: RunState, accounts: Accounts | None, footer: str
) -> None:
    """The summary table; a big run lists only the jobs that did not succeed, plus counts."""
    rows = sorted(state.rows.values(), key=lambda r: r.seq)
    if len(rows) > FULL_SUMMARY_MAX_JOBS:
        counts: dict[str, int] = {}
        for row in rows:
            final = row.status if row.status.is_final else JobStatus.CANCELLED
            counts[final.value] = counts.get(final.value, 0) + 1
        tally = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        footer = f"{len(rows)} jobs: {tally}\n{footer}"
        rows = [r for r in rows if r.status is not JobStatus.SUCCEEDED]
    agents = any(r.tool != "generic" for r in rows)
    table = Table(title=None, show_edge=False, header_style="bold", box=None, pad_edge=False)
    for column in ("job", "status", "time", "exit"):
        table.add_column(
            column, justify="right" if column in ("time", "exit") else "left", no_wrap=True
        )
    if agents:
        for column in ("tool", "in", "out", "cache r", "cache w", "tools", "cost"):
            table.add_column(column, justify="left" if column == "tool" else "right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for row in rows:
        note = row.error or row.reason or ""
        if row.status is JobStatus.SUCCEEDED:
            note = ""
        cells: list[Any] = [
            row.name,
            status_text(row.status if row.status.is_final else JobStatus.CANCELLED, row.attempts),
            format_duration(row.duration_s) if row.duration_s is not None else "",
            "" if row.exit_code is None else str(row.exit_code),
        ]
        if agents:
            usage, cost = Usage(), None
            if accounts and (found := accounts(row.name)):
                usage, cost = found
            if row.tool == "generic":
                cells += ["", "", "", "", "", "", ""]
            else:
                cells += [
                    row.tool,
                    tokens_text(usage.input_tokens),
                    tokens_text(usage.output_tokens),
                    tokens_text(usage.cache_read_tokens),
                    tokens_text(usage.cache_write_tokens),
                    str(usage.tool_calls),
                    cost_text(cost),
                ]
        cells.append(note)
        table.add_row(*cells)
    if rows:
        console.print(table)
    console.print(footer, soft_wrap=True)


class JobLog:
    """GNU parallel style `--joblog`: one TSV row per finished attempt, written as it happens."""

    HEADER = ("Seq", "Host", "Starttime", "JobRuntime", "Exitval", "Signal", "Command", "Job")

    def __init__(self, path: Path, order: list[str]) -> None:
        self._handle = path.open("w", encoding="utf-8", buffering=1)
        self._handle.write("\t".join(self.HEADER) + "\n")
        self._host = socket.gethostname()
        self._seq = {name: index + 1 for index, name in enumerate(order)}
        self._started: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self._started[(event.job, event.attempt)] = (event.started_at, event.argv)
        elif isinstance(event, JobFinished) and event.attempt > 0:
            start, argv = self._started.pop(
                (event.job, event.attempt), (time.time() - event.duration_s, ())
            )
            command = " ".join(argv).replace("\t", " ").replace("\n", " ")
            row = (
                str(self._seq.get(event.job, 0)),
                self._host,
                f"{start:.3f}",
                f"{max(time.time() - start, 0.0):.3f}",
                str(event.exit_code if event.exit_code is not None else -1),
                str(event.signal or 0),
                command,
                event.job,
            )
            self._handle.write("\t".join(row) + "\n")

    def close(self) -> None:
        self._handle.close()
