"""GitHub's values and coercion rules, on plain Python values.

A value is one of six kinds: null (None), boolean (bool), number (int or float; the
language knows only doubles), string (str), array (list or tuple) and object (any
Mapping). Property names are case-insensitive, as are string comparisons.

The rules follow GitHub's own evaluator (the C# one that judges a workflow's `if:`):
loose equality as JavaScript's `==` except that objects are compared by identity;
strings compared ignoring case by upper-casing each UTF-16 code unit, except the dotless
i (U+0131); a number as text uses 15 significant digits ("G15"); text becomes a number as
JavaScript's `Number()` would, except that only lower-case `0x` and `0o` prefixes are
read, as 32-bit integers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from enum import IntEnum
from typing import Any

NAN = math.nan
MISSING: Any = object()  # a property that does not exist (null to the language)


class Kind(IntEnum):
    NULL = 0
    BOOLEAN = 1
    NUMBER = 2
    STRING = 3
    ARRAY = 4
    OBJECT = 5

    @property
    def label(self) -> str:
        """GitHub's name for the kind: Null, Boolean, Number, String, Array, Object."""
        return self.name.capitalize()


class FilteredArray(list[Any]):
    """The result of a `.*` or `[*]` filter: an index applies to each of its items."""

    __slots__ = ()


class Record(Mapping[str, Any]):
    """A read-only mapping whose keys are found ignoring case, in O(1).

    The contexts corral builds (jobs, needs, matrix...) use it; any other Mapping works
    too, at the cost of a scan when a key is not spelt with its exact case.
    """

    __slots__ = ("_folded", "_values")

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._folded: dict[str, str] | None = None

    def find(self, key: str) -> Any:
        """The value under `key` (any case), or MISSING."""
        value = self._values.get(key, MISSING)
        if value is MISSING:
            if self._folded is None:
                self._folded = {}
                for name in self._values:
                    self._folded.setdefault(fold(name), name)
            found = self._folded.get(fold(key))
            if found is not None:
                value = self._values[found]
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.find(key)
        if value is MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Record({self._values!r})"


_NUMBER_TYPES = (int, float, Decimal)
_KIND_OF_TYPE: dict[type, Kind] = {
    type(None): Kind.NULL,
    bool: Kind.BOOLEAN,
    int: Kind.NUMBER,
    float: Kind.NUMBER,
    str: Kind.STRING,
    list: Kind.ARRAY,
    tuple: Kind.ARRAY,
    FilteredArray: Kind.ARRAY,
    dict: Kind.OBJECT,
    Record: Kind.OBJECT,
}


def kind_of(value: Any) -> Kind:
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is None:
        kind = _slow_kind(value)
        if len(_KIND_OF_TYPE) < 256:  # a type's kind never changes: remember it
            _KIND_OF_TYPE[type(value)] = kind
    return kind


def _slow_kind(value: Any) -> Kind:
    if value is None:
        return Kind.NULL
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, str):  # str enums (a job status) are strings
        return Kind.STRING
    if isinstance(value, _NUMBER_TYPES):
        return Kind.NUMBER
    if isinstance(value, Mapping):
        return Kind.OBJECT
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return Kind.ARRAY
    return Kind.OBJECT  # as GitHub does with a value of a type it does not know


def is_primitive(value: Any) -> bool:
    return kind_of(value) <= Kind.STRING


def truthy(value: Any) -> bool:
    if value is True or value is False:
        return value
    kind = kind_of(value)
    if kind is Kind.NULL:
        return False
    if kind is Kind.BOOLEAN:
        return bool(value)
    if kind is Kind.NUMBER:
        number = float(value)
        return not (number == 0 or math.isnan(number))
    if kind is Kind.STRING:
        return bool(value != "")
    return True


# -- case ----------------------------------------------------------------------------------


class _UpperTable(dict[int, str]):
    """Code point -> its simple upper case, built as met (for str.translate)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        upper = char.upper()
        # one-to-many mappings (sharp s -> SS) and the dotless i stay as they are, as in .NET
        result = upper if len(upper) == 1 and code != 0x131 else char
        self[code] = result
        return result


_UPPER = _UpperTable()
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def fold(text: str) -> str:
    """`text` upper-cased the way GitHub ignores case (OrdinalIgnoreCase)."""
    if text.isascii():
        return text.upper()
    return text.translate(_UPPER)


def _compare_strings(left: str, right: str) -> int:
    a, b = fold(left), fold(right)
    if _ASTRAL.search(a) or _ASTRAL.search(b):
        # UTF-16 code unit order, as .NET and JavaScript compare
        a_units, b_units = a.encode("utf-16-be"), b.encode("utf-16-be")
        return (a_units > b_units) - (a_units < b_units)
    return (a > b) - (a < b)


# -- numbers -------------------------------------------------------------------------------

# what .NET's Char.IsWhiteSpace (and so String.Trim) removes
_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(r"0x([0-9a-fA-F]+)")
_OCTAL = re.compile(r"0o([0-7]+)")


def is_whitespace(char: str) -> bool:
    return char in _WHITESPACE


def _int32(value: int) -> float:
    if value > 0xFFFFFFFF:
        return NAN  # out of range: not a number
    return float(value - 0x100000000 if value > 0x7FFFFFFF else value)


def parse_number(text: str) -> float:
    """Text as a number: trimmed; empty is 0; decimal, `0x..`, `0o..`, `[-]Infinity`; else NaN."""
    text = text.strip(_WHITESPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text in ("Infinity", "+Infinity"):
        return math.inf
    if text == "-Infinity":
        return -math.inf
    if (match := _HEX.fullmatch(text)) is not None:
        return _int32(int(match.group(1), 16))
    if (match := _OCTAL.fullmatch(text)) is not None:
        return _int32(int(match.group(1), 8))
    return NAN


def to_number(value: Any) -> float:
    kind = kind_of(value)
    if kind is Kind.NUMBER:
        return float(value)
    if kind is Kind.STRING:
        return parse_number(value)
    if kind is Kind.NULL:
        return 0.0
    if kind is Kind.BOOLEAN:
        return 1.0 if value else 0.0
    return NAN


def format_number(value: float) -> str:
    """A number as GitHub writes it: 15 significant digits ("G15"), `1E+15` past that."""
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"  # never "-0"
    return format(number, ".15g").replace("e", "E")


def to_string(value: Any) -> str:
    kind = kind_of(value)
    if kind is Kind.STRING:
        return str(value)
    if kind is Kind.NULL:
        return ""
    if kind is Kind.BOOLEAN:
        return "true" if value else "false"
    if kind is Kind.NUMBER:
        return format_number(value)
    return kind.label  # "Array", "Object"


# -- comparison ----------------------------------------------------------------------------


def _coerce(left: Any, right: Any) -> tuple[Any, Any, Kind, Kind]:
    """JavaScript's loose-equality coercion, without turning objects into primitives."""
    left_kind, right_kind = kind_of(left), kind_of(right)
    while left_kind is not right_kind:
        if left_kind is Kind.NUMBER and right_kind is Kind.STRING:
            right, right_kind = parse_number(right), Kind.NUMBER
        elif left_kind is Kind.STRING and right_kind is Kind.NUMBER:
            left, left_kind = parse_number(left), Kind.NUMBER
        elif left_kind in (Kind.BOOLEAN, Kind.NULL):
            left, left_kind = to_number(left), Kind.NUMBER
        elif right_kind in (Kind.BOOLEAN, Kind.NULL):
            right, right_kind = to_number(right), Kind.NUMBER
        else:
            break
    return left, right, left_kind, right_kind


def equals(left: Any, right: Any) -> bool:
    if type(left) is str and type(right) is str:  # the common case, first
        return left == right or fold(left) == fold(right)
    left, right, kind, right_kind = _coerce(left, right)
    if kind is not right_kind:
        return False
    if kind is Kind.NUMBER:
        return float(left) == float(right)  # NaN equals nothing
    if kind is Kind.STRING:
        return left == right or fold(left) == fold(right)
    if kind is Kind.NULL:
        return True
    if kind is Kind.BOOLEAN:
        return bool(left) == bool(right)
    return left is right  # objects and arrays: the same one


def compare(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 for `<`, `==`, `>` after coercion; None when the two do not order."""
    left, right, kind, right_kind = _coerce(left, right)
    if kind is not right_kind:
        return None
    if kind is Kind.NUMBER:
        a, b = float(left), float(right)
        if math.isnan(a) or math.isnan(b):
            return None
        return (a > b) - (a < b)
    if kind is Kind.STRING:
        return _compare_strings(left, right)
    if kind is Kind.BOOLEAN:
        return int(bool(left)) - int(bool(right))
    return None


def greater(left: Any, right: Any) -> bool:
    return compare(left, right) == 1


def less(left: Any, right: Any) -> bool:
    return compare(left, right) == -1


# -- properties ------------------------------------------------------------------------------


def get_property(obj: Mapping[Any, Any], key: str) -> Any:
    """`obj[key]` ignoring case, or MISSING."""
    if type(obj) is Record:
        return obj.find(key)
    value = obj.get(key, MISSING)
    if value is MISSING:
        folded = fold(key)
        for name, item in obj.items():
            if isinstance(name, str) and fold(name) == folded:
                return item
    return value


# -- JSON ----------------------------------------------------------------------------------


def _js_number(number: float) -> str:
    """A finite double as JavaScript prints it (JSON.stringify, Number#toString)."""
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple))
    stripped = digits.rstrip("0")
    assert isinstance(exponent, int)  # finite
    point = len(digits) + exponent  # where the decimal point falls, counted from the left
    digits, size = stripped, len(stripped)
    if size <= point <= 21:
        text = digits + "0" * (point - size)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        rest = f".{digits[1:]}" if size > 1 else ""
        text = f"{digits[0]}{rest}e{'+' if power >= 0 else '-'}{abs(power)}"
    return ("-" if sign else "") + text


def to_json(value: Any, indent: str = "") -> str:
    """Pretty JSON as GitHub's toJSON writes it: two spaces a level, `"key": value`."""
    kind = kind_of(value)
    if kind is Kind.STRING:
        return json.dumps(str(value), ensure_ascii=False)
    if kind is Kind.NULL:
        return "null"
    if kind is Kind.BOOLEAN:
        return "true" if value else "false"
    if kind is Kind.NUMBER:
        number = float(value)
        return _js_number(number) if math.isfinite(number) else "null"
    inner = indent + "  "
    if kind is Kind.ARRAY:
        if not value:
            return "[]"
        items = [inner + to_json(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    if not isinstance(value, Mapping) or not value:
        return "{}"
    pairs = [
        f"{inner}{json.dumps(str(key), ensure_ascii=False)}: {to_json(item, inner)}"
        for key, item in value.items()
    ]
    return "{\n" + ",\n".join(pairs) + "\n" + indent + "}"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def from_json(text: str) -> Any:
    """Parse JSON (strictly: no NaN, no Infinity); numbers become floats."""
    return json.loads(text, parse_int=float, parse_constant=_no_constants)
