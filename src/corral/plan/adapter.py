"""Which tool runs a job: decided once, at plan time, and never guessed again later.

A `tool:` written on the job wins (`generic` means a plain command); a `run:` job is a
command whatever `defaults.tool` says; a `prompt:` without a tool runs DEFAULT_AGENT.
"""

from __future__ import annotations

from corral.config.fields import FlowFields, JobFields
from corral.plan.problems import Locator

# the adapter name of a plain command (a `run:` job): events and the history file such
# jobs under it
COMMAND_TOOL = "generic"
# the agent a job with a `prompt:` and no `tool:` runs
DEFAULT_AGENT = "claude"


def tool_of(spec: JobFields, *, inherited: bool) -> str | None:
    """The agent tool that runs a job, or None for a plain command.

    `inherited` says the job's `tool` came from `defaults` rather than from the job
    itself: a `run:` job is a command whatever `defaults.tool` says. A `tool:` written
    on the job wins (`generic` means a command); a `prompt:` without a tool runs
    DEFAULT_AGENT; a `run:` without a tool is a command.
    """
    tool = spec.tool
    if tool is not None and inherited and spec.run is not None:
        tool = None
    if tool is not None:
        return None if tool == COMMAND_TOOL else tool
    if spec.run is None and spec.prompt is not None:
        return DEFAULT_AGENT
    return None


def tool_inherited(flow: FlowFields, name: str, locate: Locator) -> bool:
    """Whether job `name` has its `tool` from `defaults` (the loader merges them in, so a
    tool the job does not write itself has no position of its own in the file)."""
    default = flow.defaults.get("tool")
    if default is None or name not in flow.jobs:
        return False
    own = flow.jobs[name]
    if "tool" not in own.model_fields_set:
        return True
    return own.tool == default and locate(("jobs", name, "tool")) is None
