"""`corral tools`: which agent CLIs are registered, installed, where, which version, and
which version each adapter was verified against with the real CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from corral.errors import ToolError
from corral.tools import Tool, all_tools
from corral.tools.verify import installed_versions, verification, version_warning

# bump when a key of the --json output changes meaning or disappears
JSON_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ToolStatus:
    """One row of `corral tools`."""

    name: str
    installed: bool
    path: str | None
    version: str | None
    parser: str | None  # None: plain text, not parsed
    env_var: str
    supports: tuple[str, ...]
    error: str | None = None
    verified_version: str | None = None  # the version proven with the real CLI
    verification: str = "-"  # "verified: X" or "unverified: why"
    warning: str | None = None  # the installed version is not the verified one

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "installed": self.installed,
            "path": self.path,
            "version": self.version,
            "verified_version": self.verified_version,
            "verification": self.verification,
            "warning": self.warning,
            "parser": self.parser,
            "env_var": self.env_var,
            "supports": list(self.supports),
            "error": self.error,
        }


def tool_statuses(environ: Mapping[str, str]) -> list[ToolStatus]:
    """Locate every registered tool and read the versions in parallel.

    Each `--version` is a process start (Gemini's takes over a second), so they run at
    once on a thread pool, each under the adapter's short timeout, and are remembered
    while the executable stays the same (`corral.tools.verify`).
    """
    tools = all_tools()
    located: dict[str, tuple[str | None, str | None]] = {}
    for name, tool in tools.items():
        try:
            located[name] = (tool.find_executable(environ), None)
        except ToolError as error:
            located[name] = (None, error.message)
    found = [(tool, path) for name, tool in tools.items() if (path := located[name][0])]
    by_path = installed_versions(found)
    versions = {tool.name: by_path.get(path) for tool, path in found}
    return [_status(tool, located[name], versions.get(name)) for name, tool in tools.items()]


def _status(tool: Tool, located: tuple[str | None, str | None], version: str | None) -> ToolStatus:
    path, error = located
    # a tool without executables (generic) runs whatever command it is given
    installed = path is not None or not tool.executable_names
    return ToolStatus(
        name=tool.name,
        installed=installed,
        path=path,
        version=version,
        parser=tool.parser,
        env_var=tool.env_var,
        supports=tuple(sorted(tool.supports)),
        error=error,
        verified_version=tool.verified.version if tool.verified is not None else None,
        verification=verification(tool),
        warning=version_warning(tool, version),
    )


def _render_table(statuses: list[ToolStatus]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from corral.render.fit import Trimmed

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("tool", "installed", "version", "verified", "parser", "path"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        if s.error:
            where = f"[red]{s.error}[/red]"
        elif s.path:
            where = s.path
        elif s.installed:
            where = "(runs any command)"
        else:
            where = "-"
        installed = "[green]yes[/green]" if s.installed else "[dim]no[/dim]"
        proven = escape(s.verification)
        if s.warning:
            proven = f"[yellow]{proven} (installed differs)[/yellow]"
        elif s.verified_version is None and s.verification != "-":
            proven = f"[dim]{proven}[/dim]"
        table.add_row(s.name, installed, s.version or "-", proven, s.parser or "-", where)
    console = Console(soft_wrap=False)
    console.print(Trimmed(table))
    for s in statuses:
        if s.warning:
            console.print(f"[yellow]warning:[/yellow] {escape(s.warning)}")
    if any(not s.installed for s in statuses):
        console.print("[dim]A CLI outside PATH: set CORRAL_<TOOL>_BIN to its path.[/dim]")


@click.command("tools")
@click.option("--json", "as_json", is_flag=True, help="Print a versioned JSON document.")
def tools_command(as_json: bool) -> int:
    """List the agent CLIs corral knows, where they are and their versions."""
    statuses = tool_statuses(os.environ)
    if as_json:
        import orjson

        document = {"schema_version": JSON_FORMAT_VERSION, "tools": [s.to_dict() for s in statuses]}
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        _render_table(statuses)
    return 0
