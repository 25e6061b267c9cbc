"""Collecting located problems while a plan is built, and "did you mean" suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from corral.errors import FlowError, Problem

Path = tuple[str | int, ...]
Locator = Callable[[Path], tuple[int, int] | None]


def _no_location(path: Path) -> tuple[int, int] | None:
    return None


def format_path(path: Path) -> str:
    """`("jobs", "build", "needs", 1)` as `jobs.build.needs[1]`."""
    text = ""
    for part in path:
        if part == "<key>":  # the key itself, not its value: the same path for the reader
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)`, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """Accumulates problems so that a flow reports every mistake at once."""

    def __init__(self, source: str, locate: Locator = _no_location) -> None:
        self.source = source
        self.locate = locate
        self.items: list[Problem] = []
        self._paths: list[Path] = []

    def add(self, path: Path, message: str, *, at: int | None = None) -> None:
        """Record a problem at `path`; `at` is a character offset inside the text value
        there, so the location points at that character when the loader can map it."""
        where = self.locate((*path, "<char>", at)) if at is not None else None
        where = where or self._find(path)
        line, column = where if where is not None else (None, None)
        self.items.append(Problem(self.source, line, column, format_path(path), message))
        self._paths.append(path)

    def sort(self, key: Callable[[Path], int]) -> None:
        """Reorder by `key` of each problem's path, keeping the order of equal keys."""
        pairs = sorted(zip(self._paths, self.items, strict=True), key=lambda pair: key(pair[0]))
        self._paths = [path for path, _ in pairs]
        self.items = [item for _, item in pairs]

    def _find(self, path: Path) -> tuple[int, int] | None:
        # the loader may not know the exact node (a default, a merged key): fall back to
        # the closest parent it knows, which still points the user at the right job
        for end in range(len(path), 0, -1):
            found = self.locate(path[:end])
            if found is not None:
                return found
        return None

    def raise_if_any(self) -> None:
        if self.items:
            raise FlowError(list(self.items))
