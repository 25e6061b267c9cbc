"""Adoption: what `corral resume` takes over from dead runs instead of running it again.

A dead run's jobs were children of its supervisor, which recorded each start and each
exit in the run's `supervisor.jsonl` (`corral.execute.supervisor`). For every job the
history does not call finished, the newest run of the chain that knows it decides:

- its supervisor recorded the exit: the job finished while no corral was there; the
  resume takes that outcome (its tokens and cost parsed from the complete log);
- no exit yet, the supervisor and the job's process group alive: the resume re-attaches
  (follows the logs, enforces timeout, idle watchdog and budget again);
- otherwise (no record, no process, or stopped because corral died with `on_orphan:
  kill`): the job starts again.

Only one resumer at a time: each run of the chain is locked (`resume.lock` in its log
folder) for the whole resume, and the kernel drops the locks however the resumer ends.
Afterwards no row of a dead run stays `running` or `waiting` (`close_dead`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from corral.errors import StoreError, UsageError
from corral.events.types import JobFinished, RunFinished
from corral.execute import reaper
from corral.execute.executor import Adoption
from corral.execute.liveness import RunLock, describe_holder, lock_holder
from corral.execute.supervised import JobRecord, read_records, supervisor_alive
from corral.models import Cost, CostSource, ErrorKind, JobStatus, RunStatus, Usage
from corral.store.protocols import HistoryStore
from corral.store.records import AttemptRow, RunRecord
from corral.store.records import JobRecord as StoredJob

RESUME_LOCK = "resume.lock"
NOT_STARTED = "not started: corral stopped before it could start"
ADOPTED = "corral stopped while it ran; `corral resume` adopted it (see the resumed run)"
RUN_AGAIN = "corral stopped while it ran; `corral resume` runs it again"
CLOSING_NOTES = (NOT_STARTED, ADOPTED, RUN_AGAIN)


class ResumeLocks:
    """The resume locks of every run of a chain, held until `release()`."""

    def __init__(self, records: Iterable[RunRecord]) -> None:
        self._locks: list[RunLock] = []
        try:
            for record in records:
                root = Path(record.run.log_root)
                if not record.run.log_root or not root.is_dir():
                    continue
                try:
                    self._locks.append(RunLock(root, RESUME_LOCK))
                except BlockingIOError:
                    raise _being_resumed(record.run.id, root) from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []


def refuse_if_being_resumed(record: RunRecord) -> None:
    """UsageError naming the resumer if a resume holds `record`'s lock now."""
    root = Path(record.run.log_root)
    if record.run.log_root and lock_holder(root / RESUME_LOCK) is not None:
        raise _being_resumed(record.run.id, root)


def _being_resumed(run_id: str, root: Path) -> UsageError:
    return UsageError(
        f"run {run_id} is already being resumed by {describe_holder(root / RESUME_LOCK)}",
        hint="wait for that resume to end (or stop it), then resume again",
    )


@dataclass(frozen=True)
class Adopted:
    """What a resume takes over: the adoptions by job, and the attempts they supersede."""

    jobs: Mapping[str, Adoption]
    superseded: frozenset[tuple[str, str, int]]  # (run id, job, attempt)


def find_adoptions(records: tuple[RunRecord, ...]) -> Adopted:
    """The jobs of `records` (newest first) to adopt rather than run (module docstring)."""
    supervised = {r.run.id: _records(r) for r in records}
    alive = {r.run.id: bool(r.run.log_root) and _supervised_now(r) for r in records}
    names: list[str] = []
    for record in records:
        names += [j.name for j in record.jobs if j.name not in names]
    jobs: dict[str, Adoption] = {}
    superseded: set[tuple[str, str, int]] = set()
    for name in names:
        passed: list[tuple[str, str, int]] = []  # newer runs' unfinished rows of the job
        for record in records:
            stored = next((j for j in record.jobs if j.name == name), None)
            if stored is not None and stored.status.is_final and not _closed_by_resume(stored):
                break  # the history knows how it ended: nothing to adopt
            found = supervised[record.run.id].get(name)
            if found is None:
                # this run never started it (or adopted it from an older run): look there
                if stored is not None and stored.attempts:
                    passed.append((record.run.id, name, stored.attempts[-1].attempt))
                continue
            number, job = found
            if stored is not None and _attempt_final(stored, number):
                break
            root = Path(record.run.log_root)
            if job.exit is None and alive[record.run.id] and not reaper.signal_group(job.pid, 0):
                # its live supervisor reaped it a moment ago and is writing its exit (a
                # resume that read the records in between ran it a second time)
                job = recorded_exit(root, job)
            if job.exit is not None and not job.orphan_killed:
                jobs[name] = _adoption(root, name, number, job, ended=True)
            elif job.exit is None and alive[record.run.id] and reaper.signal_group(job.pid, 0):
                jobs[name] = _adoption(root, name, number, job, ended=False)
            if name in jobs:
                superseded.add((record.run.id, name, number))
                superseded.update(passed)
            break
    return Adopted(jobs, frozenset(superseded))


# how long a resume waits for a live supervisor to record the exit of a job it reaped
# (its exit writer records it after syncing the exits before it)
RECORD_WAIT_S = 5.0


def recorded_exit(
    root: Path,
    job: JobRecord,
    *,
    wait: float = RECORD_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobRecord:
    """`job` as the run's supervisor records it once its exit is on record; `job` itself
    when the supervisor is gone without recording it, or after `wait` seconds."""
    deadline = clock() + wait
    while True:
        # alive before the read: what a supervisor that has exited wrote is all there
        alive = supervisor_alive(root) is not None
        found, _ = read_records(root)
        latest = found.get(job.key)
        if latest is not None and latest.exit is not None:
            return latest
        if not alive or clock() >= deadline:
            return job
        sleep(0.02)


def _records(record: RunRecord) -> dict[str, tuple[int, JobRecord]]:
    """The supervisor's newest record of each job of the run: (attempt number, record)."""
    if not record.run.log_root:
        return {}
    found, _ = read_records(Path(record.run.log_root))
    newest: dict[str, tuple[int, JobRecord]] = {}
    for key, job in found.items():
        name, _, number = key.rpartition("#")
        attempt = int(number)
        if name not in newest or newest[name][0] < attempt:
            newest[name] = (attempt, job)
    return newest


def _supervised_now(record: RunRecord) -> bool:
    return supervisor_alive(Path(record.run.log_root)) is not None


def _attempt_final(job: StoredJob, number: int) -> bool:
    return any(
        a.attempt == number and a.status.is_final and a.error not in CLOSING_NOTES
        for a in job.attempts
    )


def _closed_by_resume(job: StoredJob) -> bool:
    """A row an earlier resume closed (`close_dead`), not one corral saw end."""
    final = job.attempts[-1] if job.attempts else None
    return final is not None and final.error in CLOSING_NOTES


def _adoption(root: Path, name: str, number: int, job: JobRecord, *, ended: bool) -> Adoption:
    folder = root / name
    return Adoption(
        log_root=root,
        key=job.key,
        pid=job.pid,
        started_at=job.started_at,
        log_dir=folder if number == 1 else folder / f"attempt-{number}",
        ended=ended,
        exit_code=job.exit.code if job.exit else None,
        signal=job.exit.signal if job.exit else None,
        ended_at=job.ended_at,
    )


def unsupervised(records: tuple[RunRecord, ...]) -> list[RunRecord]:
    """The runs whose supervisor is gone (or that never had one): what they left running
    is nobody's, and the reaper stops it."""
    return [r for r in records if not r.run.log_root or not _supervised_now(r)]


def close_dead(history: HistoryStore, runs: tuple[RunRecord, ...], adopted: Adopted) -> None:
    """End every dead run of the chain, and every job row of it that is not final: a job
    the resume adopts is closed without its figures (the resume's run carries them whole),
    one it runs again keeps what it spent, one that never started says so."""
    now = time.time()
    for run in runs:
        if run.run.status is not RunStatus.RUNNING:
            continue
        writer = history.writer(run_id=run.run.id)
        open_rows = [job for job in run.jobs if not job.status.is_final]
        for job in open_rows:
            writer(_closing(run.run.id, job, adopted, now))
        writer(
            RunFinished(
                run_id=run.run.id,
                status=RunStatus.CANCELLED,
                ended_at=now,
                error="interrupted: corral stopped before the run ended (resumed)",
            )
        )
        try:
            writer.close()
        except StoreError as error:
            raise _not_closed(history, run.run.id, len(open_rows), error) from None


def _not_closed(history: HistoryStore, run_id: str, rows: int, error: StoreError) -> StoreError:
    """The resume stops before it starts anything: the history must say the dead run
    ended before a new run carries on its jobs. Nothing is lost (the next resume closes
    it again from what is on record), so this names what was not written and why."""
    cause = error.__cause__
    cause = getattr(cause, "orig", None) or cause
    why = str(cause).strip().splitlines()[0] if cause is not None else error.message
    return StoreError(
        f"cannot record in the run history at {history.display_url} that dead run {run_id} "
        f"ended: its end and its {rows} unfinished job row(s) were not written ({why}); "
        "nothing was started",
        hint=f"`corral resume {run_id}` again once the history takes writes",
    )


def _closing(run_id: str, job: StoredJob, adopted: Adopted, now: float) -> JobFinished:
    last = job.attempts[-1] if job.attempts else None
    number = last.attempt if last is not None else 0
    if number == 0 or last is None or last.started_at is None:
        error = NOT_STARTED
        by_model: dict[str, Usage] = {}
        cost: Cost | None = None
    elif (run_id, job.name, number) in adopted.superseded:
        error = ADOPTED
        by_model, cost = {}, None
    else:
        error = RUN_AGAIN
        by_model, cost = attempt_usage(last)
    return JobFinished(
        job=job.name,
        attempt=number,
        status=JobStatus.CANCELLED,
        exit_code=None,
        signal=None,
        duration_s=max(0.0, now - last.started_at) if last and last.started_at else 0.0,
        error=error,
        error_kind=ErrorKind.CANCELLED,
        tool=last.tool if last else "generic",
        by_model=by_model,
        cost=cost,
        ended_at=now,
    )


def attempt_usage(attempt: AttemptRow) -> tuple[dict[str, Usage], Cost | None]:
    """An attempt's recorded tokens by model, and its cost when the CLI reported it."""
    by_model = {m.model: m.tokens.to_usage() for m in attempt.models}
    cost = (
        attempt.cost
        if attempt.cost is not None and attempt.cost.source is CostSource.REPORTED
        else None
    )
    return by_model, cost


def wait_for_supervisors(runs: Iterable[RunRecord], timeout: float = 10.0) -> None:
    """Wait (up to `timeout`) until the supervisors of `runs` are gone: each exits once its
    last job ended and it stopped what the jobs left behind."""
    deadline = time.monotonic() + timeout
    roots = [Path(r.run.log_root) for r in runs if r.run.log_root]
    while any(supervisor_alive(root) is not None for root in roots):
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def interrupted_sessions(records: tuple[RunRecord, ...], adopted: Adopted) -> dict[str, str]:
    """The agent session of each job the crash cut short and the resume runs again (not
    adopted): its restart continues that session (`--resume`) rather than starting over."""
    sessions: dict[str, str] = {}
    seen: set[str] = set()
    for record in records:  # newest first: the newest row of a job decides
        for job in record.jobs:
            if job.name in seen:
                continue
            seen.add(job.name)
            if job.name in adopted.jobs or not job.attempts:
                continue
            last = job.attempts[-1]
            interrupted = not job.status.is_final or last.error == RUN_AGAIN
            if interrupted and last.session_id:
                sessions[job.name] = last.session_id
    return sessions
