"""Entry-point registries: how corral finds its tools, parsers, executors, stores and
commands, the built-in ones exactly as a plugin's.

Each extension point is an entry-point group; corral's own `pyproject.toml` registers the
built-ins in it, so nothing in the code names them. `load` reads a group once per process
and reports, by name, a plugin that is registered twice under different targets, fails
to import, or is not what the group expects.

    corral.tools       NAME = module:ToolSubclass           an agent CLI adapter
    corral.parsers     FORMAT = module:ParserClass          a line parser (`make_parser`)
    corral.executors   NAME = module:factory(ExecutorContext) -> Executor
    corral.stores      SCHEME = module:factory(url) -> HistoryStore
    corral.commands    NAME = module:CommandEntry or a click command
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
import types
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from corral.errors import CorralError

TOOLS = "corral.tools"
PARSERS = "corral.parsers"
EXECUTORS = "corral.executors"
STORES = "corral.stores"
COMMANDS = "corral.commands"


class PluginError(CorralError):
    """A plugin that cannot be used: registered twice, broken, or of the wrong kind."""


Error = type[CorralError]
Check = Callable[[object], str | None]  # what is wrong with a loaded object, or None


class EntryPoint(Protocol):
    """An entry point: `importlib.metadata.EntryPoint` or its cached stand-in."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


class Installed(Protocol):
    """What `entry_points()` returns (its type differs between Python versions)."""

    def select(self, *, group: str) -> Iterable[EntryPoint]: ...


def entry_points() -> Installed:
    """Every installed entry point of the `corral.*` groups, from a private cache when
    nothing they come from changed since it was written (`corral.entrycache`), else read
    from the packages' metadata."""
    from corral import entrycache

    return entrycache.installed()


@functools.cache
def installed() -> Installed:
    """Every installed entry point: read once per process (a run reads four groups)."""
    return entry_points()


@functools.cache
def entries(group: str, error: Error = PluginError) -> dict[str, EntryPoint]:
    """The group's entry points by name, sorted; a name registered twice with different
    targets is an `error` (the same target twice, as a stale egg-info beside a dist-info
    lists it, is not). Read once per process."""
    found: dict[str, EntryPoint] = {}
    for ep in installed().select(group=group):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise error(
                f"{_kind(group)} '{ep.name}' is registered twice: {other.value} and {ep.value}",
                hint="uninstall one of the two plugins",
            )
        found[ep.name] = ep
    return {name: found[name] for name in sorted(found)}


def load(ep: EntryPoint, group: str, check: Check, error: Error = PluginError) -> object:
    """Import one entry point; `check` says what is wrong with the object, or None."""
    try:
        value = ep.load()
    except Exception as cause:  # a broken plugin must name itself, whatever it raised
        raise error(
            f"{_kind(group)} plugin '{ep.name}' ({ep.value}) failed to load: {cause}",
            hint="fix or uninstall the plugin",
        ) from cause
    problem = check(value)
    if problem is not None:
        raise error(f"{_kind(group)} plugin '{ep.name}' ({ep.value}) {problem}")
    return value


def unknown(group: str, name: str, known: Iterable[str], error: Error = PluginError) -> CorralError:
    """The error for a name no plugin registers, with a did-you-mean."""
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    plural = _kind(group) + "s"
    hint = f"did you mean '{close[0]}'?" if close else f"known {plural}: {', '.join(names)}"
    return error(f"unknown {_kind(group)} '{name}'", hint=hint)


def _kind(group: str) -> str:
    return group.removeprefix("corral.").rstrip("s")


def callable_check(value: object) -> str | None:
    """The check of a group whose entry points name factories: callable or not."""
    return None if callable(value) else "is not callable"


PYDANTIC = "pydantic"  # pydantic's own plugin group
_LOADER = "pydantic.plugin._loader"
# pydantic/plugin/_loader.py (size, crc32) of the releases whose `get_plugins` is known to
# return nothing when no package registers a `pydantic` entry point: 2.13.4, 2.14.4. Any
# other file is imported as it is (its module-level `importlib.metadata` import included)
KNOWN_LOADERS = frozenset({(2213, 0x62082349), (2115, 0x5E3346DA)})


def skip_pydantic_plugin_scan() -> bool:
    """Tell pydantic, when no package registers a pydantic plugin, that it has none, so
    corral's first model neither imports `importlib.metadata` (~25 ms: email, zipfile,
    csv) nor reads every installed package's entry points for pydantic's plugins. True
    when done.

    Only this process is affected (no environment variable reaches the jobs), and only
    when the entry points (`installed()`, corral's cache) hold no `pydantic` group: a
    user's pydantic plugin is then found and loaded by pydantic itself, as before.
    - pydantic's loader not imported yet, and its file one of KNOWN_LOADERS: a stand-in
      module takes its place, with the state the real one reaches after finding no
      plugin (`_plugins` empty; `get_plugins()` returns nothing);
    - otherwise pydantic's own cache of its plugins is seeded empty when its loader
      still looks as expected; a loader that does not is left to its own scan.
    """
    if any(True for _ in installed().select(group=PYDANTIC)):
        return False
    if _LOADER not in sys.modules and _stand_in_loader():
        return True
    try:
        from pydantic.plugin import _loader
    except ImportError:
        return False
    if (
        getattr(_loader, "PYDANTIC_ENTRY_POINT_GROUP", None) != PYDANTIC
        or not callable(getattr(_loader, "get_plugins", None))
        or getattr(_loader, "_loading_plugins", None) is not False
        or "_plugins" not in vars(_loader)
        or _loader._plugins is not None  # loaded already: nothing to skip
    ):
        return False
    _loader._plugins = {}
    return True


def _stand_in_loader() -> bool:
    """Put a stand-in for pydantic's plugin loader in place when its file is a known one."""
    try:
        import pydantic.plugin

        path = os.path.join(next(iter(pydantic.plugin.__path__)), "_loader.py")
        with open(path, "rb") as handle:
            source = handle.read()
    except (ImportError, OSError, StopIteration):
        return False
    if (len(source), zlib.crc32(source)) not in KNOWN_LOADERS:
        return False
    module = types.ModuleType(_LOADER, "pydantic's plugin loader: no plugin installed (corral)")
    module.__file__ = path
    state = {  # the real module's names, as they are after a scan that found no plugin
        "PYDANTIC_ENTRY_POINT_GROUP": PYDANTIC,
        "_plugins": {},
        "_loading_plugins": False,
        "get_plugins": _no_plugins,
    }
    for name, value in state.items():
        setattr(module, name, value)
    sys.modules[_LOADER] = module
    pydantic.plugin._loader = module  # as an import sets it
    return True


def _no_plugins() -> Iterable[Any]:
    """`get_plugins()` with no plugin installed."""
    return ()
