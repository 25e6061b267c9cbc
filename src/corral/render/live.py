"""The live table on a terminal: per job status, elapsed, tool, model, tokens, cost and
its last output line, plus a progress bar, the run's totals and its budget meters, a few
times a second. Everything shown is read from the run's journal (live cost included)."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from corral.durations import format_duration
from corral.journal import JobEntry, RunJournal
from corral.models import JobStatus
from corral.render.format import budget_meters, cost_text, status_text, tokens_text, usage_line
from corral.render.safe import visible_line


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
            console=console, refresh_per_second=4, get_renderable=self.render, transient=False
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def render(self) -> Group:
        now = self.clock()
        rows = sorted(self.journal.jobs.values(), key=lambda r: r.seq)
        agents = any(r.is_agent for r in rows)
        table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("job", no_wrap=True, max_width=28)
        table.add_column("status", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        if agents:
            table.add_column("tool/model", no_wrap=True, max_width=26)
            table.add_column("in/out", justify="right", no_wrap=True)
            table.add_column("cache r/w", justify="right", no_wrap=True)
            table.add_column("tools", justify="right", no_wrap=True)
            table.add_column("cost", justify="right", no_wrap=True)
        table.add_column("last output", overflow="ellipsis", no_wrap=True, ratio=1)
        for row in rows:
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
            cells: list[RenderableType] = [
                row.name,
                status_text(row.status, row.attempt_count),
                format_duration(row.elapsed(now)) if row.started_at is not None else "",
            ]
            if agents:
                model = row.model or (row.models[0] if row.models else "")
                cells.append(f"{row.tool}{'/' + model if model and row.is_agent else ''}")
                usage = row.usage
                if row.is_agent:
                    cells += [
                        f"{tokens_text(usage.input_tokens)}/{tokens_text(usage.output_tokens)}",
                        f"{tokens_text(usage.cache_read_tokens)}/{tokens_text(usage.cache_write_tokens)}",
                        str(max(usage.tool_calls, row.tool_calls_live)),
                        cost_text(row.cost),
                    ]
                else:
                    cells += ["", "", "", ""]
            # what a job printed is data: its control sequences are shown, never obeyed
            cells.append(Text(visible_line(detail or ""), style="dim"))
            table.add_row(*cells)
        return Group(self._head(rows, now), table)

    def _head(self, rows: list[JobEntry], now: float) -> Table:
        journal = self.journal
        counts = journal.counts()
        done = sum(v for k, v in counts.items() if k.is_final)
        total = len(rows)
        bar = ProgressBar(total=max(total, 1), completed=done, width=30)
        started = journal.started_at if journal.started_at is not None else now
        summary = Text(
            f" {done}/{total} done · {counts.get(JobStatus.RUNNING, 0)} running · "
            f"{counts.get(JobStatus.FAILED, 0) + counts.get(JobStatus.TIMED_OUT, 0)} failed · "
            f"{format_duration(max(now - started, 0.0))}"
        )
        if journal.usage.total_tokens:
            summary.append(f" · {usage_line(journal.usage, journal.spent)}")
        head = Table.grid(padding=(0, 1))
        head.add_row(Text(self.title or journal.flow, style="bold"), bar, summary)
        meters = budget_meters(journal.budget, journal.usage, journal.spent)
        for label, spent in meters:
            style = "red" if spent >= 1 else "yellow" if spent >= 0.8 else "green"
            meter = ProgressBar(
                total=1000, completed=min(spent, 1.0) * 1000, width=30, complete_style=style
            )
            head.add_row(Text("budget", style="dim"), meter, Text(f" {label} ({spent:.0%})"))
        return head
