"""A JSON line too long to hold, made small while it is read: structure kept, strings cut.

An agent CLI can print one JSON line of hundreds of megabytes (a tool result holding a
whole file). What corral needs from it (the event's type, ids, the model, the token
counts) is small; the bulk is string values. `Shrinker` takes the line's bytes as they
arrive and keeps everything outside strings, the first `STRING_KEEP` bytes of each
string while the line's string budget (`TOTAL_KEEP`) lasts, and `SMALL_KEEP` bytes of
each string after that; a cut string ends with `…`. The result is still JSON with the same
keys, so the parser reads the counts it would have read from the whole line. Its cost is
about the size of what it keeps, whatever the size of the line.
"""

from __future__ import annotations

import re

STRING_KEEP = 64 * 1024
SMALL_KEEP = 1024
TOTAL_KEEP = 16 * 1024 * 1024
_CUT = "…".encode()
_QUOTE_OR_ESCAPE = re.compile(rb'["\\]')
_BACKSLASH = 0x5C


def _backslashes_before(data: bytes, low: int, high: int) -> int:
    """How many backslashes end data[low:high]."""
    at = high
    while at > low and data[at - 1] == _BACKSLASH:
        at -= 1
    return high - at


class Shrinker:
    """Feed the bytes of one line (`feed`), then take the small line (`result`)."""

    def __init__(self) -> None:
        self._out: list[bytes] = []
        self._in_string = False
        self._kept = 0  # bytes kept of the current string
        self._skipping = False  # the current string was cut: looking for its end
        self._odd_backslashes = False  # (skipping) the last chunk ended inside an escape
        self._budget = TOTAL_KEEP
        self.cut = False

    def feed(self, data: bytes) -> None:
        at = 0
        while at < len(data):
            if not self._in_string:
                quote = data.find(b'"', at)
                end = len(data) if quote < 0 else quote + 1
                self._out.append(data[at:end])
                self._in_string = quote >= 0
                self._kept = 0
                at = end
            elif self._skipping:
                at = self._skip(data, at)
            else:
                at = self._keep(data, at)

    def result(self) -> bytes:
        return b"".join(self._out)

    def _room(self) -> int:
        limit = STRING_KEEP if self._budget > 0 else SMALL_KEEP
        return max(limit - self._kept, 0)

    def _keep(self, data: bytes, at: int) -> int:
        """Copy the string's bytes while there is room; returns where to go on."""
        found = _QUOTE_OR_ESCAPE.search(data, at)
        stop = len(data) if found is None else found.start()
        room = self._room()
        if stop - at > room:  # no room for all of it: cut here, then look for the end
            self._copy(data[at : at + room])
            return self._start_skipping(at + room)
        self._copy(data[at:stop])
        if found is None:
            return stop
        if data[stop] == ord('"'):
            self._out.append(b'"')
            self._in_string = False
            return stop + 1
        # an escape: \uXXXX or \X, kept whole or not at all
        size = 6 if data[stop + 1 : stop + 2] == b"u" else 2
        if stop + size > len(data) or size > self._room():
            return self._start_skipping(stop)
        self._copy(data[stop : stop + size])
        return stop + size

    def _copy(self, piece: bytes) -> None:
        if piece:
            self._out.append(piece)
            self._kept += len(piece)
            self._budget -= len(piece)

    def _start_skipping(self, at: int) -> int:
        self._skipping = True
        self._odd_backslashes = False
        self.cut = True
        return at

    def _skip(self, data: bytes, at: int) -> int:
        """Pass over the rest of a cut string: up to its closing (unescaped) quote."""
        start = at
        while True:
            quote = data.find(b'"', at)
            end = len(data) if quote < 0 else quote
            run = _backslashes_before(data, at, end)
            if run == end - at and at == start:
                run += self._odd_backslashes  # the escape began in the previous chunk
            if quote < 0:
                self._odd_backslashes = bool(run % 2)
                return len(data)
            if run % 2 == 0:  # the string's end
                self._out.append(_CUT + b'"')
                self._in_string = self._skipping = False
                return quote + 1
            at = quote + 1
