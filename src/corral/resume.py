"""`corral resume RUN`: finish an interrupted or failed run.

Succeeded jobs are not run again: their recorded results feed their dependents'
templates and conditions as before. Failed, cancelled, timed-out, skipped and
never-started jobs run. Budgets count what the earlier run already spent. Before
anything starts, processes the dead run left running are stopped.

A resumed run records only the jobs it ran, so resuming it (after it was killed too)
follows its `resumed_from` chain: a job keeps the status of the newest run of the chain
that has it, and jobs an earlier run of the chain completed are kept as well.
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
from corral.errors import FlowError, NotFoundError, UsageError
from corral.events.types import RunFinished
from corral.execute.liveness import holder
from corral.models import Cost, CostSource, JobStatus, RunStatus, Usage
from corral.plan import JobView, Plan, build_plan, without
from corral.store import JobRecord, RunningJob, RunRecord, Store, StoreWriter, open_store
from corral.store.records import AttemptRow


@dataclass(frozen=True)
class Resumed:
    run_id: str
    loaded: LoadedFlow
    plan: Plan
    known: dict[str, JobView]
    base_dir: Path
    kept: tuple[str, ...]
    earlier: tuple[RunRecord, ...] = ()  # the runs it was resumed from, newest first

    def seed(self, ledger: Ledger, record: RunRecord) -> None:
        seed_ledger(ledger, record, self.earlier)


def prepare_resume(
    run_id: str, *, store_url: str | None, directory: Path, echo: Callable[[str], None]
) -> tuple[Resumed, RunRecord]:
    store = open_store(store_url, directory / ".corral" / "corral.db")
    try:
        record = store.get_run(run_id)
        earlier = _earlier_runs(store, record)
        for run in (record, *earlier):
            if (pid := holder(Path(run.run.log_root))) is not None:
                raise UsageError(
                    f"run {run.run.id} is still running (corral process {pid})",
                    hint="stop it with Ctrl-C or `kill -INT`, or wait for it, then resume",
                )
        run_ids = {record.run.id, *(run.run.id for run in earlier)}
        running = [job for run_id in run_ids for job in store.running_jobs(run_id)]
        reaped = reap(run_ids, running)
        _close_dead(store, (record, *earlier))
    finally:
        store.close()
    for line in reaped:
        echo(f"stopped {line}, left running by run {record.run.id}")
    loaded = _flow(record, echo)
    plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    latest = latest_jobs((record, *earlier))
    succeeded = [j for j in latest.values() if j.status is JobStatus.SUCCEEDED]
    kept = tuple(j.name for j in succeeded if j.name in plan.jobs)
    known = {j.name: view_of(j) for j in succeeded}
    remaining = without(plan, kept)
    if not remaining.jobs:
        echo(f"run {record.run.id}: every job already succeeded; nothing to resume")
    elif kept:
        count = len(remaining.jobs)
        echo(f"resuming run {record.run.id}: keeping {len(kept)} succeeded job(s), running {count}")
    base_dir = Path(record.run.flow_path).parent
    resumed = Resumed(record.run.id, loaded, remaining, known, base_dir, kept, earlier)
    return resumed, record


def _earlier_runs(store: Store, record: RunRecord) -> tuple[RunRecord, ...]:
    """The runs `record` was resumed from, newest first (up to one deleted by gc)."""
    chain: list[RunRecord] = []
    seen = {record.run.id}
    parent = record.run.resumed_from
    while parent and parent not in seen:
        try:
            earlier = store.get_run(parent)
        except NotFoundError:
            break
        chain.append(earlier)
        seen.add(earlier.run.id)
        parent = earlier.run.resumed_from
    return tuple(chain)


def latest_jobs(records: tuple[RunRecord, ...]) -> dict[str, JobRecord]:
    """Each job as recorded by the newest of `records` (newest first) that has it."""
    latest: dict[str, JobRecord] = {}
    for record in records:
        for job in record.jobs:
            latest.setdefault(job.name, job)
    return latest


def known_from_history(
    store_url: str | None, directory: Path, flow_path: Path, names: frozenset[str], scan: int = 20
) -> dict[str, JobView]:
    """The latest recorded success of each of `names` in this flow's earlier runs.

    `--from JOB` leaves JOB's needs out of the run; their results (for templates and
    conditions) come from the history when it has them.
    """
    has_history = store_url is not None or (directory / ".corral" / "corral.db").exists()
    if not names or not has_history:
        return {}
    store = open_store(store_url, directory / ".corral" / "corral.db")
    found: dict[str, JobView] = {}
    try:
        for row in store.list_runs(flow=str(flow_path.resolve()), limit=scan):
            for job in store.get_run(row.id).jobs:
                if (
                    job.name in names
                    and job.name not in found
                    and job.status is JobStatus.SUCCEEDED
                ):
                    found[job.name] = view_of(job)
            if len(found) == len(names):
                break
    finally:
        store.close()
    return found


def _close_dead(store: Store, runs: tuple[RunRecord, ...]) -> None:
    """Runs whose corral died are recorded as running forever: end them as cancelled."""
    dead = [r for r in runs if r.run.status is RunStatus.RUNNING]
    for run in dead:
        writer = StoreWriter(store, run_id=run.run.id)
        writer(
            RunFinished(
                run_id=run.run.id,
                status=RunStatus.CANCELLED,
                ended_at=time.time(),
                error="interrupted: corral stopped before the run ended (resumed)",
            )
        )
        writer.close()


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
        usage=tokens.to_usage(),
        cost_usd=float(cost.usd) if cost is not None and cost.usd is not None else None,
        outputs=dict(final.outputs or {}) if final else {},
    )


def seed_ledger(ledger: Ledger, record: RunRecord, earlier: tuple[RunRecord, ...] = ()) -> None:
    """Put the earlier runs' spend in the ledger, so budgets count it.

    Earlier attempts are recorded under attempt numbers 0, -1, ... so the new run's
    attempts (1, 2, ...) stay apart while the job's and the run's totals include both.
    `earlier` are the runs `record` was itself resumed from: their spend counts too.
    """
    for job in latest_jobs((record, *earlier)).values():
        ledger.set_tool(job.name, job.final.tool if job.final else "generic")
    index: dict[str, int] = {}
    for run in (record, *earlier):
        for job in run.jobs:
            for attempt in job.attempts:
                number = index[job.name] = index.get(job.name, 0) + 1
                by_model, cost = _attempt_usage(attempt)
                if by_model:
                    ledger.record(job.name, 1 - number, by_model, cost=cost)


def _attempt_usage(attempt: AttemptRow) -> tuple[dict[str, Usage], Cost | None]:
    by_model = {m.model: m.tokens.to_usage() for m in attempt.models}
    cost = (
        attempt.cost
        if attempt.cost is not None and attempt.cost.source is CostSource.REPORTED
        else None
    )
    return by_model, cost


def reap(run_ids: set[str], running: list[RunningJob], grace: float = 5.0) -> list[str]:
    """Stop what dead runs left running; return a description of what was stopped.

    A process belongs to a run when its environment carries the run's CORRAL_RUN_ID
    (every job gets it, and its children inherit it), which also finds grandchildren
    that left their job's process group and jobs spawned just before the kill, too late
    to be recorded. A recorded process group is signalled whole only when one of its
    members carries the mark, so a process-group id reused since is never touched.
    """
    marked = _marked_processes(run_ids)
    groups = {job.pgid: job for job in running if any(g == job.pgid for g, _ in marked.values())}
    loose = [pid for pid, (pgid, _) in marked.items() if pgid not in groups]
    stopped = [f"job '{job.job}' (process group {job.pgid})" for job in groups.values()]
    stopped += [f"process {pid} of job '{marked[pid][1]}'" for pid in loose]
    _signal_all(groups, loose, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _marked_processes(run_ids):
        time.sleep(0.05)
    _signal_all(groups, loose, signal.SIGKILL)
    return stopped


def _signal_all(groups: dict[int, RunningJob], pids: list[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _marked_processes(run_ids: set[str]) -> dict[int, tuple[int, str]]:
    """Live processes whose environment names one of `run_ids`: pid -> (pgid, job)."""
    marks = {f"CORRAL_RUN_ID={run_id}".encode() for run_id in run_ids}
    found: dict[int, tuple[int, str]] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == b"Z" or not marks.intersection(variables):
            continue
        job = next(
            (v[11:].decode(errors="replace") for v in variables if v.startswith(b"CORRAL_JOB=")),
            "?",
        )
        found[int(entry.name)] = (int(fields[2]), job)
    return found


__all__ = ["Resumed", "Store", "prepare_resume", "reap", "seed_ledger"]
