"""Helpers shared by the store tests: backends (SQLite, PostgreSQL) and scripted runs.

Not a test module (it defines no tests); the store test modules import it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from corral.events.types import (
    AssistantText,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    RunFinished,
    RunStarted,
    SessionStarted,
    ToolCall,
    UsageUpdated,
)
from corral.models import Cost, CostSource, ErrorKind, JobStatus, RunStatus, Usage
from corral.store import SqlHistory, open_store
from corral.store.engine import create_store_engine

PG_ENV = "CORRAL_TEST_PG_URL"
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]
# a SQLite file is read and written through sqlite3; "sqlite-sqlalchemy" goes through
# SQLAlchemy instead, as PostgreSQL does, so both drivers run every statement
DRIVER_BACKENDS = [*BACKENDS, "sqlite-sqlalchemy"]


def pg_url_or_skip() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f'{PG_ENV} is not set: start a server with `eval "$(scripts/pg.sh start)"`')
    return url


def fresh_pg_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database next to `admin_url`'s; returns (url, name)."""
    name = f"corral_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, name


def drop_pg_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of `backend`, dropped afterwards."""
    if backend.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / '.corral' / 'corral.db'}"
        return
    admin = pg_url_or_skip()
    url, name = fresh_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(admin, name)


def make_store(backend: str, tmp_path: Path, *, migrate: bool = True) -> Iterator[SqlHistory]:
    for url in backend_url(backend, tmp_path):
        driver = "sqlalchemy" if backend == "sqlite-sqlalchemy" else "auto"
        store = open_store(url, tmp_path / "unused.db", migrate=migrate, driver=driver)
        try:
            yield store
        finally:
            store.close()


def unmigrated(url: str) -> SqlHistory:
    return SqlHistory(create_store_engine(url))


# -- scripted runs -----------------------------------------------------------------------------

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def sonnet(n: int = 1) -> Usage:
    return Usage(
        input_tokens=100 * n,
        output_tokens=20 * n,
        cache_read_tokens=1000 * n,
        cache_write_5m_tokens=50 * n,
        cache_write_1h_tokens=5 * n,
        reasoning_tokens=3 * n,
        tool_calls=2 * n,
        turns=1,
    )


def scripted_run(
    run_id: str = "run-aaaa1111",
    *,
    flow: str = "review",
    started: float = T0,
    log_root: str = "/logs/run-aaaa1111",
    finish: bool = True,
) -> list[Event]:
    """A run of four jobs: `analyze` (claude, retried once), `tests` (codex, priced by
    corral), `lint` (a command that fails), `report` (skipped); plus live agent events."""
    jobs = ("analyze", "tests", "lint", "report")
    events: list[Event] = [
        RunStarted(
            run_id=run_id,
            flow_name=flow,
            flow_path=f"flows/{flow}.yaml",
            jobs=jobs,
            started_at=started,
            flow_hash="sha256:abc",
            flow_content="version: 1\n",
            args=("--concurrency", "2"),
            user="dev",
            host="box",
            log_root=log_root,
        )
    ]

    def start(job: str, attempt: int, tool: str, at: float, model: str | None = None) -> None:
        log_dir = f"{log_root}/{job}" + (f"/attempt-{attempt}" if attempt > 1 else "")
        events.append(
            JobStarted(
                job=job,
                attempt=attempt,
                pid=4000 + len(events),
                argv=(tool, "-p", job),
                log_dir=log_dir,
                started_at=at,
                tool=tool,
                model=model,
                spec={"prompt": f"do {job}", "timeout": 60},
            )
        )

    start("analyze", 1, "claude", started + 1)
    events += [
        SessionStarted(job="analyze", attempt=1, session_id="s-1", model="claude-sonnet-4-5"),
        JobOutput(job="analyze", attempt=1, stream="stdout", text="{}", offset=0),
        AssistantText(job="analyze", attempt=1, text="looking"),
        UsageUpdated(job="analyze", attempt=1, by_model={"claude-sonnet-4-5": sonnet()}),
        JobFinished(
            job="analyze",
            attempt=1,
            status=JobStatus.FAILED,
            exit_code=1,
            signal=None,
            duration_s=4.0,
            error="rate limited",
            error_kind=ErrorKind.RATE_LIMIT,
            tool="claude",
            by_model={"claude-sonnet-4-5": sonnet()},
            cost=Cost(Decimal("0.010000"), CostSource.REPORTED),
            cost_by_model={"claude-sonnet-4-5": Decimal("0.010000")},
        ),
        JobRetrying(job="analyze", attempt=1, delay_s=1.0, reason="rate limit"),
    ]
    start("analyze", 2, "claude", started + 6)
    events += [
        ToolCall(job="analyze", attempt=2, name="Read", call_id="c1"),
        JobFinished(
            job="analyze",
            attempt=2,
            status=JobStatus.SUCCEEDED,
            exit_code=0,
            signal=None,
            duration_s=5.0,
            result="three findings",
            tool="claude",
            session_id="s-2",
            outputs={"summary": "ok"},
            by_model={"claude-sonnet-4-5": sonnet(2), "claude-haiku-4-5": sonnet(1)},
            cost=Cost(Decimal("0.030000"), CostSource.REPORTED),
            cost_by_model={
                "claude-sonnet-4-5": Decimal("0.025000"),
                "claude-haiku-4-5": Decimal("0.005000"),
            },
        ),
    ]
    start("tests", 1, "codex", started + 12, model="gpt-5-codex")
    start("lint", 1, "generic", started + 12)
    events += [
        JobFinished(
            job="tests",
            attempt=1,
            status=JobStatus.SUCCEEDED,
            exit_code=0,
            signal=None,
            duration_s=8.0,
            tool="codex",
            by_model={"gpt-5-codex": sonnet(3), "mystery-model": sonnet(1)},
            cost=Cost(Decimal("0.0125"), CostSource.UNPRICED),
            cost_by_model={"gpt-5-codex": Decimal("0.0125")},
        ),
        JobFinished(
            job="lint",
            attempt=1,
            status=JobStatus.FAILED,
            exit_code=2,
            signal=None,
            duration_s=0.5,
            error="exit status 2",
            error_kind=ErrorKind.EXIT,
            tool="generic",
        ),
        JobSkipped(job="report", reason="needs lint, which failed"),
    ]
    if finish:
        events.append(
            RunFinished(run_id=run_id, status=RunStatus.FAILED, ended_at=started + 30, error=None)
        )
    return events


def clock_from(start: float, step: float = 0.5) -> object:
    """A fake clock for the writer's event timestamps: start, start+step, ..."""
    state = {"now": start - step}

    def now() -> float:
        state["now"] += step
        return state["now"]

    return now
