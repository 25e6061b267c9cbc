"""The in-process event bus: publishers call `publish`, subscribers get every event in order.

Delivery is synchronous and in publish order: subscribers are cheap (they update state
or enqueue work for their own task), which keeps the hot path free of per-event tasks.
A subscriber may publish in turn (the ledger publishes `SpendUpdated` when it sees
`UsageUpdated`): such an event waits in a queue until the current one has reached every
subscriber, so all subscribers see all events in one and the same order. A subscriber
that raises is a bug and propagates (the queue is then dropped with the bug).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from corral.events.types import Event

Subscriber = Callable[[Event], None]


class Bus:
    """One run's event bus; see the module docstring for the delivery order."""

    def __init__(self, transform: Callable[[Event], Event] | None = None) -> None:
        # applied to each event as it is published (a run's redaction of secrets)
        self._transform = transform
        self._subscribers: list[Subscriber] = []
        self._queue: deque[Event] = deque()
        self._delivering = False

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

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
        for subscriber in self._subscribers:
            subscriber(event)
