"""Pausing Python's cyclic garbage collector while a big, long-lived structure is built.

Loading a 10,000-job flow or reading a 50,000-job run from the history creates hundreds
of thousands of objects that all stay alive; every collection re-walks them, which took
40-55 % of `validate`'s CPU and made it grow faster than the flow. Nothing built there
needs the cyclic collector (reference counting frees it), so it waits until the end.

With `freeze`, what was built is then moved out of the collector's sight for good
(`gc.freeze`): re-enabling it would otherwise walk every object built in the pause at
the next allocation. For a structure the process keeps to its end (a command's flow and
plan); never in a long-lived server, where a frozen cycle would never be freed.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """The cyclic collector off inside the block, back as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
