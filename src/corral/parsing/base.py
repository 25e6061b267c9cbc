"""Shared machinery of the output parsers: tolerant field access, money, error kinds, buffers."""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

import orjson

from corral.events.types import AgentError, AgentResult, Event, Unparsed
from corral.events.types import Stream as Stream  # noqa: PLC0414  # re-exported: parsers import it here
from corral.models import ErrorKind, Usage

UNKNOWN_MODEL = "unknown"
"""The `by_model` key used when a CLI never names its model (priced as unknown, never $0)."""

PREVIEW_CHARS = 200
_STDERR_TAIL_LINES = 20
_STDERR_TAIL_CHARS = 2000
_BLOCK_MAX_LINES = 400  # a pretty-printed error object is ~10 lines; stack traces are not kept

# A wrong type deep inside a known event (usage as a string, content as null...) shows up
# as one of these; the line is then counted as unparsed instead of crashing the job.
MALFORMED = (AttributeError, KeyError, TypeError, ValueError, ArithmeticError, RecursionError)


# -- tolerant accessors --------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int:
    """A non-negative token count; anything else (None, "12", NaN, -3, True) reads as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float | Decimal):
        try:
            return max(int(value), 0)
        except (ValueError, OverflowError, ArithmeticError):
            return 0
    return 0


def opt_int(value: Any) -> int | None:
    """An optional integer field such as an HTTP status (None when absent or not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def money(value: Any) -> Decimal | None:
    """Dollars as a Decimal: the digits the CLI printed, less binary-float noise.

    A float goes through `str`, whose shortest round-trip digits are the ones JavaScript
    printed; a Decimal (from `parse_float=Decimal`) is kept as is. The CLIs add costs up
    in binary floats, so their last digits can be noise (`0.9000000000000001`,
    `0.030749999999999996`): see `without_float_noise`.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return without_float_noise(value) if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return without_float_noise(Decimal(str(value))) if math.isfinite(value) else None
    return None


# the argument that says what a tool call does, by the names the CLIs give it
_DETAIL_KEYS = ("command", "cmd", "file_path", "path", "pattern", "query", "url", "prompt")


def tool_detail(arguments: object) -> str:
    """One line saying what a tool call does (`ls -la`, `src/app.py`), at most 120
    characters, from its arguments; "" when none says it."""
    if isinstance(arguments, dict):
        for key in _DETAIL_KEYS:
            value = arguments.get(key)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            if isinstance(value, str) and value.strip():
                line = " ".join(value.split())
                return line if len(line) <= 120 else line[:119] + "…"
    return ""


FLOAT_DIGITS = 15  # a binary double holds 15 significant decimal digits faithfully


def without_float_noise(amount: Decimal) -> Decimal:
    """`amount` rounded to 15 significant digits, trailing zeros dropped: what a sum of
    binary floats meant (`0.9000000000000001` is 0.9). Shorter numbers are kept as is."""
    if len(amount.as_tuple().digits) <= FLOAT_DIGITS:
        return amount
    rounded = amount.quantize(Decimal(1).scaleb(amount.adjusted() - FLOAT_DIGITS + 1))
    text = format(rounded, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


def loads_exact(line: str) -> Any:
    """Parse a line keeping every JSON number with a fraction as an exact Decimal."""
    return json.loads(line, parse_float=Decimal)


def shortfall(expected: Usage, got: Usage) -> Usage:
    """What `got` lacks to reach `expected`, field by field (never negative)."""
    return Usage(*(max(getattr(expected, f.name) - getattr(got, f.name), 0) for f in fields(Usage)))


# -- errors ----------------------------------------------------------------------------------

_STATUS_MARKED = re.compile(
    r"(?:status(?:\s*code)?\s*[:=]?\s*|\"code\"\s*:\s*|\bcode[:=]\s*|\(|\berror\s+|API Error:\s*)"
    r"([45]\d\d)\b",
    re.IGNORECASE,
)
_STATUS_BARE = re.compile(r"(?<![\w.:/-])([45]\d\d)(?![\w.:/-])")
_KEYWORDS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"rate.?limit|too many requests|resource.?exhausted|quota", re.I), 429),
    (
        # what each CLI says when it has no credentials at all (Claude Code: "Not logged
        # in · Please run /login"; Gemini CLI: "Please set an Auth method"; Qwen Code: "No
        # auth type is selected"; Copilot CLI: "No authentication information found"), or
        # bad ones
        re.compile(
            r"unauthori[sz]ed|unauthenticated|invalid api key|api key not valid|not logged in"
            r"|please run /login|set an auth method|authentication (?:failed|required)"
            r"|(?:missing|no) api key|api key (?:is )?(?:missing|not set)"
            r"|no auth type is selected|no authentication information",
            re.I,
        ),
        401,
    ),
    (re.compile(r"permission.?denied|forbidden", re.I), 403),
)


def status_kind(status: int | None) -> ErrorKind:
    """429 is a rate limit, 401/403 an auth problem, any other API status an API error."""
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (401, 403):
        return ErrorKind.AUTH
    return ErrorKind.API


def find_status(text: str) -> int | None:
    """The HTTP status an error message names ("status 401", "(429)", '"code":500' ...)."""
    head = text[:4000]
    found = _STATUS_MARKED.search(head) or _STATUS_BARE.search(head)
    if found:
        return int(found.group(1))
    return keyword_status(head)


def keyword_status(text: str) -> int | None:
    """The status a message's words mean ("too many requests", "not logged in" ...), for
    text where a bare number is more likely a line number than an HTTP status."""
    for pattern, status in _KEYWORDS:
        if pattern.search(text):
            return status
    return None


def kind_of_message(text: str) -> tuple[ErrorKind, int | None]:
    status = find_status(text)
    return status_kind(status), status


def status_from_exit(exit_code: int | None) -> int | None:
    """Gemini CLI exits with the HTTP status mod 256; 144..255 maps back to 400..511."""
    if exit_code is not None and 144 <= exit_code <= 255:
        return exit_code + 256
    return None


def failure(kind: ErrorKind, message: str, status: int | None, **result: Any) -> list[Event]:
    """The pair every parser emits when a run failed: the error, then the final result."""
    return [
        AgentError(error_kind=kind, message=message, status=status),
        AgentResult(is_error=True, error_kind=kind, **result),
    ]


# -- buffers ---------------------------------------------------------------------------------


class JsonBlock:
    """Finds the last top-level JSON object in a stream of lines (pretty-printed or not).

    Gemini prints its error object after a stack trace, indented over several lines;
    only the last complete object is kept, and a runaway block is dropped.
    """

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None
        self.stray = False  # the last line was not part of any object
        self._lines: list[str] | None = None

    def add(self, line: str) -> dict[str, Any] | None:
        """Take one line; return the object it completes, if any."""
        self.stray = False
        if line.startswith("{"):
            self._lines = None
            if line.rstrip().endswith("}"):
                obj = self._parse(line)
                if obj is not None:
                    return obj
            self._lines = [line]
            return None
        if self._lines is None or (not line[:1].isspace() and not line.startswith(("}", "]"))):
            # inside a pretty-printed object every line is indented or closes a bracket
            self.stray = True
            return None
        self._lines.append(line)
        if line.startswith("}"):
            text, self._lines = "\n".join(self._lines), None
            return self._parse(text)
        if len(self._lines) > _BLOCK_MAX_LINES:
            self._lines = None
        return None

    @property
    def pending(self) -> list[str]:
        """Lines of an object that was started and never closed."""
        return list(self._lines or ())

    def _parse(self, text: str) -> dict[str, Any] | None:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if isinstance(obj, dict):
            self.last = obj
            return obj
        return None


class BaseParser:
    """Counting of unparsed lines, the stderr tail, and the JSON-lines dispatch loop.

    Subclasses implement `on_object` (one decoded stdout object) and `on_finish`.
    """

    def __init__(self, model: str | None = None) -> None:
        self.unparsed = 0
        self.model_hint = model
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.finished = False

    # -- the Parser protocol --

    def feed(self, line: str, stream: Stream) -> list[Event]:
        if stream == "stderr":
            if line and not line.isspace():
                self.stderr_tail.append(line[:_STDERR_TAIL_CHARS])
            return self.on_stderr(line)
        if not line or line.isspace():
            return []
        return self.on_stdout(line)

    def finish(self, exit_code: int | None) -> list[Event]:
        if self.finished:  # called once by contract; a second call must not double-report
            return []
        self.finished = True
        return self.on_finish(exit_code)

    # -- hooks --

    def on_stdout(self, line: str) -> list[Event]:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return self.bad(line)
        if not isinstance(obj, dict):
            return self.bad(line)
        try:
            return self.on_object(obj, line)
        except MALFORMED:
            return self.bad(line)

    def on_stderr(self, line: str) -> list[Event]:
        return []

    def on_object(self, obj: dict[str, Any], line: str) -> list[Event]:
        raise NotImplementedError

    def on_finish(self, exit_code: int | None) -> list[Event]:
        raise NotImplementedError

    def cli_files(self, model: str | None, source: str, lines: Sequence[str]) -> list[Event]:
        """Facts from the CLI's own files (see `Parser.cli_files`); most CLIs need none."""
        return []

    # -- helpers --

    def bad(self, line: str) -> list[Event]:
        self.unparsed += 1
        return [Unparsed(preview=line[:PREVIEW_CHARS])]

    def last_stderr(self) -> str | None:
        for text in reversed(self.stderr_tail):
            cleaned = _ANSI.sub("", text).strip()
            if cleaned:
                return cleaned
        return None

    def exit_failure(self, exit_code: int | None, **result: Any) -> list[Event]:
        """What to say when the CLI exited without reporting an outcome of its own."""
        if exit_code == 0:
            return [AgentResult(**result)]
        if exit_code is None:  # killed: the runner knows why (timeout, idle, cancel)
            return [AgentResult(is_error=True, **result)]
        message = self.last_stderr() or f"exit code {exit_code}"
        status = find_status(message)
        if status is None:
            # the last line may only end the CLI's explanation (Copilot lists ways to log
            # in after "No authentication information found"): a line before it that says
            # the credentials are missing is the message, and the failure is auth
            for line in reversed(self.stderr_tail):
                if keyword_status(line) == 401:
                    message, status = _ANSI.sub("", line).strip(), 401
                    break
        kind = status_kind(status) if status is not None else ErrorKind.EXIT
        result.setdefault("text", None)
        return failure(kind, message, status, **result)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
