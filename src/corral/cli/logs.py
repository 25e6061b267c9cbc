"""`corral logs --format text|json`: a run's job logs read through the parsers that drove
the live view (corral.app.logview), one job or every job, once or following the run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from corral.app.history import JobLogFile, follow_logs, log_files, show_run
from corral.app.logview import LineSplitter, LogFormat, LogView, Shown, Stream, attempt_of
from corral.store.records import RunRecord

STDERR_MARK = "stderr| "


def formatted_logs(
    record: RunRecord,
    job: str | None,
    fmt: str,
    *,
    stream: str | None,
    attempt: int | None,
    follow: bool,
    raw: bool,
    store_url: str | None,
    directory: Path,
) -> int:
    """Print the logs of `job` (every job when None) in `fmt`; stderr lines marked when
    both streams are shown as text."""
    assert fmt in ("text", "json")
    chosen: LogFormat = "text" if fmt == "text" else "json"
    streams: list[Stream] = (
        ["stderr" if stream == "stderr" else "stdout"] if stream else ["stdout", "stderr"]
    )
    names = [job] if job is not None else [j.name for j in record.jobs]
    files = {
        name: [
            (s, log_files(record, name, attempt=attempt, stderr=s == "stderr")[0]) for s in streams
        ]
        for name in names
    }
    printer = _Printer(chosen, marked=stream is None and chosen == "text", raw=raw,
                       several=len(names) > 1)  # fmt: skip
    if not follow:
        for name in names:
            if len(names) == 1 and not any(log.path.exists() for _, log in files[name]):
                where = files[name][0][1].path.parent
                click.echo(f"corral: job {name} wrote no log (not started?): {where}", err=True)
                return 0
            view = LogView(chosen, attempt_of(record, name, attempt), name)
            for kind, log in files[name]:
                for text, offset in _lines(log.path):
                    printer.show(name, view.line(text, kind, offset))
            printer.show(name, view.finish())
        printer.end()
        return 0
    views: dict[str, LogView] = {}
    splitters = {log.path: (kind, LineSplitter()) for name in names for kind, log in files[name]}

    def view_of(name: str) -> LogView:
        if name not in views:
            # the job may have started since the record was read: read it again
            found = attempt_of(record, name, attempt) or attempt_of(
                show_run(store_url, directory, record.run.id), name, attempt
            )
            views[name] = LogView(chosen, found, name)
        return views[name]

    def grew(log: JobLogFile, chunk: bytes) -> None:
        kind, splitter = splitters[log.path]
        for text, offset in splitter.feed(chunk):
            printer.show(log.job, view_of(log.job).line(text, kind, offset))

    every = [log for name in names for _, log in files[name]]
    follow_logs(store_url, directory, record.run.id, every, grew)
    for log in every:
        kind, splitter = splitters[log.path]
        for text, offset in splitter.flush():
            printer.show(log.job, view_of(log.job).line(text, kind, offset))
    for name in names:
        printer.show(name, view_of(name).finish())
    printer.end()
    return 0


def _write(data: bytes) -> None:
    out = sys.stdout.buffer  # bytes, as `corral logs` writes them (no re-encoding)
    out.write(data)
    out.flush()


def _lines(path: Path) -> Iterator[tuple[str, int]]:
    """The file's lines with their offsets, read a block at a time (a log may be huge)."""
    if not path.exists():
        return
    splitter = LineSplitter()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            yield from splitter.feed(block)
    yield from splitter.flush()


class _Printer:
    """Writes shown lines: a `==> job <==` header when the job changes (several jobs),
    `stderr| ` before a stderr line when both streams are shown; on a terminal what a
    job printed is made visible (its control sequences as text) unless `raw`."""

    def __init__(self, fmt: LogFormat, *, marked: bool, raw: bool, several: bool) -> None:
        self.marked, self.several = marked, several
        self.last: str | None = None
        self.emit: Callable[[bytes], None] = _write
        self.visible: Callable[[bytes], None] = self.emit
        if fmt == "text" and not raw and sys.stdout.isatty():
            from corral.render.safe import visible_writer

            self.visible = visible_writer(self.emit)

    def show(self, job: str, lines: list[Shown]) -> None:
        for kind, text in lines:
            if self.several and self.last != job:
                self.visible(b"")  # what the decoder held back belongs to the last job
                self.emit(f"==> {job} <==\n".encode())
                self.last = job
            mark = STDERR_MARK if self.marked and kind == "stderr" else ""
            self.visible((mark + text + "\n").encode())

    def end(self) -> None:
        self.visible(b"")
