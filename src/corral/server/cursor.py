"""Where a live client is in the event log, and how it says so when it reconnects.

For one run the cursor is the run's stored event seq (an int). For all runs it is an
opaque string: base64url of `{"w": T, "r": {run: seq}}`: the client has every event of
each run in `r` up to its seq, and the runs that started at or after `w` (POSIX seconds)
that are not in `r` it has not seen at all (they replay from their first event).
Runs that started before `w` and are not in `r` were finished when the client came.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

import orjson


class BadCursor(ValueError):
    """An `after` / Last-Event-ID this server did not hand out."""


@dataclass
class Cursor:
    """A client's position: the last seq it has of each run, and its watermark."""

    since: float
    seqs: dict[str, int] = field(default_factory=dict)

    def encode(self) -> str:
        data = orjson.dumps({"w": self.since, "r": self.seqs})
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
            since = float(data["w"])
            seqs = {str(k): int(v) for k, v in dict(data["r"]).items()}
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise BadCursor(f"not a cursor this server handed out: {text[:40]!r}") from None
        if any(v < 0 for v in seqs.values()):
            raise BadCursor("a cursor's seqs are never negative")
        return cls(since, seqs)


def run_seq(text: str) -> int:
    """A one-run cursor: a non-negative int."""
    try:
        value = int(text)
    except ValueError:
        raise BadCursor(
            f"after must be an event seq (an integer >= 0), not {text[:40]!r}"
        ) from None
    if value < 0:
        raise BadCursor(f"after must be >= 0, not {value}")
    return value
