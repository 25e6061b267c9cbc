"""The tables of the run history at the newest revision (the migrations build the same).

No foreign keys on purpose: the writer must be able to store a run's events even when
the run's own row could not be written yet, and deletion is explicit (`delete_runs`).
Money is exact decimal text (`Money`); timestamps are POSIX seconds (UTC).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.types import TypeDecorator

from corral.models import TOKEN_COLUMN_NAMES
from corral.store.revision import HEAD_REVISION  # noqa: F401  # re-exported: migrations and tests read it here


class Money(TypeDecorator[Decimal]):
    """A Decimal stored as its exact text, so no engine rounds it through a float."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


metadata = MetaData()


def token_columns() -> list[Column[Any]]:
    """The usage columns every accounting table carries (fresh copies per table)."""
    return [
        *(
            Column(name, BigInteger, nullable=False, server_default="0")
            for name in TOKEN_COLUMN_NAMES
        ),
        Column("cost_usd", Money, nullable=True),
        Column("cost_source", String(16), nullable=True),
    ]


runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_name", Text, nullable=False),
    Column("flow_path", Text, nullable=False),
    Column("flow_content", Text, nullable=False, server_default=""),
    Column("flow_hash", String(128), nullable=False, server_default=""),
    Column("args", Text, nullable=False, server_default="[]"),
    Column("user", Text, nullable=False, server_default=""),
    Column("host", Text, nullable=False, server_default=""),
    Column("log_root", Text, nullable=False, server_default=""),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("resumed_from", String(64), nullable=True),
    # a rehearsal's spend is simulated: `corral usage` leaves it out (migration 0004)
    Column("rehearsal", Boolean, nullable=False, server_default=false()),
    *token_columns(),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_flow_name", "flow_name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("reason", Text, nullable=True),
    # `corral runs` counts each run's jobs by status: an index-only scan
    Index("ix_jobs_run_status", "run_id", "status"),
)

# a finished run's jobs counted by status, `{"succeeded": 3, ...}`: `corral runs` reads
# one row a run instead of counting its jobs; written with the run's end, deleted by any
# later write of its jobs (corral.store.jobcounts, migration 0005)
run_job_counts = Table(
    "run_job_counts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("counts", Text, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job", Text, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("signal", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_kind", String(32), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("argv", Text, nullable=False, server_default="[]"),
    Column("spec", Text, nullable=True),
    Column("tool", String(64), nullable=False, server_default="generic"),
    Column("model", Text, nullable=True),
    Column("session_id", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("outputs", Text, nullable=True),
    Column("log_dir", Text, nullable=False, server_default=""),
    Column("unparsed_lines", Integer, nullable=False, server_default="0"),
    *token_columns(),
    Index("ix_attempts_status", "status"),
)

# one row per (attempt, model): what `corral usage` reads, never the raw events;
# flow_name and day are copied in so that every grouping is a single-table scan
job_models = Table(
    "job_models",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job", Text, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("tool", String(64), nullable=False),
    Column("flow_name", Text, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("day", String(10), nullable=False),
    *token_columns(),
    Index("ix_job_models_ended_at", "ended_at"),
)

# append-only; JobOutput is never stored here (the log files hold every byte)
events = Table(
    "events",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("job", Text, nullable=False, server_default=""),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("payload", Text, nullable=False),
)
