"""What every row shares: sizes, folders, the corral command, the peers, and its figures."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import profile
from harness.measure import Command, Sample, measure
from harness.peers import Peer
from harness.report import Contender, RowResult, Stat, Verdict, good, per_round, stat
from harness.rounds import Entry, emptied, files_check, run_rounds


@dataclass
class Context:
    """Sizes (full or quick), folders, the corral command line and the peers found."""

    quick: bool
    rounds: int | None  # overrides each row's own number of rounds
    work: Path  # scratch folder of this benchmark run
    project: Path  # corral's project folder: flows and `.corral/` (history, logs)
    corral: list[str]
    peers: dict[str, Peer]
    profiler: str | None = None  # py-spy or cprofile: profile each corral command once more
    profiles: Path | None = None  # where the raw profiles go
    # delete each run's logs right after it, as before w9flat (to compare figures): the
    # next round then pays for ext4's search past the recently deleted inodes
    eager_cleanup: bool = False

    def n_rounds(self, full: int) -> int:
        return self.rounds or (1 if self.quick else full)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def folder(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cmd(
        self, argv: list[str], *, env: dict[str, str] | None = None, pty: bool = False
    ) -> Command:
        return Command(argv, self.project, {**os.environ, **env} if env else None, pty)

    def corral_cmd(
        self, *args: str, env: dict[str, str] | None = None, pty: bool = False
    ) -> Command:
        return self.cmd([*self.corral, *args], env=env, pty=pty)

    def cmd_entry(self, key: str, label: str, argv: list[str], **kw: Any) -> Entry:
        return Entry(key, label, self.cmd(argv), **kw)

    def corral_run(self, key: str, label: str, *args: str, **kw: Any) -> Entry:
        """A corral command that leaves a run's logs behind (deleted after each measurement)."""
        env, pty = kw.pop("env", None), kw.pop("pty", False)
        return Entry(
            key, label, self.corral_cmd(*args, env=env, pty=pty), cleanup=self.clean_logs(), **kw
        )

    def peer(
        self, name: str, key: str, label: str, argv: Callable[[str], list[str]], **kw: Any
    ) -> Entry:
        """An entry for a peer tool, or one that is not run and says why the peer is missing."""
        peer = self.peers[name]
        if peer.path is None:
            return Entry(key, label, None, missing=peer.note)
        env = kw.pop("env", None)
        return Entry(key, label, self.cmd(argv(peer.path), env=env), **kw)

    def logs_check(self, count: int, size: int) -> Callable[[], str | None]:
        """corral's logs hold every byte: `count` jobs' stdout.log of `size` bytes each."""
        runs = self.project / ".corral" / "runs"
        return files_check(runs, "*/*/stdout.log", count, size, "corral's logs")

    @property
    def trash(self) -> Path | None:
        """Where clean-ups move what runs left: deleted with the work folder once every row
        is measured (ext4 remembers a deletion for 60 s or more: a row deleting the last
        row's folders would pay for it)."""
        return None if self.eager_cleanup else self.work / "trash"

    def clean_logs(self) -> Callable[[], None]:
        return emptied(self.project / ".corral" / "runs", trash=self.trash)

    def measure(self, name: str, entries: list[Entry], rounds: int, warmup: bool = False) -> Got:
        got = Got(run_rounds(name, entries, rounds, self.folder("out"), warmup and not self.quick))
        if self.profiler:
            for entry in entries:
                if entry.command and entry.command.argv[: len(self.corral)] == self.corral:
                    got.profiles[entry.label] = self._profile(f"{name}-{entry.key}", entry)
        return got

    def _profile(self, name: str, entry: Entry) -> list[str]:
        """One more run of a corral command, under the profiler: its top costs."""
        assert self.profiler and self.profiles and entry.command
        raw = self.profiles / f"{name}.{'pyspy.txt' if self.profiler == 'py-spy' else 'cprof'}"
        print(f"  [{name}] profiling with {self.profiler}...", file=sys.stderr, flush=True)
        try:
            sample = measure(
                profile.wrap(entry.command, self.profiler, raw), self.work / "profile.out"
            )
        finally:
            if entry.cleanup:
                entry.cleanup()
        if sample.error:
            return [f"(the profiled run failed: {sample.error[:300]})"]
        return profile.summarise(raw, self.profiler)

    def verdict(self, passed: bool | None, text: str) -> Verdict:
        if self.quick:
            return Verdict(None, "quick run: sizes too small to judge")
        return Verdict(passed, text)


class Got:
    """A row's samples, by contender key, and the statistics drawn from them."""

    def __init__(self, contenders: dict[str, Contender]) -> None:
        self.contenders = contenders
        self.profiles: dict[str, list[str]] = {}

    def __getitem__(self, key: str) -> Contender:
        return self.contenders[key]

    def ran(self, key: str) -> bool:
        return bool(good(self.contenders[key].rounds))

    def each(self, fn: Callable[[Sample], float], *keys: str) -> dict[str, Stat | None]:
        """Median and range of fn(sample) over each contender's good rounds."""
        return {
            k: stat([fn(s) for s in good(self.contenders[k].rounds)])
            for k in keys or self.contenders
        }

    def vs(self, fn: Callable[[Sample, Sample], float], key: str, base: str) -> Stat | None:
        """Median and range of fn(key's sample, base's sample), taken round by round."""
        rounds = {k: c.rounds for k, c in self.contenders.items()}
        return stat(per_round(rounds, fn, key, base))

    def row(self, key: str, title: str, rounds: int, keys: list[str] | None = None) -> RowResult:
        chosen = [self.contenders[k] for k in keys] if keys else list(self.contenders.values())
        row = RowResult(key, title, rounds, chosen, [], {}, Verdict(None, ""))
        row.profiles = {c.label: self.profiles[c.label] for c in chosen if c.label in self.profiles}
        return row


def at_most(value: Stat | None, limit: float) -> bool | None:
    """Whether a median meets an upper bound (None when nothing was measured)."""
    return None if value is None else value.median <= limit


def every(*checks: bool | None) -> bool | None:
    return None if any(c is None for c in checks) else all(checks)


def ratio(field: str) -> Callable[[Sample, Sample], float]:
    return lambda a, b: getattr(a, field) / max(getattr(b, field), 1e-9)


def excess(field: str, per: float = 1.0) -> Callable[[Sample, Sample], float]:
    """(a - b) / per: seconds above the baseline, or (per = jobs / 1000) ms per job."""
    return lambda a, b: (getattr(a, field) - getattr(b, field)) / per
