"""The errors of the expression language, shaped like GitHub's so that messages match.

    ExpressionError                 anything wrong with an expression (a CorralError: exit 2)
    ├── ExpressionSyntaxError       found before evaluation: kind "lexing" or "parsing"
    └── ExpressionEvaluationError   found while evaluating: kind "evaluation"

`description` is GitHub's wording ("Unexpected symbol: '='"); `github_message` adds
GitHub's location sentence; `str()` is that plus a hint for habits from other languages.
`offset` is 0-based in the expression text; `line` and `column` are 1-based.
"""

from __future__ import annotations

from typing import Literal

from corral.errors import CorralError

Kind = Literal["lexing", "parsing", "evaluation"]


class ExpressionError(CorralError):
    """An expression that cannot be read or evaluated."""

    kind: Kind = "evaluation"

    def __init__(
        self,
        description: str,
        expression: str,
        offset: int | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        self.description = description
        self.expression = expression
        self.offset = offset
        super().__init__(self.github_message, hint=hint)

    @property
    def github_message(self) -> str:
        """The message GitHub prints for the same mistake."""
        if self.offset is None:  # evaluation errors carry no position, as on GitHub
            return self.description
        return (
            f"{self.description}. Located at position {self.offset + 1} "
            f"within expression: {self.expression}"
        )

    @property
    def line(self) -> int:
        if self.offset is None:
            return 1
        return self.expression.count("\n", 0, self.offset) + 1

    @property
    def column(self) -> int | None:
        if self.offset is None:
            return None
        return self.offset - (self.expression.rfind("\n", 0, self.offset) + 1) + 1

    def __str__(self) -> str:
        return self.lines()[0]


class ExpressionSyntaxError(ExpressionError):
    """The expression does not lex or parse; reported when a flow is loaded."""

    def __init__(
        self,
        kind: Literal["lexing", "parsing"],
        description: str,
        expression: str,
        offset: int | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        self.kind = kind
        super().__init__(description, expression, offset, hint=hint)

    def within(self, text: str, offset: int) -> ExpressionSyntaxError:
        """The same error, located in `text`, which holds this expression at `offset`."""
        return ExpressionSyntaxError(
            "lexing" if self.kind == "lexing" else "parsing",
            self.description,
            text,
            None if self.offset is None else self.offset + offset,
            hint=self.hint,
        )


class ExpressionEvaluationError(ExpressionError):
    """Evaluation failed: a bad format string, invalid JSON, a non-boolean `case` predicate."""

    kind: Kind = "evaluation"
