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
`corral.execute.attempt.AttemptPipeline.lines`), and a run shown with `-q`, `--json` or
the live table makes no event per line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

from corral.events.types import Event, JobOutput

Subscriber = Callable[[Event], None]


class Bus:
    """One run's event bus; see the module docstring for the delivery order."""

    def __init__(self, transform: Callable[[Event], Event] | None = None) -> None:
        # applied to each event as it is published (a run's redaction of secrets)
        self._transform = transform
        self._subscribers: list[Subscriber] = []
        self._output_subscribers: list[Subscriber] = []  # those that take JobOutput
        self._every_line: list[Subscriber] = []  # ... and of them, those that need each one
        self._queue: deque[Event] = deque()
        self._delivering = False

    def subscribe(self, subscriber: Subscriber, *, output: bool | Literal["last"] = True) -> None:
        """Deliver every event to `subscriber`; `JobOutput`: every line with `output`,
        none without, and with "last" at least each job's deciding lines (see above)."""
        self._subscribers.append(subscriber)
        if output:
            self._output_subscribers.append(subscriber)
        if output is True:
            self._every_line.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)
        if subscriber in self._output_subscribers:
            self._output_subscribers.remove(subscriber)
        if subscriber in self._every_line:
            self._every_line.remove(subscriber)

    @property
    def every_line(self) -> bool:
        """Whether a subscriber takes every output line as its own `JobOutput`."""
        return bool(self._every_line)

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
