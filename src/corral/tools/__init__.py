"""Agent CLI adapters: one module per CLI, registered through the `corral.tools` entry points."""

from corral.tools.base import Invocation, Rehearsal, Tool, rehearsal_for
from corral.tools.registry import all_tools, get_tool

__all__ = ["Invocation", "Rehearsal", "Tool", "all_tools", "get_tool", "rehearsal_for"]
