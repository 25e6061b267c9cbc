"""`Expression`: a parsed, compiled expression; `parse` and `evaluate`, the public entry points."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.expressions.errors import ExpressionSyntaxError
from corral.expressions.evaluator import Compiled, Scope, calls, compile_node, references
from corral.expressions.parser import Arity, Node
from corral.expressions.parser import parse as parse_tree
from corral.expressions.spans import OPEN, find_expressions

# functions a caller adds take any number of arguments (up to GitHub's 255)
_ANY_ARITY = Arity(0, 255)
# what `evaluate` says of the status functions unless told otherwise: the needs succeeded
STATUS_DEFAULTS: Mapping[str, Callable[[], bool]] = {
    "success": lambda: True,
    "failure": lambda: False,
    "cancelled": lambda: False,
    "always": lambda: True,
}
STATUS_ARITIES: Mapping[str, Arity] = {name: Arity(0, 0) for name in STATUS_DEFAULTS}


@dataclass(frozen=True, eq=False)
class Expression:
    """One expression, parsed and compiled once; `evaluate` may be called many times.

    `source` is the text parsed (without a `${{ }}` wrapper). `calls` holds the lower-case
    names of the functions it calls; `references` every static access chain, such as
    `("needs", "build", "outputs", "version")`, with the offset where it starts.
    """

    source: str
    tree: Node | None = field(repr=False)
    compiled: Compiled = field(repr=False)

    @functools.cached_property
    def calls(self) -> frozenset[str]:
        return calls(self.tree)

    @functools.cached_property
    def references(self) -> tuple[tuple[tuple[str, ...], int], ...]:
        return tuple(references(self.tree))

    def evaluate(
        self,
        contexts: Mapping[str, Any] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> Any:
        """The value of the expression; raises ExpressionEvaluationError.

        `contexts` maps context names (any case) to JSON-like values: None, bool,
        int or float, str, lists and mappings. `functions` maps the names of the extra
        functions given to `parse` to callables taking the evaluated arguments.
        """
        scope = Scope(_lowered(contexts or {}), _lowered(functions or {}), self.source)
        return self.compiled(scope)


def _lowered(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    if all(key == key.lower() for key in mapping):
        return mapping
    return {key.lower(): value for key, value in mapping.items()}


@functools.lru_cache(maxsize=4096)
def _parse(
    source: str, contexts: frozenset[str], functions: tuple[tuple[str, Arity], ...]
) -> Expression:
    tree = parse_tree(source, sorted(contexts), dict(functions))
    return Expression(source, tree, compile_node(tree))


def parse(
    expression: str,
    contexts: Iterable[str] = (),
    functions: Mapping[str, Arity] | Iterable[str] = (),
) -> Expression:
    """Parse and compile `expression`, knowing which context names it may read and which
    functions exist beyond GitHub's (a name alone takes any number of arguments).

    A whole-value `${{ ... }}` wrapper is removed first. Raises ExpressionSyntaxError,
    whose `offset`, `line` and `column` point at the offending character of `expression`
    as given (wrapper included). Parsed expressions are cached, so parsing the same text
    again is cheap.
    """
    inner, offset = strip_wrapper(expression)
    if isinstance(functions, Mapping):
        arities = tuple(sorted((name.lower(), arity) for name, arity in functions.items()))
    else:
        arities = tuple(sorted((name.lower(), _ANY_ARITY) for name in functions))
    try:
        return _parse(inner, frozenset(name.lower() for name in contexts), arities)
    except ExpressionSyntaxError as error:
        if offset:
            raise error.within(expression, offset) from None
        raise


def strip_wrapper(text: str) -> tuple[str, int]:
    """`${{ expr }}` (the whole value) -> (`expr`, where `expr` starts); else (text, 0).

    Only a wrapper whose `}}` ends the value counts: `${{ a }} && ${{ b }}` is text with
    two expressions in it, not one expression.
    """
    stripped = text.strip()
    if not (stripped.startswith(OPEN) and stripped.endswith("}}")):
        return text, 0
    try:
        spans = find_expressions(text)
    except ExpressionSyntaxError:
        return text, 0
    last = text.rindex("}}") + 2
    if len(spans) != 1 or spans[0].end != last:
        return text, 0
    return spans[0].inner, spans[0].inner_start


def evaluate(
    expression: str,
    contexts: Mapping[str, Any] | None = None,
    *,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """Evaluate one expression of GitHub Actions' language, as corral's `if:` does.

    `contexts` maps names (case-insensitive) to JSON-like values; only those names may be
    read, as GitHub refuses an unknown context. The status functions of `if:` exist and
    describe a job whose needs all succeeded in a run that goes on (`success()` and
    `always()` true, `failure()` and `cancelled()` false); `functions` replaces them or
    adds others (a name to a callable taking the evaluated arguments). The result
    is None, a bool, a number (float, or an int taken as is from `contexts`), a str, a
    list or a mapping. Raises ExpressionSyntaxError (kind "lexing" or "parsing") or
    ExpressionEvaluationError (kind "evaluation"), both ExpressionError.

    The text may be bare, wrapped whole in `${{ }}`, or end with the `}}` of a wrapper
    whose `${{` the caller already removed (as act and actionlint hand expressions over).
    """
    contexts = contexts or {}
    available = {**STATUS_DEFAULTS, **_lowered(functions or {})}
    arities = {name: STATUS_ARITIES.get(name, _ANY_ARITY) for name in available}
    parsed = parse(_unclosed_wrapper(expression), contexts.keys(), arities)
    return parsed.evaluate(contexts, available)


def _unclosed_wrapper(text: str) -> str:
    """`expr }}` -> `expr`, when that `}}` is not inside a string and no `${{` opened it."""
    stripped = text.rstrip()
    if OPEN in text or not stripped.endswith("}}") or stripped.count("'") % 2:
        return text
    return stripped[:-2]
