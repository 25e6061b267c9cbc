"""Agent CLI adapters: one module per CLI, registered through the `corral.tools` entry points."""

from corral.tools.base import Invocation, Tool
from corral.tools.registry import all_tools, get_tool

__all__ = ["Invocation", "Tool", "all_tools", "get_tool"]
