"""A plain fixed-width table for long listings (`corral show` of a big run).

rich's `Table` measures and renders every cell through its layout engine: about 0.65 ms
a row, 33 s for a 50,000-job run. This writes the same layout (a space at each edge, two
between columns, the header in bold on a terminal) from one pass over the widths, so a
row costs a few microseconds. Cells are text, never markup (a job's error that says
`[x]` shows `[x]`); a line break in a cell is a space and any other control character
is shown as an escape (corral.render.safe), so one row stays one line and drives nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING

from corral.render.safe import visible_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# written to the console in pieces of this many lines
_CHUNK = 2000
# the characters rich measures as one cell each without its tables (the first ranges of
# rich.cells): text of these alone is measured here without importing rich
_NARROW = frozenset(map(chr, [*range(0x20, 0x7F), *range(0xA0, 0xAD), *range(0xAE, 0x300)]))


def cell_width(text: str) -> int:
    """The cells `text` takes on a terminal, as rich measures it (`rich.cells.cell_len`)."""
    if _NARROW.issuperset(text):
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _clean(cell: str) -> str:
    # a job's error is untrusted text: one line, every control character as an escape
    return visible_line(cell.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))


def _column(cells: Sequence[str], header: str, right: bool) -> list[str]:
    """One column's cells (header first), cleaned and padded to one width."""
    joined = "".join(cells)
    if not (joined.isascii() and joined.isprintable()):
        cells = [_clean(cell) for cell in cells]
    cells = [header, *cells]
    if "".join(cells).isascii():
        width = max(map(len, cells))
        return [c.rjust(width) for c in cells] if right else [c.ljust(width) for c in cells]
    width = max(map(cell_width, cells))  # wide characters: rich's measure, as its table's
    pads = [" " * (width - cell_width(c)) for c in cells]
    return [p + c if right else c + p for c, p in zip(cells, pads, strict=True)]


def lines(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: frozenset[int] = frozenset(),
    edge: str = " ",
) -> Iterator[str]:
    """The header line, then one line per row; columns in `right` are right-aligned;
    `edge` starts each line (rich's `pad_edge`: "" for a table without it)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in headers]
    padded = [
        _column(col, h, i in right) for i, (h, col) in enumerate(zip(headers, columns, strict=True))
    ]
    for parts in zip(*padded, strict=True):
        # no blanks at a line's end (the last column's padding): pipes and logs keep them
        yield (edge + "  ".join(parts)).rstrip()


def print_columns(
    out: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: frozenset[int] = frozenset(),
) -> None:
    """Print the table: the header through rich (bold on a terminal), the rows as text."""
    found = lines(headers, rows, right)
    out.print(next(found), style="bold", markup=False, emoji=False, highlight=False, soft_wrap=True)
    _write(out.file, found)


def write_columns(
    stream: IO[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: frozenset[int] = frozenset(),
) -> None:
    """`print_columns` to a stream rich would write plain text to (`plain_stream`): the
    same lines, without importing rich."""
    _write(stream, lines(headers, rows, right))


def plain_stream(stream: IO[str]) -> bool:
    """Whether rich's console would treat `stream` as no terminal, so that it prints
    text without any escape (rich's rule: TTY_COMPATIBLE=1/0 says so, else a non-empty
    FORCE_COLOR makes a terminal, else the stream's isatty)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "0"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force == ""
    try:
        return not stream.isatty()
    except ValueError:  # closed
        return True


def _write(stream: IO[str], found: Iterator[str]) -> None:
    chunk: list[str] = []
    for line in found:
        chunk.append(line)
        if len(chunk) >= _CHUNK:
            stream.write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        stream.write("\n".join(chunk) + "\n")
    stream.flush()


def print_table(out: Console, table: Table) -> None:
    """A borderless rich `Table` of plain strings, printed as `print_columns` prints (the
    same layout, without rich's per-cell cost); any other table is printed by rich."""
    columns = table.columns
    cells = [list(column.cells) for column in columns]
    headers = [column.header for column in columns]
    plain = all(isinstance(cell, str) for column in cells for cell in column)
    if table.box is not None or not plain or not all(isinstance(h, str) for h in headers):
        from corral.render.fit import Trimmed

        out.print(Trimmed(table))  # no blanks at a line's end, as `lines` writes them
        return
    right = frozenset(i for i, column in enumerate(columns) if column.justify == "right")
    rows = list(zip(*cells, strict=True)) if cells else []
    print_columns(out, [str(h) for h in headers], rows, right)
