"""Rehearsal runs are marked (`runs.rehearsal`): their spend is simulated, so `corral usage`
leaves them out unless asked.

Runs recorded before this revision are marked from the command that started them, the
one trace a rehearsal left: `corral rehearse ...` or `corral run --rehearse ...`.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _was_rehearsal(args_text: str) -> bool:
    try:
        args = json.loads(args_text or "[]")
    except ValueError:
        return False
    if not isinstance(args, list) or not args:
        return False
    return args[0] == "rehearse" or (args[0] == "run" and "--rehearse" in args)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("rehearsal", sa.Boolean, nullable=False, server_default=sa.false())
        )
    bind = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("args", sa.Text),
                    sa.column("rehearsal", sa.Boolean))  # fmt: skip
    marked = [row.id for row in bind.execute(sa.select(runs.c.id, runs.c.args))
              if _was_rehearsal(row.args)]  # fmt: skip
    for start in range(0, len(marked), 500):
        chunk = marked[start : start + 500]
        bind.execute(sa.update(runs).where(runs.c.id.in_(chunk)).values(rehearsal=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("rehearsal")
