"""Choose and drive how a run is shown: a live table on a terminal, lines otherwise."""

from __future__ import annotations

import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

from corral.events.bus import Subscriber
from corral.events.types import Event
from corral.journal import RunJournal
from corral.render.printer import LinePrinter

if TYPE_CHECKING:
    from rich.console import Console

    from corral.render.live import LiveView

# off a terminal rich assumes 80 columns; a log or CI page is wider than that
PLAIN_WIDTH = 160


def wants_colour(stream: TextIO) -> bool:
    """Colour on a terminal unless NO_COLOR; FORCE_COLOR forces it."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class TerminalUI:
    """A run's view on a terminal (the CLI's `RunView`): `mode` is live, prefixed,
    grouped or quiet. With --json everything goes to stderr."""

    def __init__(
        self,
        *,
        mode: str,
        stream: TextIO,
        title: str,
        max_line_length: int | None = None,
    ) -> None:
        self.mode = mode
        self.stream = stream
        self.title = title
        self.max_line_length = max_line_length
        self.colour = wants_colour(stream)
        self._live: LiveView | None = None
        self._countdown_shown = False

    @cached_property
    def console(self) -> Console:
        """The rich console the live view and the summary are drawn on (made when first
        drawn on: a quiet run to a pipe never needs one, see `plain`)."""
        from rich.console import Console

        return Console(
            file=self.stream,
            force_terminal=self._force_terminal,
            no_color=not self.colour,
            highlight=False,
            soft_wrap=False,
            width=None if self.stream.isatty() else PLAIN_WIDTH,
        )

    @property
    def _force_terminal(self) -> bool | None:
        return self.colour if self.mode == "live" else None

    @property
    def plain(self) -> bool:
        """Whether `console` would print plain text (no escape), PLAIN_WIDTH columns wide:
        then what is drawn on it can be written without rich (render.summary)."""
        from corral.render.columns import plain_stream

        if self.stream.isatty():
            return False  # rich measures the terminal (or TTY_COMPATIBLE=0 on one): rich
        if self._force_terminal is not None:
            return not self._force_terminal
        return plain_stream(self.stream)

    @property
    def shows_lines(self) -> bool:
        """Whether `subscriber` prints the lines jobs print as they come (only the
        prefixed mode does: the live table shows the journal's last line, grouped
        output reads each job's log when it ends, quiet shows none)."""
        return self.mode == "prefixed"

    def subscriber(self, journal: RunJournal) -> Subscriber:
        """What the bus gives this view: the live table redraws from `journal` by itself,
        the line printer prints each event."""
        if self.mode == "live":
            from corral.render.live import LiveView

            self._live = LiveView(
                journal, self.console, title=self.title, max_line_length=self.max_line_length
            )
            return _ignore
        return LinePrinter(
            list(journal.jobs),
            mode=self.mode,
            colour=self.colour,
            max_line_length=self.max_line_length,
            stream=self.stream,
        )

    def countdown(self, seconds_left: float) -> None:
        from corral.durations import format_duration

        text = f"starting in {format_duration(seconds_left)} (Ctrl-C to cancel)"
        if self.stream.isatty():
            self.stream.write(f"\r\x1b[K{text}")
            self._countdown_shown = True
        elif int(seconds_left) % 60 == 0 or not self._countdown_shown:
            self.stream.write(text + "\n")
            self._countdown_shown = True
        self.stream.flush()

    def __enter__(self) -> TerminalUI:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._countdown_shown and self.stream.isatty():
            self.stream.write("\r\x1b[K")
        if self._live is not None:
            self._live.__exit__(*exc)
        self.stream.flush()


def _ignore(event: Event) -> None:
    return None


def choose_mode(requested: str | None, quiet: bool, stream: TextIO) -> str:
    """The output mode: quiet, the one asked for, else live on a terminal and prefixed
    lines off one."""
    if quiet:
        return "quiet"
    if requested and requested != "auto":
        return requested
    return "live" if stream.isatty() and os.environ.get("TERM") != "dumb" else "prefixed"


def output_stream(json_mode: bool) -> TextIO:
    """Where the run is shown: stderr with --json (stdout holds the document), else stdout."""
    return sys.stderr if json_mode else sys.stdout
