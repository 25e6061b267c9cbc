"""The live table on a terminal: per job status, elapsed, tool, model, tokens, cost and
its last output line, plus a progress bar, the run's totals and its budget meters, a few
times a second. Everything shown is read from the run's journal (live cost included).

The redraw rate is fixed (`REFRESH_PER_SECOND`) whatever the number of jobs or events,
and a redraw renders only the rows the terminal can show: running jobs first, then
failures, then the ones waiting, then the finished; the rest are summarised in one line
of counts. A run of 50,000 jobs costs a redraw what a run of 50 does, plus one pass
over the jobs to pick and count them.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from corral.durations import format_duration
from corral.journal import JobEntry, RunJournal
from corral.models import JobStatus
from corral.render.fit import (
    SEPARATOR,
    Column,
    Parts,
    fit_columns,
    join_to_width,
    measured,
    width_needed,
)
from corral.render.format import budget_meters, cost_text, status_text, tokens_text, usage_line
from corral.render.safe import visible_line

REFRESH_PER_SECOND = 4
# what to show first when the jobs do not all fit (lower first)
_PRIORITY = {
    JobStatus.RUNNING: 0,
    JobStatus.RETRYING: 0,
    JobStatus.FAILED: 1,
    JobStatus.TIMED_OUT: 1,
    JobStatus.CANCELLED: 2,
    JobStatus.READY: 3,
    JobStatus.WAITING: 4,
    JobStatus.SUCCEEDED: 5,
    JobStatus.SKIPPED: 5,
}
# lines the live view keeps for itself: the head (title, meters), the table's header,
# the summary line of hidden jobs, and one for the cursor
_RESERVED = 3


def visible_rows(
    jobs: Iterable[JobEntry], room: int
) -> tuple[list[JobEntry], dict[JobStatus, int]]:
    """The jobs to draw (in flow order) when `room` lines are free, and the hidden ones
    counted by status.

    All of them when they fit; otherwise the most telling first (see `_PRIORITY`), the
    most recently started of each kind before the older ones.
    """
    rows = list(jobs)
    if len(rows) <= room:
        return sorted(rows, key=lambda r: r.seq), {}
    room = max(room - 1, 1)  # one line says what is hidden
    shown = heapq.nsmallest(
        room, rows, key=lambda r: (_PRIORITY.get(r.status, 5), -(r.started_at or 0.0), r.seq)
    )
    hidden: dict[JobStatus, int] = {}
    for row in rows:
        hidden[row.status] = hidden.get(row.status, 0) + 1
    for row in shown:
        hidden[row.status] -= 1
    return sorted(shown, key=lambda r: r.seq), {k: n for k, n in hidden.items() if n}


def hidden_parts(hidden: dict[JobStatus, int]) -> list[str]:
    """[`… 1,234 more jobs: 1,200 succeeded`, `34 waiting`] (statuses in their usual order)."""
    total = sum(hidden.values())
    parts = [f"{hidden[s]:,} {s}" for s in JobStatus if s in hidden]
    parts[0] = f"… {total:,} more job{'s' if total != 1 else ''}: " + parts[0]
    return parts


def hidden_line(hidden: dict[JobStatus, int]) -> str:
    """`… 1,234 more jobs: 1,200 succeeded · 34 waiting` on one line."""
    return SEPARATOR.join(hidden_parts(hidden))


class LiveView:
    """A rich `Live` display redrawn from the journal; `clock` is the wall clock."""

    def __init__(
        self,
        journal: RunJournal,
        console: Console,
        *,
        title: str,
        max_line_length: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.console = console
        self.title = title
        self.limit = max_line_length
        self.clock = clock
        self._live = Live(
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            get_renderable=self.render,
            transient=True,
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def render(self) -> Group:
        now = self.clock()
        everyone = sorted(self.journal.jobs.values(), key=lambda r: r.seq)
        width = self.console.size.width
        head = self._head(everyone, now, width)
        # a run may hold thousands of jobs: only the rows the terminal holds are drawn
        room = self.console.size.height - _RESERVED - head.row_count
        rows, hidden = visible_rows(everyone, room)
        # the line that counts the hidden jobs breaks between its parts on a narrow
        # terminal: the rows give it the lines it takes
        taken = len(join_to_width(hidden_parts(hidden), width)) if hidden else 1
        if taken > 1:
            rows, hidden = visible_rows(everyone, room - taken + 1)
        columns = fit_live_columns([self._column(name, rows, now) for name in _COLUMNS], width)
        table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
        for column in columns:
            last = column.name == "last output"
            table.add_column(
                column.name,
                justify="right" if column.right else "left",
                no_wrap=True,
                overflow="ellipsis",
                ratio=1 if last else None,
                min_width=None if last else column.width,
                max_width=None if last else column.width,
            )
        for index in range(len(rows)):
            table.add_row(*(column.cells[index] for column in columns))
        if hidden:
            return Group(head, table, Parts(hidden_parts(hidden), style="dim"))
        return Group(head, table)

    def _column(self, name: str, rows: list[JobEntry], now: float) -> Column:
        agents = any(r.is_agent for r in rows)
        cells: list[Text]
        if name == "job":
            cells = [Text(r.name) for r in rows]
        elif name == "status":
            cells = [status_text(r.status, r.attempt_count) for r in rows]
        elif name == "time":
            cells = [
                Text(format_duration(r.elapsed(now)) if r.started_at is not None else "")
                for r in rows
            ]
        elif name == "last output":
            # what a job printed is data: its control sequences are shown, never obeyed
            cells = [Text(visible_line(self._detail(r)), style="dim") for r in rows]
        elif not agents:
            return Column(name, [], right=False, width=0, absent=True)
        elif name in ("tool/model", "tool"):
            cells = [Text(_tool_model(r) if name == "tool/model" else r.tool) for r in rows]
        else:
            cells = [Text(_agent_cell(name, r) if _spent(r) else "") for r in rows]
        return measured(name, cells, right=name in ("time", "in/out", "cache r/w", "tools", "cost"))

    def _detail(self, row: JobEntry) -> str:
        detail = (
            row.reason
            if row.status
            in (JobStatus.WAITING, JobStatus.READY, JobStatus.SKIPPED, JobStatus.RETRYING)
            and row.reason
            else row.last_line
        )
        if row.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) and row.error:
            detail = row.error
        if self.limit is not None:
            detail = (detail or "")[: self.limit]
        return detail or ""

    def _head(self, rows: list[JobEntry], now: float, width: int) -> Table:
        journal = self.journal
        counts = journal.counts()
        done = sum(v for k, v in counts.items() if k.is_final)
        total = len(rows)
        started = journal.started_at if journal.started_at is not None else now
        # (text, rank): a narrow terminal drops the highest rank first, whole
        parts = [
            (f"{done}/{total} done", 0),
            (f"{counts.get(JobStatus.RUNNING, 0)} running", 3),
            (f"{counts.get(JobStatus.FAILED, 0) + counts.get(JobStatus.TIMED_OUT, 0)} failed", 2),
            (format_duration(max(now - started, 0.0)), 0),
        ]
        if journal.usage.total_tokens:
            parts.append((usage_line(journal.usage, None), 4))
            if journal.spent is not None:
                parts.append((cost_text(journal.spent), 1))
        title = Text(self.title or journal.flow, style="bold")
        label_width = max(title.cell_len, len("budget") if journal.budget else 0)

        def joined() -> str:
            return " · ".join(text for text, _ in parts)

        # the bar gives way first (down to 10 cells), then the summary's parts, whole and
        # least useful first: a line never wraps, nor ends in a lone separator
        bar_width = min(BAR_WIDTH, width - label_width - len(joined()) - 3)
        while bar_width < MIN_BAR_WIDTH and any(rank for _, rank in parts):
            parts.remove(max(parts, key=lambda part: part[1]))
            bar_width = min(BAR_WIDTH, width - label_width - len(joined()) - 3)
        bar_width = max(bar_width, MIN_BAR_WIDTH)
        summary = joined()
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True, min_width=label_width)
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True, overflow="ellipsis")
        bar = ProgressBar(total=max(total, 1), completed=done, width=bar_width)
        head.add_row(title, bar, Text(summary))
        meters = budget_meters(journal.budget, journal.usage, journal.spent)
        for label, spent in meters:
            style = "red" if spent >= 1 else "yellow" if spent >= 0.8 else "green"
            meter = ProgressBar(
                total=1000, completed=min(spent, 1.0) * 1000, width=bar_width, complete_style=style
            )
            head.add_row(Text("budget", style="dim"), meter, Text(f"{label} ({spent:.0%})"))
        return head


BAR_WIDTH = 30
MAX_JOB_WIDTH = 28  # a longer job name is cut (…)
MIN_BAR_WIDTH = 10
MIN_LAST_OUTPUT = 20  # the last output keeps at least this, or the agent figures give way

# every column, in the order shown; "tool" stands in for "tool/model" when that is too wide
_COLUMNS = ("job", "status", "time", "tool/model", "tool", "in/out", "cache r/w", "tools",
            "cost", "last output")  # fmt: skip
# what gives way when the terminal is narrow, least important first: the cache and tool
# counts, then tokens, then the model (its tool stays), then the tool; the job, its status,
# its time, its cost and its last output stay
_DROP_ORDER = (("cache r/w",), ("tools",), ("in/out",), ("tool/model",), ("tool",))


def fit_live_columns(columns: list[Column], width: int) -> list[Column]:
    """The live table's columns that fit `width` (corral.render.fit); then, if even the
    essentials are too wide, a long job name is cut (…)."""
    shown = fit_columns(columns, width, drop=_DROP_ORDER, flexible="last output",
                        min_flexible=MIN_LAST_OUTPUT, stand_ins={"tool/model": "tool"})  # fmt: skip
    by_name = {c.name: c for c in shown}
    job = by_name.get("job")
    excess = width_needed(by_name, "last output", MIN_LAST_OUTPUT) - width
    if job is not None and excess > 0:
        job.width = max(min(job.width, MAX_JOB_WIDTH), job.width - excess)
    return shown


def _tool_model(row: JobEntry) -> str:
    model = row.model or (row.models[0] if row.models else "")
    return f"{row.tool}{'/' + model if model and row.is_agent else ''}"


def _spent(row: JobEntry) -> bool:
    """Whether a row has agent figures to show: an agent job that started."""
    return row.is_agent and row.started_at is not None


def _agent_cell(name: str, row: JobEntry) -> str:
    usage = row.usage
    if name == "in/out":
        return f"{tokens_text(usage.input_tokens)}/{tokens_text(usage.output_tokens)}"
    if name == "cache r/w":
        return f"{tokens_text(usage.cache_read_tokens)}/{tokens_text(usage.cache_write_tokens)}"
    if name == "tools":
        return str(max(usage.tool_calls, row.tool_calls_live))
    return cost_text(row.cost)
