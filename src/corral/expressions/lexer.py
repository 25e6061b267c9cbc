"""Tokens of GitHub's expression language, with their offsets.

As in GitHub's lexers: whitespace separates tokens; `(`, `)`, `[`, `]`, `,`, `.`, `!`,
`<`, `>`, `=`, `&`, `|` and whitespace end a word; a word that starts with a digit,
`+`, `-` (or `.` where a value may start) is a number, read whole and then parsed (so
`-Inf` or `0x01p2` are one bad symbol); other words are identifiers (letters, digits,
`_`, `-`, not starting with a digit); `'...'` is a string where `''` is a quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from corral.expressions.errors import ExpressionSyntaxError
from corral.expressions.values import is_whitespace, parse_number

MAX_LENGTH = 21_000


class T(Enum):
    """Token kinds."""

    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    DOT = "."
    NOT = "!"
    NE = "!="
    EQ = "=="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    AND = "&&"
    OR = "||"
    STAR = "*"
    NUMBER = "number"
    STRING = "string"
    IDENT = "identifier"
    TRUE = "true"
    FALSE = "false"
    NULL = "null"
    EOF = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: T
    text: str  # as written
    offset: int
    value: Any = None  # numbers and strings

    @property
    def shown(self) -> str:
        """How GitHub names the token in a message."""
        if self.kind is T.EOF:
            return "EOF"
        if self.kind is T.STRING:
            return str(self.value)
        return self.text


_BOUNDARY = frozenset("()[],.!><=&|")
_SINGLE = {"(": T.LPAREN, ")": T.RPAREN, "[": T.LBRACKET, "]": T.RBRACKET, ",": T.COMMA}
_PAIRS = {"!": (T.NOT, T.NE), "<": (T.LT, T.LE), ">": (T.GT, T.GE)}
_DOUBLED = {"=": T.EQ, "&": T.AND, "|": T.OR}
_KEYWORDS = {
    "true": (T.TRUE, True),
    "false": (T.FALSE, False),
    "null": (T.NULL, None),
    "NaN": (T.NUMBER, math.nan),
    "Infinity": (T.NUMBER, math.inf),
}
# after these a `.` is a property access; anywhere else it starts a number (`.5`)
_VALUE_ENDS = frozenset({T.IDENT, T.RBRACKET, T.RPAREN, T.STAR})


def is_boundary(char: str) -> bool:
    return char in _BOUNDARY or is_whitespace(char)


def is_identifier(word: str) -> bool:
    first = word[:1]
    if not (first.isascii() and (first.isalpha() or first == "_")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "_-") for c in word[1:])


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []

    def bad(self, start: int, end: int | None = None) -> ExpressionSyntaxError:
        symbol = self.text[start:end] if end is not None else self.text[start : self.pos]
        return ExpressionSyntaxError("lexing", f"Unexpected symbol: '{symbol}'", self.text, start)

    def word_end(self, start: int, *, dots: bool) -> int:
        end = start + 1
        text = self.text
        while end < len(text) and (not is_boundary(text[end]) or (dots and text[end] == ".")):
            end += 1
        return end

    def add(self, kind: T, start: int, value: Any = None) -> None:
        self.tokens.append(Token(kind, self.text[start : self.pos], start, value))

    def previous(self) -> T:
        return self.tokens[-1].kind if self.tokens else T.EOF

    def run(self) -> list[Token]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if is_whitespace(char):
                self.pos += 1
            elif char in _SINGLE:
                self.pos += 1
                self.add(_SINGLE[char], self.pos - 1)
            elif char == "*":
                self.pos += 1
                self.add(T.STAR, self.pos - 1)
            else:
                self.operator_or_word(char)
        self.tokens.append(Token(T.EOF, "", len(text)))
        return self.tokens

    def operator_or_word(self, char: str) -> None:
        start = self.pos
        following = self.text[start + 1 : start + 2]
        if char in _PAIRS:
            single, double = _PAIRS[char]
            self.pos += 2 if following == "=" else 1
            self.add(double if following == "=" else single, start)
        elif char in _DOUBLED:
            if following != char:  # a lone `=`, `&` or `|`: one bad symbol to the next boundary
                raise self.bad(start, self.word_end(start, dots=False))
            self.pos += 2
            self.add(_DOUBLED[char], start)
        elif char == "'":
            self.string(start)
        elif char == "." and self.previous() in _VALUE_ENDS:
            self.pos += 1
            self.add(T.DOT, start)
        elif char in ".+-" or (char.isascii() and char.isdigit()):
            self.number(start)
        else:
            self.word(start)

    def number(self, start: int) -> None:
        self.pos = self.word_end(start, dots=True)
        value = parse_number(self.text[start : self.pos])
        if math.isnan(value):
            raise self.bad(start)
        self.add(T.NUMBER, start, value)

    def string(self, start: int) -> None:
        text = self.text
        end = start + 1
        while True:
            end = text.find("'", end)
            if end < 0:
                raise self.bad(start, len(text))
            if text[end + 1 : end + 2] != "'":
                break
            end += 2
        self.pos = end + 1
        self.add(T.STRING, start, text[start + 1 : end].replace("''", "'"))

    def word(self, start: int) -> None:
        self.pos = self.word_end(start, dots=False)
        word = self.text[start : self.pos]
        if not is_identifier(word):
            raise self.bad(start)
        keyword = _KEYWORDS.get(word) if self.previous() is not T.DOT else None
        if keyword is not None:
            self.add(keyword[0], start, keyword[1])
        else:
            self.add(T.IDENT, start)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an EOF token; raises ExpressionSyntaxError."""
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            "lexing",
            f"Exceeded max expression length {MAX_LENGTH}",
            text,
            hint="split it, or compute the value in a job and read it as an output",
        )
    return _Lexer(text).run()
