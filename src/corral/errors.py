"""The one exception hierarchy of corral, and the exit codes it maps to.

    CorralError                 exit 2 unless said otherwise; printed as one line, no traceback
    ├── UsageError              bad command-line arguments (2)
    ├── FlowError               a flow file that cannot be loaded or is invalid (2);
    │                           carries every problem, each with file:line:col
    ├── ToolError               an agent CLI that is unknown or cannot be started (2)
    ├── TemplateError           a template that cannot be rendered at run time (2)
    ├── ExpressionError         an expression of GitHub's language that cannot be read or
    │                           evaluated (2); see corral.expressions.errors
    ├── PriceFileError          a price file that cannot be read (2)
    ├── PolicyError             a Rego policy that cannot be read or evaluated, or the
    │   │                       `policy` extra missing (2); nothing runs
    │   └── PolicyDenied        a policy denied the flow (2); nothing runs
    ├── StoreError              the run history cannot be opened or written (3)
    │   ├── MissingExtraError   an optional dependency is not installed (3)
    │   └── HistoryTooNewError  the history was migrated by a newer corral (6)
    └── NotFoundError           a run or job named on the command line does not exist (4)

Job failures are not exceptions: a job that fails is a result, and `corral run` exits 1
(5 when a budget held back or killed jobs and nothing else failed).
Interruption exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_JOBS_FAILED = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_NOT_FOUND = 4
EXIT_BUDGET_STOPPED = 5  # a budget held back or killed work; nothing else failed
EXIT_HISTORY_TOO_NEW = 6  # the history's schema is newer than this corral: upgrade corral
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class CorralError(Exception):
    """An error the user can fix; shown as one line without a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The lines printed for this error (one, plus an optional hint)."""
        text = self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return [text]


class UsageError(CorralError):
    """Bad command-line arguments."""


@dataclass(frozen=True)
class Problem:
    """One mistake in a flow file, located as precisely as the format allows."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = f"{self.path}: " if self.path else ""
        return f"{where}: {prefix}{self.message}"


class FlowError(CorralError):
    """A flow file with one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid flow"
        super().__init__(first)

    def lines(self) -> list[str]:
        lines = [str(p) for p in self.problems]
        if len(self.problems) > 1:
            lines.append(f"{len(self.problems)} problems; nothing was run")
        return lines


class ToolError(CorralError):
    """An agent CLI that is unknown, unsupported for a field, or not installed."""


class TemplateError(CorralError):
    """A template that cannot be rendered (a typo, a value that is missing at run time)."""


class InputError(CorralError):
    """A job's argv, environment or working directory holds what no process can take."""


class PriceFileError(CorralError):
    """A price file (--prices) that cannot be read or holds a bad price."""


class PolicyError(CorralError):
    """A policy that cannot be loaded or evaluated; with policies asked for, nothing runs."""

    def __init__(self, message: str, *, hint: str | None = None, context: list[str] | None = None):
        super().__init__(message, hint=hint)
        self.context = context or []

    def lines(self) -> list[str]:
        return [*super().lines(), *self.context]


class PolicyDenied(PolicyError):
    """A policy denied the flow. `denials` are the printed lines (one per denial);
    `document` is the JSON form (`corral.policy.Verdict.to_json`); `run_id` names the
    refusal in the history when one was recorded."""

    def __init__(
        self,
        denials: list[str],
        summary: str,
        *,
        document: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(summary)
        self.denials = denials
        self.document = document or {}
        self.run_id = run_id

    def lines(self) -> list[str]:
        return [*self.denials, self.message]


class StoreError(CorralError):
    """The run history could not be opened or written."""

    exit_code = EXIT_STORE


class MissingExtraError(StoreError):
    """An optional dependency is missing; the message names the install command."""


class HistoryTooNewError(StoreError):
    """The history's schema revision is unknown here: a newer corral migrated it."""

    exit_code = EXIT_HISTORY_TOO_NEW


class NotFoundError(CorralError):
    """A run or job that does not exist."""

    exit_code = EXIT_NOT_FOUND
