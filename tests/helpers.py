"""Helpers shared by the tests: write flows, run corral as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll `predicate` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def probe_json(cwd: Path, probe: str, *args: str) -> Any:
    """Run the script `probe` with `args` in a fresh interpreter; the JSON value it printed
    last on stderr (corral's own messages may come before it)."""
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])
