"""The history behind two protocols: reading it and writing it.

`HistoryReader` is what the history commands, resume and a server ask; `HistoryWriter` is
the bus subscriber that records a run. A `HistoryStore` is both (it makes writers).
SQLAlchemy over SQLite or PostgreSQL (`corral.store.sql`) is one implementation; another
registers its URL scheme under the `corral.stores` entry points with a factory
`(url) -> HistoryStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from corral.models import RunStatus

if TYPE_CHECKING:  # the event types (40-odd dataclasses) load only where events are read
    from corral.events.types import Event

    # and the records (20-odd) only where the history is read
    from corral.store.records import RunningJob, RunRecord, RunRow, UsageRow

UsageBy = Literal["model", "tool", "job", "flow", "day"]
USAGE_KEYS: tuple[UsageBy, ...] = ("model", "tool", "job", "flow", "day")
ExportFormat = Literal["json", "jsonl", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("json", "jsonl", "csv")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the history holds it: its place in the run's log and when it came."""

    seq: int  # 1, 2, ... in publish order within the run
    ts: float  # when the writer received it (POSIX seconds)
    event: Event


@runtime_checkable
class HistoryReader(Protocol):
    """Questions about past (and running) runs."""

    @property
    def display_url(self) -> str:
        """Where the history is, with any password hidden (for messages)."""
        ...

    def list_runs(
        self,
        status: RunStatus | str | None = None,
        flow: str | None = None,
        since: float | None = None,
        limit: int | None = 50,
        *,
        rehearsal: bool | None = None,
    ) -> list[RunRow]:
        """Runs newest first; `since` is a POSIX timestamp, `flow` a name or path;
        `rehearsal` keeps only the rehearsals (True) or only the real runs (False)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """One run by id or unique prefix; NotFoundError (with a hint) if there is none."""
        ...

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of a run given its id or a unique prefix."""
        ...

    def events(self, run_id: str, after_seq: int = 0) -> Iterator[StoredEvent]:
        """The run's stored events after `after_seq`, in publish order (JobOutput is
        never stored): a live tail or a reconnecting client asks from its last seq on."""
        ...

    def usage(
        self, by: UsageBy, since: float | None = None, *, include_rehearsals: bool = False
    ) -> list[UsageRow]:
        """Tokens by kind and cost by source, grouped by model, tool, job, flow or day;
        the spend of rehearsals (simulated) only with `include_rehearsals`."""
        ...

    def running_jobs(self, run_id: str) -> list[RunningJob]:
        """Attempts recorded as running (pid and process group), for resume to reap."""
        ...

    def delete_runs_older_than(
        self,
        seconds: float,
        *,
        now: float | None = None,
        dry_run: bool = False,
        keep: Callable[[RunRow], bool] | None = None,
    ) -> list[RunRow]:
        """Delete runs started more than `seconds` ago, except those `keep` holds on to
        (a run still running); returns them (to remove their logs)."""
        ...

    def export(self, run_id: str, fmt: str) -> Iterator[str]:
        """The run as `json`, `jsonl` or `csv`, in chunks of text."""
        ...

    def close(self) -> None:
        """Let go of connections; the store is not used afterwards."""
        ...


@runtime_checkable
class HistoryWriter(Protocol):
    """A bus subscriber that records a run's events (and what they mean) in the history.

    Subscribing must stay cheap (it runs on the event loop for every event); the writing
    happens elsewhere. `sync()` returns once everything published so far is durable (or
    says it is not), `close()` writes what is left and raises StoreError for what could
    not be written.
    """

    def __call__(self, event: Event) -> None: ...

    async def sync(self) -> bool:
        """Wait until every event published so far is committed; True if it is."""
        ...

    def flush_now(self, timeout: float | None = None) -> bool:
        """Block until everything published so far is committed; True if it is."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Write what is left and stop; StoreError if anything was lost."""
        ...

    @property
    def healthy(self) -> bool:
        """False while the history cannot be written (the writer keeps retrying)."""
        ...


@runtime_checkable
class RawEventReader(Protocol):
    """A history that can hand out its stored events undecoded (`SqlHistory`): a live
    server sends each as the history stores it, without building an Event per client."""

    def event_payloads(
        self, run_id: str, after_seq: int = 0
    ) -> Iterator[tuple[int, float, str, str]]:
        """The run's stored events after `after_seq` as (seq, ts, kind, JSON), in order."""
        ...


# hears each stored event with its run and number as it is published: (run_id, seq, ts, event)
SeqListener = Callable[[str, int, float, "Event"], None]  # Event: imported for typing only


@runtime_checkable
class NumberingWriter(Protocol):
    """A writer that numbers each event as it is published and lets others hear it then
    (`corral.store.writer.StoreWriter`): a live view sends events before they are
    written, under the numbers the history will hold."""

    def listen(self, listener: SeqListener) -> None: ...


@runtime_checkable
class LoopClosingWriter(Protocol):
    """A writer that closes from the event loop without blocking it
    (`corral.store.writer.StoreWriter`): its own thread writes what is left, then runs
    `then` (closing the history, which may checkpoint a file) and wakes the loop."""

    async def close_on_thread(
        self, then: Callable[[], None], idle_limit: float | None = None
    ) -> None:
        """`close()` then `then()`, awaited: StoreError if anything was lost."""
        ...


@runtime_checkable
class HistoryStore(HistoryReader, Protocol):
    """A history that can be read and written: the reader that makes writers."""

    def writer(self, *, run_id: str | None = None) -> HistoryWriter:
        """A new writer; its events belong to the run of the last RunStarted it sees,
        or to `run_id` (a run resumed or closed by another process)."""
        ...
