"""Pausing Python's cyclic garbage collector while a big, long-lived structure is built.

Loading a 10,000-job flow or reading a 50,000-job run from the history creates hundreds
of thousands of objects that all stay alive; every collection re-walks them, which took
40-55 % of `validate`'s CPU and made it grow faster than the flow. Nothing built there
needs the cyclic collector (reference counting frees it), so it waits until the end.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside the block, back as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
