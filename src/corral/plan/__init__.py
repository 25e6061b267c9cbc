"""The planning layer: a flow becomes a validated DAG of jobs, and the pure rules a
scheduler applies to it (conditions, templates, retries, ready order, outputs).

Nothing here touches the clock, the disk or the network: a job's output is read through
the `OutputReader` its executor gives.

What only some flows or commands use (matrices, `outputs`, `corral plan`'s drawings) is
imported on first use (PEP 562): `corral exec` never loads it.
"""

import importlib
import typing

from corral.errors import TemplateError
from corral.plan.build import build_plan
from corral.plan.conditions import DEFAULT_CONDITION, Condition, Decision, compile_condition, decide
from corral.plan.contexts import RunScope
from corral.plan.limits import max_spend, max_tokens
from corral.plan.model import Plan, PlannedJob, ReadyQueue, ready_key
from corral.plan.problems import Locator
from corral.plan.retry import RetryPolicy
from corral.plan.select import select, without
from corral.plan.templates import RunInfo, TemplateContext, render, render_job
from corral.plan.views import JobView

if typing.TYPE_CHECKING:
    from corral.plan.matrix import options as matrix_options
    from corral.plan.matrix import value_label
    from corral.plan.outputs import OutputReader, TextOutput, capture_outputs
    from corral.plan.show import render_text, render_tree, to_dot, to_json, to_mermaid

# name: (module, its name there)
_LAZY = {
    "matrix_options": ("corral.plan.matrix", "options"),
    "value_label": ("corral.plan.matrix", "value_label"),
    "OutputReader": ("corral.plan.outputs", "OutputReader"),
    "TextOutput": ("corral.plan.outputs", "TextOutput"),
    "capture_outputs": ("corral.plan.outputs", "capture_outputs"),
    "render_text": ("corral.plan.show", "render_text"),
    "render_tree": ("corral.plan.show", "render_tree"),
    "to_dot": ("corral.plan.show", "to_dot"),
    "to_json": ("corral.plan.show", "to_json"),
    "to_mermaid": ("corral.plan.show", "to_mermaid"),
}


def __getattr__(name: str) -> typing.Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'corral.plan' has no attribute {name!r}")
    module, attribute = where
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "DEFAULT_CONDITION",
    "Condition",
    "Decision",
    "JobView",
    "Locator",
    "OutputReader",
    "Plan",
    "PlannedJob",
    "ReadyQueue",
    "RetryPolicy",
    "RunInfo",
    "RunScope",
    "TemplateContext",
    "TemplateError",
    "TextOutput",
    "build_plan",
    "capture_outputs",
    "compile_condition",
    "decide",
    "matrix_options",
    "max_spend",
    "max_tokens",
    "ready_key",
    "render",
    "render_job",
    "render_text",
    "render_tree",
    "select",
    "to_dot",
    "to_json",
    "to_mermaid",
    "value_label",
    "without",
]
