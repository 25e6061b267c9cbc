"""The attempt pipeline every executor shares: output lines in, events out, and the
classification of how the attempt ended.

An executor feeds each line its job prints to `AttemptPipeline.line` (or a run of whole
lines to `lines`, as `corral.execute.lines.LineSpool` does); the pipeline publishes it
as `JobOutput` (while no subscriber takes every line, only the lines that decide the
job's last line), hands it to the job's parser (a `corral.parsers` entry point) and
publishes what the parser reads, stamped with the job and attempt. When the
process has ended, `finish` flushes the parser and `outcome` says how the attempt went,
from the exit, the reason the executor stopped it (if it did) and what the agent said.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Iterator

from corral.events.bus import Bus
from corral.events.types import (
    AgentError,
    AgentResult,
    ConnectionFailing,
    Event,
    JobOutput,
    SessionStarted,
    Stream,
    stamp,
)
from corral.execute.executor import AttemptOutcome, JobRequest, Publish, StopHandle
from corral.models import ErrorKind, JobStatus
from corral.tools.base import SessionReport

DISPLAY_LINE_BYTES = 64 * 1024  # what a JobOutput event carries for display
PLAIN_KEEP_BYTES = 256 * 1024  # held in memory per line of a plain command (result, outputs)
# an agent line is parsed whole up to this; a longer one is shrunk as it is read (its
# strings cut, corral.execute.jsonshrink), so memory stays far below the line's size
AGENT_KEEP_BYTES = 32 * 1024 * 1024


class StopReason(enum.StrEnum):
    """Why an executor stopped an attempt before it ended by itself."""

    STOP = "stop"  # the StopHandle asked (Ctrl-C, fail-fast, a budget kill)
    TIMEOUT = "timeout"  # the request's timeout
    IDLE = "idle"  # no output for the request's idle_timeout
    LINGER = "linger"  # an agent printed its result, then did not exit (result_grace)


def keep_bytes(request: JobRequest) -> int:
    """How much of one line to hold in memory: agent lines whole, a command's bounded."""
    return AGENT_KEEP_BYTES if request.parser else PLAIN_KEEP_BYTES


def first_line(text: str | None) -> str | None:
    """The first non-blank line, at most 300 characters (for one-line error messages)."""
    if not text or not text.strip():
        return None
    return text.strip().splitlines()[0][:300] or None


class AttemptPipeline:
    """One attempt's lines -> parser -> events, and what the job said about its end."""

    def __init__(
        self, request: JobRequest, publish: Publish, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.request = request
        self.publish = publish
        # the run's bus, when `publish` is its own: it says whether every line is wanted
        owner = getattr(publish, "__self__", None)
        self._bus = owner if isinstance(owner, Bus) else None
        self.clock = clock
        self.parser = None
        if request.parser:
            from corral.parsing import make_parser

            self.parser = make_parser(request.parser, model=request.model)
        self.last_stdout: str | None = None
        self.last_stderr: str | None = None  # why a command failed, as it said it
        # lines can arrive while the spawn is still being awaited: hold them until the
        # JobStarted event is out, so every subscriber sees start before output
        self._held: list[tuple[Stream, bytes, int, bool]] | None = []
        self.result: AgentResult | None = None
        self.result_at: float | None = None  # on `clock`: when the agent said it was done
        self.result_seen = asyncio.Event()  # set with result_at: a watchdog wakes for it
        self.error: AgentError | None = None
        self.session_id: str | None = None
        # since when (on `clock`) the agent has only been failing to connect, and how
        self.stalled_since: float | None = None
        self.stalled: str | None = None
        self._ended = False  # what the parser says once the process ended is no progress

    def line(self, stream: Stream, raw: bytes, offset: int, cut: bool) -> None:
        """One line of output (without its newline), as bytes; `offset` is where it
        starts in that stream's log, `cut` says it was cut short in memory."""
        if self._held is not None:
            self._held.append((stream, raw, offset, cut))
            return
        every = self._every_line()
        self._take(stream, raw, offset, cut, every)
        if not every and (stream == "stdout" or raw):
            self._output(stream, raw, offset, cut)  # it may decide the job's last line

    def lines(self, stream: Stream, data: bytes, start: int, end: int, offset: int) -> None:
        """A run of whole lines, `data[start:end]` (each ends with its newline, none is
        cut), the first at `offset` in that stream's log.

        While a subscriber takes every line (`Bus.every_line`), each is published as
        `JobOutput`. Otherwise only the lines that decide a job's last line as the
        run's journal keeps it are (the last one on stdout, the first non-empty one on
        stderr: any other leaves that fold where these do), and a command's lines are
        not even looked at one by one: only the last non-blank ones are read, for its
        result and its error message.
        """
        first = start
        if self._held is not None:
            for raw, at in _each_line(data, start, end):
                self._held.append((stream, raw, offset + at - start, False))
            return
        every = self._every_line()
        if not every and self.parser is not None:
            self._parse_block(stream, data, start, end)
        elif every or self.parser is not None:
            take, base = self._take, offset - start
            while start < end:  # each line (as _each_line, inline: once per line)
                newline = data.find(b"\n", start, end)
                stop = newline - 1 if newline > start and data[newline - 1] == 13 else newline
                take(stream, data[start:stop], base + start, False, every)
                start = newline + 1
            if every:
                return
        else:
            for raw, _ in _each_line(data, start, end, backwards=True):
                if raw and not raw.isspace() and self._remember(stream, raw):
                    break
        deciding: tuple[bytes, int] | None
        if stream == "stdout":
            deciding = next(_each_line(data, first, end, backwards=True))
        else:
            deciding = next(((raw, at) for raw, at in _each_line(data, first, end) if raw), None)
        if deciding is not None:
            raw, at = deciding
            self._output(stream, raw, offset + at - first, False)

    def _parse_block(self, stream: Stream, data: bytes, start: int, end: int) -> None:
        """An agent's run of whole lines, none published as output: each to the parser
        (what `_take` does per line, in one loop), the last non-blank one remembered."""
        assert self.parser is not None
        feed, forward = self.parser.feed, self._forward
        last: tuple[bytes, str] | None = None
        try:
            while start < end:
                newline = data.find(b"\n", start, end)
                stop = newline - 1 if newline > start and data[newline - 1] == 13 else newline
                raw = data[start:stop]
                text = raw.decode("utf-8", errors="replace")
                if text and not text.isspace():
                    last = (raw, text)
                events = feed(text, stream)
                if events:
                    forward(events)
                start = newline + 1
        finally:  # read only once the attempt ends (`outcome`): the last line is enough
            if last is not None:
                self._keep_last(stream, *last)

    def _every_line(self) -> bool:
        return self._bus is None or self._bus.every_line

    def _take(self, stream: Stream, raw: bytes, offset: int, cut: bool, publish: bool) -> None:
        """One line read: published (with `publish`), remembered if it is not blank,
        and given to the parser."""
        text = raw.decode("utf-8", errors="replace")
        if publish:
            self._output(stream, raw, offset, cut, text)
        # not blank (isspace: no copy of the line, as strip() would make)
        if text and not text.isspace():
            self._keep_last(stream, raw, text)
        if self.parser is not None:
            self._forward(self.parser.feed(text, stream))

    def _output(
        self, stream: Stream, raw: bytes, offset: int, cut: bool, text: str | None = None
    ) -> None:
        if text is None:
            text = raw.decode("utf-8", errors="replace")
        request = self.request
        self.publish(
            JobOutput(
                job=request.job,
                attempt=request.attempt,
                stream=stream,
                text=text if len(raw) <= DISPLAY_LINE_BYTES else text[:DISPLAY_LINE_BYTES],
                offset=offset,
                truncated=cut or len(raw) > DISPLAY_LINE_BYTES,
            )
        )

    def _remember(self, stream: Stream, raw: bytes, text: str | None = None) -> bool:
        """Keep a line that is not blank as the stream's last (what the job said); False
        for a blank one."""
        if text is None:
            text = raw.decode("utf-8", errors="replace")
        if not text or text.isspace():
            return False
        self._keep_last(stream, raw, text)
        return True

    def _keep_last(self, stream: Stream, raw: bytes, text: str) -> None:
        shown = text if len(raw) <= DISPLAY_LINE_BYTES else text[:DISPLAY_LINE_BYTES]
        if stream == "stdout":
            self.last_stdout = shown
        else:
            self.last_stderr = shown.strip()[:200]

    def started(self) -> None:
        """`JobStarted` is out (or the attempt could not start): release held lines."""
        held, self._held = self._held or [], None
        for line in held:
            self.line(*line)

    def _forward(self, events: list[Event]) -> None:
        request = self.request
        job, attempt, publish = request.job, request.attempt, self.publish
        for raw in events:
            event = stamp(raw, job, attempt)
            role = _ROLES.get(type(event))
            if role is None:
                role = _ROLES[type(event)] = _role_of(type(event))
            failing, said = role
            if failing:
                assert isinstance(event, ConnectionFailing)
                if self.stalled_since is None:
                    self.stalled_since = self.clock()
                self.stalled = event.message
            elif not self._ended:  # anything else the agent says while it runs is progress
                self.stalled_since = self.stalled = None
            if said is _Said.RESULT:
                assert isinstance(event, AgentResult)
                self.result = event
                self.result_at = self.clock()
                self.result_seen.set()
                self.session_id = event.session_id or self.session_id
            elif said is _Said.ERROR:
                assert isinstance(event, AgentError)
                self.error = event
            elif said is _Said.SESSION:
                assert isinstance(event, SessionStarted)
                self.session_id = event.session_id or self.session_id
            publish(event)

    def active_at(self, last_output: float) -> float:
        """When the job last made progress, for the idle watchdog: its last output, unless
        all it printed since was connection retries (see `ConnectionFailing`)."""
        return self.stalled_since if self.stalled_since is not None else last_output

    def session_report(self) -> SessionReport | None:
        """What the CLI's own files say about the session (see `Tool.session_report`),
        read on the machine that ran the CLI once the process has ended. Blocking: an
        executor runs it in a thread, then hands it to `finish`."""
        if self.parser is None:
            return None
        from corral.tools import get_tool

        request = self.request
        tool = get_tool(request.tool)
        return tool.session_report(request.env, self.session_id, model=request.model)

    def finish(self, exit_code: int | None, report: SessionReport | None = None) -> None:
        """The process ended (`None`: by a signal): publish what the CLI's own files say
        (`report`), then what the parser still owes."""
        self._ended = True
        if self.parser is not None:
            if report is not None:
                self._forward(self.parser.cli_files(report.model, report.source, report.lines))
            self._forward(self.parser.finish(exit_code))

    @property
    def unparsed(self) -> int:
        return int(getattr(self.parser, "unparsed", 0)) if self.parser is not None else 0

    def outcome(
        self,
        *,
        exit_code: int | None,
        signal: int | None,
        stopped: StopReason | None,
        stop: StopHandle,
        duration_s: float,
        pid: int | None,
    ) -> AttemptOutcome:
        """How the attempt ended (see `classify`)."""
        result = self.result
        status, error, kind = classify(self, exit_code, signal, stopped, stop)
        return AttemptOutcome(
            status,
            exit_code,
            signal,
            duration_s,
            error,
            kind,
            result=result.text if result is not None else self.last_stdout,
            session_id=self.session_id,
            unparsed_lines=self.unparsed,
            pid=pid,
        )


class _Said(enum.Enum):
    """What an agent's event tells the pipeline about the attempt (see `_forward`)."""

    NOTHING = 0
    RESULT = 1
    ERROR = 2
    SESSION = 3


# per type of event: (a connection retry?, what it says), worked out once per type
_ROLES: dict[type[Event], tuple[bool, _Said]] = {}


def _role_of(kind: type[Event]) -> tuple[bool, _Said]:
    # the isinstance chain `_forward` had, in its order, once per type of event
    if issubclass(kind, AgentResult):
        said = _Said.RESULT
    elif issubclass(kind, AgentError):
        said = _Said.ERROR
    elif issubclass(kind, SessionStarted):
        said = _Said.SESSION
    else:
        said = _Said.NOTHING
    return issubclass(kind, ConnectionFailing), said


def _each_line(
    data: bytes, start: int, end: int, *, backwards: bool = False
) -> Iterator[tuple[bytes, int]]:
    """The lines of `data[start:end]` (whole lines, each ending with a newline): each
    without its newline and a carriage return before it, and where it starts."""
    if backwards:
        stop = end - 1  # the newline of the last line
        while stop >= start:
            begin = data.rfind(b"\n", start, stop) + 1 or start
            yield _strip_cr(data, begin, stop), begin
            stop = begin - 1
        return
    while start < end:
        newline = data.find(b"\n", start, end)
        yield _strip_cr(data, start, newline), start
        start = newline + 1


def _strip_cr(data: bytes, start: int, newline: int) -> bytes:
    return data[start : newline - 1 if newline > start and data[newline - 1] == 13 else newline]


# what a stop by the executor's own watchdogs means: (status, kind, message template)
_WATCHDOGS: dict[StopReason, tuple[JobStatus, ErrorKind, str]] = {
    StopReason.TIMEOUT: (JobStatus.TIMED_OUT, ErrorKind.TIMEOUT, "timed out after {timeout:g}s"),
    StopReason.IDLE: (
        JobStatus.TIMED_OUT,
        ErrorKind.IDLE,
        "no output for {idle:g}s (idle_timeout)",
    ),
}

Verdict = tuple[JobStatus, str | None, ErrorKind | None]
_OK: Verdict = (JobStatus.SUCCEEDED, None, None)


def classify(
    said: AttemptPipeline,
    exit_code: int | None,
    signal: int | None,
    stopped: StopReason | None,
    stop: StopHandle,
) -> Verdict:
    """(status, error, error kind) of an ended attempt, the first rule that applies:

    1. stopped on request: the status and reason the request gave;
    2. stopped by a watchdog: timed out (`timeout` or `idle`);
    3. the agent's result says it failed: its kind (else its error's, else `api`);
    4. an agent that lingered after its result was stopped: success, result kept;
    5. the agent reported an error and failed to finish cleanly: that error;
    6. killed by a signal, or a non-zero exit code: failed (`exit`), with the last
       line the job wrote to stderr;
    7. otherwise: success.
    """
    request = said.request
    if stopped is StopReason.STOP:
        return stop.status, stop.reason, stop.error_kind
    if stopped is StopReason.IDLE and said.stalled is not None:
        idle = request.idle_timeout or 0
        message = f"cannot reach the API: only connection retries for {idle:g}s ({said.stalled})"
        return JobStatus.FAILED, message[:300], ErrorKind.API
    if stopped in _WATCHDOGS:
        status, kind, template = _WATCHDOGS[stopped]
        message = template.format(timeout=request.timeout or 0, idle=request.idle_timeout or 0)
        return status, message, kind
    result, error = said.result, said.error
    if result is not None and result.is_error:
        kind = result.error_kind or (error.error_kind if error else ErrorKind.API)
        text = first_line(result.text) or (first_line(error.message) if error else None)
        return JobStatus.FAILED, text or f"{kind} (exit code {exit_code})", kind
    if stopped is StopReason.LINGER and result is not None:
        return _OK  # the agent finished its work and then did not exit: keep the result
    if error is not None and (exit_code != 0 or result is None):
        return JobStatus.FAILED, first_line(error.message), error.error_kind
    if signal is not None:
        return JobStatus.FAILED, f"killed by signal {signal}", ErrorKind.EXIT
    if exit_code != 0:
        said_why = f": {said.last_stderr}" if said.last_stderr else ""
        return JobStatus.FAILED, f"exit code {exit_code}{said_why}", ErrorKind.EXIT
    return _OK
