"""Waiting for the first of a few futures: what an attempt does once or twice per job.

`asyncio.wait(..., return_when=FIRST_COMPLETED)` builds sets of the done and pending
futures and wraps each in a callback of its own; a running job only needs to know that
one is done (its process, its stop, its result, its exit report) or that a pause passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any


async def first_done(futures: Sequence[asyncio.Future[Any]], within: float | None) -> None:
    """Until one of `futures` is done or `within` seconds passed (None: no limit); none
    of them is cancelled, whatever happens to the caller."""
    if any(future.done() for future in futures):
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in futures:
        future.add_done_callback(wake)
    timer = loop.call_later(within, wake) if within is not None else None
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for future in futures:
            future.remove_done_callback(wake)
