"""The compiled methods of dataclasses, kept between commands like `.pyc` files.

`dataclasses` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__` ... as Python source and compiles it with `exec` every time the class is
defined: `corral exec` defines ~150 dataclasses and spent ~50 ms of its CPU compiling
~700 such functions at every start. Once `install`ed, `dataclasses` finds `exec` in its
own module first: ours looks the source up in a cache of code objects (marshal, keyed by
the exact source text) and runs the code object; a source not in it is compiled as
`exec` would compile it and kept. The code is the very code `exec` makes: `exec(str)`
called from `dataclasses` (a module without `__future__` imports) compiles with the
file name `<string>`, no inherited `__future__` flag and the interpreter's optimisation
level, which is what `compile(source, "<string>", "exec")` does.

One file per interpreter (and `-O` level) and command, in `$XDG_CACHE_HOME/corral/classes`
(`~/.cache/...`), 0600 in a 0700 folder: code is only loaded from a file the user owns
and nobody else can write, as with the entry-point cache (`corral.entrycache`). A
missing, unreadable, foreign or corrupt file is ignored and written again; an unwritable
folder costs only the compiling. The file is rewritten at exit when anything was
compiled: with the sources this process used, and the ones it read while they are fewer
than `LIMIT` (so it cannot grow without bound when classes change).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import marshal
import os
import sys
import zlib
from types import CodeType
from typing import Any

FORMAT = 1
LIMIT = 4000  # sources kept from earlier commands; those of this process are always kept


class _Cache:
    """The code objects of one command's dataclass methods, read from and written to
    `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.codes: dict[str, CodeType] = _read(path)
        self.used: set[str] = set()
        self.compiled = 0  # sources this process had to compile

    def exec(self, source: str | CodeType, globals: Any = None, locals: Any = None, /) -> None:
        if type(source) is str:
            code = self.codes.get(source)
            if code is None:
                # what exec(source) compiles when called from `dataclasses`
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.codes[source] = code
                self.compiled += 1
            self.used.add(source)
            source = code
        exec(source, globals, locals)  # dataclasses' own exec, given its code

    def save(self) -> None:
        """Write the file again if anything had to be compiled."""
        if not self.compiled:
            return
        kept = self.codes
        if len(kept) > LIMIT + len(self.used):
            kept = {source: kept[source] for source in self.used}
        with contextlib.suppress(OSError, ValueError):  # an unwritable home stays uncached
            _write(self.path, kept)


# the cache installed in this process, if any (at most one)
_installed: list[_Cache] = []


def install(command: str) -> _Cache | None:
    """Serve `dataclasses`' compiling from the cache of `command` (the CLI command being
    run) for the rest of the process; None where it cannot be done safely: another hook
    in place already, or a `dataclasses` that does not compile through `exec(source,
    globals, locals)`."""
    if _installed or "exec" in vars(dataclasses):
        return None
    if not _compiles_through_exec():
        return None
    cache = _Cache(cache_path(command))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined] # found before the builtin
    atexit.register(cache.save)
    _installed.append(cache)
    return cache


def _compiles_through_exec() -> bool:
    """Whether `dataclasses` makes its methods with `exec(source, globals, locals)`, a
    global name it looks up in its module first: `_create_fn` in Python 3.11 and 3.12,
    `_FuncBuilder.add_fns_to_class` in 3.13."""
    builder = getattr(dataclasses, "_FuncBuilder", None)
    for maker in (
        getattr(dataclasses, "_create_fn", None),
        getattr(builder, "add_fns_to_class", None),
    ):
        code = getattr(maker, "__code__", None)
        if code is not None and "exec" in code.co_names:
            return True
    return False


def uninstall() -> None:
    """Give `dataclasses` back the builtin `exec` (for tests); the cache is not written."""
    while _installed:
        atexit.unregister(_installed.pop().save)
        vars(dataclasses).pop("exec", None)


def cache_path(command: str) -> str:
    """The cache file of `command` under this interpreter."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    interpreter = f"{FORMAT}\0{sys.executable}\0{sys.version}\0{sys.flags.optimize}"
    name = f"{zlib.crc32(interpreter.encode()):08x}-{zlib.crc32(command.encode()):08x}"
    return os.path.join(base, "corral", "classes", f"{name}.marshal")


def _private(path: str, mode: int) -> bool:
    found = os.stat(path)
    return found.st_uid == os.getuid() and found.st_mode & 0o777 == mode


def _read(path: str) -> dict[str, CodeType]:
    try:
        if not (_private(os.path.dirname(path), 0o700) and _private(path, 0o600)):
            return {}
        with open(path, "rb") as handle:
            found = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}  # missing, not ours or not whole: compile, and write it again
    if not (type(found) is tuple and len(found) == 2 and found[0] == FORMAT):
        return {}
    codes = found[1]
    if type(codes) is not dict or not all(
        type(source) is str and type(code) is CodeType for source, code in codes.items()
    ):
        return {}
    return codes


def _write(path: str, codes: dict[str, CodeType]) -> None:
    from pathlib import Path

    from corral.private import private_dir

    folder = os.path.dirname(path)
    private_dir(Path(folder), below=Path(folder))  # only our own folder is tightened
    if not _private(folder, 0o700):
        return  # a folder we cannot make private is not used
    data = marshal.dumps((FORMAT, codes))
    # a name of its own: commands ending at the same time never write one file together
    temporary = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)  # left by a process of this number that died writing
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
