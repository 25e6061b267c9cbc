"""What every release step shares: the folders, the source date, running commands."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent  # release/
ROOT = HERE.parent
# the Python versions the zipapp carries native wheels for (CPython, Linux x86-64)
ZIPAPP_PYTHONS = ("3.11", "3.12", "3.13")
# the extras every artifact carries, those pyproject.toml defines (`server` comes with
# `corral serve`, the image's default command)
EXTRAS = ("policy", "postgres", "server")


def shipped_extras() -> tuple[str, ...]:
    """The EXTRAS pyproject.toml defines, in that order."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return tuple(e for e in EXTRAS if e in project.get("optional-dependencies", {}))


# the glibc platforms the bundled wheels may target: regorus needs 2.34, the host has 2.36
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


class ReleaseError(Exception):
    """A release step failed; the message says which and why."""


def log(message: str) -> None:
    print(f"release: {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    quiet: bool = False,
) -> str:
    """Run a command; ReleaseError (with its output) when it fails."""
    words = [str(a) for a in argv]
    if not quiet:
        log("$ " + shlex.join(words))
    result = subprocess.run(
        words,
        env=None if env is None else dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE if capture or quiet else None,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = ((result.stdout or "") + (result.stderr or "")).strip()[-4000:]
        raise ReleaseError(
            f"{words[0]} exited {result.returncode}" + (f":\n{detail}" if detail else "")
        )
    return result.stdout or ""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Source:
    """The commit being released: its id, its time (SOURCE_DATE_EPOCH), the version."""

    commit: str
    epoch: int
    version: str
    dirty: bool

    @property
    def date(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.epoch))

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment every build step runs with: fixed time, hash seed and umask."""
        env = dict(os.environ if base is None else base)
        env.update(
            SOURCE_DATE_EPOCH=str(self.epoch),
            CORRAL_BUILD_COMMIT=self.commit,
            PYTHONHASHSEED="0",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            TZ="UTC",
            LC_ALL="C.UTF-8",
        )
        return env


def source(root: Path = ROOT) -> Source:
    def git(*args: str) -> str:
        return run(["git", "-C", root, *args], capture=True, quiet=True).strip()

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    epoch = int(git("log", "-1", "--format=%ct", "HEAD"))
    init = (root / "src" / "corral" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', init, re.MULTILINE)
    if found is None:
        raise ReleaseError("no __version__ in src/corral/__init__.py")
    return Source(commit + ("-dirty" if dirty else ""), epoch, found.group(1), dirty)


@dataclass(frozen=True)
class Layout:
    """Where things go: `dist` holds what is shipped, `build` everything in between."""

    dist: Path
    build: Path
    version: str

    @property
    def tools(self) -> Path:
        return self.build / "tools"

    @property
    def tools_python(self) -> Path:
        return self.tools / "bin" / "python"

    @property
    def wheelhouse(self) -> Path:
        return self.build / "wheelhouse"

    @property
    def wheel(self) -> Path:
        return self.dist / f"corral-{self.version}-py3-none-any.whl"

    @property
    def sdist(self) -> Path:
        return self.dist / f"corral-{self.version}.tar.gz"

    @property
    def onefile(self) -> Path:
        return self.dist / f"corral-{self.version}-linux-x86_64"

    @property
    def zipapp(self) -> Path:
        return self.dist / f"corral-{self.version}.pyz"

    @property
    def container(self) -> Path:
        return self.dist / f"corral-{self.version}-container.tar"

    def sbom(self, artifact: Path) -> Path:
        return artifact.with_name(artifact.name + ".cdx.json")


def tag(version: str) -> str:
    """`3.12` -> `cp312`."""
    return "cp" + version.replace(".", "")


def platform_args() -> list[str]:
    return [arg for platform in PLATFORMS for arg in ("--platform", platform)]
