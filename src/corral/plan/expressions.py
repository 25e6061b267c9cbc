"""The Jinja2 sandbox of `{{ }}` templates: parsing with positions, and the static
analysis (which `jobs.X...` and `matrix.K` a template reads).

`if:` and `${{ }}` are GitHub's expression language instead (`corral.expressions`).
Jinja2 is imported on first use: a flow without `{{ }}` never loads it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

_LEXER_AT = re.compile(r" at (\d+)$")
# the filter that interpolates a value unquoted (corral.plan.quoting.unsafe_raw)
RAW_FILTER = "unsafe_raw"


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one configured sandbox. It holds no per-run state: templates are compiled per
    call. `finalize` writes a job that printed no result as nothing (not the word "None")
    and, while a `run:` command renders, turns each value into a marker
    (corral.plan.quoting)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from corral.plan.quoting import finalize, unsafe_raw

    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=finalize
    )
    env.filters[RAW_FILTER] = unsafe_raw
    return env


class Namespace:
    """Read-only attribute *and* item access for template contexts.

    Plain dicts would make `jobs.items` the dict method; a missing key here yields a
    StrictUndefined whose message names what exists, so a typo fails with a clear hint.
    """

    __slots__ = ("_label", "_values")

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        self._label = label
        self._values = values

    def _missing(self, key: object) -> Any:
        known = ", ".join(sorted(self._values)) or "nothing"
        return environment().undefined(hint=f"{self._label} has no {key!r} (it has: {known})")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            return self._missing(key)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            return self._missing(key)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<{self._label}>"


@dataclass(frozen=True)
class JinjaSyntaxError(Exception):
    """A Jinja syntax error with its 1-based line and column inside the text given."""

    message: str
    line: int
    column: int | None


def _offset_to_column(source: str, offset: int) -> tuple[int, int]:
    before = source[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def parse_template(source: str) -> nodes.Template:
    """Parse a template; a syntax error carries its line (Jinja knows no column for these)."""
    from jinja2.exceptions import TemplateSyntaxError

    try:
        return environment().parse(source)
    except TemplateSyntaxError as exc:
        message = exc.message or "invalid syntax"
        lexed = _LEXER_AT.search(message)
        if lexed is not None:
            line, column = _offset_to_column(source, int(lexed.group(1)))
            raise JinjaSyntaxError(message[: lexed.start()], line, column) from None
        raise JinjaSyntaxError(message, exc.lineno, None) from None


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    from jinja2 import nodes

    keys: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str | int)
        ):
            keys.append(str(node.arg.value))
            node = node.node
        elif isinstance(node, nodes.Name):
            keys.append(node.name)
            return tuple(reversed(keys))
        else:
            return None


def references(tree: nodes.Node) -> list[tuple[str, ...]]:
    """Every static access chain from a name: `jobs.a.outputs.k` -> ("jobs", "a", "outputs", "k").

    A dynamic access (`jobs[name]`) yields the bare root ("jobs",); the runtime context
    then only holds what the job may read, so it still fails closed.
    """
    from jinja2 import nodes

    found: list[tuple[str, ...]] = []
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            chain = _chain(node)
            if chain is not None:
                if not (isinstance(node, nodes.Name) and node.ctx != "load"):
                    found.append(chain)
                continue
        stack.extend(reversed(list(node.iter_child_nodes())))  # source order
    return found


def free_names(tree: nodes.Template) -> set[str]:
    """Names a template reads that it does not define itself (loops, `set`)."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(tree))
