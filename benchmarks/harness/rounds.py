"""Interleaved rounds: every contender of a row once per round, the order rotating.

Checks (every byte logged, every line counted) and clean-ups (moving aside the logs a run
left, deleted once every row is measured) happen between measurements, outside the timing.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.measure import Command, Sample, measure
from harness.report import Contender


@dataclass
class Entry:
    """A contender to measure: its command (None when its tool is missing), check, clean-up."""

    key: str
    label: str
    command: Command | None
    missing: str = ""
    check: Callable[[], str | None] | None = None  # after a run: None, or what is wrong
    cleanup: Callable[[], None] | None = None
    metrics: dict[str, Callable[[Sample], float]] = field(default_factory=dict)


def run_rounds(
    title: str, entries: list[Entry], rounds: int, scratch: Path, warmup: bool = False
) -> dict[str, Contender]:
    """Measure `entries` for `rounds` rounds (plus an unrecorded warm-up round if asked)."""
    live = [e for e in entries if e.command is not None]
    results = {
        e.key: Contender(
            e.key,
            e.label,
            e.command.shell() if e.command else "(not run)",
            missing=e.missing,
            metrics=e.metrics,
        )
        for e in entries
    }
    first = -1 if warmup else 0
    for number in range(first, rounds):
        shift = number % len(live) if live else 0
        for entry in live[shift:] + live[:shift]:
            sample = _one(entry, scratch)
            if number < 0:
                continue
            results[entry.key].rounds.append(sample)
            tag = f"{title} {number + 1}/{rounds}"
            print(f"  [{tag}] {entry.label}: {_brief(sample)}", file=sys.stderr, flush=True)
    return results


def _one(entry: Entry, scratch: Path) -> Sample | None:
    assert entry.command is not None
    out = scratch / f"{entry.key}.out"
    try:
        sample = measure(entry.command, out)
        if sample.error is None and entry.check is not None:
            sample.error = entry.check()
    finally:
        if entry.cleanup is not None:
            entry.cleanup()
    return sample


def _brief(sample: Sample | None) -> str:
    if sample is None:
        return "no sample"
    text = (
        f"{sample.wall:.3f} s wall, {sample.own_cpu:.2f} s own CPU, "
        f"{sample.tree_cpu:.2f} s tree CPU, {sample.peak_rss / 2**20:.0f} MiB"
    )
    return text + (f"  ERROR {sample.error[:200]}" if sample.error else "")


def emptied(*folders: Path, trash: Path | None = None) -> Callable[[], None]:
    """A clean-up that empties `folders` of what a run wrote (and keeps the folders).

    With `trash` (a folder on the same file system) it is moved there, to be deleted once
    every row is measured: ext4 makes a new inode slow to find for a
    while after many were deleted (`recently_deleted()` in `find_inode_bit`), so deleting
    thousands of run folders just before the next round made that round's every mkdir
    and log open cost up to ~0.7 ms more, a cost a user's run does not have (w9flat).
    """

    def cleanup() -> None:
        for folder in folders:
            if trash is not None and folder.exists():
                trash.mkdir(parents=True, exist_ok=True)
                folder.rename(trash / f"{folder.name}-{next(_aside)}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)

    return cleanup


_aside = itertools.count()


def files_check(
    folder: Path, pattern: str, count: int, size: int, what: str
) -> Callable[[], str | None]:
    """A check that `count` files matching `pattern` under `folder` hold `size` bytes each."""

    def check() -> str | None:
        sizes = [p.stat().st_size for p in folder.glob(pattern)]
        if len(sizes) == count and all(s == size for s in sizes):
            return None
        return (
            f"{what}: {len(sizes)} files, {sum(sizes):,} bytes, expected {count} x {size:,} bytes"
        )

    return check
