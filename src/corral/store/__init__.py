"""The run history: SQLite by default, PostgreSQL by URL, with its writer and queries.

Wiring, in the runner::

    store = open_store(url, flow_dir / ".corral" / "corral.db")
    writer = StoreWriter(store); bus.subscribe(writer)
    ...; await writer.sync()   # after publishing JobFinished
    writer.close()             # raises StoreError if anything could not be written

Names are imported on first use, so the read-only commands never load the writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.models import Tokens
    from corral.store.history import Store, open_store
    from corral.store.queries import USAGE_KEYS, UsageBy
    from corral.store.records import (
        AttemptRow,
        JobRecord,
        ModelUsage,
        RunningJob,
        RunRecord,
        RunRow,
        UsageRow,
    )
    from corral.store.writer import StoreWriter

_WHERE = {
    "Store": "history",
    "open_store": "history",
    "USAGE_KEYS": "queries",
    "UsageBy": "queries",
    "AttemptRow": "records",
    "JobRecord": "records",
    "ModelUsage": "records",
    "RunRecord": "records",
    "RunRow": "records",
    "RunningJob": "records",
    "Tokens": "records",
    "UsageRow": "records",
    "StoreWriter": "writer",
}

__all__ = [
    "USAGE_KEYS",
    "AttemptRow",
    "JobRecord",
    "ModelUsage",
    "RunRecord",
    "RunRow",
    "RunningJob",
    "Store",
    "StoreWriter",
    "Tokens",
    "UsageBy",
    "UsageRow",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'corral.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f"corral.store.{module}"), name)
