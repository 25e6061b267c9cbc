"""The history commands: runs, show, logs, export, usage and gc.

Each parses its options, asks the store one question and renders the answer: a rich
table for people, versioned JSON (`{"schema_version": 1, ...}`) or CSV for programs.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from corral.durations import format_duration, parse_duration
from corral.errors import NotFoundError, UsageError
from corral.models import TOKEN_FIELDS, Cost, RunStatus, Tokens
from corral.render.format import cost_text, money_text, tokens_text
from corral.store import USAGE_KEYS, AttemptRow, RunRecord, RunRow, Store, open_store

JSON_VERSION = 1
_POLL_S = 0.25


def _store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(),
        show_default="current directory",
        help="Where .corral/ (the default SQLite history) lives.",
    )(command)
    return click.option(
        "--store",
        "store_url",
        envvar="CORRAL_STORE",
        metavar="URL",
        help="History database URL (sqlite:///... or postgresql+psycopg://...). Env: CORRAL_STORE.",
    )(command)


def _open(store_url: str | None, directory: Path) -> Store | None:
    """The history, or None when the default SQLite file does not exist yet."""
    default = directory / ".corral" / "corral.db"
    if not store_url and not default.exists():
        return None
    return open_store(store_url, default)


def _require(store_url: str | None, directory: Path) -> Store:
    store = _open(store_url, directory)
    if store is None:
        raise NotFoundError(
            f"no run history in {directory / '.corral'}",
            hint="run a flow first, or point --dir or --store at the history",
        )
    return store


def _since(value: str | None, option: str = "--since") -> float | None:
    if value is None:
        return None
    try:
        return time.time() - parse_duration(value)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # piped or captured: never cut a cell to fit a made-up 80-column width
        console = Console(highlight=False, soft_wrap=False, width=400)
    return console


# -- formatting ----------------------------------------------------------------------------


def fmt_time(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_cost(cost: Cost | None) -> str:
    """`$0.12` reported, `~$0.12` estimated, `$0.12+unpriced`; `-` when nothing was spent."""
    return cost_text(cost) or "-"


def fmt_token_kinds(t: Tokens) -> str:
    text = f"{tokens_text(t.input)} in / {tokens_text(t.output)} out"
    if t.cache_read or t.cache_write:
        text += f" / {tokens_text(t.cache_read)}+{tokens_text(t.cache_write)} cache"
    return text


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _jobs(run: RunRow) -> str:
    text = f"{run.jobs_succeeded}/{run.jobs_total} ok"
    if run.jobs_failed:
        text += f", {run.jobs_failed} failed"
    return text


# -- runs, show ----------------------------------------------------------------------------


@click.command("runs")
@click.option("--status", type=click.Choice([str(s) for s in RunStatus]), help="Only these runs.")
@click.option("--flow", help="Only runs of this flow (name or path).")
@click.option("--since", metavar="DURATION", help="Only runs started within, e.g. 7d or 12h.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
def runs_command(
    *,
    status: str | None,
    flow: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    store_url: str | None,
    directory: Path,
) -> int:
    """List recent runs."""
    store = _open(store_url, directory)
    cutoff = _since(since)  # a bad --since is an error even with no history yet
    found = [] if store is None else store.list_runs(status, flow, cutoff, limit)
    if store is not None:
        store.close()
    if as_json:
        _echo_json({"schema_version": JSON_VERSION, "runs": [r.to_dict() for r in found]})
        return 0
    if not found:
        click.echo(
            "No runs recorded."
            if store is None or not (status or flow or since)
            else "No runs match."
        )
        return 0
    table = Table(box=None, header_style="bold")
    for name in ("RUN", "FLOW", "STATUS", "STARTED", "DURATION", "JOBS", "TOKENS", "COST"):
        table.add_column(name, justify="right" if name in ("TOKENS", "COST") else "left")
    for run in found:
        table.add_row(
            run.id,
            run.flow_name,
            str(run.status),
            fmt_time(run.started_at),
            _duration(run.duration_s),
            _jobs(run),
            tokens_text(run.tokens.total),
            fmt_cost(run.cost),
        )
    _console().print(table)
    return 0


@click.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_store_options
def show_command(*, run_id: str, as_json: bool, store_url: str | None, directory: Path) -> int:
    """Show one run and every job in it, as at the end of the run."""
    store = _require(store_url, directory)
    try:
        record = store.get_run(run_id)
    finally:
        store.close()
    if as_json:
        _echo_json({"schema_version": JSON_VERSION, **record.to_dict()})
        return 0
    _render_record(record)
    return 0


def _render_record(record: RunRecord) -> None:
    run = record.run
    console = _console()
    lines = [
        ("run", run.id + (f" (resumed from {run.resumed_from})" if run.resumed_from else "")),
        ("flow", f"{run.flow_name} ({run.flow_path})"),
        ("status", str(run.status) + (f": {run.error}" if run.error else "")),
        ("started", fmt_time(run.started_at)),
        ("duration", _duration(run.duration_s)),
        ("jobs", _jobs(run) + (f", {run.jobs_skipped} skipped" if run.jobs_skipped else "")),
        ("tokens", fmt_token_kinds(run.tokens)),
        ("cost", fmt_cost(run.cost)),
        ("logs", run.log_root or "-"),
    ]
    for label, value in lines:
        console.print(f"{label + ':':<10}{value}")
    table = Table(box=None, header_style="bold")
    for name in (
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
    ):
        table.add_column(name)
    for job in record.jobs:
        final = job.final
        note = job.reason or ""
        if final is not None and final.error:
            kind = f"{final.error_kind}: " if final.error_kind else ""
            note = f"{kind}{final.error}"
        table.add_row(
            job.name,
            str(job.status),
            str(len(job.attempts)) if job.attempts else "-",
            "-" if final is None else final.tool,
            "-" if final is None or not final.model else final.model,
            "-" if final is None else _duration(final.duration_s),
            _exit(final),
            tokens_text(job.tokens.total) if job.attempts else "-",
            fmt_cost(job.cost),
            note,
        )
    console.print()
    console.print(table)


def _exit(attempt: AttemptRow | None) -> str:
    if attempt is None:
        return "-"
    if attempt.signal:
        return f"sig {attempt.signal}"
    return "-" if attempt.exit_code is None else str(attempt.exit_code)


# -- logs ------------------------------------------------------------------------------------


@click.command("logs")
@click.argument("run_id", metavar="RUN")
@click.argument("job", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the run is running.")
@click.option("--stderr", "stderr", is_flag=True, help="Print stderr.log instead of stdout.log.")
@click.option("--attempt", type=click.IntRange(min=1), help="Which attempt (default: the last).")
@_store_options
def logs_command(
    *,
    run_id: str,
    job: str | None,
    follow: bool,
    stderr: bool,
    attempt: int | None,
    store_url: str | None,
    directory: Path,
) -> int:
    """Print the output of a run's job (every job when JOB is left out)."""
    store = _require(store_url, directory)
    try:
        record = store.get_run(run_id)
        names = [j.name for j in record.jobs]
        if job is not None and job not in names:
            raise NotFoundError(
                f"no job {job!r} in run {record.run.id}", hint="jobs: " + ", ".join(names)
            )
        chosen = [job] if job is not None else names
        if follow and len(chosen) != 1:
            raise UsageError("--follow needs a JOB when the run has several jobs")
        out = sys.stdout.buffer  # bytes as logged (click 8.3 deprecates get_binary_stream)
        name = "stderr.log" if stderr else "stdout.log"
        for each in chosen:
            path = _log_path(record, each, attempt) / name
            if len(chosen) > 1:
                out.write(f"==> {each} <==\n".encode())
            if follow:
                _follow(store, record.run.id, each, path, out)
            elif path.exists():
                with path.open("rb") as log:
                    shutil.copyfileobj(log, out)
            elif len(chosen) == 1:
                click.echo(f"corral: no {name} for job {each} (not started?): {path}", err=True)
        out.flush()
    finally:
        store.close()
    return 0


def _log_path(record: RunRecord, job: str, attempt: int | None) -> Path:
    found = record.job(job)
    attempts = () if found is None else found.attempts
    if attempt is not None:
        chosen = next((a for a in attempts if a.attempt == attempt), None)
        if chosen is None:
            raise NotFoundError(
                f"job {job} has no attempt {attempt}", hint=f"it has {len(attempts)}"
            )
    else:
        chosen = attempts[-1] if attempts else None
    if chosen is not None and chosen.log_dir:
        return Path(chosen.log_dir)
    return Path(record.run.log_root) / job


def _follow(store: Store, run_id: str, job: str, path: Path, out: IO[bytes]) -> None:
    """Copy the file as it grows until the job is over (final status or the run ended)."""
    position = 0
    checked = 0.0
    done = False
    while True:
        if path.exists():
            with path.open("rb") as log:
                log.seek(position)
                chunk = log.read()
            if chunk:
                out.write(chunk)
                out.flush()
                position += len(chunk)
                continue
        if done:
            return
        if time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            record = store.get_run(run_id)
            found = record.job(job)
            # read once more after the end is seen: the last lines may land with it
            done = record.run.status is not RunStatus.RUNNING or (
                found is not None and found.status.is_final
            )
            if done:
                continue
        time.sleep(_POLL_S)


# -- export, usage, gc -------------------------------------------------------------------


@click.command("export")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv"]),
    default="json",
    show_default=True,
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@_store_options
def export_command(
    *, run_id: str, fmt: str, output: Path | None, store_url: str | None, directory: Path
) -> int:
    """Export a run: JSON (record and events), JSONL (events) or CSV (attempts)."""
    store = _require(store_url, directory)
    try:
        chunks = store.export(run_id, fmt)
        if output is None:
            for chunk in chunks:
                click.echo(chunk, nl=False)
        else:
            with output.open("w", encoding="utf-8", newline="") as file:
                file.writelines(chunks)
    finally:
        store.close()
    return 0


@click.command("usage")
@click.option("--by", type=click.Choice(USAGE_KEYS), default="model", show_default=True)
@click.option("--since", metavar="DURATION", help="Only attempts that ended within, e.g. 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@_store_options
def usage_command(
    *,
    by: Any,
    since: str | None,
    as_json: bool,
    as_csv: bool,
    store_url: str | None,
    directory: Path,
) -> int:
    """Tokens by kind and cost by source, grouped by model, tool, job, flow or day."""
    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    store = _open(store_url, directory)
    cutoff = _since(since)
    rows = [] if store is None else store.usage(by, cutoff)
    if store is not None:
        store.close()
    if as_json:
        _echo_json({"schema_version": JSON_VERSION, "by": by, "rows": [r.to_dict() for r in rows]})
        return 0
    columns = TOKEN_FIELDS
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([by, "attempts", *columns, "reported_usd", "estimated_usd", "unpriced"])
        for r in rows:
            tokens = [getattr(r.tokens, c) for c in columns]
            writer.writerow(
                [r.key, r.attempts, *tokens, r.reported_usd, r.estimated_usd, r.unpriced]
            )
        click.echo(buffer.getvalue(), nl=False)
        return 0
    if not rows:
        click.echo("No usage recorded.")
        return 0
    table = Table(box=None, header_style="bold", show_footer=len(rows) > 1)
    total = Tokens()
    for r in rows:
        total = total + r.tokens
    headers = ["INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "REASONING", "TOOL CALLS"]
    table.add_column(by.upper(), footer="total")
    table.add_column("TRIES", justify="right", footer=str(sum(r.attempts for r in rows)))
    for header, column in zip(headers, columns, strict=True):
        table.add_column(header, justify="right", footer=tokens_text(getattr(total, column)))
    for header, pick in (("REPORTED", "reported_usd"), ("ESTIMATED", "estimated_usd")):
        footer = money_text(sum((getattr(r, pick) for r in rows), Decimal(0)))
        table.add_column(header, justify="right", footer=footer)
    table.add_column("UNPRICED", justify="right", footer=str(sum(r.unpriced for r in rows)))
    for r in rows:
        table.add_row(
            r.key,
            str(r.attempts),
            *(tokens_text(getattr(r.tokens, c)) for c in columns),
            money_text(r.reported_usd) if r.reported_usd else "-",
            money_text(r.estimated_usd) if r.estimated_usd else "-",
            str(r.unpriced) if r.unpriced else "-",
        )
    _console().print(table)
    return 0


@click.command("gc")
@click.option("--older-than", "older_than", metavar="DURATION", required=True, help="e.g. 30d.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@_store_options
def gc_command(*, older_than: str, dry_run: bool, store_url: str | None, directory: Path) -> int:
    """Delete runs started longer ago than --older-than, with their log folders."""
    try:
        seconds = parse_duration(older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    store = _open(store_url, directory)
    old = [] if store is None else store.delete_runs_older_than(seconds, dry_run=dry_run)
    if store is not None:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    for run in old:
        logs = Path(run.log_root) if run.log_root else None
        note = ""
        if logs is not None and logs.is_dir():
            if run.id not in logs.parts and not any(run.id in part for part in logs.parts):
                # never remove a folder that is not the run's own (a shared or odd log_root)
                note = f" (kept {logs}: its path does not name the run)"
            elif not dry_run:
                shutil.rmtree(logs, ignore_errors=True)
                note = f" and {logs}"
            else:
                note = f" and {logs}"
        click.echo(f"{verb} run {run.id} ({run.flow_name}, {fmt_time(run.started_at)}){note}")
    click.echo(f"{verb} {len(old)} run{'s' if len(old) != 1 else ''}")
    return 0
