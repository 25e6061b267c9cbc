"""`if:` conditions: GitHub Actions' status functions over Jinja2 sandboxed expressions.

Status functions, judged when every need of the job has finished:

- `success()`: the run was not cancelled and every need (direct) ended ok: succeeded,
  or failed / timed out with `continue_on_error`. The default condition. A skipped need
  is not ok, so a failure skips everything below it unless a condition says otherwise.
- `failure()`: some job upstream (any transitive need) failed or timed out without
  `continue_on_error`. Transitive so a final `notify` job fires even when the failure
  was several levels up and the jobs between were skipped.
- `cancelled()`: the run was cancelled (`run_cancelled`), or some job upstream ended
  CANCELLED (a kill by fail_fast, a budget, or the user).
- `always()`: true.

An expression that calls none of these means `success() and (expression)`, as on
GitHub: `if: jobs.t.exit_code == 0` never runs after a failed need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError

from corral.models import JobStatus
from corral.plan.expressions import (
    call_names,
    compile_ast,
    parse_expression,
    references,
    strip_wrapper,
)
from corral.plan.views import JobView, jobs_namespace

if TYPE_CHECKING:
    from corral.plan.model import PlannedJob

STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
UPSTREAM_FUNCTIONS = frozenset({"failure", "cancelled"})
CONDITION_NAMES = frozenset({"jobs", "matrix"}) | STATUS_FUNCTIONS


@dataclass(frozen=True)
class Condition:
    """A compiled `if:`. `source` is None for the default, `success()`."""

    source: str | None
    expression: str
    offset: int = 0  # where `expression` starts inside `source` (after a `${{`)
    calls: frozenset[str] = frozenset({"success"})
    refs: tuple[tuple[str, ...], ...] = ()
    compiled: TemplateExpression | None = field(default=None, compare=False, repr=False)

    @property
    def is_default(self) -> bool:
        return self.compiled is None

    @property
    def implicit_success(self) -> bool:
        """No status function called: `success()` is required as well."""
        return not (self.calls & STATUS_FUNCTIONS)

    @property
    def looks_upstream(self) -> bool:
        """Needs the outcomes of every transitive need, not only the direct ones."""
        return bool(self.calls & UPSTREAM_FUNCTIONS)


DEFAULT_CONDITION = Condition(None, "success()")


def compile_condition(text: str) -> Condition:
    """Compile an `if:`; raises ExpressionSyntaxError (column relative to `text`)."""
    expression, offset = strip_wrapper(text)
    tree = parse_expression(expression)
    return Condition(
        source=text,
        expression=expression.strip(),
        offset=offset,
        calls=frozenset(call_names(tree)),
        refs=tuple(references(tree)),
        compiled=compile_ast(tree),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a job whose needs have all finished should start, and why (for the log).

    `error` is True when the condition itself could not be evaluated (comparing a missing
    cost, say): the scheduler should mark the job failed, not skipped, so it is noticed.
    """

    run: bool
    reason: str
    error: bool = False


_BLOCKED = {
    JobStatus.FAILED: "failed",
    JobStatus.TIMED_OUT: "timed out",
    JobStatus.CANCELLED: "was cancelled",
    JobStatus.SKIPPED: "was skipped",
}


def _outcomes(
    job: PlannedJob, names: Iterable[str], states: Mapping[str, JobView]
) -> list[tuple[str, JobView]]:
    found = []
    for name in names:
        view = states.get(name)
        if view is None or not view.status.is_final:
            raise ValueError(f"decide({job.name!r}) called before its need {name!r} finished")
        found.append((name, view))
    return found


def _blocked_reason(needs: list[tuple[str, JobView]], run_cancelled: bool) -> str:
    if run_cancelled:
        return "skipped: the run was cancelled"
    for name, view in needs:
        if not view.ok:
            return f"skipped: needs {name!r} {_BLOCKED[view.status]}"
    raise AssertionError("blocked without a reason")  # pragma: no cover - callers check first


def decide(job: PlannedJob, states: Mapping[str, JobView], run_cancelled: bool) -> Decision:
    """Start or skip `job`, once every one of `job.needs` has a final state in `states`.

    `states` may hold any other jobs too (a previous run's, on resume); only the job's
    needs, its upstream (for failure()/cancelled()) and the jobs its condition names are read.
    """
    needs = _outcomes(job, job.needs, states)
    success = not run_cancelled and all(view.ok for _name, view in needs)
    condition = job.condition
    if condition.is_default or condition.implicit_success:
        if not success:
            return Decision(False, _blocked_reason(needs, run_cancelled))
        if condition.is_default:
            return Decision(True, "needs succeeded" if needs else "no needs")
    upstream = [states[n] for n in (job.ancestors or job.needs) if n in states]
    functions: dict[str, Callable[[], bool]] = {
        "success": lambda: success,
        "failure": lambda: any(view.failed for view in upstream),
        "cancelled": lambda: (
            run_cancelled or any(view.status is JobStatus.CANCELLED for view in upstream)
        ),
        "always": lambda: True,
    }
    context: dict[str, Any] = {
        "jobs": jobs_namespace(states, job.readable()),
        "matrix": job.matrix_namespace(),
        **functions,
    }
    shown = f"`{condition.expression}`"
    assert condition.compiled is not None  # not the default, checked above
    try:
        # bool() of a StrictUndefined raises: a typo is an error, not a silent false
        value = bool(condition.compiled(**context))
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        return Decision(False, f"condition {shown} could not be evaluated: {exc}", error=True)
    if value:
        return Decision(True, f"condition {shown} is true")
    return Decision(False, f"skipped: condition {shown} is false")
