"""Is the release reproducible? Clone the repository twice (at HEAD, in two different
folders), build each clone with its own build folder and tools, and compare every
artifact's checksum (`make release-repro`; `--container` compares the images too)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, ReleaseError, log, run, sha256


def sums(path: Path) -> dict[str, str]:
    listed = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    return listed


def main(container: bool) -> dict[str, bool]:
    """Build twice from clean clones; True for each artifact built identically."""
    results: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="corral-repro-") as scratch:
        for attempt in ("first", "second"):
            clone = Path(scratch) / attempt / "corral"
            run(["git", "clone", "--quiet", "--no-local", ROOT, clone], quiet=True)
            steps = ["build", "container"] if container else ["build"]
            argv = [sys.executable, str(clone / "release"), "--dist", str(clone / "dist"), *steps]
            env = {k: v for k, v in os.environ.items() if k != "CORRAL_RELEASE_IN_TOOLS"}
            log(f"building the {attempt} clone in {clone}")
            if subprocess.run(argv, env=env, cwd=clone, check=False).returncode != 0:
                raise ReleaseError(f"the {attempt} build failed")
            dist = clone / "dist"
            listed = sums(dist / "SHA256SUMS")
            for name in ("SHA256SUMS", "SHA256SUMS.minisig", "SHA256SUMS.asc"):
                if (dist / name).is_file():
                    listed[name] = sha256(dist / name)
            results.append(listed)
    first, second = results
    verdict = {name: first.get(name) == second.get(name) for name in sorted({*first, *second})}
    for name, same in verdict.items():
        log(f"{'identical' if same else 'DIFFERENT'}  {name}")
    return verdict
