"""`corral run`, `corral exec`, `corral rehearse` and `corral resume`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from corral.errors import UsageError


def _start_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    from corral.durations import parse_start_at

    try:
        return parse_start_at(value, datetime.now().astimezone())
    except ValueError as error:
        raise UsageError(f"--start-at: {error}") from None


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that runs jobs shares."""
    options = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            help="Most jobs at once (default: the flow's concurrency, else CPUs, at least 2).",
        ),
        click.option(
            "--output",
            type=click.Choice(["auto", "live", "prefixed", "grouped", "quiet"]),
            default="auto",
            show_default=True,
            help="How output is shown: live table on a terminal, prefixed lines otherwise.",
        ),
        click.option("-q", "--quiet", is_flag=True, help="Print only the summary and errors."),
        click.option(
            "--json",
            "json_mode",
            is_flag=True,
            help="Print a machine-readable summary on stdout (and nothing else there).",
        ),
        click.option(
            "--max-line-length",
            type=click.IntRange(min=10),
            help="Truncate displayed lines to N characters (logs keep everything).",
        ),
        click.option("--fail-fast", is_flag=True, help="Cancel everything at the first failure."),
        click.option(
            "--start-at",
            metavar="WHEN",
            help="Delay the start: 30m, 1.5h, 2am, 14:30 (tomorrow if past).",
        ),
        click.option(
            "--store",
            metavar="URL",
            envvar="CORRAL_STORE",
            help="Run history database (default: SQLite in .corral/).",
        ),
        click.option("--no-store", is_flag=True, help="Keep no history for this run."),
        click.option(
            "--prices",
            "price_file",
            type=click.Path(exists=True, dir_okay=False),
            help="Price file that overrides or adds model prices.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _execute(
    loaded: Any,
    plan: Any,
    params: dict[str, Any],
    *,
    rehearse: Any = None,
    known: Any = None,
    resumed_from: str | None = None,
    args: tuple[str, ...] = (),
    base_dir: Path | None = None,
    seed: Any = None,
) -> int:
    import os

    from corral.app import RunOptions, missing_tools, version_warnings
    from corral.render.format import budget_meters, usage_line
    from corral.render.summary import print_summary, summary_json
    from corral.render.ui import TerminalUI, choose_mode, output_stream
    from corral.session import RunSession

    located = missing_tools(plan, os.environ)
    for warning in version_warnings(located):
        click.echo(f"corral: warning: {warning}", err=True)
    json_mode = params["json_mode"]
    stream = output_stream(json_mode)
    mode = choose_mode(params["output"], params["quiet"], stream)
    options = RunOptions(
        jobs=params["jobs"],
        fail_fast=params["fail_fast"],
        start_at=_start_at(params["start_at"]),
        store=params["store"],
        no_store=params["no_store"],
        args=args,
        base_dir=base_dir,
        price_file=params["price_file"],
    )
    session = RunSession(
        loaded, plan, options, rehearse=rehearse, known=known, resumed_from=resumed_from, seed=seed
    )

    def totals() -> str:
        run = session.ledger.run()
        return usage_line(run.usage, run.cost) if run.usage.total_tokens else ""

    def budgets() -> list[tuple[str, float]]:
        budget = loaded.spec.budget
        return budget_meters(budget, session.ledger.run()) if budget is not None else []

    ui = TerminalUI(
        list(plan.jobs),
        mode=mode,
        stream=stream,
        title=loaded.name,
        max_line_length=params["max_line_length"],
        accounts=session.accounts,
        totals=totals,
        budgets=budgets,
    )
    report = asyncio.run(session.execute(ui))
    elapsed = report.ended_at - report.started_at
    footer = (
        f"run {report.run_id} {report.status.value} in {elapsed:.1f}s · logs: {report.log_root}"
    )
    if report.totals[1] is not None:
        footer += " · " + usage_line(*report.totals)
    if report.store_error:
        click.echo(f"corral: warning: history not saved: {report.store_error}", err=True)
    print_summary(ui.console, ui.state, session.accounts, footer)
    if json_mode:
        document = summary_json(
            run_id=report.run_id,
            flow=loaded.name,
            status=report.status.value,
            started_at=report.started_at,
            ended_at=report.ended_at,
            state=ui.state,
            log_root=str(report.log_root),
            accounts=session.accounts,
            totals=report.totals,
        )
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    return report.exit_code


@click.command("run")
@click.argument("flow", type=click.Path(dir_okay=False))
@click.option(
    "--only", multiple=True, metavar="JOB", help="Run only JOB and what it needs (repeatable)."
)
@click.option(
    "--from",
    "from_",
    multiple=True,
    metavar="JOB",
    help="Run JOB and everything that needs it (repeatable).",
)
@click.option(
    "--rehearse", is_flag=True, help="Run against a simulated provider: nothing is billed."
)
@run_options
def run_command(
    flow: str, only: tuple[str, ...], from_: tuple[str, ...], rehearse: bool, **params: Any
) -> int:
    """Run every job of FLOW (YAML, JSON or TOML), at most --jobs at a time.

    Exits 0 when every job succeeded, 1 when any failed, 2 on a usage or flow
    error, 130/143 when interrupted.
    """
    from corral.app import check_flow

    loaded, plan = check_flow(flow, only=only, from_=from_)
    known = _earlier_results(loaded, plan, params)
    if rehearse:
        return _rehearsed(loaded, plan, params, known=known)
    return _execute(loaded, plan, params, args=tuple(sys.argv[1:]), known=known)


def _earlier_results(loaded: Any, plan: Any, params: dict[str, Any]) -> Any:
    """With --from, the needs left out keep their last recorded results (for templates)."""
    if not plan.external_needs or params["no_store"]:
        return None
    from corral.resume import known_from_history

    folder = loaded.path.resolve().parent
    return known_from_history(params["store"], folder, loaded.path, plan.external_needs)


@click.command("rehearse")
@click.argument("flow", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="JOB", help="Run only JOB and what it needs.")
@click.option(
    "--from", "from_", multiple=True, metavar="JOB", help="Run JOB and everything that needs it."
)
@run_options
def rehearse_command(
    flow: str, only: tuple[str, ...], from_: tuple[str, ...], **params: Any
) -> int:
    """Run FLOW with the real agent CLIs against a simulated provider on 127.0.0.1.

    Nothing leaves the machine and nothing is billed; each job's `rehearse:` says
    what the simulated model does.
    """
    from corral.app import check_flow

    loaded, plan = check_flow(flow, only=only, from_=from_)
    return _rehearsed(loaded, plan, params)


def _rehearsed(loaded: Any, plan: Any, params: dict[str, Any], known: Any = None) -> int:
    from corral.provider.rehearse import rehearsal

    with rehearsal(plan) as rehearse:
        return _execute(
            loaded, plan, params, rehearse=rehearse, args=tuple(sys.argv[1:]), known=known
        )


@click.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--model", help="Model for an agent tool.")
@click.option("--timeout", help="Stop the job after this long (90s, 5m, 1h30m).")
@click.option("--idle-timeout", help="Stop the job after this long without output.")
@click.option("--name", default=None, help="Job name (default: the tool or command name).")
@run_options
def exec_command(
    command: tuple[str, ...],
    model: str | None,
    timeout: str | None,
    idle_timeout: str | None,
    name: str | None,
    **params: Any,
) -> int:
    """Run one command or one agent prompt, with corral's logs, limits and summary.

    \b
      corral exec -- pytest -q
      corral exec claude "/analyze-repository"
      corral exec codex "write tests for utils.py" --model gpt-5.5
    """
    from corral.app import check_flow_document

    loaded, plan = check_flow_document(
        _exec_document(command, model, timeout, idle_timeout, name), base_dir=Path.cwd()
    )
    return _execute(loaded, plan, params, args=tuple(sys.argv[1:]), base_dir=Path.cwd())


def _exec_document(
    command: tuple[str, ...],
    model: str | None,
    timeout: str | None,
    idle: str | None,
    name: str | None,
) -> dict[str, Any]:
    from corral.tools import all_tools

    first = command[0]
    job: dict[str, Any]
    tools = all_tools()
    if first in tools and first != "generic" and len(command) >= 2:
        job = {"tool": first, "prompt": " ".join(command[1:])}
        if model:
            job["model"] = model
    else:
        if model:
            raise UsageError(
                '--model only applies to an agent tool: corral exec claude "PROMPT" --model M'
            )
        job = {"run": list(command)}
    if timeout:
        job["timeout"] = timeout
    if idle:
        job["idle_timeout"] = idle
    job_name = name or _safe_name(Path(first).name)
    return {"version": 1, "name": job_name, "jobs": {job_name: job}}


def _safe_name(text: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".-") or "job"
    return cleaned[:40]


@click.command("resume")
@click.argument("run_id")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    help="Where .corral lives (default: here).",
)
@run_options
def resume_command(run_id: str, directory: str, **params: Any) -> int:
    """Finish RUN: succeeded jobs are kept, failed, cancelled and never-started jobs run."""
    from corral.resume import prepare_resume

    resumed, record = prepare_resume(
        run_id,
        store_url=params["store"],
        directory=Path(directory),
        echo=lambda m: click.echo(m, err=True),
    )
    if not resumed.plan.jobs:
        return 0
    return _execute(
        resumed.loaded,
        resumed.plan,
        params,
        known=resumed.known,
        resumed_from=resumed.run_id,
        seed=lambda ledger: resumed.seed(ledger, record),
        args=tuple(sys.argv[1:]),
        base_dir=Path(directory).resolve(),
    )
