"""`corral resume RUN`: finish an interrupted or failed run.

Succeeded jobs are not run again (unless a job they need runs again: then they are
decided afresh): their recorded results feed their dependents' templates and
conditions as before. Failed, cancelled, timed-out, skipped and
never-started jobs run. Budgets count what the earlier runs already spent. Before
anything starts, processes the dead run left running are stopped (by the reaper).

A resumed run records only the jobs it ran, so resuming it (after it was killed too)
follows its `resumed_from` chain: a job keeps the status of the newest run of the chain
that has it, and jobs an earlier run of the chain completed are kept as well.

Jobs a dead corral left running or finished are adopted, not run again, and only one
resumer works on a run at a time (`corral.app.adopt`).
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral.app.adopt import (
    Adopted,
    ResumeLocks,
    attempt_usage,
    close_dead,
    find_adoptions,
    interrupted_sessions,
    refuse_if_being_resumed,
    unsupervised,
    wait_for_supervisors,
)
from corral.app.chain import resumers
from corral.app.history import earlier_runs, latest_jobs
from corral.app.location import open_history, run_logs
from corral.app.run import RunControl, RunOptions, RunReport, RunView, start_run
from corral.budget.accounting import Ledger
from corral.config.loaded import LoadedFlow
from corral.config.loader import load_flow, load_text
from corral.errors import FlowError, StoreError, UsageError
from corral.events.bus import Subscriber
from corral.execute import reaper
from corral.execute.executor import Executor
from corral.execute.liveness import LOCK_NAME, holder, named_owner
from corral.models import JobStatus, RunStatus
from corral.plan import JobView, Plan, build_plan, without
from corral.store.protocols import HistoryStore, SeqListener
from corral.store.records import JobRecord, RunRecord, RunRow

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ResumedRun:
    """A run to finish: what is left of its plan, and what its earlier runs leave it.

    `records` are the run and the runs it was itself resumed from, newest first.
    """

    run_id: str
    loaded: LoadedFlow
    plan: Plan  # the jobs still to run
    known: dict[str, JobView]  # the results of the jobs kept
    records: tuple[RunRecord, ...]
    adopted: Adopted = field(default_factory=lambda: Adopted({}, frozenset()))
    locks: ResumeLocks | None = None  # held until the resume ends
    # agent sessions of jobs cut short by the crash, which restart with --resume
    sessions: dict[str, str] = field(default_factory=dict)

    def release(self) -> None:
        if self.locks is not None:
            self.locks.release()

    def carry_into(self, ledger: Ledger) -> None:
        """Put the earlier runs' spend in the ledger (which publishes it), so budgets
        count it. Earlier attempts are numbered 0, -1, ... so the new run's attempts
        (1, 2, ...) stay apart while the job's and the run's totals include both."""
        for job in latest_jobs(self.records).values():
            ledger.set_tool(job.name, job.final.tool if job.final else "generic")
        index: dict[str, int] = {}
        for run in self.records:
            for job in run.jobs:
                for attempt in job.attempts:
                    if (run.run.id, job.name, attempt.attempt) in self.adopted.superseded:
                        continue  # the adopting attempt counts it whole, from its full log
                    number = index[job.name] = index.get(job.name, 0) + 1
                    by_model, cost = attempt_usage(attempt)
                    if by_model:
                        ledger.record(job.name, 1 - number, by_model, cost=cost)


def _named_folders(directory: Path, run_id: str) -> list[Path]:
    """The run folder RUN (an id or a unique prefix) names under `directory`, if any."""
    runs = run_logs(directory, run_id).parent
    exact = runs / run_id
    if exact.is_dir():
        return [exact]
    found = [path for path in runs.glob(f"{glob.escape(run_id)}*") if path.is_dir()]
    return found if len(found) == 1 else []


def write_spills(history: HistoryStore, folders: Sequence[Path], echo: Echo) -> bool:
    """Write the events corral kept on disk in these run folders because the history was
    unreachable (`corral.store.spill`), each exactly once; True if there were any."""
    from corral.store.engine import database_error, reason_of
    from corral.store.spill import SPILL_NAME, replay
    from corral.store.sql import SqlHistory

    if not isinstance(history, SqlHistory):
        return False
    found = False
    for folder in folders:
        spill = folder / SPILL_NAME
        if not spill.is_file() or holder(folder) is not None:
            continue  # nothing kept, or its corral still runs and writes it itself
        try:
            written = replay(history, folder)
        except Exception as error:
            if not database_error(error):
                raise
            reason = reason_of(error)
            raise StoreError(
                f"cannot write the events kept in {spill} to the run history: {reason}",
                hint="the file stays; resume again once the history is reachable",
            ) from None
        echo(f"wrote {written} event(s) kept in {spill} while the history was unreachable")
        found = True
    return found


def _resumers(history: HistoryStore, record: RunRecord) -> list[RunRow]:
    # a resume refused by policy ran nothing: the run it names is still the one to resume
    return [r for r in resumers(history, record.run) if r.status is not RunStatus.REFUSED]


def newest_of_chain(history: HistoryStore, record: RunRecord, echo: Echo) -> RunRecord:
    """The run to resume when `record` is named: itself, or, when a resume already took
    it over, the newest run of its chain (resuming the run itself again would start a
    second line from it: jobs the resume ran or runs could run twice)."""
    hops = [record.run.id]
    while (later := _resumers(history, record)) and later[0].id not in hops:
        refuse_if_being_resumed(record)  # its resumer is at work: name it, as a race would
        record = history.get_run(later[0].id)
        hops.append(record.run.id)
    if len(hops) > 1:
        newest = f", the newest run of its chain is {hops[-1]}" if len(hops) > 2 else ""
        echo(f"{hops[0]} was resumed by {hops[1]}{newest}; resuming {hops[-1]}")
    return record


def plan_resume(run_id: str, *, store_url: str | None, directory: Path, echo: Echo) -> ResumedRun:
    """Find the run, stop what it left running, close it if it died, and plan the rest.

    Raises NotFoundError for an unknown run, UsageError for a run still alive.
    """
    history = open_history(store_url, directory)
    assert history is not None  # opened, not merely looked for
    locks: ResumeLocks | None = None
    try:
        # events a dead corral could not store wait in its run's folder: the history
        # must hold them before it is read (the run itself may be among them)
        write_spills(history, _named_folders(directory, run_id), echo)
        while True:
            record = newest_of_chain(history, history.get_run(run_id), echo)
            if write_spills(
                history, [Path(r.run.log_root) for r in earlier_runs(history, record)], echo
            ):
                record = history.get_run(record.run.id)
            if record.run.status is RunStatus.REFUSED:
                raise UsageError(
                    f"run {record.run.id} was refused by policy: nothing ran, so nothing resumes",
                    hint="see `corral show` for the denials; fix the flow and `corral run` it",
                )
            records = (record, *earlier_runs(history, record))
            for run in records:
                # one look at the lock; a process that has just taken it writes its pid
                # a moment later, which `named_owner` waits for
                if (owner := named_owner(Path(run.run.log_root) / LOCK_NAME)) is not None:
                    who = f"corral process {owner[0]}" if owner[0] > 0 else "another corral"
                    raise UsageError(
                        f"run {run.run.id} is still running ({who})",
                        hint="stop it with Ctrl-C or `kill -INT`, or wait for it, then resume",
                    )
            locks = ResumeLocks(records)
            # a resume of it that ended between the look-up and the lock made a newer
            # run; every resume holds the lock, so with it held the answer is final
            if not _resumers(history, record):
                break
            locks.release()
            locks = None
            run_id = record.run.id
        adopted = find_adoptions(records)
        # what runs without a supervisor left running is nobody's: stop it (a live
        # supervisor stops its own leftovers once its jobs are done)
        orphaned = [run.run.id for run in unsupervised(records)]
        recorded = [
            reaper.RecordedGroup(job.job, job.pgid)
            for run in orphaned
            for job in history.running_jobs(run)
        ]
        reaped = reaper.reap_marked(orphaned, recorded) if orphaned else []
        close_dead(history, records, adopted)
    except BaseException:
        if locks is not None:
            locks.release()
        raise
    finally:
        history.close()
    for line in reaped:
        echo(f"stopped {line}, left running by run {record.run.id}")
    loaded = _flow(record, echo)
    plan = build_plan(loaded.spec, source=loaded.source, locate=loaded.locate)
    latest = latest_jobs(records)
    kept = kept_jobs(plan, {n for n, j in latest.items() if j.status is JobStatus.SUCCEEDED})
    succeeded = [latest[name] for name in kept]
    remaining = without(plan, kept)
    if not remaining.jobs:
        echo(f"run {record.run.id}: every job already succeeded; nothing to resume")
    elif kept:
        count = len(remaining.jobs)
        echo(f"resuming run {record.run.id}: keeping {len(kept)} succeeded job(s), running {count}")
    if adopted.jobs:
        echo(f"adopting {len(adopted.jobs)} job(s) left by the dead run: {', '.join(adopted.jobs)}")
    known = {j.name: view_of(j) for j in succeeded}
    sessions = interrupted_sessions(records, adopted)
    return ResumedRun(record.run.id, loaded, remaining, known, records, adopted, locks, sessions)


async def resume_run(
    run_id: str,
    options: RunOptions,
    *,
    directory: Path,
    echo: Echo,
    view: RunView | None = None,
    subscribers: Sequence[Subscriber] = (),
    executor: Executor | None = None,
    control: RunControl | None = None,
    warn: Callable[[str], None] | None = None,
    listeners: Sequence[SeqListener] = (),
) -> RunReport | None:
    """Finish run `run_id` (see `plan_resume`); None when every job already succeeded.

    `options.store` is where the history is (by default under `directory`); the other
    keywords are `start_run`'s.
    """
    resumed = await asyncio.to_thread(
        plan_resume, run_id, store_url=options.store, directory=directory, echo=echo
    )
    try:
        if not resumed.plan.jobs:
            return None
        return await finish_run(
            resumed,
            options,
            view=view,
            subscribers=subscribers,
            executor=executor,
            control=control,
            warn=warn,
            listeners=listeners,
        )
    finally:
        # the dead runs' supervisors exit once the jobs adopted from them are done: no
        # process of a dead run outlives its resume
        await asyncio.to_thread(wait_for_supervisors, resumed.records)
        resumed.release()


async def finish_run(
    resumed: ResumedRun,
    options: RunOptions,
    *,
    view: RunView | None = None,
    subscribers: Sequence[Subscriber] = (),
    executor: Executor | None = None,
    control: RunControl | None = None,
    warn: Callable[[str], None] | None = None,
    listeners: Sequence[SeqListener] = (),
) -> RunReport:
    """Run what `plan_resume` left to run (the keywords are `start_run`'s; the policies
    that apply now must allow what is left, as for any run)."""
    return await start_run(
        resumed.loaded,
        resumed.plan,
        options,
        view=view,
        subscribers=subscribers,
        executor=executor,
        control=control,
        known=resumed.known,
        resumed=resumed,
        warn=warn,
        listeners=listeners,
    )


def kept_jobs(plan: Plan, succeeded: set[str]) -> list[str]:
    """The succeeded jobs a resume keeps: those none of whose needs, however far up, runs
    again. A job downstream of one that runs again is decided afresh (its condition, its
    templates): a `report` with `if: always()` that ran on the failure path must not stay
    "build was failed" once build succeeded."""
    kept: set[str] = set()
    for name in plan.order:
        needs = plan.jobs[name].needs
        if name in succeeded and all(need in kept for need in needs if need in plan.jobs):
            kept.add(name)
    return [name for name in plan.jobs if name in kept]


def _flow(record: RunRecord, echo: Echo) -> LoadedFlow:
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
    """A recorded job as conditions and templates see a finished one."""
    final = job.final
    cost = job.cost
    return JobView(
        status=job.status,
        result=final.result if final else None,
        exit_code=final.exit_code if final else None,
        session_id=final.session_id if final else None,
        usage=job.tokens.to_usage(),
        cost_usd=float(cost.usd) if cost is not None and cost.usd is not None else None,
        outputs=dict(final.outputs or {}) if final else {},
    )
