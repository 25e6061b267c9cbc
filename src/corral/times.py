"""How corral writes a time, one convention everywhere (docs/running.md, "Formats").

- In every document for programs (`--json`, exports, CSV, the server's API): ISO 8601
  in UTC with `Z`, to the microsecond (`2026-12-03T14:43:29.123456Z`).
- For people (tables, `show`, `gc`): the same UTC time to the second
  (`2026-12-03 14:43:29Z`), so a time read on screen and one read from JSON agree.
- A duration (`duration_s`) is in seconds to the millisecond (`1.788`) in every document.
- A run id starts with its start time in UTC (`20261203-144329-...`), the same instant
  as its `started_at`.

The history stores POSIX seconds; these turn them into text at the edge.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

# the text of each whole second `iso_time` met lately: a 50,000-job `show --json` writes
# 100,000 times, most within a few seconds of each other
_SECONDS: dict[int, str] = {}
_SECONDS_KEPT = 4096
_YEAR_10000 = 253402300800.0  # datetime's limit


def iso_time(ts: float | None) -> str | None:
    """`2026-12-03T14:43:29.123456Z`; None stays None."""
    if ts is None:
        return None
    if type(ts) is float and 0.0 <= ts < _YEAR_10000:
        # datetime.fromtimestamp's own rounding, done here: the microseconds rounded half
        # to even (as round() does), a carry into the next second
        fraction, whole = math.modf(ts)
        micro = round(fraction * 1e6)
        if micro >= 1_000_000:
            micro -= 1_000_000
            whole += 1.0
        second = int(whole)
        text = _SECONDS.get(second)
        if text is None:
            if len(_SECONDS) >= _SECONDS_KEPT:
                _SECONDS.clear()
            text = _SECONDS[second] = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        return f"{text}.{micro:06d}Z"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def seconds(duration: float | None) -> float | None:
    """A duration in every document for programs: seconds to the millisecond (`1.788`),
    the same in `run --json`, `runs`/`show --json`, exports and CSV; None stays None."""
    return None if duration is None else round(duration, 3)


def display_time(ts: float | None) -> str:
    """`2026-12-03 14:43:29Z` (UTC, to the second); `-` when unknown."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def id_stamp(ts: float) -> str:
    """`20261203-144329`: the UTC start time a run id begins with."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d-%H%M%S")


def with_iso_times(value: Any) -> Any:
    """`value` with every `*_at` number (POSIX seconds) and `ts` as ISO 8601 UTC text."""
    if isinstance(value, dict):
        return {
            k: iso_time(v)
            if (k.endswith("_at") or k == "ts") and isinstance(v, int | float)
            and not isinstance(v, bool)
            else with_iso_times(v)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [with_iso_times(v) for v in value]
    return value
