"""Measure one command as a child process: wall, tree and own CPU, peak RSS, load.

- wall: `perf_counter` from spawn to exit;
- tree CPU: user+sys from `wait4()`'s rusage, the command plus every descendant it
  waited for (what `/usr/bin/time` prints);
- own CPU: utime+stime from `/proc/PID/stat`, read from the zombie after
  `waitid(WNOWAIT)` and before reaping, so the command alone, exact to a clock tick;
- peak RSS: the command's own `VmHWM` from `/proc/PID/status`, polled (every 5 ms for
  the first second, then every 20 ms; a high-water mark, so only a peak in the last
  interval before exit can be missed); `wait4`'s `ru_maxrss` is kept as a cross-check;
- load: the 1-minute load average when the command started.

A command runs with stdin from /dev/null and stdout+stderr to a file, or, with
`pty=True`, on a pseudo-terminal of a fixed size whose output a thread drains (and
counts) as a terminal would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import resource
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
TERMINAL_SIZE = (50, 160)  # rows, columns of the pseudo-terminal
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Command:
    """One command line to measure, and where it runs."""

    argv: list[str]
    cwd: Path
    env: dict[str, str] | None = None
    pty: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    def shell(self) -> str:
        """The command as one line a reader can paste (env additions shown in front)."""
        import shlex

        extra = ""
        if self.env is not None:
            added = {k: v for k, v in self.env.items() if os.environ.get(k) != v}
            extra = " ".join(f"{k}={_shown(k, v)}" for k, v in sorted(added.items()))
        line = shlex.join(self.argv)
        return f"{extra} {line}" if extra else line


@dataclass
class Sample:
    """What one run of a command cost."""

    wall: float
    tree_cpu: float
    own_cpu: float
    peak_rss: int  # bytes, polled VmHWM
    tree_max_rss: int  # bytes, wait4's ru_maxrss (the largest of the command and its children)
    load: float
    exit_code: int
    tty_bytes: int = 0
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "wall_s": self.wall,
            "tree_cpu_s": self.tree_cpu,
            "own_cpu_s": self.own_cpu,
            "peak_rss_bytes": self.peak_rss,
            "tree_max_rss_bytes": self.tree_max_rss,
            "load_1min": self.load,
            "exit_code": self.exit_code,
            "tty_bytes": self.tty_bytes,
            "error": self.error,
            **self.extra,
        }


def _shown(name: str, value: str) -> str:
    """An environment value for display: what was put in front of the inherited one."""
    import shlex

    inherited = os.environ.get(name)
    if inherited and value.endswith(os.pathsep + inherited):
        return shlex.quote(value[: -len(inherited) - 1]) + f"{os.pathsep}${name}"
    return shlex.quote(value)


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise the soft open-files limit toward the hard one (children inherit it).

    200 concurrent jobs need about 1,000 descriptors in corral; a 1,024 soft limit is
    common. Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _own_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    # after the command name: state is field 3, utime 14 and stime 15 (proc(5))
    return (int(fields[11]) + int(fields[12])) / TICK


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Poller(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        while not self.done.is_set():
            self.peak = max(self.peak, _hwm(self.pid))
            self.done.wait(0.005 if time.monotonic() - began < 1.0 else 0.02)


class _Drain(threading.Thread):
    """Reads a pty master until every writer has closed it; keeps the tail for errors."""

    def __init__(self, master: int) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.count = 0
        self.tail = b""

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:  # EIO: the last slave descriptor is closed
                break
            if not chunk:
                break
            self.count += len(chunk)
            self.tail = (self.tail + chunk)[-8192:]


def _terminal() -> tuple[int, int]:
    master, slave = pty.openpty()
    rows, cols = TERMINAL_SIZE
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def measure(command: Command, output: Path) -> Sample:
    """Run `command` once; its output goes to `output` (the tail of the terminal on a pty)."""
    load = os.getloadavg()[0]
    drain: _Drain | None = None
    master = slave = -1
    if command.pty:
        master, slave = _terminal()
        sink: int = slave
        stdin: int = slave
    else:
        sink = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        stdin = subprocess.DEVNULL
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command.argv,
            cwd=command.cwd,
            env=command.env,
            stdin=stdin,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    finally:
        os.close(sink)
    if master >= 0:
        drain = _Drain(master)
        drain.start()
    poller = _Poller(proc.pid)
    poller.start()
    timer = threading.Timer(command.timeout_s, _kill_group, (proc.pid,))
    timer.start()
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - started
        own = _own_cpu(proc.pid)
    finally:
        timer.cancel()
        poller.done.set()
        poller.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    tty_bytes = 0
    if drain is not None:
        drain.join(timeout=10)
        os.close(master)
        tty_bytes = drain.count
        output.write_bytes(drain.tail)
    error = None
    if code != 0:
        tail = output.read_bytes()[-1500:].decode(errors="replace") if output.exists() else ""
        error = f"exited {code}: {tail.strip()[-600:]}"
    if wall >= command.timeout_s:
        error = f"killed after {command.timeout_s:.0f} s"
    return Sample(
        wall=wall,
        tree_cpu=usage.ru_utime + usage.ru_stime,
        own_cpu=own,
        peak_rss=poller.peak,
        tree_max_rss=usage.ru_maxrss * 1024,
        load=load,
        exit_code=code,
        tty_bytes=tty_bytes,
        error=error,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
