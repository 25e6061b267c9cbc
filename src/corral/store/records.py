"""The values the store returns: frozen rows of runs, jobs, attempts and usage.

Their `to_dict` is the JSON of `runs`, `show` and exports: times as ISO 8601 UTC text
(corral.times), though the rows hold POSIX seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from corral.models import (
    Cost,
    CostSource,
    ErrorKind,
    JobStatus,
    RunStatus,
    Tokens,
    decimal_text,
    money_json,
)
from corral.times import iso_time, seconds


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's share of one attempt."""

    model: str
    tokens: Tokens
    cost_usd: Decimal | None
    cost_source: CostSource

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tokens": self.tokens.to_dict(),
            "cost_usd": money_json(self.cost_usd),
            "cost_source": str(self.cost_source),
        }


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt of one job, as recorded at its last event."""

    run_id: str
    job: str
    attempt: int
    status: JobStatus
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    pid: int | None = None
    argv: tuple[str, ...] = ()
    spec: dict[str, Any] | None = None
    tool: str = "generic"
    model: str | None = None
    session_id: str | None = None
    result: str | None = None
    outputs: dict[str, str] | None = None
    log_dir: str = ""
    unparsed_lines: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    cost: Cost | None = None
    models: tuple[ModelUsage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "attempt": self.attempt,
            "status": str(self.status),
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": seconds(self.duration_s),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "error": self.error,
            "error_kind": None if self.error_kind is None else str(self.error_kind),
            "pid": self.pid,
            "argv": list(self.argv),
            "spec": self.spec,
            "tool": self.tool,
            "model": self.model,
            "session_id": self.session_id,
            "result": self.result,
            "outputs": self.outputs,
            "log_dir": self.log_dir,
            "unparsed_lines": self.unparsed_lines,
            "tokens": self.tokens.to_dict(),
            "cost": None if self.cost is None else self.cost.to_dict(),
            "models": [m.to_dict() for m in self.models],
        }


# what `corral show`'s table says of a job: its name, status, reason, number of tries,
# its last attempt's (tool, model, duration_s, exit_code, signal, error, error_kind) or
# None, its tokens in total and its cost (`JobRecord.line`, or straight from the rows)
JobLine = tuple[
    str,
    str,
    str | None,
    int,
    tuple[str, str | None, float | None, int | None, int | None, str | None, str | None] | None,
    int,
    Cost | None,
]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as at the end of the run: its status, why (when skipped) and every attempt."""

    name: str
    status: JobStatus
    reason: str | None
    attempts: tuple[AttemptRow, ...]

    @property
    def final(self) -> AttemptRow | None:
        """The last attempt, or None for a job that never started."""
        return self.attempts[-1] if self.attempts else None

    @property
    def tokens(self) -> Tokens:
        if len(self.attempts) == 1:
            return self.attempts[0].tokens
        total = Tokens()
        for attempt in self.attempts:
            total = total + attempt.tokens
        return total

    @property
    def cost(self) -> Cost | None:
        return Cost.total(a.cost for a in self.attempts)

    def line(self) -> JobLine:
        """What `corral show`'s table says of it."""
        a = self.final
        if a is None:
            return self.name, str(self.status), self.reason, 0, None, 0, None
        kind = None if a.error_kind is None else str(a.error_kind)
        final = (a.tool, a.model, a.duration_s, a.exit_code, a.signal, a.error, kind)
        return (
            self.name,
            str(self.status),
            self.reason,
            len(self.attempts),
            final,
            self.tokens.total,
            self.cost,
        )

    def to_dict(self) -> dict[str, Any]:
        attempts = [a.to_dict() for a in self.attempts]
        cost = self.cost
        return {
            "name": self.name,
            "status": str(self.status),
            "reason": self.reason,
            "tokens": self.tokens.to_dict(),
            "cost": None if cost is None else cost.to_dict(),
            "final": attempts[-1] if attempts else None,  # the same values, built once
            "attempts": attempts,
        }


@dataclass(frozen=True, slots=True)
class RunRow:
    """One line of `corral runs`."""

    id: str
    flow_name: str
    flow_path: str
    status: RunStatus
    started_at: float
    ended_at: float | None
    log_root: str
    resumed_from: str | None
    user: str
    host: str
    error: str | None
    tokens: Tokens
    cost: Cost | None
    jobs_total: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    jobs_skipped: int = 0
    rehearsal: bool = False  # against the simulated provider: its spend was never billed
    # apart from failed: a cancelled job was stopped (Ctrl-C, a budget, a killed corral),
    # it did not fail
    jobs_cancelled: int = 0

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flow_name": self.flow_name,
            "flow_path": self.flow_path,
            "status": str(self.status),
            "started_at": iso_time(self.started_at),
            "ended_at": iso_time(self.ended_at),
            "duration_s": seconds(self.duration_s),
            "log_root": self.log_root,
            "resumed_from": self.resumed_from,
            "rehearsal": self.rehearsal,
            "user": self.user,
            "host": self.host,
            "error": self.error,
            "jobs": {
                "total": self.jobs_total,
                "succeeded": self.jobs_succeeded,
                "failed": self.jobs_failed,
                "skipped": self.jobs_skipped,
                "cancelled": self.jobs_cancelled,
            },
            "tokens": self.tokens.to_dict(),
            "cost": None if self.cost is None else self.cost.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run with everything `corral show` prints."""

    run: RunRow
    flow_hash: str
    flow_content: str
    args: tuple[str, ...]
    jobs: tuple[JobRecord, ...]

    def job(self, name: str) -> JobRecord | None:
        return next((j for j in self.jobs if j.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.to_dict(),
            "flow_hash": self.flow_hash,
            "flow_content": self.flow_content,
            "args": list(self.args),
            "jobs": [j.to_dict() for j in self.jobs],
        }


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Tokens and cost of one group (a model, tool, job, flow or day).

    Cost is split by where it came from; `unpriced` counts model rows with no price, whose
    tokens are in `tokens` but whose cost is nowhere (never shown as $0).
    """

    key: str
    attempts: int
    tokens: Tokens
    reported_usd: Decimal
    estimated_usd: Decimal
    unpriced: int

    @property
    def known_usd(self) -> Decimal:
        return self.reported_usd + self.estimated_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "attempts": self.attempts,
            "tokens": self.tokens.to_dict(),
            "cost": {
                # a sum's text: without the trailing zeros it took from its terms
                # (0.0007800 is 0.00078), as every other sum of money is written
                "reported_usd": decimal_text(self.reported_usd),
                "estimated_usd": decimal_text(self.estimated_usd),
                "known_usd": decimal_text(self.known_usd),
                "unpriced": self.unpriced,
            },
        }


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job recorded as running: what `resume` must reap before starting again.

    Children start in their own session, so the process-group id is the pid.
    """

    run_id: str
    job: str
    attempt: int
    pid: int
    pgid: int
    started_at: float | None
    log_dir: str
