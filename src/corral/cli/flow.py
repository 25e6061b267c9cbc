"""`corral validate`, `corral schema` and `corral plan`: look at a flow without running it."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson


@click.command("validate")
@click.argument("flows", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when the flow is valid.")
def validate_command(flows: tuple[str, ...], quiet: bool) -> int:
    """Check FLOWS (schema, graph, conditions, templates, tools) without running them.

    Every problem is printed as FILE:LINE:COL: PATH: MESSAGE; exit 2 if any. Warnings
    (a `shell: true` command built from job results, `unsafe_raw`, a `prompt:` with no
    tool, a `${VAR}` in `env` that is not set) go to stderr too, in the same form.
    """
    from corral.app.check import check_flow, flow_warnings
    from corral.errors import EXIT_USAGE, FlowError

    code = 0
    for flow in flows:
        try:
            loaded, plan = check_flow(flow)
        except FlowError as error:
            for line in error.lines():
                click.echo(line, err=True)
            code = EXIT_USAGE
            continue
        for warning in flow_warnings(loaded, plan):
            click.echo(str(warning), err=True)
        if not quiet:
            levels = len(plan.levels)
            click.echo(
                f"{flow}: ok ({len(plan.jobs)} jobs, {levels} level{'s' if levels != 1 else ''})"
            )
    return code


@click.command("schema")
def schema_command() -> int:
    """Print the JSON Schema of the flow file (for editor completion and checks)."""
    from corral.config.schema import json_schema

    sys.stdout.buffer.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2) + b"\n")
    return 0


@click.command("plan")
@click.argument("flow", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "mermaid", "dot", "json"]),
    default="tree",
    show_default=True,
)
@click.option("--only", multiple=True, metavar="JOB", help="Plan only JOB and what it needs.")
@click.option(
    "--from", "from_", multiple=True, metavar="JOB", help="Plan JOB and everything that needs it."
)
def plan_command(flow: str, fmt: str, only: tuple[str, ...], from_: tuple[str, ...]) -> int:
    """Show FLOW's order (levels), what runs in parallel, conditions, retries and the
    most it can spend; --format mermaid|dot|json exports the graph."""
    from corral.app.check import check_flow
    from corral.plan import render_tree, to_dot, to_json, to_mermaid

    loaded, plan = check_flow(flow, only=only, from_=from_)
    run_budget = loaded.spec.budget
    if fmt == "json":
        document: Any = to_json(plan, run_budget=run_budget)
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "mermaid":
        click.echo(to_mermaid(plan))
    elif fmt == "dot":
        click.echo(to_dot(plan))
    else:
        from rich.console import Console

        Console().print(render_tree(plan, title=loaded.name, run_budget=run_budget))
    return 0
