"""What the renderers show, folded from the event stream: one `JobRow` per job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from corral.events.types import (
    AssistantText,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RateLimited,
    SessionStarted,
    ToolCall,
    UsageUpdated,
)
from corral.models import Cost, JobStatus, Usage


@dataclass
class JobRow:
    name: str
    seq: int
    status: JobStatus = JobStatus.WAITING
    reason: str | None = None
    tool: str = "generic"
    model: str | None = None
    model_source: str | None = None  # flow, output, or the CLI file it was read from
    attempts: int = 0
    pid: int | None = None
    started: float | None = None  # monotonic
    started_wall: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    error_kind: str | None = None
    last_line: str = ""
    log_dir: str | None = None
    argv: tuple[str, ...] = ()
    session_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost: Cost | None = None
    models: tuple[str, ...] = ()
    tool_calls_live: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    result: str | None = None

    def elapsed(self, now: float | None = None) -> float:
        if self.duration_s is not None and self.status.is_final:
            return self.duration_s
        if self.started is None:
            return 0.0
        return (now or time.monotonic()) - self.started


class RunState:
    """A subscriber that keeps the latest view of every job."""

    def __init__(self, jobs: list[str]) -> None:
        self.rows = {name: JobRow(name, index + 1) for index, name in enumerate(jobs)}
        self.started = time.monotonic()

    def row(self, name: str) -> JobRow:
        if name not in self.rows:
            self.rows[name] = JobRow(name, len(self.rows) + 1)
        return self.rows[name]

    def __call__(self, event: Event) -> None:  # noqa: C901  # one branch per event kind, flat
        if isinstance(event, JobOutput):
            row = self.rows[event.job]
            if row.tool == "generic" and (event.stream == "stdout" or not row.last_line):
                row.last_line = event.text
            return
        if not event.job:
            return
        row = self.row(event.job)
        if isinstance(event, JobStarted):
            row.status = JobStatus.RUNNING
            row.reason = None
            row.attempts = event.attempt
            row.pid = event.pid
            row.tool = event.tool
            if event.model:
                row.model, row.model_source = event.model, "flow"
            row.argv = event.argv
            row.log_dir = event.log_dir
            row.started = row.started or time.monotonic()
            row.started_wall = row.started_wall or event.started_at
        elif isinstance(event, JobFinished):
            row.status = event.status
            row.exit_code = event.exit_code
            row.signal = event.signal
            row.error = event.error
            row.error_kind = event.error_kind.value if event.error_kind else None
            row.attempts = max(row.attempts, event.attempt)
            row.ended = time.monotonic()
            row.duration_s = row.ended - row.started if row.started else event.duration_s
            row.session_id = event.session_id or row.session_id
            row.outputs = event.outputs
            row.result = event.result
            row.tool = event.tool
            if event.by_model:
                row.models = tuple(event.by_model)
        elif isinstance(event, JobSkipped):
            row.status = JobStatus.SKIPPED if row.status is not JobStatus.CANCELLED else row.status
            row.reason = event.reason
        elif isinstance(event, JobWaiting):
            row.reason = event.reason
        elif isinstance(event, JobRetrying):
            row.status = JobStatus.RETRYING
            row.reason = f"retry {event.attempt + 1} in {event.delay_s:.1f}s: {event.reason}"
        elif isinstance(event, SessionStarted):
            row.session_id = event.session_id or row.session_id
            if event.model and (event.model != row.model or event.model_source):
                row.model = event.model
                row.model_source = event.model_source or "output"
        elif isinstance(event, UsageUpdated):
            row.models = tuple(dict.fromkeys((*row.models, *event.by_model)))
        elif isinstance(event, ToolCall):
            row.tool_calls_live += 1
            row.last_line = f"⚙ {event.name}"
        elif isinstance(event, AssistantText):
            lines = [line for line in event.text.splitlines() if line.strip()]
            if lines:
                row.last_line = lines[-1]
        elif isinstance(event, RateLimited):
            row.reason = (
                f"rate limited{f' ({event.status})' if event.status else ''}: {event.message}"[:120]
            )

    def counts(self) -> dict[JobStatus, int]:
        out: dict[JobStatus, int] = {}
        for row in self.rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out
