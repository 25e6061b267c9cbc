"""What one conformance attempt does, written so that any executor can run it.

A `Program` describes the behaviour (print these lines, write these files, exit with
this code, or hang, ignore SIGTERM, leave a daemon behind). `argv()` turns it into a real
command (`python -c ...`) that an executor which runs commands runs as is; the fake
executor reads the same description back from the argv (`Program.from_argv`) and plays
it on virtual time. So one check runs against both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

MARK = "corral-conformance"
MISSING = "/nonexistent/corral-conformance-missing-command"

# the real command: reads the Program from its last argument
_SOURCE = r"""
import json, os, signal, subprocess, sys, time
p = json.loads(sys.argv[-1])["program"]
if p["ignore_term"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for name, text in p["files"]:
    os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
    with open(name, "w") as handle:
        handle.write(text)
if p["orphan"]:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for line in p["stderr"]:
    print(line, file=sys.stderr, flush=True)
for line in p["stdout"]:
    print(line, flush=True)
while p["hang"]:
    time.sleep(3600)
sys.exit(p["exit_code"])
"""


@dataclass(frozen=True)
class Program:
    """One attempt's behaviour: its output, files, exit, and misbehaviour.

    Lines are printed stderr first, then stdout, flushed one by one; `hang` keeps it
    running (after its output) until it is stopped; `orphan` leaves a process in its own
    session behind (an escaped daemon, carrying the job's environment); `missing` is a
    command that does not exist.
    """

    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    exit_code: int = 0
    hang: bool = False
    ignore_term: bool = False
    files: tuple[tuple[str, str], ...] = ()  # (name relative to the job's cwd, text)
    orphan: bool = False
    missing: bool = False

    def argv(self) -> tuple[str, ...]:
        data = json.dumps({MARK: 1, "program": asdict(self)})
        if self.missing:
            return (MISSING, data)
        return (sys.executable, "-c", _SOURCE, data)

    @classmethod
    def from_argv(cls, argv: tuple[str, ...]) -> Program | None:
        """The Program an argv made by `argv()` runs; None for any other command."""
        if not argv or not argv[-1].startswith("{") or MARK not in argv[-1]:
            return None
        try:
            data = json.loads(argv[-1])["program"]
        except (ValueError, KeyError, TypeError):
            return None
        return cls(
            stdout=tuple(data["stdout"]),
            stderr=tuple(data["stderr"]),
            exit_code=int(data["exit_code"]),
            hang=bool(data["hang"]),
            ignore_term=bool(data["ignore_term"]),
            files=tuple((str(name), str(text)) for name, text in data["files"]),
            orphan=bool(data["orphan"]),
            missing=bool(data["missing"]),
        )
