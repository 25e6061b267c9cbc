"""corral's side of the per-run supervisor (`corral.execute.supervisor`).

`SupervisorClient` starts the supervisor and talks to it; `SupervisedChild` is one job
under it, with the interface the local executor drives (`start`, `wait`, `stop`,
`kill_now`, `last_output`): it follows the job's log files as they grow (its output goes
straight to them, not through corral) and ends when the supervisor reports the job's
exit, which it does only once the exit is on disk. `AdoptedChild` is the same for a job
a dead corral left running or finished: it is followed from its log files and its exit
is read from the supervisor's records (`corral resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from corral.events.types import Stream
from corral.execute import early, reaper
from corral.execute.executor import StopHandle, Withdrawn
from corral.execute.lines import LineSpool, block_sink
from corral.execute.process import Exit, GroupStop, OnLine, SpawnError
from corral.execute.waiting import first_done
from corral.selfexec import module_argv, module_env

_CHUNK = 1 << 20
_POLL_MIN = 0.02  # how often a job's logs are looked at while it prints
_POLL_MAX = 0.1  # ... and at most this long apart while it is quiet (a budget kill waits on it)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What a supervisor recorded of one attempt (`key` is `job#attempt`)."""

    key: str
    pid: int
    started_at: float
    exit: Exit | None = None
    ended_at: float | None = None
    orphan_killed: bool = False


def attempt_key(job: str, attempt: int) -> str:
    return f"{job}#{attempt}"


def read_records(log_root: Path, offset: int = 0) -> tuple[dict[str, JobRecord], int]:
    """The supervisor's records of a run by key, and the offset read up to."""
    # the supervisor's own module (its process runs it): here only for its file names
    from corral.execute.supervisor import RECORDS

    found: dict[str, JobRecord] = {}
    try:
        with open(log_root / RECORDS, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return found, offset
    end = data.rfind(b"\n") + 1  # a line being written is read next time
    for line in data[:end].splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        merge_record(found, entry)
    return found, offset + end


def merge_record(found: dict[str, JobRecord], entry: dict[str, Any]) -> None:
    key = entry["key"]
    if entry["e"] == "start":
        found[key] = JobRecord(key, entry["pid"], entry["at"])
        return
    code, sig = entry.get("code"), entry.get("signal")
    earlier = found.get(key)
    found[key] = JobRecord(
        key,
        entry["pid"],
        earlier.started_at if earlier else entry["at"],
        Exit(code, sig),
        entry["at"],
        bool(entry.get("orphan_killed")),
    )


def supervisor_alive(log_root: Path) -> int | None:
    """The pid of the run's supervisor while it runs, else None."""
    from corral.execute.liveness import lock_holder
    from corral.execute.supervisor import LOCK

    return lock_holder(log_root / LOCK)


class SupervisorClient:
    """Starts the run's supervisor and carries corral's requests to it."""

    def __init__(self, log_root: Path, on_orphan: str, grace: float) -> None:
        self.log_root = log_root
        self._on_orphan = on_orphan
        self._grace = grace
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._exits: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._swept: asyncio.Future[dict[str, Any]] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # requests of this loop turn, sent together at its end (`_flush`): one send (a
        # syscall, and a wake-up of the supervisor) however many jobs the turn launched
        self._outbox: list[bytes] = []

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        ours = self._spawn()
        self._sock = ours
        ours.setblocking(False)
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        # not waiting for its `ready`: requests queue on the socket while it starts, and a
        # supervisor that dies at once fails them (`_lost`)

    def _spawn(self) -> socket.socket:
        """Start the supervisor process (a fork and an exec, once per run), or begin the
        one this command started early (`corral.execute.early`); our end of the socket
        pair."""
        self.log_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = early.take()
        if found is not None:
            begin = {
                "op": "begin",
                "root": str(self.log_root),
                "on_orphan": self._on_orphan,
                "grace": self._grace,
            }
            try:
                found.sock.sendall(orjson.dumps(begin) + b"\n")
            except OSError:
                found.kill()  # it died after all: start one as usual
            else:
                self._process = found.process
                self.pid = found.process.pid
                reaper.LEADERS.add(self.pid)  # corral's own sweep must leave it alone
                return found.sock
        ours, theirs = socket.socketpair()
        log = os.open(
            self.log_root / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        try:
            self._process = subprocess.Popen(
                [
                    *module_argv("corral.execute.supervisor"),
                    str(self.log_root),
                    self._on_orphan,
                    str(self._grace),
                    str(theirs.fileno()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=module_env(),
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # no terminal signal reaches it
            )
        finally:
            os.close(log)
            theirs.close()
        self.pid = self._process.pid
        reaper.LEADERS.add(self.pid)  # corral's own sweep must leave it alone
        return ours

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._dispatch(orjson.loads(line))

    def _dispatch(self, message: dict[str, Any]) -> None:
        operation = message["op"]
        if operation in ("started", "failed"):
            future = self._waiting.pop(message["key"], None)
            if future is not None and not future.done():
                future.set_result(message)
        elif operation == "exit":
            self._exit_future(message["key"]).set_result(message)
        elif operation == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)
        elif operation == "swept" and self._swept is not None and not self._swept.done():
            self._swept.set_result(message)

    def _lost(self) -> None:
        """The supervisor is gone (killed): nothing more will come."""
        assert self._sock is not None
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        self._outbox.clear()
        lost = {"op": "lost"}
        for future in [*self._waiting.values(), *self._exits.values()]:
            if not future.done():
                future.set_result(lost)
        for waiter in (self._ready, self._swept):
            if waiter is not None and not waiter.done():
                waiter.set_exception(RuntimeError("the run's supervisor died"))

    def _exit_future(self, key: str) -> asyncio.Future[dict[str, Any]]:
        future = self._exits.get(key)
        if future is None:
            future = self._exits[key] = asyncio.get_running_loop().create_future()
        return future

    def _send(self, message: dict[str, Any]) -> None:
        """Queue `message`; it goes with the others of this loop turn (`_flush`)."""
        if self._sock is None:
            raise SpawnError("the run's supervisor died; see supervisor.log in the run's logs")
        if not self._outbox:
            assert self._loop is not None  # started
            self._loop.call_soon(self._flush)
        self._outbox.append(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE))

    def _flush(self) -> None:
        """Send the queued requests, in order, in one send; a supervisor that cannot be
        written to is gone (`_lost`: every request waiting for it fails)."""
        if not self._outbox:
            return
        data = b"".join(self._outbox)
        self._outbox.clear()
        if self._sock is None:
            return
        try:
            try:
                sent = self._sock.send(data)  # small messages on a local socket: whole at once
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            # the supervisor is behind (its buffer is full): wait for it to take the rest
            self._sock.setblocking(True)
            try:
                self._sock.sendall(data[sent:])
            finally:
                self._sock.setblocking(False)
        except OSError:
            self._lost()

    async def spawn(
        self,
        key: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        out: str | Path,
        err: str | Path,
        slots: int = 0,
    ) -> int:
        """Have the supervisor start a job; its pid. With `slots`, the request waits in
        the supervisor's queue until fewer than that many jobs run (`withdraw` takes it
        back meanwhile: `Withdrawn` is raised then)."""
        return started_pid(await self.submit(key, argv, env, cwd, out, err, slots))

    def submit(
        self,
        key: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        out: str | Path,
        err: str | Path,
        slots: int = 0,
    ) -> asyncio.Future[dict[str, Any]]:
        """Send `spawn`'s request; the future of the supervisor's reply (`started_pid`
        reads it), so a caller can wait for it next to something else with no task."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self._exits.pop(key, None)
        message: dict[str, Any] = {
            "op": "spawn",
            "key": key,
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd,
            "out": str(out),
            "err": str(err),
        }
        if slots:
            message["slots"] = slots
        self._send(message)
        return future

    def withdraw(self, key: str) -> None:
        """Take a queued spawn request back if it has not started yet."""
        with contextlib.suppress(SpawnError, OSError):
            self._send({"op": "withdraw", "key": key})

    def exited(self, key: str) -> asyncio.Future[dict[str, Any]]:
        return self._exit_future(key)

    def term_orphans(self) -> None:
        with contextlib.suppress(SpawnError, OSError):
            self._send({"op": "term_orphans"})

    async def sweep(self, grace: float) -> None:
        """Stop what the jobs left behind (TERM, grace, KILL) and wait until it is done."""
        if self._sock is None:
            return
        self._swept = asyncio.get_running_loop().create_future()
        self._send({"op": "sweep", "grace": grace})
        with contextlib.suppress(RuntimeError):
            await self._swept

    async def close(self) -> None:
        """Let go: the supervisor exits once its jobs are done (all are, at a run's end)."""
        self._flush()
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._process is not None:
            process = self._process
            await wait_exit(process)
            reaper.LEADERS.discard(process.pid)


def started_pid(reply: dict[str, Any]) -> int:
    """The pid in the supervisor's reply to a spawn request; `Withdrawn` when a withdraw
    took the request back, `SpawnError` when the job could not start."""
    if reply["op"] != "started":
        if reply.get("withdrawn"):
            raise Withdrawn(reply.get("key", ""))
        raise SpawnError(reply.get("message", "the run's supervisor died"))
    return int(reply["pid"])


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait for `process` to end and reap it; its exit code (-N for signal N).

    Its pidfd turns readable when it exits (Linux 5.3+), so the event loop waits with no
    thread (a thread pool would be started for this alone, then shut down as asyncio.run
    returns). Elsewhere, or without pidfds, `wait()` runs on a thread as before.
    """
    if process.poll() is not None:
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd_open (not Linux, or a kernel before 5.3)
        return await asyncio.to_thread(process.wait)
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pidfd, _settle, exited)
    try:
        await exited  # readable at once if it ended before this was registered
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return process.wait()  # it has exited: reaps without blocking


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _LogFollower:
    """Reads one of a job's log files as it grows and splits it into lines."""

    def __init__(
        self, path: str, stream: Stream, on_line: OnLine, keep: int, *, compact_json: bool
    ) -> None:
        self._path = path
        self._fd = -1
        self._stream = stream
        self._on_line = on_line
        self._keep = keep
        self._compact_json = compact_json
        # made when the log is first opened: a log that stays empty (most short jobs')
        # costs no spool, and a fresh spool's close emits nothing
        self._spool: LineSpool | None = None

    def _make_spool(self) -> LineSpool:
        on_line, stream = self._on_line, self._stream

        def sink(line: bytes, offset: int, cut: bool) -> None:
            on_line(stream, line, offset, cut)

        return LineSpool(
            None,
            sink,
            self._keep,
            compact_json=self._compact_json,
            block=block_sink(on_line, stream),
        )

    def read(self, size: int | None = None) -> bool:
        """Read what is new; whether there was anything. `size`: the log's size as the
        supervisor saw it once the job ended; an empty log never opened is not opened."""
        if self._fd < 0:
            if size == 0:
                return False
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
            self._spool = self._make_spool()
        spool = self._spool
        assert spool is not None  # made with the first open
        got = False
        while data := os.read(self._fd, _CHUNK):
            spool.feed(data)
            got = True
        return got

    def close(self, size: int | None = None) -> None:
        self.read(size)
        if self._spool is not None:
            self._spool.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _FollowedChild(GroupStop):
    """A job whose output is read from its log files and whose exit comes from elsewhere."""

    def __init__(
        self, log_dir: Path, on_line: OnLine, keep_line_bytes: int, *, compact_json: bool = False
    ) -> None:
        # as text, joined once: a job's paths are made per job (pathlib's `/` is not cheap)
        folder = str(log_dir)
        self._logs = (os.path.join(folder, "stdout.log"), os.path.join(folder, "stderr.log"))
        self._followers = [
            _LogFollower(
                self._logs[0],
                "stdout",
                on_line,
                keep_line_bytes,
                compact_json=compact_json,
            ),
            _LogFollower(
                self._logs[1],
                "stderr",
                on_line,
                keep_line_bytes,
                compact_json=compact_json,
            ),
        ]
        self.pid: int | None = None
        self.stop_reason: str | None = None
        self.last_output = time.monotonic()
        self._exit: Exit | None = None
        self._closed = False
        self._log_dir = log_dir
        self.disk_full = False  # its log folder's disk was full when it ended
        # what the supervisor saw once the job ended, when it said (else corral looks):
        # its logs' sizes, whether its group has leftovers, whether the disk is full
        self._ended: dict[str, Any] = {}

    def _poll_exit(self) -> Exit | None:
        raise NotImplementedError

    async def _exit_ready(self, pause: float) -> None:
        await asyncio.sleep(pause)

    def _read(self) -> None:
        if any([follower.read() for follower in self._followers]):
            self.last_output = time.monotonic()

    async def wait(self) -> Exit:
        """Follow the logs until the job's exit is known, then read them to their end.
        The first look is after one pause: a job that ends sooner is read once, at its end."""
        pause = _POLL_MIN
        while (found := self._poll_exit()) is None:
            await self._exit_ready(pause)
            if (found := self._poll_exit()) is not None:
                break
            before = self.last_output
            self._read()
            pause = _POLL_MIN if self.last_output != before else min(pause * 2, _POLL_MAX)
        self._exit = found
        ended = self._ended
        full = ended.get("disk_full")
        if full is None:  # the supervisor could not say: look now
            from corral.execute.supervisor import disk_full

            full = disk_full(self._log_dir)
        self.disk_full = bool(full)
        # the leader is gone; anything still in its group is a leftover grandchild (the
        # supervisor looked after collecting every child: an empty group stays empty)
        leftovers = ended.get("group", True)
        if self.pid is not None and leftovers and reaper.signal_group(self.pid, 0):
            await self._stop_group(0.5)
            ended = {}  # the leftovers may have written since: read whatever is there
        sizes = ended.get("sizes") or [None, None]
        if not self._closed:
            self._closed = True
            for follower, size in zip(self._followers, sizes, strict=True):
                follower.close(size)
        return found

    async def _stop_group(self, grace: float) -> None:
        pid = self.pid

        def send(sig: int) -> bool:
            return reaper.signal_group(pid, sig)

        def alive() -> bool:
            return reaper.signal_group(pid, 0)

        await reaper.stop_async(send, alive, grace)


class SupervisedChild(_FollowedChild):
    """A job the run's supervisor starts (see the module docstring)."""

    def __init__(
        self,
        client: SupervisorClient,
        key: str,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str],
        log_dir: Path,
        on_line: OnLine,
        keep_line_bytes: int,
        compact_json: bool = False,
        slots: int = 0,
    ) -> None:
        super().__init__(log_dir, on_line, keep_line_bytes, compact_json=compact_json)
        self._client = client
        self._key = key
        self._slots = slots  # > 0: queued in the supervisor until a slot is free
        self._argv = tuple(argv)
        self._cwd = cwd
        self._env = env
        self._exited: asyncio.Future[dict[str, Any]] | None = None

    def _submit(self) -> asyncio.Future[dict[str, Any]]:
        return self._client.submit(
            self._key, self._argv, self._env, self._cwd, *self._logs, self._slots
        )

    def _started(self, reply: dict[str, Any]) -> int:
        self.pid = started_pid(reply)
        self._exited = self._client.exited(self._key)
        return self.pid

    async def start(self) -> int:
        return self._started(await self._submit())

    async def start_or_withdraw(self, stop: StopHandle) -> int:
        """`start`, for a queued request: a stop requested while it waits for a slot
        withdraws it (`Withdrawn`), unless it started meanwhile (then it is stopped as
        any running job is). No task and no `asyncio.wait`: the stop handle calls the
        withdrawal itself."""
        reply = self._submit()

        def withdraw() -> None:
            if not reply.done():
                self._client.withdraw(self._key)

        stop.on_request(withdraw)
        try:
            answer = await reply
        except asyncio.CancelledError:
            self._client.withdraw(self._key)
            raise
        return self._started(answer)

    def _poll_exit(self) -> Exit | None:
        assert self._exited is not None
        if not self._exited.done():
            return None
        message = self._exited.result()
        if message["op"] == "lost":
            return Exit(None, signal.SIGKILL)  # the supervisor died: the exit is unknown
        self._ended = message
        return Exit(message["code"], message["signal"])

    async def _exit_ready(self, pause: float) -> None:
        assert self._exited is not None
        # cancels nothing, as asyncio.wait (wait_for would: no shield)
        await first_done((self._exited,), pause)


class AdoptedChild(_FollowedChild):
    """A job a dead corral left behind, followed again from its logs and the supervisor's
    records: `record.exit` is set when it ended while no corral was there."""

    def __init__(
        self,
        record: JobRecord,
        log_root: Path,
        log_dir: Path,
        on_line: OnLine,
        keep_line_bytes: int,
        compact_json: bool = False,
    ) -> None:
        super().__init__(log_dir, on_line, keep_line_bytes, compact_json=compact_json)
        self.pid = record.pid
        self.record = record
        self._log_root = log_root
        self._offset = 0

    def _poll_exit(self) -> Exit | None:
        if self.record.exit is not None:
            return self.record.exit
        records, self._offset = read_records(self._log_root, self._offset)
        found = records.get(self.record.key)
        if found is not None and found.exit is not None:
            self.record = found
            return found.exit
        if supervisor_alive(self._log_root) is None and not reaper.signal_group(self.pid, 0):
            # the supervisor is gone too and never wrote the exit: it is unknown
            records, _ = read_records(self._log_root)
            found = records.get(self.record.key)
            if found is not None and found.exit is not None:
                self.record = found
                return found.exit
            return Exit(None, signal.SIGKILL)
        return None

    async def _exit_ready(self, pause: float) -> None:
        await asyncio.sleep(min(pause, 0.1))
