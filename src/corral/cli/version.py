"""`corral version`: what this copy of corral is, for a bug report."""

from __future__ import annotations

import sys

import click
import orjson


@click.command("version")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also the git commit, build date, artifact kind, Python and dependency versions.",
)
@click.option("--json", "json_mode", is_flag=True, help="Everything, as JSON on stdout.")
def version_command(verbose: bool, json_mode: bool) -> int:
    """Print corral's version; --verbose adds what a bug report needs."""
    from corral import __version__

    if not (verbose or json_mode):
        click.echo(f"corral {__version__}")
        return 0
    from corral.buildinfo import build_info

    info = build_info()
    if json_mode:
        sys.stdout.buffer.write(orjson.dumps(info.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        click.echo("\n".join(info.lines()))
    return 0
