#!/usr/bin/env python3
"""The durability check: kill -9 corral at random moments of a run, resume, verify.

    python scripts/durability.py [--rounds 20] [--jobs 30] [--seed N] [--keep]
    python scripts/durability.py --rounds 10 --chain-every 1    # the resume killed too

Each round builds a flow of small jobs (a DAG) in a fresh directory, starts
`python -m corral run`, SIGKILLs corral after a random delay, and checks that:

  (a) the history opens (SQLite integrity check; `corral runs --json` and
      `corral show RUN --json` work) and is consistent (events numbered 1..N without
      gaps, each job's status in `show` agrees with its events);
  (b) every event stored before the resume is still stored, unchanged, after it;
  (c) `corral resume RUN` exits 0 and every job succeeded, in the killed run or in
      the resumed one;
  (d) no job the store called succeeded before the resume started again during it
      (the jobs write their starts to a ledger file), and each of them had really
      finished (its "done" line is in the ledger);
  (e) after the resume no process of the killed run is alive: neither the job
      processes nor the grandchildren and setsid daemons some of them leave sleeping;
  (f) each job's side effect (written after a silent sleep, as an agent edits files
      after thinking) happened exactly once: no duplicate, none missing;
  (g) after the resume no job row of a killed run says `running` or `waiting`.

One line per round, then a summary; exit status 1 if any check failed (the round's
directory is then kept and named). Everything random (the graph, the jobs' sleeps, the
moment of the kill) comes from --seed, so a seed replays the same rounds; only the
machine's timing varies. See docs/durability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

PR_SET_CHILD_SUBREAPER = 36
STALE = ("running", "waiting", "ready", "retrying")
COMMAND_TIMEOUT_S = 120.0

# The job every node of the flow runs. It writes "<job> <pid> <parent pid>" to the
# ledger when it starts, "<job> grandchild <pid>" for a grandchild it leaves sleeping
# (mode 1: in its process group; mode 2: a setsid daemon), prints its lines, sleeps
# without printing, then writes its side effect "<job> done" and prints once more.
JOB_SCRIPT = """\
import os, subprocess, sys, time

ledger, name, sleep_s, lines, grandchild = sys.argv[1:6]


def note(text):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\\n").encode())
    finally:
        os.close(fd)


note(f"{name} {os.getpid()} {os.getppid()}")
if grandchild in ("1", "2"):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", ledger],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=grandchild == "2",
    )
    note(f"{name} grandchild {child.pid}")
count = int(lines)
for i in range(count):
    print(f"{name}: line {i + 1} of {count}", flush=True)
time.sleep(float(sleep_s))
note(f"{name} done")
print(f"{name}: done", flush=True)
"""


# -- the flow -------------------------------------------------------------------------


def build_flow(
    rng: random.Random, jobs: int, root: Path, grandchildren: float = 1 / 6
) -> dict[str, Any]:
    """A small DAG: each job needs 0 to 2 of the eight jobs before it; a share of the jobs
    (at least one) leave a grandchild sleeping, half of them as setsid daemons.
    """
    names = [f"j{i:02d}" for i in range(jobs)]
    share = max(1, round(jobs * grandchildren))
    with_grandchild = set(rng.sample(names, k=min(len(names), share)))
    spec: dict[str, Any] = {}
    for index, name in enumerate(names):
        job: dict[str, Any] = {
            "run": [
                sys.executable,
                str(root / "job.py"),
                str(root / "ledger.txt"),
                name,
                f"{rng.uniform(0.2, 2.0):.2f}",
                str(rng.randint(1, 4)),
                ("2" if rng.random() < 0.5 else "1") if name in with_grandchild else "0",
            ]
        }
        earlier = names[max(0, index - 8) : index]
        if earlier:
            needs = rng.sample(earlier, k=min(len(earlier), rng.choice((0, 1, 1, 2))))
            if needs:
                job["needs"] = sorted(needs)
        spec[name] = job
    return {
        "version": 1,
        "name": "durability",
        "concurrency": 6,
        "kill_grace": "1s",
        "defaults": {"timeout": "1m", "kill_grace": "1s"},
        "jobs": spec,
    }


# -- processes ------------------------------------------------------------------------


class Children:
    """Start our commands, and reap the orphans re-parented to us (we are a subreaper).

    Orphans of the killed run are re-parented to this process. Left as zombies they
    would still count as members of their process group, so `corral resume` would wait
    for them; a thread reaps them, never touching the pids of our own commands.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ours: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reap_loop, daemon=True)
        self.subreaper = _become_subreaper()
        self._thread.start()

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            proc = subprocess.Popen(argv, **kwargs)
            self._ours.add(proc.pid)
        return proc

    def run(self, argv: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> Completed:
        proc = self.popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return Completed(-1, out.decode(errors="replace"), f"timed out after {timeout}s")
        finally:
            self.forget(proc.pid)
        return Completed(proc.returncode, out.decode(errors="replace"), err.decode("replace"))

    def forget(self, pid: int) -> None:
        with self._lock:
            self._ours.discard(pid)

    def reap(self) -> None:
        with self._lock:
            for child in _children():
                if child not in self._ours:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(child, os.WNOHANG)

    def _reap_loop(self) -> None:
        while not self._stop.wait(0.05):
            self.reap()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Completed:
    code: int
    out: str
    err: str


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _children() -> list[int]:
    try:
        return [p.pid for p in psutil.Process().children()]
    except psutil.Error:
        return []


def live_processes(marker: str) -> list[psutil.Process]:
    """Processes (not zombies) whose command line names the round's directory."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def alive(pid: int, marker: str) -> bool:
    """The pid runs and is still ours (not a reused pid, not a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(marker in part for part in proc.cmdline())
    except psutil.Error:
        return False


def describe_pid(pid: int, ledger: Ledger) -> str:
    for job, started, _ in ledger.starts:
        if started == pid:
            return f"{pid} (job {job})"
    for job, child in ledger.grandchildren:
        if child == pid:
            return f"{pid} (grandchild of job {job})"
    with contextlib.suppress(psutil.Error):
        return describe(psutil.Process(pid))
    return str(pid)


def describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} ({' '.join(proc.cmdline())[-80:]})"
    except psutil.Error:
        return str(proc.pid)


# -- the ledger -----------------------------------------------------------------------


@dataclass
class Ledger:
    starts: list[tuple[str, int, int]] = field(default_factory=list)  # job, pid, parent
    grandchildren: list[tuple[str, int]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        ledger = cls()
        if not path.exists():
            return ledger
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "done":
                ledger.done.append(parts[0])
            elif len(parts) == 3 and parts[1] == "grandchild":
                ledger.grandchildren.append((parts[0], int(parts[2])))
            elif len(parts) == 3:
                ledger.starts.append((parts[0], int(parts[1]), int(parts[2])))
        return ledger

    def pids(self) -> list[int]:
        return [pid for _, pid, _ in self.starts] + [pid for _, pid in self.grandchildren]


# -- one round ------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


@dataclass
class RoundResult:
    number: int
    kill_at: float
    kill_resume_at: float | None  # also kill the first resume, after this long
    outcome: str = ""  # mid-run, before-record or after-finish; "+resume killed"
    run_id: str = ""
    kept: int = 0
    rerun: int = 0
    duplicates: int = 0  # side effects that happened more than once (extra ones)
    never: int = 0  # jobs whose side effect never happened
    left: int = 0  # processes of a killed run alive after the last resume
    stale: int = 0  # job rows of a killed run still running/waiting after the resume
    events: int = 0
    resume_s: float = 0.0  # the last `corral resume`, start to exit
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    directory: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def corral(*args: str) -> list[str]:
    return [sys.executable, "-m", "corral", *args]


@dataclass(frozen=True)
class Settings:
    jobs: int = 30
    seed: int = 1
    max_kill_s: float = 6.0  # the kill lands 0.2 s to this long after the clock starts
    chain_every: int = 3  # every Nth round also kills the first resume (0: never)
    grandchildren: float = 1 / 8  # the share of jobs that leave a grandchild sleeping
    # the kill's clock starts when corral starts ("start") or once it works ("work": the
    # run's first job started; the resume printed its plan), so a loaded machine's slow
    # start-up does not turn every round into a kill before the run was recorded
    clock_from: str = "work"


def run_round(number: int, settings: Settings, base: Path, children: Children) -> RoundResult:
    rng = random.Random(f"{settings.seed}-{number}")
    root = base / f"round-{number:02d}"
    root.mkdir(parents=True)
    (root / "job.py").write_text(JOB_SCRIPT)
    flow = build_flow(rng, settings.jobs, root, settings.grandchildren)
    (root / "flow.yaml").write_text(yaml.safe_dump(flow, sort_keys=False))
    kill_at = round(rng.uniform(0.2, settings.max_kill_s), 2)
    kill_resume_at = round(rng.uniform(0.5, settings.max_kill_s), 2)
    chained = settings.chain_every > 0 and number % settings.chain_every == 0
    result = RoundResult(number, kill_at, kill_resume_at if chained else None, directory=root)
    started = time.monotonic()
    try:
        Round(result, root, set(flow["jobs"]), children, settings.clock_from).play()
    except CheckFailed as failure:
        result.failures.append(str(failure))
    finally:
        leftovers = live_processes(str(root))
        result.left += len(leftovers)
        if leftovers:
            result.failures.append(
                "processes left after the round (killed now): "
                + ", ".join(describe(p) for p in leftovers)
            )
            for proc in leftovers:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        result.seconds = time.monotonic() - started
    return result


class Round:
    """One round: run and kill, [resume and kill], resume; the checks in between."""

    def __init__(
        self,
        result: RoundResult,
        root: Path,
        names: set[str],
        children: Children,
        clock_from: str = "work",
    ):
        self.result = result
        self.root = root
        self.names = names
        self.children = children
        self.ledger_path = root / "ledger.txt"
        self.stored: dict[str, list[str]] = {}  # run id -> its events, as read before resuming
        self.succeeded: set[str] = set()  # jobs the store says succeeded, in any run
        self.clock_from = clock_from

    def play(self) -> None:
        result = self.result
        _, outcome = self.start_and_kill(
            corral("run", str(self.root / "flow.yaml")), result.kill_at
        )
        result.outcome = outcome
        # (a) the store opens, reads and is consistent
        runs = list_runs(self.root, self.children)
        if not runs:
            if outcome == "mid-run":
                result.outcome = "before-record"
            # nothing to resume; then no job may have started: resume could not stop it
            started = Ledger.read(self.ledger_path).starts
            if started:
                raise CheckFailed(
                    f"no run was recorded, yet {len(started)} job(s) had started: "
                    + ", ".join(f"{job} (pid {pid})" for job, pid, _ in started)
                )
            return
        if len(runs) != 1:
            raise CheckFailed(f"expected one run in a fresh store, found {len(runs)}")
        target = result.run_id = runs[0]["id"]
        self.read(target)
        result.kept = len(self.succeeded)

        if result.kill_resume_at is not None:
            # kill -9 the resume too, then resume the resumed run (or, if it was killed
            # before it was recorded, the first run again)
            argv = corral("resume", target)
            before = self.starts()
            self.start_and_kill(argv, result.kill_resume_at, log="resume-killed.log")
            result.outcome += "+resume killed"
            self.check_not_repeated(before)
            runs = list_runs(self.root, self.children)
            child = [r["id"] for r in runs if r["resumed_from"] == target]
            if child:
                target = child[0]
                self.read(target)
            result.kept = len(self.succeeded)

        # (c) the resume that must finish
        began = time.monotonic()
        before = self.starts()
        resume(self.root, target, self.children)
        result.resume_s = time.monotonic() - began
        self.count_after_resume()
        # (d) what the store called succeeded did not run again
        self.check_not_repeated(before)
        # (b) every event stored before is still there
        for run_id, before in self.stored.items():
            after = set(history(self.root, self.children, run_id)[1])
            lost = [line for line in before if line not in after]
            if lost:
                raise CheckFailed(
                    f"{len(lost)} event(s) of run {run_id} stored before the resume are "
                    f"gone: {lost[0][:200]}"
                )
        # (c) every job succeeded, in one run or another
        runs = list_runs(self.root, self.children)
        last = [r["id"] for r in runs if r["id"] not in self.stored and r["resumed_from"] == target]
        if last:
            show, _ = history(self.root, self.children, last[0])
            if show["run"]["status"] != "succeeded":
                raise CheckFailed(f"the resumed run {last[0]} is {show['run']['status']}")
            self.succeeded |= {j["name"] for j in show["jobs"] if j["status"] == "succeeded"}
        missing = self.names - self.succeeded
        if missing:
            raise CheckFailed(f"jobs that succeeded in no run: {sorted(missing)}")
        unfinished = self.names - set(Ledger.read(self.ledger_path).done)
        if unfinished:
            raise CheckFailed(f"jobs the ledger never saw finish: {sorted(unfinished)}")
        if result.failures:
            raise CheckFailed(result.failures.pop())

    def start_and_kill(
        self, argv: list[str], kill_at: float, log: str = "run.log"
    ) -> tuple[int, str]:
        """Start corral, SIGKILL it (its pid only) `kill_at` seconds after it got going
        (see `--from`), unless it finished by then: its pid, and "mid-run" or
        "after-finish".
        """
        with open(self.root / log, "ab") as out:
            proc = self.children.popen(argv, cwd=self.root, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + COMMAND_TIMEOUT_S
            while self.clock_from == "work" and not self._working(log):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            proc.wait(timeout=kill_at)
            outcome = "after-finish"
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            outcome = "mid-run"
        finally:
            self.children.forget(proc.pid)
        return proc.pid, outcome

    def _working(self, log: str) -> bool:
        """A run has started a job (the ledger grew); a resume has said what it does."""
        if log == "run.log":
            return self.ledger_path.exists() and self.ledger_path.stat().st_size > 0
        path = self.root / log
        return path.exists() and path.stat().st_size > 0

    def read(self, run_id: str) -> None:
        """Read a killed run: its events, and which jobs it says succeeded."""
        show, events = history(self.root, self.children, run_id)
        self.stored[run_id] = events
        self.result.events += len(events)
        self.succeeded |= {j["name"] for j in show["jobs"] if j["status"] == "succeeded"}
        not_done = self.succeeded - set(Ledger.read(self.ledger_path).done)
        if not_done:
            raise CheckFailed(f"the store says {sorted(not_done)} succeeded; they never finished")

    def count_after_resume(self) -> None:
        """(e) processes left, (f) side effects once each, (g) no stale row."""
        result = self.result
        left = check_processes(self.root, Ledger.read(self.ledger_path), self.children)
        result.left += len(left)
        if left:
            result.failures.append("processes outlived the resume: " + ", ".join(left))
        done = Counter(Ledger.read(self.ledger_path).done)
        result.duplicates = sum(n - 1 for n in done.values() if n > 1)
        result.never = len(self.names - set(done))
        if result.duplicates:
            twice = sorted(job for job, n in done.items() if n > 1)
            result.failures.append(f"duplicated side effects: {twice}")
        for run_id in self.stored:
            show, _ = history(self.root, self.children, run_id)
            stale = [j["name"] for j in show["jobs"] if j["status"] in STALE]
            result.stale += len(stale)
            if stale:
                result.failures.append(f"run {run_id}: rows still running/waiting: {stale}")

    def starts(self) -> Counter[str]:
        return Counter(job for job, _, _ in Ledger.read(self.ledger_path).starts)

    def check_not_repeated(self, before: Counter[str]) -> None:
        """(d) The jobs a resume started (more starts than before it) had not succeeded."""
        after = self.starts()
        again = {job for job, count in after.items() if count > before.get(job, 0)}
        repeated = sorted(self.succeeded & again)
        if repeated:
            raise CheckFailed(f"jobs that had succeeded ran again during a resume: {repeated}")
        self.result.rerun += len(again)


def resume(root: Path, run_id: str, children: Children) -> int:
    """`corral resume RUN`, which must exit 0; its pid (the parent of the jobs it runs)."""
    with open(root / "resume.log", "wb") as log:
        proc = children.popen(corral("resume", run_id), cwd=root, stdout=log, stderr=log)
    try:
        code = proc.wait(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = -1
    finally:
        children.forget(proc.pid)
    if code != 0:
        tail = (root / "resume.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise CheckFailed(f"corral resume {run_id} exited {code}: " + " | ".join(tail))
    return proc.pid


def check_processes(root: Path, ledger: Ledger, children: Children) -> list[str]:
    """(e) After the resume (whose own jobs are over: it exited), any live pid of the
    ledger, or any process naming this round's directory, is a leftover of a killed run
    (described, then killed).
    """
    time.sleep(0.1)  # let the last zombies be collected
    children.reap()
    marker = str(root)
    survivors = [pid for pid in ledger.pids() if alive(pid, marker)]
    stray = [p.pid for p in live_processes(marker) if p.pid not in survivors]
    found = [describe_pid(pid, ledger) for pid in survivors + stray]
    for pid in survivors + stray:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


def list_runs(root: Path, children: Children) -> list[dict[str, Any]]:
    """(a) The SQLite file passes its integrity check and `corral runs --json` works."""
    db = root / ".corral" / "corral.db"
    if db.exists():
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            verdict = conn.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            raise CheckFailed(f"SQLite integrity check: {verdict}")
    # every run on its own line: the checks are per run, not per resume chain
    listed = _json(children.run(corral("runs", "--json", "--no-chain"), root), "corral runs --json")
    runs: list[dict[str, Any]] = listed["runs"]
    return runs


def history(root: Path, children: Children, run_id: str) -> tuple[dict[str, Any], list[str]]:
    """(a) `corral show RUN --json` and `corral export RUN --format jsonl`, consistent."""
    show = _json(
        children.run(corral("show", run_id, "--json", "--no-chain"), root), f"corral show {run_id}"
    )
    export = children.run(corral("export", run_id, "--format", "jsonl", "--no-chain"), root)
    if export.code != 0:
        raise CheckFailed(f"corral export {run_id} exited {export.code}: {export.err.strip()}")
    lines = export.out.splitlines()
    check_events(run_id, lines, show)
    return show, lines


def check_events(run_id: str, lines: list[str], show: dict[str, Any]) -> None:
    """Events numbered 1..N; each job's status as its last job.finished event says."""
    events = [json.loads(line) for line in lines]
    seqs = [e["seq"] for e in events]
    if seqs != list(range(1, len(seqs) + 1)):
        raise CheckFailed(f"run {run_id}: event numbers are not 1..{len(seqs)}: {seqs[:50]}")
    if events and events[0]["event"]["kind"] != "run.started":
        raise CheckFailed(f"run {run_id}: the first event is {events[0]['event']['kind']}")
    last: dict[str, str] = {}
    for e in events:
        if e["event"]["kind"] == "job.finished":
            last[e["event"]["job"]] = e["event"]["status"]
    for job in show["jobs"]:
        if job["name"] in last and job["status"] != last[job["name"]]:
            raise CheckFailed(
                f"run {run_id}: job {job['name']} is {job['status']} in `show` "
                f"but {last[job['name']]} in its events"
            )
        if job["status"] == "succeeded" and job["name"] not in last:
            raise CheckFailed(f"run {run_id}: job {job['name']} succeeded without an event")


def _json(done: Completed, what: str) -> dict[str, Any]:
    if done.code != 0:
        raise CheckFailed(f"{what} exited {done.code}: {done.err.strip()[-300:]}")
    try:
        value: dict[str, Any] = json.loads(done.out)
    except ValueError as error:
        raise CheckFailed(f"{what} printed no JSON ({error}): {done.out[:200]}") from None
    return value


# -- main -----------------------------------------------------------------------------


def rounds(count: int, settings: Settings, base: Path) -> Iterator[RoundResult]:
    """Play the rounds one by one (a generator: print each as it ends)."""
    children = Children()
    try:
        for number in range(1, count + 1):
            yield run_round(number, settings, base, children)
    finally:
        children.close()


def line(result: RoundResult) -> str:
    verdict = "ok  " if result.ok else "FAIL"
    kills = f"{result.kill_at:4.2f}s"
    if result.kill_resume_at is not None and "resume killed" in result.outcome:
        kills += f" +{result.kill_resume_at:4.2f}s"
    text = (
        f"round {result.number:2d} {verdict} kill at {kills:13s} {result.outcome:28s}"
        f" run {result.run_id or '-':20s}  events {result.events:3d}"
        f"  kept {result.kept:2d}  rerun {result.rerun:2d}  dup {result.duplicates}"
        f"  never {result.never}  left {result.left}  stale {result.stale}"
        f"  resume {result.resume_s:4.1f}s  round {result.seconds:4.1f}s"
    )
    return text + "".join(f"\n    {failure}" for failure in result.failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-kill", type=float, default=6.0, help="latest kill, seconds")
    parser.add_argument(
        "--chain-every",
        type=int,
        default=3,
        metavar="N",
        help="every Nth round also kills the first resume, then resumes that (0: never)",
    )
    parser.add_argument(
        "--grandchildren",
        type=float,
        default=1 / 8,
        metavar="SHARE",
        help="the share of jobs that leave a grandchild sleeping (default 1/8)",
    )
    parser.add_argument(
        "--from",
        dest="clock_from",
        choices=("work", "start"),
        default="work",
        help="the kill delay counts from the first job's start (work) or corral's (start)",
    )
    parser.add_argument("--keep", action="store_true", help="keep every round's directory")
    parser.add_argument("--dir", type=Path, help="where the rounds go (default: a temp dir)")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="corral-durability-", dir=args.dir))
    print(
        f"durability: {args.rounds} rounds of {args.jobs} jobs, seed {args.seed}, in {base}",
        flush=True,
    )
    started = time.monotonic()
    results: list[RoundResult] = []
    settings = Settings(
        args.jobs, args.seed, args.max_kill, args.chain_every, args.grandchildren, args.clock_from
    )
    for result in rounds(args.rounds, settings, base):
        results.append(result)
        print(line(result), flush=True)
        if result.ok and not args.keep and result.directory:
            shutil.rmtree(result.directory, ignore_errors=True)
    failed = [r for r in results if not r.ok]
    outcomes = {
        o: sum(r.outcome == o for r in results) for o in sorted({r.outcome for r in results})
    }
    print(
        f"{len(results) - len(failed)}/{len(results)} rounds passed in "
        f"{time.monotonic() - started:.0f}s; "
        + ", ".join(f"{n} {o}" for o, n in outcomes.items())
        + f"; jobs kept {sum(r.kept for r in results)}, started by the resumes "
        f"{sum(r.rerun for r in results)}; events checked {sum(r.events for r in results)}"
    )
    print(
        f"duplicated side effects {sum(r.duplicates for r in results)}, never completed "
        f"{sum(r.never for r in results)}, processes left {sum(r.left for r in results)}, "
        f"stale rows {sum(r.stale for r in results)}"
    )
    if failed:
        for r in failed:
            print(f"round {r.number} failed (kept in {r.directory}): {r.failures[0]}")
        return 1
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
