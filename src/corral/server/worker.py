"""One run of a server, in its own process: `python -m corral.server.worker` reads what
to run (JSON on stdin) and calls the run use case (`start_run`, or `resume_run`).

A run lives apart from the server that started it: in its own session (a server's
SIGTERM or a terminal's Ctrl-C does not reach it) and its own process (a hundred live
clients on the server's loop do not slow it). It records into the same history, which
the server follows, so a server restarted mid-run finds it still running and keeps
serving its events. Meanwhile each event also goes straight to the server that started
it, numbered as the history will hold it (`corral.server.feed`). SIGINT or SIGTERM to
the worker cancels the run, as Ctrl-C cancels a terminal's run (`POST /runs/{id}/cancel`
sends SIGINT).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from corral.errors import CorralError

if TYPE_CHECKING:
    from corral.app.run import RunControl, RunOptions
    from corral.server.feed import FeedSender


@dataclass(frozen=True)
class RunChoices:
    """What a submission may ask of a run beyond its flow: `corral run`'s options that a
    server honours (the jobs to run, concurrency, fail-fast, a start time, an executor)."""

    only: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    jobs: int | None = None
    fail_fast: bool = False
    start_at: float | None = None  # POSIX seconds
    executor: str | None = None


@dataclass(frozen=True)
class WorkOrder:
    """What a worker runs: a flow's text, or the resume of a run."""

    run_id: str
    owner: str
    base_dir: str
    store: str | None
    flow: str = ""
    filename: str = "flow.yaml"
    rehearse: bool = False
    resume: str | None = None  # the run to finish, instead of a flow
    started_at: float | None = None  # when `run_id` was made: the run's start
    live_fd: int | None = None  # the pipe to the server's event hub (`corral.server.feed`)
    choices: RunChoices = field(default_factory=RunChoices)

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> WorkOrder:
        fields = orjson.loads(data)
        chosen = fields.pop("choices", None) or {}
        for name in ("only", "from_"):
            chosen[name] = tuple(chosen.get(name, ()))
        return cls(**fields, choices=RunChoices(**chosen))

    def options(self) -> RunOptions:
        """The run's options, as `corral run` would make them from its flags."""
        from corral.app.run import RunOptions

        chosen = self.choices
        start_at = None
        if chosen.start_at is not None:
            start_at = datetime.fromtimestamp(chosen.start_at, UTC).astimezone()
        return RunOptions(
            jobs=chosen.jobs,
            fail_fast=chosen.fail_fast,
            start_at=start_at,
            executor=chosen.executor,
            store=self.store,
            base_dir=Path(self.base_dir),
            run_id=self.run_id,
            owner=self.owner,
            args=(SERVED,),
            started_at=self.started_at,
        )


SERVED = "serve"  # the args a server's runs are recorded with


async def run(order: WorkOrder) -> int:
    from corral.app.run import RunControl

    control = RunControl()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, control.cancel, "cancelled through the server")
    listeners = []
    if order.live_fd is not None:
        from corral.server.feed import FeedSender

        sender = FeedSender(order.live_fd)
        listeners.append(sender)
        try:
            return await _run(order, control, listeners)
        finally:
            sender.finish()  # the run's last events, held by the feed's window
    return await _run(order, control, listeners)


async def _run(order: WorkOrder, control: RunControl, listeners: list[FeedSender]) -> int:
    base_dir = Path(order.base_dir)
    options = order.options()
    if order.resume is not None:
        from corral.app.resume import resume_run

        report = await resume_run(
            order.resume,
            options,
            directory=base_dir,
            echo=_say,
            control=control,
            listeners=listeners,
        )
        return 0 if report is None else report.exit_code
    from corral.app.check import check_flow_text
    from corral.app.run import start_run

    loaded, plan = check_flow_text(
        order.flow,
        order.filename,
        base_dir=base_dir,
        only=order.choices.only,
        from_=order.choices.from_,
    )
    if not order.rehearse:
        report = await start_run(
            loaded, plan, options, control=control, warn=_say, listeners=listeners
        )
        return report.exit_code
    from corral.app.rehearse import rehearsal

    with rehearsal(plan) as hook:
        report = await start_run(
            loaded, plan, options, control=control, rehearse=hook, warn=_say, listeners=listeners
        )
    return report.exit_code


def _say(message: str) -> None:
    print(f"corral worker: {message}", file=sys.stderr, flush=True)


def main() -> int:
    from corral import classcache

    # the run's modules define ~150 dataclasses: their methods come compiled, as for the CLI
    classcache.install("worker")
    order = WorkOrder.decode(sys.stdin.buffer.read())
    try:
        return asyncio.run(run(order))
    except CorralError as error:
        for line in error.lines():
            _say(f"error: {line}")
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
