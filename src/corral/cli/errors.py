"""Turn CorralError into one line on stderr and its exit code; leave bugs their traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from corral.errors import CorralError


def run_cli(group: click.Group, args: list[str]) -> NoReturn:
    try:
        # commands return their exit code; click returns it (or Exit's code) unchanged
        result = group.main(args=args, prog_name="corral", standalone_mode=False)
    except CorralError as error:
        from corral.redact import strip_url_passwords

        for line in error.lines():
            # an error may quote a --store URL: never print its password
            click.echo(f"corral: error: {strip_url_passwords(line)}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # the reader went away (`corral runs | head`): not an error worth a traceback
        sys.stderr.close()
        sys.exit(result if isinstance(result, int) else 0)
    sys.exit(result if isinstance(result, int) else 0)
