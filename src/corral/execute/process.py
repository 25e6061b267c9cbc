"""One child process: its own session, stdin closed, output spooled and split into lines,
stopped as a whole process group (SIGTERM, grace, SIGKILL), always reaped.

Built on asyncio's low-level subprocess protocol: output arrives as chunks in
`pipe_data_received`, so there is no line-length limit and no reader task per pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.execute import reaper
from corral.execute.lines import LineSpool

# (stream name, line bytes, offset in that stream's log, cut short in memory?)
OnLine = Callable[[str, bytes, int, bool], None]


@dataclass(frozen=True, slots=True)
class Exit:
    """How a child ended: exactly one of `code` and `signal` is set."""

    code: int | None
    signal: int | None


class SpawnError(Exception):
    """The command could not be started; the message says why and how to fix it."""


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, spools: dict[int, LineSpool], exited: asyncio.Future[None]) -> None:
        self._spools = spools
        self._exited = exited
        self._open = {1, 2}
        self.drained: asyncio.Future[None] = exited.get_loop().create_future()
        self.last_output = time.monotonic()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        self.last_output = time.monotonic()
        self._spools[fd].feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self._exited.done():
            self._exited.set_result(None)


def _spawn_message(argv0: str, error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return f"command not found: {argv0} (check the spelling and PATH, or give a full path)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not executable: {argv0} (chmod +x it, or run it through its interpreter)"
    if error.errno == errno.ENOEXEC:
        return f"not a program: {argv0} (add a #! line or run it through its interpreter)"
    return f"cannot start {argv0}: {error.strerror or error}"


class ChildProcess:
    """A started child. Use `start()`, then `wait()`; `stop()` at any time."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        log_dir: Path,
        on_line: OnLine,
        keep_line_bytes: int,
    ) -> None:
        self.argv = tuple(argv)
        self._cwd = cwd
        self._env = dict(env)
        self._log_dir = log_dir
        self._on_line = on_line
        self._keep = keep_line_bytes
        self._transport: asyncio.SubprocessTransport | None = None
        self._protocol: _Protocol | None = None
        self._exited: asyncio.Future[None] | None = None
        self._spools: dict[int, LineSpool] = {}
        self.pid: int | None = None
        self.stop_reason: str | None = None

    @property
    def last_output(self) -> float:
        return self._protocol.last_output if self._protocol else time.monotonic()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._spools = {
            1: LineSpool(str(self._log_dir / "stdout.log"), self._sink("stdout"), self._keep),
            2: LineSpool(str(self._log_dir / "stderr.log"), self._sink("stderr"), self._keep),
        }
        self._exited = loop.create_future()
        exited = self._exited
        spools = self._spools
        reaper.spawning(+1)
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(spools, exited),
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._cwd,
                env=self._env,
                start_new_session=True,
            )
        except OSError as error:
            reaper.spawning(-1)
            self._close_spools()
            if error.filename is not None and error.filename == self._cwd:
                raise SpawnError(f"working directory not found: {self._cwd}") from None
            raise SpawnError(_spawn_message(self.argv[0], error)) from None
        self._transport = transport
        self._protocol = protocol
        self.pid = transport.get_pid()
        reaper.LEADERS.add(self.pid)
        reaper.spawning(-1)
        return self.pid

    def _sink(self, stream: str) -> Callable[[bytes, int, bool], None]:
        on_line = self._on_line

        def sink(line: bytes, offset: int, cut: bool) -> None:
            on_line(stream, line, offset, cut)

        return sink

    async def wait(self) -> Exit:
        """Wait for the child to exit and its output to drain; stop what it left behind."""
        assert (
            self._transport is not None and self._exited is not None and self._protocol is not None
        )
        await asyncio.shield(self._exited)
        # the leader is gone; anything still in its group is a leftover grandchild
        if _group_alive(self.pid):
            await self._stop_group(grace=0.5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._protocol.drained), 2.0)
        code = self._transport.get_returncode()
        self._transport.close()
        reaper.LEADERS.discard(self.pid or 0)
        self._close_spools()
        if code is not None and code < 0:
            return Exit(None, -code)
        return Exit(code, None)

    async def stop(self, reason: str, grace: float) -> None:
        """SIGTERM the whole group, wait up to `grace`, then SIGKILL. Idempotent."""
        if self.stop_reason is None:
            self.stop_reason = reason
        await self._stop_group(grace)

    def kill_now(self) -> None:
        """SIGKILL the whole group at once (second Ctrl-C)."""
        _signal_group(self.pid, signal.SIGKILL)

    async def _stop_group(self, grace: float) -> None:
        assert self._exited is not None
        if not _signal_group(self.pid, signal.SIGTERM):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self._exited.done() and not _group_alive(self.pid):
                return
            await asyncio.sleep(0.02)
        _signal_group(self.pid, signal.SIGKILL)

    def _close_spools(self) -> None:
        for spool in self._spools.values():
            spool.close()
        self._spools = {}


def _signal_group(pgid: int | None, sig: int) -> bool:
    if pgid is None:
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int | None) -> bool:
    # dead grandchildren re-parented to us stay zombies (still group members) until reaped
    reaper.reap_orphans()
    return _signal_group(pgid, 0)
