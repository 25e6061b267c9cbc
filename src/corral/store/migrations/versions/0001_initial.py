"""Initial tables: runs, jobs, attempts and the append-only events."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.store.schema import Money

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tokens() -> list[sa.Column[object]]:
    return [
        sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tool_calls", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost_usd", Money, nullable=True),
        sa.Column("cost_source", sa.String(16), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("flow_name", sa.Text, nullable=False),
        sa.Column("flow_path", sa.Text, nullable=False),
        sa.Column("flow_content", sa.Text, nullable=False, server_default=""),
        sa.Column("flow_hash", sa.String(128), nullable=False, server_default=""),
        sa.Column("args", sa.Text, nullable=False, server_default="[]"),
        sa.Column("user", sa.Text, nullable=False, server_default=""),
        sa.Column("host", sa.Text, nullable=False, server_default=""),
        sa.Column("log_root", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("resumed_from", sa.String(64), nullable=True),
        *_tokens(),
    )
    op.create_table(
        "jobs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("job", sa.Text, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("signal", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("argv", sa.Text, nullable=False, server_default="[]"),
        sa.Column("spec", sa.Text, nullable=True),
        sa.Column("tool", sa.String(64), nullable=False, server_default="generic"),
        sa.Column("model", sa.Text, nullable=True),
        sa.Column("session_id", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("log_dir", sa.Text, nullable=False, server_default=""),
        sa.Column("unparsed_lines", sa.Integer, nullable=False, server_default="0"),
        *_tokens(),
    )
    op.create_table(
        "events",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("job", sa.Text, nullable=False, server_default=""),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("events", "attempts", "jobs", "runs"):
        op.drop_table(table)
