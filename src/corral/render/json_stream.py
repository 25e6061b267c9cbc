"""A JSON document written in pieces: the same bytes as `orjson.dumps(document,
OPT_INDENT_2)`, with one top-level list (a 50,000-job run's jobs) serialised a batch at
a time, so its items never all exist at once (`corral show --json`).

It relies on orjson's indented layout: a value is laid out the same wherever it is,
indented by two spaces a level, and a line break in the output is always layout (one in
a string is written as an escape), so a line `  "KEY": []` is the top-level key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import orjson

BATCH = 500  # items serialised at once


def indented_json(document: dict[str, Any], key: str, items: Iterable[Any]) -> Iterator[bytes]:
    """`orjson.dumps({**document, key: list(items)}, option=OPT_INDENT_2)` in pieces,
    with `key` where `document` has it (it must be a top-level key of `document`, whose
    value is replaced) or else last; ends with a line break."""
    name = orjson.dumps(key)
    mark = b"\n  " + name + b": []"
    head = orjson.dumps({**document, key: []}, option=orjson.OPT_INDENT_2)
    at = head.index(mark) + len(mark) - 1  # at the list's `]`
    # a batch as the value of a top-level key is indented as in the document: its items
    # are what lies between `{\n  "KEY": [\n` and `\n  ]\n}`
    start, end = len(b"{\n  " + name + b": [\n"), -len(b"\n  ]\n}")
    found = iter(items)
    first = True
    while batch := list(islice(found, BATCH)):
        text = orjson.dumps({key: batch}, option=orjson.OPT_INDENT_2)
        yield (head[:at] + b"\n" if first else b",\n") + text[start:end]
        first = False
    yield (head if first else b"\n  " + head[at:]) + b"\n"


def write_json(
    write: Callable[[bytes], object], document: dict[str, Any], key: str, items: Iterable[Any]
) -> None:
    """Write `indented_json(document, key, items)` piece by piece."""
    for piece in indented_json(document, key, items):
        write(piece)
