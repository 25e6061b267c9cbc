"""Parse tokens into a tree, with GitHub's grammar, precedence and limits.

    expression  := or
    or          := and ( "||" and )*
    and         := equality ( "&&" equality )*
    equality    := comparison ( ( "==" | "!=" ) comparison )*      left to right
    comparison  := unary ( ( "<" | "<=" | ">" | ">=" ) unary )*      left to right
    unary       := "!" unary | postfix
    postfix     := primary ( "[" ( "*" | expression ) "]" | "." ( name | "*" ) )*
                   (only after a context, a call or a parenthesised expression)
    primary     := literal | context | name "(" arguments ")" | "(" expression ")"

Names of contexts and functions are case-insensitive. Nesting deeper than 50 (counted as
GitHub counts it) and expressions longer than 21,000 characters are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from corral.expressions.errors import ExpressionSyntaxError
from corral.expressions.hints import hint_for, lexing_hint
from corral.expressions.lexer import T, Token, tokenize

MAX_DEPTH = 50


@dataclass(frozen=True, slots=True)
class Arity:
    least: int
    most: int
    odd: bool = False  # case(): predicate/value pairs and a default


# GitHub's functions (lower-case names) and how many arguments each takes
BUILTINS: Mapping[str, Arity] = {
    "case": Arity(3, 10_000, odd=True),
    "contains": Arity(2, 2),
    "endswith": Arity(2, 2),
    "format": Arity(1, 255),
    "fromjson": Arity(1, 1),
    "join": Arity(1, 2),
    "startswith": Arity(2, 2),
    "tojson": Arity(1, 1),
}
REFUSED = {
    "hashfiles": "hashFiles() is not available in corral: a flow has no checked-out workspace "
    "to hash; compute the hash in a job (`run: sha256sum ...`) and read it as an output",
}


# -- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal_:
    value: Any
    token: Token


@dataclass(frozen=True, slots=True)
class Context:
    name: str  # as written; looked up ignoring case
    token: Token


@dataclass(frozen=True, slots=True)
class Index:
    target: Node
    key: Node | None  # None: the `*` filter
    token: Token


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    token: Token


@dataclass(frozen=True, slots=True)
class Compare:
    op: T
    left: Node
    right: Node
    token: Token


@dataclass(frozen=True, slots=True)
class Logical:
    op: Literal[T.AND, T.OR]
    operands: tuple[Node, ...]
    token: Token


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    args: tuple[Node, ...]
    token: Token


@dataclass(frozen=True, slots=True)
class Group:
    inner: Node
    token: Token


Node = Literal_ | Context | Index | Not | Compare | Logical | Call | Group

_COMPARISONS = (T.LT, T.LE, T.GT, T.GE)
_EQUALITIES = (T.EQ, T.NE)
_LITERALS = (T.TRUE, T.FALSE, T.NULL, T.NUMBER, T.STRING)


class _Parser:
    def __init__(
        self,
        text: str,
        tokens: list[Token],
        contexts: frozenset[str],
        functions: Mapping[str, Arity],
    ) -> None:
        self.text = text
        self.tokens = tokens
        self.contexts = contexts
        self.functions = functions
        self.index = 0
        self.depth = 0

    # -- helpers ----------------------------------------------------------------------------

    def fail(self, description: str, token: Token, kind: str = "parsing") -> ExpressionSyntaxError:
        error = ExpressionSyntaxError(
            "lexing" if kind == "lexing" else "parsing",
            f"{description}: '{token.shown}'",
            self.text,
            token.offset,
        )
        error.hint = hint_for(error, self.tokens, token, self.contexts, self.functions)
        return error

    @property
    def peek(self) -> Token:
        return self.tokens[self.index]

    def next_kind(self) -> T:
        return self.tokens[self.index].kind

    @property
    def previous(self) -> Token:
        return self.tokens[self.index - 1]

    def match(self, *kinds: T) -> bool:
        if self.next_kind() in kinds:
            self.index += 1
            return True
        return False

    def expect(self, kind: T) -> None:
        if not self.match(kind):
            raise self.fail("Unexpected symbol", self.peek)

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"Exceeded max expression depth {MAX_DEPTH}", self.peek)

    # -- grammar ----------------------------------------------------------------------------

    def parse(self) -> Node | None:
        if self.next_kind() is T.EOF:
            return None
        node = self.expression()
        if self.next_kind() is not T.EOF:
            raise self.fail("Unexpected symbol", self.peek)
        return node

    def expression(self) -> Node:
        self.deeper()
        try:
            return self.logical(T.OR)
        finally:
            self.depth -= 1

    def logical(self, op: Literal[T.AND, T.OR]) -> Node:
        def operand() -> Node:
            return self.logical(T.AND) if op is T.OR else self.equality()

        first = operand()
        if self.next_kind() is not op:
            return first
        token = self.peek
        self.deeper()
        try:
            operands = [first]
            while self.match(op):
                operands.append(operand())
        finally:
            self.depth -= 1
        return Logical(op, tuple(operands), token)

    def equality(self) -> Node:
        node = self.comparison()
        while self.match(*_EQUALITIES):
            token = self.previous
            node = Compare(token.kind, node, self.comparison(), token)
        return node

    def comparison(self) -> Node:
        node = self.unary()
        while self.match(*_COMPARISONS):
            token = self.previous
            node = Compare(token.kind, node, self.unary(), token)
        return node

    def unary(self) -> Node:
        if not self.match(T.NOT):
            return self.postfix()
        token = self.previous
        self.deeper()
        operand = self.unary()
        self.depth -= 1
        return Not(operand, token)

    def postfix(self) -> Node:
        node = self.call()
        if not isinstance(node, Group | Call | Context):
            return node
        added = 0
        try:
            while True:
                if self.match(T.LBRACKET):
                    token = self.previous
                    key = None if self.match(T.STAR) else self.expression()
                    self.expect(T.RBRACKET)
                elif self.match(T.DOT):
                    token = self.previous
                    key = self.property_name()
                else:
                    return node
                self.deeper()
                added += 1
                node = Index(node, key, token)
        finally:
            self.depth -= added

    def property_name(self) -> Node | None:
        if self.match(T.IDENT):
            name = self.previous
            return Literal_(name.text, name)
        if self.match(T.STAR):
            return None
        raise self.fail("Unexpected symbol", self.peek)

    def call(self) -> Node:
        if self.next_kind() is not T.IDENT:
            return self.primary()
        name = self.peek
        self.index += 1
        if not self.match(T.LPAREN):
            if name.text.lower() not in self.contexts:
                raise self.fail("Unrecognized named-value", name)
            return Context(name.text, name)
        args: list[Node] = []
        while not self.match(T.RPAREN):
            args.append(self.expression())
            if self.next_kind() is not T.RPAREN:
                self.expect(T.COMMA)
        self.check_call(name, len(args))
        return Call(name.text.lower(), tuple(args), name)

    def check_call(self, name: Token, count: int) -> None:
        lower = name.text.lower()
        arity = BUILTINS.get(lower) or self.functions.get(lower)
        if arity is None:
            error = self.fail("Unrecognized function", name)
            error.hint = REFUSED.get(lower, error.hint)
            raise error
        if count < arity.least:
            raise self.fail("Too few parameters supplied", name)
        if count > arity.most:
            raise self.fail("Too many parameters supplied", name)
        if arity.odd and count % 2 == 0:
            raise self.fail(
                "Even number of parameters supplied, requires an odd number of parameters", name
            )

    def primary(self) -> Node:
        token = self.peek
        if self.match(*_LITERALS):
            return Literal_(token.value, token)
        if self.match(T.LPAREN):
            inner = self.expression()
            if self.next_kind() is T.EOF:
                raise self.fail("Unexpected end of expression", self.previous)
            self.expect(T.RPAREN)
            return Group(inner, token)
        if token.kind is T.EOF:
            raise self.fail("Unexpected end of expression", self.previous)
        raise self.fail("Unexpected symbol", token)


def parse(
    text: str,
    contexts: Sequence[str],
    functions: Mapping[str, Arity] | None = None,
) -> Node | None:
    """The tree of `text` (None when empty), knowing the context names and extra
    functions allowed; raises ExpressionSyntaxError with GitHub's message and a hint."""
    try:
        tokens = tokenize(text)
    except ExpressionSyntaxError as error:
        if error.offset is not None:
            symbol = error.description.removeprefix("Unexpected symbol: '")[:-1]
            error.hint = lexing_hint(text, symbol, error.offset)
        raise
    allowed = frozenset(name.lower() for name in contexts)
    extra = {name.lower(): arity for name, arity in (functions or {}).items()}
    return _Parser(text, tokens, allowed, extra).parse()
