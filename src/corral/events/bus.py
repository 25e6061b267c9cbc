"""The in-process event bus: publishers call `publish`, subscribers get every event in order.

Delivery is synchronous and in publish order: subscribers are cheap (they update state
or enqueue work for their own task), which keeps the hot path free of per-event tasks.
A subscriber that raises is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.events.types import Event

Subscriber = Callable[[Event], None]


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)
