"""Fitting what corral prints to the terminal's width, in one place.

Tables: whole columns give way, least important first. The live view and the end-of-run
summary share this rule: the essentials (a job's name, its status, time and cost) are never
cut; the one flexible column (the last output, the note) keeps a minimum and takes what is
left.

Lines of parts (`run … failed in 3.2s · 2.2k in · ~$0.13 · logs: PATH`, the plan's
headline): broken only between two parts, never inside a money figure, a time or a word,
and never leaving a lone separator (`join_to_width`, `Parts`).

No line ends in blanks (`Trimmed`): rich pads a table's cells, which pipes and CI logs keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.render.columns import cell_width

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.text import Text

# rich is imported where a table or a line is drawn with it, not by this module: the
# summary written to a pipe fits its columns and lines here without rich (render.summary)

GAP = 2  # between two columns of a table (rich's padding of 1 on each side)


@dataclass
class Column:
    """One column of a table: its cells and the width they need."""

    name: str
    cells: list[Text] | list[str]
    right: bool
    width: int
    absent: bool = False


def measured(name: str, cells: list[Text], *, right: bool = False) -> Column:
    """A column as wide as its widest cell or its header."""
    return Column(name, cells, right=right, width=max([len(name), *(c.cell_len for c in cells)]))


def width_needed(shown: Mapping[str, Column], flexible: str, min_flexible: int) -> int:
    """The width the `shown` columns need, the flexible one at its minimum."""
    fixed = sum(c.width for n, c in shown.items() if n != flexible)
    room = min_flexible if flexible in shown else 0
    return fixed + GAP * (len(shown) - 1) + room


def fit_columns(
    columns: list[Column],
    width: int,
    *,
    drop: Sequence[tuple[str, ...]],
    flexible: str,
    min_flexible: int,
    stand_ins: Mapping[str, str] | None = None,
) -> list[Column]:
    """The columns that fit `width`, in their order: the groups in `drop` give way first
    to last until the rest fits; a column named in `stand_ins` (`{"tool/model": "tool"}`)
    is replaced by its stand-in when it gives way (a stand-in is never shown otherwise)."""
    stand_ins = stand_ins or {}
    spares = set(stand_ins.values())
    shown = {c.name: c for c in columns if not c.absent and c.name not in spares}
    spare = {c.name: c for c in columns if not c.absent and c.name in spares}
    for group in drop:
        if width_needed(shown, flexible, min_flexible) <= width:
            break
        for name in group:
            if shown.pop(name, None) is not None and stand_ins.get(name) in spare:
                stand_in = stand_ins[name]
                shown[stand_in] = spare[stand_in]
    return [c for c in columns if shown.get(c.name) is c]


SEPARATOR = " · "  # between the parts of a line


def join_to_width(
    parts: Iterable[Text | str],
    width: int,
    separator: str = SEPARATOR,
    *,
    first_separator: str | None = None,
) -> list[Text]:
    """`parts` (empty ones left out) joined by `separator` (by `first_separator` after the
    first part, if given) into lines at most `width` cells wide, broken only between two
    parts: a line never starts or ends with a separator, and a part wider than `width`
    stands alone on its line, whole (a path is not cut: the terminal wraps it and a copy
    of it stays one piece)."""
    from rich.text import Text

    texts = [Text(part) if isinstance(part, str) else part for part in parts]
    lines: list[Text] = []
    for (_, first), *rest in line_breaks(
        [text.plain for text in texts], width, separator, first_separator=first_separator
    ):
        line = texts[first].copy()
        for gap, index in rest:
            line.append(gap)
            line.append_text(texts[index])
        lines.append(line)
    return lines


def line_breaks(
    parts: Sequence[str],
    width: int,
    separator: str = SEPARATOR,
    *,
    first_separator: str | None = None,
) -> list[list[tuple[str, int]]]:
    """How `join_to_width` lays out parts whose text is `parts`: each line as (the
    separator before the part, "" for a line's first, the part's index)."""
    lines: list[list[tuple[str, int]]] = []
    line: list[tuple[str, int]] = []
    text = ""  # the line so far: measured whole, as rich measures a Text
    gap = separator if first_separator is None else first_separator
    for index, part in enumerate(parts):
        if not part:
            continue
        if not line:
            line, text = [("", index)], part
            continue
        if cell_width(text) + cell_width(gap) + cell_width(part) <= width:
            line.append((gap, index))
            text += gap + part
        else:
            lines.append(line)
            line, text = [("", index)], part
        gap = separator
    if line:
        lines.append(line)
    return lines


def joined_lines(parts: Sequence[str], width: int, separator: str = SEPARATOR) -> list[str]:
    """`join_to_width` of plain parts, as plain lines (no rich: render.summary's pipe)."""
    return [
        "".join(gap + parts[index] for gap, index in line)
        for line in line_breaks(parts, width, separator)
    ]


@dataclass(frozen=True)
class Parts:
    """A line of parts, laid out (`join_to_width`) to the width it is rendered at: the
    console's, or what a tree leaves its label."""

    parts: Sequence[Text | str]
    style: str = ""
    first_separator: str | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        lines = join_to_width(self.parts, options.max_width, first_separator=self.first_separator)
        text = Text("\n").join(lines)
        text.style = self.style
        yield text


@dataclass(frozen=True)
class Trimmed:
    """`renderable` with the blanks at the end of each line left out (rich pads every
    cell of a table to its column's width, the last one too)."""

    renderable: RenderableType

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        for line in console.render_lines(self.renderable, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip():
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(), last.style)
            yield from line
            yield Segment.line()
