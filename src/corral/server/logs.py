"""A job's output over HTTP: line ranges of its log files, and following them.

A line's `n` is its number (1-based) in its stream's file for that attempt, and a
client's `offset` is the number of lines of that stream it already has, so a follow
that drops resumes exactly where it stopped. A last line without its newline is held
back until the attempt is over (it may still grow).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from corral.app.history import log_files
from corral.errors import CorralError
from corral.models import RunStatus
from corral.server.errors import from_corral
from corral.store.protocols import HistoryReader
from corral.store.records import RunRecord

POLL_S = 0.2
STATUS_EVERY_S = 1.0


@dataclass(frozen=True)
class LogPage:
    lines: list[dict[str, Any]]
    next_offset: int
    at_end: bool


def files_of(
    record: RunRecord, job: str, attempt: int | None, stream: str
) -> list[tuple[str, Path]]:
    """The (stream, file) pairs asked for; 404 for a job or attempt the run lacks."""
    names = ["stdout", "stderr"] if stream == "both" else [stream]
    try:
        return [
            (name, log_files(record, job, attempt=attempt, stderr=name == "stderr")[0].path)
            for name in names
        ]
    except CorralError as error:
        raise from_corral(error) from None


def _lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.splitlines(keepends=True)


def read(files: list[tuple[str, Path]], offset: int, limit: int, final: bool = True) -> LogPage:
    """`limit` lines after the first `offset` (of the streams one after the other)."""
    found: list[dict[str, Any]] = []
    skipped = 0
    at_end = True
    for name, path in files:
        for number, raw in enumerate(_lines(path), start=1):
            if not raw.endswith(b"\n") and not final:
                break
            if skipped < offset:
                skipped += 1
                continue
            if len(found) >= limit:
                at_end = False
                break
            found.append(_line(number, name, raw))
    return LogPage(found, offset + len(found), at_end)


def _line(number: int, stream: str, raw: bytes) -> dict[str, Any]:
    text = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")
    return {"n": number, "stream": stream, "text": text}


def attempt_over(record: RunRecord, job: str, attempt: int | None) -> bool:
    if record.run.status is not RunStatus.RUNNING:
        return True
    found = record.job(job)
    if found is None:
        return True
    if attempt is None:
        return found.status.is_final
    chosen = next((a for a in found.attempts if a.attempt == attempt), None)
    return chosen is not None and chosen.status.is_final


async def follow(
    history: HistoryReader,
    run_id: str,
    job: str,
    files: list[tuple[str, Path]],
    offset: int,
    attempt: int | None = None,
) -> AsyncIterator[bytes]:
    """NDJSON of the lines after `offset` as they are written, until the attempt ends."""
    name, path = files[0]
    done = False
    position, count, since_check = 0, 0, STATUS_EVERY_S
    pending = b""
    while True:
        chunk = await asyncio.to_thread(_read_from, path, position)
        position += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        out = []
        for raw in complete:
            count += 1
            if count > offset:
                out.append(orjson.dumps(_line(count, name, raw + b"\n")) + b"\n")
        if out:
            yield b"".join(out)
        if done:
            if pending:
                count += 1
                if count > offset:
                    yield orjson.dumps(_line(count, name, pending)) + b"\n"
            return
        if since_check >= STATUS_EVERY_S:
            since_check = 0.0
            record = await asyncio.to_thread(history.get_run, run_id)
            done = attempt_over(record, job, attempt)
            if done:
                continue  # read the last lines once more
        await asyncio.sleep(POLL_S)
        since_check += POLL_S


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(position)
            return handle.read()
    except FileNotFoundError:
        return b""
