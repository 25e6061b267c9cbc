"""The end of a run on the terminal: the summary table, made from the run's journal.

On a terminal rich draws it; to a pipe or a file (where rich prints plain text) the same
text is written without importing rich, wherever that text is sure to be rich's: every
column at its full width and no character rich would measure or clean by its own rules.
(The `--json` summary and the joblog are not terminal output: see `corral.journal`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from corral.durations import format_duration
from corral.journal import JobEntry, RunJournal
from corral.models import JobStatus
from corral.render.columns import cell_width, lines
from corral.render.fit import GAP, Column, fit_columns, joined_lines
from corral.render.format import STYLE, cost_text, status_label, tokens_text
from corral.render.safe import visible_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

FULL_SUMMARY_MAX_JOBS = 40


def print_summary(console: Console, journal: RunJournal, footer: Sequence[Sequence[str]]) -> None:
    """The summary table, then the `footer`'s lines, each given as its parts and laid out
    to the width (corral.render.fit); a big run lists only the jobs that did not succeed,
    plus counts."""
    from corral.render.fit import Parts, Trimmed

    rows, footer = _listed(journal, footer)
    if rows:
        console.print(Trimmed(summary_table(rows, console.size.width)))
    for parts in footer:
        # soft_wrap: a part wider than the terminal (a long path) is wrapped by the
        # terminal, not cut into lines, so that a copy of it stays whole
        console.print(Parts(parts), soft_wrap=True)


def write_summary(
    stream: IO[str], journal: RunJournal, footer: Sequence[Sequence[str]], width: int
) -> bool:
    """`print_summary` to a stream rich would print plain text to, `width` columns wide,
    without rich: the same text, or nothing and False where only rich's layout is sure to
    give it (a note folded to the width, a cell or part with a character rich cleans or
    expands, such as a tab or a control character)."""
    rows, footer = _listed(journal, footer)
    if not all(part.isprintable() for parts in footer for part in parts):
        return False
    text: list[str] = []
    if rows:
        cells = [_cells(row) for row in rows]
        if not all(cell.isprintable() for line in cells for cell in line):
            return False
        shown = _fitted(cells, rows, width)
        if sum(column.width for column in shown) + GAP * (len(shown) - 1) > width:
            return False  # rich folds the note (or cuts a cell): its layout, not ours
        right = frozenset(i for i, column in enumerate(shown) if column.right)
        headers = [column.name for column in shown]
        at = [_COLUMNS.index(name) for name in headers]
        text += lines(headers, [[line[i] for i in at] for line in cells], right, edge="")
    for parts in footer:
        text.append("\n".join(joined_lines(parts, width)))
    stream.write("".join(line + "\n" for line in text))
    stream.flush()
    return True


def _listed(
    journal: RunJournal, footer: Sequence[Sequence[str]]
) -> tuple[list[JobEntry], Sequence[Sequence[str]]]:
    """The jobs the summary lists, and its footer: a big run's counts come first."""
    rows = sorted(journal.jobs.values(), key=lambda r: r.seq)
    if len(rows) > FULL_SUMMARY_MAX_JOBS:
        counts: dict[str, int] = {}
        for row in rows:
            final = row.final_status
            counts[final.value] = counts.get(final.value, 0) + 1
        tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        footer = [[f"{len(rows)} jobs: {tally}"], *footer]
        rows = [r for r in rows if r.status is not JobStatus.SUCCEEDED]
    return rows, footer


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
    from rich.table import Table
    from rich.text import Text

    def text(index: int, cell: str, row: JobEntry) -> Text:
        # the status in its colour; every cell a Text, so that no cell is read as markup
        return Text(cell, style=STYLE.get(row.final_status, "") if index == 1 else "")

    cells = [[text(i, cell, row) for i, cell in enumerate(_cells(row))] for row in rows]
    shown = _fitted(cells, rows, width)
    table = Table(title=None, show_edge=False, header_style="bold", box=None, pad_edge=False)
    for column in shown:
        if column.name == "note":
            table.add_column(column.name, overflow="fold")
        else:
            table.add_column(column.name, justify="right" if column.right else "left",
                             no_wrap=True, min_width=column.width)  # fmt: skip
    for index in range(len(rows)):
        table.add_row(*(column.cells[index] for column in shown))
    return table


def _fitted(
    cells: list[list[Text]] | list[list[str]], rows: list[JobEntry], width: int
) -> list[Column]:
    """The columns of `cells` (one line per job of `rows`) that fit `width`."""
    agents = any(r.is_agent for r in rows)
    columns = []
    for name, column in zip(_COLUMNS, zip(*cells, strict=True), strict=True):
        if agents or name not in _AGENT_COLUMNS:
            width_ = max(len(name), *map(_width, column))
            columns.append(Column(name, list(column), right=name in _RIGHT, width=width_))
    note = next(c for c in columns if c.name == "note")
    return fit_columns(columns, width, drop=_DROP_ORDER, flexible="note",
                       min_flexible=min(MIN_NOTE, note.width))  # fmt: skip


def _width(cell: Text | str) -> int:
    return cell_width(cell) if isinstance(cell, str) else cell.cell_len


def _cells(row: JobEntry) -> list[str]:
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
        row.name,
        status_label(row.final_status, row.attempt_count),
        format_duration(row.duration_s) if row.duration_s is not None and tried else "",
        "" if row.exit_code is None else str(row.exit_code),
        *(f if row.is_agent and tried else "" for f in figures),
        visible_line(note),  # a job's error is untrusted text: shown, never obeyed
    ]
