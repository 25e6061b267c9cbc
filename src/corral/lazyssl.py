"""asyncio, imported without `ssl` until something uses TLS through it.

asyncio imports `ssl` (and OpenSSL's `_ssl`: ~8 ms of CPU, a twentieth of `corral exec
-- true`) for TLS transports that a run on this machine never opens. Here asyncio is
imported while `ssl` cannot be (its modules fall back to `ssl = None`, as on a Python
built without it), and those modules are then given a stand-in that imports the real
`ssl` the first time asyncio reads anything from it, and puts it in its own place: so
asyncio's TLS works as before, paying for `ssl` only when it is used. Anything else that
imports `ssl` gets the real module as usual. Where asyncio was already imported, or
does not take `ssl = None` as Python 3.11-3.14 do, asyncio is imported as it is.
"""

from __future__ import annotations

import importlib
import sys
import types

# asyncio's modules that hold `ssl` (try: import ssl / except ImportError: ssl = None) in
# Python 3.11-3.13; sslproto also defines SSLAgainErrors from it, when it has it
USERS = frozenset({"asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto"})


class DeferredSSL(types.ModuleType):
    """Stands for `ssl` in asyncio's modules until an attribute is read from it."""

    def __getattr__(self, name: str) -> object:
        return getattr(load_ssl(), name)


def load_ssl() -> types.ModuleType:
    """The real `ssl`, put in place of the stand-in (or of None) wherever asyncio holds
    one, as asyncio would have had it."""
    real = importlib.import_module("ssl")
    for module in _holders():
        module.ssl = real  # type: ignore[attr-defined]  # asyncio's own global
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        sslproto.SSLAgainErrors = (real.SSLWantReadError, real.SSLSyscallError)  # type: ignore[attr-defined]  # asyncio's own global
    return real


def _holders() -> list[types.ModuleType]:
    """asyncio's modules whose `ssl` is None or the stand-in."""
    return [
        module
        for name, module in list(sys.modules.items())
        if (name == "asyncio" or name.startswith("asyncio."))
        and module is not None
        and (
            getattr(module, "ssl", ...) is None or isinstance(vars(module).get("ssl"), DeferredSSL)
        )
    ]


def _import_asyncio_without_ssl() -> None:
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    before = set(sys.modules)
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError
    try:
        import asyncio  # noqa: F401  # imported here, without ssl
    except ImportError:  # an asyncio that cannot do without: import it as it is
        for name in set(sys.modules) - before:
            del sys.modules[name]
        return
    finally:
        del sys.modules["ssl"]
    holders = _holders()
    if {module.__name__ for module in holders} != USERS:
        load_ssl()  # not the asyncio this knows: the real ssl, at once
        return
    stand_in = DeferredSSL("ssl", "imported on first use by asyncio (corral.lazyssl)")
    for module in holders:
        module.ssl = stand_in  # type: ignore[attr-defined]  # asyncio's own global


_import_asyncio_without_ssl()

import asyncio  # noqa: E402  # after: the module above imported it without ssl

__all__ = ["asyncio"]
