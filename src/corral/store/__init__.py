"""The run history: SQLite by default, PostgreSQL by URL, with its writer and queries.

Wiring, in the runner::

    store = open_store(url, flow_dir / ".corral" / "corral.db")
    writer = StoreWriter(store); bus.subscribe(writer)
    ...; await writer.sync()   # after publishing JobFinished
    writer.close()             # raises StoreError if anything could not be written
"""

from corral.store.history import Store, open_store
from corral.store.queries import USAGE_KEYS, UsageBy
from corral.store.records import (
    AttemptRow,
    JobRecord,
    ModelUsage,
    RunningJob,
    RunRecord,
    RunRow,
    Tokens,
    UsageRow,
)
from corral.store.writer import StoreWriter

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
