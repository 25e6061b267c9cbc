"""The end of a run on the terminal: the summary table, made from the run's journal.

(The `--json` summary and the joblog are not terminal output: see `corral.journal`.)
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from corral.durations import format_duration
from corral.journal import JobEntry, RunJournal
from corral.models import JobStatus
from corral.render.fit import Parts, Trimmed, fit_columns, measured
from corral.render.format import cost_text, status_text, tokens_text
from corral.render.safe import visible_line

FULL_SUMMARY_MAX_JOBS = 40


def print_summary(console: Console, journal: RunJournal, footer: Sequence[Sequence[str]]) -> None:
    """The summary table, then the `footer`'s lines, each given as its parts and laid out
    to the width (corral.render.fit); a big run lists only the jobs that did not succeed,
    plus counts."""
    rows = sorted(journal.jobs.values(), key=lambda r: r.seq)
    if len(rows) > FULL_SUMMARY_MAX_JOBS:
        counts: dict[str, int] = {}
        for row in rows:
            final = row.final_status
            counts[final.value] = counts.get(final.value, 0) + 1
        tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        footer = [[f"{len(rows)} jobs: {tally}"], *footer]
        rows = [r for r in rows if r.status is not JobStatus.SUCCEEDED]
    if rows:
        console.print(Trimmed(summary_table(rows, console.size.width)))
    for parts in footer:
        # soft_wrap: a part wider than the terminal (a long path) is wrapped by the
        # terminal, not cut into lines, so that a copy of it stays whole
        console.print(Parts(parts), soft_wrap=True)


# every column, in the order shown; the agent columns only when an agent job is listed
_COLUMNS = ("job", "status", "time", "exit", "tool", "in", "out", "cache r", "cache w",
            "tools", "cost", "note")  # fmt: skip
_AGENT_COLUMNS = frozenset(_COLUMNS[4:11])
_RIGHT = frozenset(("time", "exit", "in", "out", "cache r", "cache w", "tools", "cost"))
# what gives way on a narrow terminal, least important first, as the live view does; the
# job, its status, its time and its cost are never cut, and the note folds
_DROP_ORDER = (("cache r", "cache w"), ("tools",), ("in", "out"), ("tool",), ("exit",))
MIN_NOTE = 20


def summary_table(rows: list[JobEntry], width: int) -> Table:
    """The summary of `rows`, fitted to `width` columns."""
    agents = any(r.is_agent for r in rows)
    cells = [_cells(row) for row in rows]
    columns = [
        measured(name, [line[index] for line in cells], right=name in _RIGHT)
        for index, name in enumerate(_COLUMNS)
        if agents or name not in _AGENT_COLUMNS
    ]
    note = next(c for c in columns if c.name == "note")
    shown = fit_columns(columns, width, drop=_DROP_ORDER, flexible="note",
                        min_flexible=min(MIN_NOTE, note.width))  # fmt: skip
    table = Table(title=None, show_edge=False, header_style="bold", box=None, pad_edge=False)
    for column in shown:
        if column is note:
            table.add_column(column.name, overflow="fold")
        else:
            table.add_column(column.name, justify="right" if column.right else "left",
                             no_wrap=True, min_width=column.width)  # fmt: skip
    for index in range(len(rows)):
        table.add_row(*(column.cells[index] for column in shown))
    return table


def _cells(row: JobEntry) -> list[Text]:
    """A job's cells, one per column of `_COLUMNS` (the agent ones blank for a command)."""
    note = "" if row.status is JobStatus.SUCCEEDED else row.error or row.reason or ""
    usage = row.usage
    figures = [
        row.tool,
        tokens_text(usage.input_tokens),
        tokens_text(usage.output_tokens),
        tokens_text(usage.cache_read_tokens),
        tokens_text(usage.cache_write_tokens),
        str(usage.tool_calls),
        cost_text(row.cost),
    ]
    # a job that never started (skipped, cancelled or held back by a budget before its
    # first attempt) has no time and no figures: blank, as in `corral show`, not 0.0s or 0
    tried = row.attempt_count > 0
    return [
        Text(row.name),
        status_text(row.final_status, row.attempt_count),
        Text(format_duration(row.duration_s) if row.duration_s is not None and tried else ""),
        Text("" if row.exit_code is None else str(row.exit_code)),
        *(Text(f if row.is_agent and tried else "") for f in figures),
        Text(visible_line(note)),  # a job's error is untrusted text: shown, never obeyed
    ]
