"""The installed `corral.*` (and `pydantic`) entry points, remembered between commands.

Finding them costs every command 30-40 ms: importing `importlib.metadata` (it pulls in
`email`, `zipfile`, `csv` and `inspect`) and reading the metadata of every installed
package. What decides them is on disk, so a command first takes a fingerprint of it, which
is cheap (one listing per `sys.path` folder, one `stat` per package's `entry_points.txt`):

- the interpreter;
- in `sys.path` order, each folder holding package metadata: the name of every
  `*.dist-info` / `*.egg-info` in it (a package installed, removed or shadowed by another
  copy) and the size and mtime of its `entry_points.txt` (a plugin edited in place); a
  zip on `sys.path` by its own size and mtime. A folder without metadata (the script's,
  the current one) cannot change the entry points until it holds some, and then it is in
  the key.

When the fingerprint equals the one stored with the cached entry points, those are used;
otherwise `importlib.metadata` reads them, exactly as before, and the cache is written
again. The cache is one private file (0600 in a 0700 folder) under the user's cache
folder, one per interpreter; a file that cannot be read, is not corral's
format, is not private or not the user's own is never trusted: it is read again from the
metadata. Nothing in the cache is imported until a command loads that entry point, as
with `importlib.metadata`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

FORMAT = 2  # 2: the `pydantic` group is kept too
PREFIX = "corral."  # the groups kept, with OTHERS; any other group is read from the metadata
# pydantic's plugins: knowing there are none lets corral's models skip pydantic's own scan
# of every package's metadata (`plugins.skip_pydantic_plugin_scan`)
OTHERS = ("pydantic",)
_METADATA = (".dist-info", ".egg-info")
# what `importlib.metadata.EntryPoint.load` reads the simple way; anything else (extras,
# odd spacing) is loaded by `importlib.metadata` itself, so its errors stay its own
_PLAIN = re.compile(r"[\w.]+:[\w.]+")


class Entry:
    """A cached entry point: what `importlib.metadata.EntryPoint` gives corral."""

    __slots__ = ("group", "name", "value")

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name = name
        self.value = value
        self.group = group

    def load(self) -> Any:
        """The object the entry point names, imported now (as `EntryPoint.load`)."""
        if not _PLAIN.fullmatch(self.value):
            from importlib.metadata import EntryPoint

            return EntryPoint(self.name, self.value, self.group).load()
        module, _, attributes = self.value.partition(":")
        found: Any = importlib.import_module(module)
        for attribute in filter(None, attributes.split(".")):
            found = getattr(found, attribute)
        return found

    def __repr__(self) -> str:
        return f"Entry(name={self.name!r}, value={self.value!r}, group={self.group!r})"


class Installed:
    """The installed entry points of the `corral.*` groups (the others read on demand)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._groups: dict[str, list[Entry]] = {}
        for entry in entries:
            self._groups.setdefault(entry.group, []).append(entry)

    def select(self, *, group: str) -> Iterable[Entry | EntryPoint]:
        if not _kept(group):
            from importlib.metadata import entry_points

            return entry_points().select(group=group)
        return tuple(self._groups.get(group, ()))


def installed() -> Installed:
    """The `corral.*` entry points: cached when nothing they come from has changed."""
    if getattr(sys, "frozen", False):
        # a one-file executable unpacks to a new folder on sys.path at every start: its
        # fingerprint never holds, and its entry points are fixed when it is built
        return Installed(_scan())
    key = fingerprint()
    folder = cache_folder()
    # one file per interpreter (a venv has its own), so that files never pile up
    interpreter = f"{sys.executable}\0{sys.version}"
    path = os.path.join(folder, f"entry-points-{zlib.crc32(interpreter.encode()):08x}.json")
    cached = _read(path, key)
    if cached is not None:
        return Installed(cached)
    entries = _scan()
    with contextlib.suppress(OSError):  # a read-only home keeps working, uncached
        _write(folder, path, key, entries)
    return Installed(entries)


def cache_folder() -> str:
    """Where the cache lives: `$XDG_CACHE_HOME/corral/plugins` (`~/.cache/...`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "corral", "plugins")


def fingerprint() -> list[str]:
    """What the installed entry points depend on, as text (see the module's docstring)."""
    key = [f"format {FORMAT}", sys.version, sys.executable]
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        try:
            with os.scandir(folder) as listing:
                names = sorted(e.name for e in listing if e.name.lower().endswith(_METADATA))
        except NotADirectoryError:  # a zip
            key.append(f"zip {folder!r} {_stat(folder)}")
            continue
        except OSError:
            continue
        # a folder with no package metadata adds nothing (the script's folder, the
        # current one for `python -m corral`): wherever corral starts, the key is the same
        if names:
            key.append(f"path {folder!r}")
        for name in names:
            key.append(f"{name!r} {_stat(os.path.join(folder, name, 'entry_points.txt'))}")
    return key


def _stat(path: str) -> str:
    try:
        found = os.stat(path)
    except OSError:
        return "-"
    return f"{found.st_size} {found.st_mtime_ns}"


def _scan() -> list[Entry]:
    from importlib.metadata import entry_points

    found = entry_points()  # its type differs between Python versions; both have these
    groups = sorted(g for g in found.groups if _kept(g))
    return [Entry(ep.name, ep.value, g) for g in groups for ep in found.select(group=g)]


def _kept(group: str) -> bool:
    return group.startswith(PREFIX) or group in OTHERS


def _private(path: str, mode: int) -> bool:
    found = os.stat(path)
    return found.st_uid == os.getuid() and found.st_mode & 0o777 == mode


def _read(path: str, key: list[str]) -> list[Entry] | None:
    try:
        if not (_private(os.path.dirname(path), 0o700) and _private(path, 0o600)):
            return None
        with open(path, "rb") as handle:
            document = json.loads(handle.read())
        if document.get("format") != FORMAT or document.get("key") != key:
            return None
        rows = document["entries"]
        if not all(len(row) == 3 and all(isinstance(f, str) for f in row) for row in rows):
            return None
        return [Entry(name, value, group) for group, name, value in rows]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing, unreadable or not ours: read the metadata again


def _write(folder: str, path: str, key: list[str], entries: list[Entry]) -> None:
    from pathlib import Path

    from corral.private import private_dir, replace_private

    private_dir(Path(folder), below=Path(folder))  # only our own folder is tightened
    if not _private(folder, 0o700):
        return  # a folder we cannot make private is not used
    rows = [[e.group, e.name, e.value] for e in entries]
    data = json.dumps({"format": FORMAT, "key": key, "entries": rows})
    replace_private(Path(path), data.encode())
