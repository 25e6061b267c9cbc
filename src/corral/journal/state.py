"""THE fold of a run's events into its state: the run, its jobs, their attempts, usage,
cost and budgets.

`RunJournal` is a bus subscriber; the terminal view, the `--json` summary, the history
writer, the scheduler's view of finished jobs (for conditions and templates) and a
server's snapshot all read the same one. It reads no clock: every time in it comes from
an event, so folding a run's stored events later gives the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from corral.events.types import (
    AssistantText,
    BudgetExceeded,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    JobWaiting,
    RateLimited,
    RunFinished,
    RunRefused,
    RunStarted,
    SessionStarted,
    SpendUpdated,
    ToolCall,
    UsageUpdated,
)
from corral.models import (
    BudgetLimits,
    Cost,
    CostSource,
    ErrorKind,
    JobStatus,
    RunStatus,
    Usage,
)

PLAIN = "generic"  # the tool name events give a plain command
E = TypeVar("E", bound=Event)


@dataclass
class AttemptEntry:
    """One attempt of a job, as its events tell it."""

    number: int
    status: JobStatus = JobStatus.RUNNING
    started_at: float | None = None  # wall clock, from JobStarted
    ended_at: float | None = None  # wall clock, from JobFinished
    duration_s: float | None = None
    pid: int | None = None
    argv: tuple[str, ...] = ()
    log_dir: str = ""
    spec: dict[str, object] = field(default_factory=dict)
    tool: str = PLAIN
    model: str | None = None
    session_id: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    result: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    unparsed_lines: int = 0
    by_model: dict[str, Usage] = field(default_factory=dict)
    cost: Cost | None = None  # None: it called no model
    cost_by_model: dict[str, Cost] = field(default_factory=dict)
    finished: bool = False

    @property
    def usage(self) -> Usage:
        return Usage.sum(self.by_model.values())


@dataclass
class JobEntry:
    """One job of the run: where it is, why, and what it spent over all its attempts."""

    name: str
    seq: int  # its place in the flow (1, 2, ...)
    status: JobStatus = JobStatus.WAITING
    reason: str | None = None
    tool: str = PLAIN
    model: str | None = None  # the model it announced (live)
    model_source: str | None = None  # flow, output, or the CLI file it was read from
    models: tuple[str, ...] = ()  # every model it used
    attempts: dict[int, AttemptEntry] = field(default_factory=dict)
    attempt_count: int = 0
    started_at: float | None = None  # its first attempt's start
    ended_at: float | None = None  # its last attempt's end
    duration_s: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    session_id: str | None = None
    result: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    log_dir: str | None = None
    last_line: str = ""
    tool_calls_live: int = 0
    usage: Usage = field(default_factory=Usage)  # every attempt's, earlier runs' included
    cost: Cost | None = None  # None: no model was ever called

    @property
    def final_status(self) -> JobStatus:
        """Its status for a summary: a job never settled counts as cancelled."""
        return self.status if self.status.is_final else JobStatus.CANCELLED

    @property
    def is_agent(self) -> bool:
        return self.tool != PLAIN

    @property
    def last(self) -> AttemptEntry | None:
        """The latest attempt, or None for a job that never started."""
        return self.attempts[max(self.attempts)] if self.attempts else None

    def elapsed(self, now: float) -> float:
        """Seconds it has run (all attempts), at wall-clock `now` while it runs."""
        if self.duration_s is not None and self.status.is_final:
            return self.duration_s
        if self.started_at is None:
            return 0.0
        return max(now - self.started_at, 0.0)


def has_cost(usage: Usage, cost: Cost) -> bool:
    """Whether spend is a cost, or no cost at all (`null` in every JSON document): it is
    when tokens were used or the CLI reported a figure itself (Claude's own "$0" after an
    API error stays a reported $0); corral's estimate for no tokens is no cost."""
    return bool(usage.total_tokens) or cost.source is CostSource.REPORTED


class RunJournal:
    """A bus subscriber folding every event of one run (see the module docstring).

    `jobs` holds the plan's jobs in plan order (a job first seen in an event is added
    after them); `budget` is the run budget, for meters; `breaches` the budgets reached.
    """

    def __init__(self, jobs: Iterable[str] = (), *, budget: BudgetLimits | None = None) -> None:
        self.jobs: dict[str, JobEntry] = {}
        for name in jobs:
            self.job(name)
        self.budget = budget
        self.breaches: list[BudgetExceeded] = []
        self.run_id = ""
        self.flow = ""
        self.flow_path = ""
        self.log_root = ""
        self.resumed_from: str | None = None
        self.rehearsal = False  # against the simulated provider: nothing was billed
        self.status = RunStatus.RUNNING
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.error: str | None = None
        self.denials: tuple[dict[str, Any], ...] = ()  # a run refused by policy: why
        self.usage = Usage()  # the run's, spend carried over from earlier runs included
        self.spent = Cost.zero()

    # -- reading ---------------------------------------------------------------------------

    def job(self, name: str) -> JobEntry:
        """The job's entry, made on first use."""
        entry = self.jobs.get(name)
        if entry is None:
            entry = self.jobs[name] = JobEntry(name, len(self.jobs) + 1)
        return entry

    def attempt(self, job: str, number: int) -> AttemptEntry | None:
        found = self.jobs.get(job)
        return None if found is None else found.attempts.get(number)

    @property
    def cost(self) -> Cost | None:
        """The run's cost; None when nothing was spent at all."""
        return self.spent if self.usage.total_tokens or self.spent.usd else None

    def counts(self) -> dict[JobStatus, int]:
        out: dict[JobStatus, int] = {}
        for job in self.jobs.values():
            out[job.status] = out.get(job.status, 0) + 1
        return out

    # -- folding ---------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        # one lookup by type: this runs for every event of a run, on the event loop
        fold = _FOLDS.get(type(event))
        if fold is not None:
            fold(self, event)

    def _run_finished(self, event: RunFinished) -> None:
        self.run_id = self.run_id or event.run_id
        self.status, self.ended_at, self.error = event.status, event.ended_at, event.error

    def _run_refused(self, event: RunRefused) -> None:
        self._run_finished(event)
        self.denials = event.denials

    def _breach(self, event: BudgetExceeded) -> None:
        self.breaches.append(event)

    def _skipped(self, event: JobSkipped) -> None:
        job = self.job(event.job)
        job.status = JobStatus.SKIPPED if job.status is not JobStatus.CANCELLED else job.status
        job.reason = event.reason

    def _waiting(self, event: JobWaiting) -> None:
        self.job(event.job).reason = event.reason

    def _retrying(self, event: JobRetrying) -> None:
        job = self.job(event.job)
        job.status = JobStatus.RETRYING
        job.reason = f"retry {event.attempt + 1} in {event.delay_s:.1f}s: {event.reason}"

    def _run_started(self, event: RunStarted) -> None:
        self.run_id, self.flow, self.flow_path = event.run_id, event.flow_name, event.flow_path
        self.log_root, self.resumed_from = event.log_root, event.resumed_from
        self.rehearsal = event.rehearsal
        self.started_at = event.started_at
        self.status = RunStatus.RUNNING
        for name in event.jobs:
            self.job(name)

    def _output(self, event: JobOutput) -> None:
        job = self.jobs.get(event.job)
        # a command's last line is what it printed; an agent's comes from its narrative
        if job is not None and not job.is_agent and (event.stream == "stdout" or not job.last_line):
            job.last_line = event.text

    def _started(self, event: JobStarted) -> None:
        job = self.job(event.job)
        job.status, job.reason = JobStatus.RUNNING, None
        job.attempt_count = max(job.attempt_count, event.attempt)
        job.tool = event.tool
        if event.model:
            job.model, job.model_source = event.model, "flow"
        job.log_dir = event.log_dir
        job.started_at = job.started_at if job.started_at is not None else event.started_at
        attempt = job.attempts.get(event.attempt) or AttemptEntry(event.attempt)
        job.attempts[event.attempt] = attempt
        attempt.status, attempt.started_at = JobStatus.RUNNING, event.started_at
        attempt.pid, attempt.argv, attempt.log_dir = event.pid, event.argv, event.log_dir
        attempt.spec, attempt.tool = dict(event.spec), event.tool
        attempt.model = event.model or attempt.model

    def _finished(self, event: JobFinished) -> None:
        job = self.job(event.job)
        job.status, job.tool = event.status, event.tool
        job.exit_code, job.signal = event.exit_code, event.signal
        job.error, job.error_kind = event.error, event.error_kind
        job.attempt_count = max(job.attempt_count, event.attempt)
        job.session_id = event.session_id or job.session_id
        job.outputs, job.result = dict(event.outputs), event.result
        if event.by_model:
            job.models = tuple(event.by_model)
        attempt = job.attempts.get(event.attempt) if event.attempt > 0 else None
        if attempt is None and event.attempt > 0:  # never started: a spawn or build failure
            attempt = job.attempts[event.attempt] = AttemptEntry(event.attempt, tool=event.tool)
        ended = event.ended_at
        if attempt is not None:
            if ended is None and attempt.started_at is not None:
                ended = attempt.started_at + event.duration_s  # an event from before ended_at
            self._attempt_finished(attempt, event, ended)
        job.ended_at = ended if ended is not None else job.ended_at
        if job.started_at is not None and ended is not None:
            job.duration_s = max(ended - job.started_at, 0.0)  # retry waits included
        else:
            job.duration_s = event.duration_s

    @staticmethod
    def _attempt_finished(attempt: AttemptEntry, event: JobFinished, ended: float | None) -> None:
        attempt.finished, attempt.status = True, event.status
        attempt.ended_at, attempt.duration_s = ended, event.duration_s
        if attempt.started_at is None and ended is not None:
            attempt.started_at = ended - event.duration_s
        attempt.exit_code, attempt.signal = event.exit_code, event.signal
        attempt.error, attempt.error_kind = event.error, event.error_kind
        attempt.result, attempt.outputs = event.result, dict(event.outputs)
        attempt.tool, attempt.unparsed_lines = event.tool, event.unparsed_lines
        attempt.session_id = event.session_id or attempt.session_id
        if event.cost is not None:  # the final figures (the ledger's); else the last stand
            attempt.cost = event.cost
        if event.by_model:
            attempt.by_model = dict(event.by_model)
            if not attempt.cost_by_model:  # no SpendUpdated seen: the event's own split
                source = event.cost.source if event.cost is not None else CostSource.REPORTED
                attempt.cost_by_model = {
                    m: Cost(usd, source) for m, usd in event.cost_by_model.items()
                }
            if len(event.by_model) == 1:
                attempt.model = next(iter(event.by_model))

    def _spend(self, event: SpendUpdated) -> None:
        self.usage, self.spent = event.run_usage, event.run_cost
        job = self.job(event.job) if event.job else None
        if job is None:
            return
        job.usage = event.job_usage
        job.cost = event.job_cost if has_cost(event.job_usage, event.job_cost) else None
        if event.attempt <= 0:
            return  # spend carried over from earlier runs: totals only
        attempt = job.attempts.get(event.attempt)
        if attempt is None:
            attempt = job.attempts[event.attempt] = AttemptEntry(event.attempt, tool=job.tool)
        attempt.by_model = dict(event.by_model)
        attempt.cost = event.cost if has_cost(event.usage, event.cost) else None
        attempt.cost_by_model = dict(event.cost_by_model)

    def _session(self, event: SessionStarted) -> None:
        job = self.job(event.job)
        job.session_id = event.session_id or job.session_id
        if event.model and (event.model != job.model or event.model_source):
            job.model = event.model
            job.model_source = event.model_source or "output"
        attempt = job.attempts.get(event.attempt)
        if attempt is not None:
            attempt.session_id = event.session_id or attempt.session_id
            attempt.model = event.model or attempt.model

    def _usage(self, event: UsageUpdated) -> None:
        job = self.job(event.job)
        if any(model not in job.models for model in event.by_model):
            job.models = tuple(dict.fromkeys((*job.models, *event.by_model)))

    def _tool_call(self, event: ToolCall) -> None:
        job = self.job(event.job)
        job.tool_calls_live += 1
        job.last_line = f"⚙ {event.name}"

    def _text(self, event: AssistantText) -> None:
        # its last line that is not blank (once per thing an agent says: from the end)
        for line in reversed(event.text.splitlines()):
            if line.strip():
                self.job(event.job).last_line = line
                return

    def _rate_limited(self, event: RateLimited) -> None:
        status = f" ({event.status})" if event.status else ""
        self.job(event.job).reason = f"rate limited{status}: {event.message}"[:120]


def _job_event(fold: Callable[[RunJournal, E], None]) -> Callable[[RunJournal, E], None]:
    """A job's event folds only when it names a job (a parser's own events do not)."""

    def guarded(journal: RunJournal, event: E) -> None:
        if event.job:
            fold(journal, event)

    return guarded


# how each kind of event folds; a kind not here changes nothing (a tool's result...)
_FOLDS: dict[type[Event], Callable[[RunJournal, Any], None]] = {
    JobOutput: RunJournal._output,
    SpendUpdated: RunJournal._spend,
    RunStarted: RunJournal._run_started,
    RunFinished: RunJournal._run_finished,
    RunRefused: RunJournal._run_refused,
    BudgetExceeded: RunJournal._breach,
    JobStarted: _job_event(RunJournal._started),
    JobFinished: _job_event(RunJournal._finished),
    JobSkipped: _job_event(RunJournal._skipped),
    JobWaiting: _job_event(RunJournal._waiting),
    JobRetrying: _job_event(RunJournal._retrying),
    SessionStarted: _job_event(RunJournal._session),
    UsageUpdated: _job_event(RunJournal._usage),
    ToolCall: _job_event(RunJournal._tool_call),
    AssistantText: _job_event(RunJournal._text),
    RateLimited: _job_event(RunJournal._rate_limited),
}
