"""The runs a server runs: submit, cancel, resume, and adopt after a restart.

Each run is a worker process (`corral.server.worker`) that calls the run use case
(`corral.app.run.start_run`, or `corral.app.resume.resume_run`) and records into the
history the server follows. Workers start in their own session and outlive the server:
a server stopped mid-run leaves them running, and the next one serves their events from
the history. While both live, a worker feeds each event straight to its server's hub
through a pipe, numbered as the history will hold it (`corral.server.feed`).

Runs are recorded with args `("serve",)`; a run on record as running that no process
holds any more (its worker was killed) is adopted at start through the resume use case.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from corral.app.header import new_run_id
from corral.app.location import corral_dir
from corral.errors import CorralError, NotFoundError, UsageError
from corral.models import RunStatus
from corral.private import private_dir, private_file
from corral.selfexec import module_argv, module_env
from corral.server.errors import ApiError
from corral.server.feed import read_feed
from corral.server.hub import EventHub, LiveFrame
from corral.server.settings import ServerSettings
from corral.server.worker import SERVED, RunChoices, WorkOrder

CLOSING_S = 10.0  # how long a finished run's worker may take to exit
ON_RECORD_S = 60.0  # how long a worker may take to record its run (imports, a slow disk)
# the feed pipe's size: a run's first burst (every job waiting) goes through at once
FEED_PIPE_BYTES = 1024 * 1024


def _check_executor(choices: RunChoices) -> None:
    from corral.execute.registry import executor_names

    if choices.executor is not None and choices.executor not in executor_names():
        known = ", ".join(executor_names())
        raise UsageError(f"executor: no executor {choices.executor!r} here (known: {known})")


@dataclass
class LiveRun:
    """A worker this server started (and reaps)."""

    run_id: str
    owner: str
    process: asyncio.subprocess.Process


class RunManager:
    """Starts workers, cancels runs, and keeps hold of its workers until they end."""

    def __init__(
        self, settings: ServerSettings, hub: EventHub, warn: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.warn = warn
        self.live: dict[str, LiveRun] = {}
        self.accepting = True
        self.adopted = False  # the start-up adoption is over (/readyz)
        self.base_dir = settings.directory.resolve()
        self._reaping: set[asyncio.Task[None]] = set()
        self._feeds: set[asyncio.Task[None]] = set()

    def _refuse_when_stopping(self) -> None:
        if not self.accepting:
            raise ApiError(503, "unavailable", "the server is shutting down; retry shortly")

    def _order(self, owner: str, **what: object) -> WorkOrder:
        now = time.time()  # the run's id and its start say the same second
        return WorkOrder(
            run_id=new_run_id(now),
            started_at=now,
            owner=owner,
            base_dir=str(self.base_dir),
            store=self.settings.store,
            **what,  # type: ignore[arg-type]  # the flow, or the run to resume
        )

    async def submit(
        self,
        text: str,
        filename: str,
        owner: str,
        *,
        rehearse: bool,
        choices: RunChoices | None = None,
    ) -> str:
        """Validate and start a flow, planned with `choices` (`corral run`'s --only,
        --from, --jobs...) as the CLI plans it; its run id. FlowError (422) or UsageError
        (400: an unknown job to select, an unknown executor) before anything runs."""
        self._refuse_when_stopping()
        from corral.app.check import check_flow_text, missing_tools
        from corral.execute.prepare import default_environ
        from corral.execute.registry import DEFAULT_EXECUTOR

        chosen = choices or RunChoices()
        loaded, plan = await asyncio.to_thread(
            check_flow_text,
            text,
            filename,
            base_dir=self.base_dir,
            only=chosen.only,
            from_=chosen.from_,
        )
        _check_executor(chosen)
        executor = chosen.executor or loaded.spec.executor or DEFAULT_EXECUTOR
        if not rehearse and executor == DEFAULT_EXECUTOR:
            await asyncio.to_thread(missing_tools, plan, default_environ())
        order = self._order(owner, flow=text, filename=filename, rehearse=rehearse, choices=chosen)
        await self._spawn(order)
        return order.run_id

    async def _spawn(self, order: WorkOrder) -> None:
        logs = private_dir(corral_dir(self.base_dir) / "server", below=self.base_dir)
        feed, live_fd = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux: room for a burst
            fcntl.fcntl(live_fd, fcntl.F_SETPIPE_SZ, FEED_PIPE_BYTES)
        order = replace(order, live_fd=live_fd)
        try:
            with private_file(logs / f"{order.run_id}.log").open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *module_argv("corral.server.worker"),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    env=module_env(),
                    cwd=self.base_dir,
                    start_new_session=True,  # a signal to the server's group does not reach it
                    pass_fds=(live_fd,),
                )
        except BaseException:
            os.close(feed)
            raise
        finally:
            os.close(live_fd)  # the worker's now: the feed ends when it exits
        self._follow_feed(order, feed)
        assert process.stdin is not None
        process.stdin.write(order.encode())
        process.stdin.close()
        self.live[order.run_id] = LiveRun(order.run_id, order.owner, process)
        self.hub.track(order.run_id, order.owner)
        task = asyncio.ensure_future(self._reap(order.run_id, process))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)
        await self._on_record(order.run_id, process)

    def _follow_feed(self, order: WorkOrder, fd: int) -> None:
        """Hand the worker's feed to the hub until it ends; then the hub follows the run
        from the history."""
        run_id, owner = order.run_id, order.owner

        def on_line(line: dict[str, Any]) -> None:
            if line.get("run_id") != run_id:
                return  # only its own run: another run is followed from the history
            event = orjson.dumps(line["event"])
            frame = LiveFrame(
                run_id, int(line["seq"]), float(line["ts"]), owner, str(line["type"]), event
            )
            self.hub.feed(frame)

        async def follow() -> None:
            try:
                await read_feed(fd, on_line)
            except (KeyError, TypeError, ValueError, OSError) as error:
                self.warn(f"run {run_id}: its live feed broke ({error}); following its history")
            finally:
                self.hub.unfeed(run_id)

        task = asyncio.ensure_future(follow())
        self._feeds.add(task)
        task.add_done_callback(self._feeds.discard)

    async def _on_record(self, run_id: str, process: asyncio.subprocess.Process) -> None:
        """Wait until the worker has recorded its run, so that the id the client gets
        names a run every endpoint knows; a worker that dies first is a 500 that says
        where its log is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ON_RECORD_S
        while True:
            try:
                await asyncio.to_thread(self.hub.history.resolve_run_id, run_id)
                return
            except NotFoundError:
                pass
            if process.returncode is not None or loop.time() > deadline:
                log = corral_dir(self.base_dir) / "server" / f"{run_id}.log"
                raise ApiError(500, "run_failed_to_start", f"run {run_id} did not start; see {log}")
            await asyncio.sleep(0.02)

    async def _reap(self, run_id: str, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        self.live.pop(run_id, None)
        self.hub.poke()
        if code not in (0, 1, 130, 143):
            log = corral_dir(self.base_dir) / "server" / f"{run_id}.log"
            self.warn(f"run {run_id}: its worker exited {code} (see {log})")

    async def cancel(self, run: str) -> str:
        """Cancel a running run: SIGINT to the process running it (this server's worker
        or a terminal's `corral run`), as Ctrl-C would."""
        record = await asyncio.to_thread(self.hub.history.get_run, run)
        run_id = record.run.id
        if record.run.status is not RunStatus.RUNNING:
            raise ApiError(
                409, "conflict", f"run {run_id} is {record.run.status.value}: nothing to cancel"
            )
        live = self.live.get(run_id)
        if live is not None and live.process.returncode is None:
            live.process.send_signal(signal.SIGINT)
            return run_id
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

    async def resume(self, run: str, owner: str, choices: RunChoices | None = None) -> str:
        """Finish an interrupted or failed run in a new run (run with `choices`); its id."""
        self._refuse_when_stopping()
        if choices is not None:
            _check_executor(choices)
        record = await asyncio.to_thread(self.hub.history.get_run, run)
        resolved = record.run.id
        live = self.live.get(resolved)
        if live is not None:
            if record.run.status is RunStatus.RUNNING:
                raise ApiError(409, "conflict", f"run {resolved} is running on this server")
            # over on record, its worker still closing: a moment, not a conflict
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.process.wait(), CLOSING_S)
        return await self._resume(resolved, owner, choices)

    async def _resume(self, run_id: str, owner: str, choices: RunChoices | None = None) -> str:
        from corral.app.resume import plan_resume

        notes: list[str] = []
        try:
            # answered here (409s) before the worker resumes it for real
            resumed = await asyncio.to_thread(
                plan_resume,
                run_id,
                store_url=self.settings.store,
                directory=self.base_dir,
                echo=notes.append,
            )
        except UsageError as error:  # still running elsewhere
            raise ApiError(409, "conflict", " ".join(error.lines())) from None
        # the check holds the run's resume lock: let go, the worker takes it for real
        resumed.release()
        for note in notes:
            self.warn(note)
        if not resumed.plan.jobs:
            raise ApiError(409, "conflict", f"run {run_id}: every job already succeeded")
        order = self._order(owner, resume=run_id, choices=choices or RunChoices())
        await self._spawn(order)
        return order.run_id

    async def adopt(self) -> list[str]:
        """Resume the runs of a server whose worker died (on record as running with args
        `serve`, no process holding them). A worker that outlived its server still holds
        its run: the history serves its events and nothing is done."""
        from corral.execute.liveness import holder

        try:
            running = await asyncio.to_thread(
                self.hub.history.list_runs, RunStatus.RUNNING, None, None, None
            )
            adopted = []
            for row in running:
                if holder(Path(row.log_root)) is not None:
                    continue  # alive: a worker, a terminal, another server
                record = await asyncio.to_thread(self.hub.history.get_run, row.id)
                if record.args[:1] != (SERVED,):
                    continue  # a terminal's run: its user resumes it
                try:
                    adopted.append(await self._resume(row.id, row.user))
                except (ApiError, CorralError) as error:
                    message = error.message
                    self.warn(f"could not adopt run {row.id}: {message}")
            return adopted
        finally:
            self.adopted = True

    async def stop(self) -> None:
        """Stop accepting runs; the running ones go on in their workers."""
        self.accepting = False

    async def close(self) -> None:
        """Let go of the workers' feeds (they go on, writing their history only)."""
        for task in list(self._feeds):
            task.cancel()
        for task in list(self._feeds):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
