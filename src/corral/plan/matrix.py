"""Matrix expansion as GitHub does it: axes, `exclude`, `include`, and the options
`max_parallel` and `fail_fast`.

Combinations: every combination of the axes' values (the first axis varying slowest),
less those that match an `exclude` entry (a partial match is enough: the keys it names);
then each `include` entry, in order, is added to every remaining combination whose
original axis values it does not contradict (it may overwrite values added by earlier
entries), and becomes a combination of its own when it fits none. A matrix with only
`include` has one combination per entry.

Naming: `{job}-{v1}-{v2}...` with the axis values in the order the axes are written, so
`review` with `{model: [a, b], file: [x.py, y.py]}` gives `review-a-x.py`,
`review-a-y.py`, `review-b-x.py`, `review-b-y.py`; a combination made by an `include`
entry is named by that entry's values. Each value is made safe for a job name and a
directory: characters outside `A-Z a-z 0-9 _ . -` become `_`, at most 40 characters are
kept, and a list or a mapping is named by its 1-based position. If two expansions still
end up with one name (or clash with another job), each of those gets its 1-based
combination number appended: `review-a_b-3`.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_VALUE = 40
# the most combinations one matrix may have: more is an error when the flow loads (a
# 7-axis typo can ask for ten million jobs; docs/graphs.md says so)
MAX_COMBINATIONS = 10_000
# a job name is a folder name (255 bytes): longer expansion names are cut, then numbered
_MAX_NAME = 255

INCLUDE, EXCLUDE, MAX_PARALLEL, FAIL_FAST = "include", "exclude", "max_parallel", "fail_fast"
RESERVED = frozenset({INCLUDE, EXCLUDE, MAX_PARALLEL, FAIL_FAST})
# GitHub's spellings of the options (under `strategy:` there), refused with a pointer
GITHUB_SPELLINGS = {"max-parallel": MAX_PARALLEL, "fail-fast": FAIL_FAST}

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Expansion:
    """One combination of a matrix job."""

    name: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MatrixOptions:
    """How a matrix job's expansions run: at most `max_parallel` at once (None: no limit
    of their own); with `fail_fast`, a failed expansion cancels the others."""

    max_parallel: int | None = None
    fail_fast: bool = True


def options(matrix: Mapping[str, Any] | None) -> MatrixOptions:
    if not matrix:
        return MatrixOptions()
    limit = matrix.get(MAX_PARALLEL)
    return MatrixOptions(
        max_parallel=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        fail_fast=matrix.get(FAIL_FAST) is not False,
    )


def axes(matrix: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in matrix.items() if key not in RESERVED}


def keys(matrix: Mapping[str, Any]) -> list[str]:
    """Every key a combination may have: the axes, then keys only `include` adds."""
    found = dict.fromkeys(axes(matrix))
    for entry in matrix.get(INCLUDE) or ():
        if isinstance(entry, Mapping):
            found.update(dict.fromkeys(entry))
    return list(found)


def _check_entries(
    matrix: Mapping[str, Any], word: str, names: Sequence[str]
) -> list[tuple[Path, str]]:
    entries = matrix.get(word)
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [((word,), f"`{word}` must be a list of mappings (one per combination)")]
    problems: list[tuple[Path, str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not entry:
            problems.append(
                ((word, i), f"each `{word}` entry must be a mapping such as {{os: linux}}")
            )
        elif word == EXCLUDE:
            problems.extend(
                (
                    (word, i, key, "<key>"),
                    f"exclude names {key!r}, which is not an axis of the matrix "
                    f"(axes: {', '.join(names) or 'none'})",
                )
                for key in entry
                if key not in names
            )
    return problems


def _check_option(matrix: Mapping[str, Any], key: str) -> list[tuple[Path, str]]:
    if key not in matrix:
        return []
    value = matrix[key]
    if key == MAX_PARALLEL and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        return [((key,), "max_parallel must be a whole number, 1 or more")]
    if key == FAIL_FAST and not isinstance(value, bool):
        return [((key,), "fail_fast must be true or false")]
    return []


def _misspelt_option(key: str, value: Any) -> str | None:
    """`exlude: [...]` or `max_paralel: 2` would silently be an axis: name the option."""
    close = difflib.get_close_matches(key.replace("-", "_"), sorted(RESERVED), n=1, cutoff=0.75)
    if key in GITHUB_SPELLINGS or not close:
        return None
    if isinstance(value, list) and not any(isinstance(item, Mapping) for item in value):
        return None  # a list of values: an axis that happens to look like an option
    return f"unknown matrix key {key!r} (did you mean {close[0]!r}?)"


def problems(matrix: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """What is wrong with a matrix, each with its path inside the matrix."""
    found: list[tuple[Path, str]] = []
    names = [key for key in axes(matrix) if key not in GITHUB_SPELLINGS]
    for key, value in axes(matrix).items():
        misspelt = _misspelt_option(key, value)
        if misspelt is not None:
            found.append(((key, "<key>"), misspelt))
        elif key in GITHUB_SPELLINGS:
            found.append(
                (
                    (key, "<key>"),
                    f"write `{GITHUB_SPELLINGS[key]}` (corral spells it so, "
                    "inside `matrix:`; GitHub's `strategy:` is not used)",
                )
            )
        elif not isinstance(value, list):
            found.append(
                (
                    (key,),
                    f"matrix axis {key!r} must be a list of values "
                    "(corral does not evaluate `${{ }}` in a matrix)",
                )
            )
        elif not value:
            found.append(((key,), f"matrix key {key!r} has no values"))
    found.extend(_check_entries(matrix, EXCLUDE, names))
    found.extend(_check_entries(matrix, INCLUDE, names))
    found.extend(_check_option(matrix, MAX_PARALLEL))
    found.extend(_check_option(matrix, FAIL_FAST))
    if not names and not matrix.get(INCLUDE):
        found.append(((), "the matrix has no axes and no `include`: give at least one"))
    size = upper_bound(matrix)
    if size > MAX_COMBINATIONS:
        found.append(
            (
                (),
                f"the matrix has up to {size:,} combinations; corral runs at most "
                f"{MAX_COMBINATIONS:,} per matrix: split the job or drop values",
            )
        )
    return found


def upper_bound(matrix: Mapping[str, Any]) -> int:
    """How many combinations the matrix can have at most, without making them."""
    size = 1
    have_axes = False
    for key, value in axes(matrix).items():
        if key in GITHUB_SPELLINGS or not isinstance(value, list):
            continue
        have_axes = True
        size *= max(len(value), 1)
        if size > MAX_COMBINATIONS:  # enough to know it is too many
            break
    include = matrix.get(INCLUDE)
    extra = len(include) if isinstance(include, list) else 0
    return (size if have_axes else 0) + extra


def same(left: Any, right: Any) -> bool:
    """Equal as matrix values: same type (1 is not true, nor "1"), same content."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, str) != isinstance(right, str):
        return False
    return bool(left == right)


def _fits(values: Mapping[str, Any], entry: Mapping[str, Any], axis_names: Sequence[str]) -> bool:
    """An include entry may extend a combination if it keeps every original axis value."""
    return all(same(values[key], value) for key, value in entry.items() if key in axis_names)


@dataclass
class Combination:
    """One combination's values and, for its name, (value, 1-based position) pairs: the
    axis values with their positions, or an `include` entry's values with its number."""

    values: dict[str, Any]
    named_by: list[tuple[Any, int]]


def _excluded(values: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        all(key in values and same(values[key], value) for key, value in entry.items())
        for entry in entries
    )


def combinations(matrix: Mapping[str, Any]) -> list[Combination]:
    """The matrix's combinations, in GitHub's order (see the module docstring)."""
    base = axes(matrix)
    names = list(base)
    found: list[Combination] = []
    if names:
        columns = [list(enumerate(base[key], start=1)) for key in names]
        for combo in itertools.product(*columns):
            values = {key: value for key, (_pos, value) in zip(names, combo, strict=True)}
            found.append(Combination(values, [(value, pos) for pos, value in combo]))
    excluded = [entry for entry in matrix.get(EXCLUDE) or () if isinstance(entry, Mapping)]
    found = [item for item in found if not _excluded(item.values, excluded)]
    original = found[:]
    for number, entry in enumerate(matrix.get(INCLUDE) or (), start=1):
        if not isinstance(entry, Mapping):
            continue
        fits = [item for item in original if _fits(item.values, entry, names)]
        for item in fits:
            item.values.update(entry)
        if not fits:
            found.append(Combination(dict(entry), [(value, number) for value in entry.values()]))
    return found


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


def expand(group: str, matrix: Mapping[str, Any], taken: set[str]) -> list[Expansion]:
    """All combinations of `matrix` for job `group`; `taken` holds the other job names.

    The matrix must be free of `problems`. Raises ValueError when `exclude` leaves nothing.
    """
    if upper_bound(matrix) > MAX_COMBINATIONS:
        raise ValueError(f"the matrix has more than {MAX_COMBINATIONS:,} combinations")
    found = combinations(matrix)
    if not found:
        raise ValueError("exclude removes every combination: the job would never run")
    names = [
        "-".join([group, *(value_label(value, pos) for value, pos in item.named_by)])
        for item in found
    ]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    result = []
    for number, (name, item) in enumerate(zip(names, found, strict=True), start=1):
        unique = f"{name}-{number}" if counts[name] > 1 or name in taken else name
        if len(unique) > _MAX_NAME:
            unique = f"{name[: _MAX_NAME - 12]}-{number}"
        result.append(Expansion(unique, item.values))
    return result
