"""A third-party corral plugin, as someone outside corral would write it (corral's tests
put it on PYTHONPATH next to its `.dist-info`; it is never installed):

- `counting`, an executor that runs attempts with corral's local executor and counts
  them (`<log_root>/counting-executor.json`);
- `jsonl://DIR`, a history store that keeps each run as a JSON-lines file of its events,
  and answers questions by folding them with corral's own journal.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from corral.errors import NotFoundError, UsageError
from corral.events.codec import event_from_dict, event_to_dict
from corral.events.types import Event, JobOutput, RunStarted
from corral.execute.executor import AttemptOutcome, ExecutorContext, JobRequest, StopHandle
from corral.execute.local import LocalExecutor
from corral.journal import AttemptEntry, RunJournal
from corral.models import JobStatus, Tokens
from corral.plan.outputs import OutputReader
from corral.store.protocols import StoredEvent
from corral.store.records import AttemptRow, JobRecord, RunningJob, RunRecord, RunRow, UsageRow


class CountingExecutor:
    """The local executor, counting the attempts it runs."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.inner = LocalExecutor(context)
        self.attempts: list[str] = []

    async def __aenter__(self) -> CountingExecutor:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.inner.__aexit__(*exc_info)
        record = {"attempts": len(self.attempts), "runs": self.attempts}
        (self.context.log_root / "counting-executor.json").write_text(json.dumps(record))

    async def run(self, request: JobRequest, publish, stop: StopHandle) -> AttemptOutcome:
        self.attempts.append(f"{request.job}#{request.attempt}")
        return await self.inner.run(request, publish, stop)

    def output(self, request: JobRequest) -> OutputReader:
        return self.inner.output(request)


def open_jsonl(url: str) -> JsonlHistory:
    """The `jsonl` scheme: `jsonl:///absolute/folder`."""
    folder = Path(url.split("://", 1)[1])
    folder.mkdir(parents=True, exist_ok=True)
    return JsonlHistory(folder)


class JsonlWriter:
    """Appends each event of a run to `<folder>/<run id>.jsonl`, made durable on sync."""

    def __init__(self, folder: Path, run_id: str | None) -> None:
        self.folder = folder
        self.run_id = run_id or ""
        self.pending: list[tuple[float, Event]] = []
        self.healthy = True

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobOutput):
            return
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
        self.pending.append((time.time(), event))

    def _write(self) -> bool:
        if not self.run_id or not self.pending:
            return True
        path = self.folder / f"{self.run_id}.jsonl"
        seq = sum(1 for _ in path.open()) if path.exists() else 0
        with path.open("a") as handle:
            for ts, event in self.pending:
                seq += 1
                line = {"seq": seq, "ts": ts, "event": event_to_dict(event)}
                handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.pending.clear()
        return True

    async def sync(self) -> bool:
        return self._write()

    def flush_now(self, timeout: float | None = None) -> bool:
        return self._write()

    def close(self, timeout: float | None = None) -> None:
        self._write()


class JsonlHistory:
    """Runs as JSON-lines files; every question is answered from the fold of a run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def display_url(self) -> str:
        return f"jsonl://{self.folder}"

    def writer(self, *, run_id: str | None = None) -> JsonlWriter:
        return JsonlWriter(self.folder, run_id)

    def close(self) -> None:
        return None

    # -- reading ---------------------------------------------------------------------------

    def resolve_run_id(self, run_id: str) -> str:
        found = sorted(p.stem for p in self.folder.glob("*.jsonl") if p.stem.startswith(run_id))
        if run_id in found:
            return run_id
        if len(found) != 1:
            raise NotFoundError(f"no run {run_id!r} in the history", hint="`corral runs`")
        return found[0]

    def events(self, run_id: str, after_seq: int = 0) -> Iterator[StoredEvent]:
        path = self.folder / f"{self.resolve_run_id(run_id)}.jsonl"
        with path.open() as handle:
            for line in handle:
                data = json.loads(line)
                if data["seq"] > after_seq:
                    yield StoredEvent(data["seq"], data["ts"], event_from_dict(data["event"]))

    def _fold(self, run_id: str) -> RunJournal:
        journal = RunJournal()
        for stored in self.events(run_id):
            journal(stored.event)
        return journal

    def list_runs(self, status=None, flow=None, since=None, limit=50, *, rehearsal=None):
        rows = [_row(self._fold(path.stem)) for path in self.folder.glob("*.jsonl")]
        rows = [
            r
            for r in rows
            if (status is None or str(r.status) == str(status))
            and (flow is None or flow in (r.flow_name, r.flow_path))
            and (since is None or r.started_at >= since)
            and (rehearsal is None or r.rehearsal == rehearsal)
        ]
        rows.sort(key=lambda r: -r.started_at)
        return rows[:limit] if limit is not None else rows

    def get_run(self, run_id: str) -> RunRecord:
        journal = self._fold(run_id)
        jobs = tuple(
            JobRecord(
                job.name,
                job.final_status if journal.ended_at else job.status,
                job.reason,
                tuple(
                    _attempt(journal.run_id, job.name, a) for _, a in sorted(job.attempts.items())
                ),
            )
            for job in journal.jobs.values()
        )
        return RunRecord(_row(journal), "", "", (), jobs)

    def usage(self, by, since=None, *, include_rehearsals=False) -> list[UsageRow]:
        totals: dict[str, list[Tokens]] = {}
        for path in self.folder.glob("*.jsonl"):
            journal = self._fold(path.stem)
            if journal.rehearsal and not include_rehearsals:
                continue
            for job in journal.jobs.values():
                for attempt in job.attempts.values():
                    key = {"job": job.name, "tool": attempt.tool}.get(by, attempt.model or "")
                    totals.setdefault(key, []).append(Tokens.from_usage(attempt.usage))
        return [
            UsageRow(key, len(tokens), sum(tokens, Tokens()), Decimal(0), Decimal(0), 0)
            for key, tokens in sorted(totals.items())
        ]

    def running_jobs(self, run_id: str) -> list[RunningJob]:
        journal = self._fold(run_id)
        return [
            RunningJob(run_id, job.name, n, a.pid, a.pid, a.started_at, a.log_dir)
            for job in journal.jobs.values()
            for n, a in job.attempts.items()
            if a.status is JobStatus.RUNNING and a.pid is not None
        ]

    def delete_runs_older_than(
        self, seconds, *, now=None, dry_run=False, keep=None
    ) -> list[RunRow]:
        cutoff = (time.time() if now is None else now) - seconds
        old = [r for r in self.list_runs(limit=None) if r.started_at < cutoff]
        old = [r for r in old if keep is None or not keep(r)]
        if not dry_run:
            for row in old:
                (self.folder / f"{row.id}.jsonl").unlink()
        return old

    def export(self, run_id: str, fmt: str) -> Iterator[str]:
        if fmt != "jsonl":
            raise UsageError(f"the jsonl store exports jsonl only, not {fmt}")
        for stored in self.events(run_id):
            yield json.dumps({"seq": stored.seq, "event": event_to_dict(stored.event)}) + "\n"


def _row(journal: RunJournal) -> RunRow:
    jobs = list(journal.jobs.values())
    return RunRow(
        id=journal.run_id,
        flow_name=journal.flow,
        flow_path=journal.flow_path,
        status=journal.status,
        started_at=journal.started_at or 0.0,
        ended_at=journal.ended_at,
        log_root=journal.log_root,
        resumed_from=journal.resumed_from,
        user="",
        host="",
        error=journal.error,
        tokens=Tokens.from_usage(journal.usage),
        cost=journal.cost,
        jobs_total=len(jobs),
        jobs_succeeded=sum(j.status is JobStatus.SUCCEEDED for j in jobs),
        jobs_failed=sum(j.status.is_failure for j in jobs),
        jobs_skipped=sum(j.status is JobStatus.SKIPPED for j in jobs),
        rehearsal=journal.rehearsal,
    )


def _attempt(run_id: str, job: str, a: AttemptEntry) -> AttemptRow:
    return AttemptRow(
        run_id=run_id,
        job=job,
        attempt=a.number,
        status=a.status,
        started_at=a.started_at,
        ended_at=a.ended_at,
        duration_s=a.duration_s,
        exit_code=a.exit_code,
        signal=a.signal,
        error=a.error,
        error_kind=a.error_kind,
        pid=a.pid,
        argv=a.argv,
        tool=a.tool,
        model=a.model,
        session_id=a.session_id,
        result=a.result,
        outputs=a.outputs,
        log_dir=a.log_dir,
        tokens=Tokens.from_usage(a.usage),
        cost=a.cost,
    )
