"""The tools corral is compared with, found or installed by the benchmark itself.

- xargs (GNU findutils): the floor for running commands;
- GNU parallel, from Debian (`apt-get install parallel`) when it is missing and we are
  root; moreutils ships a different `parallel`, which is refused;
- zen (PyPI `netra-zen`), in its own venv under the benchmark cache, pinned to the
  version the performance review measured.

A peer that cannot be found or installed is reported with the reason; the rows that
need it still run without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ZEN_VERSION = os.environ.get("CORRAL_BENCH_ZEN_VERSION", "1.4.2")


@dataclass(frozen=True)
class Peer:
    """A baseline tool: its executable (None when unavailable) and why not, or its version."""

    name: str
    path: str | None
    note: str  # the version when present, else why it is missing

    @property
    def ok(self) -> bool:
        return self.path is not None


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"({error})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"(exit {done.returncode})"


def xargs() -> Peer:
    path = shutil.which("xargs")
    if path is None:
        return Peer("xargs", None, "not found on PATH")
    return Peer("xargs", path, _first_line([path, "--version"]))


def gnu_parallel(install: bool) -> Peer:
    path = shutil.which("parallel")
    if path is None and install:
        reason = _apt_install("parallel")
        if reason:
            return Peer("GNU parallel", None, reason)
        path = shutil.which("parallel")
    if path is None:
        how = "" if install else " (--no-install)"
        return Peer("GNU parallel", None, f"not installed{how}: apt-get install parallel")
    version = _first_line([path, "--version"])
    if "GNU parallel" not in version:
        return Peer("GNU parallel", None, f"{path} is not GNU parallel ({version})")
    return Peer("GNU parallel", path, version)


def _apt_install(package: str) -> str:
    """Install a Debian package; '' on success, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "not installed: no apt-get on this machine"
    if os.geteuid() != 0:
        return f"not installed: installing needs root (apt-get install {package})"
    print(f"  installing {package} from Debian (apt-get)...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", package]):
        done = subprocess.run(
            ["apt-get", *step], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            return f"not installed: apt-get {step[0]} failed: {done.stderr.strip()[-200:]}"
    return ""


def zen(cache: Path, install: bool) -> Peer:
    """zen in `cache`/venvs/zen-VERSION, created with this Python's `venv` and pip."""
    venv = cache / "venvs" / f"zen-{ZEN_VERSION}"
    exe = venv / "bin" / "zen"
    if not exe.exists():
        if not install:
            return Peer("zen", None, f"not installed (--no-install): netra-zen=={ZEN_VERSION}")
        print(
            f"  installing netra-zen=={ZEN_VERSION} into {venv} (pip)...",
            file=sys.stderr,
            flush=True,
        )
        shutil.rmtree(venv, ignore_errors=True)
        pip = _quiet([sys.executable, "-m", "venv", str(venv)])
        if pip.returncode == 0:
            pip = _quiet([str(venv / "bin" / "pip"), "install", "-q", f"netra-zen=={ZEN_VERSION}"])
        if pip.returncode != 0 or not exe.exists():
            shutil.rmtree(venv, ignore_errors=True)
            tail = (pip.stderr or pip.stdout).strip().splitlines()[-1:] or ["?"]
            return Peer("zen", None, f"not installed: pip install netra-zen failed: {tail[0]}")
    # zen reports its own version as "unknown": ask pip
    return Peer("zen", str(exe), f"netra-zen {_pip_version(venv) or '(version unknown)'}")


def _quiet(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _pip_version(venv: Path) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "show", "netra-zen"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return ""


ZEN_ENV = {"ZEN_TELEMETRY_DISABLED": "1"}  # no network here: do not try to send telemetry
