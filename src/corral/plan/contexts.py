"""The contexts `if:` and `${{ }}` read, as values of the expression language.

- `jobs.NAME.*`: corral's view of a finished job (status, result text, exit code, cost,
  tokens, outputs...), for the job's needs and any job upstream that it names;
- `needs.NAME.result` / `needs.NAME.outputs.KEY`: GitHub's `needs` context, for the
  direct needs as written (a matrix job is one entry, its result aggregated);
- `matrix.KEY`: this expansion's values;
- `env.NAME`: the environment corral runs in;
- `flow.name`, `flow.run_id`: the flow and this run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from corral.models import JobStatus
from corral.plan.views import JobView, token_counts

if TYPE_CHECKING:
    from corral.expressions.values import Record

CONTEXTS = ("jobs", "needs", "matrix", "env", "flow")
NEEDS_FIELDS = frozenset({"result", "outputs"})
FLOW_FIELDS = frozenset({"name", "run_id"})


@dataclass(frozen=True)
class RunScope:
    """What a run adds to every job's contexts: corral's environment and the flow."""

    env: Mapping[str, str] = field(default_factory=dict)
    flow_name: str = ""
    run_id: str = ""


def result_of(view: JobView) -> str:
    """GitHub's word for a finished job: success, failure, cancelled or skipped.

    A failure allowed by `continue_on_error` is a success, as on GitHub.
    """
    if view.ok:
        return "success"
    if view.status is JobStatus.CANCELLED:
        return "cancelled"
    if view.status is JobStatus.SKIPPED:
        return "skipped"
    return "failure"


def aggregate_result(results: Iterable[str]) -> str:
    """A matrix job's result from its expansions': any failure, else any cancellation,
    else success if one ran, else skipped."""
    found = set(results)
    for word in ("failure", "cancelled", "success"):
        if word in found:
            return word
    return "skipped"


def _record(values: Mapping[str, Any]) -> Record:
    # the expression values load with the first expression evaluated, not with the plan
    from corral.expressions.values import Record

    return Record(values)


def job_record(view: JobView) -> Record:
    """`jobs.NAME`: corral's view of a finished job."""
    return _record(
        {
            "status": view.status.value,
            "result": view.result or "",
            "exit_code": view.exit_code,
            "session_id": view.session_id,
            "cost_usd": view.cost_usd,
            "outputs": _record(view.outputs),
            "tokens": _record(token_counts(view.usage)),
            "continue_on_error": view.continue_on_error,
        }
    )


def needs_record(views: Sequence[JobView]) -> Record:
    """`needs.NAME` for the plan jobs one written need stands for (several for a matrix).

    Outputs are merged in plan order, a later non-empty value over an earlier one (on
    GitHub the last expansion to finish wins: corral's order is stable).
    """
    outputs: dict[str, str] = {}
    for view in views:
        outputs.update((key, value) for key, value in view.outputs.items() if value)
        for key in view.outputs:
            outputs.setdefault(key, "")
    return _record(
        {
            "result": aggregate_result(result_of(view) for view in views),
            "outputs": _record(outputs),
        }
    )


class ContextSource(Protocol):
    """What the contexts are built from: a planned job, or a template's context."""

    @property
    def matrix(self) -> Mapping[str, Any] | None: ...

    @property
    def need_groups(self) -> tuple[tuple[str, tuple[str, ...]], ...]: ...

    def readable(self) -> frozenset[str]: ...


_SATISFIED = JobView(JobStatus.SUCCEEDED)  # a need outside the plan with no recorded result


def _needs(job: ContextSource, states: Mapping[str, JobView]) -> Record:
    return _record(
        {
            written: needs_record([states.get(name, _SATISFIED) for name in members])
            for written, members in job.need_groups
        }
    )


def _jobs(job: ContextSource, states: Mapping[str, JobView]) -> Record:
    return _record({name: job_record(states[name]) for name in job.readable() if name in states})


def build_contexts(
    job: ContextSource,
    states: Mapping[str, JobView],
    scope: RunScope,
    roots: Iterable[str],
) -> dict[str, Any]:
    """The contexts named in `roots` (lower case) for `job`; the others are left out
    (a condition that reads only `needs` costs only `needs`)."""
    contexts: dict[str, Any] = {}
    for root in roots:
        if root == "jobs":
            contexts[root] = _jobs(job, states)
        elif root == "needs":
            contexts[root] = _needs(job, states)
        elif root == "matrix":
            contexts[root] = _record(job.matrix or {})
        elif root == "env":
            contexts[root] = _record(scope.env)
        elif root == "flow":
            contexts[root] = _record({"name": scope.flow_name, "run_id": scope.run_id})
    return contexts
