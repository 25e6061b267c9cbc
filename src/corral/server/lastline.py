"""Each job's last line, as the live table shows it, for `GET /runs/{id}/jobs`.

An agent job's comes from its narrative: the run's stored events folded by the one fold
(`RunJournal`: its last text line, or `⚙ tool` for a tool call). A plain command's is
the last line it printed, which the history does not keep (output lines live in the log
files): its last attempt's last stdout line, or its first stderr line if it printed
nothing on stdout, as the fold picks them from the live output. Either is
untrusted text made harmless as the terminal shows it (`render.safe.visible_line`: no
control or invisible character survives) and cut to `MAX_CHARS`.
"""

from __future__ import annotations

from pathlib import Path

from corral.app.history import log_files
from corral.errors import CorralError
from corral.journal.state import PLAIN, RunJournal
from corral.render.safe import visible_line
from corral.store.protocols import HistoryReader
from corral.store.records import RunRecord

MAX_CHARS = 500
TAIL_BYTES = 64 * 1024  # how much of a log's end is read for its last line


def last_lines(history: HistoryReader, record: RunRecord) -> dict[str, str]:
    """Each job of `record` and its last line ("" when it printed nothing)."""
    journal = RunJournal([job.name for job in record.jobs])
    plain = set()
    for job in record.jobs:
        tool = job.final.tool if job.final is not None else None
        if tool:
            journal.job(job.name).tool = tool
        if tool == PLAIN:
            plain.add(job.name)
    if len(plain) < len(record.jobs):
        for stored in history.events(record.run.id):
            journal(stored.event)
    found: dict[str, str] = {}
    for job in record.jobs:
        line = _printed(record, job.name) if job.name in plain else journal.job(job.name).last_line
        found[job.name] = visible_line(line)[:MAX_CHARS]
    return found


def _printed(record: RunRecord, job: str) -> str:
    try:
        stdout = log_files(record, job)[0].path
        stderr = log_files(record, job, stderr=True)[0].path
    except CorralError:
        return ""
    return _line(stdout, last=True) or _line(stderr, last=False)


def _line(path: Path, *, last: bool) -> str:
    """The file's last (or first) line ("" for an empty or missing file)."""
    try:
        with path.open("rb") as handle:
            if last:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - TAIL_BYTES))
            chunk = handle.read(TAIL_BYTES)
    except OSError:
        return ""
    lines = chunk.splitlines()
    if not lines:
        return ""
    raw = lines[-1] if last else lines[0]
    return raw.decode("utf-8", errors="replace").rstrip("\r")
