"""`corral run`, `corral exec`, `corral rehearse` and `corral resume`: parse the options,
call the run use case (`corral.app.run.start_run`), render its report.

Signals are this edge's business: SIGINT, SIGTERM, SIGHUP (the terminal or the SSH
session closed) and SIGQUIT cancel the run through its `RunControl` (a second signal of
any of them kills at once), and the exit code says which came first (128 + its number).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from corral.cli.options import RunFlags, run_options, single_job_options
from corral.collector import collector_paused
from corral.errors import EXIT_SIGINT, EXIT_SIGTERM, PolicyDenied, UsageError
from corral.lazyssl import asyncio

if TYPE_CHECKING:
    from corral.app.run import RunControl, RunReport
    from corral.config.loaded import LoadedFlow
    from corral.plan import Plan
    from corral.render.ui import TerminalUI

Start = Callable[["TerminalUI", "RunControl"], Awaitable["RunReport | None"]]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Interrupts:
    """The first stop signal cancels the run gracefully, a second one kills at once."""

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.received: int | None = None
        self._count = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._handle, sig)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)

    def _handle(self, sig: int) -> None:
        self._count += 1
        self.received = self.received or sig
        name = signal.Signals(sig).name
        self.control.cancel(f"interrupted by {name}", hard=self._count > 1)

    @property
    def exit_code(self) -> int | None:
        if self.received is None:
            return None
        if self.received == signal.SIGINT:
            return EXIT_SIGINT
        if self.received == signal.SIGTERM:
            return EXIT_SIGTERM
        return 128 + self.received  # SIGHUP 129, SIGQUIT 131


def server_options(command: Callable[..., int]) -> Callable[..., int]:
    """--server URL and --cancel-on-interrupt: run on a `corral serve` and follow it."""
    command = click.option(
        "--cancel-on-interrupt",
        is_flag=True,
        help="With --server: Ctrl-C cancels the run (default: it detaches).",
    )(command)
    return click.option(
        "--server",
        envvar="CORRAL_SERVER",
        metavar="URL",
        help=(
            "Run on this corral server (see `corral login`); it honours --only, --from, "
            "--jobs, --fail-fast, --start-at and --executor, not --store, --no-store, "
            "--prices or --policy (they name this machine's files). Env: CORRAL_SERVER."
        ),
    )(command)


def _view(flags: RunFlags, title: str) -> TerminalUI:
    from corral.render.ui import TerminalUI, choose_mode, output_stream

    stream = output_stream(flags.json_mode)
    mode = choose_mode(flags.output, flags.quiet, stream)
    return TerminalUI(mode=mode, stream=stream, title=title, max_line_length=flags.max_line_length)


def _run(flags: RunFlags, title: str, start: Start) -> int:
    """Run the use case `start` under signal handling, then render its report."""
    from corral.app.run import RunControl

    ui = _view(flags, title)
    control = RunControl()
    interrupts = Interrupts(control)

    async def main() -> RunReport | None:
        loop = asyncio.get_running_loop()
        interrupts.install(loop)
        try:
            return await start(ui, control)
        finally:
            interrupts.uninstall(loop)

    with _refusal_document(flags):  # `resume` is checked once the run is planned
        report = asyncio.run(main())
    if report is None:
        return interrupts.exit_code or 0  # nothing was left to run
    try:
        _render(report, ui, flags.json_mode)
    except OSError:
        if interrupts.received != signal.SIGHUP:
            raise
        # the terminal is gone (SIGHUP): the run is recorded; nobody is there to read it
    return interrupts.exit_code or report.exit_code


def _render(report: RunReport, ui: TerminalUI, json_mode: bool) -> None:
    from corral.journal import summary_json
    from corral.render.format import budget_reckoning, usage_parts
    from corral.render.summary import print_summary, write_summary
    from corral.render.ui import PLAIN_WIDTH

    elapsed = report.ended_at - report.started_at
    # the run's last lines, as parts: laid out to the terminal's width, broken only
    # between two parts; the log path last, on its own line when it does not fit
    footer = [f"run {report.run_id} {report.status.value} in {elapsed:.1f}s"]
    usage, cost = report.totals
    if cost is not None:
        footer += usage_parts(usage, cost)
    if report.journal.rehearsal:
        footer.append("rehearsal: simulated provider, nothing billed")
    footer.append(f"logs: {report.log_root}")
    lines = [footer]
    if report.journal.breaches:
        lines.append(budget_reckoning(report.journal))
    if report.store_error:
        click.echo(f"corral: error: history not saved: {report.store_error}", err=True)
    # to a pipe or a file, rich's text without rich where it is sure to be the same
    if not (ui.plain and write_summary(ui.stream, report.journal, lines, PLAIN_WIDTH)):
        print_summary(ui.console, report.journal, lines)
    if json_mode:
        document = summary_json(
            report.journal, started_at=report.started_at, ended_at=report.ended_at
        )
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()


def _warn(message: str) -> None:
    click.echo(f"corral: warning: {message}", err=True)


@contextlib.contextmanager
def _refusal_document(flags: RunFlags) -> Iterator[None]:
    """With --json, a run refused by policy still puts a document on stdout: the
    verdict, with `"status": "refused"` and the refusal's run id."""
    try:
        yield
    except PolicyDenied as denied:
        if flags.json_mode:
            sys.stdout.buffer.write(orjson.dumps(denied.document, option=orjson.OPT_INDENT_2))
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
        raise


def _flow_run(
    loaded: LoadedFlow,
    plan: Plan,
    flags: RunFlags,
    *,
    base_dir: Path | None = None,
    rehearse: bool = False,
) -> int:
    """`run`, `exec` and `rehearse`: run the plan (with its rehearsal, if asked)."""
    # what is imported and built before the run lives to the command's end: no collector
    # walk for it (`collector_paused`), and none after (frozen)
    with collector_paused(freeze=True):
        from corral.app.check import flow_warnings
        from corral.app.location import history_home
        from corral.app.policy import admit
        from corral.app.run import start_run

        # what `corral validate` warns of (a prompt with no tool, an unset ${VAR} ...),
        # said by a run too, each at its place: a run is not the quiet way around them
        for warning in flow_warnings(loaded, plan):
            click.echo(f"corral: {warning}", err=True)
        options = flags.options(base_dir=base_dir or history_home())
        with _refusal_document(flags):
            # the policies first: a refused rehearsal does not even start its provider
            admitted = admit(loaded, plan, options, warn=_warn)
    if not rehearse:

        def start(ui: TerminalUI, control: RunControl) -> Awaitable[RunReport]:
            return start_run(
                loaded, plan, options, view=ui, control=control, warn=_warn, admitted=admitted
            )

        return _run(flags, loaded.name, start)
    from corral.app.rehearse import rehearsal

    with rehearsal(plan) as hook:

        def start_rehearsed(ui: TerminalUI, control: RunControl) -> Awaitable[RunReport]:
            return start_run(
                loaded,
                plan,
                options,
                view=ui,
                control=control,
                rehearse=hook,
                warn=_warn,
                admitted=admitted,
            )

        return _run(flags, loaded.name, start_rehearsed)


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
@server_options
@run_options
def run_command(
    flow: str,
    only: tuple[str, ...],
    from_: tuple[str, ...],
    rehearse: bool,
    server: str | None,
    cancel_on_interrupt: bool,
    flags: RunFlags,
) -> int:
    """Run every job of FLOW (YAML, JSON or TOML), at most --jobs at a time.

    With --server URL the flow runs on that server and this command follows it live
    (Ctrl-C detaches; --cancel-on-interrupt cancels instead).

    Exits 0 when every job succeeded, 1 when any failed, 2 on a usage or flow
    error, 130/143 when interrupted.
    """
    from corral.app.check import check_flow

    if server:
        from corral.server import remote, require_server_extra

        require_server_extra()
        return remote.run(
            server,
            flow,
            flags,
            only=only,
            from_=from_,
            rehearse=rehearse,
            cancel_on_interrupt=cancel_on_interrupt,
        )

    loaded, plan = check_flow(flow, only=only, from_=from_)
    return _flow_run(loaded, plan, flags, rehearse=rehearse)


@click.command("rehearse")
@click.argument("flow", type=click.Path(dir_okay=False))
@click.option("--only", multiple=True, metavar="JOB", help="Run only JOB and what it needs.")
@click.option(
    "--from", "from_", multiple=True, metavar="JOB", help="Run JOB and everything that needs it."
)
@run_options
def rehearse_command(
    flow: str, only: tuple[str, ...], from_: tuple[str, ...], flags: RunFlags
) -> int:
    """Run FLOW with the real agent CLIs against a simulated provider on 127.0.0.1.

    Nothing leaves the machine and nothing is billed; each job's `rehearse:` says
    what the simulated model does.
    """
    from corral.app.check import check_flow

    loaded, plan = check_flow(flow, only=only, from_=from_)
    return _flow_run(loaded, plan, flags, rehearse=True)


class _ExecCommand(click.Command):
    """`corral exec`: corral's options are read wherever they stand (before the tool, after
    the prompt); only what follows `--` is taken literally, as the command or the prompt."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head, literal = args, []
        if "--" in args:
            cut = args.index("--")
            head, literal = args[:cut], args[cut + 1 :]
        ctx.meta[_LITERAL] = literal
        try:
            return super().parse_args(ctx, head)
        except click.NoSuchOption as error:
            raise click.UsageError(
                f"no such option: {error.option_name} (options for the command or the "
                f"prompt go after --: corral exec [OPTIONS] -- CMD ARGS...)",
                ctx,
            ) from None


_LITERAL = "corral.exec.literal"


@click.command("exec", cls=_ExecCommand)
@click.argument("command", nargs=-1)
@click.option("--model", help="Model for an agent tool.")
@click.option("--timeout", help="Stop the job after this long (90s, 5m, 1h30m).")
@click.option(
    "--idle-timeout",
    help="Stop the job after this long without output (agents: 10m by default; 0: never).",
)
@click.option("--name", default=None, help="Job name (default: the tool or command name).")
@single_job_options
def exec_command(
    command: tuple[str, ...],
    model: str | None,
    timeout: str | None,
    idle_timeout: str | None,
    name: str | None,
    flags: RunFlags,
) -> int:
    """Run one command or one agent prompt, with corral's logs, limits and summary.

    Options are read wherever they stand; what follows `--` is passed on as is.

    \b
      corral exec -- pytest -q
      corral exec claude "/analyze-repository"
      corral exec codex "write tests for utils.py" --model gpt-5.5
      corral exec claude --json -- "--explain this flag"
    """
    words = (*command, *click.get_current_context().meta.get(_LITERAL, ()))
    if not words:
        raise UsageError("corral exec needs a command or a tool and a prompt (see --help)")
    with collector_paused(freeze=True):  # as in `_flow_run`: it lives to the end
        from corral.app.check import check_flow_document

        loaded, plan = check_flow_document(
            _exec_document(words, model, timeout, idle_timeout, name), base_dir=Path.cwd()
        )
    return _flow_run(loaded, plan, flags)


def _exec_document(
    command: tuple[str, ...],
    model: str | None,
    timeout: str | None,
    idle: str | None,
    name: str | None,
) -> dict[str, object]:
    from corral.tools.registry import names

    first = command[0]
    job: dict[str, object]
    if first in names() and first != "generic" and len(command) >= 2:
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
    help="Where .corral lives (default: the nearest .corral at or above here).",
)
@server_options
@run_options
def resume_command(
    run_id: str,
    directory: str | None,
    server: str | None,
    cancel_on_interrupt: bool,
    flags: RunFlags,
) -> int:
    """Finish RUN: succeeded jobs are kept, failed, cancelled and never-started jobs run.

    Jobs a killed corral left running or finished are adopted, not run again. A RUN that
    a resume already took over is resumed through the newest run of its chain (said on
    stderr), so no job runs twice and the chain stays one logical run."""
    from corral.app.location import history_home
    from corral.app.resume import resume_run

    if server:
        from corral.server import remote, require_server_extra

        require_server_extra()
        return remote.resume(server, run_id, flags, cancel_on_interrupt=cancel_on_interrupt)

    home = Path(directory).resolve() if directory else history_home()
    options = flags.options(base_dir=home)

    def start(ui: TerminalUI, control: RunControl) -> Awaitable[RunReport | None]:
        return resume_run(
            run_id,
            options,
            directory=home,
            echo=lambda m: click.echo(m, err=True),
            view=ui,
            control=control,
            warn=_warn,
        )

    return _run(flags, "", start)  # the live view takes the flow's name from the run
