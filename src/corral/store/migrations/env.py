"""Alembic's entry point: migrate the connection `corral.store.engine.migrate` hands in.

The caller opens the transaction (BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL) so that two processes opening a new database at once migrate it once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from corral.store.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("corral migrations run through corral.store.engine.migrate")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run()
