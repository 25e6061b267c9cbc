"""Histories by URL scheme: the `corral.stores` entry points.

`sqlite` and `postgresql` (and its `postgres` spelling) are registered by corral itself;
a plugin adds a scheme with a factory `(url) -> HistoryStore`. A driver suffix
(`postgresql+psycopg://`) does not change the scheme.
"""

from __future__ import annotations

from corral import plugins
from corral.errors import StoreError
from corral.store.protocols import HistoryStore


def scheme_of(url: str) -> str:
    """`postgresql` for `postgresql+psycopg://...`; StoreError for a URL without one."""
    head, sep, _ = url.partition("://")
    if not sep or not head:
        raise StoreError(
            f"invalid store URL {url!r}: it names no scheme",
            hint="use sqlite:///path/to/corral.db, postgresql+psycopg://user@host/db, "
            f"or a scheme a plugin registers ({', '.join(schemes())})",
        )
    return head.split("+", 1)[0].lower()


def schemes() -> list[str]:
    """Every registered URL scheme, sorted."""
    return list(plugins.entries(plugins.STORES, StoreError))


def open_url(url: str) -> HistoryStore:
    """The history at `url`, opened by the plugin registered for its scheme."""
    scheme = scheme_of(url)
    ep = plugins.entries(plugins.STORES, StoreError).get(scheme)
    if ep is None:
        raise StoreError(
            f"unsupported store {scheme!r} in {url}",
            hint=f"corral stores history in: {', '.join(schemes())} (a plugin may add more)",
        )
    factory = plugins.load(ep, plugins.STORES, plugins.callable_check, StoreError)
    store = factory(url) if callable(factory) else None
    if not isinstance(store, HistoryStore):
        raise StoreError(f"store plugin '{scheme}' ({ep.value}) did not open a history store")
    return store
