"""The history commands: runs, show, logs, export, usage and gc.

Each parses its options, calls one use case of `corral.app.history` and renders the
answer: a table for people (`corral.render.history`), versioned JSON
(`{"schema_version": 1, ...}`) or CSV for programs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click
import orjson

from corral.durations import parse_duration
from corral.errors import UsageError
from corral.models import RunStatus
from corral.store.protocols import USAGE_KEYS, UsageBy

JSON_VERSION = 1

Command = Callable[..., int]


def _store_options(command: Command) -> Command:
    command = click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_home,
        help="Where .corral/ (the default SQLite history) lives "
        "(default: the nearest .corral at or above the current directory).",
    )(command)
    return click.option(
        "--store",
        "store_url",
        envvar="CORRAL_STORE",
        metavar="URL",
        help="History URL (sqlite:///..., postgresql+psycopg://..., or a plugin's scheme). "
        "Env: CORRAL_STORE.",
    )(command)


def _server_option(command: Command) -> Command:
    return click.option(
        "--server",
        envvar="CORRAL_SERVER",
        metavar="URL",
        help="Ask this corral server instead (see `corral login`). Env: CORRAL_SERVER.",
    )(command)


def _remote() -> Any:
    from corral.server import remote, require_server_extra

    require_server_extra()
    return remote


def _home(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    from corral.app.location import history_home

    return value if value is not None else history_home()


def _since(value: str | None, option: str = "--since") -> float | None:
    if value is None:
        return None
    try:
        return time.time() - parse_duration(value)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None


def _chain_option(command: Command) -> Command:
    return click.option(
        "--no-chain",
        "no_chain",
        is_flag=True,
        help="A resumed run alone: without the runs it was resumed from "
        "(by default a run and its resumes are one logical run).",
    )(command)


def _echo_bytes(data: bytes) -> None:
    click.echo(data, nl=False)  # bytes: to the binary stream as they are


def _echo_json(data: object) -> None:
    # bytes go to the binary stream as they are: no decode and re-encode of a document
    # that is ~100 MB for a 50,000-job run
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE), nl=False)


@click.command("runs")
@click.option("--status", type=click.Choice([str(s) for s in RunStatus]), help="Only these runs.")
@click.option("--flow", help="Only runs of this flow (name or path).")
@click.option("--since", metavar="DURATION", help="Only runs started within, e.g. 7d or 12h.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--rehearsal/--no-rehearsal",
    default=None,
    help="Only rehearsals, or only real runs (default: both).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_chain_option
@_server_option
@_store_options
def runs_command(
    *,
    status: str | None,
    flow: str | None,
    since: str | None,
    limit: int,
    rehearsal: bool | None,
    as_json: bool,
    no_chain: bool,
    server: str | None,
    store_url: str | None,
    directory: Path,
) -> int:
    """List recent runs. A run and its resumes (`corral resume`) are one line: the newest
    run, how many resumes and the first run, with the figures of the whole chain, each job
    counted once (--json: a `chain` object); --no-chain lists every run alone."""
    from corral.app.history import list_logical_runs, list_runs

    if server:
        _since(since)
        return int(
            _remote().runs(
                server,
                status=status,
                flow=flow,
                since=since,
                limit=limit,
                as_json=as_json,
                rehearsal=rehearsal,
                no_chain=no_chain,
            )
        )

    cutoff = _since(since)  # a bad --since is an error even with no history yet
    chains = None
    if no_chain:
        found = list_runs(store_url, directory, status=status, flow=flow, since=cutoff, limit=limit,
                          rehearsal=rehearsal)  # fmt: skip
    else:
        chains = list_logical_runs(
            store_url,
            directory,
            status=status,
            flow=flow,
            since=cutoff,
            limit=limit,
            rehearsal=rehearsal,
        )
        found = None if chains is None else [logical.row for logical in chains]
    if as_json:
        rows = (
            [r.to_dict() for r in found or []] if chains is None else [c.to_dict() for c in chains]
        )
        _echo_json({"schema_version": JSON_VERSION, "runs": rows})
        return 0
    if not found:
        filtered = found is not None and (status or flow or since or rehearsal is not None)
        if filtered:
            click.echo("No runs match.")
        else:
            from corral.app.location import default_history

            where = "the --store history" if store_url else default_history(directory)
            click.echo(
                f"No runs recorded in {where} (the history of the nearest .corral at or "
                "above this folder; --dir or --store look elsewhere)."
            )
        return 0
    from corral.render.columns import plain_stream, print_columns, write_columns
    from corral.render.runlist import RIGHT, runs_columns

    resumes = {c.row.id: (len(c.chain) - 1, c.chain[-1].id) for c in chains or [] if c.chain[1:]}
    headers, cells = runs_columns(found, resumes=resumes)
    # rich's layout, not its per-cell cost; to a pipe or a file, not even its import
    if plain_stream(sys.stdout):
        write_columns(sys.stdout, headers, cells, RIGHT)
    else:
        from corral.render.history import console

        print_columns(console(), headers, cells, RIGHT)
    return 0


@click.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_chain_option
@_server_option
@_store_options
def show_command(
    *,
    run_id: str,
    as_json: bool,
    no_chain: bool,
    server: str | None,
    store_url: str | None,
    directory: Path,
) -> int:
    """Show one run and every job in it, as at the end of the run; for a resumed run,
    the runs it was resumed from (its chain), the jobs it kept from them and the figures
    of the whole chain, each job counted once (--json: a `chain` object). --no-chain
    shows the run alone."""
    from corral.app.chain import chain_dict, logical_row
    from corral.app.history import show_flow_state
    from corral.collector import collector_paused

    if server:
        return int(_remote().show(server, run_id, as_json=as_json, no_chain=no_chain))

    # a run of 50,000 jobs is ~a million objects, all alive until the end
    with collector_paused(freeze=True):  # the command ends with it: no collector walk
        state = show_flow_state(store_url, directory, run_id, chain=not no_chain, rows=True)
        totals = logical_row(state.chain)
        if as_json:
            kept = [{**job.to_dict(), "kept_from": run} for run, job in state.kept]
            document = {"schema_version": JSON_VERSION, **state.head_dict(), "kept": kept}
            if not no_chain:
                runs = tuple(record.run for record in state.chain)
                document["chain"] = chain_dict(runs, totals, resumed_by=state.resumed_by)
            # the jobs a batch at a time: ~100 MB of JSON for 50,000 jobs, never all held
            from corral.render.json_stream import write_json

            write_json(_echo_bytes, document, "jobs", state.job_dicts())
            return 0
        from corral.render.history import console, print_chain, print_record

        out = console()
        print_record(out, state.record, kept=state.kept, jobs=state.job_lines())
        if not no_chain:
            print_chain(out, [r.run for r in state.chain], totals, state.resumed_by)
    return 0


@click.command("logs")
@click.argument("run_id", metavar="RUN")
@click.argument("job", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the run is running.")
@click.option(
    "--stderr", "stream", flag_value="stderr", help="Only stderr.log, as written (no marks)."
)
@click.option(
    "--stdout", "stream", flag_value="stdout", help="Only stdout.log, as written (no marks)."
)
@click.option("--attempt", type=click.IntRange(min=1), help="Which attempt (default: the last).")
@click.option(
    "--raw",
    is_flag=True,
    help="On a terminal too, print the bytes as logged (control sequences included).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["raw", "text", "json"]),
    default="raw",
    show_default=True,
    help="raw: as the job wrote it (an agent's JSON stream); text: an agent's narrative, "
    "as seen live; json: the parsed events, one a line.",
)
@_server_option
@_store_options
def logs_command(
    *,
    run_id: str,
    job: str | None,
    follow: bool,
    stream: str | None,
    attempt: int | None,
    raw: bool,
    fmt: str,
    server: str | None,
    store_url: str | None,
    directory: Path,
) -> int:
    """Print the output of a run's job (every job when JOB is left out): stdout, then each
    stderr line marked `stderr| `; --stdout or --stderr print one stream as written.
    --follow keeps printing while the run runs, for one job or every job.

    To a pipe or a file the bytes are as logged; on a terminal, control and escape
    sequences are shown as text (`\\x1b]0;...`) unless --raw. --format text shows an
    agent's log as the narrative seen live (what it said, the tools it called, its
    errors); --format json its parsed events."""
    from corral.app.history import JobLogFile, follow_logs, log_files, show_run

    if server:
        remote = _remote()
        return int(
            remote.logs(
                server,
                run_id,
                job,
                follow=follow,
                stream=stream,
                attempt=attempt,
                raw=raw,
                fmt=fmt,
            )
        )

    record = show_run(store_url, directory, run_id)
    if fmt != "raw":
        from corral.cli.logs import formatted_logs

        return formatted_logs(
            record, job, fmt, stream=stream, attempt=attempt, follow=follow, raw=raw,
            store_url=store_url, directory=directory,
        )  # fmt: skip
    streams = [stream] if stream else ["stdout", "stderr"]
    files = [
        (name, log)
        for log_set in zip(
            *(log_files(record, job, attempt=attempt, stderr=s == "stderr") for s in streams),
            strict=True,
        )
        for name, log in zip(streams, log_set, strict=True)
    ]
    marked = stream is None
    out = sys.stdout.buffer  # bytes as logged (click 8.3 deprecates get_binary_stream)
    jobs = list(dict.fromkeys(log.job for _, log in files))
    kinds = {log.path: name for name, log in files}
    last: list[str] = []

    def emit(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    shown: Callable[[bytes], None] = emit
    if not raw and sys.stdout.isatty():
        from corral.render.safe import visible_writer

        shown = visible_writer(emit)

    def write(log: JobLogFile, chunk: bytes) -> None:
        if len(jobs) > 1 and last != [log.job]:
            shown(b"")  # the end of the last job's text: what the decoder held back
            emit(f"==> {log.job} <==\n".encode())
            last[:] = [log.job]
        if marked and kinds[log.path] == "stderr":
            chunk = b"".join(b"stderr| " + line for line in chunk.splitlines(keepends=True))
        shown(chunk)

    if follow:
        follow_logs(store_url, directory, record.run.id, [log for _, log in files], write)
        shown(b"")
        return 0
    for name in jobs:
        found = [log for _, log in files if log.job == name and log.path.exists()]
        for log in found:
            with log.path.open("rb") as handle:
                # by lines where lines are marked, else in blocks: a log may be huge
                for piece in _pieces(handle, by_lines=marked and kinds[log.path] == "stderr"):
                    write(log, piece)
            shown(b"")  # the end of this file: what the decoder held back
        if not found and len(jobs) == 1:
            click.echo(f"corral: job {name} wrote no log (not started?): {files[0][1].path.parent}",
                       err=True)  # fmt: skip
    out.flush()
    return 0


def _pieces(handle: BinaryIO, *, by_lines: bool) -> Iterator[bytes]:
    if by_lines:
        yield from handle
    else:
        while block := handle.read(1 << 20):
            yield block


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
@_chain_option
@_store_options
def export_command(
    *,
    run_id: str,
    fmt: str,
    output: Path | None,
    no_chain: bool,
    store_url: str | None,
    directory: Path,
) -> int:
    """Export a run: JSON (record and events), JSONL (events) or CSV (attempts). A resumed
    run comes with the runs it was resumed from, oldest first: their events and attempts
    (each names its run) and, in JSON, a `chain` object with the figures of the whole
    chain; --no-chain exports the run alone."""
    from corral.app.history import export_run

    chunks = export_run(store_url, directory, run_id, fmt, chain=not no_chain)
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
    else:
        with output.open("w", encoding="utf-8", newline="") as file:
            file.writelines(chunks)
    return 0


@click.command("usage")
@click.option("--by", type=click.Choice(USAGE_KEYS), default="model", show_default=True)
@click.option("--since", metavar="DURATION", help="Only attempts that ended within, e.g. 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--include-rehearsals",
    is_flag=True,
    help="Count rehearsals too (their spend is simulated; left out by default).",
)
@_server_option
@_store_options
def usage_command(
    *,
    by: UsageBy,
    since: str | None,
    as_json: bool,
    as_csv: bool,
    include_rehearsals: bool,
    server: str | None,
    store_url: str | None,
    directory: Path,
) -> int:
    """Tokens by kind and cost by source, grouped by model, tool, job, flow or day.
    Rehearsals are left out (nothing was billed) unless --include-rehearsals.

    Every attempt counts once, across `corral resume` too: a job a resume adopted is
    counted in the resume's run only, a job it ran again counts both attempts."""
    from corral.app.history import usage

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    if server:
        _since(since)
        remote = _remote()
        return int(
            remote.usage(
                server, by=by, since=since, as_json=as_json, as_csv=as_csv,
                include_rehearsals=include_rehearsals,
            )
        )  # fmt: skip
    rows = usage(
        store_url, directory, by, since=_since(since), include_rehearsals=include_rehearsals
    )
    if as_json:
        _echo_json({"schema_version": JSON_VERSION, "by": by, "rows": [r.to_dict() for r in rows]})
        return 0
    from corral.render.fit import Trimmed
    from corral.render.history import console, usage_csv, usage_table

    if as_csv:
        click.echo(usage_csv(by, rows), nl=False)
    elif not rows:
        click.echo("No usage recorded.")
    else:
        console().print(Trimmed(usage_table(by, rows)))
    return 0


@click.command("gc")
@click.option("--older-than", "older_than", metavar="DURATION", required=True, help="e.g. 30d.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@_store_options
def gc_command(*, older_than: str, dry_run: bool, store_url: str | None, directory: Path) -> int:
    """Delete runs started longer ago than --older-than, with their log folders."""
    from corral.app.history import gc
    from corral.render.format import time_text

    try:
        seconds = parse_duration(older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    collected = gc(store_url, directory, seconds, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for item in collected:
        run = item.run
        note = ""
        if not item.deleted:
            click.echo(f"kept run {run.id} ({run.flow_name}): {item.kept_because}")
            continue
        if item.kept_because is not None:
            note = f" (kept {item.logs}: {item.kept_because})"
        elif item.logs is not None:
            note = f" and {item.logs}"
        click.echo(f"{verb} run {run.id} ({run.flow_name}, {time_text(run.started_at)}){note}")
    count = sum(1 for item in collected if item.deleted)
    click.echo(f"{verb} {count} run{'s' if count != 1 else ''}")
    return 0
