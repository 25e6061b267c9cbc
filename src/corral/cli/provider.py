"""`corral provider serve`: run the simulated model provider until interrupted."""

from __future__ import annotations

import shlex
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from corral.errors import EXIT_OK

if TYPE_CHECKING:
    from corral.provider import Scenario


@click.group(name="provider")
def provider_command() -> None:
    """The simulated model provider (Anthropic, OpenAI Responses and Chat Completions, and
    Gemini APIs)."""


@provider_command.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    metavar="ID=SPEC",
    help="Register a scenario under /s/ID: text[:TEXT], tool[:COMMAND], error:STATUS, "
    "slow[:SECONDS], hang, failed, big[:CHARS]. Repeatable.",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write each CLI's private HOME (default: a temporary folder).",
)
def serve_command(host: str, port: int, scenarios: tuple[str, ...], home: Path | None) -> int:
    """Serve until Ctrl-C, printing how to point each agent CLI at the provider."""
    from corral.provider import Scenario

    registered: dict[str, Scenario] = {}
    for option in scenarios:
        scenario_id, sep, spec = option.partition("=")
        try:
            if not sep or not scenario_id:
                raise ValueError("expected ID=SPEC")
            registered[scenario_id] = Scenario.parse(spec)
        except ValueError as error:
            raise click.BadParameter(f"{option!r}: {error}", param_hint="--scenario") from None

    if not _loopback(host):
        click.echo(
            f"corral provider: WARNING: --host {host} is reachable from other machines; "
            "the provider has no authentication and answers anyone who connects "
            "(use 127.0.0.1 unless you mean it)",
            err=True,
        )
    stop = threading.Event()

    def request_stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    # Both handlers go in before the first line is printed: a caller that signals as soon
    # as it has read the instructions must get the clean stop, not click's "Aborted.".
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _serve(host, port, registered, home, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _serve(
    host: str, port: int, registered: dict[str, Scenario], home: Path | None, stop: threading.Event
) -> None:
    from corral.provider import SimulatedProvider

    with tempfile.TemporaryDirectory(prefix="corral-provider-") as scratch:
        homes = home or Path(scratch)
        with SimulatedProvider(host, port, scenarios=registered) as provider:
            click.echo(f"corral provider: serving on {provider.url}")
            for scenario_id, scenario in registered.items():
                url = provider.scenario_url(scenario_id)
                click.echo(f"  scenario {scenario_id} ({scenario.kind}): {url}")
            click.echo(_instructions(provider.url, homes))
            click.echo("Ctrl-C stops the provider.", err=True)
            while not stop.wait(0.5):
                pass
        click.echo(f"corral provider: stopped after {len(provider.requests())} requests", err=True)


def _instructions(url: str, homes: Path) -> str:
    """Shell lines that run each CLI against `url`, each with its own prepared HOME
    (from its tool adapter's rehearsal hook, as `corral rehearse` uses it)."""
    from corral.config.schema import JobSpec
    from corral.tools import get_tool, rehearsal_for

    commands = {
        "claude": "claude -p 'say hello' --output-format json",
        "codex": "codex exec --json --skip-git-repo-check {args} 'say hello' < /dev/null",
        "gemini": "gemini -p 'say hello' --output-format json",
        "qwen": "qwen --output-format stream-json 'say hello' < /dev/null",
        "opencode": "opencode run --title --format json 'say hello' < /dev/null",
        "copilot": "copilot -p 'say hello' --output-format json < /dev/null",
    }
    lines = ["", "Point a CLI at it (append /s/<scenario-id> to the URL to pick a scenario):"]
    for tool, command in commands.items():
        rehearsal = rehearsal_for(get_tool(tool), JobSpec(), base_url=url, home=homes / tool)
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in rehearsal.env.items())
        args = " ".join(shlex.quote(arg) for arg in rehearsal.extra_args)
        lines += [f"  # {tool}", f"  env {env} \\", f"    {command.format(args=args)}"]
    return "\n".join(lines)


def _loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
