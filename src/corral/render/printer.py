"""Line-oriented output for pipes and CI logs: prefixed (like `parallel --tag`), grouped
(each job's output in one block when it ends, streamed back from its log) or quiet.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from corral.durations import format_duration
from corral.events.types import (
    AgentError,
    AssistantText,
    BudgetExceeded,
    ConnectionFailing,
    Event,
    JobFinished,
    JobOutput,
    JobRetrying,
    JobSkipped,
    JobStarted,
    RateLimited,
    ToolCall,
)
from corral.models import JobStatus
from corral.render.narrative import narrative, truncate
from corral.render.safe import visible_line

_COLOURS = ["36", "33", "35", "32", "34", "91", "96", "93", "95", "92", "94"]
_MARK = {
    JobStatus.SUCCEEDED: ("✓", "32"),
    JobStatus.FAILED: ("✗", "31"),
    JobStatus.TIMED_OUT: ("⏱", "31"),
    JobStatus.CANCELLED: ("⊘", "33"),
    JobStatus.SKIPPED: ("↷", "2"),
}


def _silence(stream: TextIO) -> None:
    """Point a broken stream's descriptor at /dev/null so later flushes do not fail."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class LinePrinter:
    """Prints lifecycle lines and (unless quiet) the jobs' output, one line at a time."""

    def __init__(
        self,
        names: list[str],
        *,
        mode: str = "prefixed",
        colour: bool = False,
        max_line_length: int | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.mode = mode
        self.colour = colour
        self.limit = max_line_length
        self.out = stream or sys.stdout
        self.width = max((len(n) for n in names), default=4)
        self._colour_of = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
        self._log_dirs: dict[str, str] = {}
        self.closed = False
        self._agents: set[str] = set()  # jobs whose stdout is a machine stream, shown as narrative
        # the only events the bus need give it (None: all): quiet prints failed jobs only,
        # so an agent's text, tool calls and results never visit it
        self.BUS_EVENTS: tuple[type[Event], ...] | None = (
            (JobFinished,) if mode == "quiet" else None
        )

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _prefix(self, job: str) -> str:
        code = self._colour_of.get(job, "0")
        return self._paint(f"{job:<{self.width}} |", code)

    def _write(self, line: str) -> None:
        if self.closed:
            return
        try:
            # no blanks at a line's end (an empty line of a job's is `job |`): pipes and
            # CI logs keep them; the job's own bytes are in its log, untouched
            self.out.write(line.rstrip() + "\n")
        except BrokenPipeError:
            # the reader went away (`corral run f.yaml | head`): the jobs carry on, logged
            self.closed = True
            _silence(self.out)

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobOutput):
            if event.job in self._agents:
                # an agent speaks through its parser; its raw lines (JSON, and on stderr the
                # CLI's own noise: "Reading additional input from stdin...", colour and
                # ripgrep warnings) stay in the logs, and its errors come as AgentError
                return
            if self.mode == "prefixed":
                text = truncate(visible_line(event.text), self.limit)
                if event.stream == "stderr":
                    text = self._paint(text, "2")
                self._write(f"{self._prefix(event.job)} {text}")
            return
        if self.mode == "quiet":
            if isinstance(event, JobFinished) and event.status.is_failure:
                self._write(f"{self._status_line(event)}")
            return
        if self.mode == "prefixed" and isinstance(event, AssistantText | ToolCall | AgentError):
            self._narrate(event)
            return
        self._lifecycle(event)

    def _note(self, job: str, text: str, code: str) -> None:
        # corral's own notes are never cut: --max-line-length is for what jobs print; they
        # quote what jobs printed (a tool's name, an error), so they are made visible too
        self._write(f"{self._prefix(job)} {self._paint(visible_line(text), code)}")

    def _lifecycle(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self._log_dirs[event.job] = event.log_dir
            if event.tool != "generic":
                self._agents.add(event.job)
            attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self._note(event.job, "▶ started" + attempt, "1")
        elif isinstance(event, JobFinished):
            if self.mode == "grouped" and event.status is not JobStatus.CANCELLED:
                self._replay(event)
            self._write(self._status_line(event))
        elif isinstance(event, JobSkipped):
            self._note(event.job, "↷ " + event.reason, "2")
        elif isinstance(event, JobRetrying):
            delay = f"{event.delay_s:.1f}s"
            self._note(
                event.job,
                f"⟳ attempt {event.attempt} failed ({event.reason}); retry in {delay}",
                "33",
            )
        elif isinstance(event, RateLimited):
            self._note(event.job, "rate limited: " + event.message, "33")
        elif isinstance(event, ConnectionFailing):
            self._note(event.job, "cannot connect: " + event.message, "33")
        elif isinstance(event, BudgetExceeded):
            from corral.render.format import budget_breach_text  # rare: loaded when needed

            self._write(self._paint(budget_breach_text(event), "31"))

    def _narrate(self, event: AssistantText | ToolCall | AgentError) -> None:
        for text, code in narrative(event, self.limit):
            self._write(f"{self._prefix(event.job)} {self._paint(text, code) if code else text}")

    def _status_line(self, event: JobFinished) -> str:
        mark, code = _MARK.get(event.status, ("•", "0"))
        detail = f"{event.status.value} in {format_duration(event.duration_s)}"
        if event.exit_code is not None:
            detail += f" (exit {event.exit_code})"
        if event.error and event.status is not JobStatus.SUCCEEDED:
            detail += f": {visible_line(event.error)}"
        return f"{self._prefix(event.job)} {self._paint(mark + ' ' + detail, code)}"

    def _replay(self, event: JobFinished) -> None:
        """Grouped mode: stream the attempt's stdout and stderr back from its log files."""
        log_dir = self._log_dirs.get(event.job)
        if not log_dir:
            return
        for name in ("stdout.log", "stderr.log"):
            path = Path(log_dir) / name
            if not path.exists():
                continue
            with path.open("rb") as handle:
                for raw in handle:
                    text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
                    shown = truncate(visible_line(text), self.limit)
                    self._write(f"{self._prefix(event.job)} {shown}")
