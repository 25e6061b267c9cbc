"""`corral policy check` and `corral policy input`: Rego policies against a flow."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
import orjson

from corral.cli.options import policy_option


def selection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--from", "from_", multiple=True, metavar="JOB", help="As `run --from JOB` would run it."
    )(function)
    return click.option(
        "--only", multiple=True, metavar="JOB", help="As `run --only JOB` would run it."
    )(function)


@click.group("policy")
def policy_command() -> None:
    """Rego policies (the OPA language) that a flow must pass before it runs.

    Policies given with --policy, named by the flow's `policy:` or by CORRAL_POLICY are
    checked by `corral run`, `rehearse`, `exec` and `resume` before anything starts.
    """


@policy_command.command("check", short_help="Check FLOW against the policies (exit 2 if denied).")
@click.argument("flow", type=click.Path(dir_okay=False))
@policy_option
@selection_options
@click.option("--json", "json_mode", is_flag=True, help="Print the verdict as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when the flow is allowed.")
def check_command(
    flow: str,
    policies: tuple[str, ...],
    only: tuple[str, ...],
    from_: tuple[str, ...],
    json_mode: bool,
    quiet: bool,
) -> int:
    """Evaluate the policies against FLOW as it would run (defaults applied, matrix
    expanded) and print each denial with the job it concerns and the rule that denied.

    Exit 0 when allowed (warnings are printed), 2 when any policy denies, when a
    policy is invalid, or when no policy applies.
    """
    from corral.app.check import check_flow
    from corral.app.policy import check_policies
    from corral.errors import EXIT_OK, EXIT_USAGE, UsageError

    loaded, plan = check_flow(flow, only=only, from_=from_)
    verdict = check_policies(loaded, plan, policies=policies)
    if verdict is None:
        raise UsageError(
            f"{flow}: no policy to check",
            hint="give --policy PATH, set CORRAL_POLICY, or add `policy:` to the flow",
        )
    show_prints(verdict.prints)
    if json_mode:
        sys.stdout.buffer.write(orjson.dumps(verdict.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for line in verdict.warning_lines() + verdict.denial_lines():
            click.echo(line, err=True)
        if not verdict.allowed:
            click.echo(verdict.summary(), err=True)
        elif not quiet:
            click.echo(verdict.summary())
    return EXIT_OK if verdict.allowed else EXIT_USAGE


@policy_command.command("input", short_help="Print the `input` document policies see for FLOW.")
@click.argument("flow", type=click.Path(dir_okay=False))
@selection_options
def input_command(flow: str, only: tuple[str, ...], from_: tuple[str, ...]) -> int:
    """Print the document policies see as `input` for FLOW (JSON), to write policies
    against."""
    from corral.app.check import check_flow
    from corral.policy import flow_input

    loaded, plan = check_flow(flow, only=only, from_=from_)
    document = flow_input(loaded, plan)
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def show_prints(prints: tuple[str, ...]) -> None:
    """What policies printed with `print(...)` (a debugging aid), on stderr."""
    for text in prints:
        click.echo(f"policy print: {text}", err=True)
