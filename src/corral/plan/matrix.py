"""Matrix expansion: one job per combination of values, named predictably.

Naming: `{job}-{v1}-{v2}...`, values in the order the matrix keys are written, the
first key varying slowest. `review` with `{model: [a, b], file: [x.py, y.py]}` gives
`review-a-x.py`, `review-a-y.py`, `review-b-x.py`, `review-b-y.py`. Each value is made
safe for a job name and a directory: characters outside `A-Z a-z 0-9 _ . -` become `_`,
at most 40 characters are kept, and a value that is a list or a mapping is named by its
1-based position. The names are valid job names (no quoting on a command line, no
glob characters). If two expansions still end up with one name (or clash with another
job), each of those gets its 1-based combination number appended: `review-a_b-3`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_VALUE = 40


@dataclass(frozen=True, slots=True)
class Expansion:
    """One combination of a matrix job."""

    name: str
    values: Mapping[str, Any]


def value_label(value: Any, position: int) -> str:
    """How one matrix value appears in a job name."""
    if isinstance(value, Mapping | list | tuple):
        return str(position)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    else:
        text = str(value)
    text = _UNSAFE.sub("_", text)[:_MAX_VALUE].strip(".")
    # "." and ".." are not directory names; an empty value still needs a visible part
    return text or "_"


def expand(group: str, matrix: Mapping[str, Sequence[Any]], taken: set[str]) -> list[Expansion]:
    """All combinations of `matrix` for job `group`; `taken` holds the other job names.

    Raises ValueError when a key has no values.
    """
    keys = list(matrix)
    for key in keys:
        if not matrix[key]:
            raise ValueError(f"matrix key {key!r} has no values")
    columns = [list(enumerate(matrix[key], start=1)) for key in keys]
    combos = list(itertools.product(*columns))
    names = [
        "-".join([group, *(value_label(value, pos) for pos, value in combo)]) for combo in combos
    ]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    result = []
    for number, (name, combo) in enumerate(zip(names, combos, strict=True), start=1):
        unique = f"{name}-{number}" if counts[name] > 1 or name in taken else name
        values = {key: value for key, (_pos, value) in zip(keys, combo, strict=True)}
        result.append(Expansion(unique, values))
    return result
