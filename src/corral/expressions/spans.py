"""Where `${{ ... }}` expressions sit inside a text (GitHub's rule for finding them).

An expression starts at `${{` and ends at the first `}}` outside a single-quoted string,
so `${{ format('}}') }}` is one expression. There is no escape for a literal `${{`:
write `${{ '${{' }}`, as on GitHub.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.expressions.errors import ExpressionSyntaxError

OPEN = "${{"


@dataclass(frozen=True, slots=True)
class Span:
    """One `${{ ... }}`: `start` at its `$`, `end` after its `}}`, the inner text and
    where that inner text starts."""

    start: int
    end: int
    inner: str
    inner_start: int


def find_expressions(text: str) -> list[Span]:
    """Every `${{ ... }}` in `text`; raises ExpressionSyntaxError for one never closed."""
    spans: list[Span] = []
    start = text.find(OPEN)
    while start >= 0:
        in_string = False
        close = -1
        position = start + len(OPEN)
        while position < len(text):
            char = text[position]
            if char == "'":
                in_string = not in_string  # `''` toggles twice: an escaped quote
            elif not in_string and char == "}" and text[position + 1 : position + 2] == "}":
                close = position
                break
            position += 1
        if close < 0:
            raise ExpressionSyntaxError(
                "parsing",
                "Unclosed expression: '${{'",
                text,
                start,
                hint="close it with `}}` (a `}}` inside quotes does not count)",
            )
        inner_start = start + len(OPEN)
        spans.append(Span(start, close + 2, text[inner_start:close], inner_start))
        start = text.find(OPEN, close + 2)
    return spans
