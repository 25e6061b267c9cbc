"""What the scheduler knows of each job, and how finished jobs look to the conditions
and templates of the jobs after them (`JobView`) and on the bus (`JobFinished`): its own
outcome, and what the job spent as the run's journal says."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from corral.events.types import JobFinished
from corral.execute.executor import AttemptOutcome
from corral.journal.state import AttemptEntry, RunJournal
from corral.models import JobStatus
from corral.plan import JobView, Plan, PlannedJob


@dataclass
class JobState:
    """What the scheduler knows of one job (what it spent is in the journal)."""

    status: JobStatus = JobStatus.WAITING
    attempts: int = 0
    outcome: AttemptOutcome | None = None
    reason: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    history: list[AttemptOutcome] = field(default_factory=list)
    # what the decision found upstream, for the conditions of the jobs below
    upstream_ok: bool = True
    upstream_failed: bool = False


class JobViews(Mapping[str, JobView]):
    """A read-only mapping of job outcomes that builds each view when asked, so that
    deciding one job costs what its needs cost, not what the whole plan costs.

    `known` are finished jobs outside the plan (a resumed run's, the needs `--from`
    left out).
    """

    def __init__(
        self,
        plan: Plan,
        states: Mapping[str, JobState],
        known: Mapping[str, JobView],
        journal: RunJournal,
    ) -> None:
        self._plan = plan
        self._states = states
        self._known = known
        self._journal = journal

    def __getitem__(self, name: str) -> JobView:
        state = self._states.get(name)
        if state is None:
            return self._known[name]
        outcome = state.outcome
        spent = self._journal.job(name)
        # a job that called no model spent $0 as conditions see it; an unpriced one: None
        cost = spent.cost
        cost_usd = 0.0 if cost is None else None if cost.usd is None else float(cost.usd)
        return JobView(
            status=state.status,
            result=outcome.result if outcome else None,
            exit_code=outcome.exit_code if outcome else None,
            session_id=outcome.session_id if outcome else None,
            usage=spent.usage,
            cost_usd=cost_usd,
            outputs=state.outputs,
            continue_on_error=self._plan.jobs[name].spec.continue_on_error,
            upstream_ok=state.upstream_ok,
            upstream_failed=state.upstream_failed,
        )

    def __iter__(self) -> Iterator[str]:
        yield from self._states
        yield from (n for n in self._known if n not in self._states)

    def __len__(self) -> int:
        return len(self._states) + sum(1 for n in self._known if n not in self._states)

    def __contains__(self, name: object) -> bool:
        return name in self._states or name in self._known


def finished_event(
    job: PlannedJob,
    attempt: int,
    outcome: AttemptOutcome,
    outputs: dict[str, str],
    spent: AttemptEntry | None,
    ended_at: float,
) -> JobFinished:
    """The `JobFinished` of `job`'s `attempt` (0: settled without one), with the attempt's
    figures as the journal holds them (from the ledger's SpendUpdated)."""
    priced = spent.cost_by_model.items() if spent is not None else ()
    return JobFinished(
        job=job.name,
        attempt=attempt,
        status=outcome.status,
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        duration_s=outcome.duration_s,
        error=outcome.error,
        error_kind=outcome.error_kind,
        result=outcome.result,
        tool=job.adapter,
        session_id=outcome.session_id,
        outputs=outputs,
        unparsed_lines=outcome.unparsed_lines,
        by_model=dict(spent.by_model) if spent is not None else {},
        # no cost (None) unless it used tokens or its CLI reported a figure
        cost=spent.cost if spent is not None else None,
        cost_by_model={m: c.usd for m, c in priced if c.usd is not None},
        ended_at=ended_at,
    )
