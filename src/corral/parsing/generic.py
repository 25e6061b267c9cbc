"""Any plain-text command: the last stdout line is the result; token counts are read if printed."""

from __future__ import annotations

import re

from corral.events.types import AgentResult, Event, UsageUpdated
from corral.models import ErrorKind, Usage
from corral.parsing.base import (
    UNKNOWN_MODEL,
    BaseParser,
    Stream,
    failure,
    find_status,
    status_kind,
)

_NUMBER = r"(\d[\d,_]*)"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("input", re.compile(rf"\binput[ _-]?tokens?\b\s*[:=]?\s*{_NUMBER}", re.I)),
    ("output", re.compile(rf"\boutput[ _-]?tokens?\b\s*[:=]?\s*{_NUMBER}", re.I)),
    (
        "cached",
        re.compile(
            rf"\bcached?[ _-]?(?:read[ _-]?)?(?:input[ _-]?)?tokens?\b\s*[:=]?\s*{_NUMBER}", re.I
        ),
    ),
    ("total", re.compile(rf"\btotal[ _-]?tokens?\b\s*[:=]?\s*{_NUMBER}", re.I)),
    ("total", re.compile(rf"\btokens[ _-]used\b\s*[:=]?\s*{_NUMBER}", re.I)),
)
# Codex text mode prints the label and the number on two lines: "tokens used\n1,574"
_LABEL_ONLY = re.compile(r"^\s*tokens used\s*:?\s*$", re.I)
_NUMBER_ONLY = re.compile(rf"^\s*{_NUMBER}\s*$")
_BANNER_MODEL = re.compile(r"^model:\s*(\S+)\s*$")
_API_ERROR = re.compile(r"\bAPI Error\b|\bstatus(?: code)?:? [45]\d\d\b", re.I)
_WORTH_SCANNING = re.compile(r"tokens?\b|^model:", re.I)  # one cheap test before the patterns
_MAX_SCAN = 400  # token lines are short; long lines (data, logs) are not scanned


def _number(text: str) -> int:
    return int(text.replace(",", "").replace("_", ""))


class GenericParser(BaseParser):
    """Plain text. Emits usage only when the output names token counts:
    `input tokens: N`, `output tokens: N`, `cached tokens: N`, `total tokens: N`,
    `tokens used N` (a bare total counts as input: the split is unknown, and the token
    budget, which adds input and output, is right either way)."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.model = model
        self.counts: dict[str, int] = {}
        self.last_line: str | None = None
        self._label_pending = False

    def feed(self, line: str, stream: Stream) -> list[Event]:
        if stream == "stdout" and line.strip():
            self.last_line = line
        elif stream == "stderr" and line.strip():
            self.stderr_tail.append(line[:2000])
        if len(line) > _MAX_SCAN or line.isspace() or not line:
            return []
        if not (self._label_pending or _WORTH_SCANNING.search(line)):
            return []
        return self.scan(line)

    def scan(self, line: str) -> list[Event]:
        before = dict(self.counts)
        if self._label_pending:
            self._label_pending = False
            number = _NUMBER_ONLY.match(line)
            if number:
                self.counts["total"] = _number(number.group(1))
        if _LABEL_ONLY.match(line):
            self._label_pending = True
        model = _BANNER_MODEL.match(line)
        if model and self.model_hint is None:
            self.model = model.group(1)
        for key, pattern in _PATTERNS:
            found = pattern.search(line)
            if found:
                self.counts[key] = _number(found.group(1))
        if self.counts == before:
            return []
        return [self.usage()]

    def usage(self, *, final: bool = False) -> UsageUpdated:
        counts = self.counts
        if "input" in counts or "output" in counts:
            usage = Usage(
                input_tokens=counts.get("input", 0),
                output_tokens=counts.get("output", 0),
                cache_read_tokens=counts.get("cached", 0),
            )
        else:
            usage = Usage(
                input_tokens=counts.get("total", 0), cache_read_tokens=counts.get("cached", 0)
            )
        return UsageUpdated(by_model={self.model or UNKNOWN_MODEL: usage}, final=final)

    def on_finish(self, exit_code: int | None) -> list[Event]:
        events: list[Event] = [self.usage(final=True)] if self.counts else []
        text = self.last_line
        if exit_code == 0:
            return [*events, AgentResult(text=text)]
        if exit_code is None:
            return [*events, AgentResult(text=text, is_error=True)]
        message = text or self.last_stderr() or f"exit code {exit_code}"
        # any command may print numbers: only an explicit API error names a status
        status = find_status(message) if _API_ERROR.search(message) else None
        kind = status_kind(status) if status is not None else ErrorKind.EXIT
        return events + failure(kind, message, status, text=text)
