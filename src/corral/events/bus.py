"""The in-process event bus: publishers call `publish`, subscribers get every event in order.

Delivery is synchronous and in publish order: subscribers are cheap (they update state
or enqueue work for their own task), which keeps the hot path free of per-event tasks.
A subscriber may publish in turn (the ledger publishes `SpendUpdated` when it sees
`UsageUpdated`): such an event waits in a queue until the current one has reached every
subscriber, so all subscribers see all events in one and the same order. A subscriber
that raises is a bug and propagates (the queue is then dropped with the bug).

`JobOutput` (one per line a job prints: most events by far) goes only to the subscribers
that take it; one that ignores it anyway (the ledger, the budget guard, the history
writer...) subscribes with `output=False` and costs nothing per line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from corral.events.types import Event, JobOutput

Subscriber = Callable[[Event], None]


class Bus:
    """One run's event bus; see the module docstring for the delivery order."""

    def __init__(self, transform: Callable[[Event], Event] | None = None) -> None:
        # applied to each event as it is published (a run's redaction of secrets)
        self._transform = transform
        self._subscribers: list[Subscriber] = []
        self._output_subscribers: list[Subscriber] = []  # those that take JobOutput
        self._queue: deque[Event] = deque()
        self._delivering = False

    def subscribe(self, subscriber: Subscriber, *, output: bool = True) -> None:
        """Deliver every event to `subscriber`, but `JobOutput` only with `output`."""
        self._subscribers.append(subscriber)
        if output:
            self._output_subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)
        if subscriber in self._output_subscribers:
            self._output_subscribers.remove(subscriber)

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
        output = type(event) is JobOutput
        for subscriber in self._output_subscribers if output else self._subscribers:
            subscriber(event)
