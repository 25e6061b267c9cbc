"""Where each value of a flow document sits in its file, for file:line:col errors.

YAML and JSON (JSON is YAML for this purpose) are composed into nodes whose marks give
exact positions; TOML has no position API in the standard library, so keys are found
by scanning the text, which is right for the usual `[jobs.name]` layout.

A path ending in `("<char>", N)` asks for the N-th character of a YAML string's value
(an expression's offending character): the scalar's source text is walked, undoing
quoting, escapes, folding and block indentation, and the answer is checked against the
parsed value, so a mapping that cannot be trusted gives no answer rather than a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import yaml

# libyaml's loader is ~10x faster on big flows; marks (line, column) are the same
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]
Locator = Callable[[Path_], tuple[int, int] | None]


def _walk(
    node: yaml.Node, path: Path_, key: yaml.Node | None = None
) -> Iterator[tuple[Path_, yaml.Node, yaml.Node | None]]:
    """Every node with its path (and the key node that names it, in a mapping)."""
    yield path, node, key
    if isinstance(node, yaml.MappingNode):
        for child_key, value in node.value:
            yield from _walk(value, (*path, str(child_key.value)), child_key)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index))


def _nodes(text: str) -> Iterator[tuple[Path_, yaml.Node, yaml.Node | None]]:
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return
    if root is not None:
        yield from _walk(root, ())


def yaml_positions(text: str) -> dict[Path_, tuple[int, int]]:
    out: dict[Path_, tuple[int, int]] = {}
    for path, node, key in _nodes(text):
        out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if key is not None:
            # an unknown key is best shown at the key itself, a bad value at the value
            out[(*path, "<key>")] = (key.start_mark.line + 1, key.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            # the N-th key of a mapping, by its place: a key YAML read as a number, a
            # boolean or null is not found by its text (`yes` became True)
            for index, (child, _value) in enumerate(node.value):
                where = (child.start_mark.line + 1, child.start_mark.column + 1)
                out[(*path, KEY_AT, index)] = where
    return out


KEY_AT = "<key#>"  # (*mapping, KEY_AT, N): where the mapping's N-th key is written


_TABLE = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def toml_positions(text: str) -> dict[Path_, tuple[int, int]]:
    out: dict[Path_, tuple[int, int]] = {}
    table: Path_ = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _TABLE.match(line):
            table = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
            out.setdefault(table, (number, line.index("[") + 1))
            continue
        if match := _KEY.match(line):
            keys = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
            column = line.index(match.group(1)[0]) + 1
            out.setdefault((*table, *keys), (number, column))
            out.setdefault((*table, *keys, "<key>"), (number, column))
    return out


@dataclass(frozen=True, slots=True)
class Scalar:
    """A YAML string as written: where its source starts and ends, its style, its value."""

    start: int
    end: int
    style: str  # "" plain, "'", '"', "|" or ">"
    value: str


def yaml_scalars(text: str) -> dict[Path_, Scalar]:
    """Every string of the document as written, by path."""
    return {
        path: Scalar(node.start_mark.index, node.end_mark.index, node.style or "", node.value)
        for path, node, _key in _nodes(text)
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str)
    }


_ESCAPE_LENGTH = {"x": 4, "u": 6, "U": 10}


def _flow_offsets(raw: str, style: str) -> list[int]:
    """For each character of a plain or quoted scalar's value, its index in `raw`."""
    quoted = style in ("'", '"')
    index, end = (1, len(raw) - 1) if quoted else (0, len(raw))
    out: list[int] = []
    line_start = 0
    while index < end:
        char = raw[index]
        if char in "\r\n":
            while len(out) > line_start and raw[out[-1]] in " \t":
                out.pop()  # trailing white space of a line is not part of the value
            breaks, scan = 0, index
            while scan < end and raw[scan] in " \t\r\n":
                breaks += raw[scan] == "\n"
                scan += 1
            out.extend([index] * max(1, breaks - 1))  # one break folds to a space
            index, line_start = scan, len(out)
        elif style == "'" and char == "'":
            out.append(index)
            index += 2
        elif style == '"' and char == "\\" and raw[index + 1 : index + 2] in ("\n", "\r"):
            index = raw.index("\n", index) + 1  # an escaped line break joins the lines
            while index < end and raw[index] in " \t":
                index += 1
            line_start = len(out)
        elif style == '"' and char == "\\":
            out.append(index)
            index += _ESCAPE_LENGTH.get(raw[index + 1 : index + 2], 2)
        else:
            out.append(index)
            index += 1
    return out


def _block_offsets(raw: str, folded: bool) -> list[int]:
    """For each character of a `|` or `>` block's value, its index in `raw`."""
    header = raw.find("\n")
    if header < 0:
        return []
    digits = [c for c in raw[:header] if c.isdigit()]
    lines: list[tuple[int, str]] = []
    position = header + 1
    for line in raw[header + 1 :].split("\n"):
        lines.append((position, line))
        position += len(line) + 1
    margins = [len(line) - len(line.lstrip(" ")) for _start, line in lines if line.strip()]
    indent = int(digits[0]) if digits else min(margins, default=0)
    out: list[int] = []
    previous_text = False
    pending: list[int] = []  # the line breaks seen since the last line with text
    for start, line in lines:
        if not line.strip():
            pending.append(start + len(line))
            continue
        if out or pending:
            if folded and previous_text and len(pending) == 1 and not line[indent:].startswith(" "):
                out.append(pending[0])  # a single break between text lines folds to a space
            else:
                out.extend(pending[1:] if folded and previous_text else pending)
        out.extend(range(start + indent, start + len(line)))
        pending = [start + len(line)]
        previous_text = True
    return out


def _offsets(raw: str, style: str) -> list[int]:
    if style in ("|", ">"):
        return _block_offsets(raw, folded=style == ">")
    return _flow_offsets(raw, style)


def char_position(text: str, scalar: Scalar, offset: int) -> tuple[int, int] | None:
    """(line, column) of the `offset`-th character of `scalar`'s value in `text`."""
    raw = text[scalar.start : scalar.end]
    offsets = _offsets(raw, scalar.style)
    if len(offsets) < len(scalar.value.rstrip("\n")) or not 0 <= offset <= len(scalar.value):
        return None
    plain = [k for k in range(min(len(offsets), len(scalar.value))) if scalar.value[k] not in " \n"]
    if scalar.style != '"' and any(raw[offsets[k]] != scalar.value[k] for k in plain):
        return None  # the walk and the parser disagree: no position rather than a wrong one
    index = scalar.start + (offsets[offset] if offset < len(offsets) else len(raw))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def make_locator(
    find: Callable[[str], dict[Path_, tuple[int, int]]],
    text: str,
    scalars: Callable[[str], dict[Path_, Scalar]] | None = None,
) -> Locator:
    """A locator that maps the text only when first asked: a valid flow never asks, and
    mapping a big flow costs as much as parsing it again. With `scalars`, it also answers
    `(*path, "<char>", N)`: the N-th character of the string at `path`."""
    positions: dict[Path_, tuple[int, int]] | None = None
    strings: dict[Path_, Scalar] | None = None

    def locate(path: Path_) -> tuple[int, int] | None:
        nonlocal positions, strings
        if len(path) >= 2 and path[-2] == "<char>" and isinstance(path[-1], int):
            if scalars is None:
                return None
            if strings is None:
                strings = scalars(text)
            scalar = strings.get(tuple(path[:-2]))
            return None if scalar is None else char_position(text, scalar, path[-1])
        if positions is None:
            positions = find(text)
        return positions.get(tuple(path))

    return locate
