"""The `corral` command group. Subcommands are imported only when used, so --help is fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from corral import __version__

# command name -> "module:attribute"; each module holds one click command
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("corral.cli.run", "Run every job of a flow file."),
    "exec": ("corral.cli.run", "Run one command or one agent prompt (single-instance mode)."),
    "rehearse": ("corral.cli.run", "Run a flow with the real CLIs against a simulated provider."),
    "validate": ("corral.cli.flow", "Check a flow file without running it."),
    "schema": ("corral.cli.flow", "Print the JSON Schema of the flow file."),
    "plan": ("corral.cli.flow", "Show the order, parallelism, conditions and worst-case spend."),
    "tools": (
        "corral.cli.tools",
        "List the agent CLIs corral knows, where they are and their versions.",
    ),
    "runs": ("corral.cli.history", "List recent runs."),
    "show": ("corral.cli.history", "Show one run and every job in it."),
    "logs": ("corral.cli.history", "Print the output of a run's job."),
    "export": ("corral.cli.history", "Export a run as JSON, JSONL or CSV."),
    "usage": ("corral.cli.history", "Tokens and cost grouped by model, tool, job, flow or day."),
    "gc": ("corral.cli.history", "Delete old runs and their logs."),
    "resume": ("corral.cli.run", "Finish an interrupted or failed run."),
    "provider": ("corral.cli.provider", "The simulated model provider."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, f"{cmd_name}_command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help comes from the table, so --help imports no command module
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        if name is not None and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corral")
def cli() -> None:
    """Run fleets of coding-agent CLIs (Claude Code, Codex, Gemini CLI, any command)
    in parallel or as a dependency graph, with live token and cost accounting."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the `corral` console script."""
    from corral.cli.errors import run_cli

    return run_cli(cli, sys.argv[1:] if argv is None else argv)
