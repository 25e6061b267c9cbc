"""Turn CorralError into one line on stderr and its exit code; leave bugs their traceback.

A database error that reaches this edge (a damaged SQLite file read by any command) is
the store's fault, not a bug: one line and exit 3, never a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from corral.errors import EXIT_STORE, CorralError


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
    except Exception as error:
        message = store_failure(error)
        if message is None:
            raise  # a bug: its traceback
        click.echo(f"corral: error: {message}", err=True)
        sys.exit(EXIT_STORE)
    sys.exit(result if isinstance(result, int) else 0)


def store_failure(error: BaseException) -> str | None:
    """One line for a database error (the history is damaged or unreachable), else None."""
    import sqlite3

    reason: BaseException | None = None
    if "sqlalchemy" in sys.modules:
        from sqlalchemy import exc

        if isinstance(error, exc.DatabaseError):
            reason = error.orig if error.orig is not None else error
    if isinstance(error, sqlite3.DatabaseError):
        reason = error
    if reason is None:
        return None
    first = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
    return (
        f"cannot read the run history: {first} (if its SQLite file is damaged, move "
        "`.corral/corral.db` aside and corral starts a new one; or give --store)"
    )
