"""The history use cases: list runs, show one, follow a job's log, usage, export, gc,
and the earlier results `--from` reads. Each opens the history, asks, and closes it.

`url` is a history URL (any registered scheme) or None for the default SQLite history
under `directory`; the read-only use cases do not create a history that does not exist.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.app.location import corral_dir, open_history
from corral.errors import NotFoundError
from corral.models import JobStatus, RunStatus
from corral.store.protocols import HistoryReader, HistoryStore, UsageBy
from corral.store.records import JobLine, JobRecord, RunRecord, RunRow, UsageRow

if TYPE_CHECKING:  # the planner (and pydantic) is not loaded for the read-only commands
    from corral.app.chain import LogicalRun
    from corral.plan import JobView
    from corral.store.queries import RunRows

POLL_S = 0.25  # how often a followed log is read again
STATUS_EVERY_S = 1.0  # how often a follow asks the history whether the job is over


def _require(url: str | None, directory: Path) -> HistoryStore:
    history = open_history(url, directory, must_exist=True)
    if history is None:
        raise NotFoundError(
            f"no run history in {corral_dir(directory)}",
            hint="run a flow first, or point --dir or --store at the history",
        )
    return history


def list_runs(
    url: str | None,
    directory: Path,
    *,
    status: RunStatus | str | None = None,
    flow: str | None = None,
    since: float | None = None,
    limit: int | None = 50,
    rehearsal: bool | None = None,
) -> list[RunRow] | None:
    """Runs newest first; None when there is no history at all yet. `rehearsal`: only
    rehearsals (True) or only real runs (False)."""
    history = open_history(url, directory, must_exist=True)
    if history is None:
        return None
    try:
        return history.list_runs(status, flow, since, limit, rehearsal=rehearsal)
    finally:
        history.close()


def list_logical_runs(
    url: str | None,
    directory: Path,
    *,
    status: RunStatus | str | None = None,
    flow: str | None = None,
    since: float | None = None,
    limit: int | None = 50,
    rehearsal: bool | None = None,
) -> list[LogicalRun] | None:
    """The newest run of each resume chain, with the chain's figures (`corral.app.chain`);
    None when there is no history at all yet. `rehearsal` as for `list_runs`."""
    from corral.app.chain import logical_runs

    history = open_history(url, directory, must_exist=True)
    if history is None:
        return None
    try:
        return logical_runs(
            history, status=status, flow=flow, since=since, limit=limit, rehearsal=rehearsal
        )
    finally:
        history.close()


def show_run(url: str | None, directory: Path, run_id: str) -> RunRecord:
    """One run (by id or unique prefix) with every job and attempt."""
    return show_flow_state(url, directory, run_id).record


@dataclass(frozen=True)
class FlowState:
    """A run and, when it was resumed from others, the jobs it kept from them: with both,
    the flow's combined final state across the resumes."""

    record: RunRecord
    kept: tuple[tuple[str, JobRecord], ...] = ()  # (the earlier run's id, its job)
    earlier: tuple[RunRecord, ...] = ()  # the runs it was resumed from, newest first
    resumed_by: tuple[str, ...] = ()  # later runs that resumed this one
    # the run as read from a SQL history, when asked for: its jobs are these rows, and
    # `record.jobs` is empty unless the chain needed them (`show_flow_state`)
    rows: RunRows | None = None

    @property
    def chain(self) -> tuple[RunRecord, ...]:
        """The run and the runs before it, newest first: one logical run."""
        return (self.record, *self.earlier)

    def job_lines(self) -> Iterator[JobLine]:
        """What `corral show`'s table says of each of the run's jobs."""
        if self.rows is not None:
            return self.rows.job_lines()
        return (job.line() for job in self.record.jobs)

    def head_dict(self) -> dict[str, Any]:
        """`record.to_dict()` with its `jobs` left empty: `job_dicts` gives them."""
        return dataclasses.replace(self.record, jobs=()).to_dict()

    def job_dicts(self) -> Iterator[dict[str, Any]]:
        """Each of the run's jobs as `JobRecord.to_dict()` gives it, from the rows if read."""
        if self.rows is not None:
            return self.rows.job_dicts()
        return (job.to_dict() for job in self.record.jobs)


def show_flow_state(
    url: str | None, directory: Path, run_id: str, *, chain: bool = True, rows: bool = False
) -> FlowState:
    """The run (by id or unique prefix) and the jobs its resume chain kept (`FlowState`);
    with `chain` False the run alone. With `rows`, a SQL history gives the run's rows too
    (`FlowState.rows`: `corral show` of a 50,000-job run builds no object per job)."""
    from corral.app.chain import chain_of, resumed_by

    history = _require(url, directory)
    try:
        read_run = getattr(history, "read_run", None) if rows else None  # SqlHistory's
        found: RunRows | None = None if read_run is None else read_run(run_id)
        if found is None:
            record = history.get_run(run_id)
        else:  # the chain's figures and kept jobs need the jobs of a resumed run
            record = found.record(jobs=chain and found.run["resumed_from"] is not None)
        if not chain:
            return FlowState(record, rows=found)
        earlier = chain_of(history, record)[1:]
        return FlowState(
            record,
            kept_from_earlier(history, record, earlier),
            earlier,
            tuple(resumed_by(history, record.run)),
            rows=found,
        )
    finally:
        history.close()


def kept_from_earlier(
    history: HistoryReader,
    record: RunRecord,
    runs: tuple[RunRecord, ...] | None = None,
) -> tuple[tuple[str, JobRecord], ...]:
    """The jobs `record`'s resume chain kept from the runs it finished: (run id, job).
    `runs` are those runs (newest first) when the caller has read them already."""
    own = {job.name for job in record.jobs}
    kept: dict[str, tuple[str, JobRecord]] = {}
    for earlier in earlier_runs(history, record) if runs is None else runs:
        for job in earlier.jobs:
            if job.name not in own:
                kept.setdefault(job.name, (earlier.run.id, job))
    return tuple(kept.values())


def earlier_runs(history: HistoryReader, record: RunRecord) -> tuple[RunRecord, ...]:
    """The runs `record` was resumed from, newest first (up to one deleted by gc)."""
    from corral.app.chain import chain_of

    return chain_of(history, record)[1:]


def latest_jobs(records: tuple[RunRecord, ...]) -> dict[str, JobRecord]:
    """Each job as recorded by the newest of `records` (newest first) that has it."""
    latest: dict[str, JobRecord] = {}
    for record in records:
        for job in record.jobs:
            latest.setdefault(job.name, job)
    return latest


def usage(
    url: str | None,
    directory: Path,
    by: UsageBy,
    *,
    since: float | None = None,
    include_rehearsals: bool = False,
) -> list[UsageRow]:
    """Tokens and cost grouped by `by`; empty when there is no history yet. Rehearsals
    (simulated spend) count only with `include_rehearsals`."""
    history = open_history(url, directory, must_exist=True)
    if history is None:
        return []
    try:
        return history.usage(by, since, include_rehearsals=include_rehearsals)
    finally:
        history.close()


def export_run(
    url: str | None, directory: Path, run_id: str, fmt: str, *, chain: bool = True
) -> Iterator[str]:
    """The run as json, jsonl or csv, in chunks; the history stays open until the last.
    With `chain` a resumed run comes with the runs it was resumed from
    (`corral.app.chain.export_chain`)."""
    history = _require(url, directory)
    try:
        if chain:
            from corral.app.chain import export_chain

            chunks = export_chain(history, run_id, fmt)
        else:
            chunks = history.export(run_id, fmt)
        first = next(chunks, None)  # errors (unknown run, format) before any output
    except BaseException:
        history.close()
        raise
    return _chunks(history, first, chunks)


def _chunks(history: HistoryReader, first: str | None, rest: Iterator[str]) -> Iterator[str]:
    try:
        if first is not None:
            yield first
        yield from rest
    finally:
        history.close()


# -- logs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobLogFile:
    """Where one job's log is (the file may not exist: a job that never started)."""

    job: str
    path: Path


def log_files(
    record: RunRecord, job: str | None, *, attempt: int | None = None, stderr: bool = False
) -> list[JobLogFile]:
    """The stdout (or stderr) log of `job`'s attempt (default: its last), or of every
    job; NotFoundError for a job or attempt the run does not have."""
    names = [j.name for j in record.jobs]
    if job is not None and job not in names:
        from corral.plan.problems import did_you_mean

        raise NotFoundError(
            f"no job {job!r} in run {record.run.id}{did_you_mean(job, names)}",
            hint="jobs: " + ", ".join(names),
        )
    name = "stderr.log" if stderr else "stdout.log"
    chosen = [job] if job is not None else names
    return [JobLogFile(each, _log_dir(record, each, attempt) / name) for each in chosen]


def _log_dir(record: RunRecord, job: str, attempt: int | None) -> Path:
    found = record.job(job)
    attempts = () if found is None else found.attempts
    if attempt is not None:
        chosen = next((a for a in attempts if a.attempt == attempt), None)
        if chosen is None:
            raise NotFoundError(
                f"job {job} has no attempt {attempt}", hint=f"it has {len(attempts)}"
            )
    else:
        chosen = attempts[-1] if attempts else None
    if chosen is not None and chosen.log_dir:
        return Path(chosen.log_dir)
    return Path(record.run.log_root) / job


def follow_log(
    url: str | None,
    directory: Path,
    run_id: str,
    log: JobLogFile,
    write: Callable[[bytes], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Copy the log to `write` as it grows until the job is over (final status, or the
    run ended). The history is asked at most once a second; the last lines, which may
    land with the end, are read once more after it is seen."""
    follow_logs(url, directory, run_id, [log], lambda _log, chunk: write(chunk),
                clock=clock, sleep=sleep)  # fmt: skip


def follow_logs(
    url: str | None,
    directory: Path,
    run_id: str,
    logs: list[JobLogFile],
    write: Callable[[JobLogFile, bytes], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`follow_log` for several jobs at once: each new chunk goes to `write` with the log
    it came from, until every one of the jobs is over."""
    history = _require(url, directory)
    positions = dict.fromkeys(range(len(logs)), 0)
    checked, done = -STATUS_EVERY_S, False
    try:
        while True:
            grew = False
            for index, log in enumerate(logs):
                chunk = _read_from(log.path, positions[index])
                if chunk:
                    write(log, chunk)
                    positions[index] += len(chunk)
                    grew = True
            if grew:
                continue
            if done:
                return
            if clock() - checked >= STATUS_EVERY_S:
                checked = clock()
                done = all(_over(history, run_id, log.job) for log in logs)
                if done:
                    continue
            sleep(POLL_S)
    finally:
        history.close()


def _read_from(path: Path, position: int) -> bytes:
    if not path.exists():
        return b""
    with path.open("rb") as handle:
        handle.seek(position)
        return handle.read()


def _over(history: HistoryReader, run_id: str, job: str) -> bool:
    record = history.get_run(run_id)
    found = record.job(job)
    return (
        record.run.status is not RunStatus.RUNNING
        or (found is not None and found.status.is_final)
        or _abandoned(Path(record.run.log_root) if record.run.log_root else None)
    )


def _abandoned(log_root: Path | None) -> bool:
    """A run recorded as running whose corral and supervisor are both gone (kill -9):
    nothing will write its logs any more."""
    from corral.execute.liveness import LOCK_NAME, holder
    from corral.execute.supervised import supervisor_alive

    if log_root is None or not (log_root / LOCK_NAME).exists():
        return False  # not run by the local executor: the history alone says
    return holder(log_root) is None and supervisor_alive(log_root) is None


# -- gc --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    """One run gc deleted (or would): its log folder, and whether that went too."""

    run: RunRow
    logs: Path | None  # the run's log folder, when it exists
    logs_removed: bool
    kept_because: str | None = None  # why the folder was kept
    deleted: bool = True  # False: the whole run was kept (it is still running)


def gc(
    url: str | None,
    directory: Path,
    older_than_s: float,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> list[Collected]:
    """Delete runs started more than `older_than_s` ago, with their log folders.

    A folder is removed only when its path names the run (a shared or odd log_root is
    never deleted); a run whose corral or supervisor still holds its lock is kept whole
    (listed with `deleted` False); `dry_run` deletes nothing and says what would go.
    """
    history = open_history(url, directory, must_exist=True)
    if history is None:
        return []
    live: list[Collected] = []

    def running(run: RunRow) -> bool:
        # the corral (or the supervisor) of a live run holds its lock: never touch it
        from corral.execute.liveness import holder
        from corral.execute.supervised import supervisor_alive

        root = Path(run.log_root) if run.log_root else None
        pid = None
        if root is not None:
            pid = holder(root)
            if pid is None:  # corral is gone but its jobs may still run under the supervisor
                pid = supervisor_alive(root)
        if pid is not None:
            why = f"it is running (pid {pid})" if pid > 0 else "it is running"
            live.append(Collected(run, Path(run.log_root), False, why, deleted=False))
        return pid is not None

    try:
        old = history.delete_runs_older_than(older_than_s, now=now, dry_run=dry_run, keep=running)
    finally:
        history.close()
    return [*live, *(_collect(run, dry_run) for run in old)]


def _collect(run: RunRow, dry_run: bool) -> Collected:
    logs = Path(run.log_root) if run.log_root else None
    if logs is None or not logs.is_dir():
        return Collected(run, None, False)
    if not any(run.id in part for part in logs.parts):
        return Collected(run, logs, False, "its path does not name the run")
    if not dry_run:
        shutil.rmtree(logs, ignore_errors=True)
    return Collected(run, logs, not dry_run)


# -- --from ----------------------------------------------------------------------------------


def earlier_results(
    url: str | None, directory: Path, flow_path: Path, names: frozenset[str], scan: int = 20
) -> dict[str, JobView]:
    """The latest recorded success of each of `names` in this flow's earlier runs.

    `--from JOB` leaves JOB's needs out of the run; their results (for templates and
    conditions) come from the history when it has them.
    """
    if not names:
        return {}
    history = open_history(url, directory, must_exist=True)
    if history is None:
        return {}
    from corral.app.resume import view_of

    found: dict[str, JobView] = {}
    try:
        for row in history.list_runs(flow=str(flow_path.resolve()), limit=scan):
            for job in history.get_run(row.id).jobs:
                if (
                    job.name in names
                    and job.name not in found
                    and job.status is JobStatus.SUCCEEDED
                ):
                    found[job.name] = view_of(job)
            if len(found) == len(names):
                break
    finally:
        history.close()
    return found
