"""Shared fixtures. Every test must leave no child process behind: this file checks it.

The test process makes itself a child subreaper, so grandchildren whose parent died are
re-parented to it and stay visible to the check instead of escaping to init.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
FAKES = Path(__file__).parent / "fakes"
PR_SET_CHILD_SUBREAPER = 36
# the agent CLIs scripts/install-clis.sh installs, each proven by the realcli tests
REAL_CLIS = ("claude", "codex", "gemini", "qwen", "opencode", "copilot")


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_become_subreaper()


def _private_caches() -> None:
    """corral's caches (compiled classes, entry points, prices, CLI versions) and a
    `corral login` token go to folders of this test session's, removed at its end: a
    test run writes nothing into the user's ~/.cache or ~/.config. Set before any test
    imports corral, and inherited by every process a test starts. The npm CLIs' install
    cache (`CORRAL_CLI_CACHE`, not under XDG_CACHE_HOME) stays shared on purpose."""
    root = tempfile.mkdtemp(prefix="corral-tests-")
    os.environ["XDG_CACHE_HOME"] = os.path.join(root, "cache")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(root, "config")
    atexit.register(shutil.rmtree, root, ignore_errors=True)


_private_caches()


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return []


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fail a test that leaves a child or grandchild running (and kill it)."""
    before = {p.pid for p in _descendants()}
    yield
    deadline = time.monotonic() + 2.0
    leftover: list[psutil.Process] = []
    while time.monotonic() < deadline:
        leftover = []
        for proc in _descendants():
            if proc.pid in before:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(proc.pid, os.WNOHANG)
                    continue
            except (psutil.Error, ChildProcessError):
                continue
            leftover.append(proc)
        if not leftover:
            return
        time.sleep(0.05)
    described = []
    for proc in leftover:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except psutil.Error:
            pass
    pytest.fail("processes outlived the test: " + "; ".join(described))


@pytest.fixture(scope="session")
def cli_bin() -> Path:
    """The folder with the real agent CLIs (REAL_CLIS): CORRAL_CLI_BIN_DIR, the install
    cache, or a fresh `scripts/install-clis.sh` (skips only without npm)."""
    given = os.environ.get("CORRAL_CLI_BIN_DIR")
    if given:
        return Path(given)
    cache = Path(os.environ.get("CORRAL_CLI_CACHE", Path.home() / ".cache" / "corral" / "clis"))
    cached = cache / "node_modules" / ".bin"
    if all(os.access(cached / tool, os.X_OK) for tool in REAL_CLIS):
        return cached
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed and CORRAL_CLI_BIN_DIR is not set")
    done = subprocess.run(
        [str(ROOT / "scripts" / "install-clis.sh")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"install-clis.sh failed:\n{done.stderr[-3000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def fakes_dir() -> Path:
    return FAKES
