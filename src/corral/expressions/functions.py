"""GitHub's built-in functions: contains, startsWith, endsWith, format, join, toJSON,
fromJSON and case. Each takes the evaluation scope and its evaluated arguments
(`case` takes unevaluated ones: it evaluates only what it needs, as GitHub does)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from corral.expressions.errors import ExpressionEvaluationError
from corral.expressions.values import (
    Kind,
    equals,
    fold,
    from_json,
    is_primitive,
    kind_of,
    to_json,
    to_string,
)

if TYPE_CHECKING:
    from corral.expressions.evaluator import Compiled, Scope

MAX_MEMORY = 1024 * 1024  # bytes of new text one evaluation may build, as on GitHub


def _fail(message: str, scope: Scope) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(message, scope.source)


def count_memory(scope: Scope, text: str) -> str:
    """Charge `text` (2 bytes a character, as .NET counts) to the evaluation's budget."""
    scope.memory += 2 * len(text)
    if scope.memory > MAX_MEMORY:
        raise _fail("The maximum allowed memory size was exceeded", scope)
    return text


def contains(scope: Scope, args: Sequence[Any]) -> bool:
    haystack, needle = args
    kind = kind_of(haystack)
    if kind <= Kind.STRING:
        return is_primitive(needle) and fold(to_string(needle)) in fold(to_string(haystack))
    if kind is Kind.ARRAY:
        return any(equals(needle, item) for item in haystack)
    return False


def starts_with(scope: Scope, args: Sequence[Any]) -> bool:
    text, prefix = args
    if not (is_primitive(text) and is_primitive(prefix)):
        return False
    return fold(to_string(text)).startswith(fold(to_string(prefix)))


def ends_with(scope: Scope, args: Sequence[Any]) -> bool:
    text, suffix = args
    if not (is_primitive(text) and is_primitive(suffix)):
        return False
    return fold(to_string(text)).endswith(fold(to_string(suffix)))


def _placeholder(text: str, start: int) -> tuple[int, str, int] | None:
    """`{N}` or `{N:spec}` at `start`: (N, spec, index of the closing brace)."""
    end = start + 1
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    if end == start + 1 or end - start - 1 > 10:
        return None
    number = int(text[start + 1 : end])
    if number > 2**31 - 1:
        return None
    spec = ""
    if text[end : end + 1] == ":":
        close = text.find("}", end)
        if close < 0:
            return None
        spec, end = text[end + 1 : close], close
    if text[end : end + 1] != "}":
        return None
    return number, spec, end


def format_(scope: Scope, args: Sequence[Any]) -> str:
    text = to_string(args[0])
    values = args[1:]
    invalid = f"The following format string is invalid: {text}"
    out: list[str] = []
    index = 0
    while index < len(text):
        left, right = text.find("{", index), text.find("}", index)
        if left >= 0 and (right < 0 or left < right):
            if text[left + 1 : left + 2] == "{":  # `{{` is a brace
                out.append(text[index : left + 1])
                index = left + 2
                continue
            found = _placeholder(text, left)
            if found is None:
                raise _fail(invalid, scope)
            number, spec, close = found
            if number >= len(values):
                raise _fail(
                    f"The following format string references more arguments than were "
                    f"supplied: {text}",
                    scope,
                )
            if spec:
                kind = kind_of(values[number]).label
                raise _fail(
                    f"The format specifiers '{spec}' are not valid for objects of type '{kind}'",
                    scope,
                )
            out.append(text[index:left])
            out.append(to_string(values[number]))
            index = close + 1
        elif right >= 0:
            if text[right + 1 : right + 2] != "}":
                raise _fail(invalid, scope)
            out.append(text[index : right + 1])
            index = right + 2
        else:
            out.append(text[index:])
            break
    return count_memory(scope, "".join(out))


def join(scope: Scope, args: Sequence[Any]) -> str:
    items = args[0]
    kind = kind_of(items)
    if kind <= Kind.STRING:
        return to_string(items)
    if kind is not Kind.ARRAY:
        return ""
    separator = ","
    if len(args) > 1 and is_primitive(args[1]):
        separator = to_string(args[1])
    return count_memory(scope, separator.join(to_string(item) for item in items))


def to_json_(scope: Scope, args: Sequence[Any]) -> str:
    try:
        text = to_json(args[0])
    except RecursionError:
        raise _fail("toJSON: the value is nested too deeply", scope) from None
    return count_memory(scope, text)


def from_json_(scope: Scope, args: Sequence[Any]) -> Any:
    text = to_string(args[0])
    if not text.strip():
        raise _fail("Error parsing fromJson: the input is empty", scope)
    try:
        return from_json(text)
    except ValueError as error:
        raise _fail(f"Error parsing fromJson: {error}", scope) from None
    except RecursionError:  # hostile input ("[[[[..."): an error, not a crash
        raise _fail("Error parsing fromJson: nested too deeply", scope) from None


def case(scope: Scope, args: Sequence[Compiled]) -> Any:
    for index in range(0, len(args) - 1, 2):
        predicate = args[index](scope)
        if kind_of(predicate) is not Kind.BOOLEAN:
            raise _fail("case predicate must evaluate to a boolean value", scope)
        if predicate:
            return args[index + 1](scope)
    return args[-1](scope)


Builtin = Callable[["Scope", Sequence[Any]], Any]
EAGER: Mapping[str, Builtin] = {
    "contains": contains,
    "endswith": ends_with,
    "format": format_,
    "fromjson": from_json_,
    "join": join,
    "startswith": starts_with,
    "tojson": to_json_,
}
