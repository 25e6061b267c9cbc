"""The events of a run: frozen values with a stable `kind` name and a schema version.

Three families share one base:
- run and job lifecycle events, emitted by the run use case, the scheduler and the
  executor (`JobStarted`);
- agent events, emitted by the pure parsers (`corral.parsing`). A parser knows nothing
  of jobs, so it leaves `job` empty and `attempt` 0; the attempt pipeline stamps them
  with `dataclasses.replace` before publishing;
- accounting events, emitted by the ledger and the budget guard (`SpendUpdated`,
  `BudgetExceeded`).

Their JSON form is `corral.events.codec`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeVar

from corral.models import (
    BudgetAction,
    BudgetScope,
    BudgetUnit,
    Cost,
    ErrorKind,
    JobStatus,
    RunStatus,
    Usage,
)

E = TypeVar("E", bound="Event")
Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event. `job` is empty for run-level events."""

    kind: ClassVar[str] = "event"
    job: str = ""
    attempt: int = 0


# -- run and job lifecycle ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    """A run begins: what it runs, where its logs go, and who started it where."""

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
    rehearsal: bool = False  # agent jobs talk to the simulated provider: nothing is billed


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    """The run's last job is final (or the run was found dead): how it ended."""

    kind: ClassVar[str] = "run.finished"
    run_id: str
    status: RunStatus
    ended_at: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRefused(RunFinished):
    """A policy denied the flow before anything started (status REFUSED).

    `denials` are the policy findings in their JSON form (rule, job, message, file,
    line, details, location); the run has no jobs and no logs.
    """

    kind: ClassVar[str] = "run.refused"
    denials: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobWaiting(Event):
    """A job cannot start yet; `reason` says why (needs, concurrency, rate limit, budget)."""

    kind: ClassVar[str] = "job.waiting"
    reason: str
    status: JobStatus = JobStatus.WAITING


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStarted(Event):
    """An attempt's process exists. Its executor publishes this before any output of
    the attempt; `pid` is the process (group) a later `corral resume` may stop."""

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
    stream: Stream
    text: str
    offset: int
    truncated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRetrying(Event):
    """Attempt `attempt` failed and another starts after `delay_s`."""

    kind: ClassVar[str] = "job.retrying"
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSkipped(Event):
    """A job will not run: its condition is false, a need failed, or the run stopped."""

    kind: ClassVar[str] = "job.skipped"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFinished(Event):
    """An attempt ended (or a job was settled without one: attempt 0).

    The accounting fields are the attempt's figures as the run's fold holds them when
    the event is published (from the ledger's `SpendUpdated`); `cost` is None for an
    attempt that called no model. `ended_at` is the wall-clock end, so a fold of stored
    events needs no clock.
    """

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
    ended_at: float | None = None

    @property
    def usage(self) -> Usage:
        return Usage.sum(self.by_model.values())


# -- accounting ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendUpdated(Event):
    """The ledger priced an attempt's usage: its figures now, and the totals after them.

    Published after every `UsageUpdated` (and for the spend a resumed run carries over
    from earlier runs, with attempts 0, -1, ...). `cost` is the attempt's (the CLI's own
    figure when it reported one, else corral's estimate), `cost_by_model` its split;
    `job_*` and `run_*` are the job's and the run's totals over every attempt, so a
    subscriber needs no ledger of its own.
    """

    kind: ClassVar[str] = "spend.updated"
    by_model: dict[str, Usage]
    cost: Cost
    cost_by_model: dict[str, Cost] = field(default_factory=dict)
    job_usage: Usage = field(default_factory=Usage)
    job_cost: Cost = field(default_factory=Cost.zero)
    run_usage: Usage = field(default_factory=Usage)
    run_cost: Cost = field(default_factory=Cost.zero)

    @property
    def usage(self) -> Usage:
        return Usage.sum(self.by_model.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetExceeded(Event):
    """A run or job budget was reached; `action` is what corral does about it.

    `limit` and `spent` are in `unit`: exact dollars, or budget tokens. A run budget's
    event belongs to no job (`job` is empty).
    """

    kind: ClassVar[str] = "budget.exceeded"
    scope: BudgetScope
    unit: BudgetUnit
    limit: Decimal | int
    spent: Decimal | int
    action: BudgetAction


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
    """What the agent said (for the narrative; never interpreted)."""

    kind: ClassVar[str] = "agent.text"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(Event):
    """The agent called one of its tools."""

    kind: ClassVar[str] = "agent.tool_call"
    name: str
    call_id: str | None = None
    detail: str = ""  # what it was asked, in one line: a command, a path, a pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(Event):
    """A tool call's answer came back (denied, failed or not)."""

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
        return Usage.sum(self.by_model.values())


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
class ConnectionFailing(Event):
    """The CLI cannot reach its API and keeps retrying by itself (no network, no route,
    a refused connection). Such output is not progress: the idle watchdog does not count
    it, so a CLI that would retry forever is stopped and reported as unable to connect."""

    kind: ClassVar[str] = "agent.connection_failing"
    message: str = ""


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
    """The CLI reported a failure (an API error, an auth problem...) with its kind."""

    kind: ClassVar[str] = "agent.error"
    error_kind: ErrorKind
    message: str
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unparsed(Event):
    """A line the parser could not read; it stays in the log and is counted."""

    kind: ClassVar[str] = "agent.unparsed"
    preview: str


def stamp(event: E, job: str, attempt: int) -> E:
    """The same event, attributed to a job attempt.

    An event a parser just made is attributed to no one (`job` empty, attempt 0) and
    nobody else holds it yet: it is stamped in place (once per agent event, the cost
    of a copy through `dataclasses.replace` counted). One already attributed elsewhere
    (a parser that returns an event it made before) is copied, never changed.
    """
    if event.job == job and event.attempt == attempt:
        return event
    if event.job or event.attempt:
        return dataclasses.replace(event, job=job, attempt=attempt)
    object.__setattr__(event, "job", job)  # frozen: set before anyone else sees it
    object.__setattr__(event, "attempt", attempt)
    return event
