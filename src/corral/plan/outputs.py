"""Capturing a finished job's `outputs`: a regex over stdout, a JSON path into the
result, or a file the job wrote. The only module of `corral.plan` that does I/O.

A declared output that is not found is the empty string (as on GitHub Actions), so a
condition such as `jobs.x.outputs.verdict == 'pass'` is simply false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from corral.config.schema import OutputSpec

_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]")
MAX_FILE_BYTES = 1 << 20  # an output is a value, not a payload: read at most 1 MiB

StdoutSource = str | Callable[[re.Pattern[str]], re.Match[str] | None]


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


def _from_regex(pattern: str, stdout: StdoutSource) -> str:
    compiled = re.compile(pattern, re.MULTILINE)
    match = compiled.search(stdout) if isinstance(stdout, str) else stdout(compiled)
    if match is None:
        return ""
    return match.group(1) if compiled.groups else match.group(0)


def _from_file(name: str, cwd: Path) -> str:
    try:
        with (cwd / name).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").rstrip("\n")


def capture_outputs(
    specs: Mapping[str, OutputSpec], *, stdout_tail: StdoutSource, result: str | None, cwd: Path
) -> dict[str, str]:
    """Every declared output of a finished job, "" for those not found.

    `stdout_tail` is the stdout text, or a function that searches the job's log for a
    compiled pattern (so a large log is scanned from disk rather than held in memory).
    Regexes use MULTILINE; the first group is the value, or the whole match without one.
    """
    values: dict[str, str] = {}
    for key, spec in specs.items():
        if spec.regex is not None:
            values[key] = _from_regex(spec.regex, stdout_tail)
        elif spec.json_path is not None:
            values[key] = _from_json(spec.json_path, result)
        elif spec.file is not None:
            values[key] = _from_file(spec.file, cwd)
        else:
            values[key] = ""
    return values
