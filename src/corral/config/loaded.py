"""A validated flow with what later stages need to report precise errors (no pydantic:
`corral exec` builds one without the schema, see `corral.config.fields`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corral.errors import Problem

if TYPE_CHECKING:
    from corral.config.fields import FlowFields
    from corral.config.locate import Locator, Path_


@dataclass(frozen=True)
class LoadedFlow:
    """A validated flow, with what later stages need to report precise errors."""

    spec: FlowFields
    path: Path
    source: str  # the path as the user wrote it, for messages
    text: str
    locate: Locator
    legacy: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    def problem(self, path: Path_, message: str) -> Problem:
        """A Problem located at `path` (or its nearest located parent)."""
        line, column = position(self.locate, path)
        return Problem(self.source, line, column, dotted(path), message)


def dotted(path: Path_) -> str:
    text = ""
    for part in path:
        if part == "<key>":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def position(locate: Locator, path: Path_) -> tuple[int | None, int | None]:
    probe = tuple(path)
    while True:
        found = locate(probe)
        if found:
            return found
        if not probe:
            return None, None
        probe = probe[:-1]
