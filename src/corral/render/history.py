"""The history commands' tables: runs, one run, usage (and the CSV of usage)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from corral.models import TOKEN_FIELDS, Tokens, decimal_text, money_text
from corral.render.columns import print_columns
from corral.render.format import (
    cost_or_dash,
    duration_or_dash,
    time_text,
    token_kinds_text,
    tokens_text,
)
from corral.render.runlist import RIGHT, runs_columns
from corral.render.runlist import jobs_text as _jobs
from corral.store.records import JobLine, JobRecord, RunRecord, RunRow, UsageRow


def console() -> Console:
    """A console for tables: never cut a cell to fit a made-up 80-column width. What it
    prints is text, never markup: a flow named `x[red]y` in a folder `a[b]` shows so."""
    found = Console(highlight=False, soft_wrap=False, markup=False, emoji=False)
    if not found.is_terminal:
        found = Console(highlight=False, soft_wrap=False, markup=False, emoji=False, width=400)
    return found


def runs_table(
    runs: list[RunRow], *, resumes: Mapping[str, tuple[int, str]] | None = None
) -> Table:
    """`corral runs`: one line per run; `resumes` gives a resumed run's number of resumes
    and first run (its figures are then the whole chain's)."""
    table = Table(box=None, header_style="bold")
    headers, rows = runs_columns(runs, resumes=resumes)
    for i, name in enumerate(headers):
        table.add_column(name, justify="right" if i in RIGHT else "left")
    for row in rows:
        table.add_row(*row)
    return table


def print_chain(
    out: Console, chain: Sequence[RunRow], totals: RunRow, resumed_by: Sequence[str]
) -> None:
    """`corral show`, after the run: the runs of its resume chain, oldest first, and the
    figures of the whole chain (each job counted once); who resumed it, if anyone."""
    if len(chain) > 1:
        runs = " -> ".join(f"{run.id} ({run.status})" for run in reversed(chain))
        out.print()
        out.print(f"{'chain:':<10}{runs} ({len(chain) - 1} resume{'s' * (len(chain) > 2)})")
        whole = [
            (
                "jobs",
                _jobs(totals) + (f", {totals.jobs_skipped} skipped" if totals.jobs_skipped else ""),
            ),
            ("tokens", token_kinds_text(totals.tokens)),
            ("cost", cost_or_dash(totals.cost)),
            ("duration", duration_or_dash(totals.duration_s) + " (first start to last end)"),
        ]
        for label, value in whole:
            out.print(f"{'':<10}{label + ':':<10}{value}")
    if resumed_by:
        out.print(
            f"{'resumed:':<10}by {', '.join(resumed_by)} "
            f"(`corral show {resumed_by[0]}` for the whole run)"
        )


def print_record(
    out: Console,
    record: RunRecord,
    *,
    kept: Sequence[tuple[str, JobRecord]] = (),
    jobs: Iterable[JobLine] | None = None,
) -> None:
    """`corral show`: the run's facts, then one line per job; `kept` are the jobs a
    resumed run kept from the runs it finished (with their run), listed first. `jobs`
    are the run's job lines when read straight from the history (else its records')."""
    run = record.run
    lines = [
        ("run", run.id + (f" (resumed from {run.resumed_from})" if run.resumed_from else "")),
        ("flow", f"{run.flow_name} ({run.flow_path})"),
        *([("kind", "rehearsal: simulated provider, nothing billed")] if run.rehearsal else []),
        ("status", str(run.status) + (f": {run.error}" if run.error else "")),
        ("started", time_text(run.started_at)),
        ("duration", duration_or_dash(run.duration_s)),
        ("jobs", _jobs(run) + (f", {run.jobs_skipped} skipped" if run.jobs_skipped else "")),
        ("tokens", token_kinds_text(run.tokens)),
        ("cost", cost_or_dash(run.cost)),
        ("logs", run.log_root or "-"),
    ]
    for label, value in lines:
        out.print(f"{label + ':':<10}{value}")
    rows = [_job_cells(f"kept from {origin}", job.line()) for origin, job in kept]
    own = (job.line() for job in record.jobs) if jobs is None else jobs
    rows += [_job_cells("", line) for line in own]
    out.print()
    # a run may have 50,000 jobs: plain columns, not a rich Table (0.65 ms a row)
    print_columns(out, _JOB_HEADERS, rows)


def _job_cells(origin: str, line: JobLine) -> tuple[str, ...]:
    name, status, reason, tries, final, tokens, cost = line
    if final is None:
        cells = ("-", "-", "-", "-")
        note = reason or ""
    else:
        tool, model, duration_s, exit_code, signal, error, error_kind = final
        exit_text = "-" if exit_code is None else str(exit_code)
        cells = (
            tool,
            model or "-",
            duration_or_dash(duration_s),
            f"sig {signal}" if signal else exit_text,
        )
        note = reason or ""
        if error:
            note = f"{error_kind}: {error}" if error_kind else error
    return (
        name,
        status,
        str(tries) if tries else "-",
        *cells,
        tokens_text(tokens) if tries else "-",
        cost_or_dash(cost),
        f"{origin}; {note}" if origin and note else origin or note,
    )


_JOB_HEADERS = (
    "JOB",
    "STATUS",
    "TRY",
    "TOOL",
    "MODEL",
    "DURATION",
    "EXIT",
    "TOKENS",
    "COST",
    "NOTE",
)


_TOKEN_HEADERS = ("INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "REASONING", "TOOL CALLS")


def usage_table(by: str, rows: list[UsageRow]) -> Table:
    """`corral usage`: one line per group, with totals under them when there are several."""
    table = Table(box=None, header_style="bold", show_footer=len(rows) > 1)
    total = Tokens()
    for r in rows:
        total = total + r.tokens
    table.add_column(by.upper(), footer="total")
    table.add_column("TRIES", justify="right", footer=str(sum(r.attempts for r in rows)))
    for header, name in zip(_TOKEN_HEADERS, TOKEN_FIELDS, strict=True):
        table.add_column(header, justify="right", footer=tokens_text(getattr(total, name)))
    for header, pick in (("REPORTED", "reported_usd"), ("ESTIMATED", "estimated_usd")):
        footer = _money_cell(sum((getattr(r, pick) for r in rows), Decimal(0)))
        table.add_column(header, justify="right", footer=footer)
    unpriced = sum(r.unpriced for r in rows)
    table.add_column("UNPRICED", justify="right", footer=str(unpriced) if unpriced else "-")
    for r in rows:
        table.add_row(
            r.key,
            str(r.attempts),
            *(tokens_text(getattr(r.tokens, name)) for name in TOKEN_FIELDS),
            _money_cell(r.reported_usd),
            _money_cell(r.estimated_usd),
            str(r.unpriced) if r.unpriced else "-",
        )
    return table


def _money_cell(usd: Decimal) -> str:
    """A usage cell: `-` for none, in a row as in the total under it."""
    return money_text(usd) if usd else "-"


def usage_csv(by: str, rows: list[UsageRow]) -> str:
    """`corral usage --csv`: one line per group, tokens by kind, cost by source."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([by, "attempts", *TOKEN_FIELDS, "reported_usd", "estimated_usd", "unpriced"])
    for r in rows:
        tokens = [getattr(r.tokens, name) for name in TOKEN_FIELDS]
        money = (decimal_text(r.reported_usd), decimal_text(r.estimated_usd))
        writer.writerow([r.key, r.attempts, *tokens, *money, r.unpriced])
    return buffer.getvalue()
