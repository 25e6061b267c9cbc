"""`corral resume RUN`: finish an interrupted or failed run.

Succeeded jobs are not run again: their recorded results feed their dependents'
templates and conditions as before. Failed, cancelled, timed-out, skipped and
never-started jobs run. Budgets count what the earlier run already spent. Before
anything starts, processes the dead run left running are stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.budget.accounting import Ledger
from corral.config.loader import LoadedFlow, load_flow, load_text
from corral.errors import FlowError
from corral.models import Cost, CostSource, JobStatus, Usage
from corral.plan import JobView, Plan, build_plan, without
from corral.store import JobRecord, RunningJob, RunRecord, Store, open_store
from corral.store.records import AttemptRow


@dataclass(frozen=True)
class Resumed:
    run_id: str
    loaded: LoadedFlow
    plan: Plan
    known: dict[str, JobView]
    base_dir: Path
    kept: tuple[str, ...]

    def seed(self, ledger: Ledger, record: RunRecord) -> None:
        seed_ledger(ledger, record)


def prepare_resume(
    run_id: str, *, store_url: str | None, directory: Path, echo: Callable[[str], None]
) -> tuple[Resumed, RunRecord]:
    store = open_store(store_url, directory / ".corral" / "corral.db")
    try:
        record = store.get_run(run_id)
        reaped = reap(store.running_jobs(record.run.id))
    finally:
        store.close()
    for job in reaped:
        echo(f"stopped job '{job.job}' of run {record.run.id} (process group {job.pgid})")
    loaded = _flow(record, echo)
    plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    kept = tuple(
        j.name for j in record.jobs if j.status is JobStatus.SUCCEEDED and j.name in plan.jobs
    )
    known = {j.name: view_of(j) for j in record.jobs if j.status is JobStatus.SUCCEEDED}
    remaining = without(plan, kept)
    if not remaining.jobs:
        echo(f"run {record.run.id}: every job already succeeded; nothing to resume")
    elif kept:
        count = len(remaining.jobs)
        echo(f"resuming run {record.run.id}: keeping {len(kept)} succeeded job(s), running {count}")
    base_dir = Path(record.run.flow_path).parent
    return Resumed(record.run.id, loaded, remaining, known, base_dir, kept), record


def _flow(record: RunRecord, echo: Callable[[str], None]) -> LoadedFlow:
    """The flow as it was run: the file if unchanged, else the content stored with the run."""
    path = Path(record.run.flow_path)
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode()).hexdigest() == record.flow_hash:
            return load_flow(path)
        echo(f"{path} changed since run {record.run.id}; resuming with the version stored then")
    elif record.flow_content:
        echo(f"{path} is gone; resuming with the version stored with run {record.run.id}")
    if not record.flow_content:
        raise FlowError([])  # pragma: no cover  # every run stores its flow
    return load_text(record.flow_content, path, f"{path} (as of run {record.run.id})")


def view_of(job: JobRecord) -> JobView:
    final = job.final
    tokens = job.tokens
    cost = job.cost
    return JobView(
        status=job.status,
        result=final.result if final else None,
        exit_code=final.exit_code if final else None,
        session_id=final.session_id if final else None,
        usage=Usage(
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=tokens.cache_read,
            cache_write_5m_tokens=tokens.cache_write,
            reasoning_tokens=tokens.reasoning,
            tool_calls=tokens.tool_calls,
        ),
        cost_usd=float(cost.usd) if cost is not None and cost.usd is not None else None,
        outputs=dict(final.outputs or {}) if final else {},
    )


def seed_ledger(ledger: Ledger, record: RunRecord) -> None:
    """Put the earlier run's spend in the ledger, so budgets count it.

    Earlier attempts are recorded under attempt numbers 0, -1, ... so the new run's
    attempts (1, 2, ...) stay apart while the job's and the run's totals include both.
    """
    for job in record.jobs:
        ledger.set_tool(job.name, job.final.tool if job.final else "generic")
        for index, attempt in enumerate(job.attempts):
            by_model, cost = _attempt_usage(attempt)
            if by_model:
                ledger.record(job.name, -index, by_model, cost=cost)


def _attempt_usage(attempt: AttemptRow) -> tuple[dict[str, Usage], Cost | None]:
    by_model = {
        m.model: Usage(
            input_tokens=m.tokens.input,
            output_tokens=m.tokens.output,
            cache_read_tokens=m.tokens.cache_read,
            cache_write_5m_tokens=m.tokens.cache_write,
            reasoning_tokens=m.tokens.reasoning,
            tool_calls=m.tokens.tool_calls,
        )
        for m in attempt.models
    }
    cost = (
        attempt.cost
        if attempt.cost is not None and attempt.cost.source is CostSource.REPORTED
        else None
    )
    return by_model, cost


def reap(running: list[RunningJob], grace: float = 5.0) -> list[RunningJob]:
    """Stop the process groups a dead run recorded as running; return those that existed."""
    alive = [job for job in running if _group_exists(job.pgid)]
    for job in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_exists(j.pgid) for j in alive):
        time.sleep(0.05)
    for job in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pgid, signal.SIGKILL)
    return alive


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["Resumed", "Store", "prepare_resume", "reap", "seed_ledger"]
