"""What a finished job looks like to a later job's condition or template: `jobs.NAME...`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.models import JobStatus, Usage
from corral.plan.expressions import Namespace

# the attributes `jobs.NAME.<field>` offers; build_plan checks references against them
JOB_FIELDS = frozenset(
    {
        "status",
        "result",
        "exit_code",
        "session_id",
        "cost_usd",
        "outputs",
        "tokens",
        "continue_on_error",
    }
)
TOKEN_FIELDS = frozenset({"input", "output", "cache_read", "cache_write", "total"})


@dataclass(frozen=True, slots=True)
class JobView:
    """The outcome of one job as conditions and templates see it.

    `cost_usd` is a float because it is only compared (`jobs.x.cost_usd < 0.5`);
    accounting keeps Decimal. `continue_on_error` is the job's own setting: a FAILED or
    TIMED_OUT job with it set counts as a success for `success()` and `failure()`.
    `upstream_ok` / `upstream_failed` say whether every job upstream of this one ended
    ok, and whether one failed: what `success()` and `failure()` of the jobs below read
    (they look at every ancestor, as on GitHub), filled in when the job is decided.
    """

    status: JobStatus
    result: str | None = None
    exit_code: int | None = None
    session_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    continue_on_error: bool = False
    upstream_ok: bool = True
    upstream_failed: bool = False

    @property
    def ok(self) -> bool:
        """Counts as success for the jobs that need it."""
        if self.status is JobStatus.SUCCEEDED:
            return True
        return self.continue_on_error and self.status in (JobStatus.FAILED, JobStatus.TIMED_OUT)

    @property
    def failed(self) -> bool:
        """A failure that `failure()` sees (cancellation and skips are not failures)."""
        return not self.ok and self.status in (JobStatus.FAILED, JobStatus.TIMED_OUT)


def token_counts(usage: Usage) -> dict[str, int]:
    """`jobs.NAME.tokens`: the TOKEN_FIELDS of a job's usage."""
    return {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read_tokens,
        "cache_write": usage.cache_write_tokens,
        "total": usage.total_tokens,
    }


def view_namespace(name: str, view: JobView) -> Namespace:
    tokens = token_counts(view.usage)
    values: dict[str, Any] = {
        "status": view.status.value,
        # "" rather than None so `'PASS' in jobs.x.result` works for a job with no result
        "result": view.result or "",
        "exit_code": view.exit_code,
        "session_id": view.session_id,
        "cost_usd": view.cost_usd,
        "outputs": Namespace(f"jobs.{name}.outputs", dict(view.outputs)),
        "tokens": Namespace(f"jobs.{name}.tokens", tokens),
        "continue_on_error": view.continue_on_error,
    }
    return Namespace(f"jobs.{name}", values)


def jobs_namespace(states: Mapping[str, JobView], names: Iterable[str]) -> Namespace:
    """`jobs` holding only `names` (those with a state): a job reads only what it needs."""
    visible = {name: view_namespace(name, states[name]) for name in names if name in states}
    return Namespace("jobs", visible)
