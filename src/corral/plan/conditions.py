"""`if:` conditions: GitHub Actions' expression language and its status functions.

Status functions, judged when every need of the job has finished, as on GitHub:

- `success()`: the run was not cancelled and every job upstream (the needs, their needs,
  and so on) ended ok: succeeded, or failed / timed out with `continue_on_error`. The
  default condition. A skipped job is not ok, so a failure skips everything below it
  unless a condition says otherwise, even below a job that ran with `always()`.
- `failure()`: some job upstream failed or timed out without `continue_on_error`.
- `cancelled()`: the run was cancelled (Ctrl-C or SIGTERM to corral, `--fail-fast` or
  the flow's `fail_fast`).
- `always()`: true.

An expression that calls none of these means `success() && (expression)`, as on
GitHub: `if: jobs.t.exit_code == 0` never runs after a failed need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from corral.expressions import ExpressionEvaluationError, ExpressionSyntaxError
from corral.models import JobStatus
from corral.plan.contexts import CONTEXTS, ContextSource, RunScope, build_contexts
from corral.plan.views import JobView

if TYPE_CHECKING:
    from corral.expressions import Expression

STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
UPSTREAM_FUNCTIONS = frozenset({"failure", "cancelled"})


@dataclass(frozen=True)
class Condition:
    """A compiled `if:`. `source` is None for the default, `success()`.

    `expression` is the text evaluated (without a `${{ }}` wrapper) and `offset` where it
    starts in `source`; `refs` are its static access chains with their offsets in
    `source`, such as (("needs", "build", "result"), 4).
    """

    source: str | None
    expression: str
    offset: int = 0
    calls: frozenset[str] = frozenset({"success"})
    refs: tuple[tuple[tuple[str, ...], int], ...] = ()
    compiled: Expression | None = field(default=None, compare=False, repr=False)

    @property
    def is_default(self) -> bool:
        return self.compiled is None

    @property
    def implicit_success(self) -> bool:
        """No status function called: `success()` is required as well."""
        return not (self.calls & STATUS_FUNCTIONS)

    @property
    def looks_upstream(self) -> bool:
        """May read any job upstream (failure handlers look at what failed)."""
        return bool(self.calls & UPSTREAM_FUNCTIONS)

    @property
    def roots(self) -> frozenset[str]:
        """The contexts the expression reads (lower case)."""
        return frozenset(chain[0].lower() for chain, _ in self.refs)


DEFAULT_CONDITION = Condition(None, "success()")


def _jinja_wrapper(text: str) -> tuple[str, int]:
    """The `{{ expr }}` wrapper earlier versions accepted: (`expr`, its offset) or (text, 0)."""
    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        start = text.index("{{") + 2
        return text[start : text.rindex("}}")], start
    return text, 0


class Decidable(ContextSource, Protocol):
    """What `decide` reads of a planned job (`corral.plan.model.PlannedJob` has it all)."""

    @property
    def name(self) -> str: ...
    @property
    def needs(self) -> tuple[str, ...]: ...
    @property
    def condition(self) -> Condition: ...


def compile_condition(text: str) -> Condition:
    """Compile an `if:`; raises ExpressionSyntaxError (offsets relative to `text`).

    The expression may be bare, or the whole value wrapped in `${{ }}`. Text with a
    `${{ }}` that is not the whole value is refused: GitHub would read it as a string
    (always true), which is never what was meant.
    """
    if not text.strip():
        return DEFAULT_CONDITION
    # the parser loads with the first `if:`: a flow without one never needs it
    from corral.expressions.expression import STATUS_ARITIES, parse, strip_wrapper
    from corral.expressions.spans import OPEN

    inner, offset = strip_wrapper(text)
    if not offset:
        inner, offset = _jinja_wrapper(text)
    if OPEN in inner:
        raise ExpressionSyntaxError(
            "parsing",
            "Unexpected symbol: '${{'",
            text,
            text.find(OPEN, offset),
            hint="an `if:` is one expression: write it bare, `a && b`, or wrap all of it "
            "once, `${{ a && b }}`; text around a `${{ }}` makes GitHub read a string, "
            "which is always true",
        )
    if not inner.strip():
        raise ExpressionSyntaxError(
            "parsing",
            "An expression was expected: '${{ }}'",
            text,
            offset,
            hint="write a condition, or leave `if:` out",
        )
    try:
        compiled = parse(inner, CONTEXTS, STATUS_ARITIES)
    except ExpressionSyntaxError as error:
        raise error.within(text, offset) from None
    return Condition(
        source=text,
        expression=inner.strip(),
        offset=offset + len(inner) - len(inner.lstrip()),
        calls=compiled.calls,
        refs=tuple((chain, offset + at) for chain, at in compiled.references),
        compiled=compiled,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a job whose needs have all finished should start, and why (for the log).

    `error` is True when the condition itself could not be evaluated (an invalid format
    string, say): the scheduler should mark the job failed, not skipped, so it is noticed.
    `upstream_ok` / `upstream_failed` describe the job's ancestors, for its JobView.
    """

    run: bool
    reason: str
    error: bool = False
    upstream_ok: bool = True
    upstream_failed: bool = False


_BLOCKED = {
    JobStatus.FAILED: "failed",
    JobStatus.TIMED_OUT: "timed out",
    JobStatus.CANCELLED: "was cancelled",
    JobStatus.SKIPPED: "was skipped",
}


def _outcomes(
    job: Decidable, names: Iterable[str], states: Mapping[str, JobView]
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
    for name, view in needs:
        if not view.upstream_ok:
            return f"skipped: a job upstream of {name!r} did not succeed"
    raise AssertionError("blocked without a reason")  # pragma: no cover - callers check first


def decide(
    job: Decidable,
    states: Mapping[str, JobView],
    run_cancelled: bool,
    scope: RunScope | None = None,
) -> Decision:
    """Start or skip `job`, once every one of `job.needs` has a final state in `states`.

    `states` may hold any other jobs too (a previous run's, on resume); only the job's
    needs and the jobs its condition reads are looked at. `scope` gives `env` and `flow`.
    """
    needs = _outcomes(job, job.needs, states)
    upstream_ok = all(view.ok and view.upstream_ok for _name, view in needs)
    upstream_failed = any(view.failed or view.upstream_failed for _name, view in needs)
    flags = {"upstream_ok": upstream_ok, "upstream_failed": upstream_failed}
    success = not run_cancelled and upstream_ok
    condition = job.condition
    if condition.is_default or condition.implicit_success:
        if not success:
            return Decision(False, _blocked_reason(needs, run_cancelled), **flags)
        if condition.is_default:
            return Decision(True, "needs succeeded" if needs else "no needs", **flags)
    functions: dict[str, Callable[[], bool]] = {
        "success": lambda: success,
        "failure": lambda: upstream_failed,
        "cancelled": lambda: run_cancelled,
        "always": lambda: True,
    }
    from corral.expressions.values import truthy  # loaded with the condition's parser

    contexts = build_contexts(job, states, scope or RunScope(), condition.roots)
    shown = f"`{condition.expression}`"
    assert condition.compiled is not None  # not the default, checked above
    try:
        value = truthy(condition.compiled.evaluate(contexts, functions))
    except ExpressionEvaluationError as exc:
        reason = f"condition {shown} could not be evaluated: {exc.description}"
        return Decision(False, reason, error=True, **flags)
    if value:
        return Decision(True, f"condition {shown} is true", **flags)
    return Decision(False, f"skipped: condition {shown} is false", **flags)
