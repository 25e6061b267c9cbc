"""Hatch build hook: writes `corral/_build.json` (the git commit and the build date) into
the wheel and the sdist, so that `corral version --verbose` says what a copy was built
from. Editable installs get none: they report the checkout's own commit.

The commit is CORRAL_BUILD_COMMIT when set (the release builds from an exported tree,
without .git), else the checkout's HEAD (with `-dirty` for local changes); the date is
SOURCE_DATE_EPOCH when set (reproducible builds: the commit's time), else now. A wheel
built from an sdist keeps the sdist's file.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

RELATIVE = Path("src", "corral", "_build.json")


class BuildInfoHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        from_sdist = Path(self.root) / RELATIVE
        if from_sdist.is_file():
            # building from an sdist: package its file (.gitignore hides it from globbing)
            if self.target_name == "wheel":
                build_data["force_include"][str(from_sdist)] = "corral/_build.json"
            return
        self._dir = tempfile.TemporaryDirectory(prefix="corral-build-")
        path = Path(self._dir.name, "_build.json")
        path.write_text(json.dumps(self._info(), indent=2, sort_keys=True) + "\n")
        os.utime(path, (self._epoch(), self._epoch()))
        target = "corral/_build.json" if self.target_name == "wheel" else str(RELATIVE)
        build_data["force_include"][str(path)] = target

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        directory = getattr(self, "_dir", None)
        if directory is not None:
            directory.cleanup()

    def _epoch(self) -> int:
        value = os.environ.get("SOURCE_DATE_EPOCH")
        return int(value) if value and value.isdigit() else int(time.time())

    def _info(self) -> dict[str, Any]:
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._epoch()))
        return {"commit": os.environ.get("CORRAL_BUILD_COMMIT") or self._commit(), "date": date}

    def _commit(self) -> str | None:
        def git(*args: str) -> str:
            return subprocess.run(
                ["git", "-C", self.root, *args], capture_output=True, text=True, check=True
            ).stdout.strip()

        try:
            commit = git("rev-parse", "HEAD")
            dirty = git("status", "--porcelain", "--untracked-files=no")
        except (OSError, subprocess.CalledProcessError):
            return None
        return commit + ("-dirty" if dirty else "")
