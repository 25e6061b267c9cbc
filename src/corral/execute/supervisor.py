"""The per-run supervisor: the parent of every job of one run, independent of corral.

corral starts it once per run (`python -m corral.execute.supervisor LOG_ROOT ON_ORPHAN
GRACE FD`, in its own session, with one end of a socket pair as FD). It spawns each job
corral asks for with the job's stdout and stderr opened straight on its log files, so
output reaches the logs whether corral lives or not; it is the jobs' parent and a child
subreaper, so it alone collects their exit statuses and every daemon they leave; and it
appends each start and each exit (code, signal, end time) to `supervisor.jsonl` in the
run's log folder, exits fsynced before corral hears of them (by a second thread, so the
main loop goes on starting jobs while the disk syncs). `corral resume` reads that file
to adopt what finished while no corral was there (see docs/durability.md).

When corral goes away (its end of the socket closes, kill -9 included) the supervisor
keeps its jobs running (`on_orphan: adopt`) or stops them (`kill`), records how each
ended, stops what they left behind and exits once no job is left. It holds an exclusive
lock on `supervisor.lock` for its whole life, so anyone can tell whether it still runs.

Messages are JSON lines, compact and UTF-8, byte for byte what orjson writes (the
supervisor uses the standard library's `json`: it starts before every run's first job,
and orjson's import costs it twice as much, with dataclasses, inspect, uuid and
datetime; `pathlib` is not imported either).

corral -> supervisor: `spawn` (key, argv, env, cwd, out, err; the folder of `out` is
created here, so corral's event loop makes no directory per job; with `slots` N the
request waits in a queue until fewer than N jobs run, and the supervisor starts it as
soon as a job's exit frees a slot, with no round trip through corral), `withdraw` (key:
a queued request that has not started is dropped), `term_orphans`, `sweep` (grace).
supervisor -> corral: `ready`, `started` (key, pid), `failed` (key, message; with
`withdrawn` when a withdraw took it from the queue), `exit` (key, pid, code, signal,
ended_at, and what corral would otherwise ask the kernel itself once the job ended:
`sizes`, the bytes in its two logs; `group`, whether anything is left in its process
group; `disk_full`), `swept`.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from corral.execute import reaper
from corral.execute.spawning import SpawnError, resolve, spawn_message

if TYPE_CHECKING:
    from pathlib import Path  # not imported at run time: the supervisor starts faster

RECORDS = "supervisor.jsonl"
LOCK = "supervisor.lock"
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_LOG_MODE = 0o600  # private, like every file corral writes (docs/security.md)
# signals a job starts with their default action (the supervisor ignores some of them)
_DEFAULT_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGPIPE,
    signal.SIGCHLD,
)


class Supervisor:
    """The supervisor's state and loop (see the module docstring)."""

    def __init__(self, root: str | Path, on_orphan: str, grace: float, sock: socket.socket) -> None:
        self.root = root
        self.on_orphan = on_orphan
        self.grace = grace
        self.sock: socket.socket | None = sock
        self.jobs: dict[int, str] = {}  # leader pid -> key
        self.logs: dict[int, tuple[str, str]] = {}  # leader pid -> its stdout, stderr logs
        records = os.path.join(root, RECORDS)
        self.records = os.open(records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.buffer = b""
        # what one turn of the main loop has for the records and for corral, written and
        # sent together at its end (`_flush`): one write and one send however many jobs
        # the turn started, and corral is woken once
        self.starts: list[dict[str, Any]] = []
        self.outbox: list[bytes] = []
        self.orphans_termed_at: float | None = None
        self.orphan_kill = False  # jobs are being stopped because corral went away
        self.stopping = False  # SIGTERM: stop everything and exit
        self.selector = selectors.DefaultSelector()
        # exits go to a thread that makes them durable and only then tells corral, so the
        # main loop keeps starting jobs while the disk syncs (one sync per batch)
        self.exits: list[tuple[dict[str, Any], str, str, bool]] = []
        self.exits_ready = threading.Condition()
        self.closing = False
        self.record_lock = threading.Lock()  # one writer of the records at a time
        self.send_lock = threading.Lock()  # the socket: sent to from both threads
        self.exit_writer = threading.Thread(target=self._write_exits, daemon=True)
        # spawn requests waiting for a slot (`slots`), oldest first
        self.queue: collections.deque[dict[str, Any]] = collections.deque()

    # -- records --------------------------------------------------------------------------

    def _record(self, entries: list[dict[str, Any]], durable: bool) -> bool:
        """Append `entries` (fsynced when `durable`); False when the disk refused them
        (full): corral still hears of the exits, only a resume would miss them."""
        data = b"".join(_line(entry) for entry in entries)
        view = memoryview(data)
        try:
            with self.record_lock:  # whole lines, never interleaved
                while view:
                    view = view[os.write(self.records, view) :]
            if durable:
                os.fdatasync(self.records)  # what was written before, the lines above too
        except OSError:
            return False
        return True

    def _send(self, message: dict[str, Any]) -> None:
        """Queue a message for corral (main thread): sent with the turn's others."""
        self.outbox.append(_line(message))

    def _write_starts(self) -> None:
        """Append the start records of the jobs started since the last call (not fsynced:
        docs/durability.md). Before any exit goes to the exit writer, so a job's start is
        on record before its exit."""
        if self.starts:
            starts, self.starts = self.starts, []
            self._record(starts, durable=False)

    def _flush(self) -> None:
        """End of a turn: the start records, then corral's messages in one send (corral
        hears of a start only once it is on record, as before)."""
        self._write_starts()
        if self.outbox:
            data, self.outbox = b"".join(self.outbox), []
            if not self._deliver(data):
                self._detach()

    def _deliver(self, data: bytes) -> bool:
        """Send JSON lines to corral; False when its end is gone (the main loop then
        detaches)."""
        with self.send_lock:
            if self.sock is None:
                return True
            try:
                self.sock.sendall(data)
            except OSError:
                return False
        return True

    # -- requests from corral -------------------------------------------------------------

    def _on_socket(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._detach()
            return
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            operation = message["op"]
            if operation == "spawn":
                if message.get("slots"):
                    self.queue.append(message)
                    self._fill()
                else:
                    self._spawn(message)
            elif operation == "withdraw":
                self._withdraw(message["key"])
            elif operation == "term_orphans":
                self._term_orphans()
            elif operation == "sweep":
                self._sweep(float(message["grace"]))
                self._send({"op": "swept"})

    def _spawn(self, message: dict[str, Any]) -> None:
        key = message["key"]
        argv = message["argv"]
        env = message["env"]
        try:
            _log_folder(os.path.dirname(message["out"]))
            executable = resolve(argv[0], env)
            cwd = message.get("cwd")
            if cwd:
                try:
                    # posix_spawn cannot (Python 3.11). The directory is the whole
                    # process's, the exit writer thread's too, but that thread only
                    # looks at the absolute log paths corral sends: nothing it does moves
                    os.chdir(cwd)
                except OSError:
                    raise SpawnError(f"working directory not found: {cwd}") from None
            try:
                pid = os.posix_spawn(
                    executable,
                    argv,
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_OPEN, 1, message["out"], _LOG_FLAGS, _LOG_MODE),
                        (os.POSIX_SPAWN_OPEN, 2, message["err"], _LOG_FLAGS, _LOG_MODE),
                    ],
                    setsid=True,
                    setsigdef=_DEFAULT_SIGNALS,
                    setsigmask=(),
                )
            except OSError as error:
                raise SpawnError(spawn_message(argv[0], error)) from None
        except SpawnError as error:
            self._send({"op": "failed", "key": key, "message": str(error)})
            return
        self.jobs[pid] = key
        self.logs[pid] = (message["out"], message["err"])
        reaper.LEADERS.add(pid)
        self.starts.append({"e": "start", "key": key, "pid": pid, "at": time.time()})
        self._send({"op": "started", "key": key, "pid": pid})

    def _fill(self) -> None:
        """Start queued requests while fewer jobs run than the request's `slots`."""
        queue = self.queue
        while queue and self.sock is not None and len(self.jobs) < queue[0]["slots"]:
            self._spawn(queue.popleft())

    def _withdraw(self, key: str) -> None:
        """Drop a queued request for `key`; one already started (or failed) is left to
        corral, which has its reply by now or soon."""
        for message in self.queue:
            if message["key"] == key:
                self.queue.remove(message)
                self._send({"op": "failed", "key": key, "withdrawn": True, "message": "withdrawn"})
                return

    def _term_orphans(self) -> None:
        """SIGTERM what the jobs left behind now, so a stop's grace runs for them too."""
        if self.orphans_termed_at is None:
            self.orphans_termed_at = time.monotonic()
        for pid in reaper._children():
            if pid not in self.jobs:
                reaper.signal_process(pid, signal.SIGTERM)

    def _sweep(self, grace: float) -> None:
        if self.orphans_termed_at is not None:
            # their grace started at the first SIGTERM, not now
            grace = max(0.0, self.orphans_termed_at + grace - time.monotonic())
        reaper.sweep(grace)
        self.orphans_termed_at = None

    def terminate(self) -> None:
        self.on_orphan = "kill"
        self.stopping = True

    def _detach(self) -> None:
        """corral went away: keep the jobs running (adopt) or stop them (kill)."""
        if self.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        with self.send_lock:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        # never started, never recorded: a resume runs them as any job with no start
        self.queue.clear()
        self.outbox.clear()  # nobody to read them
        if self.on_orphan == "kill":
            self._stop_jobs()

    def _stop_jobs(self) -> None:
        if not self.jobs:
            return
        self.orphan_kill = True
        self._term_orphans()

        def send(sig: int) -> bool:
            return any([reaper.signal_group(pid, sig) for pid in list(self.jobs)])

        def alive() -> bool:
            self._reap()
            return bool(self.jobs)

        reaper.stop(send, alive, self.grace)

    # -- children -------------------------------------------------------------------------

    def _reap(self) -> None:
        """Collect every exited child; hand the jobs' exits to the exit writer."""
        self._write_starts()
        ended: list[dict[str, Any]] = []
        logs: list[tuple[str, str]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            key = self.jobs.pop(pid, None)
            if key is None:
                continue  # a daemon a job left behind
            reaper.LEADERS.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            entry: dict[str, Any] = {
                "e": "exit",
                "key": key,
                "pid": pid,
                "code": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "at": time.time(),
            }
            if self.orphan_kill:
                entry["orphan_killed"] = True  # stopped because corral went away: run it again
            ended.append(entry)
            logs.append(self.logs.pop(pid, ("", "")))
        if not ended:
            return
        with self.exits_ready:
            for entry, (out, err) in zip(ended, logs, strict=True):
                # every child collected above: a group member now is a live leftover
                leftovers = reaper.signal_group(entry["pid"], 0)
                self.exits.append((entry, out, err, leftovers))
            self.exits_ready.notify()

    def _write_exits(self) -> None:
        """The exit writer's thread: record each batch of exits (fdatasync), then tell
        corral of each, so an exit corral heard of is on disk."""
        while True:
            with self.exits_ready:
                while not self.exits and not self.closing:
                    self.exits_ready.wait()
                if not self.exits:
                    return
                batch, self.exits = self.exits, []
            recorded = self._record([entry for entry, *_ in batch], durable=True)
            if self.sock is None:
                continue  # corral is gone: the records are what a resume reads
            # the batch's exits in one send: corral is woken once for all of them
            self._deliver(
                b"".join(
                    _line(
                        {
                            "op": "exit",
                            **entry,
                            "recorded": recorded,
                            "sizes": [_size(out), _size(err)],
                            "group": leftovers,
                            "disk_full": disk_full(os.path.dirname(out)),
                        }
                    )
                    for entry, out, err, leftovers in batch
                )
            )

    def _close_exits(self) -> None:
        """Let the exit writer finish every exit handed to it, then end it."""
        with self.exits_ready:
            self.closing = True
            self.exits_ready.notify_all()
        self.exit_writer.join()

    def run(self) -> None:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = self.selector
        selector.register(wake_read, selectors.EVENT_READ)
        assert self.sock is not None
        selector.register(self.sock, selectors.EVENT_READ)
        self.exit_writer.start()
        self._send({"op": "ready", "pid": os.getpid()})
        self._flush()
        while self.sock is not None or self.jobs:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is wake_read:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_read, 4096):
                            pass
                elif self.sock is not None:
                    self._on_socket()
            self._reap()
            self._fill()  # a freed slot takes the next queued job at once
            self._flush()
            if self.stopping:
                self.stopping = False
                self._detach()
                self._stop_jobs()
        # no corral and no job left: every exit on record, stop what the jobs left, go
        self._close_exits()
        reaper.sweep(self.grace)


def _line(message: dict[str, Any]) -> bytes:
    """`message` as one JSON line: the bytes `orjson.dumps(message) + b"\\n"` gives for
    what the supervisor writes (its only floats are times since the epoch, which neither
    writes in exponent form; tests/test_fast_paths.py)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _log_folder(folder: str) -> None:
    """Create a job's log folder (0700), its parents too when missing."""
    try:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(folder, 0o700, exist_ok=True)
    except OSError as error:
        raise SpawnError(f"cannot create its log folder {folder}: {error.strerror}") from None


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def disk_full(folder: str | Path) -> bool:
    """Whether the file system of `folder` (a job's log folder) has no block left: the
    job's writes to its logs may have failed (it wrote them itself, so nobody saw an
    error)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _begin(sock: socket.socket) -> dict[str, Any] | None:
    """An early supervisor's `begin` message, once corral sends it; None when corral's
    end closes first (the command ended before any job ran, or corral died). The line is
    taken off the socket alone: what follows it is left there for the main loop."""
    head = b""
    while True:
        try:
            peeked = sock.recv(1 << 16, socket.MSG_PEEK)
        except OSError:
            return None
        if not peeked:
            return None
        end = peeked.find(b"\n")
        taken = sock.recv(end + 1 if end >= 0 else len(peeked))
        head += taken
        if end >= 0:
            message: dict[str, Any] = json.loads(head)
            return message if message.get("op") == "begin" else None


def _early(fd: int) -> tuple[str, str, float, socket.socket] | None:
    """Start up ahead of the run, wait for its `begin`, then log where corral would have
    had us log (its supervisor.log): the run's folder, `on_orphan`, the grace, the socket."""
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)
    message = _begin(sock)
    if message is None:
        return None  # no run: nothing was written, nothing is left
    root = message["root"]
    log = os.open(
        os.path.join(root, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return root, message["on_orphan"], float(message["grace"]), sock


def main(argv: list[str]) -> int:
    os.chdir("/")  # never pin a directory a user may want to unmount
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # the terminal's signals are for corral
    if argv[0] == "--early":  # started ahead of its run (corral.execute.early)
        begun = _early(int(argv[1]))
        if begun is None:
            return 0
        root, on_orphan, grace, sock = begun
    else:
        root, on_orphan, grace = argv[0], argv[1], float(argv[2])
        sock = socket.socket(fileno=int(argv[3]))
        sock.set_inheritable(False)  # the jobs must not hold corral's line
    reaper.become_subreaper()
    lock = os.open(os.path.join(root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    supervisor = Supervisor(root, on_orphan, grace, sock)
    # SIGTERM to the supervisor itself: stop the jobs (recording how they ended), then go
    signal.signal(signal.SIGTERM, lambda *_: supervisor.terminate())
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
