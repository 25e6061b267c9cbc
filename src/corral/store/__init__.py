"""The run history: two protocols (`HistoryReader`, `HistoryWriter`), a registry of
implementations by URL scheme, and the SQL one (SQLite by default, PostgreSQL by URL).

Wiring, in the run use case (`corral.app.run`)::

    history = open_history(url, directory)       # corral.app.location: the default place
    writer = history.writer(); bus.subscribe(writer)
    ...; await writer.sync()   # after publishing JobFinished
    writer.close()             # raises StoreError if anything could not be written
    history.close()

Names are imported on first use, so the read-only commands never load the writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.models import Tokens
    from corral.store.protocols import (
        USAGE_KEYS,
        HistoryReader,
        HistoryStore,
        HistoryWriter,
        StoredEvent,
        UsageBy,
    )
    from corral.store.records import (
        AttemptRow,
        JobRecord,
        ModelUsage,
        RunningJob,
        RunRecord,
        RunRow,
        UsageRow,
    )
    from corral.store.registry import open_url, scheme_of
    from corral.store.sql import SqlHistory, open_store
    from corral.store.writer import StoreWriter

_WHERE = {
    "Tokens": "corral.models",
    "USAGE_KEYS": "corral.store.protocols",
    "HistoryReader": "corral.store.protocols",
    "HistoryStore": "corral.store.protocols",
    "HistoryWriter": "corral.store.protocols",
    "StoredEvent": "corral.store.protocols",
    "UsageBy": "corral.store.protocols",
    "AttemptRow": "corral.store.records",
    "JobRecord": "corral.store.records",
    "ModelUsage": "corral.store.records",
    "RunRecord": "corral.store.records",
    "RunRow": "corral.store.records",
    "RunningJob": "corral.store.records",
    "UsageRow": "corral.store.records",
    "open_url": "corral.store.registry",
    "scheme_of": "corral.store.registry",
    "SqlHistory": "corral.store.sql",
    "open_store": "corral.store.sql",
    "StoreWriter": "corral.store.writer",
}

__all__ = [
    "USAGE_KEYS",
    "AttemptRow",
    "HistoryReader",
    "HistoryStore",
    "HistoryWriter",
    "JobRecord",
    "ModelUsage",
    "RunRecord",
    "RunRow",
    "RunningJob",
    "SqlHistory",
    "StoreWriter",
    "StoredEvent",
    "Tokens",
    "UsageBy",
    "UsageRow",
    "open_store",
    "open_url",
    "scheme_of",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'corral.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
