"""Durations (`90`, `90s`, `5m`, `1h30m`, `1.5h`) and start times (`2am`, `14:30`)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.IGNORECASE)


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as `90`, `90s`, `5m`, `1h30m` or `1.5h`.

    Raises ValueError with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, 90s, 5m or 1h30m, got a boolean")
    if isinstance(value, int | float):
        return _seconds(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 90, 90s, 5m or 1h30m, got {value!r}")
    text = value.strip().lower().replace(" ", "").replace("_", "")
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _seconds(seconds, value)
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: use 90, 90s, 5m, 1h30m, 1.5h or 7d")
    return total


def _seconds(seconds: float, value: object) -> float:
    # float() reads "nan", "inf" and "infinity" too (and YAML's .nan/.inf): a timeout of
    # nan compares false with everything and would never fire, so neither is a duration
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: use 90, 90s, 5m, 1h30m, 1.5h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human duration: `0.4s`, `12s`, `3m05s`, `1h02m`."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def parse_start_at(value: str, now: datetime) -> datetime:
    """When to start, from a delay (`30m`, `1.5h`) or a clock time (`2am`, `14:30`).

    A clock time already past today means tomorrow.
    """
    text = value.strip().lower()
    clock = _CLOCK.match(text)
    if clock and (clock.group(2) is not None or clock.group(3) is not None):
        hour = int(clock.group(1))
        minute = int(clock.group(2) or 0)
        meridiem = clock.group(3)
        if meridiem:
            if not 1 <= hour <= 12:
                raise ValueError(f"invalid time {value!r}: hours run 1-12 with am/pm")
            hour = hour % 12 + (12 if meridiem == "pm" else 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"invalid time {value!r}: use 14:30, 2am or 2:15pm")
        target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= now:
            target += timedelta(days=1)
        return target
    try:
        return now + timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ValueError(
            f"invalid start time {value!r}: use a delay (30m, 1.5h) or a clock time (2am, 14:30)"
        ) from None
