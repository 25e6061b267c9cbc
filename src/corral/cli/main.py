"""The `corral` command group. Commands come from the `corral.commands` entry points
(the built-ins too) and are imported only when used, so --help is fast."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import NoReturn

import click

from corral import __version__, classcache, plugins
from corral.cli.commands import CommandEntry
from corral.execute import early


def _command(name: str) -> CommandEntry | click.Command:
    """A registered command, lazily (`CommandEntry`) or as the plugin gave it."""
    ep = plugins.entries(plugins.COMMANDS)[name]
    found = plugins.load(ep, plugins.COMMANDS, _is_command)
    assert isinstance(found, CommandEntry | click.Command)  # checked by _is_command
    return found


def _is_command(value: object) -> str | None:
    if isinstance(value, CommandEntry | click.Command):
        return None
    return "is neither a corral.cli.commands.CommandEntry nor a click command"


class LazyGroup(click.Group):
    """A click group whose commands are the `corral.commands` entry points."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(plugins.entries(plugins.COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in plugins.entries(plugins.COMMANDS):
            return None
        found = _command(cmd_name)
        if isinstance(found, click.Command):
            return found
        # the command's modules define ~150 dataclasses: their methods come compiled
        classcache.install(cmd_name)
        command = getattr(importlib.import_module(found.module), found.attribute)
        if not isinstance(command, click.Command):
            raise plugins.PluginError(f"command '{cmd_name}' ({found.target}) is not a command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help comes from the entries, so --help imports no command module
        rows = []
        for name in self.list_commands(ctx):
            found = _command(name)
            text = found.help if isinstance(found, CommandEntry) else found.get_short_help_str()
            rows.append((name, text or ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        names = self.list_commands(ctx)
        if name is not None and name not in names and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corral")
def cli() -> None:
    """Run fleets of coding-agent CLIs (Claude Code, Codex, Gemini CLI, any command)
    in parallel or as a dependency graph, with live token and cost accounting."""


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `corral` console script (and `python -m corral`, the one-file
    executable, the zipapp): the command line is `sys.argv`.

    Called so, it exits without the interpreter's teardown when that has nothing left to
    do but free memory (~40 ms of CPU after a short command's last line, a sixth of
    `corral exec -- true`'s own). What the interpreter does at exit that is not freeing
    memory is done here, in its order: join the threads (none may be left running, or it
    exits as usual), run the `atexit` functions, flush stdout and stderr. Anything else
    gets the usual exit: a file or socket the command opened and left open (its buffered
    bytes are written when it is torn down), a profiler or tracer (cProfile, coverage:
    they write their data after the command), an exit message instead of a code, a
    flush that fails. With `argv` given (a caller in the same process), it always raises
    SystemExit.
    """
    from corral.cli.errors import run_cli

    if argv is not None:
        run_cli(cli, argv)
    # a run's supervisor starts up while this process does (its socket is among `before`)
    early.start(sys.argv[1:])
    before = _open_descriptors()
    try:
        run_cli(cli, sys.argv[1:])
    except SystemExit as done:
        early.discard()  # the run took it, or there was none to take it: it has no use
        code = done.code
        if (code is None or isinstance(code, int)) and _left_nothing(before):
            _exit_now(code or 0)
        raise
    except BaseException:
        early.discard()  # a bug's traceback (or KeyboardInterrupt): it is not needed
        raise


def _open_descriptors() -> frozenset[int] | None:
    """The file descriptors open now (None where they cannot be listed)."""
    try:
        listed = os.listdir("/dev/fd")  # the listing's own descriptor is closed again
    except OSError:
        return None
    found = set()
    for name in listed:
        with contextlib.suppress(ValueError, OSError):
            os.fstat(int(name))
            found.add(int(name))
    return frozenset(found)


def _left_nothing(before: frozenset[int] | None) -> bool:
    """Whether the interpreter's teardown would only free memory."""
    import threading

    if sys.flags.inspect or sys.getprofile() is not None or sys.gettrace() is not None:
        return False
    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return False  # the interpreter would wait for it (threading._shutdown)
    after = _open_descriptors()
    return before is not None and after is not None and after <= before


def _exit_now(code: int) -> NoReturn:
    import atexit

    atexit._run_exitfuncs()  # what the interpreter runs first at exit, once
    atexit._clear()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None  # the interpreter reports it as it does
    os._exit(code)
