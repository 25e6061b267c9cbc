"""Figures from interleaved samples: medians with ranges, per-round ratios, tables.

A row's contenders run once per round; a ratio is taken within each round (against the
baseline measured in that same round) and only then summarised, so a slow moment of a
shared machine weighs on both sides of the ratio rather than on one.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.measure import Sample

MB = 1_000_000  # "MB" of output processed is 10^6 bytes; RSS is in MiB


@dataclass(frozen=True)
class Stat:
    """The median of some per-round values and their range."""

    median: float
    low: float
    high: float
    n: int

    def show(self, digits: int = 2, unit: str = "") -> str:
        fmt = f"{{:.{digits}f}}"
        mid = fmt.format(self.median) + unit
        if self.n < 2:
            return mid
        return f"{mid} ({fmt.format(self.low)}–{fmt.format(self.high)})"


def stat(values: Sequence[float]) -> Stat | None:
    if not values:
        return None
    return Stat(statistics.median(values), min(values), max(values), len(values))


def show(value: Stat | None, digits: int = 2, unit: str = "") -> str:
    return "–" if value is None else value.show(digits, unit)


Rounds = list[Sample | None]  # one entry per round; None when the contender failed


def good(rounds: Rounds) -> list[Sample]:
    return [s for s in rounds if s is not None and s.error is None]


def per_round(rounds: dict[str, Rounds], fn: Callable[..., float], *keys: str) -> list[float]:
    """fn(sample_of_key1, sample_of_key2, ...) for every round where all of them succeeded."""
    out = []
    for samples in zip(*(rounds.get(k, []) for k in keys), strict=False):
        if all(s is not None and s.error is None for s in samples):
            out.append(fn(*samples))
    return out


@dataclass
class Verdict:
    """A row's check against its target: passed, missed, or not decidable (and why)."""

    passed: bool | None
    text: str

    def show(self) -> str:
        if self.passed is None:
            return f"n/a ({self.text})" if self.text else "n/a"
        return ("pass" if self.passed else "MISS") + (f": {self.text}" if self.text else "")


@dataclass
class Contender:
    """One tool in a row, as measured: its label, command line and samples per round."""

    key: str
    label: str
    command: str
    rounds: Rounds = field(default_factory=list)
    missing: str = ""  # why it was not measured (a peer that could not be installed)
    metrics: dict[str, Callable[[Sample], float]] = field(default_factory=dict)


@dataclass
class RowResult:
    """Everything a row measured and concluded."""

    key: str
    title: str
    rounds: int
    contenders: list[Contender]
    derived: list[tuple[str, str]]  # (what, figure) lines under the table
    cells: dict[str, str]  # history, nostore, peers, target: the summary table's columns
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, list[str]] = field(default_factory=dict)  # label: top costs

    def loads(self) -> Stat | None:
        return stat([s.load for c in self.contenders for s in good(c.rounds)])


def contender_table(row: RowResult) -> list[str]:
    """Markdown table of every contender: wall, tree and own CPU, peak RSS, extras."""
    extra = sorted({name for c in row.contenders for name in c.metrics})
    head = ["tool", "wall s", "tree CPU s", "own CPU s", "peak RSS MiB", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in row.contenders:
        samples = good(c.rounds)
        if not samples:
            why = c.missing or _first_error(c.rounds) or "no sample"
            lines.append(f"| {c.label} | {why} |" + " |" * (len(head) - 2))
            continue
        cells = [
            c.label,
            show(stat([s.wall for s in samples]), 3),
            show(stat([s.tree_cpu for s in samples])),
            show(stat([s.own_cpu for s in samples])),
            show(stat([s.peak_rss / 2**20 for s in samples]), 0),
        ]
        for name in extra:
            fn = c.metrics.get(name)
            cells.append(show(stat([fn(s) for s in samples])) if fn else "")
        failed = len(c.rounds) - len(samples)
        if failed:
            cells[0] += f" ({failed} failed: {_first_error(c.rounds)})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _first_error(rounds: Rounds) -> str:
    for s in rounds:
        if s is not None and s.error:
            return s.error.replace("\n", " ")[:300]
    return ""


def row_markdown(row: RowResult) -> list[str]:
    loads = row.loads()
    load = f"; 1-min load {show(loads, 1)}" if loads else ""
    out = [f"#### {row.title} ({row.rounds} interleaved rounds{load})", ""]
    out += contender_table(row)
    out.append("")
    for what, figure in row.derived:
        out.append(f"- {what}: {figure}")
    out.append(f"- target: {row.cells.get('target', '')} → **{row.verdict.show()}**")
    out += [f"- {note}" for note in row.notes]
    out += ["", "Commands:", ""]
    out += [f"- {c.label}: `{c.command}`" for c in row.contenders]
    out.append("")
    for label, lines in row.profiles.items():
        out += [f"Profile of {label}:", "", "```", *lines, "```", ""]
    return out


SUMMARY_HEAD = ["workload", "corral (history)", "corral --no-store", "peers", "target", "verdict"]


def summary_markdown(rows: list[RowResult]) -> list[str]:
    lines = ["| " + " | ".join(SUMMARY_HEAD) + " |", "|" + "---|" * len(SUMMARY_HEAD)]
    for row in rows:
        cells = [
            row.title,
            row.cells.get("history", "–"),
            row.cells.get("nostore", "–"),
            row.cells.get("peers", "–"),
            row.cells.get("target", "–"),
            row.verdict.show(),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
