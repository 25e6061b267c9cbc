"""The store writer: a bus subscriber that batches events into the history on a thread.

The subscriber only appends to a deque (the bus delivers synchronously on the event
loop, so it must be cheap). A daemon thread wakes on the first event, waits up to
`window_s` for more, and writes the batch in one transaction: SQLAlchemy is sync and a
thread keeps it off the event loop. Run and job starts are written at once, without the
window: they carry the pids `corral resume` stops. `sync()` makes everything published
so far durable now: the scheduler awaits it after JobFinished so a job's final status is
stored before corral reports it.

When the database goes away the run goes on: events stay buffered and the thread retries
with exponential backoff (50 ms doubling to `max_backoff_s`); an attempt waits at most
ATTEMPT_BUSY_MS for a SQLite file another process holds locked, so the thread is never
stuck for long in one attempt (and close() can spill what it was trying to write).
While it fails the buffer is bounded by `max_buffered` events; past it, or once the
database has been down for `spill_after_s`, the pending events go, in order and
numbered, to an on-disk backlog in the run's folder (`corral.store.spill`: fsynced,
0600), which is written back first when the database returns, and by `corral resume`
if corral dies first. Only when there is no folder to spill to (or the disk refuses)
are the oldest agent events (text, usage snapshots, tool calls) dropped and counted,
while lifecycle events (run/job started, finished...) are always kept, since they are
few and build the rows `corral show` reads.
A healthy writer that falls behind drops nothing: it catches up. `close()`
waits up to `close_timeout_s` for a last write and otherwise spills what is left and
raises StoreError saying what was lost or where it waits; the job logs on disk never
depend on the store. A batch the database rejects for good
is written again event by event, so one bad event (a byte PostgreSQL refuses) loses
only itself, never another job's result.

Each event gets its number in the run (`seq`) when it is published, not when it is
written: a run started here (its RunStarted published to this writer: a new id) counts
from 1; a run this writer was given (`run_id`: one resumed or closed by another process)
from after what the history holds, read once at its first event. A listener (`listen`)
hears each event with its number at once, so a live view (the server's event hub) can
send it before the batch is written, under the number a reader of the history will see.
An event lost for good leaves a hole in the numbers, never a renumbering. If the history
cannot say a given run's next number (down), that run is numbered when written (or
spilled), and not heard.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from corral.errors import StoreError
from corral.events.types import Event, JobFinished, JobOutput, RunStarted
from corral.store.apply import LIFECYCLE, Applier, Pending
from corral.store.engine import database_error, is_transient, reason_of
from corral.store.protocols import SeqListener
from corral.store.rows import RowMaker
from corral.store.spill import SpillFile, write_back
from corral.store.sql import SqlHistory

_FIRST_BACKOFF_S = 0.05
# how long one write attempt waits for a SQLite history another process has locked: short,
# so the writer retries (and spills) on its own schedule and close() is never held 30 s
ATTEMPT_BUSY_MS = 1000
# written at once, not after the batching window: a run killed early must be on record
# to be resumable. Job starts need not be: `corral resume` finds what a killed run left
# running by the CORRAL_RUN_ID in its processes' environment, recorded or not
_URGENT = (RunStarted,)


class StoreWriter:
    """The SQL history's `HistoryWriter`: subscribe an instance to the bus.

    Events are attributed to the run of the last RunStarted (or to `run_id` if given);
    JobOutput is not stored (the log files hold the output). Not reusable after close().
    """

    def __init__(
        self,
        store: SqlHistory,
        *,
        run_id: str | None = None,
        clock: Callable[[], float] = time.time,
        window_s: float = 0.05,
        batch_size: int = 5000,
        max_buffered: int = 100_000,
        sync_timeout_s: float = 5.0,
        close_timeout_s: float = 10.0,
        max_backoff_s: float = 2.0,
        spill_dir: Path | None = None,
        spill_after_s: float = 5.0,
    ) -> None:
        self._store = store
        self._run_id = run_id or ""
        self._clock = clock
        self._window_s = window_s
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._sync_timeout_s = sync_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_backoff_s = max_backoff_s
        self._applier = Applier()
        self._rows = RowMaker()  # the fold that says what each event changes in the tables
        self._queue: deque[Pending] = deque()
        # publisher side: the run events go to, each run's next number (None: numbered
        # when written), the events published before any RunStarted, the listeners
        self._publishing_run = self._run_id
        self._numbers: dict[str, int | None] = {}
        self._unattributed: list[Pending] = []
        self._listeners: list[SeqListener] = []
        self._pending: list[Pending] = []
        self._orphans: list[Pending] = []  # published before any RunStarted
        self._published = 0  # touched by the publishing thread only
        self._lock = threading.Lock()
        self._resolved = 0
        # (events to be resolved, future, keep waiting through retries)
        self._waiters: list[tuple[int, concurrent.futures.Future[bool], bool]] = []
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._abandon = threading.Event()
        self._closing = False
        self._closed = False
        self._exited = False  # the thread has ended (set under the lock, with _on_exit read)
        self._on_exit: Callable[[], None] | None = None
        self._failing = False
        self._last_error: BaseException | None = None
        self._backoff = 0.0
        self.written = 0
        self.dropped = 0
        self.lost = 0
        # the on-disk backlog: where (the run's folder, unless given), and what is in it
        self._spill_dir = spill_dir
        self._run_folder: Path | None = None  # the last RunStarted's log folder
        self._spill: SpillFile | None = None
        self._spilled = 0  # events in the spill file, not written yet
        self._spilled_uncounted = 0
        self._spill_after_s = spill_after_s
        self._failing_since: float | None = None
        self._new_runs: set[str] = set()  # started here: the database has none of their events
        self._written_runs: set[str] = set()
        self.spilled = 0  # events that went through the spill file
        self._thread = threading.Thread(target=self._run, name="corral-store-writer", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """False while the last write failed and the writer is retrying (DB unreachable)."""
        return not self._failing

    # -- publisher side ----------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """The bus subscriber: O(1), never touches the database."""
        if isinstance(event, JobOutput):
            return
        if self._closed:
            raise RuntimeError("event published to a closed StoreWriter")
        ts = self._clock()
        # the rows are read now, on the publishing thread, as the fold stands after it
        item = Pending(ts, event, self._rows(event, ts))
        run_id = self._publishing_run
        number = self._numbers.get(run_id) if run_id else None
        if number is not None and not isinstance(event, RunStarted):
            # the usual event (once per agent event): its run's next number, as `_number`
            item.run_id, item.seq = run_id, number
            self._numbers[run_id] = number + 1
            numbered: list[Pending] = [item]
        else:
            numbered = self._number(item)
        self._queue.append(item)
        self._published += 1
        if self._listeners:
            for each in numbered:
                for listener in self._listeners:
                    listener(each.run_id, each.seq, each.ts, each.event)
        if isinstance(event, _URGENT):
            self._urgent.set()
        if not self._wake.is_set():
            self._wake.set()

    def listen(self, listener: SeqListener) -> None:
        """Call `listener(run_id, seq, ts, event)` for each event published from now on,
        on the publishing thread, once it has its number (never for JobOutput)."""
        self._listeners.append(listener)

    def _number(self, item: Pending) -> list[Pending]:
        """Attribute `item` to its run and give it the run's next number; the events
        numbered now, in order (those published before any RunStarted come with it)."""
        early: list[Pending] = []
        if isinstance(item.event, RunStarted):
            self._publishing_run = item.event.run_id
            self._numbers.setdefault(self._publishing_run, 1)  # new here: none written yet
            # what came before any RunStarted is this run's, numbered before it
            early, self._unattributed = self._unattributed, []
            for orphan in early:
                orphan.run_id = self._publishing_run
                self._take_number(orphan)
        item.run_id = self._publishing_run
        if not item.run_id:
            self._unattributed.append(item)
            return []
        self._take_number(item)
        return [each for each in (*early, item) if each.seq]

    def _take_number(self, item: Pending) -> None:
        run_id = item.run_id
        if run_id not in self._numbers:
            self._numbers[run_id] = self._first_number(run_id)
        number = self._numbers[run_id]
        if number is not None:
            item.seq = number
            self._numbers[run_id] = number + 1

    def _first_number(self, run_id: str) -> int | None:
        """The next number of a run this writer was given: after what an earlier process
        wrote; None when the history cannot say."""
        from corral.store.queries import last_seq  # the reads: a new run never needs them

        try:
            with self._store.reads() as db:
                last = last_seq(db, run_id)
        except Exception as error:
            if not database_error(error):
                raise
            return None  # numbered when written, as the database then says
        return last + 1

    async def sync(self) -> bool:
        """Wait until every event published so far is committed; True if it is.

        Returns False at once while the database is unreachable (the writer keeps
        retrying in the background) and after sync_timeout_s.
        """
        future = self._request()
        if future is None:
            return not self._failing
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self._sync_timeout_s
            )
        except TimeoutError:
            return False

    def flush_now(self, timeout: float | None = None) -> bool:
        """Block until everything published so far is committed; True if it is.

        Unlike `sync()` it keeps waiting through retries, up to `timeout` (default
        sync_timeout_s): for code off the event loop that wants the data, not speed.
        """
        future = self._request(patient=True)
        if future is None:
            return not self._failing
        try:
            return future.result(timeout or self._sync_timeout_s)
        except concurrent.futures.TimeoutError:
            return False

    def _request(self, *, patient: bool = False) -> concurrent.futures.Future[bool] | None:
        target = self._published
        with self._lock:
            if self._resolved >= target or (self._failing and not patient):
                return None
            future: concurrent.futures.Future[bool] = concurrent.futures.Future()
            self._waiters.append((target, future, patient))
        self._urgent.set()
        self._wake.set()
        return future

    def close(self, timeout: float | None = None) -> None:
        """Write what is left and stop the thread.

        Waits while the writer makes progress, and at most `timeout` (default
        close_timeout_s) without any. Raises StoreError if any event could not be
        written (how many, of which run, why); a bug in the writer is re-raised as itself.
        """
        if self._closed:
            return
        self._begin_close()
        # the timeout counts time without progress: a writer catching up on a backlog
        # is given the time it needs, a dead database only `timeout`
        limit = timeout if timeout is not None else self._close_timeout_s
        deadline, seen = time.monotonic() + limit, self.written
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(min(0.1, limit))
            if self.written != seen:
                deadline, seen = time.monotonic() + limit, self.written
        if self._thread.is_alive():
            self._abandon.set()
            self._wake.set()
            self._thread.join(10.0)
        self._end_close()

    async def close_on_thread(
        self, then: Callable[[], None], idle_limit: float | None = None
    ) -> None:
        """`close()`, then `then()` (closing the history), from the event loop without
        blocking it or starting a thread: the writer's own thread runs `then` as its last
        act, and wakes the loop. The same waits and errors as `close()` (`idle_limit` is
        its `timeout`: the time allowed without progress); an error of
        `then` is raised here, after the writer's own.

        Were the thread stuck past the abandon wait, `then` runs here instead, as a
        caller of `close()` would run it (never twice)."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        claimed = threading.Lock()
        failure: list[BaseException] = []

        def finish() -> None:  # once, on whichever side gets there first
            if claimed.acquire(blocking=False):
                try:
                    then()
                except BaseException as error:
                    failure.append(error)

        def on_exit() -> None:  # on the writer's thread, as it ends
            finish()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, exited)

        with self._lock:
            waiting = not self._closed and not self._exited
            if waiting:
                self._on_exit = on_exit
        if waiting:
            # cancelled while waiting, the thread still closes the history as it ends
            self._begin_close()
            limit = idle_limit if idle_limit is not None else self._close_timeout_s
            deadline, seen = time.monotonic() + limit, self.written
            while not exited.done() and (left := deadline - time.monotonic()) > 0:
                await asyncio.wait((exited,), timeout=min(0.1, limit, left))
                if self.written != seen:
                    deadline, seen = time.monotonic() + limit, self.written
            if not exited.done():
                self._abandon.set()
                self._wake.set()
                await asyncio.wait((exited,), timeout=10.0)
        try:
            if not self._closed:
                self._end_close()
        finally:
            finish()
        if failure:
            raise failure[0]

    def _begin_close(self) -> None:
        self._closing = True
        self._urgent.set()
        self._wake.set()

    def _end_close(self) -> None:
        """What close() does once the thread has ended (or was given up on)."""
        self._closed = True  # the engine is the store's: it stays open for its owner
        error = self._last_error
        if error is not None and not (database_error(error) or isinstance(error, StoreError)):
            raise error
        if not self._thread.is_alive() and (self._queue or self._pending):
            # the database never came back: keep what is left on disk for `corral resume`
            self._drain()
            self._spill_out()
        unwritten = len(self._pending) + len(self._orphans) + len(self._queue)
        if unwritten or self.dropped or self.lost or self._spilled:
            # the database's own error rides along, for callers that word their own message
            raise StoreError(self._loss_message(unwritten)) from self._last_error

    def _loss_message(self, unwritten: int) -> str:
        finished = sum(isinstance(p.event, JobFinished) for p in self._pending)
        parts = []
        if unwritten:
            jobs = f", {finished} of them job results" if finished else ""
            parts.append(f"{unwritten} events were never written{jobs}")
        if self.dropped:
            parts.append(f"{self.dropped} agent events were dropped from the full buffer")
        if self.lost:
            parts.append(f"{self.lost} events were rejected")
        run = f" of run {self._run_id}" if self._run_id else ""
        why = f": {_reason(self._last_error)}" if self._last_error else ""
        kept = ""
        if self._spilled and self._spill is not None:
            resume = f"`corral resume {self._run_id}`" if self._run_id else "`corral resume`"
            kept = (
                f"; {self._spilled} events wait in {self._spill.path}: {resume} writes them "
                "to the history once it is reachable"
            )
            if not parts:
                parts.append(f"{self._spilled} events are not in it yet")
        return (
            f"the run history{run} is incomplete in {self._store.display_url}: "
            f"{'; '.join(parts)}{why}{kept}; the jobs' output is in their log files "
            "(not checked)"
        )

    # -- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._lock:
                self._exited = True
                on_exit = self._on_exit
            if on_exit is not None:
                on_exit()

    def _loop(self) -> None:
        delay = 0.0
        while not self._abandon.is_set():
            if delay:
                self._abandon.wait(delay)
            elif not self._queue and not self._pending and not self._spilled:
                if self._closing:
                    return
                self._wake.wait()
                if not (self._urgent.is_set() or self._closing):
                    self._urgent.wait(self._window_s)  # let a batch gather
            self._wake.clear()
            self._urgent.clear()
            self._drain()
            delay = self._write() if self._pending or self._spilled else 0.0
            self._settle()

    def _drain(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            event = item.event
            if isinstance(event, RunStarted):
                self._run_id = event.run_id
                self._new_runs.add(event.run_id)
                if self._spill_dir is None and self._spill is None and event.log_root:
                    self._run_folder = Path(event.log_root)
                self._pending.extend(self._orphans)  # attributed when it was published
                self._orphans.clear()
            if item.run_id:
                self._pending.append(item)
            else:
                # nothing to attribute it to yet: do not hold sync() on it
                item.counted = True
                self._orphans.append(item)
                with self._lock:
                    self._resolved += 1
        self._compact()

    def _write(self) -> float:
        """Write pending events in chunks; the backoff delay before the next try."""
        if self._spilled:  # the older events first: they are on disk
            delay = self._write_spilled()
            if delay or self._spilled:
                return delay
        try:
            while self._pending and not self._abandon.is_set():
                chunk = self._pending[: self._batch_size]
                with self._store.transaction(busy_timeout_ms=ATTEMPT_BUSY_MS) as db:
                    self._applier.write(db, chunk)
                del self._pending[: len(chunk)]
                self.written += len(chunk)
                self._written_runs.update(p.run_id for p in chunk)
                self._failing_since = None
                with self._lock:
                    self._resolved += sum(not p.counted for p in chunk)
                    self._failing = False
        except Exception as error:  # sorted below: retry, reject, or re-raise at close
            self._last_error = error
            if is_transient(error):
                self._start_failing()
                return self._next_delay()
            if not database_error(error):
                self._abandon.set()  # a bug: stop and let close() raise it
            rejected = self._one_by_one() if database_error(error) else None
            self.lost += len(self._pending) if rejected is None else rejected
            with self._lock:
                self._resolved += sum(not p.counted for p in self._pending)
                if rejected:
                    for _, future, _ in self._waiters:  # what they waited for may be lost
                        _resolve(future, False)
                    self._waiters.clear()
            self._pending.clear()
        self._backoff = 0.0
        return 0.0

    def _start_failing(self) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        with self._lock:
            self._failing = True

    def _write_spilled(self) -> float:
        """Write the spill file back, in one transaction; the backoff delay if it failed."""
        assert self._spill is not None
        try:
            items = self._spill.read()
            with self._store.transaction(busy_timeout_ms=ATTEMPT_BUSY_MS) as db:
                write_back(db, self._applier, items)
        except Exception as error:  # a database error: retry it or keep the file for resume
            self._last_error = error
            if is_transient(error):
                self._start_failing()
                return self._next_delay()
            if not (database_error(error) or isinstance(error, OSError)):
                self._abandon.set()  # a bug: stop and let close() raise it
            # rejected for good: the file stays where it is, the loss is reported
            self.lost += self._spilled
            self._spilled = 0
            return 0.0
        self._spill.remove()
        self.written += len(items)
        self._written_runs.update(p.run_id for p in items)
        with self._lock:
            self._resolved += self._spilled_uncounted
            self._failing = False
        self._spilled = self._spilled_uncounted = 0
        self._failing_since = None
        return 0.0

    def _spill_out(self) -> bool:
        """Move the pending events, oldest first, to the spill file; False if none could
        go (no run folder, a number unknown, the disk refused)."""
        folder = self._spill.path.parent if self._spill is not None else self._spill_dir
        folder = folder or self._run_folder
        if folder is None or not folder.is_dir():
            return False
        count = 0
        for item in self._pending:  # in order: stop at the first one without a number
            new = item.run_id in self._new_runs and item.run_id not in self._written_runs
            if not self._applier.number_offline(item, new_run=new):
                break
            count += 1
        if not count:
            return False
        spill = self._spill or SpillFile(folder)
        chunk = self._pending[:count]
        try:
            spill.append(chunk)
        except OSError:
            return False  # the disk is full too: the memory bound drops agent events
        self._spill = spill
        del self._pending[:count]
        self._spilled += count
        self.spilled += count
        self._spilled_uncounted += sum(not p.counted for p in chunk)
        return True

    def _one_by_one(self) -> int | None:
        """After a rejected batch: write each event alone; how many were rejected (None
        when the database failed in another way meanwhile: all are lost)."""
        rejected = 0
        for item in self._pending:
            self._applier.forget_numbers()  # the rolled-back batch took some
            try:
                with self._store.transaction(busy_timeout_ms=ATTEMPT_BUSY_MS) as db:
                    self._applier.write(db, [item])
            except Exception as error:
                if not database_error(error):
                    raise
                if is_transient(error):
                    return None
                self._last_error = error
                rejected += 1
            else:
                self.written += 1
                self._written_runs.add(item.run_id)
        self._applier.forget_numbers()
        return rejected

    def _next_delay(self) -> float:
        self._backoff = min(max(self._backoff * 2, _FIRST_BACKOFF_S), self._max_backoff_s)
        return self._backoff

    def _compact(self) -> None:
        # only while failing: a healthy writer that is behind catches up, loses nothing
        if not self._failing or not self._pending:
            return
        excess = len(self._pending) - self._max_buffered
        down = self._failing_since is not None and (
            time.monotonic() - self._failing_since >= self._spill_after_s
        )
        if (excess > 0 or down) and self._spill_out():
            excess = len(self._pending) - self._max_buffered
        if excess <= 0:
            return
        kept: list[Pending] = []
        dropped = uncounted = 0
        for item in self._pending:
            if dropped < excess and not isinstance(item.event, LIFECYCLE):
                dropped += 1
                uncounted += not item.counted
            else:
                kept.append(item)
        self._pending[:] = kept
        self.dropped += dropped
        with self._lock:
            self._resolved += uncounted

    def _settle(self) -> None:
        with self._lock:
            keep = []
            for target, future, patient in self._waiters:
                if self._failing and not patient:
                    _resolve(future, False)
                elif self._resolved >= target and not self._failing:
                    _resolve(future, True)
                else:
                    keep.append((target, future, patient))
            self._waiters = keep


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # its waiter may have been cancelled meanwhile
        future.set_result(None)


def _resolve(future: concurrent.futures.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _reason(error: BaseException | None) -> str:
    return reason_of(error) if error else ""
