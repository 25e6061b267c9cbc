"""What each built-in command is, without importing it: the `corral.commands` entry points
point here, so `corral --help` lists every command and imports none of them.

A plugin registers a command the same way: an entry point naming a `CommandEntry` (or,
costing an import at `--help`, the click command itself). `corral serve` arrives like that
with the `server` extra.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandEntry:
    """A command, lazily: where its click command is, and its one-line help."""

    target: str  # "module:attribute" of the click command
    help: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.target.partition(":")[2]


RUN = CommandEntry("corral.cli.run:run_command", "Run every job of a flow file.")
EXEC = CommandEntry(
    "corral.cli.run:exec_command", "Run one command or one agent prompt (single-instance mode)."
)
REHEARSE = CommandEntry(
    "corral.cli.run:rehearse_command",
    "Run a flow with the real CLIs against a simulated provider.",
)
RESUME = CommandEntry("corral.cli.run:resume_command", "Finish an interrupted or failed run.")
VALIDATE = CommandEntry("corral.cli.flow:validate_command", "Check a flow file without running it.")
SCHEMA = CommandEntry("corral.cli.flow:schema_command", "Print the JSON Schema of the flow file.")
PLAN = CommandEntry(
    "corral.cli.flow:plan_command",
    "Show the order, parallelism, conditions and worst-case spend.",
)
TOOLS = CommandEntry(
    "corral.cli.tools:tools_command",
    "List the agent CLIs corral knows, where they are and their versions.",
)
RUNS = CommandEntry("corral.cli.history:runs_command", "List recent runs.")
SHOW = CommandEntry("corral.cli.history:show_command", "Show one run and every job in it.")
LOGS = CommandEntry("corral.cli.history:logs_command", "Print the output of a run's job.")
EXPORT = CommandEntry("corral.cli.history:export_command", "Export a run as JSON, JSONL or CSV.")
USAGE = CommandEntry(
    "corral.cli.history:usage_command",
    "Tokens and cost grouped by model, tool, job, flow or day.",
)
GC = CommandEntry("corral.cli.history:gc_command", "Delete old runs and their logs.")
PROVIDER = CommandEntry("corral.cli.provider:provider_command", "The simulated model provider.")
VERSION = CommandEntry(
    "corral.cli.version:version_command",
    "Print the version (--verbose: commit, build, artifact, Python, dependencies).",
)
POLICY = CommandEntry(
    "corral.cli.policy:policy_command", "Check a flow against Rego policies before it runs."
)
SERVE = CommandEntry(
    "corral.server.serve:serve_command",
    "Serve the history and run flows over an HTTP API with live events (corral[server]).",
)
LOGIN = CommandEntry(
    "corral.server.serve:login_command", "Store a server's API token for --server (corral[server])."
)
