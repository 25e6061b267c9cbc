"""The live table on a terminal: per job status, elapsed, tool, model, tokens, cost and
its last output line, plus a progress bar and the run's totals, a few times a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from corral.durations import format_duration
from corral.models import Cost, JobStatus
from corral.render.format import cost_text, status_text, tokens_text
from corral.render.state import RunState

Accounts = Callable[[str], tuple[Any, Cost | None] | None]
# (label such as "$0.12 of $5.00", fraction spent) for each budget of the run
Budgets = Callable[[], list[tuple[str, float]]]


class LiveView:
    def __init__(
        self,
        state: RunState,
        console: Console,
        *,
        title: str,
        accounts: Accounts | None = None,
        totals: Callable[[], str] | None = None,
        budgets: Budgets | None = None,
        max_line_length: int | None = None,
    ) -> None:
        self.state = state
        self.console = console
        self.title = title
        self.accounts = accounts
        self.totals = totals
        self.budgets = budgets
        self.limit = max_line_length
        self._live = Live(
            console=console, refresh_per_second=4, get_renderable=self.render, transient=False
        )

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def render(self) -> Group:
        now = time.monotonic()
        rows = sorted(self.state.rows.values(), key=lambda r: r.seq)
        agents = any(r.tool != "generic" for r in rows)
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
            cells: list[Any] = [
                row.name,
                status_text(row.status, row.attempts),
                format_duration(row.elapsed(now)) if row.started else "",
            ]
            if agents:
                usage, cost = (None, None)
                if self.accounts and (found := self.accounts(row.name)):
                    usage, cost = found
                model = row.model or (row.models[0] if row.models else "")
                cells.append(f"{row.tool}{'/' + model if model and row.tool != 'generic' else ''}")
                if usage is not None and row.tool != "generic":
                    cells += [
                        f"{tokens_text(usage.input_tokens)}/{tokens_text(usage.output_tokens)}",
                        f"{tokens_text(usage.cache_read_tokens)}/{tokens_text(usage.cache_write_tokens)}",
                        str(max(usage.tool_calls, row.tool_calls_live)),
                        cost_text(cost),
                    ]
                else:
                    cells += [
                        "",
                        "",
                        str(row.tool_calls_live or "") if row.tool != "generic" else "",
                        "",
                    ]
            cells.append(Text(detail or "", style="dim"))
            table.add_row(*cells)
        counts = self.state.counts()
        done = sum(v for k, v in counts.items() if k.is_final)
        total = len(rows)
        bar = ProgressBar(total=max(total, 1), completed=done, width=30)
        summary = Text(
            f" {done}/{total} done · {counts.get(JobStatus.RUNNING, 0)} running · "
            f"{counts.get(JobStatus.FAILED, 0) + counts.get(JobStatus.TIMED_OUT, 0)} failed · "
            f"{format_duration(now - self.state.started)}"
        )
        if self.totals:
            summary.append(f" · {self.totals()}")
        head = Table.grid(padding=(0, 1))
        head.add_row(Text(self.title, style="bold"), bar, summary)
        for label, spent in self.budgets() if self.budgets else ():
            style = "red" if spent >= 1 else "yellow" if spent >= 0.8 else "green"
            meter = ProgressBar(
                total=1000, completed=min(spent, 1.0) * 1000, width=30, complete_style=style
            )
            head.add_row(Text("budget", style="dim"), meter, Text(f" {label} ({spent:.0%})"))
        return Group(head, table)
