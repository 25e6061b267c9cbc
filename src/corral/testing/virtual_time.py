"""An asyncio event loop on virtual time, to drive the scheduler (or an executor's
checks) without waiting.

`VirtualTimeLoop`'s clock is a number: when nothing is ready to run it jumps straight to
the next timer instead of blocking, so `asyncio.sleep`, `asyncio.wait_for` timeouts and
an injected `sleep` all take no real time. When nothing is ready and no timer is set,
nothing can ever happen again: it raises `Deadlock` instead of blocking forever (so "the
run always terminates" is checked, not hoped for).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import TypeVar

T = TypeVar("T")


class Deadlock(RuntimeError):
    """Nothing is ready, no timer is set: the awaited work can never finish."""


class _VirtualSelector(selectors.DefaultSelector):
    """The real selector, polled (never blocking); the loop's clock moves instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        loop.iterations += 1
        if loop.iterations > loop.max_iterations:
            raise Deadlock(f"more than {loop.max_iterations} loop iterations: a livelock?")
        events = super().select(0)
        if events:
            return events
        if timeout is None:
            raise Deadlock(f"nothing to run and no timer set at t={loop.time():g}")
        if timeout > 0:
            loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: `time()` starts at 0 and only timers move it."""

    def __init__(self, max_iterations: int = 200_000) -> None:
        self._now = 0.0
        self.iterations = 0
        self.max_iterations = max_iterations
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def run_virtual(
    main: Callable[[VirtualTimeLoop], Coroutine[object, object, T]],
    *,
    max_iterations: int = 200_000,
) -> T:
    """Run `main(loop)` to completion on a fresh virtual-time loop, then close the loop."""
    loop = VirtualTimeLoop(max_iterations)
    try:
        return loop.run_until_complete(main(loop))
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.max_iterations = loop.iterations + 10_000
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except Deadlock:
            pass  # a task that ignores cancellation: already reported by the run itself
        finally:
            loop.close()


class RecordingSleep:
    """An injected `sleep`: remembers every request (virtual time, seconds), then sleeps on
    the loop's clock, which is virtual under `VirtualTimeLoop`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.calls: list[tuple[float, float]] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append((self.clock(), seconds))
        await asyncio.sleep(seconds)

    @property
    def delays(self) -> list[float]:
        return [seconds for _, seconds in self.calls]
