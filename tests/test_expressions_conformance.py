"""GitHub's own expression test vectors (actions/languageservices, 1,020 cases) run
through `corral.expressions.evaluate`; see tests/data/github-expressions/README.md.

Every case must pass, except those listed in KNOWN_FAILURES with their reason (none
today); the issue's bar is 98 %. `python tests/test_expressions_conformance.py` prints
the pass rate of each file.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.expressions import ExpressionError, evaluate
from corral.expressions.values import kind_of

DATA = Path(__file__).parent / "data" / "github-expressions"
FILES = sorted(DATA.glob("*.json"))
# (file, group, expression) -> why corral answers differently
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}


def _same(got: Any, expected: Any) -> bool:
    """JSON-equal, with numbers as numbers and NaN/Infinity as the files write them."""
    if isinstance(expected, str) and isinstance(got, float) and not math.isfinite(got):
        return expected == ("NaN" if math.isnan(got) else "Infinity" if got > 0 else "-Infinity")
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected
    if isinstance(expected, int | float):
        return isinstance(got, int | float) and float(got) == float(expected)
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_same(a, b) for a, b in zip(got, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            hasattr(got, "keys")
            and list(got.keys()) == list(expected)
            and all(_same(got[k], v) for k, v in expected.items())
        )
    return bool(got == expected)


def run_case(case: dict[str, Any]) -> str | None:
    """None when the case passes, else what went wrong."""
    try:
        got = evaluate(case["expr"], case.get("contexts") or {})
    except ExpressionError as error:
        expected_error = case.get("err")
        if expected_error is None:
            return f"raised {error.kind}: {error}"
        if error.kind != expected_error["kind"]:
            return f"raised {error.kind}, expected {expected_error['kind']}"
        if expected_error["value"] not in error.github_message:
            return f"message {error.github_message!r} lacks {expected_error['value']!r}"
        return None
    if "err" in case:
        return f"returned {got!r}, expected a {case['err']['kind']} error"
    result = case["result"]
    if kind_of(got).label != result["kind"]:
        return f"returned a {kind_of(got).label}, expected a {result['kind']}"
    if not _same(got, result["value"]):
        return f"returned {got!r}, expected {result['value']!r}"
    return None


def cases(path: Path) -> list[tuple[str, dict[str, Any]]]:
    groups = json.loads(path.read_text(encoding="utf-8"))
    return [(group, case) for group, items in groups.items() for case in items]


def results() -> dict[str, tuple[int, list[tuple[str, str, str]]]]:
    """Per file: the number of cases and the failures (group, expression, why)."""
    found = {}
    for path in FILES:
        failures = []
        items = cases(path)
        for group, case in items:
            why = run_case(case)
            if why is not None:
                failures.append((group, case["expr"], why))
        found[path.name] = (len(items), failures)
    return found


def test_every_file_is_copied_with_its_provenance() -> None:
    assert len(FILES) == 28
    assert sum(len(cases(path)) for path in FILES) == 1020
    readme = (DATA / "README.md").read_text()
    assert "4043eda158e16579cc5fb1b0b07a4bce2a76f0b5" in readme
    assert "MIT License" in (DATA / "LICENSE").read_text()


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_vectors_of_one_file(path: Path) -> None:
    unexpected = [
        f"{group}: {case['expr']!r}: {why}"
        for group, case in cases(path)
        if (why := run_case(case)) is not None
        and (path.name, group, case["expr"]) not in KNOWN_FAILURES
    ]
    assert unexpected == []


def test_pass_rate_is_at_least_98_percent() -> None:
    found = results()
    total = sum(count for count, _ in found.values())
    failed = sum(len(failures) for _, failures in found.values())
    assert (total - failed) / total >= 0.98
    listed = {(name, group, expr) for name, (_, fails) in found.items() for group, expr, _ in fails}
    assert listed == set(KNOWN_FAILURES)  # an unexpected pass is news too: update the list


def main() -> None:
    found = results()
    for name, (count, failures) in found.items():
        rate = 100 * (count - len(failures)) / count if count else 100.0
        print(f"{name:36} {count - len(failures):4}/{count:<4} {rate:6.2f} %")
        for group, expr, why in failures:
            print(f"    {group}: {expr!r}: {why}")
    total = sum(count for count, _ in found.values())
    failed = sum(len(failures) for _, failures in found.values())
    print(f"{'all':36} {total - failed:4}/{total:<4} {100 * (total - failed) / total:6.2f} %")


if __name__ == "__main__":
    sys.exit(main())
