"""Capturing a finished job's `outputs`: a regex over stdout, a JSON path into the
result, or a file the job wrote.

The job's stdout and files are read through an `OutputReader` that its executor gives
(they may be on another machine), so this module does no I/O itself.

A declared output that is not found is the empty string (as on GitHub Actions), so a
condition such as `jobs.x.outputs.verdict == 'pass'` is simply false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from corral.config.schema import OutputSpec

_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]")
MAX_FILE_BYTES = 1 << 20  # an output is a value, not a payload: read at most 1 MiB


class OutputReader(Protocol):
    """A finished attempt's output, wherever it ran (see `Executor.output`)."""

    def search(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of `pattern` in the attempt's stdout (multi-line patterns
        may span lines), without holding a large log in memory."""
        ...

    def read_file(self, name: str, limit: int) -> bytes | None:
        """At most `limit` bytes of a file relative to the attempt's working directory;
        None when it cannot be read."""
        ...


class TextOutput:
    """An `OutputReader` over text held in memory (tests, fake executors)."""

    def __init__(self, stdout: str = "", files: Mapping[str, bytes] | None = None) -> None:
        self.stdout = stdout
        self.files = dict(files or {})

    def search(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        return pattern.search(self.stdout)

    def read_file(self, name: str, limit: int) -> bytes | None:
        data = self.files.get(name)
        return None if data is None else data[:limit]


def parse_json_path(text: str) -> list[str | int]:
    """`a.b[0].c` -> ["a", "b", 0, "c"]; a leading `$` or `$.` is accepted.

    Raises ValueError for an empty or malformed path.
    """
    rest = text.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    parts: list[str | int] = []
    pos = 0
    while pos < len(rest):
        match = _SEGMENT.match(rest, pos)
        if match is None or (match.group(1) is not None and pos > 0 and rest[pos] != "."):
            raise ValueError(f"invalid JSON path {text!r} at {rest[pos:]!r}: use a.b[0].c")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not parts:
        raise ValueError(f"empty JSON path {text!r}: use a.b[0].c")
    return parts


def output_problem(spec: OutputSpec) -> str | None:
    """What is wrong with an output declaration, or None (checked by build_plan)."""
    given = [k for k in ("regex", "json_path", "file") if getattr(spec, k) is not None]
    if len(given) != 1:
        return "give exactly one of regex, json_path or file"
    try:
        if spec.regex is not None:
            re.compile(spec.regex)
        elif spec.json_path is not None:
            parse_json_path(spec.json_path)
    except re.error as exc:
        return f"invalid regex {spec.regex!r}: {exc}"
    except ValueError as exc:
        return str(exc)
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _from_json(path: str, result: str | None) -> str:
    if not result:
        return ""
    try:
        value: Any = json.loads(result)
    except ValueError:
        return ""
    for part in parse_json_path(path):
        if isinstance(part, int) and isinstance(value, list):
            if not -len(value) <= part < len(value):
                return ""
        elif not (isinstance(part, str) and isinstance(value, dict) and part in value):
            return ""
        value = value[part]
    return _as_text(value)


def _from_regex(pattern: str, output: OutputReader) -> str:
    compiled = re.compile(pattern, re.MULTILINE)
    match = output.search(compiled)
    if match is None:
        return ""
    return match.group(1) if compiled.groups else match.group(0)


def _from_file(name: str, output: OutputReader) -> str:
    data = output.read_file(name, MAX_FILE_BYTES)
    if data is None:
        return ""
    return data.decode("utf-8", errors="replace").rstrip("\n")


def capture_outputs(
    specs: Mapping[str, OutputSpec], *, output: OutputReader, result: str | None
) -> dict[str, str]:
    """Every declared output of a finished job, "" for those not found.

    `output` reads the job's stdout and files (`Executor.output`). Regexes use
    MULTILINE; the first group is the value, or the whole match without one.
    """
    values: dict[str, str] = {}
    for key, spec in specs.items():
        if spec.regex is not None:
            values[key] = _from_regex(spec.regex, output)
        elif spec.json_path is not None:
            values[key] = _from_json(spec.json_path, result)
        elif spec.file is not None:
            values[key] = _from_file(spec.file, output)
        else:
            values[key] = ""
    return values
