"""GitHub Actions' expression language: the one `if:` and `${{ }}` speak.

    >>> from corral.expressions import evaluate
    >>> evaluate("contains(needs.*.result, 'failure') || '3' == 3", {"needs": {}})
    True

`evaluate(expression, contexts)` parses, compiles and evaluates one expression; `parse`
returns a compiled `Expression` to evaluate many times. Errors (see `errors` for the
tree) carry GitHub's message, its kind ("lexing", "parsing", "evaluation"), the offset
of the offending character and, for habits from other languages, a hint.
"""

from typing import TYPE_CHECKING, Any

from corral.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
)

if TYPE_CHECKING:
    from corral.expressions.expression import Expression, evaluate, parse

# The lexer, parser and evaluator load on first use (PEP 562): a flow with no `if:` and no
# `${{ }}` (every `corral exec`) only ever needs the error classes.
_LAZY = frozenset({"Expression", "evaluate", "parse"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from corral.expressions import expression

        return getattr(expression, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "evaluate",
    "parse",
]
