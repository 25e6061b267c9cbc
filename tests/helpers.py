"""Helpers shared by the tests: write flows, run corral as a real process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

FAKES = Path(__file__).parent / "fakes"
FAKE_CLI = f"{sys.executable} {FAKES / 'fake_cli.py'}"


def write_flow(folder: Path, body: str, name: str = "flow.yaml") -> Path:
    path = folder / name
    # the word FAKE (alone) stands for the fake CLI; FAKE_AGENT_... names stay as they are
    path.write_text(re.sub(r"\bFAKE\b", lambda _: FAKE_CLI, textwrap.dedent(body)))
    return path


def corral(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def problems_of(text: str, name: str = "flow.yaml") -> list[str]:
    """What `corral validate` prints for a flow with this text (one line a problem, then
    the count), or [] when the flow is valid; in process, with real file positions."""
    from corral.config.loader import load_text
    from corral.errors import FlowError
    from corral.plan import build_plan

    try:
        loaded = load_text(text, Path(name), name)
        build_plan(loaded.spec, source=name, locate=loaded.locate)
    except FlowError as error:
        return error.lines()
    return []
