"""The runs a server runs itself: submit, cancel, resume, and adopt after a restart.

Each run is the same use case the CLI calls (`corral.app.run.start_run`, or
`corral.app.resume` for a resume) in a task on the server's loop. Runs are recorded with
args `("serve",)` so that the next server recognises the ones a stopped server left
running and adopts them through the resume use case.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.app.header import new_run_id
from corral.app.run import RunControl, RunOptions, RunReport
from corral.errors import CorralError, UsageError
from corral.models import RunStatus
from corral.server.errors import ApiError
from corral.server.hub import EventHub
from corral.server.settings import ServerSettings

SERVED = "serve"  # the args a server's runs are recorded with


@dataclass
class LiveRun:
    """A run this server is running."""

    run_id: str
    owner: str
    control: RunControl
    task: asyncio.Task[RunReport | None]


class RunManager:
    """Starts runs as tasks and keeps hold of them until they end."""

    def __init__(
        self, settings: ServerSettings, hub: EventHub, warn: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.warn = warn
        self.live: dict[str, LiveRun] = {}
        self.accepting = True
        self.adopted = False  # the start-up adoption is over (/readyz)
        self._settling: set[asyncio.Future[None]] = set()
        self.base_dir = settings.directory.resolve()

    def _options(self, owner: str, run_id: str) -> RunOptions:
        return RunOptions(
            store=self.settings.store,
            base_dir=self.base_dir,
            run_id=run_id,
            owner=owner,
            args=(SERVED,),
        )

    def _refuse_when_stopping(self) -> None:
        if not self.accepting:
            raise ApiError(503, "unavailable", "the server is shutting down; retry shortly")

    async def submit(self, text: str, filename: str, owner: str, *, rehearse: bool) -> str:
        """Validate and start a flow; its run id. FlowError (422) before anything runs."""
        self._refuse_when_stopping()
        from corral.app.check import check_flow_text, missing_tools
        from corral.execute.prepare import default_environ

        loaded, plan = await asyncio.to_thread(
            check_flow_text, text, filename, base_dir=self.base_dir
        )
        if not rehearse and (loaded.spec.executor or "local") == "local":
            await asyncio.to_thread(missing_tools, plan, default_environ())
        run_id = new_run_id()
        control = RunControl()
        options = self._options(owner, run_id)

        live = [self.hub.publisher(run_id, owner)]

        async def run() -> RunReport | None:
            from corral.app.run import start_run

            if not rehearse:
                return await start_run(
                    loaded, plan, options, control=control, warn=self.warn, subscribers=live
                )
            from corral.app.rehearse import rehearsal

            with rehearsal(plan) as hook:
                return await start_run(
                    loaded,
                    plan,
                    options,
                    control=control,
                    rehearse=hook,
                    warn=self.warn,
                    subscribers=live,
                )

        self._start(run_id, owner, control, run())
        return run_id

    def _start(
        self,
        run_id: str,
        owner: str,
        control: RunControl,
        coroutine: Coroutine[Any, Any, RunReport | None],
    ) -> None:
        task = asyncio.ensure_future(coroutine)
        self.live[run_id] = LiveRun(run_id, owner, control, task)
        self.hub.track(run_id, owner)
        task.add_done_callback(lambda done: self._ended(run_id, done))

    def _ended(self, run_id: str, task: asyncio.Task[RunReport | None]) -> None:
        self.live.pop(run_id, None)
        self._settling.add(asyncio.ensure_future(self.hub.settle(run_id)))
        self._settling = {t for t in self._settling if not t.done()}
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, CorralError):
            self.warn(f"run {run_id}: {' '.join(error.lines())}")
        elif error is not None:
            self.warn(f"run {run_id} failed: {error!r}")

    async def cancel(self, run: str) -> str:
        """Cancel a running run: one of ours through its control, a terminal's run by
        SIGINT to the corral process holding it (as Ctrl-C would)."""
        record = await asyncio.to_thread(self.hub.history.get_run, run)
        run_id = record.run.id
        live = self.live.get(run_id)
        if live is not None:
            live.control.cancel("cancelled through the API")
            return run_id
        if record.run.status is not RunStatus.RUNNING:
            raise ApiError(
                409, "conflict", f"run {run_id} is {record.run.status.value}: nothing to cancel"
            )
        from corral.execute.liveness import holder

        pid = holder(Path(record.run.log_root))
        if pid is None:
            raise ApiError(
                409,
                "conflict",
                f"run {run_id} is on record as running but no corral process holds it "
                "(it died): resume it instead",
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        return run_id

    async def resume(self, run: str, owner: str) -> str:
        """Finish an interrupted or failed run in a new run; its id."""
        self._refuse_when_stopping()
        resolved = await asyncio.to_thread(self.hub.history.resolve_run_id, run)
        if resolved in self.live:
            raise ApiError(409, "conflict", f"run {resolved} is running on this server")
        return await self._resume(resolved, owner)

    async def _resume(self, run_id: str, owner: str) -> str:
        from corral.app.resume import finish_run, plan_resume

        notes: list[str] = []
        try:
            resumed = await asyncio.to_thread(
                plan_resume,
                run_id,
                store_url=self.settings.store,
                directory=self.base_dir,
                echo=notes.append,
            )
        except UsageError as error:  # still running elsewhere
            raise ApiError(409, "conflict", " ".join(error.lines())) from None
        for note in notes:
            self.warn(note)
        if not resumed.plan.jobs:
            raise ApiError(409, "conflict", f"run {run_id}: every job already succeeded")
        new_id = new_run_id()
        control = RunControl()
        options = self._options(owner, new_id)
        live = [self.hub.publisher(new_id, owner)]
        self._start(
            new_id,
            owner,
            control,
            finish_run(resumed, options, control=control, subscribers=live),
        )
        return new_id

    async def adopt(self) -> list[str]:
        """Resume the runs a stopped server left running (recorded with args `serve`,
        no process holding them): the resume use case adopts their live jobs."""
        from corral.execute.liveness import holder

        try:
            running = await asyncio.to_thread(
                self.hub.history.list_runs, RunStatus.RUNNING, None, None, None
            )
            adopted = []
            for row in running:
                if holder(Path(row.log_root)) is not None:
                    continue  # alive: a terminal (or another server) runs it
                record = await asyncio.to_thread(self.hub.history.get_run, row.id)
                if record.args[:1] != (SERVED,):
                    continue  # a terminal's run: its user resumes it
                try:
                    adopted.append(await self._resume(row.id, row.user))
                except (ApiError, CorralError) as error:
                    message = error.message if isinstance(error, ApiError) else str(error)
                    self.warn(f"could not adopt run {row.id}: {message}")
            return adopted
        finally:
            self.adopted = True

    async def stop(self) -> None:
        """Stop accepting runs; the running ones are left to their supervision."""
        self.accepting = False

    def owner_of_live(self, run_id: str) -> str | None:
        live = self.live.get(run_id)
        return None if live is None else live.owner
