"""The house rules hold: ruff (lint and format) and mypy --strict are clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the ruff of the environment running the tests (the dev extra installs it)
RUFF = (
    str(Path(sys.executable).parent / "ruff")
    if (Path(sys.executable).parent / "ruff").exists()
    else (shutil.which("ruff") or "ruff")
)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_ruff_lint_and_format() -> None:
    paths = ("src", "tests", "benchmarks", "release", "hatch_build.py")
    lint = _run(RUFF, "check", *paths)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(RUFF, "format", "--check", *paths)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
