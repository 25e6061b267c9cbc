"""Hints for syntax errors that come from habits of other languages (Python, Jinja,
JavaScript, shell): `and`, `===`, `|` filters, `None`, double quotes, methods, `in`..."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.expressions.errors import ExpressionSyntaxError
    from corral.expressions.lexer import Token

FUNCTIONS = ("contains", "startsWith", "endsWith", "format", "join", "toJSON", "fromJSON", "case")
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")

_ARITHMETIC = (
    "there is no arithmetic in GitHub expressions: compute the value in a job and read it "
    "as an output"
)
_TERNARY = "there is no `x if c else y` or `c ? x : y`: write case(c, x, y)"
_BRACES = (
    "`{{ }}` is not part of an expression: write it bare, or wrap the whole value as `${{ ... }}`"
)

# a word where an operator or a value was expected (Python, Jinja, SQL)
_WORDS = {
    "and": "write `&&` for `and`",
    "or": "write `||` for `or`",
    "not": "write `!` for `not`",
    "in": "write contains(haystack, needle) for `needle in haystack`",
    "is": "there are no Jinja tests (`is defined`, `is none`): a missing value is null, so write "
    "`x == null`, `x != null` or just `x`",
    "if": _TERNARY,
    "else": _TERNARY,
    "none": "write `null` for None",
    "nil": "write `null`",
    "undefined": "write `null`",
    "true": "write `true` in lower case",
    "false": "write `false` in lower case",
    "null": "write `null` in lower case",
}
# contexts of GitHub workflows that a flow does not have
_GITHUB_CONTEXTS = frozenset(
    {"github", "vars", "secrets", "inputs", "steps", "runner", "strategy", "job"}
)
# methods of Python and JavaScript strings: `x.startswith('a')` -> a function call
_METHODS = {
    "startswith": "startsWith(value, 'prefix')",
    "endswith": "endsWith(value, 'suffix')",
    "contains": "contains(value, 'part')",
    "includes": "contains(value, 'part')",
    "find": "contains(value, 'part')",
    "index": "contains(value, 'part')",
    "join": "join(array, ', ')",
    "format": "format('{0}', value)",
    "lower": None,
    "upper": None,
    "casefold": None,
}
# a lexing error, by the first character of the bad symbol
_SYMBOLS = {
    "&": "write `&&` for and",
    '"': "strings use single quotes: 'text', and '' for a quote inside one",
    "'": "this string has no closing quote ('); write '' for a quote inside a string",
    "{": _BRACES,
    "}": _BRACES,
    "~": "`~` is Jinja's concatenation: write format('{0}{1}', a, b)",
    "?": _TERNARY,
    ":": _TERNARY,
    "+": _ARITHMETIC,
    "-": _ARITHMETIC,
    "/": _ARITHMETIC,
    "%": _ARITHMETIC,
    "$": "read environment variables as env.NAME; `${{ }}` may only wrap the whole value",
}


def _equals_hint(text: str, offset: int) -> str:
    before = text[max(0, offset - 2) : offset]
    if before == "==":
        return "`===` is JavaScript: write `==`, which compares loosely like JavaScript's `==`"
    if before == "!=":
        return "`!==` is JavaScript: write `!=`"
    return "compare with `==`; a single `=` is not an operator"


def _pipe_hint(symbol: str) -> str:
    if symbol.strip("|"):
        return (
            "`|` is a Jinja filter: GitHub expressions call functions instead, such as "
            f"{', '.join(FUNCTIONS)}; write `||` for or"
        )
    return "write `||` for or; `|` is a Jinja filter, which GitHub expressions do not have"


def lexing_hint(text: str, symbol: str, offset: int) -> str | None:
    """The hint for a symbol the lexer refused."""
    first = symbol[:1]
    if first == "=":
        return _equals_hint(text, offset)
    if first == "|":
        following = text[offset + 1 :].lstrip()
        return _pipe_hint(following[:1] if following[:1].isalpha() else symbol)
    if symbol.startswith("}}"):
        return "a stray `}}`: wrap the whole value as `${{ ... }}`, or write it without braces"
    if symbol.lower().lstrip("+-") in ("inf", "infinity"):
        return "write Infinity or -Infinity"
    if first in "+-" and symbol[1:2].isdigit():
        return None  # a malformed number, not arithmetic
    return _SYMBOLS.get(first)


def _near(word: str, choices: Iterable[str]) -> str | None:
    folded = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def _context_hint(word: str, contexts: Sequence[str]) -> str:
    known = ", ".join(sorted(contexts)) or "none"
    lower = word.lower()
    if lower in _WORDS:
        return _WORDS[lower]
    if lower in _GITHUB_CONTEXTS:
        return f"corral has no `{word}` context; the contexts here are: {known}"
    close = _near(word, contexts)
    if close:
        return f"did you mean `{close}`? The contexts here are: {known}"
    return f"the contexts here are: {known}; to mean the text {word}, quote it: '{word}'"


def _function_hint(word: str, status_allowed: bool) -> str:
    names = list(FUNCTIONS) + (list(STATUS_FUNCTIONS) if status_allowed else [])
    lower = word.lower()
    if lower in STATUS_FUNCTIONS:
        return f"{word}() is a status function: it works only in `if:`"
    close = _near(word, names)
    if close:
        return f"did you mean {close}()?"
    return "the functions are: " + ", ".join(f"{n}()" for n in names)


def _method_hint(tokens: Sequence[Token], at: int) -> str:
    name = tokens[at - 1].text if at >= 2 else ""
    lower = name.lower()
    if lower in _METHODS:
        call = _METHODS[lower]
        if call is None:
            return "comparisons already ignore case: compare the values directly"
        return f"there are no methods: call {call}"
    return "there are no methods: call a function with the value as its first argument"


def hint_for(
    error: ExpressionSyntaxError,
    tokens: Sequence[Token],
    token: Token,
    contexts: Iterable[str],
    functions: Iterable[str],
) -> str | None:
    """The hint for a parse error at `token` (one of `tokens`), or None. `contexts` and
    `functions` are the names allowed beyond GitHub's built-in functions."""
    from corral.expressions.lexer import T

    description = error.description
    if description.startswith("Unrecognized named-value"):
        return _context_hint(token.text, sorted(contexts))
    if description.startswith("Unrecognized function"):
        return _function_hint(token.text, "success" in functions)
    at = next((i for i, t in enumerate(tokens) if t is token), -1)
    if token.kind is T.LPAREN and at >= 2 and tokens[at - 2].kind is T.DOT:
        return _method_hint(tokens, at)
    if token.kind is T.IDENT and token.text.lower() in _WORDS:
        return _WORDS[token.text.lower()]
    if token.kind is T.STAR or (token.kind is T.NUMBER and token.text[:1] in "+-"):
        return _ARITHMETIC
    return None
