"""Fitting a table to the terminal's width: whole columns give way, least important first.

The live view and the end-of-run summary share this rule: the essentials (a job's name,
its status, time and cost) are never cut; the one flexible column (the last output, the
note) keeps a minimum and takes what is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text

GAP = 2  # between two columns of a table (rich's padding of 1 on each side)


@dataclass
class Column:
    """One column of a table: its cells and the width they need."""

    name: str
    cells: list[Text]
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
