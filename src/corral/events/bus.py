"""The in-process event bus: publishers call `publish`, subscribers get every event in order.

Delivery is synchronous and in publish order: subscribers are cheap (they update state
or enqueue work for their own task), which keeps the hot path free of per-event tasks.
A subscriber may publish in turn (the ledger publishes `SpendUpdated` when it sees
`UsageUpdated`): such an event waits in a queue until the current one has reached every
subscriber, so all subscribers see all events in one and the same order. A subscriber
that raises is a bug and propagates (the queue is then dropped with the bug).

`JobOutput` (one per line a job prints: most events by far) goes only to the subscribers
that take it; one that ignores it anyway (the ledger, the budget guard, the history
writer...) subscribes with `output=False` and costs nothing per line. One that only
keeps each job's last line (the run's journal, which the live table and the server
read) subscribes with `output="last"`: while no subscriber takes every line
(`every_line`), an executor publishes only the lines that decide a job's last line (see
`corral.execute.attempt.AttemptPipeline.lines`), and a run shown with `-q`, `--output
grouped` or the live table makes no event per line.

A subscriber that reads only some kinds of events names them (`events=`, or a
`BUS_EVENTS` class attribute): the others never reach it. Who gets an event is worked
out once per event type, so an agent's text, tool calls and tool results (most events
of an agent run) visit only the journal, the history writer and the view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

from corral.events.types import Event, JobOutput

Subscriber = Callable[[Event], None]
EventTypes = tuple[type[Event], ...]


class Bus:
    """One run's event bus; see the module docstring for the delivery order."""

    def __init__(self, transform: Callable[[Event], Event] | None = None) -> None:
        # applied to each event as it is published (a run's redaction of secrets)
        self._transform = transform
        # (subscriber, how it takes JobOutput, the only other event types it takes)
        self._entries: list[tuple[Subscriber, bool | Literal["last"], EventTypes | None]] = []
        # who gets an event of each type, worked out at its first publication
        self._routes: dict[type[Event], list[Subscriber]] = {}
        self._every_line = False
        self._queue: deque[Event] = deque()
        self._delivering = False

    def subscribe(
        self,
        subscriber: Subscriber,
        *,
        output: bool | Literal["last"] = True,
        events: EventTypes | None = None,
    ) -> None:
        """Deliver events to `subscriber`: `JobOutput` as `output` says (every line with
        True, none with False, "last": see above), and any other event unless `events`
        (or the subscriber's own `BUS_EVENTS`) names the only types it reads, then only
        those and their subclasses: an agent's text need not visit the ledger."""
        wanted = events if events is not None else getattr(subscriber, "BUS_EVENTS", None)
        self._entries.append((subscriber, output, wanted))
        self._changed()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        for index, (each, _, _) in enumerate(self._entries):
            if each == subscriber:
                del self._entries[index]
                self._changed()
                return
        raise ValueError("not subscribed")

    @property
    def every_line(self) -> bool:
        """Whether a subscriber takes every output line as its own `JobOutput`."""
        return self._every_line

    def _changed(self) -> None:
        self._routes.clear()
        self._every_line = any(output is True for _, output, _ in self._entries)

    def publish(self, event: Event) -> None:
        if self._transform is not None:
            event = self._transform(event)
        if self._delivering:
            self._queue.append(event)  # after the current event reached everyone
            return
        self._delivering = True
        try:
            self._deliver(event)
            while self._queue:
                self._deliver(self._queue.popleft())
        finally:
            self._delivering = False
            self._queue.clear()

    def _deliver(self, event: Event) -> None:
        subscribers = self._routes.get(type(event))
        if subscribers is None:
            subscribers = self._routes[type(event)] = self._route(type(event))
        for subscriber in subscribers:
            subscriber(event)

    def _route(self, kind: type[Event]) -> list[Subscriber]:
        if issubclass(kind, JobOutput):
            return [each for each, output, _ in self._entries if output]
        return [each for each, _, only in self._entries if only is None or issubclass(kind, only)]
