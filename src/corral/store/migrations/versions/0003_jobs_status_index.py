"""An index on jobs (run_id, status): `corral runs` counts each listed run's jobs by status.

Without it the count reads every job row of the runs shown (a run may have 50,000); with
it the count is an index-only scan.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_run_status", "jobs", ["run_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_run_status", "jobs")
