"""What this copy of corral is: version, git commit, build date, artifact kind, Python
and dependency versions (what a bug report needs; `corral version --verbose`).

A release build writes `corral/_build.json` (commit and date) into the wheel and the
sdist (see `hatch_build.py`). The artifact kind is found at run time:

    onefile     the PyInstaller single-file executable (`sys.frozen`)
    zipapp      the shiv zipapp (its `_bootstrap` module ran first)
    container   the container image (its venv holds `share/corral/artifact`)
    wheel       installed from a built wheel or sdist (`_build.json` is present)
    source      an editable install or a checkout (the commit comes from git, if any)
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from corral import __version__

BUILD_FILE = Path(__file__).with_name("_build.json")
# the distributions a bug report needs: the runtime dependencies and the extras
DEPENDENCIES = (
    "click",
    "pydantic",
    "pydantic-core",
    "rich",
    "orjson",
    "PyYAML",
    "genai-prices",
    "Jinja2",
    "SQLAlchemy",
    "alembic",
    "psutil",
    "gordon-to-regorus",
    "psycopg",
    "psycopg-binary",
)


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str | None
    build_date: str | None
    kind: str
    python: str
    platform: str
    executable: str
    dependencies: tuple[tuple[str, str | None], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "version": self.version,
            "commit": self.commit,
            "build_date": self.build_date,
            "artifact": self.kind,
            "python": self.python,
            "platform": self.platform,
            "executable": self.executable,
            "dependencies": dict(self.dependencies),
        }

    def lines(self) -> list[str]:
        deps = ", ".join(f"{name} {version}" for name, version in self.dependencies if version)
        missing = [name for name, version in self.dependencies if version is None]
        rows = [
            ("corral", self.version),
            ("commit", self.commit or "unknown"),
            ("built", self.build_date or "unknown"),
            ("artifact", self.kind),
            ("python", self.python),
            ("platform", self.platform),
            ("executable", self.executable),
            ("dependencies", deps),
        ]
        if missing:
            rows.append(("not installed", ", ".join(missing)))
        return [f"{key + ':':14}{value}" for key, value in rows]


def recorded() -> dict[str, Any]:
    """What the build wrote into `_build.json`, or {} for a source checkout."""
    try:
        data = json.loads(BUILD_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def artifact_kind() -> str:
    """How this corral was shipped: onefile, zipapp, container, wheel or source."""
    if getattr(sys, "frozen", False):
        return "onefile"
    marker = Path(sys.prefix, "share", "corral", "artifact")
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip() or "container"
    shiv = sys.modules.get("_bootstrap")
    if shiv is not None and hasattr(shiv, "current_zipfile"):
        return "zipapp"
    return "wheel" if BUILD_FILE.is_file() else "source"


def _git_commit() -> str | None:
    """The checkout's commit (with `-dirty` for local changes), for a source install."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def build_info() -> BuildInfo:
    """Everything `corral version --verbose` prints."""
    build = recorded()
    kind = artifact_kind()
    commit = build.get("commit") or (_git_commit() if kind == "source" else None)
    impl = platform.python_implementation()
    libc, libc_version = platform.libc_ver()
    system = f"{platform.system()} {platform.machine()}" + (
        f", {libc} {libc_version}" if libc else ""
    )
    return BuildInfo(
        version=__version__,
        commit=commit,
        build_date=build.get("date"),
        kind=kind,
        python=f"{impl} {platform.python_version()}",
        platform=system,
        executable=sys.executable,
        dependencies=tuple((name, _version(name)) for name in DEPENDENCIES),
    )


__all__ = ["BuildInfo", "artifact_kind", "build_info", "recorded"]
