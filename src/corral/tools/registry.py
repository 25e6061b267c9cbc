"""The tool registry: every adapter comes from the `corral.tools` entry-point group.

The built-in adapters are declared in corral's own package metadata, so they load
through the same hook as a third-party plugin; nothing here names them.
"""

from __future__ import annotations

import functools

from corral import plugins
from corral.errors import ToolError
from corral.tools.base import Tool

GROUP = plugins.TOOLS


@functools.cache
def all_tools() -> dict[str, Tool]:
    """Every registered tool by name, sorted. Loaded once per process."""
    return {name: _loaded(name) for name in plugins.entries(GROUP, ToolError)}


def names() -> list[str]:
    """Every registered tool's name, sorted, without importing any adapter."""
    return list(plugins.entries(GROUP, ToolError))


@functools.cache
def _loaded(name: str) -> Tool:
    # one adapter at a time: `corral exec -- true` imports the generic adapter only
    ep = plugins.entries(GROUP, ToolError)[name]
    return _instance(ep.name, plugins.load(ep, GROUP, _is_tool(ep.name), ToolError))


def _is_tool(name: str) -> plugins.Check:
    def check(value: object) -> str | None:
        if not (isinstance(value, type) and issubclass(value, Tool)):
            return "is not a corral.tools.Tool subclass"
        if getattr(value, "name", None) != name:
            return (
                f"calls itself {getattr(value, 'name', None)!r} (the entry-point name and "
                "the class's `name` must match)"
            )
        return None

    return check


def _instance(name: str, cls: object) -> Tool:
    assert isinstance(cls, type) and issubclass(cls, Tool)  # checked by `_is_tool`
    return cls()


def get_tool(name: str) -> Tool:
    """The tool registered as `name`; ToolError with a did-you-mean when there is none."""
    if name in plugins.entries(GROUP, ToolError):
        return _loaded(name)
    raise plugins.unknown(GROUP, name, names(), ToolError)
