"""GitHub Actions' expression language: the one `if:` and `${{ }}` speak.

    >>> from corral.expressions import evaluate
    >>> evaluate("contains(needs.*.result, 'failure') || '3' == 3", {"needs": {}})
    True

`evaluate(expression, contexts)` parses, compiles and evaluates one expression; `parse`
returns a compiled `Expression` to evaluate many times. Errors (see `errors` for the
tree) carry GitHub's message, its kind ("lexing", "parsing", "evaluation"), the offset
of the offending character and, for habits from other languages, a hint.
"""

from corral.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
)
from corral.expressions.expression import Expression, evaluate, parse

__all__ = [
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "evaluate",
    "parse",
]
