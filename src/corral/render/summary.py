"""The end of a run on the terminal: the summary table, made from the run's journal.

(The `--json` summary and the joblog are not terminal output: see `corral.journal`.)
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table

from corral.durations import format_duration
from corral.journal import RunJournal
from corral.models import JobStatus
from corral.render.format import cost_text, status_text, tokens_text

FULL_SUMMARY_MAX_JOBS = 40


def print_summary(console: Console, journal: RunJournal, footer: str) -> None:
    """The summary table; a big run lists only the jobs that did not succeed, plus counts."""
    rows = sorted(journal.jobs.values(), key=lambda r: r.seq)
    if len(rows) > FULL_SUMMARY_MAX_JOBS:
        counts: dict[str, int] = {}
        for row in rows:
            final = row.final_status
            counts[final.value] = counts.get(final.value, 0) + 1
        tally = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        footer = f"{len(rows)} jobs: {tally}\n{footer}"
        rows = [r for r in rows if r.status is not JobStatus.SUCCEEDED]
    agents = any(r.is_agent for r in rows)
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
        cells: list[RenderableType] = [
            row.name,
            status_text(row.final_status, row.attempt_count),
            format_duration(row.duration_s) if row.duration_s is not None else "",
            "" if row.exit_code is None else str(row.exit_code),
        ]
        if agents and not row.is_agent:
            cells += ["", "", "", "", "", "", ""]
        elif agents:
            usage = row.usage
            cells += [
                row.tool,
                tokens_text(usage.input_tokens),
                tokens_text(usage.output_tokens),
                tokens_text(usage.cache_read_tokens),
                tokens_text(usage.cache_write_tokens),
                str(usage.tool_calls),
                cost_text(row.cost),
            ]
        cells.append(note)
        table.add_row(*cells)
    if rows:
        console.print(table)
    console.print(footer, soft_wrap=True)
