"""Text with `${{ ... }}` expressions in it: split into literal pieces and parsed
expressions (see `spans` for how the expressions are found)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from corral.expressions.errors import ExpressionSyntaxError
from corral.expressions.expression import Expression, parse
from corral.expressions.parser import Arity
from corral.expressions.spans import OPEN, find_expressions


def has_expressions(text: str) -> bool:
    return OPEN in text


def split(
    text: str,
    contexts: Iterable[str],
    functions: Mapping[str, Arity] | Iterable[str] = (),
) -> list[str | Expression]:
    """`text` as literal pieces and parsed expressions, in order. Syntax errors point
    into `text`; an empty `${{ }}` is an error, as on GitHub."""
    names = list(contexts)
    pieces: list[str | Expression] = []
    last = 0
    for span in find_expressions(text):
        if span.start > last:
            pieces.append(text[last : span.start])
        if not span.inner.strip():
            raise ExpressionSyntaxError(
                "parsing",
                "An expression was expected: '${{ }}'",
                text,
                span.start,
                hint="write an expression between `${{` and `}}`, or remove them",
            )
        try:
            pieces.append(parse(span.inner, names, functions))
        except ExpressionSyntaxError as error:
            raise error.within(text, span.inner_start) from None
        last = span.end
    if last < len(text):
        pieces.append(text[last:])
    return pieces
