"""One child process: its own session, stdin closed, output spooled and split into lines,
stopped as a whole process group (SIGTERM, grace, SIGKILL), always reaped.

The child is started with `posix_spawn` (a vfork: cheap however large corral is) or,
when it must run in another directory, with `subprocess.Popen`; either way corral then
watches it directly: the pipes and a pidfd are registered with the event loop, output
arrives in chunks (no line-length limit, no reader task) and the exit is collected with
`waitpid`. asyncio's subprocess transports cost about twice as much per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.events.types import Stream
from corral.execute import reaper
from corral.execute.lines import LineSpool, block_sink
from corral.execute.spawning import SpawnError, resolve, spawn_message

__all__ = ["ChildProcess", "Exit", "OnLine", "SpawnError"]

# (stream name, line bytes, offset in that stream's log, cut short in memory?)
OnLine = Callable[[Stream, bytes, int, bool], None]

_CHUNK = 65536
_CHUNKS_PER_TURN = 16  # read at most 1 MiB from one pipe before letting others run
_HAS_PIDFD = hasattr(os, "pidfd_open")


@dataclass(frozen=True, slots=True)
class Exit:
    """How a child ended: exactly one of `code` and `signal` is set."""

    code: int | None
    signal: int | None


_DEVNULL: list[int] = []  # one read-only /dev/null for every child's stdin


def _devnull() -> int:
    if not _DEVNULL:
        _DEVNULL.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _DEVNULL[0]


def _same_dir(path: str) -> bool:
    """Whether `path` is corral's working directory (compared cheaply when spelled alike)."""
    here = os.getcwd()
    return path == here or os.path.realpath(path) == os.path.realpath(here)


class GroupStop:
    """How a job in its own process group is stopped, whoever started it (corral itself or
    the run's supervisor): `stop` and `kill_now` over the subclass's `_stop_group`."""

    pid: int | None
    stop_reason: str | None

    async def stop(self, reason: str, grace: float) -> None:
        """SIGTERM the whole group, wait up to `grace`, then SIGKILL. Idempotent."""
        if self.stop_reason is None:
            self.stop_reason = reason
        await self._stop_group(grace)

    def kill_now(self) -> None:
        """SIGKILL the whole group at once (second Ctrl-C)."""
        reaper.signal_group(self.pid, signal.SIGKILL)

    async def _stop_group(self, grace: float) -> None:
        raise NotImplementedError


class ChildProcess(GroupStop):
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
        compact_json: bool = False,
    ) -> None:
        self.argv = tuple(argv)
        self._cwd = cwd
        self._env = dict(env)
        self._log_dir = log_dir
        self._on_line = on_line
        self._keep = keep_line_bytes
        self._compact = compact_json  # stdout is an agent's JSON: shrink huge lines
        self._loop: asyncio.AbstractEventLoop | None = None
        self._spools: dict[int, LineSpool] = {}  # pipe read end -> its log
        self._exited: asyncio.Future[int] | None = None  # the wait status
        self._drained: asyncio.Future[None] | None = None
        self._pidfd: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.stop_reason: str | None = None
        self.last_output = time.monotonic()

    async def start(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        self._drained = loop.create_future()
        out_read, out_write = os.pipe()
        try:
            err_read, err_write = os.pipe()
        except BaseException:  # out of descriptors: do not leak the first pipe
            os.close(out_read)
            os.close(out_write)
            raise
        try:
            self.pid = self._spawn(out_write, err_write)
        except BaseException:
            for fd in (out_read, err_read):
                os.close(fd)
            raise
        finally:
            os.close(out_write)
            os.close(err_write)
        reaper.LEADERS.add(self.pid)
        logs = self._log_dir
        self._spools = {
            out_read: LineSpool(
                str(logs / "stdout.log"),
                self._sink("stdout"),
                self._keep,
                compact_json=self._compact,
                block=block_sink(self._on_line, "stdout"),
            ),
            err_read: LineSpool(
                str(logs / "stderr.log"),
                self._sink("stderr"),
                self._keep,
                block=block_sink(self._on_line, "stderr"),
            ),
        }
        for fd in self._spools:
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._readable, fd)
        self._watch_exit()
        return self.pid

    def _spawn(self, out_write: int, err_write: int) -> int:
        cwd = self._cwd
        if cwd is None or _same_dir(cwd):
            executable = resolve(self.argv[0], self._env)
            devnull = _devnull()
            try:
                return os.posix_spawn(
                    executable,
                    self.argv,
                    self._env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, devnull, 0),
                        (os.POSIX_SPAWN_DUP2, out_write, 1),
                        (os.POSIX_SPAWN_DUP2, err_write, 2),
                    ],
                    setsid=True,
                    setsigdef=(signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD),
                )
            except OSError as error:
                raise SpawnError(spawn_message(self.argv[0], error)) from None
        if not os.path.isdir(cwd):
            raise SpawnError(f"working directory not found: {cwd}")
        try:
            # posix_spawn cannot change directory (Python 3.11): Popen can, at a little more cost
            self._popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                start_new_session=True,
            )
        except OSError as error:
            raise SpawnError(spawn_message(self.argv[0], error)) from None
        return self._popen.pid

    def _sink(self, stream: Stream) -> Callable[[bytes, int, bool], None]:
        on_line = self._on_line

        def sink(line: bytes, offset: int, cut: bool) -> None:
            on_line(stream, line, offset, cut)

        return sink

    def _readable(self, fd: int) -> None:
        spool = self._spools[fd]
        for _ in range(_CHUNKS_PER_TURN):
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_pipe(fd)
                return
            self.last_output = time.monotonic()
            spool.feed(data)

    def _close_pipe(self, fd: int) -> None:
        assert self._loop is not None and self._drained is not None
        self._loop.remove_reader(fd)
        os.close(fd)
        self._spools.pop(fd).close()
        if not self._spools and not self._drained.done():
            self._drained.set_result(None)

    def _watch_exit(self) -> None:
        assert self._loop is not None and self.pid is not None
        if _HAS_PIDFD:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:
                self._pidfd = None  # a kernel before 5.3: poll instead
        if self._pidfd is not None:
            self._loop.add_reader(self._pidfd, self._collect)
        else:
            self._loop.call_later(0.02, self._collect)

    def _collect(self) -> None:
        """Reap the child if it has exited (called when its pidfd turns readable)."""
        assert self._loop is not None and self._exited is not None and self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 255 << 8  # reaped elsewhere: nothing more to learn
        if pid == 0:
            if self._pidfd is None:
                self._loop.call_later(0.02, self._collect)
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._popen is not None:
            self._popen.returncode = os.waitstatus_to_exitcode(status)  # it must not wait again
        if not self._exited.done():
            self._exited.set_result(status)

    async def wait(self) -> Exit:
        """Wait for the child to exit and its output to drain; stop what it left behind."""
        assert self._exited is not None and self._drained is not None
        status = await asyncio.shield(self._exited)
        reaper.LEADERS.discard(self.pid or 0)
        # the leader is gone; anything still in its group is a leftover grandchild
        if _group_alive(self.pid):
            await self._stop_group(grace=0.5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), 2.0)
        for fd in list(self._spools):
            self._close_pipe(fd)  # a daemon outside the group still holds the pipe: let go
        code = os.waitstatus_to_exitcode(status)
        return Exit(None, -code) if code < 0 else Exit(code, None)

    async def _stop_group(self, grace: float) -> None:
        exited = self._exited
        assert exited is not None

        def send(sig: int) -> bool:
            return reaper.signal_group(self.pid, sig)

        def alive() -> bool:
            return not exited.done() or _group_alive(self.pid)

        await reaper.stop_async(send, alive, grace)


def _group_alive(pgid: int | None) -> bool:
    # dead grandchildren re-parented to us stay zombies (still group members) until reaped
    reaper.reap_orphans()
    return reaper.signal_group(pgid, 0)
