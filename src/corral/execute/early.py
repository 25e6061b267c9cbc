"""Starting the run's supervisor before corral has even parsed its command line.

The supervisor is a second Python process (`corral.execute.supervisor`); its start-up
(~35 ms of interpreter and imports) used to begin only once corral had imported the run's
modules, opened the history and planned, and a short run's first job waited for it. A
`corral exec` or `corral run` now starts it as the first thing it does (`start`, from the
console script's `main`), in its early form: it starts up, then waits on its socket for
a `begin` message saying which run it serves (the run's log folder, `on_orphan`, the
grace), all while corral does its own start-up on the other CPU. Until then it has no
run: it holds no lock, writes no file and has no job; its end of the socket closing (the
command ended before any job ran, or corral died) makes it exit.

The run's `SupervisorClient` takes it (`take`) instead of starting one, unless it has
died meanwhile: then the run starts its supervisor as it always did. A command that
will not run jobs on this machine under a supervisor is not given one (`wanted`: --help,
--server, an executor named on the command line other than `local`, --start-at,
CORRAL_SUPERVISE=0); one that turns out not to need it (a flow error, nothing to run, an
executor named by the flow file) kills it (`discard`), which it cannot mind: it has no run.

Standard library only, and only what corral imports anyway: it runs before the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence

EARLY_FLAG = "--early"
# the commands whose run can use it, and the options that mean it would not be used
_COMMANDS = frozenset({"exec", "run"})
_NOT_HERE = frozenset({"-h", "--help", "--server", "--start-at"})


class Early:
    """A started early supervisor: its process and corral's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock

    def alive(self) -> bool:
        """Whether it still runs and its end of the socket is open (it may still be
        starting up: it reads its `begin` whenever it gets there)."""
        if self.process.poll() is not None:
            return False
        try:
            peeked = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # nothing said yet, nothing closed: it is there
        except OSError:
            return False
        return bool(peeked)  # b"": its end closed (it died after the poll above)

    def kill(self) -> None:
        """Close our end and kill it: it has no run, so nothing of it is left behind."""
        self.sock.close()
        with contextlib.suppress(OSError):
            self.process.send_signal(signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            self.process.wait()


_STARTED: list[Early] = []  # the one this process started and nobody took yet


def wanted(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the command line `args` (argv without the program) is a run on this
    machine under a supervisor, as far as it tells before it is parsed."""
    if not args or args[0] not in _COMMANDS or environ.get("CORRAL_SUPERVISE", "1") == "0":
        return False
    if environ.get("CORRAL_SERVER"):
        return False
    words = list(args[1:])
    if "--" in words:
        words = words[: words.index("--")]  # what follows is the command, taken literally
    for index, word in enumerate(words):
        name, _, value = word.partition("=")
        if name in _NOT_HERE:
            return False
        if name == "--executor":
            if not value and index + 1 < len(words):
                value = words[index + 1]
            if value != "local":
                return False
    return True


def start(args: Sequence[str]) -> None:
    """Start the early supervisor if the command line `args` wants one; never fails (a
    supervisor that could not start early is started the usual way)."""
    if _STARTED or not wanted(args, os.environ):
        return
    from corral.selfexec import module_argv, module_env

    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [
                *module_argv("corral.execute.supervisor"),
                EARLY_FLAG,
                str(theirs.fileno()),
            ],
            stdin=subprocess.DEVNULL,
            # its output goes to the run's supervisor.log once it has a run (`begin`)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=module_env(),
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # no terminal signal reaches it
        )
    except OSError:
        ours.close()
        return
    finally:
        theirs.close()
    _STARTED.append(Early(process, ours))


def take() -> Early | None:
    """The early supervisor for the run that starts now, if one is there and alive
    (one that died is reaped and forgotten: the run starts its own)."""
    if not _STARTED:
        return None
    early = _STARTED.pop()
    if not early.alive():
        early.kill()
        return None
    return early


def discard() -> None:
    """The command needs no early supervisor (any more): stop the one it has, if any."""
    while _STARTED:
        _STARTED.pop().kill()
