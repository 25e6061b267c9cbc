"""GNU parallel style `--joblog`: `joblog.tsv` in the run's log folder, one row per
finished attempt, written as it happens (a subscriber, like the journal): at the end of
the event loop's turn in which the attempt ended, with the turn's other rows in one write."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import ClassVar

from corral.events.types import Event, JobFinished, JobStarted


class JobLog:
    """Writes one TSV row per finished attempt (see the module docstring)."""

    BUS_EVENTS: ClassVar[tuple[type[Event], ...]] = (JobStarted, JobFinished)  # what it reads
    HEADER = ("Seq", "Host", "Starttime", "JobRuntime", "Exitval", "Signal", "Command", "Job")

    def __init__(self, path: Path, order: list[str]) -> None:
        # 0600: it lists every command the run ran
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._handle = open(fd, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by close())
        self._handle.write("\t".join(self.HEADER) + "\n")
        self._host = socket.gethostname()
        self._seq = {name: index + 1 for index, name in enumerate(order)}
        self._started: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        self._rows: list[str] = []  # this loop turn's, written by `_flush`
        # a write that failed in `_flush` (a loop callback): raised from the next event
        # or `close`, so it reaches the run through the bus as a failed write did before
        self._failed: OSError | None = None

    def __call__(self, event: Event) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        if isinstance(event, JobStarted):
            self._started[(event.job, event.attempt)] = (event.started_at, event.argv)
        elif isinstance(event, JobFinished) and event.attempt > 0:
            ended = event.ended_at if event.ended_at is not None else time.time()
            start, argv = self._started.pop(
                (event.job, event.attempt), (ended - event.duration_s, ())
            )
            command = " ".join(argv).replace("\t", " ").replace("\n", " ")
            row = (
                str(self._seq.get(event.job, 0)),
                self._host,
                f"{start:.3f}",
                f"{max(ended - start, 0.0):.3f}",
                str(event.exit_code if event.exit_code is not None else -1),
                str(event.signal or 0),
                command,
                event.job,
            )
            line = "\t".join(row) + "\n"
            if not self._rows:
                try:
                    asyncio.get_running_loop().call_soon(self._flush)
                except RuntimeError:  # no event loop (a caller of its own): at once
                    self._handle.write(line)
                    return
            self._rows.append(line)

    def _flush(self) -> None:
        rows = "".join(self._rows)
        self._rows.clear()
        if rows and not self._handle.closed:
            try:
                self._handle.write(rows)
            except OSError as error:
                self._failed = error

    def close(self) -> None:
        self._flush()
        self._handle.close()
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
