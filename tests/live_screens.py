"""For the whole-screen tests (test_live_layout.py, test_plan_export.py): a rehearsal-like
run's journal, as the review's screens showed it, and `corral` under a pseudo-terminal
shown by a terminal emulator (pyte)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from decimal import Decimal
from pathlib import Path

import pyte

from corral.events.types import (
    AssistantText,
    JobFinished,
    JobStarted,
    JobWaiting,
    RunStarted,
    SpendUpdated,
)
from corral.journal import RunJournal
from corral.models import BudgetLimits, Cost, CostSource, JobStatus, Usage


def rehearsal_journal(*, done: bool) -> RunJournal:
    """Three agent jobs (claude, codex, gemini) under a $1 budget: `done` all succeeded,
    else the first running and the others waiting."""
    journal = RunJournal(["analyze", "tests", "summary"], budget=BudgetLimits(usd=Decimal(1)))
    journal(RunStarted(run_id="r1", flow_name="rehearsal", flow_path="/f.yaml",
                       jobs=("analyze", "tests", "summary"), started_at=100.0))  # fmt: skip
    for name, tool in (("analyze", "claude"), ("tests", "codex"), ("summary", "gemini")):
        journal.job(name).tool = tool
    journal(JobWaiting(job="tests", reason="waiting for analyze"))
    journal(JobWaiting(job="summary", reason="waiting for tests"))
    figures = {
        "analyze": ("claude-sonnet-4-5", Usage(input_tokens=2400, output_tokens=600,
                    cache_read_tokens=36000, cache_write_5m_tokens=1000, tool_calls=1),
                    Cost(Decimal("0.0307"), CostSource.REPORTED), "Two risks found.", 2.8),
        "tests": ("gpt-5.5", Usage(input_tokens=12, output_tokens=11),
                  Cost(Decimal("0.0004"), CostSource.ESTIMATED), "Added 3 tests.", 1.6),
        "summary": ("gemini-2.5-pro", Usage(input_tokens=12, output_tokens=11),
                    Cost(Decimal("0.0001"), CostSource.ESTIMATED), "All good.", 5.2),
    }  # fmt: skip
    run_usage, run_cost = Usage(), Cost(Decimal(0), CostSource.REPORTED)
    for name, (model, usage, cost, said, seconds) in figures.items():
        tool = journal.job(name).tool
        journal(JobStarted(job=name, attempt=1, pid=1, argv=(tool,), log_dir="/l",
                           started_at=100.0, tool=tool, model=model))  # fmt: skip
        if not done:
            break
        journal(AssistantText(job=name, attempt=1, text=said))
        run_usage, run_cost = run_usage + usage, run_cost + cost
        journal(SpendUpdated(job=name, attempt=1, by_model={model: usage}, cost=cost,
                             job_usage=usage, job_cost=cost, run_usage=run_usage,
                             run_cost=run_cost))  # fmt: skip
        journal(JobFinished(job=name, attempt=1, status=JobStatus.SUCCEEDED, exit_code=0,
                            signal=None, duration_s=seconds, tool=tool))  # fmt: skip
    return journal


class Terminal:
    """`corral` on a pseudo-terminal of a given size, shown by a terminal emulator."""

    def __init__(self, args: list[str], cwd: Path, columns: int, lines: int) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corral", *args], cwd=cwd, env=env,
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        )  # fmt: skip
        os.close(slave)

    def read(self, timeout: float) -> bool:
        """Feed what arrives within `timeout` to the emulator; False at end of output."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child side closed
            return False
        self.stream.feed(data)
        return bool(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, predicate: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(predicate) and predicate(self.text()):
                return
            if not self.read(0.1):
                break
        raise AssertionError(f"screen never matched:\n{self.text()}")

    def stop(self) -> None:
        """After a failure: SIGTERM, so corral stops its jobs (in their own sessions), then
        SIGKILL what is left of corral."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.read(0.5) and self.process.poll() is None and time.monotonic() < deadline:
            pass
        while self.read(0.2):
            pass
        code = self.process.wait(30)
        os.close(self.master)
        return code
