"""Durations: what parse_duration takes, and what it refuses (with the accepted forms)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from corral.durations import parse_duration
from helpers import corral


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5h", 5400.0),
     ("7d", 604800.0), ("250ms", 0.25), (" 2 M ", 120.0), ("1_000", 1000.0), (0, 0.0),
     (1.5, 1.5)],
)  # fmt: skip
def test_a_duration_is_read_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value",
    ["nan", "NaN", "inf", "-inf", "Infinity", "+inf", " inf ", math.nan, math.inf, -math.inf],
)
def test_nan_and_infinity_are_no_duration(value: object) -> None:
    # a timeout of nan compares false with everything: it would never fire
    with pytest.raises(ValueError, match=r"invalid duration .*: use 90, 90s, 5m, 1h30m"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "negative"), ("-5", "negative"), (True, "boolean"), ("soon", "invalid")],
)
def test_other_bad_durations_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_a_flow_with_a_nan_timeout_is_refused_at_its_place(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text('jobs:\n  a:\n    run: ["true"]\n    timeout: .nan\n')
    result = corral("validate", "flow.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "flow.yaml:4:14: jobs.a.timeout: invalid duration nan: use 90, 90s, 5m, 1h30m, 1.5h or 7d",
    ]


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_exec_refuses_a_nan_or_infinite_timeout(tmp_path: Path, value: str) -> None:
    result = corral("exec", "-q", "--timeout", value, "--", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"corral: error: <exec>: jobs.true.timeout: invalid duration '{value}': "
        "use 90, 90s, 5m, 1h30m, 1.5h or 7d"
    )
