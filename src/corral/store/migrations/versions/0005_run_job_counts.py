"""Each finished run's jobs counted by status, in one row (`run_job_counts`): `corral runs`
reads 50 rows instead of counting every job of the runs it lists.

The counts of the runs already recorded are filled in, except for runs still marked
running: one may be in progress in a process of an older corral, which would not drop
them when it writes its jobs; they are counted from their jobs, as before.
"""

from __future__ import annotations

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counts_table = op.create_table(
        "run_job_counts",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("counts", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("status", sa.String))
    jobs = sa.table("jobs", sa.column("run_id", sa.String), sa.column("status", sa.String))
    finished = [
        row.id for row in bind.execute(sa.select(runs.c.id).where(runs.c.status != "running"))
    ]
    grouped = sa.select(jobs.c.run_id, jobs.c.status, sa.func.count()).group_by(
        jobs.c.run_id, jobs.c.status
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for run_id, status, n in bind.execute(grouped):
        counts[run_id][status] = int(n)
    rows = [
        {
            "run_id": run_id,
            "counts": json.dumps(counts.get(run_id, {}), sort_keys=True, separators=(",", ":")),
        }
        for run_id in finished
    ]
    for start in range(0, len(rows), 500):
        op.bulk_insert(counts_table, rows[start : start + 500])


def downgrade() -> None:
    op.drop_table("run_job_counts")
