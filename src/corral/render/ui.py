"""Choose and drive how a run is shown: a live table on a terminal, lines otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console

from corral.events.types import Event
from corral.models import Cost, Usage
from corral.render.printer import LinePrinter
from corral.render.state import RunState

Accounts = Callable[[str], tuple[Usage, Cost | None] | None]


def wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class TerminalUI:
    """`mode`: live, prefixed, grouped or quiet. With --json everything goes to stderr."""

    def __init__(
        self,
        names: list[str],
        *,
        mode: str,
        stream: TextIO,
        title: str,
        max_line_length: int | None = None,
        accounts: Accounts | None = None,
        totals: Callable[[], str] | None = None,
        budgets: Callable[[], list[tuple[str, float]]] | None = None,
    ) -> None:
        self.mode = mode
        self.stream = stream
        colour = wants_colour(stream)
        # off a terminal rich assumes 80 columns; a log or CI page is wider than that
        width = None if stream.isatty() else 160
        self.console = Console(
            file=stream,
            force_terminal=colour if mode == "live" else None,
            no_color=not colour,
            highlight=False,
            soft_wrap=False,
            width=width,
        )
        self.state = RunState(names)
        self._printer: LinePrinter | None = None
        self._live: Any = None
        self._countdown_shown = False
        if mode == "live":
            from corral.render.live import LiveView

            self._live = LiveView(
                self.state,
                self.console,
                title=title,
                accounts=accounts,
                totals=totals,
                budgets=budgets,
                max_line_length=max_line_length,
            )
        else:
            self._printer = LinePrinter(
                names, mode=mode, colour=colour, max_line_length=max_line_length, stream=stream
            )

    def subscriber(self) -> Callable[[Event], None]:
        printer = self._printer
        state = self.state
        if printer is None:
            return state

        def both(event: Event) -> None:
            state(event)
            printer(event)

        return both

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


def choose_mode(requested: str | None, quiet: bool, stream: TextIO) -> str:
    if quiet:
        return "quiet"
    if requested and requested != "auto":
        return requested
    return "live" if stream.isatty() and os.environ.get("TERM") != "dumb" else "prefixed"


def output_stream(json_mode: bool) -> TextIO:
    return sys.stderr if json_mode else sys.stdout
