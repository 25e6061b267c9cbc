"""The events of a run: frozen values with a stable `kind` name and a schema version.

Two families share one base:
- run and job lifecycle events, emitted by the scheduler;
- agent events, emitted by the pure parsers (`corral.parsing`). A parser knows nothing
  of jobs, so it leaves `job` empty and `attempt` 0; the runner stamps them with
  `dataclasses.replace` before publishing.

`event_to_dict` / `event_from_dict` give the JSON form the store and the web server use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from corral.models import Cost, CostSource, ErrorKind, JobStatus, RunStatus, Usage

SCHEMA_VERSION = 1

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event. `job` is empty for run-level events."""

    kind: ClassVar[str] = "event"
    job: str = ""
    attempt: int = 0


# -- run and job lifecycle ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run.started"
    run_id: str
    flow_name: str
    flow_path: str
    jobs: tuple[str, ...]
    started_at: float
    flow_hash: str = ""
    flow_content: str = ""
    args: tuple[str, ...] = ()
    user: str = ""
    host: str = ""
    log_root: str = ""
    resumed_from: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run.finished"
    run_id: str
    status: RunStatus
    ended_at: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobWaiting(Event):
    """A job cannot start yet; `reason` says why (needs, concurrency, rate limit, budget)."""

    kind: ClassVar[str] = "job.waiting"
    reason: str
    status: JobStatus = JobStatus.WAITING


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStarted(Event):
    kind: ClassVar[str] = "job.started"
    pid: int
    argv: tuple[str, ...]
    log_dir: str
    started_at: float
    tool: str = "generic"
    model: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)  # the job's spec after templating


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutput(Event):
    """One output line. `offset` is where the line starts in the job's log file.

    `text` is for display: decoded with replacement and possibly cut short
    (`truncated`); the log file always holds every byte.
    """

    kind: ClassVar[str] = "job.output"
    stream: str  # "stdout" | "stderr"
    text: str
    offset: int
    truncated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRetrying(Event):
    kind: ClassVar[str] = "job.retrying"
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSkipped(Event):
    kind: ClassVar[str] = "job.skipped"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFinished(Event):
    kind: ClassVar[str] = "job.finished"
    status: JobStatus
    exit_code: int | None
    signal: int | None
    duration_s: float
    error: str | None = None
    error_kind: ErrorKind | None = None
    result: str | None = None
    tool: str = "generic"
    session_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    # this attempt's accounting, final when the event is published
    by_model: dict[str, Usage] = field(default_factory=dict)
    cost: Cost | None = None
    cost_by_model: dict[str, Decimal] = field(default_factory=dict)
    unparsed_lines: int = 0

    @property
    def usage(self) -> Usage:
        total = Usage()
        for usage in self.by_model.values():
            total = total + usage
        return total


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetExceeded(Event):
    """A run or job budget was crossed; `action` is what corral does about it."""

    kind: ClassVar[str] = "budget.exceeded"
    scope: str  # "run" or "job"
    limit: str  # e.g. "usd 5.00" or "tokens 2000000"
    spent: str
    action: str  # "warn" | "stop" | "kill"


# -- agent events (emitted by parsers) ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(Event):
    """The CLI named its session, or the model it uses. `model_source` says where the
    model was read when the CLI's output did not name it (its session file, its config)."""

    kind: ClassVar[str] = "agent.session"
    session_id: str | None
    model: str | None = None
    model_source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantText(Event):
    kind: ClassVar[str] = "agent.text"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(Event):
    kind: ClassVar[str] = "agent.tool_call"
    name: str
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(Event):
    kind: ClassVar[str] = "agent.tool_result"
    call_id: str | None
    is_error: bool = False
    permission_denied: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageUpdated(Event):
    """The job's usage so far, per model: a running total that replaces the last one.

    Totals rather than deltas, so that a CLI's final figures (Claude's `result`) can
    simply supersede the live estimate. `final` marks the CLI's own totals. `cost` is
    set only when the CLI reported it (source REPORTED); otherwise corral prices it.
    """

    kind: ClassVar[str] = "agent.usage"
    by_model: dict[str, Usage]
    final: bool = False
    cost: Cost | None = None
    cost_by_model: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Usage:
        total = Usage()
        for usage in self.by_model.values():
            total = total + usage
        return total


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimited(Event):
    """The CLI met a rate limit (and may be retrying by itself)."""

    kind: ClassVar[str] = "agent.rate_limited"
    status: int | None = None
    retry_after_s: float | None = None
    reset_at: float | None = None
    message: str = ""
    retrying: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResult(Event):
    """The agent's final answer and how the CLI says it ended."""

    kind: ClassVar[str] = "agent.result"
    text: str | None
    is_error: bool = False
    error_kind: ErrorKind | None = None
    num_turns: int | None = None
    session_id: str | None = None
    permission_denials: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentError(Event):
    kind: ClassVar[str] = "agent.error"
    error_kind: ErrorKind
    message: str
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unparsed(Event):
    """A line the parser could not read; it stays in the log and is counted."""

    kind: ClassVar[str] = "agent.unparsed"
    preview: str


# -- JSON form -----------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Usage | Cost):
        return value.to_dict()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready form: `{"v": 1, "kind": ..., <fields>}`."""
    data: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": event.kind}
    for f in dataclasses.fields(event):
        data[f.name] = _encode(getattr(event, f.name))
    return data


def _decode_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "by_model":
        return {k: Usage.from_dict(v) for k, v in value.items()}
    if name == "cost":
        usd = value.get("usd")
        return Cost(None if usd is None else Decimal(usd), CostSource(value["source"]))
    if name == "cost_by_model":
        return {k: Decimal(v) for k, v in value.items()}
    if name in ("status", "spec", "outputs"):
        return value
    if isinstance(value, list):
        return tuple(value)
    return value


def _event_class(kind: str) -> type[Event]:
    # walked on demand (not cached at import) so that event classes defined later count
    stack: list[type[Event]] = [Event]
    while stack:
        cls = stack.pop()
        if cls.__dict__.get("kind") == kind:
            return cls
        stack.extend(cls.__subclasses__())
    raise KeyError(f"unknown event kind {kind!r}")


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event written by `event_to_dict` (unknown keys are ignored)."""
    cls = _event_class(data["kind"])
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: _decode_field(k, v) for k, v in data.items() if k in names}
    event = cls(**kwargs)
    # enums come back as plain strings; restore them where the field is typed so
    if isinstance(event, JobFinished):
        event = dataclasses.replace(
            event,
            status=JobStatus(event.status),
            error_kind=ErrorKind(event.error_kind) if event.error_kind else None,
        )
    elif isinstance(event, RunFinished):
        event = dataclasses.replace(event, status=RunStatus(event.status))
    elif isinstance(event, AgentResult | AgentError) and event.error_kind:
        event = dataclasses.replace(event, error_kind=ErrorKind(event.error_kind))
    return event


def stamp(event: E, job: str, attempt: int) -> E:
    """The same event, attributed to a job attempt."""
    return dataclasses.replace(event, job=job, attempt=attempt)
