"""Showing a plan: a terminal tree, Mermaid (renders on GitHub), Graphviz DOT, and JSON."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from corral.models import BudgetAction, BudgetLimits
from corral.plan.limits import Limits, max_spend
from corral.plan.model import Plan, PlannedJob

if TYPE_CHECKING:  # rich loads when a tree is drawn, not for every command that plans
    from rich.tree import Tree

SCHEMA_VERSION = 2  # 2: `level` counts from 1, as the tree and `validate` do
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _money(value: Decimal) -> str:
    # a plan shows whole cents with thousands separators: budgets, not measured spend
    return f"${value:,.2f}"


def _max_spend(plan: Plan) -> Decimal | None:
    return max_spend(plan.budget, plan.job_budgets())


def _budget(budget: Limits | None) -> str:
    if budget is None:
        return ""
    parts = []
    if budget.usd is not None:
        parts.append(_money(budget.usd))
    if budget.tokens is not None:
        parts.append(f"{budget.tokens:,} tokens")
    return " / ".join(parts) + (f" ({budget.on_exceed})" if parts else "")


def _what(job: PlannedJob) -> str:
    spec = job.spec
    if spec.run is not None:
        command = spec.run if isinstance(spec.run, str) else " ".join(spec.run)
        command = " ".join(command.split())
        return "run: " + (command if len(command) <= 40 else command[:39] + "…")
    return " · ".join(p for p in (job.tool or "agent", spec.model) if p)


def _needs_label(plan: Plan, job: PlannedJob) -> str:
    """Needs, with a whole matrix job shown once, as its name and its size."""
    sizes: dict[str, int] = {}
    for other in plan.jobs.values():
        sizes[other.group] = sizes.get(other.group, 0) + 1
    shown: list[str] = []
    counted: dict[str, int] = {}
    for need in job.needs:
        counted[plan.jobs[need].group] = counted.get(plan.jobs[need].group, 0) + 1
    for need in job.needs:
        group = plan.jobs[need].group
        if group != need and counted[group] == sizes[group] and sizes[group] > 1:
            label = f"{group}×{sizes[group]}"
            if label not in shown:
                shown.append(label)
        else:
            shown.append(need)
    return ", ".join(shown)


def _details(plan: Plan, job: PlannedJob) -> list[str]:
    spec = job.spec
    parts = []
    if job.needs:
        parts.append("needs " + _needs_label(plan, job))
    if job.external_needs:
        parts.append("done before: " + ", ".join(job.external_needs))
    if not job.condition.is_default:
        parts.append(f"if {job.condition.expression}")
    if spec.continue_on_error:
        parts.append("continue on error")
    if job.retry.retries:
        parts.append(f"retries {job.retry.retries}")
    if job.budget is not None:
        parts.append("budget " + _budget(job.budget))
    if job.priority:
        parts.append(f"priority {job.priority}")
    return parts


def _headline(plan: Plan) -> list[str]:
    parts = [f"flow {plan.name}" if plan.name else "flow"]
    parts.append(f"{len(plan.jobs)} job{'s' * (len(plan.jobs) != 1)}")
    parts.append(f"{len(plan.levels)} level{'s' * (len(plan.levels) != 1)}")
    if plan.budget is not None:
        parts.append("budget " + _budget(plan.budget))
    if any(job.is_agent for job in plan.jobs.values()):
        spend = _max_spend(plan)
        parts.append("max spend " + (_money(spend) if spend is not None else "unbounded"))
    else:  # "unbounded" would alarm for a flow that calls no model at all
        parts.append("no agent jobs")
    return parts


def _override(plan: Plan, title: str | None, run_budget: Limits | None) -> Plan:
    # the loader may know a better title (the file name) than the flow's `name:`
    if title is None and run_budget is None:
        return plan
    budget = _limits(run_budget) if run_budget is not None else plan.budget
    return dataclasses.replace(plan, name=title or plan.name, budget=budget)


def _limits(budget: Limits) -> BudgetLimits:
    return BudgetLimits(budget.usd, budget.tokens, BudgetAction(budget.on_exceed))


def render_tree(plan: Plan, *, title: str | None = None, run_budget: Limits | None = None) -> Tree:
    """A rich Tree: one branch per level (what runs in parallel), one leaf per job.

    `title` and `run_budget` override the plan's own `name` and `budget` when given.
    """
    plan = _override(plan, title, run_budget)
    from rich.text import Text
    from rich.tree import Tree

    from corral.render.fit import Parts

    # laid out to the width it is shown at, broken only between its parts
    tree = Tree(Parts(_headline(plan), style="bold"))
    for number, level in enumerate(plan.levels, start=1):
        size = len(level)
        title = f"level {number}" + (f" · {size} in parallel" if size > 1 else "")
        branch = tree.add(Text(title, style="cyan"))
        for name in level:
            job = plan.jobs[name]
            head = Text(name, style="bold")
            head.append(f"  {_what(job)}", style="dim")
            # the details break onto the next lines between two of them, not mid-phrase
            branch.add(Parts([head, *_details(plan, job)], first_separator="  "))
    return tree


def render_text(plan: Plan, *, width: int = 100) -> str:
    """The tree as plain text (for logs, tests and `--no-color`)."""
    buffer = io.StringIO()
    from rich.console import Console

    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(
        render_tree(plan)
    )
    return buffer.getvalue()


def _ids(names: list[str], prefix: str) -> dict[str, str]:
    """Identifiers safe in Mermaid and DOT, unique even when two names sanitize alike."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = prefix + _ID_UNSAFE.sub("_", name)
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        ids[name] = candidate
    return ids


def _mermaid_text(text: str) -> str:
    # entity codes, `#` first; a quote or a bracket would otherwise end the label
    for raw, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


def _node_lines(plan: Plan, job: PlannedJob) -> list[str]:
    lines = [job.name]
    if not job.condition.is_default:
        lines.append(f"if {job.condition.expression}")
    return lines


def _groups(plan: Plan) -> Iterator[tuple[str, list[PlannedJob]]]:
    groups: dict[str, list[PlannedJob]] = {}
    for job in plan.jobs.values():
        groups.setdefault(job.group, []).append(job)
    yield from groups.items()


def to_mermaid(plan: Plan) -> str:
    """A Mermaid flowchart (top-down, edges from a need to the job that needs it)."""
    ids = _ids([*plan.jobs, *sorted(plan.external_needs)], "j_")
    group_ids = _ids([g for g, _ in _groups(plan)], "g_")
    out = ["flowchart TD"]
    for name in sorted(plan.external_needs):
        out.append(f'  {ids[name]}(["{_mermaid_text(name)} (done)"])')
    for group, members in _groups(plan):
        matrix = members[0].matrix is not None
        indent = "    " if matrix else "  "
        if matrix:
            out.append(f'  subgraph {group_ids[group]}["{_mermaid_text(group)}"]')
        for job in members:
            label = "<br/>".join(_mermaid_text(line) for line in _node_lines(plan, job))
            out.append(f'{indent}{ids[job.name]}["{label}"]')
        if matrix:
            out.append("  end")
    for job in plan.jobs.values():
        for need in job.needs:
            out.append(f"  {ids[need]} --> {ids[job.name]}")
        for need in job.external_needs:
            out.append(f"  {ids[need]} -.-> {ids[job.name]}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(plan: Plan) -> str:
    """Graphviz DOT; matrix jobs are drawn as clusters."""
    out = [f"digraph {_dot_text(plan.name or 'flow')} {{", "  rankdir=TB;", "  node [shape=box];"]
    for name in sorted(plan.external_needs):
        out.append(f"  {_dot_text(name)} [style=dashed, label={_dot_text(name + ' (done)')}];")
    for group, members in _groups(plan):
        matrix = members[0].matrix is not None
        indent = "    " if matrix else "  "
        if matrix:
            out.append(f"  subgraph {_dot_text('cluster_' + group)} {{")
            out.append(f"    label={_dot_text(group)};")
        for job in members:
            label = _dot_text("\n".join(_node_lines(plan, job)))
            out.append(f"{indent}{_dot_text(job.name)} [label={label}];")
        if matrix:
            out.append("  }")
    for job in plan.jobs.values():
        for need in job.needs:
            out.append(f"  {_dot_text(need)} -> {_dot_text(job.name)};")
        for need in job.external_needs:
            out.append(f"  {_dot_text(need)} -> {_dot_text(job.name)} [style=dashed];")
    out.append("}")
    return "\n".join(out) + "\n"


def _budget_json(budget: Limits | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    usd = None if budget.usd is None else str(budget.usd)
    return {"usd": usd, "tokens": budget.tokens, "on_exceed": str(budget.on_exceed)}


def to_json(plan: Plan, *, run_budget: Limits | None = None) -> dict[str, Any]:
    """A machine-readable plan. Keys are a contract: bump SCHEMA_VERSION to change them.

    Money is a decimal string ("4.00"), as everywhere in corral's JSON.
    """
    plan = _override(plan, None, run_budget)
    # levels count from 1 everywhere (the tree's "level 1", the docs): levels[level - 1]
    level_of = {name: n for n, level in enumerate(plan.levels, start=1) for name in level}
    jobs = []
    for job in plan.jobs.values():
        spec = job.spec
        jobs.append(
            {
                "name": job.name,
                "group": job.group,
                "level": level_of[job.name],
                "needs": list(job.needs),
                "external_needs": list(job.external_needs),
                "matrix": None if job.matrix is None else dict(job.matrix),
                "if": None if job.condition.is_default else job.condition.expression,
                "continue_on_error": spec.continue_on_error,
                "priority": job.priority,
                "retries": job.retry.retries,
                "retry_on": None if spec.retry_on is None else list(spec.retry_on),
                "tool": job.tool,
                "model": spec.model,
                "run": spec.run,
                "budget": _budget_json(job.budget),
            }
        )
    spend = _max_spend(plan)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": plan.name,
        "fail_fast": plan.fail_fast,
        "budget": _budget_json(plan.budget),
        "max_spend_usd": None if spend is None else str(spend),
        "levels": [list(level) for level in plan.levels],
        "external_needs": sorted(plan.external_needs),
        "jobs": jobs,
    }
