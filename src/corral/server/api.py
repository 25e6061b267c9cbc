"""The REST endpoints of /api/v1: runs, jobs, attempts, logs, usage, tools, submitting,
validating, cancelling and resuming. Each calls a use case or the history and answers
with a document of `corral.server.documents`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from corral.durations import parse_duration
from corral.errors import CorralError, ToolError
from corral.models import RunStatus
from corral.server import logs as job_logs
from corral.server.auth import Principal
from corral.server.documents import attempts_document, job_line, run_document, run_summary
from corral.server.errors import ApiError, from_corral
from corral.server.security import principal
from corral.server.state import ServerState, state_of
from corral.server.worker import RunChoices
from corral.store.protocols import USAGE_KEYS, UsageBy
from corral.store.records import RunRecord, RunRow, UsageRow
from corral.times import with_iso_times

router = APIRouter()
Caller = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]


class RunTuning(BaseModel):
    """How to run: `corral run`'s options that a server honours."""

    jobs: int | None = Field(None, ge=1, description="Most jobs at once (--jobs).")
    fail_fast: bool = Field(False, description="Cancel everything at the first failure.")
    start_at: str | float | None = Field(
        None, description="Start then: ISO 8601 with a zone, or POSIX seconds (--start-at)."
    )
    executor: str | None = Field(None, description="Where jobs run: an executor of the server.")

    def choices(self) -> RunChoices:
        return RunChoices(
            jobs=self.jobs,
            fail_fast=self.fail_fast,
            start_at=_instant(self.start_at),
            executor=self.executor,
        )


class FlowSubmission(RunTuning):
    """A flow document to run."""

    flow: str = Field(description="The flow file's text (YAML, JSON or TOML by filename).")
    filename: str = Field("flow.yaml", description="Its name: picks the format, names errors.")
    rehearse: bool = Field(False, description="Run against the simulated provider.")
    policy: str | None = Field(None, description="Reserved for run policies; must be null.")
    only: list[str] = Field([], description="Run only these jobs and what they need (--only).")
    from_: list[str] = Field(
        [], alias="from", description="Run these jobs and everything that needs them (--from)."
    )

    model_config = {"populate_by_name": True}

    def choices(self) -> RunChoices:
        return replace(super().choices(), only=tuple(self.only), from_=tuple(self.from_))


def _instant(value: str | float | None) -> float | None:
    """An absolute time: POSIX seconds, or ISO 8601 with a zone (no zone: UTC)."""
    if value is None or isinstance(value, int | float):
        return value
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "bad_request", f"start_at: {value!r} is not a time (ISO 8601 or POSIX seconds)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class FlowCheck(BaseModel):
    flow: str
    filename: str = "flow.yaml"


class Accepted(BaseModel):
    run_id: str
    url: str


def _when(value: str | None, name: str) -> float | None:
    """A time filter: ISO 8601, POSIX seconds, or a duration back from now (7d, 12h)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(value)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(
            400, "bad_request", f"{name}: {value!r} is not a time (ISO 8601, 7d, or seconds)"
        ) from None


async def _record(state: ServerState, run: str) -> RunRecord:
    try:
        return await asyncio.to_thread(state.history.get_run, run)
    except CorralError as error:
        raise from_corral(error) from None


def _page_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error):
        raise ApiError(400, "bad_request", "cursor: not a cursor this server handed out") from None


@router.get("/runs", summary="List runs, newest first")
async def list_runs(
    caller: Caller,
    state: State,
    status: RunStatus | None = None,
    flow: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    rehearsal: Annotated[
        bool | None, Query(description="Only rehearsals (true) or only real runs (false).")
    ] = None,
    chain: Annotated[
        bool,
        Query(
            description="A run and its resumes as one line, the newest run with the whole "
            "chain's figures and a `chain` object (true); every run alone (false, "
            "`--no-chain`)."
        ),
    ] = True,
) -> dict[str, Any]:
    start = _page_cursor(cursor)
    after, before = _when(since, "since"), _when(until, "until")
    fetch = None if before else start + limit + 1
    lines = await asyncio.to_thread(
        _run_lines, state, status, flow, after, fetch, rehearsal, chain=chain
    )
    if before is not None:
        lines = [(row, runs) for row, runs in lines if row.started_at < before]
    page = lines[start : start + limit]
    more = len(lines) > start + limit
    token = base64.urlsafe_b64encode(str(start + limit).encode()).decode().rstrip("=")
    return {
        "runs": [_summary_line(row, runs) for row, runs in page],
        "next_cursor": token if more else None,
    }


def _run_lines(
    state: ServerState,
    status: RunStatus | None,
    flow: str | None,
    since: float | None,
    limit: int | None,
    rehearsal: bool | None,
    *,
    chain: bool,
) -> list[tuple[RunRow, tuple[RunRow, ...] | None]]:
    """The list's lines: with `chain`, `corral runs`' logical runs (`corral.app.chain`),
    each with its runs newest first; else the runs alone (no chain)."""
    if not chain:
        rows = state.history.list_runs(status, flow, since, limit, rehearsal=rehearsal)
        return [(row, None) for row in rows]
    from corral.app.chain import logical_runs

    found = logical_runs(
        state.history, status=status, flow=flow, since=since, limit=limit, rehearsal=rehearsal
    )
    return [(line.row, line.chain) for line in found]


def _summary_line(row: RunRow, runs: tuple[RunRow, ...] | None) -> dict[str, Any]:
    if runs is None:
        return run_summary(row)
    from corral.app.chain import chain_dict

    return {**run_summary(row), "chain": chain_dict(runs, row)}


@router.post("/runs", status_code=201, summary="Submit a flow to run")
async def submit(body: FlowSubmission, caller: Caller, state: State) -> Accepted:
    if body.policy is not None:
        raise ApiError(400, "bad_request", "policy: this server takes no run policy yet (null)")
    try:
        run_id = await state.runs.submit(
            body.flow, body.filename, caller.owner, rehearse=body.rehearse, choices=body.choices()
        )
    except ToolError as error:
        raise ApiError(422, "tool_missing", " ".join(error.lines())) from None
    return Accepted(run_id=run_id, url=f"/api/v1/runs/{run_id}")


@router.post("/validate", summary="Check a flow without running it")
async def validate(body: FlowCheck, caller: Caller, state: State) -> dict[str, Any]:
    from corral.app.check import check_flow_text

    _, plan = await asyncio.to_thread(
        check_flow_text, body.flow, body.filename, base_dir=state.runs.base_dir
    )
    return {"ok": True, "jobs": len(plan.jobs)}


@router.get("/runs/{run}", summary="One run, its jobs, attempts and graph")
async def show_run(run: str, caller: Caller, state: State) -> dict[str, Any]:
    record = await _record(state, run)
    return await asyncio.to_thread(_chained_document, state, record)


def _chained_document(state: ServerState, record: RunRecord) -> dict[str, Any]:
    """The run's document with its resume chain (`corral show --json`'s `chain`)."""
    from corral.app.chain import chain_dict, chain_of, logical_row, resumed_by
    from corral.app.history import kept_from_earlier

    chain = chain_of(state.history, record)
    earlier = chain[1:]
    document = run_document(record, kept_from_earlier(state.history, record, earlier), earlier)
    later = resumed_by(state.history, record.run)
    runs = tuple(r.run for r in chain)
    document["chain"] = chain_dict(runs, logical_row(chain), resumed_by=later)
    return document


@router.get("/runs/{run}/jobs", summary="A run's jobs")
async def run_jobs(run: str, caller: Caller, state: State) -> dict[str, Any]:
    from corral.server.lastline import last_lines

    record = await _record(state, run)
    lines = await asyncio.to_thread(last_lines, state.history, record)
    jobs = [job_line(j, lines.get(j.name, "")) for j in record.jobs]
    return {"run_id": record.run.id, "jobs": jobs}


@router.get("/runs/{run}/jobs/{job}/attempts", summary="A job's attempts")
async def job_attempts(run: str, job: str, caller: Caller, state: State) -> dict[str, Any]:
    record = await _record(state, run)
    found = record.job(job)
    if found is None:
        raise ApiError(404, "not_found", f"no job {job!r} in run {record.run.id}")
    return {"run_id": record.run.id, "job": job, "attempts": attempts_document(found)}


@router.get("/runs/{run}/jobs/{job}/logs", summary="A job's output lines (or follow them)")
async def job_log(
    run: str,
    job: str,
    caller: Caller,
    state: State,
    attempt: Annotated[int | None, Query(ge=1)] = None,
    stream: Literal["stdout", "stderr", "both"] = "both",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Literal["raw", "text", "json"] = "raw",
    follow: bool = False,
    stderr_offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    from corral.app.logview import LogView, attempt_of

    record = await _record(state, run)
    files = job_logs.files_of(record, job, attempt, stream)
    view = None if format == "raw" else LogView(format, attempt_of(record, job, attempt), job)
    if follow:
        # each stream has its own offset: with both, `offset` is stdout's
        offsets = [stderr_offset if name == "stderr" and len(files) > 1 else offset
                   for name, _ in files]  # fmt: skip
        lines = job_logs.follow(state.history, record.run.id, job, files, offsets, attempt, view)
        return StreamingResponse(lines, media_type="application/x-ndjson")
    done = job_logs.attempt_over(record, job, attempt)
    page = await asyncio.to_thread(job_logs.read, files, offset, limit, done, view)
    return {
        "lines": page.lines,
        "next_offset": page.next_offset,
        "complete": done and page.at_end,
    }


@router.post("/runs/{run}/cancel", status_code=202, summary="Cancel a running run")
async def cancel(run: str, caller: Caller, state: State) -> dict[str, Any]:
    try:
        run_id = await state.runs.cancel(run)
    except CorralError as error:
        raise from_corral(error) from None
    return {"run_id": run_id, "status": "cancelling"}


@router.post("/runs/{run}/resume", status_code=202, summary="Finish an interrupted run")
async def resume(
    run: str, caller: Caller, state: State, body: Annotated[RunTuning | None, Body()] = None
) -> dict[str, Any]:
    choices = (body or RunTuning()).choices()
    try:
        run_id = await state.runs.resume(run, caller.owner, choices)
    except ApiError:
        raise
    except CorralError as error:
        raise from_corral(error) from None
    return {"run_id": run_id, "resumed": run, "url": f"/api/v1/runs/{run_id}"}


def _usage_by(by: str) -> UsageBy:
    if by not in USAGE_KEYS:
        raise ApiError(400, "bad_request", f"by: one of {', '.join(USAGE_KEYS)}, not {by!r}")
    return by


IncludeRehearsals = Annotated[
    bool, Query(description="Count rehearsals too (their spend is simulated).")
]


async def _usage_rows(
    state: ServerState, key: UsageBy, since: str | None, include_rehearsals: bool
) -> list[UsageRow]:
    when = _when(since, "since")
    return await asyncio.to_thread(
        functools.partial(state.history.usage, include_rehearsals=include_rehearsals), key, when
    )


@router.get("/usage", summary="Tokens and cost grouped like `corral usage --by`")
async def usage(
    caller: Caller,
    state: State,
    by: str = "model",
    since: str | None = None,
    include_rehearsals: IncludeRehearsals = False,
) -> dict[str, Any]:
    key = _usage_by(by)
    rows = await _usage_rows(state, key, since, include_rehearsals)
    return {"schema_version": 1, "by": key, "rows": [with_iso_times(r.to_dict()) for r in rows]}


@router.get("/usage.csv", summary="The same as CSV", response_class=PlainTextResponse)
async def usage_csv(
    caller: Caller,
    state: State,
    by: str = "model",
    since: str | None = None,
    include_rehearsals: IncludeRehearsals = False,
) -> Response:
    from corral.render.history import usage_csv as as_csv

    key = _usage_by(by)
    rows = await _usage_rows(state, key, since, include_rehearsals)
    return PlainTextResponse(as_csv(key, rows), media_type="text/csv")


@router.get("/tools", summary="The registered agent CLIs and whether this server has them")
async def tools(caller: Caller) -> dict[str, Any]:
    from corral.cli.tools import tool_statuses
    from corral.execute.prepare import default_environ

    found = await asyncio.to_thread(tool_statuses, default_environ())
    return {
        "tools": [
            {**s.to_dict(), "verified": s.warning is None and s.verified_version is not None}
            for s in found
        ]
    }


@router.post("/session", status_code=204, summary="Log a browser in: sets the session cookie")
async def open_session(request: Request, response: Response, state: State) -> Response:
    from corral.server.security import session_login

    return await session_login(request, state)


@router.get("/session", summary="Who the token or cookie stands for")
async def who(caller: Caller) -> dict[str, Any]:
    return {"owner": caller.owner, "via_cookie": caller.via_cookie}


@router.delete("/session", status_code=204, summary="Log a browser out")
async def close_session(caller: Caller, state: State) -> Response:
    from corral.server.security import session_logout

    return session_logout(state)
