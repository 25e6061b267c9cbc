"""Which CLI version each adapter was proven against, which one is installed, and the
warning when they differ.

Reading a version starts the CLI (Gemini CLI's `--version` takes over a second), so the
answers are kept in a small cache file, keyed by the executable's path, size and mtime:
`corral run` pays for a CLI once per install, not once per run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corral.tools.base import Tool


def verification(tool: Tool) -> str:
    """How far the adapter is proven, in words for `corral tools` and the docs."""
    if tool.verified is not None:
        return f"verified: {tool.verified.version}"
    if not tool.executable_names:
        return "-"  # the generic tool runs whatever command it is given
    return f"unverified: {tool.unverified_reason}"


def version_warning(tool: Tool, installed: str | None) -> str | None:
    """A one-line warning when the installed version is not the one the adapter was proven
    against (None when they match, or when either is unknown)."""
    proven = tool.verified.version if tool.verified is not None else None
    if proven is None or installed is None or installed == proven:
        return None
    return (
        f"{tool.name} {installed} is installed; corral's {tool.name} adapter was verified "
        f"with {proven}, and a different version may print what corral cannot read"
    )


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "corral" / "cli-versions.json"


def installed_versions(found: Iterable[tuple[Tool, str]]) -> dict[str, str | None]:
    """`{executable: version}` for each (tool, executable), read at once on threads and
    remembered between runs while the executable's file stays the same."""
    pairs = list(dict.fromkeys(found))
    cache = _load(cache_file())
    answers: dict[str, str | None] = {}
    todo: list[tuple[Tool, str, str]] = []
    for tool, executable in pairs:
        key = _key(executable)
        if key is not None and key in cache:
            answers[executable] = cache[key]
        else:
            todo.append((tool, executable, key or ""))
    if todo:
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            read = list(pool.map(lambda item: item[0].version(item[1]), todo))
        for (_, executable, key), version in zip(todo, read, strict=True):
            answers[executable] = version
            if key and version is not None:  # a timed-out read is tried again next time
                cache[key] = version
        _save(cache_file(), cache)
    return answers


def _key(executable: str) -> str | None:
    try:
        info = Path(executable).resolve().stat()
    except OSError:
        return None
    return f"{Path(executable).resolve()}|{info.st_size}|{info.st_mtime_ns}"


def _load(path: Path) -> dict[str, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, str) else None for k, v in data.items()}


def _save(path: Path, cache: Mapping[str, str | None]) -> None:
    """Write the cache whole and atomically; a cache that cannot be written is skipped."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".cli-versions-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dict(cache), out)
        os.replace(temporary, path)
