"""The tool registry: every adapter comes from the `corral.tools` entry-point group.

The built-in adapters are declared in corral's own package metadata, so they load
through the same hook as a third-party plugin; nothing here names them.
"""

from __future__ import annotations

import difflib
import functools
from importlib.metadata import EntryPoint, entry_points

from corral.errors import ToolError
from corral.tools.base import Tool

GROUP = "corral.tools"


@functools.cache
def all_tools() -> dict[str, Tool]:
    """Every registered tool by name, sorted. Loaded once per process."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        other = found.get(ep.name)
        # the same entry point can be listed twice (a stale egg-info beside dist-info)
        if other is not None and other.value != ep.value:
            raise ToolError(
                f"tool '{ep.name}' is registered twice: {other.value} and {ep.value}",
                hint="uninstall one of the two plugins",
            )
        found[ep.name] = ep
    return {name: _load(found[name]) for name in sorted(found)}


def _load(ep: EntryPoint) -> Tool:
    try:
        cls = ep.load()
    except Exception as error:  # a broken plugin must name itself, whatever it raised
        raise ToolError(
            f"tool plugin '{ep.name}' ({ep.value}) failed to load: {error}",
            hint="fix or uninstall the plugin",
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, Tool)):
        raise ToolError(f"tool plugin '{ep.name}' ({ep.value}) is not a corral.tools.Tool subclass")
    if getattr(cls, "name", None) != ep.name:
        raise ToolError(
            f"tool plugin '{ep.name}' ({ep.value}) calls itself {getattr(cls, 'name', None)!r}",
            hint="the entry-point name and the class's `name` must match",
        )
    tool: Tool = cls()
    return tool


def get_tool(name: str) -> Tool:
    """The tool registered as `name`; ToolError with a did-you-mean when there is none."""
    tools = all_tools()
    tool = tools.get(name)
    if tool is not None:
        return tool
    close = difflib.get_close_matches(name, list(tools), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known tools: {', '.join(tools)}"
    raise ToolError(f"unknown tool '{name}'", hint=hint)
