"""What a new user does first, word for word: a fresh clone, the README's install-and-run
command in a fresh virtual environment, then `corral runs` from the same folder shows
that run (issue 13, "keep it fixed"). Every flow the docs show is checked in
test_docs_flows.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def readme_command() -> str:
    """The README's one command that installs corral and runs the main flow."""
    readme = (ROOT / "README.md").read_text()
    after = readme.split("Install and run a flow", 1)[1]
    found = re.search(r"```sh\n(.+?)\n```", after, re.DOTALL)
    assert found, "the README shows no install-and-run command"
    return found.group(1).strip()


def fresh_clone(target: Path) -> Path:
    """The files a clone has (tracked ones, as in this working tree), nothing built."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.timeout(600)
def test_readme_install_and_run_then_runs_shows_it(tmp_path: Path) -> None:
    command = readme_command()
    assert command.startswith("python3 -m venv .venv") and "corral run " in command
    clone = fresh_clone(tmp_path / "corral")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CORRAL_STORE")}
    env["PATH"] = ":".join(
        p for p in env.get("PATH", "").split(":") if not p.startswith(str(ROOT))
    )  # the test's own venv is not the newcomer's
    env["NO_COLOR"] = "1"
    done = subprocess.run(
        ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
        timeout=540, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = re.search(r"run (\S+) succeeded in", done.stdout + done.stderr)
    assert ran, done.stdout[-2000:]
    runs = subprocess.run(
        [str(clone / ".venv" / "bin" / "corral"), "runs"], cwd=clone, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert runs.returncode == 0, runs.stderr
    assert ran.group(1) in runs.stdout, runs.stdout
