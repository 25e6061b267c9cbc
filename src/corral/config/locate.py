"""Where each value of a flow document sits in its file, for file:line:col errors.

YAML and JSON (JSON is YAML for this purpose) are composed into nodes whose marks give
exact positions; TOML has no position API in the standard library, so keys are found
by scanning the text, which is right for the usual `[jobs.name]` layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml

# libyaml's loader is ~10x faster on big flows; marks (line, column) are the same
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]
Locator = Callable[[Path_], tuple[int, int] | None]


def _walk_yaml(node: yaml.Node, path: Path_, out: dict[Path_, tuple[int, int]]) -> None:
    out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            # an unknown key is best shown at the key itself, a bad value at the value
            out[(*child, "<key>")] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _walk_yaml(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_yaml(item, (*path, index), out)


def yaml_positions(text: str) -> dict[Path_, tuple[int, int]]:
    out: dict[Path_, tuple[int, int]] = {}
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return out
    if root is not None:
        _walk_yaml(root, (), out)
    return out


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


def make_locator(find: Callable[[str], dict[Path_, tuple[int, int]]], text: str) -> Locator:
    """A locator that maps the text only when first asked: a valid flow never asks, and
    mapping a big flow costs as much as parsing it again."""
    positions: dict[Path_, tuple[int, int]] | None = None

    def locate(path: Path_) -> tuple[int, int] | None:
        nonlocal positions
        if positions is None:
            positions = find(text)
        return positions.get(tuple(path))

    return locate
