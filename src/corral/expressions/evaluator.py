"""Compile a parsed expression once into nested closures, then evaluate it many times.

Compiling walks the tree once; evaluating a condition is then a few Python calls per
node, with no tree walk and no dispatch on node types (a 10,000-job flow decides each
job's `if:` in microseconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corral.expressions.functions import EAGER, case
from corral.expressions.lexer import T
from corral.expressions.parser import (
    Call,
    Compare,
    Context,
    Group,
    Index,
    Literal_,
    Logical,
    Node,
    Not,
)
from corral.expressions.values import (
    MISSING,
    FilteredArray,
    Kind,
    compare,
    equals,
    get_property,
    is_primitive,
    kind_of,
    to_number,
    to_string,
    truthy,
)

STAR: Any = object()  # the `*` filter as an index


class Scope:
    """What one evaluation reads: contexts by lower-case name, extra functions by
    lower-case name, and the memory it has built so far."""

    __slots__ = ("contexts", "functions", "memory", "source")

    def __init__(
        self,
        contexts: Mapping[str, Any],
        functions: Mapping[str, Callable[..., Any]],
        source: str,
    ) -> None:
        self.contexts = contexts
        self.functions = functions
        self.memory = 0
        self.source = source


Compiled = Callable[[Scope], Any]


# -- indexing --------------------------------------------------------------------------------


def _integer_index(key: Any) -> int | None:
    number = to_number(key)
    if math.isnan(number) or number < 0 or number > 2**31 - 1:
        return None
    return int(number)


def _string_index(key: Any) -> str | None:
    return to_string(key) if is_primitive(key) else None


def _filtered(items: FilteredArray, key: Any) -> FilteredArray:
    found = FilteredArray()
    name = None if key is STAR else _string_index(key)
    number = None if key is STAR else _integer_index(key)
    for item in items:
        kind = kind_of(item)
        if kind is Kind.OBJECT:
            if key is STAR:
                found.extend(item.values())
            elif name is not None:
                value = get_property(item, name)
                if value is not MISSING:
                    found.append(value)
        elif kind is Kind.ARRAY:
            if key is STAR:
                found.extend(item)
            elif number is not None and number < len(item):
                found.append(item[number])
    return found


def index(target: Any, key: Any) -> Any:
    """`target[key]` by GitHub's rules: a miss is null; `*` filters."""
    if type(target) is FilteredArray:
        return _filtered(target, key)
    kind = kind_of(target)
    if kind is Kind.OBJECT:
        if key is STAR:
            return FilteredArray(target.values())
        name = _string_index(key)
        value = MISSING if name is None else get_property(target, name)
        return None if value is MISSING else value
    if kind is Kind.ARRAY:
        if key is STAR:
            return FilteredArray(target)
        number = _integer_index(key)
        return target[number] if number is not None and number < len(target) else None
    return FilteredArray() if key is STAR else None


def _property(target: Any, name: str) -> Any:
    """`target.name`: the common case of `index`, without coercing the key."""
    if type(target) is not FilteredArray and kind_of(target) is Kind.OBJECT:
        value = get_property(target, name)
        return None if value is MISSING else value
    return index(target, name)


# -- compiling -------------------------------------------------------------------------------


def _literal(node: Literal_) -> Compiled:
    value = node.value
    return lambda scope: value


def _context(node: Context) -> Compiled:
    name = node.name.lower()

    def context(scope: Scope) -> Any:
        value = scope.contexts.get(name, MISSING)
        if value is MISSING:
            value = get_property(scope.contexts, name)
        return None if value is MISSING else value

    return context


def _index(node: Index) -> Compiled:
    target = compile_node(node.target)
    if node.key is None:
        return lambda scope: index(target(scope), STAR)
    if isinstance(node.key, Literal_) and node.token.kind is T.DOT:
        name = node.key.value
        return lambda scope: _property(target(scope), name)
    key = compile_node(node.key)

    def indexed(scope: Scope) -> Any:
        value = key(scope)  # the index first, as GitHub evaluates it
        return index(target(scope), value)

    return indexed


def _not(node: Not) -> Compiled:
    operand = compile_node(node.operand)
    return lambda scope: not truthy(operand(scope))


_COMPARE: Mapping[T, Callable[[Any, Any], bool]] = {
    T.EQ: equals,
    T.NE: lambda a, b: not equals(a, b),
    T.LT: lambda a, b: compare(a, b) == -1,
    T.GT: lambda a, b: compare(a, b) == 1,
    # `<=` is `==` or `<`: so `'a' <= 'A'` (equal ignoring case) holds
    T.LE: lambda a, b: equals(a, b) or compare(a, b) == -1,
    T.GE: lambda a, b: equals(a, b) or compare(a, b) == 1,
}


def _compare(node: Compare) -> Compiled:
    left, right = compile_node(node.left), compile_node(node.right)
    test = _COMPARE[node.op]
    return lambda scope: test(left(scope), right(scope))


def _logical(node: Logical) -> Compiled:
    operands = [compile_node(operand) for operand in node.operands]
    stop_when = node.op is T.OR  # `||` stops at the first truthy value, `&&` at a falsy one

    def logical(scope: Scope) -> Any:
        value = None
        for operand in operands:
            value = operand(scope)
            if truthy(value) is stop_when:
                break
        return value

    return logical


def _call(node: Call) -> Compiled:
    args = [compile_node(arg) for arg in node.args]
    name = node.name
    if name == "case":
        return lambda scope: case(scope, args)
    builtin = EAGER.get(name)
    if builtin is not None:
        return lambda scope: builtin(scope, [arg(scope) for arg in args])

    def extra(scope: Scope) -> Any:
        return scope.functions[name](*(arg(scope) for arg in args))

    return extra


def _group(node: Group) -> Compiled:
    return compile_node(node.inner)


_COMPILERS: Mapping[type, Callable[[Any], Compiled]] = {
    Literal_: _literal,
    Context: _context,
    Index: _index,
    Not: _not,
    Compare: _compare,
    Logical: _logical,
    Call: _call,
    Group: _group,
}


def compile_node(node: Node | None) -> Compiled:
    if node is None:
        return lambda scope: None  # an empty expression is null
    return _COMPILERS[type(node)](node)


# -- static analysis -------------------------------------------------------------------------


def _chain(node: Node) -> tuple[str, ...] | None:
    """`jobs.a['b'].c` -> ("jobs", "a", "b", "c"); `*` is kept as "*"; None when the
    access does not start at a context or uses a computed key."""
    keys: list[str] = []
    while isinstance(node, Index):
        if node.key is None:
            keys.append("*")
        elif isinstance(node.key, Literal_) and isinstance(node.key.value, str):
            keys.append(node.key.value)
        else:
            keys.clear()  # a computed key: only what precedes it is known
        node = node.target
    if isinstance(node, Group):
        return None
    if isinstance(node, Context):
        return (node.name, *reversed(keys))
    return None


def walk(node: Node | None) -> list[Node]:
    """Every node, in source order (a node before its children)."""
    found: list[Node] = []
    stack: list[Node] = [] if node is None else [node]
    while stack:
        current = stack.pop()
        found.append(current)
        children: Sequence[Node]
        if isinstance(current, Index):
            children = [current.target] if current.key is None else [current.target, current.key]
        elif isinstance(current, Not):
            children = [current.operand]
        elif isinstance(current, Compare):
            children = [current.left, current.right]
        elif isinstance(current, Logical):
            children = current.operands
        elif isinstance(current, Call):
            children = current.args
        elif isinstance(current, Group):
            children = [current.inner]
        else:
            children = []
        stack.extend(reversed(children))
    return found


def references(tree: Node | None) -> list[tuple[tuple[str, ...], int]]:
    """Each longest static access chain with its offset: `needs.a.outputs.x` ->
    (("needs", "a", "outputs", "x"), offset of `needs`)."""
    found: list[tuple[tuple[str, ...], int]] = []
    inner: set[int] = set()
    for node in walk(tree):
        if id(node) in inner or not isinstance(node, Index | Context):
            continue
        chain = _chain(node)
        if chain is None:
            continue
        target: Node = node
        while isinstance(target, Index):
            inner.add(id(target.target))
            target = target.target
        assert isinstance(target, Context)
        found.append((chain, target.token.offset))
    return found


def calls(tree: Node | None) -> frozenset[str]:
    """The lower-case names of the functions the expression calls."""
    return frozenset(node.name for node in walk(tree) if isinstance(node, Call))
