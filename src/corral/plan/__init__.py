"""The planning layer: a flow becomes a validated DAG of jobs, and the pure rules a
scheduler applies to it (conditions, templates, retries, ready order, outputs).

Nothing here touches the clock, the disk or the network: a job's output is read through
the `OutputReader` its executor gives.
"""

from corral.errors import TemplateError
from corral.plan.build import build_plan
from corral.plan.conditions import DEFAULT_CONDITION, Condition, Decision, compile_condition, decide
from corral.plan.contexts import RunScope
from corral.plan.limits import max_spend, max_tokens
from corral.plan.matrix import options as matrix_options
from corral.plan.matrix import value_label
from corral.plan.model import Plan, PlannedJob, ReadyQueue, ready_key
from corral.plan.outputs import OutputReader, TextOutput, capture_outputs
from corral.plan.problems import Locator
from corral.plan.retry import RetryPolicy
from corral.plan.select import select, without
from corral.plan.show import render_text, render_tree, to_dot, to_json, to_mermaid
from corral.plan.templates import RunInfo, TemplateContext, render, render_job
from corral.plan.views import JobView

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
