"""Per-model usage rows (what `corral usage` reads) and the indexes of the queries.

Databases written by 0001 kept per-model usage only inside the `job.finished` event
payloads: this revision backfills job_models from them. The rules are copied here, not
imported, so that later changes to the writer cannot change what this revision did.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from corral.store.schema import Money

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNATTRIBUTED = "(unattributed)"
_TOKENS = {
    "input_tokens": ("input_tokens",),
    "output_tokens": ("output_tokens",),
    "cache_read_tokens": ("cache_read_tokens",),
    "cache_write_tokens": ("cache_write_5m_tokens", "cache_write_1h_tokens"),
    "reasoning_tokens": ("reasoning_tokens",),
    "tool_calls": ("tool_calls",),
}


def _table() -> sa.Table:
    return sa.Table(
        "job_models",
        sa.MetaData(),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("job", sa.Text, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("flow_name", sa.Text, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("tool_calls", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost_usd", Money, nullable=True),
        sa.Column("cost_source", sa.String(16), nullable=True),
        sa.Index("ix_job_models_ended_at", "ended_at"),
    )


def _rows(payload: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    by_model: dict[str, dict[str, int]] = payload.get("by_model") or {}
    cost = payload.get("cost") or None
    by_cost = {m: Decimal(v) for m, v in (payload.get("cost_by_model") or {}).items()}
    source = cost["source"] if cost else "unpriced"
    usd = Decimal(cost["usd"]) if cost and cost.get("usd") is not None else None
    rows = []
    for model, usage in by_model.items():
        row = dict(base, model=model, cost_source=source, cost_usd=None)
        for column, names in _TOKENS.items():
            row[column] = sum(int(usage.get(n, 0) or 0) for n in names)
        if model in by_cost:
            row["cost_usd"] = by_cost[model]
            row["cost_source"] = "estimated" if source == "unpriced" else source
        elif by_cost or usd is None:
            row["cost_source"] = "unpriced"
        elif len(by_model) == 1:
            row["cost_usd"] = usd
        rows.append(row)
    rest = None if usd is None else usd - sum(by_cost.values(), Decimal(0))
    if rest and not (len(by_model) == 1 and not by_cost):
        zero = dict.fromkeys(_TOKENS, 0)
        rows.append(dict(base, **zero, model=UNATTRIBUTED, cost_usd=rest, cost_source=source))
    return rows


def upgrade() -> None:
    table = _table()
    table.create(op.get_bind())
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_flow_name", "runs", ["flow_name"])
    op.create_index("ix_attempts_status", "attempts", ["status"])
    bind = op.get_bind()
    found = bind.execute(
        sa.text(
            "SELECT e.run_id, e.job, e.attempt, e.payload, r.flow_name, a.ended_at, e.ts "
            "FROM events e JOIN runs r ON r.id = e.run_id "
            "LEFT JOIN attempts a ON a.run_id = e.run_id AND a.job = e.job "
            "AND a.attempt = e.attempt WHERE e.kind = 'job.finished'"
        )
    )
    rows: list[dict[str, Any]] = []
    for run_id, job, attempt, payload, flow_name, ended_at, ts in found:
        when = float(ended_at if ended_at is not None else ts)
        day = time.strftime("%Y-%m-%d", time.gmtime(when))
        base = {
            "run_id": run_id,
            "job": job,
            "attempt": attempt,
            "flow_name": flow_name,
            "ended_at": when,
            "day": day,
        }
        data = json.loads(payload)
        rows.extend(_rows(data, dict(base, tool=data.get("tool") or "generic")))
    if rows:
        bind.execute(table.insert(), rows)


def downgrade() -> None:
    op.drop_index("ix_attempts_status", "attempts")
    op.drop_index("ix_runs_flow_name", "runs")
    op.drop_index("ix_runs_started_at", "runs")
    op.drop_table("job_models")
