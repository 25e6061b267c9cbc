"""What corral ships for testing code around its seams (as httpx ships MockTransport):

- `FakeExecutor` and its `Step`s: an executor that runs no process, on virtual time;
- `VirtualTimeLoop` / `run_virtual`: an event loop whose clock jumps to the next timer,
  and that raises `Deadlock` when nothing can happen any more;
- `corral.testing.conformance`: the checks any executor can run against itself
  (`CHECKS`), with `Program`, the attempt behaviours they use.
"""

from corral.testing.fake_executor import Attempt, FakeExecutor, Step, fail, hang, ok, timed_out
from corral.testing.program import Program
from corral.testing.virtual_time import Deadlock, RecordingSleep, VirtualTimeLoop, run_virtual

__all__ = [
    "Attempt",
    "Deadlock",
    "FakeExecutor",
    "Program",
    "RecordingSleep",
    "Step",
    "VirtualTimeLoop",
    "fail",
    "hang",
    "ok",
    "run_virtual",
    "timed_out",
]
